/* util: string buffers, error messages, allocation and small file helpers.
 * Allocation failure aborts: cashet cannot do anything useful without memory,
 * and checking every small allocation would bury the real error paths. */
#include "util/util.h"
#include "util/fsrec.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <sys/uio.h>
#include <unistd.h>

static void oom(void)
{
	fputs("cashet: out of memory\n", stderr);
	abort();
}

void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		oom();
	return p;
}

void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);
	if (!p)
		oom();
	return p;
}

void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (!p)
		oom();
	return p;
}

char *xstrdup(const char *s)
{
	return xstrndup(s, strlen(s));
}

char *xstrndup(const char *s, size_t n)
{
	char *p = xmalloc(n + 1);
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

void sb_grow(struct strbuf *sb, size_t extra)
{
	size_t need = sb->len + extra + 1;
	if (need <= sb->alloc)
		return;
	size_t a = sb->alloc ? sb->alloc : 64;
	while (a < need)
		a *= 2;
	sb->buf = xrealloc(sb->buf, a);
	/* "always NUL-terminated" holds from the first allocation on: a
	 * buffer grown and then left empty is detached as "", not garbage */
	if (!sb->alloc)
		sb->buf[0] = '\0';
	sb->alloc = a;
}

void sb_add(struct strbuf *sb, const void *data, size_t len)
{
	sb_grow(sb, len);
	if (len)
		memcpy(sb->buf + sb->len, data, len);
	sb->len += len;
	sb->buf[sb->len] = '\0';
}

void sb_adds(struct strbuf *sb, const char *s)
{
	sb_add(sb, s, strlen(s));
}

void sb_addc(struct strbuf *sb, char c)
{
	sb_add(sb, &c, 1);
}

void sb_vaddf(struct strbuf *sb, const char *fmt, va_list ap)
{
	va_list cp;
	va_copy(cp, ap);
	int n = vsnprintf(NULL, 0, fmt, cp);
	va_end(cp);
	if (n < 0)
		return;
	sb_grow(sb, (size_t)n);
	vsnprintf(sb->buf + sb->len, (size_t)n + 1, fmt, ap);
	sb->len += (size_t)n;
}

void sb_addf(struct strbuf *sb, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	sb_vaddf(sb, fmt, ap);
	va_end(ap);
}

void sb_add_u64(struct strbuf *sb, uint64_t v)
{
	char d[20];
	size_t n = 0;
	do
		d[sizeof(d) - ++n] = (char)('0' + v % 10);
	while ((v /= 10) != 0);
	sb_add(sb, d + sizeof(d) - n, n);
}

void sb_add_i64(struct strbuf *sb, int64_t v)
{
	if (v < 0)
		sb_addc(sb, '-');
	sb_add_u64(sb, v < 0 ? 0 - (uint64_t)v : (uint64_t)v);
}

void sb_reset(struct strbuf *sb)
{
	sb_setlen(sb, 0);
}

void sb_setlen(struct strbuf *sb, size_t len)
{
	if (!sb->buf) {
		if (len == 0)
			return;
		sb_grow(sb, len);
	}
	sb->len = len;
	sb->buf[len] = '\0';
}

void sb_release(struct strbuf *sb)
{
	free(sb->buf);
	sb->buf = NULL;
	sb->len = sb->alloc = 0;
}

char *sb_detach(struct strbuf *sb)
{
	char *p = sb->buf ? sb->buf : xstrdup("");
	sb->buf = NULL;
	sb->len = sb->alloc = 0;
	return p;
}

const char *sb_str(const struct strbuf *sb)
{
	return sb->buf ? sb->buf : "";
}

static _Thread_local struct strbuf last_err;
static _Thread_local enum err_code last_code = E_ERROR;

/* A thread's message is freed when the thread ends: its TLS goes, the heap
 * buffer would stay. serve answers on MHD's pool threads and runs each
 * submit on a thread of its own; a long-running server would keep one
 * message per submit. */
static pthread_key_t err_key;
static pthread_once_t err_key_once = PTHREAD_ONCE_INIT;
static int err_key_made;

static void err_thread_end(void *msg)
{
	sb_release(msg);
}

static void err_key_create(void)
{
	err_key_made = pthread_key_create(&err_key, err_thread_end) == 0;
}

/* Makes msg (taken over) this thread's last error. */
static void err_store(struct strbuf *msg, enum err_code code)
{
	pthread_once(&err_key_once, err_key_create);
	if (err_key_made)
		pthread_setspecific(err_key, &last_err);
	sb_release(&last_err);
	last_err = *msg;
	last_code = code;
}

static int err_vset(enum err_code code, const char *fmt, va_list ap)
{
	struct strbuf sb = STRBUF_INIT;
	sb_vaddf(&sb, fmt, ap);
	err_store(&sb, code);
	return code;
}

int err_set(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int rc = err_vset(E_ERROR, fmt, ap);
	va_end(ap);
	return rc;
}

int err_setc(enum err_code code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int rc = err_vset(code, fmt, ap);
	va_end(ap);
	return rc;
}

enum err_code err_code(void)
{
	return last_code;
}

int err_sys(const char *fmt, ...)
{
	int e = errno;
	struct strbuf sb = STRBUF_INIT;
	va_list ap;
	va_start(ap, fmt);
	sb_vaddf(&sb, fmt, ap);
	va_end(ap);
	sb_addf(&sb, ": %s", strerror(e));
	err_store(&sb, e == ENOENT ? E_NOTFOUND : e == EEXIST ? E_EXISTS : E_ERROR);
	errno = e;
	return -1;
}

const char *err_msg(void)
{
	return last_err.len ? last_err.buf : "unknown error";
}

void err_clear(void)
{
	sb_release(&last_err);
	last_code = E_ERROR;
}

void sv_push(struct strvec *sv, const char *s)
{
	sv_push_nocopy(sv, xstrdup(s));
}

void sv_push_nocopy(struct strvec *sv, char *s)
{
	if (sv->n + 2 > sv->alloc) {
		sv->alloc = sv->alloc ? sv->alloc * 2 : 8;
		sv->v = xrealloc(sv->v, sv->alloc * sizeof(*sv->v));
	}
	sv->v[sv->n++] = s;
	sv->v[sv->n] = NULL;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

void sv_sort(struct strvec *sv)
{
	if (sv->n > 1)
		qsort(sv->v, sv->n, sizeof(*sv->v), cmp_str);
}

int sv_sorted_has(const struct strvec *sv, const char *s)
{
	size_t lo = 0, hi = sv->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(sv->v[mid], s);
		if (!c)
			return 1;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 0;
}

void sv_release(struct strvec *sv)
{
	for (size_t i = 0; i < sv->n; i++)
		free(sv->v[i]);
	free(sv->v);
	sv->v = NULL;
	sv->n = sv->alloc = 0;
}

/* strtod also reads "nan" and "inf": not numbers here. A value too large
 * for a double (ERANGE, HUGE_VAL) is a number, only too large. */
static int not_a_number(const char *s, const char *end, double v, int err)
{
	return end == s || isnan(v) || (isinf(v) && err != ERANGE) || (err && !isinf(v)) || v < 0;
}

int parse_duration_ms(const char *s, int64_t *out_ms)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (not_a_number(s, end, v, errno))
		return err_set("invalid duration '%s' (expected e.g. 30s, 10m, 12h, 7d)", s);
	double mult;
	if (!*end || !strcmp(end, "s"))
		mult = 1000;
	else if (!strcmp(end, "ms"))
		mult = 1;
	else if (!strcmp(end, "m"))
		mult = 60e3;
	else if (!strcmp(end, "h"))
		mult = 3600e3;
	else if (!strcmp(end, "d"))
		mult = 86400e3;
	else if (!strcmp(end, "w"))
		mult = 7 * 86400e3;
	else
		return err_set("invalid duration '%s' (expected e.g. 30s, 10m, 12h, 7d)", s);
	if (v * mult > (double)DURATION_MAX_MS)
		return err_set("duration '%s' is too long (at most 100 years, 36525d)", s);
	*out_ms = (int64_t)(v * mult + 0.5);
	return 0;
}

int parse_size(const char *s, uint64_t *out)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (not_a_number(s, end, v, errno))
		return err_set("invalid size '%s' (expected e.g. 500M, 2G)", s);
	static const char units[] = "KMGT";
	double mult = 1;
	if (*end) {
		const char *u = strchr(units, *end & ~0x20);
		if (!u || (end[1] && !((end[1] | 0x20) == 'b' && !end[2]) &&
			   !((end[1] | 0x20) == 'i' && (end[2] | 0x20) == 'b' && !end[3])))
			return err_set("invalid size '%s' (expected e.g. 500M, 2G)", s);
		for (const char *p = units; p <= u; p++)
			mult *= 1024;
	}
	/* 2^64 is exact as a double; the cast is only defined below it */
	if (v * mult + 0.5 >= 18446744073709551616.0)
		return err_set("size '%s' is too large (at most 16 EiB)", s);
	*out = (uint64_t)(v * mult + 0.5);
	return 0;
}

