// The namespace constructor: runs before the Go runtime starts, in every berth process, and
// does nothing unless _BERTH_SYNC names a sync socket (the runtime's init and exec children).
//
// Why C: Go starts several threads before main, and the kernel refuses setns(CLONE_NEWUSER)
// and setns/unshare(CLONE_NEWNS) for a multi-threaded process (mount namespaces hang off
// fs_struct, which Go's threads share). A constructor runs while the process still has a single
// thread, so it can join and create every namespace; the Go code that follows (runtime/initproc)
// then lives entirely inside them.
//
// Environment (set by runtime/process.go, removed before the container program runs):
//   _BERTH_SYNC=<fd>          the child end of the sync socketpair
//   _BERTH_JOIN=<t>:<path>,.. namespaces to join, t in user,mnt,pid,net,ipc,uts,cgroup,time
//   _BERTH_UNSHARE=<flags>    CLONE_NEW* flags of namespaces to create (decimal); 0 when the
//                             runtime made them with clone flags (this process is then already
//                             in them, pid 1 of a new pid namespace, and nothing forks)
//   _BERTH_TIMENS=<offsets>   lines "monotonic|boottime <secs> <nanosecs>" for a new time ns
//   _BERTH_PLAN=1             the container is set up by plan.c, not by Go (see there)
//
// Protocol on the sync socket, before Go starts (one byte tags, native-endian int32):
//   child  -> parent 'U'                    (new user ns only) write my uid_map/gid_map
//   parent -> child  'u'                    maps written
//   child  -> parent 'P' int32              pid of the process that will run Go (host view);
//                                           0 when that is the process the runtime started
//                                           (no fork here; its own pid may be 1 of a pid
//                                           namespace clone made)
//   child  -> parent 'E' int32 len, bytes   fatal error text; the child exits 1
// A new or joined pid (or time) namespace only applies to children, so after joining and
// unsharing we fork once: the intermediate reports the grandchild's pid and exits; the
// grandchild carries on into Go. After 'P' the socket belongs to runtime/handshake.
//
// The cgroup namespace is not created here: on cgroup v1 the parent moves the final process
// into its cgroup only after 'P' (so that creating the cgroup overlaps with our start-up), and
// a cgroup namespace takes its root from the cgroup at unshare time; runtime/initproc
// unshares it once the parent says the process is in place.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <unistd.h>

#include "plan.h"

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif
#ifndef CLONE_NEWCGROUP
#define CLONE_NEWCGROUP 0x02000000
#endif

static int sync_fd = -1;

// berth_write_all and berth_read_all move whole buffers over the sync socket, or exit: with
// the runtime gone there is nobody to report to.
void berth_write_all(int fd, const void *buf, size_t len) {
	const char *p = buf;
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			_exit(1);
		p += n;
		len -= (size_t)n;
	}
}

