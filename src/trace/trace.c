/* trace: see trace.h. The pieces, in the order a traced spawn meets them:
 * the filter (built by trace_new, before fork, because the child may not
 * allocate), its installation in the child (trace_child_install, which
 * hands the listener back over a socketpair), the thread that serves the
 * listener (trace_parent_attach starts it), and the table the thread
 * records into (one entry per path, first-access order).
 *
 * The serving thread answers every notification with
 * SECCOMP_USER_NOTIF_FLAG_CONTINUE: the syscall then runs as if it had
 * never been stopped, whatever the thread managed to read. A stopped task
 * waits for that answer, so the thread does as little as it can: one
 * process_vm_readv per path, one readlink when the path is relative, no
 * allocation for a path already recorded. What it reads may be changed by
 * another thread of the task before the kernel reads it again: that is
 * fine for observing (nothing is enforced), and is why trace.h says the
 * paths are what was asked for.
 *
 * Most stops are spared by the preload library (cashet-trace.so, see
 * src/preload/trace-preload.c and preload.h): the calls it records itself
 * carry the run's cookie, which the filter lets through, and its records
 * come through a memfd every process maps (a ring, see preload.h) that the
 * serving thread reads every LOG_DRAIN_MS and trace_finish reads last
 * (log_drain). */
#include "trace/trace.h"
#include "trace/preload.h"
#include "util/util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>

#if !defined(SECCOMP_IOCTL_NOTIF_RECV) || !defined(SECCOMP_USER_NOTIF_FLAG_CONTINUE) ||                                \
	!defined(SECCOMP_FILTER_FLAG_NEW_LISTENER) || !defined(SECCOMP_GET_NOTIF_SIZES)
#define TRACE_UNSUPPORTED                                                                                              \
	"cashet was built with kernel headers that lack seccomp user notification (linux-libc-dev >= 5.5 needed)"
#elif defined(__x86_64__)
#define TRACE_AUDIT_ARCH AUDIT_ARCH_X86_64
#ifndef __X32_SYSCALL_BIT
#define __X32_SYSCALL_BIT 0x40000000
#endif
#elif defined(__aarch64__)
#define TRACE_AUDIT_ARCH AUDIT_ARCH_AARCH64
#else
#define TRACE_UNSUPPORTED "tracing is implemented for x86_64 and aarch64 only"
#endif

#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif

/* Linux 6.6 (the headers here may be older; the ioctl fails harmlessly on
 * an older kernel): the listener wakes the serving thread on the CPU of the
 * task that stopped, and the task on the thread's when answered, instead of
 * bouncing each notification between CPUs. */
#if defined(SECCOMP_IOW) && !defined(SECCOMP_IOCTL_NOTIF_SET_FLAGS)
#define SECCOMP_IOCTL_NOTIF_SET_FLAGS SECCOMP_IOW(4, __u64)
#endif
#ifndef SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP
#define SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP (1UL << 0)
#endif

#ifdef TRACE_UNSUPPORTED

struct trace {
	int unused;
};

int trace_new(struct trace **out)
{
	*out = NULL;
	return err_set("cannot trace file accesses: %s", TRACE_UNSUPPORTED);
}

void trace_environ(const struct trace *t, char *const *env, struct strvec *out)
{
	extern char **environ;
	for (env = env ? env : environ; *env; env++)
		sv_push(out, *env);
}

void trace_child_install(struct trace *t)
{
}

int trace_listen(struct trace *t)
{
	return err_set("cannot trace file accesses: %s", TRACE_UNSUPPORTED);
}

int trace_parent_attach(struct trace *t)
{
	return err_set("cannot trace file accesses: %s", TRACE_UNSUPPORTED);
}

void trace_finish(struct trace *t)
{
}

int trace_available(void)
{
	err_set("cannot trace file accesses: %s", TRACE_UNSUPPORTED);
	return 0;
}

const struct trace_event *trace_events(const struct trace *t, size_t *n)
{
	*n = 0;
	return NULL;
}

const char *trace_blind(const struct trace *t)
{
	return NULL;
}

void trace_set_exec_hook(struct trace *t, const struct trace_exec_hook *hook)
{
	(void)t;
	(void)hook;
}

void trace_set_read_hook(struct trace *t, void (*fn)(void *ctx, const char *path), void *ctx)
{
	(void)t;
	(void)fn;
	(void)ctx;
}

void trace_free(struct trace *t)
{
	free(t);
}

#else

/* How a syscall names what it touches. */
enum sys_kind {
	K_PATH,    /* path argument(s), each relative to a directory fd or the cwd */
	K_OPEN,    /* a path and open flags, which say the access */
	K_OPENAT2, /* a path and a struct open_how in the task's memory */
	K_FD,      /* a file descriptor (getdents) */
	K_BLIND,   /* something tracing cannot follow (io_uring) */
	K_CWD,     /* changes the cwd or the root: nothing to record, a cwd cached by the library to drop */
};

struct sys_desc {
	int nr;
	unsigned char kind;        /* enum sys_kind */
	signed char dirfd, path;   /* argument indexes; dirfd -1: relative to the cwd */
	signed char dirfd2, path2; /* a second path (rename, link); path2 -1: none */
	signed char flags;         /* K_OPEN: the open flags; K_OPENAT2: the struct open_how */
	unsigned char access, access2;
	signed char empty_flags; /* the flags argument where AT_EMPTY_PATH lets the filter pass the call, or -1 */
};

#define SYS_PATH(nr, d, p, a)                                                                                          \
	{                                                                                                              \
		nr, K_PATH, d, p, -1, -1, -1, a, 0, -1                                                                 \
	}
#define SYS_PATH2(nr, d, p, a, d2, p2, a2)                                                                             \
	{                                                                                                              \
		nr, K_PATH, d, p, d2, p2, -1, a, a2, -1                                                                \
	}
#define SYS_STATAT(nr, d, p, e)                                                                                        \
	{                                                                                                              \
		nr, K_PATH, d, p, -1, -1, -1, TRACE_STAT, 0, e                                                         \
	}
#define SYS_OPEN(nr, kind, d, p, f)                                                                                    \
	{                                                                                                              \
		nr, kind, d, p, -1, -1, f, 0, 0, -1                                                                    \
	}

/* The syscalls the filter stops (the others never leave the kernel). A
 * link's existing name is looked at (STAT); a symlink's target is only a
 * string, not a lookup. */
