/* fsrec: the recorder and the re-asker of file system questions (see
 * fsrec.h). A value is compared as text: the answer a question gets now is
 * encoded as it was when recorded, and the two strings must be equal. */
#include "util/fsrec.h"
#include "util/hash.h"

#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static struct {
	struct strbuf *out; /* NULL: not recording */
	int spoiled;
	int64_t racy_ns; /* a ctime at or after this is racy */
} rec;

void fsrec_begin(struct strbuf *out)
{
	/* a stat answered from the memo was asked when the memo began */
	int64_t since = stat_memo_since(), now = fs_clock_ns();
	rec.out = out;
	rec.spoiled = 0;
	rec.racy_ns = (since && since < now ? since : now) - FSREC_RACY_NS;
}

int fsrec_end(void)
{
	int ok = rec.out && !rec.spoiled;
	rec.out = NULL;
	return ok;
}

int fsrec_on(void)
{
	return rec.out != NULL;
}

void fsrec_spoil(void)
{
	rec.spoiled = 1;
}

static int64_t ns(const struct timespec *t)
{
	return (int64_t)t->tv_sec * 1000000000 + t->tv_nsec;
}

static void sig_text(int rc, int err, const struct stat *sb, struct strbuf *out)
{
	if (rc < 0)
		sb_addf(out, "!%d", err);
	else
		sb_addf(out, "%llx.%llx.%llx.%lld.%lld.%o", (unsigned long long)sb->st_dev,
			(unsigned long long)sb->st_ino, (unsigned long long)sb->st_size, (long long)ns(&sb->st_mtim),
			(long long)ns(&sb->st_ctim), (unsigned)sb->st_mode);
}

/* One line; a path a line cannot hold spoils the recording. */
static void add(char op, const char *value, const char *path)
{
	/* asked again from another directory, a relative path is another question */
	if (strchr(path, '\n') || path[0] != '/') {
		rec.spoiled = 1;
		return;
	}
	sb_addf(rec.out, "%c %s %s\n", op, value, path);
}

static void add_sig(char op, const char *path, int rc, const struct stat *sb)
{
	int err = errno;
	struct strbuf v = STRBUF_INIT;
	if (!rec.out)
		return;
	/* a change in the same granule would leave this stat as it is */
	if (rc == 0 && ns(&sb->st_ctim) >= rec.racy_ns)
		rec.spoiled = 1;
	sig_text(rc, err, sb, &v);
	add(op, v.buf, path);
	sb_release(&v);
	errno = err;
}

void fsrec_stat(const char *path, int rc, const struct stat *sb)
{
	add_sig('s', path, rc, sb);
}

void fsrec_lstat(const char *path, int rc, const struct stat *sb)
{
	add_sig('l', path, rc, sb);
}

void fsrec_access(const char *path, int mode, int rc)
{
	int err = errno;
	char v[32];
	if (!rec.out)
		return;
	snprintf(v, sizeof(v), "%d.%d", mode, rc < 0 ? err : 0);
	add('a', v, path);
	errno = err;
}

static void text_digest(const char *s, size_t len, char hex[DIGEST_HEX])
{
	struct digest d;
	digest_of(s, len, &d);
	digest_hex(&d, hex);
}

void fsrec_realpath(const char *path, const char *resolved)
{
	char hex[DIGEST_HEX];
	if (!rec.out)
		return;
	if (resolved)
		text_digest(resolved, strlen(resolved), hex);
	add('r', resolved ? hex : "-", path);
}

/* A glob's question is "CWD\tPATTERN"; its answer the digest of the list. */
static void glob_value(int flags, char *const *matches, size_t n, struct strbuf *out)
{
	struct strbuf all = STRBUF_INIT;
	char hex[DIGEST_HEX];
	for (size_t i = 0; i < n; i++)
		sb_add(&all, matches[i], strlen(matches[i]) + 1);
	text_digest(all.buf ? all.buf : "", all.len, hex);
	sb_addf(out, "%d.%s", flags, hex);
	sb_release(&all);
}

void fsrec_glob(char op, const char *cwd, const char *pattern, int flags, char *const *matches, size_t n)
{
	struct strbuf q = STRBUF_INIT, v = STRBUF_INIT;
	if (!rec.out)
		return;
	if (strchr(cwd, '\t'))
		rec.spoiled = 1;
	sb_addf(&q, "%s\t%s", cwd, pattern);
	glob_value(flags, matches, n, &v);
	add(op, v.buf, q.buf);
	sb_release(&q);
	sb_release(&v);
}

static void dir_value(const char *path, struct strbuf *out)
{
	struct stat sb;
	struct strvec names = STRVEC_INIT;
	/* the listing is the answer, not the directory's stat (dir_names'
	 * own record): a replay chmods it every time */
	struct strbuf *was = rec.out;
	rec.out = NULL;
	if (lstat(path, &sb) < 0 || !S_ISDIR(sb.st_mode) || dir_names(path, &names) < 0)
		sb_adds(out, "-");
	else
		glob_value((int)sb.st_mode, names.v, names.n, out);
	rec.out = was;
	sv_release(&names);
}

/* Records what value() answers for path now. */
static void add_value(char op, const char *path, void (*value)(const char *, struct strbuf *))
{
	struct strbuf v = STRBUF_INIT;
	if (!rec.out)
		return;
	value(path, &v);
	add(op, v.buf, path);
	sb_release(&v);
}

void fsrec_dir(const char *path)
{
	add_value('D', path, dir_value);
}

static void type_value(const char *path, struct strbuf *out)
{
	struct stat sb;
	sb_addf(out, "%o", lstat(path, &sb) < 0 ? 0u : (unsigned)(sb.st_mode & S_IFMT));
}