int thread_start(pthread_t *th, void *(*fn)(void *), void *arg, int detached)
{
	sigset_t all, old;
	pthread_attr_t attr;
	sigfillset(&all);
	pthread_attr_init(&attr);
	if (detached)
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int rc = pthread_create(th, &attr, fn, arg);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
	return rc;
}

struct pfor {
	void (*fn)(void *arg, size_t i, struct diropen *dirs);
	void *arg;
	size_t n;
	atomic_size_t next;
};

static void *pfor_main(void *p)
{
	struct pfor *f = p;
	struct diropen dirs = { 0 };
	/* a few items a claim: one atomic add per item costs more than a
	 * small file's hash does when two threads share the counter (and
	 * neighbours mostly share a directory) */
	enum { CLAIM = 16 };
	size_t at;
	while ((at = atomic_fetch_add(&f->next, CLAIM)) < f->n)
		for (size_t i = at; i < at + CLAIM && i < f->n; i++)
			f->fn(f->arg, i, &dirs);
	diropen_close(&dirs);
	return NULL;
}

void parallel_for(size_t n, size_t min, void (*fn)(void *arg, size_t i, struct diropen *dirs), void *arg)
{
	struct pfor f = { .fn = fn, .arg = arg, .n = n };
	pthread_t th[3];
	int started = 0;
	atomic_init(&f.next, 0);
	long cpus = n >= min && n > 1 ? sysconf(_SC_NPROCESSORS_ONLN) : 1;
	for (long c = 1; c < cpus && started < 3; c++)
		if (thread_start(&th[started], pfor_main, &f, 0) == 0)
			started++;
	pfor_main(&f);
	while (started)
		pthread_join(th[--started], NULL);
}

