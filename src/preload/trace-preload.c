/* cashet-trace.so: the LD_PRELOAD half of the file-access tracer
 * (src/trace). Under tracing, every file syscall stops the calling task
 * until cashet's serving thread has read its path: a few microseconds
 * each, more on a loaded machine, which is what a Python start-up (a
 * thousand stats and opens) pays for. Loaded into the traced processes,
 * this library takes the libc entry points that make most of those calls
 * (open, fopen, opendir, stat, access, readlink, mkdir, unlink, rename)
 * and, instead of letting them stop, writes what they name into a log that
 * cashet reads while the command runs and after, then makes the syscall
 * itself with a cookie in an argument slot the syscall ignores (the 6th):
 * the seccomp filter lets a call carrying the run's cookie through without
 * a stop.
 *
 * Coverage never shrinks: whatever this library does not see (static
 * binaries, Go, raw syscalls, the dynamic loader, calls glibc makes
 * internally such as readdir's getdents64 or setlocale's opens, a process
 * that closed the log or lost the environment) carries no cookie and stops
 * as before, and so does a call whose record could not be written.
 *
 * The environment (read once, at load): CASHET_TRACE_LOG=FD:INODE:COOKIE
 * (decimal, decimal, 16 hex digits): FD is a memfd sealed against
 * resizing, shared by every process of the tree; INODE identifies it. At
 * load it is checked (its inode, its seals) and mapped; records are then
 * written into that shared memory (a ring, see preload.h), not with a
 * write(2) each: a record cost a seal check and a write, two syscalls, as
 * many as the call recorded. Reserving a record is a compare and swap, so
 * threads, forks, vforks and signal handlers may write at once: the
 * wrappers of async-signal-safe functions are async-signal-safe (no
 * malloc, no stdio, no locks; the state is set before main and only read
 * afterwards, but for lock-free tables). A call made before that (another
 * library's constructor), unrecorded or with the ring full is made as libc
 * would make it, without the cookie: the same syscall (the *at form libc
 * uses), which stops. A process that closes the fd keeps its mapping, and
 * no record ever goes through an fd that may since name another file.
 *
 * A record: struct trace_rec (preload.h), then the path (absolute, not
 * terminated, as the process named it joined to its cwd or its dirfd's
 * path: cashet folds it as it folds the stopped calls' paths). */
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "trace/preload.h"

#define EXPORT __attribute__((visibility("default")))

static unsigned char *log_map; /* the log mapped; NULL: not tracing, or the log is not ours */
static uint64_t log_ring;      /* its ring's size */
static unsigned long cookie;

/* libc's faccessat, for the calls with flags (glibc emulates
 * faccessat2 on kernels without it); resolved when first needed */
static int (*real_faccessat)(int, const char *, int, int);

static int parse_ul(const char **s, unsigned long *v, int base)
{
	char *end;
	errno = 0;
	*v = strtoul(*s, &end, base);
	if (end == *s || errno)
		return -1;
	*s = end;
	return 0;
}

/* getenv's answer, from the environment itself: this library's getenv
 * (below) is what a call to getenv in this library would reach. */
static char *env_value(const char *name)
{
	extern char **environ;
	size_t n = strlen(name);
	if (!n || !environ)
		return NULL;
	for (char **e = environ; *e; e++)
		if (!strncmp(*e, name, n) && (*e)[n] == '=')
			return *e + n + 1;
	return NULL;
}

static void preload_parse(void)
{
	const char *s = env_value(TRACE_PRELOAD_ENV);
	unsigned long fd, ino, ck;
	if (!s || parse_ul(&s, &fd, 10) || *s++ != ':' || parse_ul(&s, &ino, 10) || *s++ != ':' ||
	    parse_ul(&s, &ck, 16) || *s || fd > INT_MAX)
		return;
	struct stat st;
	if (fstat((int)fd, &st) < 0 || (unsigned long)st.st_ino != ino ||
	    fcntl((int)fd, F_GET_SEALS) != TRACE_PRELOAD_SEALS || st.st_size <= TRACE_LOG_DATA ||
	    (st.st_size - TRACE_LOG_DATA) % TRACE_REC_ALIGN)
		return; /* closed (close_fds, closefrom), or another file now */
	void *m = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, (int)fd, 0);
	if (m == MAP_FAILED)
		return;
	cookie = ck;
	log_ring = (uint64_t)st.st_size - TRACE_LOG_DATA;
	log_map = m;
}

