/* refs: reading and writing the refs a stored run needs (its run ref and
 * its command line's ref) in the core, for its own writer of small runs and
 * for the git module alike; not libgit2's refdb, which parses the whole
 * of packed-refs and scans every packed name for conflicts on each lookup
 * and each write: with 100,000 runs packed (20 MB) that made a miss 10x
 * slower. A ref is read from its loose file, else found by bisecting the
 * sorted packed-refs file; it is written as git writes one (a .lock file
 * created exclusively, renamed over the ref), so git and libgit2 see the
 * same refs and honour the same locks. */
#include "store/refs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

enum { HEXSZ = OID_HEX - 1 };

static int parse_hex(const char *p, size_t len, char hex[OID_HEX])
{
	if (len < HEXSZ)
		return -1;
	for (size_t i = 0; i < HEXSZ; i++)
		if (!strchr("0123456789abcdef", p[i]) || !p[i])
			return -1;
	memcpy(hex, p, HEXSZ);
	hex[HEXSZ] = '\0';
	return 0;
}

/* Compares the name on the packed-refs line at m[start..end) with name:
 * <0, 0, >0, or -2 for a line without one (the header, a peeled "^" line). */
static int line_cmp(const char *m, size_t start, size_t end, const char *name, size_t nlen)
{
	const char *line = m + start;
	size_t llen = end - start;
	if (llen <= HEXSZ + 1 || line[0] == '#' || line[0] == '^' || line[HEXSZ] != ' ')
		return -2;
	const char *rn = line + HEXSZ + 1;
	size_t rlen = llen - HEXSZ - 1;
	int cmp = memcmp(rn, name, rlen < nlen ? rlen : nlen);
	if (cmp == 0)
		cmp = rlen < nlen ? -1 : rlen > nlen ? 1 : 0;
	return cmp < 0 ? -1 : cmp > 0;
}

/* Bisects the mapped packed-refs for name: git and libgit2 write it
 * sorted and say so in its header ("# pack-refs with: ... sorted"); one
 * that does not say so is read line by line. */
static int packed_find(const char *m, size_t len, const char *name, char hex[OID_HEX])
{
	size_t nlen = strlen(name), lo = 0, hi = len;
	const char *nl = memchr(m, '\n', len);
	size_t hlen = nl ? (size_t)(nl - m) : len;
	int sorted = m[0] == '#' && memmem(m, hlen, " sorted", 7) != NULL;
	while (lo < hi) {
		size_t start = sorted ? lo + (hi - lo) / 2 : lo;
		while (start > lo && m[start - 1] != '\n')
			start--;
		nl = memchr(m + start, '\n', len - start);
		size_t end = nl ? (size_t)(nl - m) : len;
		if (m[start] == '^' && start > lo) { /* a peeled line: its ref's line decides */
			end = start - 1;
			for (start = end; start > lo && m[start - 1] != '\n';)
				start--;
		}
		int cmp = line_cmp(m, start, end, name, nlen);
		if (cmp == 0)
			return parse_hex(m + start, end - start, hex) < 0 ? 1 : 0;
		if (!sorted || cmp < 0)
			lo = end + 1; /* the header and "^" lines sort before what follows them */
		else
			hi = start;
	}
	return 1;
}

int store_ref_read(const char *dir, const char *name, char hex[OID_HEX])
{
	struct strbuf p = STRBUF_INIT, text = STRBUF_INIT;
	struct stat sb;
	int rc = 1, fd = -1;
	sb_addf(&p, "%s/%s", dir, name);
	if (read_file_sb(p.buf, &text) == 0) {
		/* a symbolic ref ("ref: ...") is never one of ours */
		rc = parse_hex(text.buf, text.len, hex) < 0 ? 1 : 0;
		goto out;
	}
	sb_reset(&p);
	sb_addf(&p, "%s/packed-refs", dir);
	if ((fd = open(p.buf, O_RDONLY | O_CLOEXEC)) < 0) {
		rc = errno == ENOENT ? 1 : err_sys("cannot open %s", p.buf);
		goto out;
	}
	if (fstat(fd, &sb) < 0) {
		rc = err_sys("cannot stat %s", p.buf);
		goto out;
	}
	if (sb.st_size > 0) {
		void *m = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
		if (m == MAP_FAILED) {
			rc = err_sys("cannot read %s", p.buf);
			goto out;
		}
		rc = packed_find(m, (size_t)sb.st_size, name, hex);
		munmap(m, (size_t)sb.st_size);
	}
out:
	if (fd >= 0)
		close(fd);
	sb_release(&p);
	sb_release(&text);
	return rc;
}

/* Writes data into lock, created exclusively as git creates it: another
 * writer's lock (libgit2 fails at once too) is waited for a while, since
 * each holds it for one write. The caller renames it into place. what:
 * the file's name in errors. */
static int write_lock(const char *lock, const char *what, const void *data, size_t len, int sync)
{
	int fd;
	for (int tries = 0; (fd = open(lock, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644)) < 0; tries++) {
		if (errno != EEXIST || tries >= 100)
			return err_setc(errno == EEXIST ? E_BUSY : E_ERROR, "cannot lock %s: %s", what,
					strerror(errno));
		usleep(10000);
	}
	int ok = write_all(fd, data, len) == 0 && (!sync || fsync(fd) == 0);
	if (close(fd) < 0 || !ok) {
		err_sys("cannot write %s", lock);
		unlink(lock);
		return -1;
	}
	return 0;
}