int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return ts_ns(&ts);
}

int64_t fs_clock_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME_COARSE, &ts);
	return ts_ns(&ts);
}

int fs_changed_since(const struct stat *sb, int64_t t)
{
	if (!sb->st_ctim.tv_nsec)
		t -= t % 1000000000;
	return ts_ns(&sb->st_ctim) >= t;
}

int64_t fs_clock_after(int64_t newest)
{
	int64_t t = fs_clock_ns();
	for (int i = 0; t <= newest && i < 25; i++) {
		struct timespec ms = { 0, 1000000 };
		nanosleep(&ms, NULL);
		t = fs_clock_ns();
	}
	return t;
}

int64_t env_delay_ms(const char *name, int64_t def)
{
	const char *v = getenv(name);
	char *end;
	if (!v || !*v)
		return def;
	if (!strcmp(v, "off"))
		return -1;
	long long ms = strtoll(v, &end, 10);
	return *end || ms < 0 ? def : ms;
}

int64_t now_ms(void)
{
	return now_ns() / 1000000;
}

int read_link(const char *path, struct strbuf *out)
{
	sb_reset(out);
	for (size_t cap = 256;; cap *= 2) {
		sb_grow(out, cap);
		ssize_t n = readlink(path, out->buf, out->alloc - 1);
		if (n < 0)
			return err_sys("cannot read link %s", path);
		if ((size_t)n < out->alloc - 1) {
			sb_setlen(out, (size_t)n);
			return 0;
		}
	}
}

/* The length of path's directory, with its '/', open in d: 0 when it is
 * not (the path is then used whole). A directory is opened for the second
 * path in it in a row: paths each in a directory of its own (a Python
 * start-up's) would cost two opens each. */
