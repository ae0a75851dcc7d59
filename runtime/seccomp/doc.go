// Package seccomp turns an OCI seccomp profile (specs.LinuxSeccomp) into the
// classic BPF program libseccomp would load, caches compiled programs on disk,
// and installs a program on the calling thread with seccomp(2).
//
// Compilation and loading are split on purpose: Compile runs in the runtime
// before the container process exists (so a bad profile fails "create" with
// nothing started), and Load runs in the container init as the last step
// before exec, where libseccomp and its allocations are unwelcome.
//
// Semantics follow runc's libcontainer/seccomp: unknown syscall names are
// skipped, rules whose action equals the default action are dropped, argument
// conditions that repeat an index are split into one rule per condition, and
// an ENOSYS stub makes syscalls newer than the profile fail with ENOSYS rather
// than the default errno (see enosys.go).
package seccomp
