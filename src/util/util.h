/* util: the small things every module needs: a growable string buffer,
 * the last-error message, allocation that never returns NULL, durations.
 * Errors follow libgit2's habit: functions return 0 or a negative value and
 * leave a message with err_set(); only the CLI layer prints it, once. */
#ifndef CASHET_UTIL_H
#define CASHET_UTIL_H

#include <pthread.h>
#include <stddef.h>
#include <sys/stat.h>
#include <stdint.h>
#include <stdarg.h>
#include <glob.h>
#include <time.h>

#if defined(__GNUC__)
#define PRINTF_LIKE(f, a) __attribute__((format(printf, f, a)))
/* The one symbol a loadable module exports (modules build with -fvisibility=hidden). */
#define MODULE_ENTRY __attribute__((visibility("default")))
#else
#define PRINTF_LIKE(f, a)
#define MODULE_ENTRY
#endif

/* Growable, always NUL-terminated buffer. A zeroed struct is an empty buffer;
 * sb_release() frees it and leaves it empty again. */
struct strbuf {
	char *buf;
	size_t len;
	size_t alloc;
};
#define STRBUF_INIT                                                                                                    \
	{                                                                                                              \
		NULL, 0, 0                                                                                             \
	}

void sb_grow(struct strbuf *sb, size_t extra);
void sb_add(struct strbuf *sb, const void *data, size_t len);
void sb_adds(struct strbuf *sb, const char *s);
void sb_addc(struct strbuf *sb, char c);
void sb_addf(struct strbuf *sb, const char *fmt, ...) PRINTF_LIKE(2, 3);
/* v in decimal, as "%" PRId64 / PRIu64 print it, without vsnprintf (a
 * run's meta writes four numbers for each of 20,000 inputs) */
void sb_add_i64(struct strbuf *sb, int64_t v);
void sb_add_u64(struct strbuf *sb, uint64_t v);
void sb_vaddf(struct strbuf *sb, const char *fmt, va_list ap);
void sb_reset(struct strbuf *sb); /* len = 0, keeps memory */
void sb_setlen(struct strbuf *sb, size_t len);
void sb_release(struct strbuf *sb);
/* Returns the buffer (caller frees) and leaves sb empty. Never NULL. */
char *sb_detach(struct strbuf *sb);
/* "" when empty, never NULL. */
const char *sb_str(const struct strbuf *sb);

/* What an error means, for the callers that must tell errors apart: they
 * branch on the code, never on the message, which is only for people. */
enum err_code {
	E_ERROR = -1,     /* anything else */
	E_NOTFOUND = -2,  /* an object, run, ref or remote that is not there */
	E_AMBIGUOUS = -3, /* a prefix naming more than one thing */
	E_CORRUPT = -4,   /* bytes that fail their check */
	E_EXISTS = -5,
	E_BUSY = -6,       /* locked by another process */
	E_UNTRUSTED = -7,  /* a run from elsewhere that the trust policy refuses */
	E_UNWRITABLE = -8, /* the store cannot be written: a full disk, a read-only file system, an I/O error */
};

/* Last error, per thread. err_set returns -1 (E_ERROR) so `return
 * err_set(...)` reads well; err_setc returns and records code. */
int err_set(const char *fmt, ...) PRINTF_LIKE(1, 2);
int err_setc(enum err_code code, const char *fmt, ...) PRINTF_LIKE(2, 3);
/* The code of the last error (E_ERROR when it was set without one). */
enum err_code err_code(void);
/* Like err_set, appending ": strerror(errno)". */
int err_sys(const char *fmt, ...) PRINTF_LIKE(1, 2);
const char *err_msg(void);
void err_clear(void);

void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);

/* A growable array of owned strings. */
struct strvec {
	char **v;
	size_t n;
	size_t alloc;
};
#define STRVEC_INIT                                                                                                    \
	{                                                                                                              \
		NULL, 0, 0                                                                                             \
	}
void sv_push(struct strvec *sv, const char *s);
void sv_push_nocopy(struct strvec *sv, char *s);
void sv_sort(struct strvec *sv);
/* Binary search in a sorted vector. */
int sv_sorted_has(const struct strvec *sv, const char *s);
void sv_release(struct strvec *sv);