static size_t dir_in(struct diropen *d, const char *path)
{
	const char *slash = strrchr(path, '/');
	size_t len = slash ? (size_t)(slash - path) + 1 : 0;
	if (len < 2) /* "name", "/name": as it is */
		return 0;
	if (!d->dir || d->len != len || memcmp(d->dir, path, len)) {
		diropen_close(d);
		d->dir = xstrndup(path, len);
		d->len = len;
		return 0;
	}
	if (!d->tried) {
		d->tried = 1;
		d->fd = open(d->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) + 1;
	}
	return d->fd ? len : 0;
}

int diropen_open(struct diropen *d, const char *path, int flags)
{
	size_t len = dir_in(d, path);
	return len ? openat(d->fd - 1, path + len, flags) : open(path, flags);
}

int diropen_lstat(struct diropen *d, const char *path, struct stat *sb)
{
	size_t len = dir_in(d, path);
	return len ? fstatat(d->fd - 1, path + len, sb, AT_SYMLINK_NOFOLLOW) : lstat(path, sb);
}

void diropen_close(struct diropen *d)
{
	if (d->fd)
		close(d->fd - 1);
	free(d->dir);
	*d = (struct diropen){ 0 };
}

int read_file_sb(const char *path, struct strbuf *sb)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return err_sys("cannot open %s", path);
	int rc = read_fd_sb(fd, path, sb);
	close(fd);
	return rc;
}

int read_fd_sb_sized(int fd, const char *path, uint64_t size, struct strbuf *sb)
{
	size_t chunk = size ? (size_t)size + 1 : 4096, start = sb->len;
	int rc = 0;
	for (;;) {
		sb_grow(sb, chunk);
		size_t want = sb->alloc - sb->len - 1;
		ssize_t n = read(fd, sb->buf + sb->len, want);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = err_sys("cannot read %s", path);
			break;
		}
		if (n == 0)
			break;
		sb->len += (size_t)n;
		/* a regular file read short, at the length it was stat'ed
		 * with: at its end, without the read that says so (a read
		 * a file, 20,000 of them for a directory of outputs) */
		if (size && (size_t)n < want && sb->len - start == size)
			break;
	}
	sb->buf[sb->len] = '\0';
	return rc;
}

int read_fd_sb(int fd, const char *path, struct strbuf *sb)
{
	/* sized from the file: a 64 KiB buffer per small file read (configs,
	 * refs) was a fresh mapping, and its pages faults, each time */
	struct stat st;
	int regular = fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
	return read_fd_sb_sized(fd, path, regular && st.st_size > 0 ? (uint64_t)st.st_size : 0, sb);
}