void fsrec_type(const char *path)
{
	add_value('T', path, type_value);
}

int fsrec_do_stat(const char *path, struct stat *sb)
{
	int rc = stat(path, sb);
	fsrec_stat(path, rc, sb);
	return rc;
}

int fsrec_do_lstat(const char *path, struct stat *sb)
{
	int rc = lstat(path, sb);
	fsrec_lstat(path, rc, sb);
	return rc;
}

int fsrec_do_access(const char *path, int mode)
{
	int rc = access(path, mode);
	fsrec_access(path, mode, rc);
	return rc;
}

char *fsrec_do_realpath(const char *path)
{
	char *real = realpath(path, NULL);
	fsrec_realpath(path, real);
	return real;
}

static void env_value(const char *name, struct strbuf *out)
{
	char hex[DIGEST_HEX];
	const char *v = getenv(name);
	if (v)
		text_digest(v, strlen(v), hex);
	sb_adds(out, v ? hex : "-");
}

void fsrec_env(const char *name, const char *value)
{
	const char *outer = getenv(name);
	struct strbuf v = STRBUF_INIT;
	if (!rec.out || !outer != !value || (outer && strcmp(outer, value)))
		return;
	if (strchr(name, '\n'))
		rec.spoiled = 1;
	env_value(name, &v);
	sb_addf(rec.out, "e %s %s\n", v.buf, name);
	sb_release(&v);
}

/* The matching entries, sorted, hashed. */
static void env_list_value(const char *pattern, struct strbuf *out)
{
	struct strvec m = STRVEC_INIT;
	for (char **e = environ; e && *e; e++) {
		const char *eq = strchr(*e, '=');
		char *name = eq ? xstrndup(*e, (size_t)(eq - *e)) : NULL;
		if (name && fnmatch(pattern, name, 0) == 0)
			sv_push(&m, *e);
		free(name);
	}
	sv_sort(&m);
	glob_value(0, m.v, m.n, out);
	sv_release(&m);
}

void fsrec_env_list(const char *pattern)
{
	struct strbuf v = STRBUF_INIT;
	if (!rec.out)
		return;
	if (strchr(pattern, '\n'))
		rec.spoiled = 1;
	env_list_value(pattern, &v);
	sb_addf(rec.out, "E %s %s\n", v.buf, pattern);
	sb_release(&v);
}

static void kind_text(int rc, int err, const struct stat *sb, struct strbuf *out)
{
	if (rc < 0)
		sb_addf(out, "!%d", err);
	else
		sb_addf(out, "%o", (unsigned)(sb->st_mode & S_IFMT));
}

int fsrec_stat_kind(const char *path, struct stat *sb)
{
	struct strbuf *was = rec.out, v = STRBUF_INIT;
	rec.out = NULL;
	int rc = stat_memo(path, sb), err = errno;
	rec.out = was;
	if (rec.out) {
		kind_text(rc, err, sb, &v);
		add('k', v.buf, path);
		sb_release(&v);
	}
	errno = err;
	return rc;
}

/* The answer the question gets now, encoded as add() did. */
static int answer(char op, const char *value, const char *path, struct strbuf *now)
{
	struct stat sb;
	int rc, flags;
	switch (op) {
	case 's':
		rc = stat_memo(path, &sb);
		sig_text(rc, errno, &sb, now);
		return 0;
	case 'l':
		rc = lstat(path, &sb);
		sig_text(rc, errno, &sb, now);
		return 0;
	case 'k':
		rc = stat_memo(path, &sb);
		kind_text(rc, errno, &sb, now);
		return 0;
	case 'a': {
		int mode = atoi(value);
		rc = access(path, mode);
		sb_addf(now, "%d.%d", mode, rc < 0 ? errno : 0);
		return 0;
	}
	case 'r': {
		char hex[DIGEST_HEX], *real = realpath(path, NULL);
		if (real)
			text_digest(real, strlen(real), hex);
		sb_adds(now, real ? hex : "-");
		free(real);
		return 0;
	}
	case 'g':
	case 'G': {
		const char *tab = strchr(path, '\t');
		if (!tab)
			return -1;
		char *cwd = xstrndup(path, (size_t)(tab - path));
		flags = atoi(value);
		if (op == 'G') {
			glob_t g;
			int gr = glob_at(cwd, tab + 1, flags, &g);
			glob_value(flags, gr == 0 ? g.gl_pathv : NULL, gr == 0 ? g.gl_pathc : 0, now);
			if (gr == 0)
				globfree(&g);
		} else {
			struct strvec m = STRVEC_INIT;
			if (glob_paths(cwd, tab + 1, &m) < 0)
				err_clear();
			glob_value(flags, m.v, m.n, now);
			sv_release(&m);
		}
		free(cwd);
		return 0;
	}
	case 'D':
		dir_value(path, now);
		return 0;
	case 'e':
		env_value(path, now);
		return 0;
	case 'E':
		env_list_value(path, now);
		return 0;
	case 'T':
		type_value(path, now);
		return 0;
	}
	return -1;
}

int fsrec_holds(const char *line, size_t len)
{
	struct strbuf copy = STRBUF_INIT, now = STRBUF_INIT;
	int same = 0;
	sb_add(&copy, line, len);
	char *value = copy.buf + 2, *sp = len > 2 && copy.buf[1] == ' ' ? strchr(value, ' ') : NULL;
	if (sp) {
		*sp = 0;
		/* the recorder is off while questions are asked again */
		struct strbuf *was = rec.out;
		rec.out = NULL;
		same = answer(copy.buf[0], value, sp + 1, &now) == 0 && !strcmp(now.buf ? now.buf : "", value);
		rec.out = was;
	}
	sb_release(&copy);
	sb_release(&now);
	return same;
}