/* Puts a record (total bytes at rec, its magic not set) into the log's
 * ring; -1 when the ring is full. */
static int log_put(const struct trace_rec *rec, size_t total)
{
	struct trace_log_head *h = (struct trace_log_head *)log_map;
	uint64_t need = (total + TRACE_REC_ALIGN - 1) & ~(uint64_t)(TRACE_REC_ALIGN - 1), pad;
	uint64_t t = __atomic_load_n(&h->tail, __ATOMIC_RELAXED);
	do {
		uint64_t pos = t % log_ring;
		pad = pos + need > log_ring ? log_ring - pos : 0;
		if (t + pad + need - __atomic_load_n(&h->head, __ATOMIC_ACQUIRE) > log_ring)
			return -1;
	} while (!__atomic_compare_exchange_n(&h->tail, &t, t + pad + need, 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED));
	if (pad) {
		struct trace_rec *f = (struct trace_rec *)(log_map + TRACE_LOG_DATA + t % log_ring);
		f->len = (uint16_t)(pad - sizeof(*f));
		f->kind = 0;
		f->bits = 0;
		__atomic_store_n(&f->magic, TRACE_REC_SKIP, __ATOMIC_RELEASE);
	}
	struct trace_rec *r = (struct trace_rec *)(log_map + TRACE_LOG_DATA + (t + pad) % log_ring);
	r->len = rec->len;
	r->kind = rec->kind;
	r->bits = rec->bits;
	memcpy(r + 1, rec + 1, total - sizeof(*rec));
	__atomic_store_n(&r->magic, TRACE_REC_MAGIC, __ATOMIC_RELEASE);
	return 0;
}

/* 0: the environment not read yet, 1: being read, 2: read. A getenv made
 * by another library's constructor may come before this library's own. */
static int parsed;

static void preload_once(void)
{
	int state = 0;
	if (__atomic_compare_exchange_n(&parsed, &state, 1, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
		int e = errno;
		preload_parse();
		errno = e;
		__atomic_store_n(&parsed, 2, __ATOMIC_RELEASE);
		return;
	}
	while (state != 2) /* another thread reads it: microseconds */
		state = __atomic_load_n(&parsed, __ATOMIC_ACQUIRE);
}

__attribute__((constructor)) static void preload_init(void)
{
	preload_once();
}

/* A syscall with the cookie in its 6th argument. Not through libc's
 * syscall(): the register of that argument (r9, x5) would keep the cookie
 * after the call, and the next syscall libc makes with fewer arguments
 * (an execve, readdir's getdents64) would carry it through the filter
 * unrecorded. So the register is cleared before anything else runs. */
static long cookie_call(long nr, long a, long b, long c, long d, long e)
{
	long ret;
#if defined(__x86_64__)
	register long r10 __asm__("r10") = d;
	register long r8 __asm__("r8") = e;
	register long r9 __asm__("r9") = (long)cookie;
	__asm__ volatile("syscall\n\txor %%r9d, %%r9d"
			 : "=a"(ret), "+r"(r9)
			 : "0"(nr), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8)
			 : "rcx", "r11", "memory");
#elif defined(__aarch64__)
	register long x8 __asm__("x8") = nr;
	register long x0 __asm__("x0") = a;
	register long x1 __asm__("x1") = b;
	register long x2 __asm__("x2") = c;
	register long x3 __asm__("x3") = d;
	register long x4 __asm__("x4") = e;
	register long x5 __asm__("x5") = (long)cookie;
	__asm__ volatile("svc #0\n\tmov x5, xzr"
			 : "+r"(x0), "+r"(x5)
			 : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4)
			 : "memory");
	ret = x0;
#else
#error "cashet-trace.so is for x86_64 and aarch64"
#endif
	if (ret < 0 && ret > -4096) {
		errno = (int)-ret;
		return -1;
	}
	return ret;
}