static const struct sys_desc sys_table[] = {
#ifdef __NR_open
	SYS_OPEN(__NR_open, K_OPEN, -1, 0, 1),
#endif
#ifdef __NR_openat
	SYS_OPEN(__NR_openat, K_OPEN, 0, 1, 2),
#endif
#ifdef __NR_openat2
	SYS_OPEN(__NR_openat2, K_OPENAT2, 0, 1, 2),
#endif
#ifdef __NR_creat
	SYS_PATH(__NR_creat, -1, 0, TRACE_WRITE),
#endif
#ifdef __NR_execve
	SYS_PATH(__NR_execve, -1, 0, TRACE_EXEC),
#endif
#ifdef __NR_execveat
	SYS_PATH(__NR_execveat, 0, 1, TRACE_EXEC),
#endif
#ifdef __NR_stat
	SYS_PATH(__NR_stat, -1, 0, TRACE_STAT),
#endif
#ifdef __NR_lstat
	SYS_PATH(__NR_lstat, -1, 0, TRACE_STAT),
#endif
#ifdef __NR_newfstatat
	SYS_STATAT(__NR_newfstatat, 0, 1, 3),
#endif
#ifdef __NR_fstatat64
	SYS_STATAT(__NR_fstatat64, 0, 1, 3),
#endif
#ifdef __NR_statx
	SYS_STATAT(__NR_statx, 0, 1, 2),
#endif
#ifdef __NR_access
	SYS_PATH(__NR_access, -1, 0, TRACE_STAT),
#endif
#ifdef __NR_faccessat
	SYS_PATH(__NR_faccessat, 0, 1, TRACE_STAT),
#endif
#ifdef __NR_faccessat2
	SYS_PATH(__NR_faccessat2, 0, 1, TRACE_STAT),
#endif
#ifdef __NR_readlink
	SYS_PATH(__NR_readlink, -1, 0, TRACE_STAT),
#endif
#ifdef __NR_readlinkat
	SYS_PATH(__NR_readlinkat, 0, 1, TRACE_STAT),
#endif
#ifdef __NR_getdents
	{ __NR_getdents, K_FD, -1, 0, -1, -1, -1, TRACE_LIST, 0, -1 },
#endif
#ifdef __NR_getdents64
	{ __NR_getdents64, K_FD, -1, 0, -1, -1, -1, TRACE_LIST, 0, -1 },
#endif
#ifdef __NR_rename
	SYS_PATH2(__NR_rename, -1, 0, TRACE_REMOVE, -1, 1, TRACE_WRITE),
#endif
#ifdef __NR_renameat
	SYS_PATH2(__NR_renameat, 0, 1, TRACE_REMOVE, 2, 3, TRACE_WRITE),
#endif
#ifdef __NR_renameat2
	SYS_PATH2(__NR_renameat2, 0, 1, TRACE_REMOVE, 2, 3, TRACE_WRITE),
#endif
#ifdef __NR_unlink
	SYS_PATH(__NR_unlink, -1, 0, TRACE_REMOVE),
#endif
#ifdef __NR_unlinkat
	SYS_PATH(__NR_unlinkat, 0, 1, TRACE_REMOVE),
#endif
#ifdef __NR_rmdir
	SYS_PATH(__NR_rmdir, -1, 0, TRACE_REMOVE),
#endif
#ifdef __NR_mkdir
	SYS_PATH(__NR_mkdir, -1, 0, TRACE_WRITE),
#endif
#ifdef __NR_mkdirat
	SYS_PATH(__NR_mkdirat, 0, 1, TRACE_WRITE),
#endif
#ifdef __NR_truncate
	SYS_PATH(__NR_truncate, -1, 0, TRACE_WRITE),
#endif
#ifdef __NR_link
	SYS_PATH2(__NR_link, -1, 0, TRACE_STAT, -1, 1, TRACE_WRITE),
#endif
#ifdef __NR_linkat
	SYS_PATH2(__NR_linkat, 0, 1, TRACE_STAT, 2, 3, TRACE_WRITE),
#endif
#ifdef __NR_symlink
	SYS_PATH(__NR_symlink, -1, 1, TRACE_WRITE),
#endif
#ifdef __NR_symlinkat
	SYS_PATH(__NR_symlinkat, 1, 2, TRACE_WRITE),
#endif
#ifdef __NR_mknod
	SYS_PATH(__NR_mknod, -1, 0, TRACE_WRITE),
#endif
#ifdef __NR_mknodat
	SYS_PATH(__NR_mknodat, 0, 1, TRACE_WRITE),
#endif
#ifdef __NR_chdir
	{ __NR_chdir, K_CWD, -1, -1, -1, -1, -1, 0, 0, -1 },
#endif
#ifdef __NR_fchdir
	{ __NR_fchdir, K_CWD, -1, -1, -1, -1, -1, 0, 0, -1 },
#endif
#ifdef __NR_chroot
	{ __NR_chroot, K_CWD, -1, -1, -1, -1, -1, 0, 0, -1 },
#endif
#ifdef __NR_io_uring_setup
	{ __NR_io_uring_setup, K_BLIND, -1, -1, -1, -1, -1, 0, 0, -1 },
#endif
};
#define SYS_COUNT (sizeof(sys_table) / sizeof(*sys_table))

/* What serves a listener: all the detached thread of trace_finish gets. */
struct server {
	int listener;
	struct seccomp_notif *req; /* the kernel's sizes, which may exceed the headers' */
	struct seccomp_notif_resp *resp;
	size_t req_size, resp_size;
};

struct entry {
	uint64_t hash;
	size_t len;
};

struct trace {
	struct sock_filter *filter;
	struct sock_fprog prog;
	int sock[2]; /* the listener travels from the child's end [1] to ours [0] */
	int stop_fd; /* eventfd: trace_finish tells the thread to stop recording */
	struct server sv;
	pthread_t thread;
	int running; /* the thread was started and not joined yet */
	/* What the thread's receipt of the listener came to (trace_listen,
	 * trace_parent_attach): recvmsg's result, its errno, the child's
	 * errno from filter_install; posted once known. */
	sem_t received;
	ssize_t recv_n;
	int recv_errno, recv_e;
	int hangup; /* the listener had no user left when the thread stopped */

	/* The record: ev[i] and meta[i] for each path, in first-access order;
	 * slot is an open-addressed table of indexes + 1 (0: empty). */
	struct trace_event *ev;
	struct entry *meta;
	size_t n, alloc;
	uint32_t *slot;
	size_t nslot; /* a power of two, at least twice n */

	int blind;
	char blind_why[200];

	/* The preload library's side (cashet-trace.so): the log its records
	 * go to (a memfd, -1 without one), the cookie that lets its calls
	 * through the filter, and the library (NULL: none to load). */
	int log_fd;
	ino_t log_ino;
	unsigned char *log_map; /* the log mapped (preload.h) */
	uint64_t log_ring;      /* its ring's size */
	uint64_t cookie;
	char *preload;
	size_t preload_len;
	int64_t log_drained_at; /* now_ms() of the last read */
	int log_bad;

	const struct trace_exec_hook *exec_hook; /* or NULL */
	void (*read_hook)(void *ctx, const char *path);
	void *read_ctx;
	char *arg; /* an argument being read (ARG_BYTES), once allocated */
};

/* trace_available's probe, once per process. */
static pthread_once_t probe_once = PTHREAD_ONCE_INIT;
static int probe_ok;
static char probe_why[320];
static struct seccomp_notif_sizes notif_sizes;
static size_t page_size;

/* --- the record ------------------------------------------------------- */

static uint64_t path_hash(const char *s, size_t len)
{
	uint64_t h = 14695981039346656037ULL; /* FNV-1a: paths are short */
	for (size_t i = 0; i < len; i++)
		h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
	return h;
}

static void table_grow(struct trace *t)
{
	size_t nslot = t->nslot ? t->nslot * 2 : 256;
	uint32_t *slot = xcalloc(nslot, sizeof(*slot));
	for (size_t i = 0; i < t->n; i++) {
		size_t j = (size_t)t->meta[i].hash & (nslot - 1);
		while (slot[j])
			j = (j + 1) & (nslot - 1);
		slot[j] = (uint32_t)(i + 1);
	}
	free(t->slot);
	t->slot = slot;
	t->nslot = nslot;
}

/* For the read hook: a path first opened for reading or executed (added,
 * new access bits; had, what it already had), never written yet. */
static int read_only(unsigned added, unsigned had)
{
	return (added & (TRACE_READ | TRACE_EXEC)) && !(had & (TRACE_READ | TRACE_EXEC)) &&
	       !((added | had) & (TRACE_WRITE | TRACE_REMOVE));
}

