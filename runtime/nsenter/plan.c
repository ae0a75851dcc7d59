// The container side of `create` in C: a plan interpreter that runs in the process that
// becomes the container, right after nsenter.c has put it in its namespaces, so the container's
// pid 1 never starts the Go runtime (about 14 ms of page faults, package initialisers and a cold
// JSON decode per container on the machines we measured; crun does the same in C).
//
// The runtime (Go) decides everything: runtime/initplan turns the spec into a flat list of
// operations, every decision made, every name resolved, every capability numbered; this file
// only performs them, in order, with the same in-root rules as runtime/rootfs (every path an
// image controls is resolved with openat2(RESOLVE_IN_ROOT), mounts are built detached with the
// new mount API and attached to a resolved descriptor). Specs the plan cannot express (user
// namespaces, terminals, hooks inside the container, idmapped or tmpcopyup mounts, no_pivot,
// LSM labels, schedulers, seccomp notify) keep using the Go init (runtime/initproc).
//
// Wire format: "BPL1", u32 length, then operations: u16 op, u16 argc, and argc arguments of
// u32 length + bytes. Numbers are u64 arguments of 8 bytes, native endian. OP_MORE ends a part
// and another "BPL1" part follows: the runtime sends the first part as soon as it has started
// the process (before nsenter's 'P'), and the rest once it has moved the process into its
// cgroups. Replies use runtime/handshake's JSON lines: {"kind":"hooks"}, {"kind":"ready"} and
// {"kind":"error","error":"..."}; the runtime answers hooks with {"kind":"resume"}.
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/mount.h>
#include <linux/openat2.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "plan.h"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif
#ifndef KEYCTL_JOIN_SESSION_KEYRING
#define KEYCTL_JOIN_SESSION_KEYRING 1
#endif

static int psync = -1;     // the sync socket
static int ready_sent = 0; // after ready nobody reads the socket: errors go to stderr
static int root_fd = -1;   // the rootfs (O_PATH) until pivot_root, then "/"
static int cg_tmpfs = -1;  // the tmpfs of a cgroup v1 mount being filled
static char exec_path[4096];

static void write_sock(const char *p, size_t len) { berth_write_all(psync, p, len); }

static void send_kind(const char *kind) {
	char line[64];
	int n = snprintf(line, sizeof(line), "{\"kind\":\"%s\"}\n", kind);
	write_sock(line, (size_t)n);
}