int write_all(int fd, const void *data, size_t len)
{
	const char *p = data;
	while (len) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int writev_all(int fd, struct iovec *iov, int n)
{
	while (n > 0) {
		ssize_t w = writev(fd, iov, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -1;
		/* a short write: skip what went, go on from inside the next */
		for (; n > 0 && (size_t)w >= iov->iov_len; iov++, n--)
			w -= (ssize_t)iov->iov_len;
		if (n > 0) {
			iov->iov_base = (char *)iov->iov_base + w;
			iov->iov_len -= (size_t)w;
		}
	}
	return 0;
}

int write_file_atomic(const char *path, const void *data, size_t len, unsigned mode)
{
	struct strbuf tmp = STRBUF_INIT;
	int rc = -1;
	sb_addf(&tmp, "%s.cashet-tmp.%ld", path, (long)getpid());
	int fd = open(tmp.buf, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		err_sys("cannot create %s", tmp.buf);
		goto out;
	}
	if (write_all(fd, data, len) < 0 || fchmod(fd, mode & 07777) < 0) {
		err_sys("cannot write %s", tmp.buf);
		close(fd);
		unlink(tmp.buf);
		goto out;
	}
	close(fd);
	if (rename(tmp.buf, path) < 0) {
		err_sys("cannot rename %s to %s", tmp.buf, path);
		unlink(tmp.buf);
		goto out;
	}
	rc = 0;
out:
	sb_release(&tmp);
	return rc;
}

int path_under(const char *path, const char *dir)
{
	size_t n = strlen(dir);
	return !strncmp(path, dir, n) && (path[n] == '/' || path[n] == 0 || (n == 1 && dir[0] == '/'));
}

int path_is_normal(const char *p)
{
	if (p[0] != '/')
		return 0;
	if (!p[1])
		return 1;
	for (; *p; p++) {
		if (*p != '/')
			continue;
		const char *n = p + 1; /* a component: not empty, ".", ".." */
		if (!*n || *n == '/' ||
		    (n[0] == '.' && (!n[1] || n[1] == '/' || (n[1] == '.' && (!n[2] || n[2] == '/')))))
			return 0;
	}
	return 1;
}

void path_absolute(const char *cwd, const char *path, struct strbuf *out)
{
	struct strbuf raw = STRBUF_INIT;
	/* most are (the trace's, a walk's): copied as they are */
	if (path != out->buf && path_is_normal(path)) {
		sb_reset(out);
		sb_adds(out, path);
		return;
	}
	if (path[0] != '/') {
		char buf[PATH_MAX];
		if (!cwd)
			cwd = getcwd(buf, sizeof(buf));
		sb_adds(&raw, cwd ? cwd : "");
		sb_addc(&raw, '/');
	}
	sb_adds(&raw, path);
	sb_reset(out);
	const char *p = raw.buf;
	while (*p) {
		while (*p == '/')
			p++;
		const char *e = strchrnul(p, '/');
		size_t n = (size_t)(e - p);
		if (n == 2 && p[0] == '.' && p[1] == '.') {
			char *slash = out->len ? strrchr(out->buf, '/') : NULL;
			sb_setlen(out, slash ? (size_t)(slash - out->buf) : 0);
		} else if (n && !(n == 1 && p[0] == '.')) {
			sb_addc(out, '/');
			sb_add(out, p, n);
		}
		p = e;
	}
	if (!out->len)
		sb_addc(out, '/');
	sb_release(&raw);
}

/* Whether "NAME=..." entries a and b name the same variable. */
static int same_name(const char *a, const char *b)
{
	size_t n = strcspn(a, "=");
	return !strncmp(a, b, n) && (b[n] == '=' || !b[n]);
}

void env_merge(char *const *base, const struct strvec *set, struct strvec *out)
{
	size_t n = set ? set->n : 0;
	for (char *const *e = base; e && *e; e++) {
		int replaced = 0;
		for (size_t k = 0; k < n && !replaced; k++)
			replaced = same_name(*e, set->v[k]);
		if (!replaced)
			sv_push(out, *e);
	}
	for (size_t k = 0; k < n; k++) {
		int later = 0;
		for (size_t j = k + 1; j < n && !later; j++)
			later = same_name(set->v[k], set->v[j]);
		if (!later)
			sv_push(out, set->v[k]);
	}
}

int glob_at(const char *cwd, const char *pattern, int flags, glob_t *g)
{
	struct strbuf p = STRBUF_INIT;
	if (pattern[0] != '/') {
		/* the directory's own name must match only itself */
		for (const char *c = cwd; *c; c++) {
			if (strchr("*?[]\\{}", *c))
				sb_addc(&p, '\\');
			sb_addc(&p, *c);
		}
		if (!p.len || p.buf[p.len - 1] != '/')
			sb_addc(&p, '/');
	}
	sb_adds(&p, pattern);
	int rc = glob(p.buf, flags, NULL, g);
	sb_release(&p);
	if (fsrec_on())
		fsrec_glob('G', cwd, pattern, flags, rc == 0 ? g->gl_pathv : NULL, rc == 0 ? g->gl_pathc : 0);
	return rc;
}

int dir_names(const char *path, struct strvec *names)
{
	if (fsrec_on()) {
		/* adding, removing or renaming an entry changes its times */
		struct stat sb;
		fsrec_stat(path, stat(path, &sb), &sb);
	}
	DIR *d = opendir(path);
	if (!d)
		return -1;
	struct strvec got = STRVEC_INIT;
	struct dirent *e;
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			sv_push(&got, e->d_name);
	closedir(d);
	sv_sort(&got);
	for (size_t i = 0; i < got.n; i++)
		sv_push_nocopy(names, got.v[i]);
	free(got.v);
	return 0;
}

int glob_match(const char *pat, const char *path)
{
	if (!strncmp(pat, "**", 2) && (pat[2] == '/' || !pat[2])) {
		if (!pat[2])
			return 1;
		for (const char *p = path;;) {
			if (glob_match(pat + 3, p))
				return 1;
			const char *s = strchr(p, '/');
			if (!s)
				return 0;
			p = s + 1;
		}
	}
	const char *pe = strchrnul(pat, '/'), *xe = strchrnul(path, '/');
	char *a = xstrndup(pat, (size_t)(pe - pat)), *b = xstrndup(path, (size_t)(xe - path));
	int ok = fnmatch(a, b, FNM_PERIOD) == 0;
	free(a);
	free(b);
	if (!ok || !*pe || !*xe)
		return ok && !*pe && !*xe;
	return glob_match(pe + 1, xe + 1);
}

/* Every path below dir (rel its name as the pattern spells it), matched. */
static void glob_walk(const char *dir, const char *rel, const char *pattern, int depth, struct strvec *out)
{
	DIR *d = depth < 64 ? opendir(dir) : NULL;
	struct dirent *e;
	struct strbuf abs = STRBUF_INIT, r = STRBUF_INIT;
	while (d && (e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		sb_reset(&abs);
		sb_reset(&r);
		sb_addf(&abs, "%s/%s", dir, e->d_name);
		sb_addf(&r, "%s%s%s", rel, *rel && rel[strlen(rel) - 1] != '/' ? "/" : "", e->d_name);
		if (glob_match(pattern, r.buf))
			sv_push(out, abs.buf);
		struct stat sb;
		if (stat(abs.buf, &sb) == 0 && S_ISDIR(sb.st_mode))
			glob_walk(abs.buf, r.buf, pattern, depth + 1, out);
	}
	if (d)
		closedir(d);
	sb_release(&abs);
	sb_release(&r);
}

int glob_paths(const char *cwd, const char *pattern, struct strvec *out)
{
	const char *star2 = strstr(pattern, "**");
	if (!star2) {
		glob_t g;
		int gr = glob_at(cwd, pattern, GLOB_BRACE, &g);
		if (gr == GLOB_NOMATCH)
			return 0;
		if (gr != 0)
			return err_set("cannot expand %s", pattern);
		for (size_t i = 0; i < g.gl_pathc; i++)
			sv_push(out, g.gl_pathv[i]);
		globfree(&g);
		return 0;
	}
	/* the walk starts at the last directory before any pattern character */
	size_t base = 0;
	for (size_t i = 0; pattern + i < star2 && !strchr("*?[", pattern[i]); i++)
		if (pattern[i] == '/')
			base = i + 1;
	struct strbuf rel = STRBUF_INIT, dir = STRBUF_INIT;
	sb_add(&rel, pattern, base);
	path_absolute(cwd, rel.len ? rel.buf : ".", &dir);
	size_t from = out->n;
	glob_walk(dir.buf, rel.buf, pattern, 0, out);
	sv_sort(out);
	if (fsrec_on() && from)
		fsrec_spoil(); /* the list asked again would not hold what was there */
	else if (fsrec_on())
		fsrec_glob('g', cwd, pattern, 0, out->v, out->n);
	sb_release(&rel);
	sb_release(&dir);
	return 0;
}

void rm_rf(const char *path)
{
	struct stat sb;
	if (lstat(path, &sb) < 0)
		return;
	if (S_ISDIR(sb.st_mode)) {
		DIR *d = opendir(path);
		struct dirent *e;
		struct strbuf p = STRBUF_INIT;
		while (d && (e = readdir(d))) {
			if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
				continue;
			sb_reset(&p);
			sb_addf(&p, "%s/%s", path, e->d_name);
			rm_rf(p.buf);
		}
		if (d)
			closedir(d);
		sb_release(&p);
		rmdir(path);
	} else {
		unlink(path);
	}
}

int mkdirs(const char *path, unsigned mode)
{
	struct strbuf p = STRBUF_INIT;
	int rc = 0;
	sb_adds(&p, path);
	for (size_t i = 1; i <= p.len; i++) {
		if (i < p.len && p.buf[i] != '/')
			continue;
		char c = p.buf[i];
		p.buf[i] = '\0';
		if (mkdir(p.buf, mode) < 0 && errno != EEXIST) {
			rc = err_sys("cannot create directory %s", p.buf);
			break;
		}
		p.buf[i] = c;
	}
	sb_release(&p);
	return rc;
}

void fmt_time(int64_t ms, char *buf, size_t len)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	localtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm);
}

void fmt_iso_time(int64_t ms, char *buf, size_t len)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	gmtime_r(&t, &tm);
	char tmp[32];
	strftime(tmp, sizeof(tmp), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf, len, "%s.%03dZ", tmp, (int)(ms % 1000));
}