static void record(struct trace *t, const char *path, size_t len, unsigned access)
{
	/* the dynamic loader reading the preload library is cashet's doing */
	if (t->preload && len == t->preload_len && !(access & (TRACE_WRITE | TRACE_REMOVE)) &&
	    !memcmp(path, t->preload, len))
		return;
	uint64_t h = path_hash(path, len);
	if ((t->n + 1) * 2 > t->nslot)
		table_grow(t);
	size_t mask = t->nslot - 1, j = (size_t)h & mask;
	for (; t->slot[j]; j = (j + 1) & mask) {
		size_t i = t->slot[j] - 1;
		if (t->meta[i].hash == h && t->meta[i].len == len && !memcmp(t->ev[i].path, path, len)) {
			if (t->read_hook && read_only(access & ~t->ev[i].access, t->ev[i].access))
				t->read_hook(t->read_ctx, t->ev[i].path);
			t->ev[i].access |= access;
			return;
		}
	}
	if (t->n == t->alloc) {
		t->alloc = t->alloc ? t->alloc * 2 : 128;
		t->ev = xrealloc(t->ev, t->alloc * sizeof(*t->ev));
		t->meta = xrealloc(t->meta, t->alloc * sizeof(*t->meta));
	}
	t->ev[t->n].path = xstrndup(path, len);
	t->ev[t->n].access = access;
	t->ev[t->n].first = access;
	t->meta[t->n].hash = h;
	t->meta[t->n].len = len;
	t->slot[j] = (uint32_t)++t->n;
	if (t->read_hook && read_only(access, 0))
		t->read_hook(t->read_ctx, t->ev[t->n - 1].path);
}

static void set_blind(struct trace *t, const char *fmt, ...) PRINTF_LIKE(2, 3);
static void set_blind(struct trace *t, const char *fmt, ...)
{
	if (t->blind)
		return; /* the first reason is the one to tell */
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(t->blind_why, sizeof(t->blind_why), fmt, ap);
	va_end(ap);
	t->blind = 1;
}

const struct trace_event *trace_events(const struct trace *t, size_t *n)
{
	*n = t ? t->n : 0;
	return t ? t->ev : NULL;
}

const char *trace_blind(const struct trace *t)
{
	return t && t->blind ? t->blind_why : NULL;
}

static void server_release(struct server *sv)
{
	if (sv->listener >= 0)
		close(sv->listener);
	sv->listener = -1;
	free(sv->req);
	free(sv->resp);
	sv->req = NULL;
	sv->resp = NULL;
}

void trace_free(struct trace *t)
{
	if (!t)
		return;
	trace_finish(t);
	server_release(&t->sv);
	for (int i = 0; i < 2; i++)
		if (t->sock[i] >= 0)
			close(t->sock[i]);
	if (t->stop_fd >= 0)
		close(t->stop_fd);
	if (t->log_fd >= 0)
		close(t->log_fd);
	if (t->log_map)
		munmap(t->log_map, TRACE_LOG_DATA + t->log_ring);
	free(t->preload);
	free(t->arg);
	for (size_t i = 0; i < t->n; i++)
		free((char *)t->ev[i].path);
	free(t->ev);
	free(t->meta);
	free(t->slot);
	free(t->filter);
	free(t);
}

void trace_set_exec_hook(struct trace *t, const struct trace_exec_hook *hook)
{
	t->exec_hook = hook;
}

void trace_set_read_hook(struct trace *t, void (*fn)(void *ctx, const char *path), void *ctx)
{
	t->read_hook = fn;
	t->read_ctx = ctx;
}

/* --- the filter ------------------------------------------------------- */

/* A straight run of comparisons on the syscall number. Its cost hardly
 * matters: the kernel (5.11+) runs such a filter once per syscall number
 * when it is installed, and from then on lets every syscall whose answer
 * depends on nothing but its number (ALLOW here) through without running
 * the filter; that works for loads of nr and arch, jumps on constants and
 * returns, which is all the path of an untraced syscall meets. Another ABI
 * (32-bit x86 on x86_64, x32, arm32 on aarch64) numbers its syscalls
 * differently: all of them are stopped, so the thread can say the trace is
 * blind.
 *
 * fstat() is newfstatat(fd, "", AT_EMPTY_PATH) in glibc and musl, statx
 * with AT_EMPTY_PATH in Rust and libuv: a quarter of what a Python start-up
 * would stop, for nothing (the fd was recorded when opened). The filter
 * cannot read the path, so it lets through every call of those that has
 * AT_EMPTY_PATH set: one with a non-empty path as well (legal, pointless,
 * not seen in practice) would go unrecorded. */
static struct sock_filter *filter_build(uint64_t cookie, unsigned short *len)
{
	size_t nchecks = 0;
	for (size_t i = 0; i < SYS_COUNT; i++)
		nchecks += sys_table[i].empty_flags >= 0;
	/* the header, one jump per syscall, ALLOW, two per AT_EMPTY_PATH
	 * check, four for the cookie (when there is one), ALLOW, USER_NOTIF */
	unsigned short head = 3;
#ifdef __X32_SYSCALL_BIT
	head++;
#endif
	unsigned short checks = (unsigned short)(head + SYS_COUNT + 1);
	unsigned short cookie_at = (unsigned short)(checks + 2 * nchecks);
	unsigned short allow = (unsigned short)(cookie_at + (cookie ? 4 : 0)), notify = (unsigned short)(allow + 1);
	/* where a traced syscall goes once the AT_EMPTY_PATH check is done */
	unsigned short stop = cookie ? cookie_at : notify;
	struct sock_filter *f = xcalloc((size_t)notify + 1, sizeof(*f));
	unsigned short n = 0, c = checks;
	f[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch));
	f[n] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, TRACE_AUDIT_ARCH, 0, notify - n - 1);
	n++;
	f[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr));
#ifdef __X32_SYSCALL_BIT
	f[n] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, __X32_SYSCALL_BIT, notify - n - 1, 0);
	n++;
#endif
	for (size_t i = 0; i < SYS_COUNT; i++) {
		const struct sys_desc *s = &sys_table[i];
		unsigned short to = stop;
		if (s->empty_flags >= 0) {
			/* the low half of the 64-bit argument, where the flags are */
			unsigned off = (unsigned)(offsetof(struct seccomp_data, args) + 8 * (size_t)s->empty_flags);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
			off += 4;
#endif
			to = c;
			f[c++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, off);
			f[c] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, AT_EMPTY_PATH, allow - c - 1,
							    stop - c - 1);
			c++;
		}
		f[n] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)s->nr, to - n - 1, 0);
		n++;
	}
	f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
	if (cookie) {
		/* The preload library (cashet-trace.so) recorded the call
		 * itself and says so with the run's cookie in the 6th
		 * argument, which none of these syscalls uses. */
		unsigned lo = (unsigned)(offsetof(struct seccomp_data, args) + 8 * 5), hi = lo + 4;
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
		lo += 4;
		hi -= 4;
#endif
		f[c++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, lo);
		f[c] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)cookie, 0, notify - c - 1);
		c++;
		f[c++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, hi);
		f[c] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)(cookie >> 32), allow - c - 1,
						    notify - c - 1);
		c++;
	}
	f[allow] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
	f[notify] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF);
	*len = (unsigned short)(notify + 1);
	return f;
}