void berth_read_all(int fd, void *buf, size_t len) {
	char *p = buf;
	while (len > 0) {
		ssize_t n = read(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			_exit(1);
		p += n;
		len -= (size_t)n;
	}
}

static void write_all(const void *buf, size_t len) { berth_write_all(sync_fd, buf, len); }
static void read_all(void *buf, size_t len) { berth_read_all(sync_fd, buf, len); }

// berth_errmsg formats fmt into msg and appends ": <errno text>" when err is set, spelt in
// lower case as Go spells it (the engine matches "no such file or directory" and "permission
// denied" to choose exit codes 127 and 126). It returns the length.
size_t berth_errmsg(char *msg, size_t size, int err, const char *fmt, va_list ap) {
	int n = vsnprintf(msg, size, fmt, ap);
	if (n < 0)
		n = 0;
	if ((size_t)n >= size)
		n = (int)size - 1;
	if (err) {
		snprintf(msg + n, size - (size_t)n, ": %s", strerror(err));
		if ((size_t)n + 2 < size && msg[n + 2] >= 'A' && msg[n + 2] <= 'Z')
			msg[n + 2] = (char)(msg[n + 2] - 'A' + 'a');
	}
	return strlen(msg);
}

static void bail(const char *fmt, ...) {
	char msg[512];
	int saved = errno;
	va_list ap;
	va_start(ap, fmt);
	size_t n = berth_errmsg(msg, sizeof(msg), saved, fmt, ap);
	va_end(ap);
	char tag = 'E';
	int32_t len = n;
	write_all(&tag, 1);
	write_all(&len, sizeof(len));
	write_all(msg, n);
	_exit(1);
}

static int ns_flag(const char *name, size_t len) {
	static const struct {
		const char *name;
		int flag;
	} table[] = {
	    {"user", CLONE_NEWUSER}, {"mnt", CLONE_NEWNS},   {"pid", CLONE_NEWPID},
	    {"net", CLONE_NEWNET},   {"ipc", CLONE_NEWIPC},  {"uts", CLONE_NEWUTS},
	    {"cgroup", CLONE_NEWCGROUP}, {"time", CLONE_NEWTIME},
	};
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
		if (strlen(table[i].name) == len && strncmp(table[i].name, name, len) == 0)
			return table[i].flag;
	return 0;
}

#define MAX_JOIN 16

// With _BERTH_PLAN the runtime sends a plan (plan.c) instead of a Go configuration: the
// container is set up here and the process execs its program without ever starting Go.
static void run_plan_if_asked(void) {
	const char *p = getenv("_BERTH_PLAN");
	if (p != NULL && *p != '\0')
		berth_run_plan(sync_fd);
}

__attribute__((constructor)) static void berth_nsenter(void) {
	const char *s = getenv("_BERTH_SYNC");
	if (s == NULL || *s == '\0')
		return;
	sync_fd = atoi(s);

	char tag;
	// Open every namespace before joining any: once we are in another mount namespace
	// the paths would resolve differently.
	int fds[MAX_JOIN], flags[MAX_JOIN], njoin = 0, forks = 0;
	const char *join = getenv("_BERTH_JOIN");
	while (join != NULL && *join != '\0') {
		const char *colon = strchr(join, ':');
		if (colon == NULL)
			bail("nsenter: bad join list");
		const char *end = strchr(colon, ',');
		size_t plen = end ? (size_t)(end - colon - 1) : strlen(colon + 1);
		char path[4096];
		if (plen >= sizeof(path) || njoin >= MAX_JOIN)
			bail("nsenter: join list too long");
		memcpy(path, colon + 1, plen);
		path[plen] = '\0';
		int flag = ns_flag(join, (size_t)(colon - join));
		if (flag == 0)
			bail("nsenter: unknown namespace type in %s", join);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			bail("nsenter: open namespace %s", path);
		fds[njoin] = fd;
		flags[njoin] = flag;
		njoin++;
		if (flag == CLONE_NEWPID || flag == CLONE_NEWTIME)
			forks = 1;
		join = end ? end + 1 : NULL;
	}

	// The user namespace first: it grants the capabilities needed to join the others.
	for (int pass = 0; pass < 2; pass++) {
		for (int i = 0; i < njoin; i++) {
			if ((flags[i] == CLONE_NEWUSER) != (pass == 0))
				continue;
			if (setns(fds[i], flags[i]) < 0)
				bail("nsenter: join namespace %d", flags[i]);
			close(fds[i]);
		}
	}

	const char *u = getenv("_BERTH_UNSHARE");
	int unshare_flags = u ? atoi(u) : 0;
	if (unshare_flags & CLONE_NEWUSER) {
		if (unshare(CLONE_NEWUSER) < 0)
			bail("nsenter: unshare user namespace");
		// Only the parent, outside, may write our id maps.
		write_all("U", 1);
		read_all(&tag, 1);
		if (tag != 'u')
			bail("nsenter: id maps were not written");
		if (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0)
			bail("nsenter: become root in the user namespace (is 0 mapped?)");
		// unshare(CLONE_NEWUSER) leaves us non-dumpable on some setups; the parent
		// needs /proc/<pid> to be ours for the rest of the handshake.
		prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
	}
	int rest = unshare_flags & ~CLONE_NEWUSER;
	if (rest != 0 && unshare(rest) < 0)
		bail("nsenter: unshare namespaces 0x%x", rest);
	if (rest & (CLONE_NEWPID | CLONE_NEWTIME))
		forks = 1;
	// A new time namespace takes its clock offsets before any process enters it (the
	// fork below is the first).
	const char *offsets = getenv("_BERTH_TIMENS");
	if ((rest & CLONE_NEWTIME) && offsets != NULL && *offsets != '\0') {
		int fd = open("/proc/self/timens_offsets", O_WRONLY | O_CLOEXEC);
		if (fd < 0)
			bail("nsenter: open timens_offsets");
		size_t len = strlen(offsets);
		if (write(fd, offsets, len) != (ssize_t)len)
			bail("nsenter: write timens_offsets");
		close(fd);
	}

	int32_t pid = 0;
	if (forks) {
		pid_t child = fork();
		if (child < 0)
			bail("nsenter: fork into the pid namespace");
		if (child > 0) {
			pid = child;
			write_all("P", 1);
			write_all(&pid, sizeof(pid));
			_exit(0);
		}
		// The grandchild carries on into the plan or into Go. If the runtime dies before
		// sending our configuration, the read sees EOF and we exit.
		run_plan_if_asked();
		return;
	}
	write_all("P", 1);
	write_all(&pid, sizeof(pid));
	run_plan_if_asked();
}