void fmt_size(uint64_t b, char *buf, size_t len)
{
	const char *u = "BKMGT";
	double v = (double)b;
	while (v >= 1024 && u[1]) {
		v /= 1024;
		u++;
	}
	if (*u == 'B')
		snprintf(buf, len, "%lluB", (unsigned long long)b);
	else
		snprintf(buf, len, "%.1f%c", v, *u);
}

void fmt_duration(int64_t ms, char *buf, size_t len)
{
	if (ms < 1000)
		snprintf(buf, len, "%lldms", (long long)ms);
	else if (ms < 60000)
		snprintf(buf, len, "%.2fs", (double)ms / 1000);
	else
		snprintf(buf, len, "%lldm%02llds", (long long)(ms / 60000), (long long)(ms / 1000 % 60));
}

/* The stat memo: an open-addressing table of paths outside `inside`, each
 * with what stat() said (or its errno), filled by stat_memo() while on. */
struct memo_ent {
	char *path;
	int err; /* 0: sb holds the result */
	struct stat sb;
};

static struct {
	char *inside;
	struct memo_ent *tab;
	size_t cap, n;
	int64_t since; /* CLOCK_REALTIME_COARSE when it was last emptied */
} memo;

int64_t stat_memo_since(void)
{
	return memo.inside ? memo.since : 0;
}