/* 1 when the directory of path was missing and is made now. */
static int make_parent(char *path)
{
	char *slash = strrchr(path, '/');
	*slash = '\0';
	int made = access(path, F_OK) < 0 && errno == ENOENT && mkdirs(path, 0755) == 0;
	*slash = '/';
	return made;
}

int store_ref_write(const char *dir, const char *name, const char *hex)
{
	struct strbuf path = STRBUF_INIT, lock = STRBUF_INIT, what = STRBUF_INIT;
	char line[HEXSZ + 2];
	int rc = -1;
	sb_addf(&path, "%s/%s", dir, name);
	sb_addf(&lock, "%s.lock", path.buf);
	sb_addf(&what, "ref %s", name);
	memcpy(line, hex, HEXSZ);
	line[HEXSZ] = '\n';
	/* its directory made only when it is not there: a mkdir of each
	 * parent before every ref was a dozen syscalls a run */
	int w = write_lock(lock.buf, what.buf, line, HEXSZ + 1, 0);
	if (w < 0 && make_parent(path.buf)) {
		err_clear();
		w = write_lock(lock.buf, what.buf, line, HEXSZ + 1, 0);
	}
	if (w < 0)
		goto out;
	if (rename(lock.buf, path.buf) < 0) {
		err_sys("cannot write %s", path.buf);
		unlink(lock.buf);
		goto out;
	}
	rc = 0;
out:
	sb_release(&path);
	sb_release(&lock);
	sb_release(&what);
	return rc;
}

/* One ref of packed-refs: its line and, when it has one, its peeled line. */
struct packed_ref {
	const char *line, *peeled;
	size_t len, plen;
};

static int by_ref_name(const void *a, const void *b)
{
	const struct packed_ref *x = a, *y = b;
	size_t n = x->len < y->len ? x->len : y->len;
	int c = memcmp(x->line + HEXSZ + 1, y->line + HEXSZ + 1, n - HEXSZ - 1);
	return c ? c : (x->len > y->len) - (x->len < y->len);
}

/* A line git writes in packed-refs: "<id> refs/...", "^<id>" (peeled). */
static int ref_line(const char *l, size_t len)
{
	char hex[OID_HEX];
	if (len < HEXSZ + 7 || parse_hex(l, len, hex) < 0 || l[HEXSZ] != ' ' || memcmp(l + HEXSZ + 1, "refs/", 5))
		return 0;
	for (size_t i = HEXSZ + 1; i < len; i++)
		if ((unsigned char)l[i] <= ' ' || l[i] == 0x7f)
			return 0;
	return 1;
}

int store_refs_salvage(const char *dir, int64_t *kept, int64_t *dropped, struct strbuf *aside)
{
	struct strbuf p = STRBUF_INIT, text = STRBUF_INIT, out = STRBUF_INIT, lock = STRBUF_INIT;
	struct packed_ref *v = NULL;
	size_t n = 0, alloc = 0;
	struct stat sb;
	char hx[OID_HEX];
	int rc = -1;
	*kept = *dropped = 0;
	sb_addf(&p, "%s/packed-refs", dir);
	if (stat(p.buf, &sb) < 0 && errno == ENOENT) {
		rc = 0;
		goto out;
	}
	if (read_file_sb(p.buf, &text) < 0)
		goto out;
	for (size_t at = 0; at < text.len;) {
		const char *l = text.buf + at, *nl = memchr(l, '\n', text.len - at);
		size_t len = nl ? (size_t)(nl - l) : text.len - at;
		at += len + 1;
		if (!nl) {
			(*dropped)++; /* cut short: git ends every line */
		} else if (at == len + 1 && !strncmp(l, "# pack-refs with:", 17)) {
			continue;
		} else if (len == HEXSZ + 1 && l[0] == '^' && n && !v[n - 1].peeled &&
			   parse_hex(l + 1, len - 1, hx) == 0) {
			v[n - 1].peeled = l;
			v[n - 1].plen = len;
		} else if (ref_line(l, len)) {
			if (n == alloc) {
				alloc = alloc ? alloc * 2 : 256;
				v = xrealloc(v, alloc * sizeof(*v));
			}
			v[n++] = (struct packed_ref){ l, NULL, len, 0 };
		} else {
			(*dropped)++;
		}
	}
	*kept = (int64_t)n;
	if (!*dropped) {
		rc = 0;
		goto out;
	}
	/* rewritten as git writes it (sorted, under packed-refs.lock); the
	 * damaged file stays beside it, linked before the rename */
	qsort(v, n, sizeof(*v), by_ref_name);
	sb_adds(&out, "# pack-refs with: peeled fully-peeled sorted \n");
	for (size_t i = 0; i < n; i++) {
		sb_add(&out, v[i].line, v[i].len);
		sb_adds(&out, "\n");
		if (v[i].peeled) {
			sb_add(&out, v[i].peeled, v[i].plen);
			sb_adds(&out, "\n");
		}
	}
	sb_addf(&lock, "%s.lock", p.buf);
	if (write_lock(lock.buf, p.buf, out.buf, out.len, 1) < 0)
		goto out;
	sb_addf(aside, "%s.corrupt-%lld", p.buf, (long long)time(NULL));
	if (link(p.buf, aside->buf) < 0 || rename(lock.buf, p.buf) < 0) {
		err_sys("cannot replace %s", p.buf);
		unlink(lock.buf);
		goto out;
	}
	rc = 1;
out:
	free(v);
	sb_release(&p);
	sb_release(&text);
	sb_release(&out);
	sb_release(&lock);
	return rc;
}