/* The calling thread's cwd, as getcwd said it while the log's cwd_gen
 * (preload.h) was gen: a getcwd for every relative path was a third of
 * what tracing added to a `cp -r` of 20,000 files (three a file). Every
 * call that may change a cwd's path moves cwd_gen on: this library's
 * chdir, fchdir, rename and rmdir once they have run, and cashet's serving
 * thread before a stopped one (a raw syscall, chroot, an exec) runs. Per
 * thread: one that unshared its fs (CLONE_FS) has a cwd of its own. A
 * directory renamed by a process outside the command is not seen: its
 * calls are recorded under the old name until the next of those. Nor is
 * a vfork child that changes its cwd and calls these functions before it
 * execs (which POSIX leaves undefined): it fills its parent's cache. busy
 * keeps a signal handler's call, on the same thread, from reading or
 * filling it half-written: it calls getcwd. */
#define CWD_CACHE 1024
static __thread struct {
	uint64_t gen;
	size_t len; /* 0: nothing cached */
	int busy;
	char path[CWD_CACHE];
} cwd_cache __attribute__((tls_model("initial-exec")));

static uint64_t *cwd_gen(void)
{
	return &((struct trace_log_head *)log_map)->cwd_gen;
}

static void cwd_moved(void)
{
	if (log_map)
		__atomic_add_fetch(cwd_gen(), 1, __ATOMIC_RELEASE);
}

/* The cwd's path into buf (cap bytes), without its NUL: its length, or -1. */
static ssize_t cwd_path(char *buf, size_t cap)
{
	uint64_t gen = __atomic_load_n(cwd_gen(), __ATOMIC_ACQUIRE) + 1; /* 0: none */
	if (cwd_cache.busy)
		gen = 0; /* a handler's call, the thread's own in the middle of this */
	else
		cwd_cache.busy = 1;
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	ssize_t n = -1;
	if (gen && cwd_cache.len && cwd_cache.gen == gen && cwd_cache.len <= cap) {
		memcpy(buf, cwd_cache.path, cwd_cache.len);
		n = (ssize_t)cwd_cache.len;
	} else {
		n = syscall(SYS_getcwd, buf, cap);
		if (n <= 1 || buf[0] != '/')
			n = -1; /* "(unreachable)": cashet's readlink of the cwd would not start with "/" either */
		else
			n--; /* the kernel counts the NUL */
		if (gen && n > 0 && (size_t)n <= sizeof(cwd_cache.path)) {
			memcpy(cwd_cache.path, buf, (size_t)n);
			cwd_cache.len = (size_t)n;
			cwd_cache.gen = gen;
		}
	}
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	if (gen)
		cwd_cache.busy = 0;
	return n;
}

/* The absolute form of path relative to dirfd, into buf (cap bytes);
 * its length, or -1 when it cannot be made (cashet then sees the call
 * stop). Mirrors what cashet's serving thread does with a stopped call. */
static ssize_t absolute(int dirfd, const char *path, size_t plen, char *buf, size_t cap)
{
	if (path[0] == '/') {
		if (plen > cap)
			return -1;
		memcpy(buf, path, plen);
		return (ssize_t)plen;
	}
	ssize_t base;
	if (dirfd == AT_FDCWD) {
		if ((base = cwd_path(buf, cap)) < 0)
			return -1;
	} else {
		if (dirfd < 0)
			return -1;
		char p[32] = "/proc/self/fd/", d[12];
		size_t n = 14, k = 0;
		unsigned v = (unsigned)dirfd;
		do
			d[k++] = (char)('0' + v % 10);
		while ((v /= 10) != 0);
		while (k)
			p[n++] = d[--k];
		p[n] = '\0';
		/* with the cookie: cashet's own readlink of the fd is not recorded either */
		base = cookie_call(SYS_readlinkat, AT_FDCWD, (long)p, (long)buf, cap < PATH_MAX ? cap : PATH_MAX, 0);
		if (base <= 0 || base >= PATH_MAX || buf[0] != '/')
			return -1;
	}
	if ((size_t)base + 1 + plen > cap)
		return -1;
	buf[base] = '/';
	memcpy(buf + base + 1, path, plen);
	return base + 1 + (ssize_t)plen;
}