static size_t memo_hash(const char *s)
{
	size_t h = 1469598103934665603u;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211u;
	return h;
}

void stat_memo_enable(const char *inside)
{
	stat_memo_clear();
	free(memo.inside);
	memo.inside = inside ? xstrdup(inside) : NULL;
}

void stat_memo_clear(void)
{
	memo.since = fs_clock_ns();
	for (size_t i = 0; i < memo.cap; i++)
		free(memo.tab[i].path);
	free(memo.tab);
	memo.tab = NULL;
	memo.cap = memo.n = 0;
}

static int memo_outside(const char *path)
{
	size_t n = strlen(memo.inside);
	return path[0] == '/' && !(strncmp(path, memo.inside, n) == 0 && (path[n] == '/' || !path[n]));
}

static int memo_stat(const char *path, struct stat *sb);

int stat_memo(const char *path, struct stat *sb)
{
	int rc = memo_stat(path, sb);
	fsrec_stat(path, rc, sb);
	return rc;
}

static int memo_stat(const char *path, struct stat *sb)
{
	if (!memo.inside || !memo_outside(path))
		return stat(path, sb);
	if (memo.n * 2 >= memo.cap) {
		size_t old = memo.cap;
		struct memo_ent *t = memo.tab;
		memo.cap = old ? 2 * old : 1024;
		memo.tab = xcalloc(memo.cap, sizeof(*memo.tab));
		for (size_t i = 0; i < old; i++) {
			if (!t[i].path)
				continue;
			size_t h = memo_hash(t[i].path) & (memo.cap - 1);
			while (memo.tab[h].path)
				h = (h + 1) & (memo.cap - 1);
			memo.tab[h] = t[i];
		}
		free(t);
	}
	size_t h = memo_hash(path) & (memo.cap - 1);
	while (memo.tab[h].path && strcmp(memo.tab[h].path, path))
		h = (h + 1) & (memo.cap - 1);
	struct memo_ent *e = &memo.tab[h];
	if (!e->path) {
		e->err = stat(path, &e->sb) < 0 ? errno : 0;
		e->path = xstrdup(path);
		memo.n++;
	}
	if (e->err) {
		errno = e->err;
		return -1;
	}
	*sb = e->sb;
	return 0;
}