/* no_new_privs (required for an unprivileged filter) and the filter; the
 * listener, or -1 with errno. Async-signal-safe. WAIT_KILLABLE_RECV (5.19)
 * keeps a signal from interrupting a syscall the thread has already taken
 * (which would fail it with EINTR or run it twice); older kernels refuse
 * the flag, and go without. */
static int filter_install(const struct sock_fprog *prog)
{
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return -1;
	long fd = -1;
#ifdef SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
	fd = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER,
		     SECCOMP_FILTER_FLAG_NEW_LISTENER | SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV, prog);
	if (fd >= 0 || errno != EINVAL)
		return (int)fd;
#endif
	fd = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, prog);
	return (int)fd;
}

/* What an errno from filter_install means, for people. */
static const char *install_failure(int e)
{
	if (e == EBUSY)
		return "a process above this one already listens to a seccomp filter (an enclosing cashet, a container "
		       "runtime), and the kernel allows one listener per process";
	if (e == EINVAL || e == ENOSYS)
		return "this kernel has no seccomp user notification (Linux >= 5.0)";
	if (e == EACCES || e == EPERM)
		return "seccomp filters are not allowed here (a container's own seccomp policy?)";
	return "";
}

/* --- trace_available -------------------------------------------------- */

/* 1 when no seccomp filter is installed above this process (the kernel's
 * "Seccomp:" line in /proc/self/status is 0): then nothing above can make
 * the command's installation fail (one listener per process chain, a
 * container's policy). */
static int no_filter_above(void)
{
	char buf[4096];
	int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	const char *line = strstr(buf, "\nSeccomp:");
	return line && strtol(line + sizeof("\nSeccomp:") - 1, NULL, 10) == 0;
}

/* 1 when the kernel knows SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV (Linux
 * 5.19), and so SECCOMP_USER_NOTIF_FLAG_CONTINUE (5.5) too: with a NULL
 * filter the call fails after checking the flags (EINVAL for one it does
 * not know) and before installing anything (EFAULT). */
static int kernel_can_continue(void)
{
#ifdef SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
	return syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER,
		       SECCOMP_FILTER_FLAG_NEW_LISTENER | SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV, NULL) < 0 &&
	       errno == EFAULT;
#else
	return 0;
#endif
}

/* Whether tracing can work here. Where no filter is installed above and
 * the kernel is recent, two system calls tell; otherwise a child process
 * tries the real thing (a fork on every command: the cost of a miss). An
 * installation that still fails in the command's process (a filter added
 * since) runs it untraced, with the reason: trace_parent_attach says so. */
static void probe(void)
{
	int p[2] = { -1, -1 };
	unsigned short len;
	struct sock_filter *f = filter_build(0, &len);
	struct sock_fprog prog = { len, f };
	long ps = sysconf(_SC_PAGESIZE);
	page_size = ps > 0 ? (size_t)ps : 4096;
	if (syscall(SYS_seccomp, SECCOMP_GET_NOTIF_SIZES, 0, &notif_sizes) < 0) {
		snprintf(probe_why, sizeof(probe_why), "this kernel has no seccomp user notification: %s",
			 strerror(errno));
		goto out;
	}
	if (no_filter_above() && kernel_can_continue()) {
		probe_ok = 1;
		goto out;
	}
	if (pipe2(p, O_CLOEXEC) < 0) {
		snprintf(probe_why, sizeof(probe_why), "cannot probe seccomp: pipe: %s", strerror(errno));
		goto out;
	}
	pid_t pid = fork();
	if (pid < 0) {
		snprintf(probe_why, sizeof(probe_why), "cannot probe seccomp: fork: %s", strerror(errno));
		goto out;
	}
	if (pid == 0) {
		/* Installs the real filter (which the kernel may refuse), then
		 * answers a notification that does not exist with CONTINUE: a
		 * kernel that knows the flag (5.5) looks the id up and says
		 * ENOENT, an older one refuses the flag (EINVAL). Neither write
		 * nor _exit is stopped by the filter. */
		int res[2] = { 0, 0 };
		int fd = filter_install(&prog);
		if (fd < 0) {
			res[0] = 1;
			res[1] = errno;
		} else {
			struct seccomp_notif_resp r;
			memset(&r, 0, sizeof(r));
			r.id = ~(uint64_t)0;
			r.flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
			if (ioctl(fd, SECCOMP_IOCTL_NOTIF_SEND, &r) == 0 || errno != ENOENT) {
				res[0] = 2;
				res[1] = errno;
			}
		}
		if (write(p[1], res, sizeof(res)) < 0)
			_exit(1);
		_exit(0);
	}
	close(p[1]);
	p[1] = -1;
	int res[2] = { 3, 0 };
	ssize_t n;
	do
		n = read(p[0], res, sizeof(res));
	while (n < 0 && errno == EINTR);
	waitpid(pid, NULL, 0); /* may fail if SIGCHLD is ignored: the child is reaped anyway */
	if (n != (ssize_t)sizeof(res))
		res[0] = 3;
	if (res[0] == 0)
		probe_ok = 1;
	else if (res[0] == 1)
		snprintf(probe_why, sizeof(probe_why), "cannot install a seccomp filter with a listener: %s%s%s",
			 strerror(res[1]), *install_failure(res[1]) ? ": " : "", install_failure(res[1]));
	else if (res[0] == 2)
		snprintf(
			probe_why, sizeof(probe_why),
			"this kernel cannot let a stopped syscall continue (SECCOMP_USER_NOTIF_FLAG_CONTINUE needs Linux >= 5.5): %s",
			strerror(res[1]));
	else
		snprintf(probe_why, sizeof(probe_why), "the seccomp probe process died");
out:
	for (int i = 0; i < 2; i++)
		if (p[i] >= 0)
			close(p[i]);
	free(f);
}

int trace_available(void)
{
	pthread_once(&probe_once, probe);
	if (!probe_ok)
		err_set("cannot trace file accesses: %s", probe_why);
	return probe_ok;
}

/* --- the child -------------------------------------------------------- */

#ifndef CASHET_LIBDIR
#define CASHET_LIBDIR "/usr/local/lib/cashet"
#endif

/* cashet-trace.so: $CASHET_TRACE_PRELOAD when set (empty: none), else next
 * to this binary (the build tree), else in the install directory; NULL
 * when there is none, or its path cannot go in LD_PRELOAD (which splits
 * at spaces and colons). */
static char *preload_find(void)
{
	const char *env = getenv("CASHET_TRACE_PRELOAD");
	struct strbuf p = STRBUF_INIT;
	if (env) {
		sb_adds(&p, env);
	} else {
		char exe[PATH_MAX];
		ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
		char *slash = n > 0 ? memrchr(exe, '/', (size_t)n) : NULL;
		if (slash) {
			sb_add(&p, exe, (size_t)(slash - exe));
			sb_adds(&p, "/cashet-trace.so");
		}
		if (!p.len || access(p.buf, R_OK) < 0) {
			sb_reset(&p);
			sb_adds(&p, CASHET_LIBDIR "/cashet-trace.so");
		}
	}
	if (!p.len || p.buf[0] != '/' || strpbrk(p.buf, " :\t\n") || access(p.buf, R_OK) < 0) {
		sb_release(&p);
		return NULL;
	}
	return sb_detach(&p);
}

size_t trace_log_ring = TRACE_LOG_RING_DEFAULT;

/* The log the preload library writes (see preload.h): a memfd of a fixed
 * size, mapped by every process of the tree, sealed so that they can tell
 * it from another file, and moved to a high fd, out of the way of
 * programs that dup2 onto small numbers. Its pages are only allocated as
 * records reach them. 0, or -1 (then the library is not loaded). */
