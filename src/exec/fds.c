/* fds: the descriptors a command inherits besides its standard streams
 * (see fds.h). What a descriptor is comes from the kernel (fstat, its
 * close-on-exec flag), never from its number: only the pipes are sorted by
 * what the command line says, and a false "named" costs a cached run,
 * never a stale one. */
#include "exec/fds.h"
#include "trace/preload.h"

#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

/* Whether s has prefix followed by the digits of fd and then no digit. */
static int names_after(const char *s, const char *prefix, int fd)
{
	size_t n = strlen(prefix);
	for (const char *p = strstr(s, prefix); p; p = strstr(p + 1, prefix)) {
		const char *d = p + n;
		if (!isdigit((unsigned char)*d))
			continue;
		char *end;
		long v = strtol(d, &end, 10);
		if (v == fd && !isdigit((unsigned char)*end))
			return 1;
	}
	return 0;
}

int fds_named(char *const *argv, int fd)
{
	/* /dev/fd/N, /proc/self/fd/N, /proc/thread-self/fd/N: all end so */
	static const char *const prefixes[] = { "/fd/", "<&", ">&", NULL };
	for (; argv && *argv; argv++)
		for (const char *const *p = prefixes; *p; p++)
			if (names_after(*argv, *p, fd))
				return 1;
	return 0;
}

static int cmp_int(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;
	return (x > y) - (x < y);
}

/* The open descriptors above 2, sorted (*n of them; caller frees). From
 * /proc when it is mounted, else by asking each possible one. */
static int *open_fds(size_t *n)
{
	size_t cap = 16;
	int *v = xmalloc(cap * sizeof(*v));
	*n = 0;
	DIR *d = opendir("/proc/self/fd");
	if (d) {
		struct dirent *e;
		while ((e = readdir(d))) {
			char *end;
			long fd = strtol(e->d_name, &end, 10);
			if (!isdigit((unsigned char)e->d_name[0]) || *end || fd <= 2 || fd == dirfd(d))
				continue;
			if (*n == cap)
				v = xrealloc(v, (cap *= 2) * sizeof(*v));
			v[(*n)++] = (int)fd;
		}
		closedir(d);
	} else {
		struct rlimit rl;
		rlim_t max = getrlimit(RLIMIT_NOFILE, &rl) == 0 ? rl.rlim_cur : 1024;
		if (max > 65536)
			max = 65536;
		for (int fd = 3; (rlim_t)fd < max; fd++) {
			if (fcntl(fd, F_GETFD) < 0)
				continue;
			if (*n == cap)
				v = xrealloc(v, (cap *= 2) * sizeof(*v));
			v[(*n)++] = fd;
		}
	}
	qsort(v, *n, sizeof(*v), cmp_int);
	return v;
}

/* Where fd's file is, as /proc says (owned), or NULL. */
static char *fd_path(int fd)
{
	struct strbuf link = STRBUF_INIT, buf = STRBUF_INIT;
	sb_addf(&link, "/proc/self/fd/%d", fd);
	char *path = read_link(link.buf, &buf) == 0 ? sb_detach(&buf) : NULL;
	err_clear();
	sb_release(&link);
	sb_release(&buf);
	return path;
}

void fds_scan(char *const *argv, const int *skip, size_t nskip, struct fds *out)
{
	size_t n, cap = 0;
	int *v = open_fds(&n);
	memset(out, 0, sizeof(*out));
	out->piped = -1;
	for (size_t i = 0; i < n; i++) {
		int fd = v[i], fdflags = fcntl(fd, F_GETFD), skipped = 0;
		struct stat sb;
		for (size_t k = 0; k < nskip && !skipped; k++)
			skipped = skip[k] == fd;
		if (skipped || fdflags < 0 || (fdflags & FD_CLOEXEC) || fstat(fd, &sb) < 0)
			continue;
		if (S_ISFIFO(sb.st_mode) || S_ISSOCK(sb.st_mode)) {
			if (out->piped < 0 && fds_named(argv, fd))
				out->piped = fd;
			continue;
		}
		/* a terminal, a device, a directory: nothing to hash, as for
		 * stdin; nor an outer cashet's trace log (a command traced by
		 * cashet runs cashet exec), which its tracer rewrites all along */
		if (!S_ISREG(sb.st_mode) || fcntl(fd, F_GET_SEALS) == TRACE_PRELOAD_SEALS)
			continue;
		/* Open only for writing (bats' log, `3>>build.log`): an output,
		 * read back only through its path, so it counts only when the
		 * command line names it; a log that grows would otherwise make
		 * every run under it a miss. */
		int acc = fcntl(fd, F_GETFL);
		if (acc >= 0 && (acc & O_ACCMODE) == O_WRONLY && !fds_named(argv, fd))
			continue;
		if (out->nfiles == cap)
			out->files = xrealloc(out->files, (cap = cap ? cap * 2 : 4) * sizeof(*out->files));
		out->files[out->nfiles++] = (struct fp_fd){ .fd = fd, .path = fd_path(fd) };
	}
	free(v);
}

void fds_release(struct fds *f)
{
	for (size_t i = 0; i < f->nfiles; i++)
		free(f->files[i].path);
	free(f->files);
	memset(f, 0, sizeof(*f));
	f->piped = -1;
}