/* Writes the record of one path; 0 written or nothing to write (an empty
 * path names the fd itself, which cashet records at the open), -1 when the
 * call must go to libc and stop. */
/* What this process has written already, so that a path looked at again
 * the same way (a compiler's headers, Python's directories) is not
 * written again: 64-bit hashes of (path, kind, what the bits mean),
 * open-addressed, lock-free (threads and signal handlers insert at once),
 * inherited by fork (the parent's records are in the log) and emptied by
 * exec. A full neighbourhood only means writing again. */
#define SEEN_SLOTS 4096
#define SEEN_PROBE 8
static uint64_t seen[SEEN_SLOTS];

static uint64_t rec_hash(const char *p, size_t n, unsigned kind, unsigned bits)
{
	uint64_t h = 14695981039346656037ULL; /* FNV-1a */
	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)p[i]) * 1099511628211ULL;
	if (kind == TRACE_REC_OPEN) /* only these flags decide the access */
		bits &= (unsigned)(O_ACCMODE | O_CREAT | O_TRUNC | O_PATH | O_TMPFILE);
	h = (h ^ ((uint64_t)kind << 32 | bits)) * 1099511628211ULL;
	return h ? h : 1;
}

static int seen_has(uint64_t h)
{
	for (size_t k = 0; k < SEEN_PROBE; k++) {
		uint64_t v = __atomic_load_n(&seen[(h + k) & (SEEN_SLOTS - 1)], __ATOMIC_RELAXED);
		if (v == h)
			return 1;
		if (!v)
			return 0;
	}
	return 0;
}

static void seen_add(uint64_t h)
{
	for (size_t k = 0; k < SEEN_PROBE; k++) {
		uint64_t v = 0;
		if (__atomic_compare_exchange_n(&seen[(h + k) & (SEEN_SLOTS - 1)], &v, h, 0, __ATOMIC_RELAXED,
						__ATOMIC_RELAXED) ||
		    v == h)
			return;
	}
}

/* A record and the room for what follows it. */
union rec_buf {
	struct trace_rec r;
	char buf[sizeof(struct trace_rec) + PATH_MAX + 64];
};

/* Writes the record whose n bytes of path are in place after u->r, unless
 * this process wrote the same already: 0, or -1 when the ring is full. */
static int put_once(union rec_buf *u, size_t n, unsigned kind, unsigned bits)
{
	uint64_t h = rec_hash(u->buf + sizeof(u->r), n, kind, bits);
	if (seen_has(h))
		return 0;
	u->r.len = (uint16_t)n;
	u->r.kind = (uint8_t)kind;
	u->r.bits = bits;
	if (log_put(&u->r, sizeof(u->r) + n) < 0)
		return -1;
	seen_add(h);
	return 0;
}

static int note(int dirfd, const char *path, unsigned kind, unsigned bits)
{
	if (!log_map || !path)
		return -1;
	int e = errno;
	size_t plen = strlen(path);
	if (plen == 0)
		return 0;
	if (plen >= PATH_MAX)
		return -1; /* ENAMETOOLONG */
	union rec_buf u;
	ssize_t n = absolute(dirfd, path, plen, u.buf + sizeof(u.r), sizeof(u.buf) - sizeof(u.r));
	int rc = n < 0 ? -1 : put_once(&u, (size_t)n, kind, bits);
	errno = e;
	return rc;
}

/* The calls made without the cookie (they stop) pass 0 in every argument
 * the syscall does not use, the 6th included, rather than whatever
 * libc's syscall() would find there. */

/* --- open ------------------------------------------------------------- */

static int open_common(int dirfd, const char *path, int flags, mode_t mode)
{
	if (note(dirfd, path, TRACE_REC_OPEN, (unsigned)flags) < 0)
		return (int)syscall(SYS_openat, dirfd, path, flags, mode, 0, 0);
	return (int)cookie_call(SYS_openat, (long)dirfd, (long)path, (long)flags, (long)mode, 0);
}