static int log_open(struct trace *t)
{
	int fd = memfd_create("cashet-trace", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return -1;
	int high = fcntl(fd, F_DUPFD_CLOEXEC, 512);
	if (high >= 0) {
		close(fd);
		fd = high;
	}
	uint64_t ring = trace_log_ring & ~(uint64_t)(TRACE_REC_ALIGN - 1);
	struct stat st;
	void *m = MAP_FAILED;
	if (ring < 2 * (sizeof(struct trace_rec) + PATH_MAX * 2) || ftruncate(fd, (off_t)(TRACE_LOG_DATA + ring)) < 0 ||
	    fcntl(fd, F_ADD_SEALS, TRACE_PRELOAD_SEALS) < 0 || fstat(fd, &st) < 0 ||
	    (m = mmap(NULL, TRACE_LOG_DATA + ring, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)) == MAP_FAILED ||
	    getrandom(&t->cookie, sizeof(t->cookie), 0) != (ssize_t)sizeof(t->cookie)) {
		if (m != MAP_FAILED)
			munmap(m, TRACE_LOG_DATA + ring);
		close(fd);
		t->cookie = 0;
		return -1;
	}
	if (!t->cookie)
		t->cookie = 1;
	t->log_fd = fd;
	t->log_ino = st.st_ino;
	t->log_map = m;
	t->log_ring = ring;
	return 0;
}

int trace_new(struct trace **out)
{
	*out = NULL;
	if (!trace_available())
		return -1;
	struct trace *t = xcalloc(1, sizeof(*t));
	t->sock[0] = t->sock[1] = t->stop_fd = t->sv.listener = t->log_fd = -1;
	t->preload = preload_find();
	if (t->preload && log_open(t) < 0) {
		free(t->preload);
		t->preload = NULL;
	}
	t->preload_len = t->preload ? strlen(t->preload) : 0;
	unsigned short len;
	t->filter = filter_build(t->cookie, &len);
	t->log_drained_at = now_ms();
	t->prog.len = len;
	t->prog.filter = t->filter;
	t->sv.req_size =
		notif_sizes.seccomp_notif > sizeof(*t->sv.req) ? notif_sizes.seccomp_notif : sizeof(*t->sv.req);
	t->sv.resp_size = notif_sizes.seccomp_notif_resp > sizeof(*t->sv.resp) ? notif_sizes.seccomp_notif_resp
									       : sizeof(*t->sv.resp);
	t->sv.req = xcalloc(1, t->sv.req_size);
	t->sv.resp = xcalloc(1, t->sv.resp_size);
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, t->sock) < 0) {
		err_sys("cannot trace: socketpair");
		goto fail;
	}
	t->stop_fd = eventfd(0, EFD_CLOEXEC);
	if (t->stop_fd < 0) {
		err_sys("cannot trace: eventfd");
		goto fail;
	}
	*out = t;
	return 0;
fail:
	trace_free(t);
	return -1;
}

void trace_environ(const struct trace *t, char *const *env, struct strvec *out)
{
	extern char **environ;
	if (!env)
		env = environ;
	const char *pre = NULL;
	for (; *env; env++) {
		if (!strncmp(*env, "LD_PRELOAD=", 11) && t && t->preload)
			pre = *env + 11;
		else if (strncmp(*env, TRACE_PRELOAD_ENV "=", sizeof(TRACE_PRELOAD_ENV)))
			sv_push(out, *env); /* an enclosing run's log is not this one's */
	}
	if (!t || !t->preload)
		return;
	struct strbuf b = STRBUF_INIT;
	sb_addf(&b, "LD_PRELOAD=%s%s%s", pre ? pre : "", pre && *pre ? ":" : "", t->preload);
	sv_push_nocopy(out, sb_detach(&b));
	sb_addf(&b, TRACE_PRELOAD_ENV "=%d:%llu:%016llx", t->log_fd, (unsigned long long)t->log_ino,
		(unsigned long long)t->cookie);
	sv_push_nocopy(out, sb_detach(&b));
}

void trace_child_install(struct trace *t)
{
	int e = 0;
	/* the log outlives exec: the preload library in the new image
	 * writes to it */
	if (t->log_fd >= 0)
		fcntl(t->log_fd, F_SETFD, 0);
	int fd = filter_install(&t->prog);
	if (fd < 0)
		e = errno;
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} c;
	memset(&c, 0, sizeof(c));
	struct iovec iov = { &e, sizeof(e) };
	struct msghdr msg;
	memset(&msg, 0, sizeof(msg));
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	if (fd >= 0) {
		msg.msg_control = c.buf;
		msg.msg_controllen = sizeof(c.buf);
		struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	}
	while (sendmsg(t->sock[1], &msg, MSG_NOSIGNAL) < 0 && errno == EINTR)
		;
	/* The parent holds the listener now; ours would keep it open in
	 * every process the command starts. */
	if (fd >= 0)
		close(fd);
	close(t->sock[0]);
	close(t->sock[1]);
}

/* --- the serving thread ----------------------------------------------- */

/* Whether len bytes at p hold a zero unit (a NUL, a NULL pointer). */
static int has_zero(const char *p, size_t len, size_t unit)
{
	static const char zero[8];
	if (unit == 1)
		return memchr(p, '\0', len) != NULL;
	for (size_t k = 0; k + unit <= len; k += unit)
		if (!memcmp(p + k, zero, unit))
			return 1;
	return 0;
}

/* Reads from addr in task tid into buf (cap bytes) until a zero unit was
 * read, a read failed or came short, or cap; how many bytes it read. Each
 * read stops at the end of a page: a string (or an argv array) that ends
 * just before an unmapped page is read whole, which one long read failing
 * on that page would not do. */
static size_t read_upto(pid_t tid, uint64_t addr, char *buf, size_t cap, size_t unit)
{
	size_t got = 0;
	while (got < cap) {
		uint64_t at = addr + got;
		size_t want = page_size - (size_t)(at & (page_size - 1));
		if (want > cap - got)
			want = cap - got;
		struct iovec local = { buf + got, want };
		struct iovec remote = { (void *)(uintptr_t)at, want };
		ssize_t n = process_vm_readv(tid, &local, 1, &remote, 1, 0);
		if (n <= 0)
			break;
		size_t from = got - got % unit;
		got += (size_t)n;
		if (has_zero(buf + from, got - from, unit) || (size_t)n < want)
			break;
	}
	return got;
}

/* Reads the NUL-terminated string at addr in task tid into buf (cap bytes,
 * the NUL included); its length, or -1 if unreadable or longer (than
 * PATH_MAX, for a path: the syscall fails with ENAMETOOLONG). */
static ssize_t read_string(pid_t tid, uint64_t addr, char *buf, size_t cap)
{
	size_t got = read_upto(tid, addr, buf, cap, 1);
	const char *nul = memchr(buf, '\0', got);
	return nul ? nul - buf : -1;
}

/* A program's first words are the ones that say what it runs (an
 * interpreter's options and inline code); an argument is at most
 * MAX_ARG_STRLEN bytes (32 pages) or the execve fails. */
enum { ARGV_WORDS = 64, ARG_BYTES = 32 * 4096 + 1 };

/* The first ARGV_WORDS words of the argv array at addr in task tid, into
 * out; 0, or -1 when a word cannot be read (out holds those before it). */