/* An environment: base (NULL-terminated "NAME=VALUE" strings) with each
 * "NAME=VALUE" of set put over it, appended to out; of two settings of one
 * name in set, the later wins. */
void env_merge(char *const *base, const struct strvec *set, struct strvec *out);

/* Parse "90", "1.5s", "250ms", "10m", "12h", "7d", "2w" into milliseconds,
 * at most DURATION_MAX_MS: a timestamp plus a duration never overflows. */
#define DURATION_MAX_MS (36525LL * 86400000) /* 100 years */
int parse_duration_ms(const char *s, int64_t *out_ms);
/* Parse "500", "500K", "500M", "2G", "1T" (powers of 1024) into bytes;
 * nan, inf and sizes of 2^64 or more are refused. */
int parse_size(const char *s, uint64_t *out);

int64_t now_ms(void);
/* A delay in ms from the environment variable name: def when unset or
 * not a number of 0 or more, -1 when "off". */
int64_t env_delay_ms(const char *name, int64_t def);
int64_t now_ns(void);
static inline int64_t ts_ns(const struct timespec *ts)
{
	return (int64_t)ts->tv_sec * 1000000000 + ts->tv_nsec;
}

/* What an lstat says of a file that a write to it would change. */
struct file_sig {
	dev_t dev;
	ino_t ino; /* 0: none taken */
	off_t size;
	int64_t mtime, ctime;
};
static inline struct file_sig file_sig_of(const struct stat *sb)
{
	return (struct file_sig){ sb->st_dev, sb->st_ino, sb->st_size, ts_ns(&sb->st_mtim), ts_ns(&sb->st_ctim) };
}
static inline int file_sig_eq(const struct file_sig *a, const struct file_sig *b)
{
	return a->dev == b->dev && a->ino == b->ino && a->size == b->size && a->mtime == b->mtime &&
	       a->ctime == b->ctime;
}
/* The clock a change stamps a file's ctime from: the coarse one, up to a
 * tick (4 ms at HZ=250) behind now_ns(). A change made after this
 * returned t has a ctime of t or later; one made just before may have t
 * as well. */
int64_t fs_clock_ns(void);
/* Whether sb's ctime may be of a change made at or after t (a value of
 * fs_clock_ns()). A ctime in whole seconds is taken as one from a file
 * system that keeps no more (ext4's small inodes, some network file
 * systems): any change in t's second counts. */
int fs_changed_since(const struct stat *sb, int64_t t);
/* fs_clock_ns() once it is past newest (a ctime the run must not share a
 * tick with), waiting a tick or two for it; a ctime further ahead (a
 * server's clock) is not waited for. */
int64_t fs_clock_after(int64_t newest);
/* pthread_create with every signal blocked in the new thread: the signals
 * the process handles (SIGCHLD, the forwarded INT/TERM) belong to the
 * thread that waits for the command. */
int thread_start(pthread_t *th, void *(*fn)(void *), void *arg, int detached);
/* Files opened one directory at a time, for one pass over a list of paths
 * in which those of a directory come together (a walk's, a trace's): a
 * file in the directory of the one before is opened relative to it,
 * without a walk of its whole path (a microsecond a file here, a fifth of
 * reading a small one). Zeroed to begin, one per thread; diropen_close
 * once the pass is over. The directory is the one its path named when the
 * pass came to it, as a walk's is. */
struct diropen {
	char *dir; /* the last path's directory, with its last '/' */
	size_t len;
	int fd;    /* + 1: 0 none (the first path of a directory is opened whole) */
	int tried; /* fd opened, or tried to */
};
/* open(path, flags), or -1 with errno set */
int diropen_open(struct diropen *d, const char *path, int flags);
/* lstat(path, sb): 0, or -1 with errno set */
int diropen_lstat(struct diropen *d, const char *path, struct stat *sb);
void diropen_close(struct diropen *d);
/* fn(arg, i, dirs) for every i in [0, n), in no set order: on this thread
 * and, from `min` items up on a machine with more than one CPU, on helper
 * threads as well (one per other CPU, at most 3), each with a diropen of
 * its own (closed when its share is done), neighbouring items mostly on
 * one thread. fn must be safe to run on several threads at once. Returns
 * when every call has returned. */