static mode_t open_mode(int flags, va_list ap)
{
	return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE ? (mode_t)va_arg(ap, int) : 0;
}

EXPORT int open(const char *path, int flags, ...)
{
	va_list ap;
	va_start(ap, flags);
	mode_t mode = open_mode(flags, ap);
	va_end(ap);
	return open_common(AT_FDCWD, path, flags, mode);
}

EXPORT int open64(const char *path, int flags, ...)
{
	va_list ap;
	va_start(ap, flags);
	mode_t mode = open_mode(flags, ap);
	va_end(ap);
	return open_common(AT_FDCWD, path, flags | O_LARGEFILE, mode);
}

EXPORT int openat(int dirfd, const char *path, int flags, ...)
{
	va_list ap;
	va_start(ap, flags);
	mode_t mode = open_mode(flags, ap);
	va_end(ap);
	return open_common(dirfd, path, flags, mode);
}

EXPORT int openat64(int dirfd, const char *path, int flags, ...)
{
	va_list ap;
	va_start(ap, flags);
	mode_t mode = open_mode(flags, ap);
	va_end(ap);
	return open_common(dirfd, path, flags | O_LARGEFILE, mode);
}

/* the _FORTIFY_SOURCE entry points, for opens without a mode */
int __open_2(const char *path, int flags);
int __open64_2(const char *path, int flags);
int __openat_2(int dirfd, const char *path, int flags);
int __openat64_2(int dirfd, const char *path, int flags);

EXPORT int __open_2(const char *path, int flags)
{
	return open_common(AT_FDCWD, path, flags, 0);
}

EXPORT int __open64_2(const char *path, int flags)
{
	return open_common(AT_FDCWD, path, flags | O_LARGEFILE, 0);
}

EXPORT int __openat_2(int dirfd, const char *path, int flags)
{
	return open_common(dirfd, path, flags, 0);
}

EXPORT int __openat64_2(int dirfd, const char *path, int flags)
{
	return open_common(dirfd, path, flags | O_LARGEFILE, 0);
}

EXPORT int creat(const char *path, mode_t mode)
{
	return open_common(AT_FDCWD, path, O_CREAT | O_WRONLY | O_TRUNC, mode);
}

EXPORT int creat64(const char *path, mode_t mode)
{
	return open_common(AT_FDCWD, path, O_CREAT | O_WRONLY | O_TRUNC | O_LARGEFILE, mode);
}

/* fopen: libc opens the file itself. The mode as glibc reads it: r, w or
 * a, then any of + (read and write), x (O_EXCL), e (O_CLOEXEC); the rest
 * (b, m, c, ",ccs=") changes nothing here, and fdopen reads it again. */
static FILE *fopen_common(const char *path, const char *mode, int large)
{
	static FILE *(*real_fopen)(const char *, const char *);
	static FILE *(*real_fopen64)(const char *, const char *);
	int flags = -1;
	if (mode && (mode[0] == 'r' || mode[0] == 'w' || mode[0] == 'a')) {
		int acc = mode[0] == 'r' ? O_RDONLY : O_WRONLY, extra = 0;
		if (mode[0] == 'w')
			extra = O_CREAT | O_TRUNC;
		else if (mode[0] == 'a')
			extra = O_CREAT | O_APPEND;
		for (const char *m = mode + 1; *m && *m != ','; m++) {
			if (*m == '+')
				acc = O_RDWR;
			else if (*m == 'x')
				extra |= O_EXCL;
			else if (*m == 'e')
				extra |= O_CLOEXEC;
		}
		flags = acc | extra | (large ? O_LARGEFILE : 0);
	}
	if (flags < 0 || note(AT_FDCWD, path, TRACE_REC_OPEN, (unsigned)flags) < 0) {
		FILE *(**real)(const char *, const char *) = large ? &real_fopen64 : &real_fopen;
		if (!*real)
			*real = (FILE * (*)(const char *, const char *)) dlsym(RTLD_NEXT, large ? "fopen64" : "fopen");
		if (!*real) {
			errno = ENOSYS;
			return NULL;
		}
		return (*real)(path, mode);
	}
	int fd = (int)cookie_call(SYS_openat, AT_FDCWD, (long)path, flags, 0666, 0);
	if (fd < 0)
		return NULL;
	FILE *f = fdopen(fd, mode);
	if (!f) {
		int e = errno;
		close(fd);
		errno = e;
	}
	return f;
}