static int read_argv(struct trace *t, pid_t tid, uint64_t addr, struct strvec *out)
{
	uint64_t word[ARGV_WORDS];
	size_t got = read_upto(tid, addr, (char *)word, sizeof(word), sizeof(*word));
	if (!t->arg)
		t->arg = xmalloc(ARG_BYTES);
	for (size_t k = 0; k < got / sizeof(*word) && word[k]; k++) {
		ssize_t len = read_string(tid, word[k], t->arg, ARG_BYTES);
		if (len < 0)
			return -1;
		sv_push(out, t->arg);
	}
	return 0;
}

/* readlink of /proc/<tid>/cwd (fd < 0) or /proc/<tid>/fd/<fd> into buf
 * (PATH_MAX bytes, not terminated); its length, or -1 when it cannot be
 * read or is not a path (a pipe, a socket, a deleted directory's "(deleted)"
 * aside). No snprintf: this runs for every relative path. */
static ssize_t proc_link(pid_t tid, int fd, char *buf)
{
	char p[64], digits[24];
	size_t n = 0, k;
	memcpy(p, "/proc/", 6);
	n = 6;
	unsigned long v = (unsigned long)tid;
	k = 0;
	do
		digits[k++] = (char)('0' + v % 10);
	while ((v /= 10) != 0);
	while (k)
		p[n++] = digits[--k];
	if (fd < 0) {
		memcpy(p + n, "/cwd", 5);
	} else {
		memcpy(p + n, "/fd/", 4);
		n += 4;
		v = (unsigned long)fd;
		do
			digits[k++] = (char)('0' + v % 10);
		while ((v /= 10) != 0);
		while (k)
			p[n++] = digits[--k];
		p[n] = '\0';
	}
	ssize_t len = readlink(p, buf, PATH_MAX);
	if (len <= 0 || len >= PATH_MAX || buf[0] != '/')
		return -1;
	return len;
}

/* Folds "//" and "." components of the absolute path p (and a trailing
 * "/") in place, and terminates it; its new length. ".." stays: what it
 * names depends on symlinks, which only the file system knows. */
static size_t path_fold(char *p, size_t len)
{
	size_t r = 0, w = 0;
	while (r < len) {
		while (r < len && p[r] == '/')
			r++;
		size_t start = r;
		while (r < len && p[r] != '/')
			r++;
		size_t clen = r - start;
		if (clen == 0 || (clen == 1 && p[start] == '.'))
			continue;
		p[w++] = '/';
		memmove(p + w, p + start, clen);
		w += clen;
	}
	if (w == 0)
		p[w++] = '/';
	p[w] = '\0';
	return w;
}

/* A path as the task named it, made absolute: room for a directory of
 * PATH_MAX, a "/" and a name of PATH_MAX. */
struct path_buf {
	char buf[2 * PATH_MAX + 2];
	size_t len;
	unsigned access;
};

/* The path in argument path_arg, relative to the directory fd in argument
 * dirfd_arg (-1: the cwd), into pb; 0 when there is nothing to record (an
 * empty path names the fd itself, which was recorded when opened). */
static int path_get(pid_t tid, const struct seccomp_data *d, int dirfd_arg, int path_arg, struct path_buf *pb)
{
	char *rel = pb->buf + PATH_MAX + 1;
	ssize_t n = read_string(tid, d->args[path_arg], rel, PATH_MAX);
	if (n <= 0)
		return 0;
	size_t len = (size_t)n;
	if (rel[0] == '/') {
		memmove(pb->buf, rel, len);
	} else {
		int dirfd = dirfd_arg < 0 ? AT_FDCWD : (int)d->args[dirfd_arg];
		if (dirfd != AT_FDCWD && dirfd < 0)
			return 0; /* EBADF */
		ssize_t base = proc_link(tid, dirfd == AT_FDCWD ? -1 : dirfd, pb->buf);
		if (base < 0)
			return 0;
		pb->buf[base] = '/';
		memmove(pb->buf + base + 1, rel, len);
		len += (size_t)base + 1;
	}
	pb->len = path_fold(pb->buf, len);
	return 1;
}

static unsigned open_access(uint64_t flags)
{
	if (flags & O_PATH)
		return TRACE_STAT;
	/* a file with no name, in this directory, until a linkat names it */
	if ((flags & O_TMPFILE) == O_TMPFILE)
		return TRACE_STAT;
	unsigned a = TRACE_READ;
	if ((flags & O_ACCMODE) == O_WRONLY)
		a = TRACE_WRITE;
	else if ((flags & O_ACCMODE) == O_RDWR)
		a = TRACE_READ | TRACE_WRITE;
	if (flags & (O_CREAT | O_TRUNC))
		a |= TRACE_WRITE;
	return a;
}

static const struct sys_desc *sys_find(int nr)
{
	for (size_t i = 0; i < SYS_COUNT; i++)
		if (sys_table[i].nr == nr)
			return &sys_table[i];
	return NULL;
}

/* Whether the stopped call d (described by s) may change the path of a
 * process's cwd: the library's cached cwds are then read again. */
static int moves_cwd(const struct sys_desc *s, const struct seccomp_data *d)
{
	if (s->kind == K_CWD || (s->access & TRACE_EXEC))
		return 1;
	/* a rename (of a directory, perhaps), rmdir, unlinkat(AT_REMOVEDIR) */
	if (s->access != TRACE_REMOVE)
		return 0;
#ifdef __NR_unlinkat
	if (d->nr == __NR_unlinkat)
		return (d->args[2] & AT_REMOVEDIR) != 0;
#endif
#ifdef __NR_unlink
	if (d->nr == __NR_unlink)
		return 0;
#endif
	return 1;
}