void parallel_for(size_t n, size_t min, void (*fn)(void *arg, size_t i, struct diropen *dirs), void *arg);

/* Read a whole file (regular or not) into sb (appending); read_fd_sb
 * reads fd, path naming it in messages. */
int read_file_sb(const char *path, struct strbuf *sb);
int read_fd_sb(int fd, const char *path, struct strbuf *sb);
/* read_fd_sb of a file a stat just found size bytes long (0: not known),
 * without a stat of its own: a file that changed since is read whole all
 * the same. */
int read_fd_sb_sized(int fd, const char *path, uint64_t size, struct strbuf *sb);
/* A symbolic link's target, as text, into out (replacing it); whatever
 * its length (st_size says 0 on some file systems). */
int read_link(const char *path, struct strbuf *out);
/* Write data to path atomically: temp file in the same directory, fsync-less rename. */
int write_file_atomic(const char *path, const void *data, size_t len, unsigned mode);
/* write(2) until everything is written or an error other than EINTR. */
int write_all(int fd, const void *data, size_t len);
struct iovec;
/* writev() until all of iov[0..n) is written (iov is changed): 0, or -1 errno */
int writev_all(int fd, struct iovec *iov, int n);
/* 1 if path is dir or lies below it (both absolute and folded, as
 * path_absolute leaves them; "/" holds every path). */
int path_under(const char *path, const char *dir);
/* path made absolute (against cwd, or the working directory when NULL)
 * with "//", "." and ".." folded lexically (symlinks are not resolved). */
void path_absolute(const char *cwd, const char *path, struct strbuf *out);
/* Whether path is as path_absolute would leave it. */
int path_is_normal(const char *path);
/* glob(3) of pattern relative to cwd (absolute); the matches are absolute. */
int glob_at(const char *cwd, const char *pattern, int flags, glob_t *g);
/* The paths (absolute, sorted) a pattern relative to cwd matches: glob(3)
 * with braces, and "**" as a whole path segment matching any number of
 * directories, as bash's globstar does (names starting with "." are not
 * entered). No match is an empty list. Returns 0 or -1 (err_msg). */
int glob_paths(const char *cwd, const char *pattern, struct strvec *out);
/* fnmatch(3) per "/"-separated segment, "**" matching zero or more. */
int glob_match(const char *pattern, const char *path);
/* The entries of directory path ("." and ".." left out), sorted, appended
 * to names. 0, or -1 with errno set (names untouched). */
int dir_names(const char *path, struct strvec *names);

/* A memo of stat() for a process that judges many runs against one
 * snapshot of the files outside its project (a pipeline's scheduler, as
 * make reads each file's time once per run): after stat_memo_enable(root),
 * stat_memo() answers a path outside root as stat() first did, errors
 * included; paths under root are always stat()ed. stat_memo_clear() when
 * anything may have written (a step ran, a replay restored a file). Off by
 * default; not for threads. */
void stat_memo_enable(const char *root);
void stat_memo_clear(void);
int stat_memo(const char *path, struct stat *sb);
/* When the memo was last emptied (CLOCK_REALTIME_COARSE, ns; 0: off):
 * what it answers was asked since then. */
int64_t stat_memo_since(void);
/* rm -rf (best effort) */
void rm_rf(const char *path);
/* mkdir -p */
int mkdirs(const char *path, unsigned mode);

/* Human-readable forms, for messages and listings. */
void fmt_time(int64_t ms, char *buf, size_t len);     /* local "YYYY-MM-DD HH:MM:SS" */
void fmt_iso_time(int64_t ms, char *buf, size_t len); /* UTC ISO 8601 */
void fmt_size(uint64_t bytes, char *buf, size_t len); /* 1.2K, 3.4M */
void fmt_duration(int64_t ms, char *buf, size_t len); /* 12ms, 1.5s, 2m03s */

#endif