EXPORT FILE *fopen(const char *path, const char *mode)
{
	return fopen_common(path, mode, 0);
}

EXPORT FILE *fopen64(const char *path, const char *mode)
{
	return fopen_common(path, mode, 1);
}

/* opendir: libc opens the directory itself (no wrapper sees it); the
 * listing that follows (getdents64) still stops. */
EXPORT DIR *opendir(const char *path)
{
	static DIR *(*real_opendir)(const char *);
	int flags = O_RDONLY | O_NONBLOCK | O_DIRECTORY | O_LARGEFILE | O_CLOEXEC; /* as glibc opens it */
	if (note(AT_FDCWD, path, TRACE_REC_OPEN, (unsigned)flags) < 0) {
		if (!real_opendir)
			real_opendir = (DIR * (*)(const char *)) dlsym(RTLD_NEXT, "opendir");
		if (!real_opendir) {
			errno = ENOSYS;
			return NULL;
		}
		return real_opendir(path);
	}
	int fd = (int)cookie_call(SYS_openat, AT_FDCWD, (long)path, flags, 0, 0);
	if (fd < 0)
		return NULL;
	DIR *d = fdopendir(fd);
	if (!d) {
		int e = errno;
		close(fd);
		errno = e;
	}
	return d;
}

/* --- stat ------------------------------------------------------------- */

/* struct stat and struct stat64 are the kernel's struct stat on the 64-bit
 * ABIs the tracer supports (x86_64, aarch64), whose newfstatat fills it. */
static int fstatat_common(int dirfd, const char *path, void *st, int flags)
{
	if (note(dirfd, path, TRACE_REC_ACCESS, TRACE_REC_STAT) < 0)
		return (int)syscall(SYS_newfstatat, dirfd, path, st, flags, 0, 0);
	return (int)cookie_call(SYS_newfstatat, (long)dirfd, (long)path, (long)st, (long)flags, 0);
}

EXPORT int stat(const char *path, struct stat *st)
{
	return fstatat_common(AT_FDCWD, path, st, 0);
}

EXPORT int stat64(const char *path, struct stat64 *st)
{
	return fstatat_common(AT_FDCWD, path, st, 0);
}

EXPORT int lstat(const char *path, struct stat *st)
{
	return fstatat_common(AT_FDCWD, path, st, AT_SYMLINK_NOFOLLOW);
}

EXPORT int lstat64(const char *path, struct stat64 *st)
{
	return fstatat_common(AT_FDCWD, path, st, AT_SYMLINK_NOFOLLOW);
}

EXPORT int fstatat(int dirfd, const char *path, struct stat *st, int flags)
{
	return fstatat_common(dirfd, path, st, flags);
}

EXPORT int fstatat64(int dirfd, const char *path, struct stat64 *st, int flags)
{
	return fstatat_common(dirfd, path, st, flags);
}

/* glibc before 2.33 exported stat as these (version 1 is the kernel's
 * layout on x86_64, 0 on aarch64: both as above) */
int __xstat(int ver, const char *path, struct stat *st);
int __xstat64(int ver, const char *path, struct stat64 *st);
int __lxstat(int ver, const char *path, struct stat *st);
int __lxstat64(int ver, const char *path, struct stat64 *st);
int __fxstatat(int ver, int dirfd, const char *path, struct stat *st, int flags);
int __fxstatat64(int ver, int dirfd, const char *path, struct stat64 *st, int flags);

EXPORT int __xstat(int ver, const char *path, struct stat *st)
{
	return fstatat_common(AT_FDCWD, path, st, 0);
}

EXPORT int __xstat64(int ver, const char *path, struct stat64 *st)
{
	return fstatat_common(AT_FDCWD, path, st, 0);
}

EXPORT int __lxstat(int ver, const char *path, struct stat *st)
{
	return fstatat_common(AT_FDCWD, path, st, AT_SYMLINK_NOFOLLOW);
}