/* Records what the stopped syscall in req names. */
static void observe(struct trace *t, int listener, const struct seccomp_notif *req)
{
	const struct seccomp_data *d = &req->data;
	pid_t tid = (pid_t)req->pid;
	if (d->arch != TRACE_AUDIT_ARCH) {
		set_blind(t, "process %d made a syscall of another ABI (audit arch 0x%x), which tracing does not see",
			  (int)tid, (unsigned)d->arch);
		return;
	}
#ifdef __X32_SYSCALL_BIT
	if (d->nr & __X32_SYSCALL_BIT) {
		set_blind(t, "process %d made an x32 syscall, which tracing does not see", (int)tid);
		return;
	}
#endif
	const struct sys_desc *s = sys_find(d->nr);
	if (!s)
		return;
	/* before the call runs: the task's own next call (after it) reads
	 * its cwd again; another thread's, made meanwhile, is a race in the
	 * program itself (which cwd its relative path meets) */
	if (t->log_map && moves_cwd(s, d))
		__atomic_add_fetch(&((struct trace_log_head *)t->log_map)->cwd_gen, 1, __ATOMIC_RELEASE);
	if (s->kind == K_CWD)
		return;
	if (s->kind == K_BLIND) {
		set_blind(t, "process %d set up io_uring, whose file accesses cannot be observed", (int)tid);
		return;
	}
	struct path_buf pb[2];
	int np = 0;
	if (s->kind == K_FD) {
		ssize_t n = proc_link(tid, (int)d->args[s->path], pb[0].buf);
		if (n < 0)
			return;
		pb[0].len = path_fold(pb[0].buf, (size_t)n);
		pb[0].access = s->access;
		np = 1;
	} else {
		unsigned access = s->access, access2 = s->access2;
		if (s->kind == K_OPEN) {
			access = open_access(d->args[s->flags]);
		} else if (s->kind == K_OPENAT2) {
			uint64_t flags; /* the first field of struct open_how */
			struct iovec local = { &flags, sizeof(flags) };
			struct iovec remote = { (void *)(uintptr_t)d->args[s->flags], sizeof(flags) };
			if (process_vm_readv(tid, &local, 1, &remote, 1, 0) != (ssize_t)sizeof(flags))
				return;
			access = open_access(flags);
		}
#ifdef __NR_renameat2
		/* both names stay, each with the other's file */
		if (d->nr == __NR_renameat2 && (d->args[4] & RENAME_EXCHANGE))
			access = TRACE_WRITE;
#endif
		if (path_get(tid, d, s->dirfd, s->path, &pb[np]))
			pb[np++].access = access;
		if (s->path2 >= 0 && path_get(tid, d, s->dirfd2, s->path2, &pb[np]))
			pb[np++].access = access2;
	}
	/* a program started: what its arguments name, when the caller asks */
	struct strvec args = STRVEC_INIT, names = STRVEC_INIT;
	if (np && (s->access & TRACE_EXEC) && t->exec_hook && t->exec_hook->wants(pb[0].buf) &&
	    read_argv(t, tid, d->args[s->path + 1], &args) == 0 && args.n) {
		char cwd[PATH_MAX + 1];
		ssize_t n = proc_link(tid, -1, cwd);
		cwd[n < 0 ? 0 : n] = '\0';
		t->exec_hook->names(pb[0].buf, n < 0 ? NULL : cwd, args.v, &names);
	}
	/* The task may have died and its id gone to another since RECV: then
	 * what was read is not what it asked for. */
	if (np > 0 && ioctl(listener, SECCOMP_IOCTL_NOTIF_ID_VALID, &req->id) == 0) {
		for (int i = 0; i < np; i++)
			record(t, pb[i].buf, pb[i].len, pb[i].access);
		for (size_t i = 0; i < names.n; i++) {
			char env[PATH_MAX];
			size_t len = strlen(names.v[i]);
			if (len + 1 >= sizeof(env))
				continue; /* no variable is named so */
			env[0] = '$';
			memcpy(env + 1, names.v[i], len);
			record(t, env, len + 1, TRACE_ENV);
		}
	}
	sv_release(&args);
	sv_release(&names);
}

/* Takes one notification, records it when t is given, and lets the syscall
 * run. ENOENT from RECV or SEND: the task died or a signal took it out of
 * the syscall, which it will make again. */
static void serve_one(struct server *sv, struct trace *t)
{
	memset(sv->req, 0, sv->req_size);
	if (ioctl(sv->listener, SECCOMP_IOCTL_NOTIF_RECV, sv->req) < 0)
		return;
	if (t)
		observe(t, sv->listener, sv->req);
	memset(sv->resp, 0, sv->resp_size);
	sv->resp->id = sv->req->id;
	sv->resp->flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
	while (ioctl(sv->listener, SECCOMP_IOCTL_NOTIF_SEND, sv->resp) < 0 && errno == EINTR)
		;
}

/* After trace_finish asked to stop, this many notifications at most are
 * still recorded: a process left running could otherwise keep the
 * drain (and trace_finish) going for as long as it makes syscalls. */
#define DRAIN_MAX 256

/* How often the serving thread adds the preload library's records while
 * the command runs, and gives the room they took back. */
#define LOG_DRAIN_MS 200
/* ... with a read hook, which hashes what is read while the command runs
 * and idles once it has the paths so far */
#define LOG_DRAIN_HOOKED_MS 10
/* How long the last read waits for a record still being written. */
#define LOG_UNFINISHED_MS 20

/* Adds the preload library's records (preload.h) written since the last
 * call to the table, as the serving thread would have recorded the same
 * calls stopped, and gives their room in the ring back to the writers. A
 * record whose magic is not set yet (being written) waits for the next
 * call; at the end (final) it, or what looks damaged, makes the trace
 * blind: a process was killed as it wrote, or wrote over the log. Records
 * written after the end, by processes the command left running, are not
 * recorded, like their stopped calls. */
static void log_drain(struct trace *t, int final)
{
	t->log_drained_at = now_ms();
	if (!t->log_map || t->log_bad)
		return;
	struct trace_log_head *h = (struct trace_log_head *)t->log_map;
	uint64_t at = __atomic_load_n(&h->head, __ATOMIC_RELAXED);
	uint64_t tail = __atomic_load_n(&h->tail, __ATOMIC_ACQUIRE);
	char path[PATH_MAX * 2 + 2];
	while (at < tail) {
		uint64_t pos = at % t->log_ring;
		struct trace_rec *r = (struct trace_rec *)(t->log_map + TRACE_LOG_DATA + pos);
		unsigned magic = __atomic_load_n(&r->magic, __ATOMIC_ACQUIRE);
		if (!magic && !final)
			break;
		/* at the end, a record being written by a process the command
		 * left running (a copy takes microseconds) is waited for; only
		 * one whose process was killed as it wrote stays unfinished */
		for (int waited = 0; !magic && waited < LOG_UNFINISHED_MS * 10; waited++) {
			struct timespec ts = { 0, 100000 };
			nanosleep(&ts, NULL);
			magic = __atomic_load_n(&r->magic, __ATOMIC_ACQUIRE);
		}
		size_t len = r->len;
		if ((magic != TRACE_REC_MAGIC && magic != TRACE_REC_SKIP) ||
		    (magic == TRACE_REC_MAGIC && (len == 0 || len > PATH_MAX * 2)) ||
		    sizeof(*r) + len > t->log_ring - pos) {
			if (final) {
				set_blind(t,
					  magic ? "the preload library's log is damaged at byte %llu"
						: "a record of the preload library's log at byte %llu was not "
						  "finished (its process killed as it wrote it?)",
					  (unsigned long long)at);
				t->log_bad = 1;
			}
			break;
		}
		if (magic == TRACE_REC_MAGIC) {
			memcpy(path, r + 1, len);
			if (r->kind == TRACE_REC_ENV && path[0] == '$') {
				record(t, path, len, TRACE_ENV);
			} else if (r->kind != TRACE_REC_ENV && path[0] == '/') {
				unsigned access = r->kind == TRACE_REC_OPEN ? open_access(r->bits) : r->bits;
				record(t, path, path_fold(path, len), access);
			}
		}
		__atomic_store_n(&r->magic, 0, __ATOMIC_RELAXED);
		at += (sizeof(*r) + len + TRACE_REC_ALIGN - 1) & ~(uint64_t)(TRACE_REC_ALIGN - 1);
	}
	/* the cleared magics before the room they are in */
	__atomic_store_n(&h->head, at, __ATOMIC_RELEASE);
	if (__atomic_load_n(&h->lost, __ATOMIC_ACQUIRE))
		set_blind(t, "an environment variable the command read could not be recorded (the preload "
			     "library's log was full)");
}

/* Whether the ring is a quarter full: then calls stopped meanwhile (the
 * ring full) are followed by a read of the log, not 200 ms of stops. */
static int log_quarter_full(const struct trace *t)
{
	const struct trace_log_head *h = (const struct trace_log_head *)t->log_map;
	return __atomic_load_n(&h->tail, __ATOMIC_RELAXED) - __atomic_load_n(&h->head, __ATOMIC_RELAXED) >
	       t->log_ring / 4;
}

