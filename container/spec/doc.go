// Package spec turns a container's docker configuration (container.Config merged with its
// image, container.HostConfig) into the OCI runtime spec that `docker run` would hand to runc,
// with Docker's secure defaults (DESIGN.md section 4): its 14 capabilities, its seccomp
// profile (github.com/moby/profiles/seccomp), masked and read-only /proc and /sys paths, its
// mounts and device cgroup rules, one new namespace of each kind but user and time.
//
// Differences from dockerd, on purpose:
//   - no AppArmor or SELinux defaults: a profile is set only when --security-opt names one
//     (the hosts berth targets have neither LSM enabled); label= options are accepted and ignored;
//   - the cgroup namespace is private unless --cgroupns host, on cgroup v1 hosts as well
//     (dockerd shares the host's there);
//   - the device cgroup rules carry runc's implicit ones too (mknod of any device, /dev/full,
//     /dev/ptmx, /dev/pts/*), since berth's runtime is not runc;
//   - HOME is set from the image's /etc/passwd when the environment lacks it (runc does this at
//     exec time; the spec carries it here);
//   - /etc/passwd and /etc/group are read inside the rootfs (a symlink in the image cannot
//     reach the host's files), and must be regular files.
package spec
