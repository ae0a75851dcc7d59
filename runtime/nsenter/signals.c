// Signal forwarding for a foreground `run` or `exec`: every signal the runtime gets that the
// container's process should get instead is passed on to it with kill(2), from a plain C
// handler. Signals that come before that process exists are held (one of each, as the kernel
// holds standard signals) and passed on when berth_forward_to names it.
//
// Why C: Go's os/signal serves a caught signal on a thread of its own, and arming it costs a
// round trip to that thread per signal plus two more threads at start; for a runtime that lives
// for one short container that was 5% of a `run` of /bin/true (bench/RESULTS.md). A handler
// installed with sigaction after the Go runtime has started replaces Go's for that signal only;
// it runs on the signal stack Go gives every thread (SA_ONSTACK) and calls only
// async-signal-safe functions.
//
// Not forwarded, and left to Go: the signals Go itself relies on (SIGURG for preemption,
// SIGPROF, SIGPIPE, the synchronous faults that become panics: SIGSEGV SIGBUS SIGFPE SIGILL
// SIGTRAP SIGSYS), SIGCHLD (our own children), SIGWINCH (a terminal's size is not a request to
// the program), glibc's internal 32 and 33, and SIGKILL and SIGSTOP, which nobody can catch.
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>

static int fwd_pid;           // 0 until the target is known
static uint64_t fwd_pending;  // bit sig-1: caught and not passed on yet

static int forwarded(int sig)
{
	switch (sig) {
	case SIGKILL: case SIGSTOP: case SIGURG: case SIGPROF: case SIGPIPE: case SIGSEGV:
	case SIGBUS: case SIGFPE: case SIGILL: case SIGTRAP: case SIGSYS: case SIGCHLD:
	case SIGWINCH: case 32: case 33:
		return 0;
	}
	return 1;
}

// drain passes on every held signal. Whoever sees the target set after adding a bit drains,
// so a signal caught while berth_forward_to runs is never left behind.
static void drain(int pid)
{
	uint64_t bits = __atomic_exchange_n(&fwd_pending, 0, __ATOMIC_SEQ_CST);
	for (int sig = 1; bits != 0; sig++, bits >>= 1)
		if (bits & 1)
			kill(pid, sig);
}

static void handler(int sig)
{
	int saved = errno;
	__atomic_fetch_or(&fwd_pending, (uint64_t)1 << (sig - 1), __ATOMIC_SEQ_CST);
	int pid = __atomic_load_n(&fwd_pid, __ATOMIC_SEQ_CST);
	if (pid > 0)
		drain(pid);
	errno = saved;
}

int berth_forward_signals(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = handler;
	sa.sa_flags = SA_ONSTACK | SA_RESTART;
	sigfillset(&sa.sa_mask);
	for (int sig = 1; sig <= 64; sig++)
		if (forwarded(sig) && sigaction(sig, &sa, NULL) != 0)
			return errno;
	return 0;
}

// berth_forward_to sets the target; 0 stops forwarding (signals are held again), so that none
// reaches a pid that was reaped and may be reused. Never a negative pid: kill(-1) is everyone.
void berth_forward_to(int pid)
{
	if (pid < 0)
		pid = 0;
	__atomic_store_n(&fwd_pid, pid, __ATOMIC_SEQ_CST);
	if (pid > 0)
		drain(pid);
}