static void *serve_main(void *arg)
{
	struct trace *t = arg;
	struct pollfd p[2] = { { t->sv.listener, POLLIN, 0 }, { t->stop_fd, POLLIN, 0 } };
	int stopping = 0, drained = 0;
	int every = t->read_hook ? LOG_DRAIN_HOOKED_MS : LOG_DRAIN_MS;
	for (;;) {
		if (!stopping && t->log_map && (now_ms() - t->log_drained_at >= every || log_quarter_full(t)))
			log_drain(t, 0);
		int n = poll(p, stopping ? 1 : 2, stopping ? 0 : t->log_map ? every : -1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n == 0 && !stopping)
			continue; /* time to read the log */
		if (n <= 0)
			break; /* drained (or poll failed: trace_finish hands over) */
		if (p[0].revents & POLLIN) {
			serve_one(&t->sv, t);
			if (stopping && ++drained >= DRAIN_MAX)
				break;
			continue;
		}
		if (p[0].revents & (POLLHUP | POLLERR | POLLNVAL)) {
			t->hangup = 1; /* every process that had the filter is gone */
			break;
		}
		if (p[1].revents & POLLIN)
			stopping = 1;
	}
	return NULL;
}

/* Serves without recording until no process has the filter any more: closing
 * the listener earlier would fail their stopped syscalls with ENOSYS. */
static void keep_serving(struct server *sv)
{
	struct pollfd p = { sv->listener, POLLIN, 0 };
	for (;;) {
		int n = poll(&p, 1, -1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			break;
		if (p.revents & POLLIN)
			serve_one(sv, NULL);
		else if (p.revents)
			break;
	}
}

static void *keep_serving_main(void *arg)
{
	struct server *sv = arg;
	keep_serving(sv);
	server_release(sv);
	free(sv);
	return NULL;
}

/* Hands the listener to a process of its own, which serves the processes
 * the command left running (git's background gc, a daemon) after this one
 * has exited: a double fork, so that it is nobody's child to reap, in a
 * session of its own (no terminal's signals), in /, with no other fd open
 * (no pipe of ours kept open, no file of the store). Only async-signal-safe
 * calls after fork (this process has threads): the buffers were allocated
 * before. 0, or -1 if it could not be started. */
static int keep_serving_elsewhere(struct server *sv)
{
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		pid_t helper = fork();
		if (helper != 0)
			_exit(helper < 0);
		setsid();
		static const int ignored[] = { SIGHUP, SIGINT, SIGQUIT, SIGPIPE, SIGTSTP, SIGTTIN, SIGTTOU };
		for (size_t i = 0; i < sizeof(ignored) / sizeof(*ignored); i++)
			signal(ignored[i], SIG_IGN);
		signal(SIGTERM, SIG_DFL);
		signal(SIGCHLD, SIG_DFL);
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		if (chdir("/") < 0) {
			/* serving needs no directory */
		}
		prctl(PR_SET_NAME, (unsigned long)"cashet-trace", 0, 0, 0);
		int fd = sv->listener;
#ifdef SYS_close_range
		if (fd > 0)
			syscall(SYS_close_range, 0U, (unsigned)fd - 1, 0U);
		if (syscall(SYS_close_range, (unsigned)fd + 1, ~0U, 0U) < 0)
#endif
		{
			long max = sysconf(_SC_OPEN_MAX);
			for (int i = 0; i < (max > 0 && max < 65536 ? (int)max : 65536); i++)
				if (i != fd)
					close(i);
		}
		keep_serving(sv);
		_exit(0);
	}
	int status = 0;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

/* The serving thread's first step: the listener from the child (or EOF:
 * the child ended, or exec'd, before it sent one), posted to
 * trace_parent_attach either way. */
static int receive_listener(struct trace *t)
{
	int e = 0, fd = -1;
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} c;
	struct iovec iov = { &e, sizeof(e) };
	struct msghdr msg;
	memset(&msg, 0, sizeof(msg));
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = c.buf;
	msg.msg_controllen = sizeof(c.buf);
	ssize_t n;
	do
		n = recvmsg(t->sock[0], &msg, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	t->recv_errno = errno;
	close(t->sock[0]);
	t->sock[0] = -1;
	for (struct cmsghdr *cm = n > 0 ? CMSG_FIRSTHDR(&msg) : NULL; cm; cm = CMSG_NXTHDR(&msg, cm))
		if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS &&
		    cm->cmsg_len == CMSG_LEN(sizeof(int)))
			memcpy(&fd, CMSG_DATA(cm), sizeof(int));
	t->recv_n = n;
	t->recv_e = e;
	if (fd >= 0) {
		t->sv.listener = fd;
		/* Linux 6.6; before, the wake-ups are only slower */
		ioctl(fd, SECCOMP_IOCTL_NOTIF_SET_FLAGS, (unsigned long)SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP);
	}
	sem_post(&t->received);
	return fd >= 0 ? 0 : -1;
}

static void *listen_main(void *arg)
{
	struct trace *t = arg;
	return receive_listener(t) == 0 ? serve_main(t) : NULL;
}

int trace_listen(struct trace *t)
{
	if (sem_init(&t->received, 0, 0) < 0)
		return err_sys("cannot trace: a semaphore");
	int rc = thread_start(&t->thread, listen_main, t, 0);
	if (rc) {
		sem_destroy(&t->received);
		errno = rc;
		return err_sys("cannot trace: starting the serving thread");
	}
	t->running = 1;
	return 0;
}

int trace_parent_attach(struct trace *t)
{
	/* With our copy of the child's end closed, the child's exit or exec
	 * (the socket is close-on-exec) before it sent anything reads as EOF. */
	close(t->sock[1]);
	t->sock[1] = -1;
	while (sem_wait(&t->received) < 0 && errno == EINTR)
		;
	sem_destroy(&t->received);
	if (t->sv.listener >= 0)
		return 0;
	pthread_join(t->thread, NULL);
	t->running = 0;
	if (t->recv_n < 0) {
		errno = t->recv_errno;
		return err_sys("cannot trace: receiving the seccomp listener");
	}
	if (t->recv_n == 0)
		return err_set("cannot trace: the command's process ended before it installed the seccomp filter");
	if (t->recv_e)
		return err_set("cannot trace: the command's process could not install the seccomp filter: %s%s%s",
			       strerror(t->recv_e), *install_failure(t->recv_e) ? ": " : "",
			       install_failure(t->recv_e));
	/* MSG_CTRUNC: the kernel dropped the fd, our fd table full */
	return err_set("cannot trace: the seccomp listener was lost on the way (too many open files?)");
}

void trace_finish(struct trace *t)
{
	if (!t || !t->running)
		return;
	uint64_t one = 1;
	while (write(t->stop_fd, &one, sizeof(one)) < 0 && errno == EINTR)
		;
	pthread_join(t->thread, NULL);
	t->running = 0;
	log_drain(t, 1);
	if (t->hangup) {
		server_release(&t->sv);
		return;
	}
	/* Processes the command left running still have the filter: a
	 * process of its own serves them, for as long as they live; if it
	 * cannot be started, a thread of this one does, until this one exits,
	 * with the listener and buffers moved out of t, which trace_free may
	 * then free whenever it likes. */
	if (keep_serving_elsewhere(&t->sv) == 0) {
		server_release(&t->sv);
		return;
	}
	struct server *sv = xmalloc(sizeof(*sv));
	*sv = t->sv;
	t->sv.listener = -1;
	t->sv.req = NULL;
	t->sv.resp = NULL;
	pthread_t th;
	if (thread_start(&th, keep_serving_main, sv, 1)) {
		server_release(sv); /* their file syscalls now fail with ENOSYS: nothing better is left */
		free(sv);
	}
}

#endif
