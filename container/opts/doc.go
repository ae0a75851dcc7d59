// Package opts turns `docker run` flag strings into moby API types (container.Config,
// container.HostConfig, mount.Mount, ...). Every function is pure (apart from ParseEnvFile,
// ParseLabelFile and a seccomp=FILE security option, which read the named file, and ParseEnv /
// ParseEnvFile, which read the current environment for a bare NAME), follows the docker CLI's and
// daemon's semantics, and fails with one line that names the bad value and the expected form.
package opts