EXPORT int __lxstat64(int ver, const char *path, struct stat64 *st)
{
	return fstatat_common(AT_FDCWD, path, st, AT_SYMLINK_NOFOLLOW);
}

EXPORT int __fxstatat(int ver, int dirfd, const char *path, struct stat *st, int flags)
{
	return fstatat_common(dirfd, path, st, flags);
}

EXPORT int __fxstatat64(int ver, int dirfd, const char *path, struct stat64 *st, int flags)
{
	return fstatat_common(dirfd, path, st, flags);
}

EXPORT int statx(int dirfd, const char *path, int flags, unsigned mask, struct statx *st)
{
	if (note(dirfd, path, TRACE_REC_ACCESS, TRACE_REC_STAT) < 0)
		return (int)syscall(SYS_statx, dirfd, path, flags, mask, st, 0);
	return (int)cookie_call(SYS_statx, (long)dirfd, (long)path, (long)flags, (long)mask, (long)st);
}

/* --- access, readlink ------------------------------------------------- */

static int faccessat_common(int dirfd, const char *path, int mode, int flags)
{
	/* with flags, glibc may emulate faccessat2 on an old kernel */
	if (flags) {
		if (!real_faccessat)
			real_faccessat = (int (*)(int, const char *, int, int))dlsym(RTLD_NEXT, "faccessat");
		if (!real_faccessat) {
			errno = ENOSYS;
			return -1;
		}
		return real_faccessat(dirfd, path, mode, flags);
	}
	if (note(dirfd, path, TRACE_REC_ACCESS, TRACE_REC_STAT) < 0)
		return (int)syscall(SYS_faccessat, dirfd, path, mode, 0, 0, 0);
	return (int)cookie_call(SYS_faccessat, (long)dirfd, (long)path, (long)mode, 0, 0);
}

EXPORT int access(const char *path, int mode)
{
	return faccessat_common(AT_FDCWD, path, mode, 0);
}

EXPORT int faccessat(int dirfd, const char *path, int mode, int flags)
{
	return faccessat_common(dirfd, path, mode, flags);
}

static ssize_t readlinkat_common(int dirfd, const char *path, char *buf, size_t size)
{
	if (note(dirfd, path, TRACE_REC_ACCESS, TRACE_REC_STAT) < 0)
		return syscall(SYS_readlinkat, dirfd, path, buf, size, 0, 0);
	return cookie_call(SYS_readlinkat, (long)dirfd, (long)path, (long)buf, (long)size, 0);
}

EXPORT ssize_t readlink(const char *path, char *buf, size_t size)
{
	return readlinkat_common(AT_FDCWD, path, buf, size);
}

EXPORT ssize_t readlinkat(int dirfd, const char *path, char *buf, size_t size)
{
	return readlinkat_common(dirfd, path, buf, size);
}

/* --- mkdir, unlink, rename -------------------------------------------- */

static int mkdirat_common(int dirfd, const char *path, mode_t mode)
{
	if (note(dirfd, path, TRACE_REC_ACCESS, TRACE_REC_WRITE) < 0)
		return (int)syscall(SYS_mkdirat, dirfd, path, mode, 0, 0, 0);
	return (int)cookie_call(SYS_mkdirat, (long)dirfd, (long)path, (long)mode, 0, 0);
}

EXPORT int mkdir(const char *path, mode_t mode)
{
	return mkdirat_common(AT_FDCWD, path, mode);
}

EXPORT int mkdirat(int dirfd, const char *path, mode_t mode)
{
	return mkdirat_common(dirfd, path, mode);
}

static int unlinkat_common(int dirfd, const char *path, int flags)
{
	int rc = note(dirfd, path, TRACE_REC_ACCESS, TRACE_REC_REMOVE) < 0
			 ? (int)syscall(SYS_unlinkat, dirfd, path, flags, 0, 0, 0)
			 : (int)cookie_call(SYS_unlinkat, (long)dirfd, (long)path, (long)flags, 0, 0);
	if (flags & AT_REMOVEDIR)
		cwd_moved();
	return rc;
}

EXPORT int unlink(const char *path)
{
	return unlinkat_common(AT_FDCWD, path, 0);
}

