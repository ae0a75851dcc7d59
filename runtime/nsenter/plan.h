// Operation codes of the init plan; runtime/initplan/ops.go has the same list (a test there
// reads this file to keep them equal).
#ifndef BERTH_PLAN_H
#define BERTH_PLAN_H

#include <stdarg.h>
#include <stddef.h>

#define OP_CLOSE_INHERITED 1
#define OP_UNSHARE 2
#define OP_MOUNT 3
#define OP_OPEN_ROOT 4
#define OP_MOUNT_FS 5
#define OP_BIND 6
#define OP_CGROUP_TMPFS 7
#define OP_CGROUP_HIER 8
#define OP_CGROUP_DONE 9
#define OP_MKNOD 10
#define OP_SYMLINK 11
#define OP_HOOKS 12
#define OP_PIVOT 13
#define OP_WRITE 14
#define OP_READONLY 15
#define OP_MASK 16
#define OP_RO_ROOT 17
#define OP_CHDIR_ROOT 18
#define OP_HOSTNAME 19
#define OP_DOMAINNAME 20
#define OP_KEYRING 21
#define OP_RLIMIT 22
#define OP_IOPRIO 23
#define OP_LOOKPATH 24
#define OP_CWD 25
#define OP_SECCOMP 26
#define OP_CAPS 27
#define OP_NNP 28
#define OP_CLOSE_EXTRA 29
#define OP_READY 30
#define OP_WAIT_FIFO 31
#define OP_EXEC 32
#define OP_MORE 33

void berth_run_plan(int sync_fd) __attribute__((noreturn));
void berth_write_all(int fd, const void *buf, size_t len);
void berth_read_all(int fd, void *buf, size_t len);
size_t berth_errmsg(char *msg, size_t size, int err, const char *fmt, va_list ap);

#endif