// fail reports what went wrong (with errno's text when set) and exits as the Go init does.
static void fail(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
static void fail(const char *fmt, ...) {
	int saved = errno;
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	berth_errmsg(msg, sizeof(msg), saved, fmt, ap);
	va_end(ap);
	if (ready_sent) {
		dprintf(2, "berth init: %s\n", msg);
		_exit(127);
	}
	char out[2300];
	size_t o = 0;
	o += (size_t)snprintf(out, sizeof(out), "{\"kind\":\"error\",\"error\":\"");
	for (const unsigned char *p = (const unsigned char *)msg; *p && o < sizeof(out) - 16; p++) {
		if (*p == '"' || *p == '\\') {
			out[o++] = '\\';
			out[o++] = (char)*p;
		} else if (*p < 0x20) {
			o += (size_t)snprintf(out + o, sizeof(out) - o, "\\u%04x", *p);
		} else {
			out[o++] = (char)*p;
		}
	}
	o += (size_t)snprintf(out + o, sizeof(out) - o, "\"}\n");
	write_sock(out, o);
	_exit(127);
}

// ---- plan decoding ----

struct arg {
	const char *p;
	uint32_t len;
};

#define MAX_ARGS 16

static uint64_t u64(const struct arg *a) {
	uint64_t v = 0;
	if (a->len == sizeof(v))
		memcpy(&v, a->p, sizeof(v));
	return v;
}

// str returns a NUL-terminated copy of a (freed with the process: the plan is small).
static char *str(const struct arg *a) {
	char *s = malloc(a->len + 1);
	if (s == NULL)
		fail("plan: out of memory");
	memcpy(s, a->p, a->len);
	s[a->len] = '\0';
	return s;
}

// list splits a NUL-separated argument into a NULL-terminated vector.
static char **list(const struct arg *a, int *count) {
	int n = 0;
	for (uint32_t i = 0; i < a->len; i++)
		if (a->p[i] == '\0')
			n++;
	char **v = calloc((size_t)n + 1, sizeof(char *));
	char *s = str(a);
	if (v == NULL)
		fail("plan: out of memory");
	int k = 0;
	for (uint32_t i = 0; i < a->len && k < n; k++) {
		v[k] = s + i;
		i += (uint32_t)strlen(s + i) + 1;
	}
	if (count)
		*count = n;
	return v;
}

static void read_sock(void *buf, size_t len) { berth_read_all(psync, buf, len); }

// ---- in-root resolution (the rules of runtime/rootfs/resolve.go) ----

static int oat2(int dirfd, const char *path, uint64_t flags) {
	struct open_how how = {.flags = flags | O_CLOEXEC, .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS};
	return (int)syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
}

// mkdirall returns an O_PATH handle of dir (absolute, clean) in root, creating what is
// missing one component at a time relative to the handle of its resolved parent.
static int mkdirall(const char *dir) {
	int fd = oat2(root_fd, dir, O_PATH | O_DIRECTORY);
	if (fd >= 0 || errno != ENOENT)
		return fd;
	char buf[4096];
	if (strlen(dir) >= sizeof(buf)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	strcpy(buf, dir);
	int cur = oat2(root_fd, "/", O_PATH | O_DIRECTORY);
	if (cur < 0)
		return -1;
	char *p = buf;
	while (*p == '/')
		p++;
	while (*p) {
		char *end = strchr(p, '/');
		if (end)
			*end = '\0';
		char comp[256];
		if (strlen(p) >= sizeof(comp)) {
			close(cur);
			errno = ENAMETOOLONG;
			return -1;
		}
		strcpy(comp, p);
		int next = oat2(root_fd, buf, O_PATH | O_DIRECTORY);
		if (next < 0 && errno == ENOENT) {
			if (mkdirat(cur, comp, 0755) < 0 && errno != EEXIST) {
				close(cur);
				return -1;
			}
			next = openat(cur, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		}
		close(cur);
		if (next < 0)
			return -1;
		cur = next;
		if (!end)
			break;
		*end = '/';
		p = end + 1;
		while (*p == '/')
			p++;
	}
	return cur;
}

// split puts the parent directory and the last component of an absolute clean path in dir/base.
static void split(const char *path, char *dir, size_t dlen, const char **base) {
	const char *slash = strrchr(path, '/');
	size_t n = (size_t)(slash - path);
	if (n == 0)
		n = 1; // "/x": parent "/"
	if (n >= dlen)
		n = dlen - 1;
	memcpy(dir, path, n);
	dir[n] = '\0';
	*base = slash + 1;
}

enum { T_DIR = 0, T_FILE = 1, T_STRICT_DIR = 2 };

static int open_target(const char *dest, int kind) {
	if (strcmp(dest, "/") == 0) {
		if (kind == T_FILE) {
			errno = 0;
			fail("rootfs: mount on /: destination is not a directory");
		}
		return oat2(root_fd, "/", O_PATH | O_DIRECTORY);
	}
	if (kind == T_DIR)
		return mkdirall(dest);
	char dir[4096];
	const char *base;
	split(dest, dir, sizeof(dir), &base);
	int parent = mkdirall(dir);
	if (parent < 0)
		return -1;
	int fd;
	if (kind == T_STRICT_DIR) {
		// proc and sysfs go exactly where the spec says: a symlink there is refused.
		struct stat st;
		if (fstatat(parent, base, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			if (errno != ENOENT || (mkdirat(parent, base, 0755) < 0 && errno != EEXIST)) {
				close(parent);
				return -1;
			}
		} else if (S_ISLNK(st.st_mode)) {
			errno = 0;
			fail("rootfs: mount on %s: destination is a symlink", dest);
		} else if (!S_ISDIR(st.st_mode)) {
			errno = 0;
			fail("rootfs: mount on %s: destination is not a directory", dest);
		}
		fd = openat(parent, base, O_PATH | O_NOFOLLOW | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0 && (errno == ENOTDIR || errno == ELOOP)) {
			errno = 0;
			fail("rootfs: mount on %s: destination is a symlink", dest);
		}
		close(parent);
		return fd;
	}
	// A file: create it empty unless something is there, never through a symlink.
	fd = openat(parent, base, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0644);
	close(parent);
	if (fd >= 0)
		close(fd);
	else if (errno != EEXIST)
		return -1;
	return oat2(root_fd, dest, O_PATH);
}

// ---- the new mount API ----

// fs_fail reports a failed fsconfig/fsmount with the messages the filesystem logged in the
// context (a bare EINVAL does not say which option was bad).
static void fs_fail(int fsfd, const char *fstype, const char *what) __attribute__((noreturn));
static void fs_fail(int fsfd, const char *fstype, const char *what) {
	int saved = errno;
	char logs[512] = "", buf[256];
	for (int i = 0; i < 8; i++) {
		ssize_t n = read(fsfd, buf, sizeof(buf) - 1);
		if (n <= 0)
			break;
		buf[n] = '\0';
		if (buf[n - 1] == '\n')
			buf[n - 1] = '\0';
		size_t l = strlen(logs);
		snprintf(logs + l, sizeof(logs) - l, "%s%s", l ? "; " : "", buf);
	}
	errno = saved;
	if (logs[0])
		fail("fsconfig %s %s (%s)", fstype, what, logs);
	fail("fsconfig %s %s", fstype, what);
}

static int fs_new(const char *fstype, const char *source, char **data, uint64_t attrs) {
	int fsfd = (int)syscall(SYS_fsopen, fstype, FSOPEN_CLOEXEC);
	if (fsfd < 0)
		fail("fsopen %s", fstype);
	if (source && *source && syscall(SYS_fsconfig, fsfd, FSCONFIG_SET_STRING, "source", source, 0) < 0)
		fs_fail(fsfd, fstype, "source");
	for (; data && *data; data++) {
		const char *eq = strchr(*data, '=');
		int r;
		if (eq) {
			char key[256];
			snprintf(key, sizeof(key), "%.*s", (int)(eq - *data), *data);
			r = (int)syscall(SYS_fsconfig, fsfd, FSCONFIG_SET_STRING, key, eq + 1, 0);
		} else {
			r = (int)syscall(SYS_fsconfig, fsfd, FSCONFIG_SET_FLAG, *data, NULL, 0);
		}
		if (r < 0)
			fs_fail(fsfd, fstype, *data);
	}
	if (syscall(SYS_fsconfig, fsfd, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
		fs_fail(fsfd, fstype, "create");
	int mfd = (int)syscall(SYS_fsmount, fsfd, FSMOUNT_CLOEXEC, (unsigned)attrs);
	if (mfd < 0)
		fs_fail(fsfd, fstype, "fsmount");
	close(fsfd);
	return mfd;
}

static int clone_tree(int src, int recursive) {
	unsigned flags = OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH;
	if (recursive)
		flags |= AT_RECURSIVE;
	return (int)syscall(SYS_open_tree, src, "", flags);
}

static int set_attr(int mfd, uint64_t set, uint64_t clr, int recursive) {
	if (set == 0 && clr == 0)
		return 0;
	struct mount_attr a = {.attr_set = set, .attr_clr = clr};
	return (int)syscall(SYS_mount_setattr, mfd, "", AT_EMPTY_PATH | (recursive ? AT_RECURSIVE : 0), &a, sizeof(a));
}

static int set_prop(int mfd, uint64_t prop, int recursive) {
	struct mount_attr a = {.propagation = prop};
	return (int)syscall(SYS_mount_setattr, mfd, "", AT_EMPTY_PATH | (recursive ? AT_RECURSIVE : 0), &a, sizeof(a));
}

static int attach(int mfd, int target) {
	return (int)syscall(SYS_move_mount, mfd, "", target, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH);
}

// props is pairs of u64 (propagation flag, recursive).
static void attach_with_options(int mfd, int target, uint64_t rec_set, uint64_t rec_clr, const struct arg *props, const char *what, const char *dest) {
	if (set_attr(mfd, rec_set, rec_clr, 1) < 0)
		fail("rootfs: %s on %s: mount_setattr", what, dest);
	if (attach(mfd, target) < 0)
		fail("rootfs: %s on %s: move_mount", what, dest);
	for (uint32_t i = 0; props && i + 16 <= props->len; i += 16) {
		uint64_t flag, rec;
		memcpy(&flag, props->p + i, 8);
		memcpy(&rec, props->p + i + 8, 8);
		if (set_prop(mfd, flag, (int)rec) < 0)
			fail("rootfs: %s on %s: mount_setattr propagation", what, dest);
	}
}

// ---- operations ----

// op_mount_fs: dest, strict, fstype, source, data, attr_set, rec_set, rec_clr, props
static void op_mount_fs(struct arg *a) {
	char *dest = str(&a[0]), *fstype = str(&a[2]), *source = str(&a[3]);
	char **data = list(&a[4], NULL);
	char what[64];
	snprintf(what, sizeof(what), "mount %s", fstype);
	int target = open_target(dest, u64(&a[1]) ? T_STRICT_DIR : T_DIR);
	if (target < 0)
		fail("rootfs: %s on %s", what, dest);
	int mfd = fs_new(fstype, source, data, u64(&a[5]));
	attach_with_options(mfd, target, u64(&a[6]), u64(&a[7]), &a[8], what, dest);
	close(mfd);
	close(target);
}

// op_bind: dest, source, recursive, attr_set, attr_clr, rec_set, rec_clr, props
static void op_bind(struct arg *a) {
	char *dest = str(&a[0]), *source = str(&a[1]);
	// The source is the user's host path (trusted): following symlinks is mount --bind's rule.
	int src = open(source, O_PATH | O_CLOEXEC);
	if (src < 0)
		fail("rootfs: mount bind on %s: open source", dest);
	struct stat st;
	if (fstat(src, &st) < 0)
		fail("rootfs: mount bind on %s: stat source", dest);
	int target = open_target(dest, S_ISDIR(st.st_mode) ? T_DIR : T_FILE);
	if (target < 0)
		fail("rootfs: mount bind on %s", dest);
	int tree = clone_tree(src, (int)u64(&a[2]));
	if (tree < 0)
		fail("rootfs: mount bind on %s: open_tree", dest);
	if (set_attr(tree, u64(&a[3]), u64(&a[4]), 0) < 0)
		fail("rootfs: mount bind on %s: mount_setattr", dest);
	attach_with_options(tree, target, u64(&a[5]), u64(&a[6]), &a[7], "mount bind", dest);
	close(tree);
	close(target);
	close(src);
}

// op_cgroup_tmpfs: dest — the tmpfs of a cgroup v1 view, kept open for op_cgroup_hier.
static void op_cgroup_tmpfs(struct arg *a) {
	char *dest = str(&a[0]);
	int target = open_target(dest, T_DIR);
	if (target < 0)
		fail("rootfs: mount cgroup on %s", dest);
	char *data[] = {"mode=755", NULL};
	cg_tmpfs = fs_new("tmpfs", "tmpfs", data, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC);
	if (attach(cg_tmpfs, target) < 0)
		fail("rootfs: mount cgroup on %s: move_mount", dest);
	close(target);
}

// op_cgroup_hier: name, fstype, data, bind source ("" for a fresh instance), attr_set,
// attr_clr, links — one hierarchy under the tmpfs, under the host's name for it.
static void op_cgroup_hier(struct arg *a) {
	char *name = str(&a[0]), *fstype = str(&a[1]), *source = str(&a[3]);
	char **data = list(&a[2], NULL);
	char **links = list(&a[6], NULL);
	int tree;
	if (*source) {
		int src = open(source, O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (src < 0) {
			if (errno == ENOENT)
				return; // our cgroup is not visible there
			fail("rootfs: mount cgroup %s: open %s", name, source);
		}
		tree = clone_tree(src, 0);
		close(src);
		if (tree < 0 || set_attr(tree, u64(&a[4]), u64(&a[5]), 0) < 0)
			fail("rootfs: mount cgroup %s: bind", name);
	} else {
		tree = fs_new(fstype, "cgroup", data, u64(&a[4]));
	}
	if (mkdirat(cg_tmpfs, name, 0755) < 0 && errno != EEXIST)
		fail("rootfs: mount cgroup %s: mkdir", name);
	int dir = openat(cg_tmpfs, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dir < 0 || attach(tree, dir) < 0)
		fail("rootfs: mount cgroup %s: attach", name);
	close(dir);
	close(tree);
	for (char **l = links; *l; l++)
		if (symlinkat(name, cg_tmpfs, *l) < 0 && errno != EEXIST)
			fail("rootfs: mount cgroup: symlink %s", *l);
}

// op_cgroup_done: attr_set, attr_clr, props — the tmpfs gets its attributes last.
static void op_cgroup_done(struct arg *a) {
	if (set_attr(cg_tmpfs, u64(&a[0]), u64(&a[1]), 0) < 0)
		fail("rootfs: mount cgroup: mount_setattr");
	for (uint32_t i = 0; i + 16 <= a[2].len; i += 16) {
		uint64_t flag, rec;
		memcpy(&flag, a[2].p + i, 8);
		memcpy(&rec, a[2].p + i + 8, 8);
		if (set_prop(cg_tmpfs, flag, (int)rec) < 0)
			fail("rootfs: mount cgroup: propagation");
	}
	close(cg_tmpfs);
	cg_tmpfs = -1;
}

// clear_entry removes a non-directory at name; 1 when it is a mount point (left alone).
static int clear_entry(int dirfd, const char *name, const char *path) {
	struct stat st;
	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		if (errno == ENOENT)
			return 0;
		fail("rootfs: create device on %s", path);
	}
	if (S_ISDIR(st.st_mode)) {
		errno = 0;
		fail("rootfs: create device on %s: destination is a directory", path);
	}
	if (unlinkat(dirfd, name, 0) < 0) {
		if (errno == EBUSY)
			return 1;
		fail("rootfs: create device on %s: remove existing entry", path);
	}
	return 0;
}

// op_mknod: path, type, perm, major, minor, uid, gid
static void op_mknod(struct arg *a) {
	char *path = str(&a[0]);
	char dir[4096];
	const char *base;
	split(path, dir, sizeof(dir), &base);
	int parent = mkdirall(dir);
	if (parent < 0)
		fail("rootfs: create device on %s", path);
	if (!clear_entry(parent, base, path)) {
		mode_t perm = (mode_t)u64(&a[2]);
		if (mknodat(parent, base, (mode_t)u64(&a[1]) | perm, makedev(u64(&a[3]), u64(&a[4]))) < 0)
			fail("rootfs: create device on %s: mknod", path);
		if (fchmodat(parent, base, perm, 0) < 0)
			fail("rootfs: create device on %s: chmod", path);
		if (fchownat(parent, base, (uid_t)u64(&a[5]), (gid_t)u64(&a[6]), AT_SYMLINK_NOFOLLOW) < 0)
			fail("rootfs: create device on %s: chown", path);
	}
	close(parent);
}

// op_symlink: dir, target, name, replace — existing entries are kept unless replace.
static void op_symlink(struct arg *a) {
	char *dir = str(&a[0]), *target = str(&a[1]), *name = str(&a[2]);
	int d = mkdirall(dir);
	if (d < 0)
		fail("rootfs: create %s", dir);
	if (u64(&a[3]) && clear_entry(d, name, name)) {
		close(d);
		return;
	}
	if (symlinkat(target, d, name) < 0 && errno != EEXIST)
		fail("rootfs: symlink on %s/%s", dir, name);
	close(d);
}

static void op_hooks(void) {
	send_kind("hooks");
	char line[256];
	size_t n = 0;
	for (;;) {
		char c;
		read_sock(&c, 1);
		if (c == '\n')
			break;
		if (n < sizeof(line) - 1)
			line[n++] = c;
	}
	line[n] = '\0';
	if (strstr(line, "\"resume\"") == NULL) {
		errno = 0;
		fail("handshake: got %s, want resume", line);
	}
}

static void op_pivot(void) {
	int oldroot = open("/", O_DIRECTORY | O_PATH | O_CLOEXEC);
	if (oldroot < 0)
		fail("rootfs: open old root");
	if (fchdir(root_fd) < 0)
		fail("rootfs: chdir to rootfs");
	if (syscall(SYS_pivot_root, ".", ".") < 0)
		fail("rootfs: pivot_root");
	if (fchdir(oldroot) < 0)
		fail("rootfs: chdir to old root");
	// The old root may still be a peer of the host's mounts: unmounting a peer propagates.
	if (mount("", ".", "", MS_SLAVE | MS_REC, "") < 0)
		fail("rootfs: make old root rslave");
	if (umount2(".", MNT_DETACH) < 0)
		fail("rootfs: unmount old root");
	if (chdir("/") < 0)
		fail("rootfs: chdir /");
	close(oldroot);
	close(root_fd);
	root_fd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (root_fd < 0)
		fail("rootfs: open /");
}

static void write_file(const char *path, const char *data, const char *what) {
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		fail("%s", what);
	size_t len = strlen(data);
	if (write(fd, data, len) != (ssize_t)len)
		fail("%s", what);
	close(fd);
}

// op_readonly: path — a recursive self-bind whose top is read-only; missing paths are skipped.
static void op_readonly(struct arg *a) {
	char *path = str(&a[0]);
	int f = oat2(root_fd, path, O_PATH);
	if (f < 0) {
		if (errno == ENOENT)
			return;
		fail("rootfs: readonly on %s", path);
	}
	int tree = clone_tree(f, 1);
	if (tree < 0 || set_attr(tree, MOUNT_ATTR_RDONLY, 0, 1) < 0 || attach(tree, f) < 0)
		fail("rootfs: readonly on %s", path);
	close(tree);
	close(f);
}

static int null_fd = -1;

// op_mask: path — a directory is covered by an empty read-only tmpfs, anything else by the
// container's /dev/null, proved to be the 1:3 device first (CVE-2025-31133).
static void op_mask(struct arg *a) {
	char *path = str(&a[0]);
	int f = oat2(root_fd, path, O_PATH);
	if (f < 0) {
		if (errno == ENOENT)
			return;
		fail("rootfs: mask on %s", path);
	}
	struct stat st;
	if (fstat(f, &st) < 0)
		fail("rootfs: mask on %s", path);
	int mfd;
	if (S_ISDIR(st.st_mode)) {
		mfd = fs_new("tmpfs", "tmpfs", NULL, MOUNT_ATTR_RDONLY);
	} else {
		if (null_fd < 0) {
			null_fd = open("/dev/null", O_PATH | O_NOFOLLOW | O_CLOEXEC);
			struct stat ns;
			if (null_fd < 0 || fstat(null_fd, &ns) < 0 || !S_ISCHR(ns.st_mode) || major(ns.st_rdev) != 1 || minor(ns.st_rdev) != 3) {
				errno = 0;
				fail("rootfs: mask on %s: /dev/null is not the null device", path);
			}
		}
		mfd = clone_tree(null_fd, 0);
	}
	if (mfd < 0 || attach(mfd, f) < 0)
		fail("rootfs: mask on %s", path);
	close(mfd);
	close(f);
}

// op_caps: bounding, effective, permitted, inheritable, ambient (bit masks), last cap, uid,
// gid, groups (u32 array), umask (or -1) — the order of runtime/initproc's dropPrivileges.
static void op_caps(struct arg *a) {
	uint64_t bounding = u64(&a[0]), eff = u64(&a[1]), perm = u64(&a[2]), inh = u64(&a[3]), amb = u64(&a[4]);
	int last = (int)u64(&a[5]);
	for (int c = 0; c <= last; c++)
		if (!(bounding & (1ULL << c)) && prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0 && errno != EINVAL)
			fail("apply capability bounding set");
	if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
		fail("keep capabilities");
	size_t ngroups = a[8].len / 4;
	gid_t *groups = calloc(ngroups + 1, sizeof(gid_t));
	if (groups == NULL)
		fail("plan: out of memory");
	for (size_t i = 0; i < ngroups; i++) {
		uint32_t g;
		memcpy(&g, a[8].p + i * 4, 4);
		groups[i] = g;
	}
	if (setgroups(ngroups, groups) < 0 && !(ngroups == 0 && errno == EPERM))
		fail("setgroups");
	gid_t gid = (gid_t)u64(&a[7]);
	uid_t uid = (uid_t)u64(&a[6]);
	if (syscall(SYS_setresgid, gid, gid, gid) < 0)
		fail("setgid %u", gid);
	if (syscall(SYS_setresuid, uid, uid, uid) < 0)
		fail("setuid %u", uid);
	int64_t um = (int64_t)u64(&a[9]);
	if (um >= 0)
		umask((mode_t)um);
	if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0)
		fail("keep capabilities");
	struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
	struct __user_cap_data_struct data[2] = {
	    {.effective = (uint32_t)eff, .permitted = (uint32_t)perm, .inheritable = (uint32_t)inh},
	    {.effective = (uint32_t)(eff >> 32), .permitted = (uint32_t)(perm >> 32), .inheritable = (uint32_t)(inh >> 32)},
	};
	if (syscall(SYS_capset, &hdr, data) < 0)
		fail("apply capabilities");
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
		fail("clear ambient capabilities");
	for (int c = 0; c <= last; c++)
		if ((amb & (1ULL << c)) && prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, c, 0, 0) < 0)
			fail("raise ambient capability %d", c);
}

static void op_seccomp(struct arg *a) {
	struct sock_fprog prog = {.len = (unsigned short)(a[0].len / sizeof(struct sock_filter)), .filter = (struct sock_filter *)(void *)str(&a[0])};
	if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, (unsigned)u64(&a[1]), &prog) < 0)
		fail("load seccomp filter");
}

// op_lookpath: name, PATH — execvp's search, done before start so a missing program fails
// `create`, as with the Go init.
static int executable(const char *p) {
	struct stat st;
	if (stat(p, &st) < 0)
		return -1;
	if (S_ISDIR(st.st_mode)) {
		errno = EISDIR;
		return -1;
	}
	if (!(st.st_mode & 0111)) {
		errno = EACCES;
		return -1;
	}
	return 0;
}

static void op_lookpath(struct arg *a) {
	char *name = str(&a[0]), *path = str(&a[1]);
	if (strchr(name, '/')) {
		if (executable(name) < 0)
			fail("exec \"%s\"", name);
		snprintf(exec_path, sizeof(exec_path), "%s", name);
		return;
	}
	for (char *dir = path;; ) {
		char *end = strchr(dir, ':');
		if (end)
			*end = '\0';
		snprintf(exec_path, sizeof(exec_path), "%s/%s", *dir ? dir : ".", name);
		if (executable(exec_path) == 0)
			return;
		if (!end)
			break;
		dir = end + 1;
	}
	errno = 0;
	fail("exec \"%s\": executable file not found in $PATH", name);
}

static void op_cwd(struct arg *a) {
	char *cwd = str(&a[0]);
	if (chdir(cwd) < 0)
		fail("chdir to cwd \"%s\"", cwd);
	// A cwd reached through a descriptor leaked from the host is outside our root
	// (CVE-2024-21626): the kernel then reports "(unreachable)/...".
	char wd[4096];
	if (getcwd(wd, sizeof(wd)) == NULL || wd[0] != '/') {
		errno = 0;
		fail("cwd \"%s\" is outside the container root", cwd);
	}
}

// op_close_inherited: min, keep... — descriptors the runtime's caller passed on by mistake
// (no CLOEXEC) are closed; ours and the preserved ones stay.
static void op_close_inherited(struct arg *a, int argc) {
	int min = (int)u64(&a[0]);
	DIR *d = opendir("/proc/self/fd");
	if (d == NULL)
		return;
	int dfd = dirfd(d);
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		int fd = atoi(e->d_name);
		if (fd < min || fd == dfd)
			continue;
		int keep = 0;
		for (int i = 1; i < argc; i++)
			if ((int)u64(&a[i]) == fd)
				keep = 1;
		int flags = fcntl(fd, F_GETFD);
		if (!keep && flags >= 0 && !(flags & FD_CLOEXEC))
			close(fd);
	}
	closedir(d);
}

static void op_wait_fifo(struct arg *a) {
	int fd = (int)u64(&a[0]);
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	int w = open(path, O_WRONLY | O_CLOEXEC);
	if (w < 0)
		fail("open exec fifo");
	close(fd);
	if (write(w, "0", 1) != 1)
		fail("write exec fifo");
	close(w);
}

// reset_ignored_signals gives the program default dispositions for what was ignored (execve
// keeps ignored signals): whatever started the engine must not decide that a container
// cannot be interrupted. Raw rt_sigaction, as libc's sigaction refuses its internal signals
// (32 and 33), which a Go parent can leave ignored.
struct ksigaction {
	void *handler;
	unsigned long flags;
	void *restorer;
	uint64_t mask;
};

static void reset_ignored_signals(void) {
	for (int sig = 1; sig <= 64; sig++) {
		if (sig == SIGKILL || sig == SIGSTOP)
			continue;
		struct ksigaction old = {0}, dfl = {0};
		if (syscall(SYS_rt_sigaction, sig, NULL, &old, sizeof(uint64_t)) == 0 && old.handler == (void *)SIG_IGN)
			syscall(SYS_rt_sigaction, sig, &dfl, NULL, sizeof(uint64_t));
	}
}

static void op_exec(struct arg *a) {
	char **argv = list(&a[0], NULL);
	char **envp = list(&a[1], NULL);
	reset_ignored_signals();
	// The program starts with no signal blocked, whatever the runtime's fork left.
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	execve(exec_path, argv, envp);
	fail("exec %s", argv[0] ? argv[0] : "");
}

// read_part reads one part of the plan: the runtime sends the steps that need the process in
// its cgroups (cgroup mounts, cgroup namespace) as a second part, once it has moved it there,
// so the first part runs meanwhile.
static char *read_part(uint32_t *total) {
	char hdr[8];
	read_sock(hdr, sizeof(hdr));
	if (memcmp(hdr, "BPL1", 4) != 0) {
		errno = 0;
		fail("plan: bad header");
	}
	memcpy(total, hdr + 4, 4);
	char *buf = malloc(*total ? *total : 1);
	if (buf == NULL)
		fail("plan: out of memory");
	read_sock(buf, *total);
	return buf;
}

void berth_run_plan(int sync_fd) {
	psync = sync_fd;
	// A fault here must kill the process (the runtime then sees EOF), never loop.
	int fatal[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT};
	for (size_t i = 0; i < sizeof(fatal) / sizeof(fatal[0]); i++)
		signal(fatal[i], SIG_DFL);
	// A reader gone from the socket or the fifo is an error to report, not a silent death
	// (reset before exec with the other ignored signals).
	signal(SIGPIPE, SIG_IGN);
	uint32_t total, off = 0;
	char *buf = read_part(&total);
	while (off + 4 <= total) {
		uint16_t op, argc;
		memcpy(&op, buf + off, 2);
		memcpy(&argc, buf + off + 2, 2);
		off += 4;
		struct arg a[MAX_ARGS];
		if (argc > MAX_ARGS) {
			errno = 0;
			fail("plan: op %u has %u arguments", op, argc);
		}
		for (int i = 0; i < argc; i++) {
			uint32_t len;
			if (off + 4 > total)
				break;
			memcpy(&len, buf + off, 4);
			off += 4;
			if (len > total - off) {
				errno = 0;
				fail("plan: truncated");
			}
			a[i].p = buf + off;
			a[i].len = len;
			off += len;
		}
		errno = 0;
		switch (op) {
		case OP_CLOSE_INHERITED:
			op_close_inherited(a, argc);
			break;
		case OP_UNSHARE:
			if (unshare((int)u64(&a[0])) < 0)
				fail("unshare namespaces");
			break;
		case OP_MOUNT: {
			char *src = str(&a[0]), *dst = str(&a[1]), *fstype = str(&a[2]), *what = str(&a[4]);
			if (mount(*src ? src : NULL, dst, *fstype ? fstype : NULL, (unsigned long)u64(&a[3]), NULL) < 0)
				fail("rootfs: %s", what);
			break;
		}
		case OP_OPEN_ROOT:
			root_fd = open(str(&a[0]), O_PATH | O_DIRECTORY | O_CLOEXEC);
			if (root_fd < 0)
				fail("rootfs: open rootfs");
			break;
		case OP_MOUNT_FS:
			op_mount_fs(a);
			break;
		case OP_BIND:
			op_bind(a);
			break;
		case OP_CGROUP_TMPFS:
			op_cgroup_tmpfs(a);
			break;
		case OP_CGROUP_HIER:
			op_cgroup_hier(a);
			break;
		case OP_CGROUP_DONE:
			op_cgroup_done(a);
			break;
		case OP_MKNOD:
			op_mknod(a);
			break;
		case OP_SYMLINK:
			op_symlink(a);
			break;
		case OP_HOOKS:
			op_hooks();
			break;
		case OP_PIVOT:
			op_pivot();
			break;
		case OP_WRITE: {
			char *path = str(&a[0]), *data = str(&a[1]), *what = str(&a[2]);
			write_file(path, data, what);
			break;
		}
		case OP_READONLY:
			op_readonly(a);
			break;
		case OP_MASK:
			op_mask(a);
			break;
		case OP_RO_ROOT:
			if (set_attr(root_fd, MOUNT_ATTR_RDONLY, 0, 0) < 0)
				fail("rootfs: readonly root");
			break;
		case OP_CHDIR_ROOT:
			if (chdir("/") < 0)
				fail("rootfs: chdir /");
			break;
		case OP_HOSTNAME: {
			char *h = str(&a[0]);
			if (sethostname(h, strlen(h)) < 0)
				fail("set hostname");
			break;
		}
		case OP_DOMAINNAME: {
			char *h = str(&a[0]);
			if (setdomainname(h, strlen(h)) < 0)
				fail("set domainname");
			break;
		}
		case OP_KEYRING:
			// A fresh session keyring; a disabled or restricted keyring is not fatal.
			if (syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, "_ses.berth", 0, 0, 0) < 0 && errno != ENOSYS && errno != EPERM && errno != EACCES)
				fail("join session keyring");
			break;
		case OP_RLIMIT: {
			struct rlimit rl = {.rlim_cur = u64(&a[1]), .rlim_max = u64(&a[2])};
			if (setrlimit((int)u64(&a[0]), &rl) < 0)
				fail("set %s", str(&a[3]));
			break;
		}
		case OP_IOPRIO:
			if (syscall(SYS_ioprio_set, 1, 0, (int)u64(&a[0])) < 0)
				fail("set io priority");
			break;
		case OP_LOOKPATH:
			op_lookpath(a);
			break;
		case OP_CWD:
			op_cwd(a);
			break;
		case OP_SECCOMP:
			op_seccomp(a);
			break;
		case OP_CAPS:
			op_caps(a);
			break;
		case OP_NNP:
			if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
				fail("set no_new_privs");
			break;
		case OP_CLOSE_EXTRA:
			if (syscall(SYS_close_range, (unsigned)u64(&a[0]), ~0U, CLOSE_RANGE_CLOEXEC) < 0)
				fail("mark descriptors close-on-exec");
			break;
		case OP_READY:
			send_kind("ready");
			ready_sent = 1;
			break;
		case OP_WAIT_FIFO:
			op_wait_fifo(a);
			break;
		case OP_EXEC:
			op_exec(a);
			break;
		case OP_MORE: // nothing refers into the finished part any more
			free(buf);
			buf = read_part(&total);
			off = 0;
			break;
		default:
			fail("plan: unknown operation %u", op);
		}
	}
	errno = 0;
	fail("plan: ended without exec");
}