EXPORT int unlinkat(int dirfd, const char *path, int flags)
{
	return unlinkat_common(dirfd, path, flags);
}

EXPORT int rmdir(const char *path)
{
	return unlinkat_common(AT_FDCWD, path, AT_REMOVEDIR);
}

static int renameat2_common(int olddir, const char *oldpath, int newdir, const char *newpath, unsigned flags)
{
	/* both names stay after an exchange, each with the other's file */
	unsigned from = flags & RENAME_EXCHANGE ? TRACE_REC_WRITE : TRACE_REC_REMOVE;
	/* two records, and a failure after the first: recording more than
	 * happened is harmless (a stop would record the same) */
	int rc = note(olddir, oldpath, TRACE_REC_ACCESS, from) < 0 ||
				 note(newdir, newpath, TRACE_REC_ACCESS, TRACE_REC_WRITE) < 0
			 ? (int)syscall(SYS_renameat2, olddir, oldpath, newdir, newpath, flags, 0)
			 : (int)cookie_call(SYS_renameat2, (long)olddir, (long)oldpath, (long)newdir, (long)newpath,
					    (long)flags);
	cwd_moved(); /* a directory's, perhaps */
	return rc;
}

EXPORT int rename(const char *oldpath, const char *newpath)
{
	return renameat2_common(AT_FDCWD, oldpath, AT_FDCWD, newpath, 0);
}

EXPORT int renameat(int olddir, const char *oldpath, int newdir, const char *newpath)
{
	return renameat2_common(olddir, oldpath, newdir, newpath, 0);
}

EXPORT int renameat2(int olddir, const char *oldpath, int newdir, const char *newpath, unsigned flags)
{
	return renameat2_common(olddir, oldpath, newdir, newpath, flags);
}

/* --- chdir ------------------------------------------------------------ */

/* Not recorded: what a changed cwd names is recorded as each call names
 * it. Through the cookie, as the serving thread would only move cwd_gen
 * on before the call; this moves it on after. */
EXPORT int chdir(const char *path)
{
	int rc = log_map ? (int)cookie_call(SYS_chdir, (long)path, 0, 0, 0, 0)
			 : (int)syscall(SYS_chdir, path, 0, 0, 0, 0, 0);
	cwd_moved();
	return rc;
}

EXPORT int fchdir(int fd)
{
	int rc = log_map ? (int)cookie_call(SYS_fchdir, fd, 0, 0, 0, 0) : (int)syscall(SYS_fchdir, fd, 0, 0, 0, 0, 0);
	cwd_moved();
	return rc;
}

/* --- getenv ----------------------------------------------------------- */

/* A variable the program reads is an input as a file it opens is: a
 * compiled program's getenv("BATCH_SIZE") is named in no source cashet
 * reads. Recorded as "$NAME"; what libc reads for itself (setlocale's
 * LANG, malloc's tunables) goes through its internal calls, not these. No
 * syscall names a variable, so no stop stands in for a record that cannot
 * be written (the ring full, a name too long): the log says one was lost,
 * and cashet takes the run as one it could not see whole (not stored). */
static void note_env(const char *name)
{
	preload_once();
	if (!log_map || !name || !*name)
		return;
	int e = errno;
	size_t n = strlen(name);
	union rec_buf u;
	int lost = n + 1 > PATH_MAX; /* the reader takes no longer record */
	if (!lost) {
		u.buf[sizeof(u.r)] = '$';
		memcpy(u.buf + sizeof(u.r) + 1, name, n);
		lost = put_once(&u, n + 1, TRACE_REC_ENV, 0) < 0;
	}
	if (lost)
		__atomic_store_n(&((struct trace_log_head *)log_map)->lost, 1, __ATOMIC_RELEASE);
	errno = e;
}

EXPORT char *getenv(const char *name)
{
	note_env(name);
	return env_value(name);
}

/* glibc's: NULL in a set-user-ID or set-group-ID program (AT_SECURE) */
EXPORT char *secure_getenv(const char *name)
{
	note_env(name);
	return getauxval(AT_SECURE) ? NULL : env_value(name);
}
