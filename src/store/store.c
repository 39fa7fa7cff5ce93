/* store: finding and opening .cashet, the index schema, and the queries of
 * the hit path. The hit path (store_lookup + store_load_files) uses prepared
 * statements against index.db only; libgit2 is never loaded there. */
#include "store/store-int.h"
#include "store/gitmod.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* 9: git ids (runs.hash, runs.parent, files.oid) as 20 bytes, not 40 hex
 * digits; no runs.cmd (cashet_cmd(argv) makes it); a run's argv part is
 * not copied into partvals (part id 0: made again from runs.argv). About
 * 200 bytes a run of a store of many small runs.
 * 10: totals.gen and totals.epoch, the index's generation (pipeline
 * witnesses, src/pipeline/witness.h).
 * 11: observed inputs kept as two parts (runs.inputset_own): runs that
 * read different files of the project share the rest. */
#define SCHEMA_VERSION 11
/* the WAL's bounds (open_db, store_close) */
#define WAL_PAGES 64
#define WAL_MAX_BYTES (1 << 20)
#define STR_(x) #x
#define STR(x) STR_(x)

static const char schema[] =
	"CREATE TABLE runs("
	" id INTEGER PRIMARY KEY, hash BLOB NOT NULL UNIQUE, parent BLOB,"
	" fp BLOB NOT NULL, line BLOB NOT NULL, name TEXT, argv BLOB NOT NULL,"
	" cwd TEXT NOT NULL, ok INTEGER NOT NULL, exit_code INTEGER NOT NULL,"
	" created INTEGER NOT NULL, last_used INTEGER NOT NULL, duration_ms INTEGER NOT NULL,"
	" expires INTEGER NOT NULL, bytes INTEGER NOT NULL, inputset INTEGER, timed_out INTEGER NOT NULL DEFAULT 0,"
	" parts BLOB, inputset_own INTEGER);"
	/* A run's observed inputs (key/observed.h) are mostly what every
	 * other run of the project read too (the C library, locale files, the
	 * interpreter and its modules): each list is kept as two parts, what
	 * lies outside the project (runs.inputset) and the project's own files
	 * (runs.inputset_own), each distinct part once, by its digest. Steps
	 * of a pipeline, which read different files of the project, so share
	 * the rest (3.5 KB a step when each kept its whole list). Parts no
	 * run names are removed by gc. */
	"CREATE TABLE inputsets(id INTEGER PRIMARY KEY, digest BLOB NOT NULL UNIQUE, data BLOB NOT NULL);"
	"CREATE TABLE files(run INTEGER NOT NULL, kind INTEGER NOT NULL, path TEXT NOT NULL,"
	" mode INTEGER NOT NULL, oid BLOB, xxh BLOB NOT NULL, size INTEGER NOT NULL,"
	" enc INTEGER NOT NULL, data BLOB, perm INTEGER, PRIMARY KEY(run, kind, path)) WITHOUT ROWID;"
	/* Fingerprint parts, each distinct one kept once (most are the same
	 * for every run: the executable, the umask, LANG...); runs.parts lists
	 * their ids in order, as varints, 0 for the run's own argv part (made
	 * again from runs.argv: it is the one part most runs do not share).
	 * gc drops the ones no run lists. */
	"CREATE TABLE partvals(id INTEGER PRIMARY KEY, digest BLOB NOT NULL UNIQUE, kind TEXT NOT NULL,"
	" name TEXT NOT NULL, hash BLOB NOT NULL, detail TEXT);"
	"CREATE TABLE tags(run INTEGER NOT NULL, key TEXT NOT NULL, value TEXT,"
	" PRIMARY KEY(run, key)) WITHOUT ROWID;"
	"CREATE TABLE metrics(run INTEGER NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,"
	" PRIMARY KEY(run, key)) WITHOUT ROWID;"
	"CREATE TABLE claims(fp BLOB PRIMARY KEY, pid INTEGER NOT NULL, host TEXT NOT NULL,"
	" start INTEGER NOT NULL, heartbeat INTEGER NOT NULL);"
	/* totals follow runs through triggers (bytes, runs, completed ones),
	 * so the size bound (config max-size) and `stats` read three rows
	 * instead of scanning runs. */
	/* gen counts every change to runs but a touch (last_used), and epoch
	 * names this index among those the store ever had: together they say
	 * whether a lookup can answer as it did (store_generation). */
	"CREATE TABLE totals(k TEXT PRIMARY KEY, v INTEGER NOT NULL);"
	"INSERT INTO totals VALUES('bytes', 0), ('runs', 0), ('ok', 0), ('gen', 0), ('epoch', abs(random()));"
	"CREATE TABLE statcache(path TEXT NOT NULL, kind INTEGER NOT NULL, dev INTEGER, ino INTEGER,"
	" size INTEGER, mtime INTEGER, ctime INTEGER, hash BLOB, deps BLOB, PRIMARY KEY(path, kind)) WITHOUT ROWID;";

/* the index's secondary indexes; a rebuild drops them and builds each
 * once at the end, by one sort: kept up row by row, their random keys
 * (fingerprints, lines) cost a sixth of fsck at 100,000 runs */
const char store_indexes[] = "CREATE INDEX runs_fp ON runs(fp, created);"
			     "CREATE INDEX runs_line ON runs(line, created);"
			     "CREATE INDEX runs_created ON runs(created);"
			     "CREATE INDEX tags_key ON tags(key, value);";

/* totals' triggers; a rebuild of the index (store_rebuild_begin) drops
 * them and counts once at the end. */
const char store_triggers[] =
	"CREATE TRIGGER runs_add AFTER INSERT ON runs BEGIN"
	" UPDATE totals SET v = v + CASE k WHEN 'bytes' THEN NEW.bytes WHEN 'runs' THEN 1 WHEN 'ok' THEN NEW.ok"
	" WHEN 'gen' THEN 1 ELSE 0 END; END;"
	"CREATE TRIGGER runs_del AFTER DELETE ON runs BEGIN"
	" UPDATE totals SET v = v - CASE k WHEN 'bytes' THEN OLD.bytes WHEN 'runs' THEN 1 WHEN 'ok' THEN OLD.ok"
	" WHEN 'gen' THEN -1 ELSE 0 END; END;"
	"CREATE TRIGGER runs_upd AFTER UPDATE OF bytes, ok ON runs BEGIN"
	" UPDATE totals SET v = v + CASE k WHEN 'bytes' THEN NEW.bytes - OLD.bytes WHEN 'ok' THEN NEW.ok - OLD.ok"
	" ELSE 0 END; END;"
	"CREATE TRIGGER runs_chg AFTER UPDATE OF id, hash, parent, fp, line, name, argv, cmd, cwd, ok, exit_code,"
	" created, duration_ms, expires, bytes, inputset, timed_out, parts, inputset_own ON runs BEGIN"
	" UPDATE totals SET v = v + 1 WHERE k = 'gen'; END;";

static void (*warn_fn)(void *ctx, const char *msg);
static void *warn_ctx;

void store_on_warning(void (*fn)(void *ctx, const char *msg), void *ctx)
{
	warn_fn = fn;
	warn_ctx = ctx;
}

static void warn(const char *fmt, ...) PRINTF_LIKE(1, 2);
static void warn(const char *fmt, ...)
{
	struct strbuf sb = STRBUF_INIT;
	va_list ap;
	va_start(ap, fmt);
	sb_vaddf(&sb, fmt, ap);
	va_end(ap);
	if (warn_fn)
		warn_fn(warn_ctx, sb.buf);
	sb_release(&sb);
}

/* Left beside index.db when a query finds it damaged after it opened
 * fine: the next store_open() sets the file aside and rebuilds it. */
#define DAMAGED_MARK "index.db.damaged"

int store_sqlfail(struct store *st, const char *what)
{
	int code = sqlite3_errcode(st->db) & 0xff;
	if (code == SQLITE_CORRUPT || code == SQLITE_NOTADB) {
		struct strbuf mark = STRBUF_INIT;
		sb_addf(&mark, "%s/" DAMAGED_MARK, st->dir);
		int fd = open(mark.buf, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
		if (fd >= 0)
			close(fd);
		sb_release(&mark);
		return err_setc(E_CORRUPT, "%s/index.db: %s: %s (the index is rebuilt from git by the next command)",
				st->dir, what, sqlite3_errmsg(st->db));
	}
	/* out of space (SQLite's FULL keeps no errno: ENOSPC) or past a file
	 * size limit: said so, not as the statement that met it */
	int sys = code == SQLITE_FULL ? ENOSPC : code == SQLITE_IOERR ? sqlite3_system_errno(st->db) : 0;
	if (sys == ENOSPC || sys == EDQUOT || sys == EFBIG)
		return err_setc(E_UNWRITABLE, "%s/index.db: cannot write it: %s", st->dir, strerror(sys));
	if (code == SQLITE_FULL || code == SQLITE_IOERR || code == SQLITE_READONLY || code == SQLITE_CANTOPEN)
		return err_setc(E_UNWRITABLE, "%s/index.db: %s: %s", st->dir, what, sqlite3_errmsg(st->db));
	return err_set("%s/index.db: %s: %s", st->dir, what, sqlite3_errmsg(st->db));
}

int store_exec(struct store *st, const char *sql)
{
	if (sqlite3_exec(st->db, sql, NULL, NULL, NULL) != SQLITE_OK)
		return store_sqlfail(st, sql);
	return 0;
}

void store_rollback(struct store *st)
{
	if (sqlite3_get_autocommit(st->db))
		return;
	enum err_code code = err_code();
	char *why = xstrdup(err_msg());
	sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
	if (*why)
		err_setc(code, "%s", why);
	else
		err_clear();
	free(why);
}

int store_exec_within(struct store *st, const char *sql, int wait_ms)
{
	sqlite3_busy_timeout(st->db, wait_ms);
	int rc = store_exec(st, sql);
	sqlite3_busy_timeout(st->db, STORE_BUSY_MS);
	return rc;
}

static int is_dir(const char *p)
{
	struct stat sb;
	return stat(p, &sb) == 0 && S_ISDIR(sb.st_mode);
}

static void absolutize(const char *p, struct strbuf *out)
{
	if (p[0] != '/') {
		char cwd[PATH_MAX];
		if (getcwd(cwd, sizeof(cwd))) {
			sb_adds(out, cwd);
			if (strcmp(cwd, "/"))
				sb_addc(out, '/');
		}
	}
	sb_adds(out, p);
	while (out->len > 1 && out->buf[out->len - 1] == '/')
		sb_setlen(out, out->len - 1);
}

/* One "key = value" line of a git config file: 1 if it sets key (value filled). */
static int config_line(const char *line, const char *key, struct strbuf *value)
{
	size_t n = strlen(key);
	line += strspn(line, " \t");
	if (strncasecmp(line, key, n) || !strchr(" \t=", line[n]) || !line[n])
		return 0;
	line += n + strspn(line + n, " \t");
	if (*line++ != '=')
		return 0;
	line += strspn(line, " \t");
	sb_reset(value);
	int quoted = 0;
	for (; *line && *line != '\n'; line++) {
		if (*line == '"') {
			quoted = !quoted;
		} else if (*line == '\\' && line[1]) {
			line++;
			sb_addc(value, *line == 't' ? '\t' : *line == 'n' ? '\n' : *line);
		} else if (!quoted && (*line == '#' || *line == ';')) {
			break;
		} else {
			sb_addc(value, *line);
		}
	}
	while (value->len && strchr(" \t", value->buf[value->len - 1]))
		sb_setlen(value, value->len - 1);
	return 1;
}

/* The last value of section.key in a config file's text: 1 (value
 * filled) or 0. A key with a dot names a subsection: "trust.allowed-signers"
 * of "cashet" is allowed-signers in [cashet "trust"], as git and libgit2
 * write cashet.trust.allowed-signers (subsection names are case-sensitive). */
static int config_text_get(const char *text, const char *section, const char *key, struct strbuf *value)
{
	struct strbuf v = STRBUF_INIT, line = STRBUF_INIT, header = STRBUF_INIT;
	int found = 0, in_section = 0;
	const char *dot = strchr(key, '.');
	if (dot) {
		sb_addf(&header, "[%s \"%.*s\"]", section, (int)(dot - key), key);
		key = dot + 1;
	} else {
		sb_addf(&header, "[%s]", section);
	}
	for (const char *p = text; p && *p;) {
		const char *nl = strchrnul(p, '\n');
		sb_reset(&line);
		sb_add(&line, p, (size_t)(nl - p));
		const char *l = sb_str(&line) + strspn(sb_str(&line), " \t");
		if (*l == '[')
			in_section =
				dot ? !strncmp(l, header.buf, header.len) : !strncasecmp(l, header.buf, header.len);
		else if (in_section && config_line(l, key, &v)) {
			sb_reset(value);
			sb_add(value, v.buf ? v.buf : "", v.len);
			found = 1;
		}
		p = *nl ? nl + 1 : nl;
	}
	sb_release(&v);
	sb_release(&line);
	sb_release(&header);
	return found;
}

/* The first line of a config file's text that git would refuse (a
 * section header without its ']', a key that is not a name, a setting
 * before any section), or 0; *why says what is wrong with it. The
 * settings read around it still count, so a command goes on, warned. */
static int config_text_bad_line(const char *text, const char **why)
{
	int n = 0, in_section = 0, continued = 0;
	if (!strncmp(text, "\xef\xbb\xbf", 3))
		text += 3; /* a byte order mark, which git skips too */
	for (const char *p = text; p && *p; n++) {
		const char *nl = strchrnul(p, '\n'), *l = p + strspn(p, " \t");
		p = *nl ? nl + 1 : nl;
		int was_continued = continued;
		continued = nl > l && nl[-1] == '\\'; /* a value going on in the next line */
		if (was_continued || l == nl || *l == '#' || *l == ';' || *l == '\r')
			continue;
		if (*l == '[') {
			const char *close = memchr(l, ']', (size_t)(nl - l));
			if (!close) {
				*why = "a section header without its ']'";
				return n + 1;
			}
			in_section = 1;
			continue;
		}
		size_t k = 0;
		while (l + k < nl && (isalnum((unsigned char)l[k]) || l[k] == '-'))
			k++;
		const char *after = l + k + strspn(l + k, " \t\r");
		if (!k || !isalpha((unsigned char)*l) || (after < nl && *after != '=')) {
			*why = "not a 'key = value' line";
			return n + 1;
		}
		if (!in_section) {
			*why = "a setting before any [section]";
			return n + 1;
		}
	}
	return 0;
}

/* The config file's text, read once per open store: a request reads
 * several settings, on the hit path. */
static void config_load(struct store *st)
{
	if (!st->config_read) {
		struct strbuf path = STRBUF_INIT;
		sb_addf(&path, "%s/config", st->dir);
		const char *why;
		int bad;
		if (read_file_sb(path.buf, &st->config) < 0)
			err_clear(); /* no config file: nothing set */
		else if ((bad = config_text_bad_line(sb_str(&st->config), &why)) > 0)
			warn("warning: %s:%d: %s; the settings around it still apply (fix it with an editor)", path.buf,
			     bad, why);
		sb_release(&path);
		st->config_read = 1;
	}
}

int store_config_get(struct store *st, const char *section, const char *key, struct strbuf *value)
{
	config_load(st);
	return config_text_get(st->config.buf, section, key, value);
}

static int is_bool_word(const char *v)
{
	static const char *const words[] = { "on", "off", "true", "false", "yes", "no", "1", "0", NULL };
	for (const char *const *w = words; *w; w++)
		if (!strcasecmp(v, *w))
			return 1;
	return 0;
}

int store_setting_valid(const char *key, const char *value)
{
	if (!strcmp(key, "max-size") || !strcmp(key, "stdin-limit")) {
		uint64_t n;
		if (parse_size(value, &n) < 0)
			return err_set("%s: %s", key, err_msg());
	} else if (!strcmp(key, "auto-pack")) {
		/* digits only: strtoll would take " 12", "+12" and wrap past its range */
		size_t len = strlen(value);
		if (!len || strspn(value, "0123456789") != len ||
		    (len - strspn(value, "0") > 10 || strtoull(value, NULL, 10) > AUTOPACK_MAX))
			return err_set("auto-pack: expected a number of loose objects from 0 (never) to %d, got '%s'",
				       AUTOPACK_MAX, value);
	} else if (!strcmp(key, "remote-mode")) {
		if (strcmp(value, "read") && strcmp(value, "read-write"))
			return err_set("remote-mode: expected read or read-write, got '%s'", value);
	} else if (!strcmp(key, "trace") || !strcmp(key, "auto-outputs")) {
		if (!is_bool_word(value))
			return err_set("%s: expected on or off, got '%s'", key, value);
	}
	return 0;
}

int store_config_check(struct store *st, const char *key)
{
	static const char *const checked[] = { "max-size", "stdin-limit",  "auto-pack", "remote-mode",
					       "trace",    "auto-outputs", NULL };
	struct strbuf line = STRBUF_INIT, v = STRBUF_INIT;
	int rc = 0, n = 0, in_section = 0;
	config_load(st);
	for (const char *p = sb_str(&st->config); *p && rc == 0; n++) {
		const char *nl = strchrnul(p, '\n');
		sb_reset(&line);
		sb_add(&line, p, (size_t)(nl - p) - (nl > p && nl[-1] == '\r'));
		p = *nl ? nl + 1 : nl;
		const char *l = sb_str(&line) + strspn(sb_str(&line), " \t");
		if (*l == '[') {
			in_section = !strncasecmp(l, "[cashet]", 8);
			continue;
		}
		for (size_t k = 0; in_section && checked[k] && rc == 0; k++)
			if ((!key || !strcmp(key, checked[k])) && config_line(l, checked[k], &v) &&
			    store_setting_valid(checked[k], sb_str(&v)) < 0) {
				char *why = xstrdup(err_msg());
				rc = err_set("%s/config:%d: %s", st->dir, n + 1, why);
				free(why);
			}
	}
	sb_release(&line);
	sb_release(&v);
	return rc;
}

int store_config_bool(const char *v)
{
	return !strcasecmp(v, "true") || !strcasecmp(v, "yes") || !strcasecmp(v, "on") || !strcmp(v, "1") || !*v;
}

int store_setting(struct store *st, const char *key, struct strbuf *value)
{
	return store_config_get(st, "cashet", key, value);
}

int store_setting_user(struct store *st, const char *key, struct strbuf *value)
{
	if (store_setting(st, key, value))
		return 1;
	/* git's order below the repository: global, XDG, system; read once
	 * per open store (a miss asks for two settings, each three files) */
	if (!st->user_config_read) {
		const char *home = getenv("HOME"), *xdg = getenv("XDG_CONFIG_HOME");
		struct strbuf path = STRBUF_INIT;
		for (int i = 0; i < 3; i++) {
			sb_reset(&path);
			if (i == 0 && home && *home)
				sb_addf(&path, "%s/.gitconfig", home);
			else if (i == 1 && xdg && *xdg)
				sb_addf(&path, "%s/git/config", xdg);
			else if (i == 1 && home && *home)
				sb_addf(&path, "%s/.config/git/config", home);
			else if (i == 2)
				sb_adds(&path, "/etc/gitconfig");
			if (path.len && read_file_sb(path.buf, &st->user_config[i]) < 0) {
				err_clear(); /* none: nothing set there */
				sb_reset(&st->user_config[i]);
			}
		}
		sb_release(&path);
		st->user_config_read = 1;
	}
	for (int i = 0; i < 3; i++)
		if (st->user_config[i].len && config_text_get(st->user_config[i].buf, "cashet", key, value))
			return 1;
	return 0;
}

int store_find(const char *explicit_dir, struct strbuf *dir)
{
	return store_find_from(explicit_dir, NULL, dir);
}

int store_find_from(const char *explicit_dir, const char *from, struct strbuf *dir)
{
	sb_reset(dir);
	if (!explicit_dir || !*explicit_dir)
		explicit_dir = getenv("CASHET_DIR");
	if (explicit_dir && *explicit_dir) {
		absolutize(explicit_dir, dir);
		return is_dir(dir->buf) ? 0 : 1;
	}
	char cwd[PATH_MAX];
	if (!from && !getcwd(cwd, sizeof(cwd)))
		return err_sys("cannot get the working directory");
	if (!from)
		from = cwd;
	struct strbuf p = STRBUF_INIT;
	sb_adds(&p, from);
	for (;;) {
		size_t base = p.len;
		sb_adds(&p, strcmp(p.buf, "/") ? "/" STORE_DIRNAME : STORE_DIRNAME);
		if (is_dir(p.buf)) {
			sb_adds(dir, p.buf);
			sb_release(&p);
			return 0;
		}
		sb_setlen(&p, base);
		char *slash = strrchr(p.buf, '/');
		if (!slash || p.len == 1)
			break;
		sb_setlen(&p, slash == p.buf ? 1 : (size_t)(slash - p.buf));
	}
	sb_release(&p);
	sb_adds(dir, from);
	sb_adds(dir, strcmp(from, "/") ? "/" STORE_DIRNAME : STORE_DIRNAME);
	return 1;
}

/* An integer PRAGMA's value, -1 when it cannot be read. */
static int64_t pragma_int(struct store *st, const char *sql)
{
	sqlite3_stmt *s;
	int64_t v = -1;
	if (sqlite3_prepare_v2(st->db, sql, -1, &s, NULL) != SQLITE_OK)
		return -1;
	if (sqlite3_step(s) == SQLITE_ROW)
		v = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return v;
}

static int read_version(struct store *st)
{
	int64_t v = pragma_int(st, "PRAGMA user_version");
	return v < 0 || v > INT_MAX ? store_sqlfail(st, "cannot read the index") : (int)v;
}

/* After an upgrade's rebuild the old tables' pages are free but still the
 * file's (829 MB for an index of 100,000 pipeline steps that now needs
 * 90): given back when they are most of it. Best effort: a failure only
 * leaves the file as large as it was. */
static void shrink_index(struct store *st)
{
	int64_t free_pages = pragma_int(st, "PRAGMA freelist_count"), pages = pragma_int(st, "PRAGMA page_count");
	if (free_pages > 0 && 2 * free_pages > pages && store_exec(st, "VACUUM") < 0)
		err_clear();
}

/* Creates the schema, or replaces an older one: the index is derived data,
 * so an upgrade drops it and the caller rebuilds it from git. Returns 1 if
 * the tables were (re)created by us, 0 if another process did it first. */
static int create_schema(struct store *st)
{
	static const char *const tables[] = { "runs",    "files",  "parts",     "partvals", "tags",
					      "metrics", "claims", "statcache", "totals",   "inputsets" };
	struct strbuf sql = STRBUF_INIT;
	int rc = -1, v;
	if (store_exec(st, "PRAGMA journal_mode=WAL") < 0 || store_exec(st, "BEGIN IMMEDIATE") < 0)
		goto out;
	v = read_version(st);
	if (v < 0 || v >= SCHEMA_VERSION) {
		rc = v < 0 ? -1 : 0;
		if (v < 0)
			store_rollback(st);
		else
			store_exec(st, "COMMIT");
		goto out;
	}
	for (size_t i = 0; i < sizeof(tables) / sizeof(*tables); i++)
		sb_addf(&sql, "DROP TABLE IF EXISTS %s;", tables[i]);
	sb_addf(&sql, "%s%s%s PRAGMA user_version=%d;", schema, store_indexes, store_triggers, SCHEMA_VERSION);
	if (store_exec(st, sql.buf) < 0 || store_exec(st, "COMMIT") < 0) {
		store_rollback(st);
		goto out;
	}
	rc = 1;
out:
	sb_release(&sql);
	return rc;
}

/* Creates the git repository under a temporary name and renames it into
 * place, so processes racing to create the same store never see (or trip
 * over) a half-made one: one rename wins, the others use its result. */
static int create_repo(const char *dir, int *fresh)
{
	const struct gitmod *g = gitmod_get();
	struct strbuf tmp = STRBUF_INIT, parent = STRBUF_INIT, head = STRBUF_INIT;
	int rc = -1;
	sb_addf(&tmp, "%s.new-%ld", dir, (long)getpid());
	sb_adds(&parent, dir);
	char *slash = strrchr(parent.buf, '/');
	if (slash && slash != parent.buf)
		sb_setlen(&parent, (size_t)(slash - parent.buf));
	sb_addf(&head, "%s/HEAD", dir);
	if (!g || mkdirs(parent.buf, 0777) < 0)
		goto out;
	rm_rf(tmp.buf);
	if (g->init(tmp.buf) < 0)
		goto out;
	int moved = rename(tmp.buf, dir) == 0, why = errno;
	if (moved) {
		*fresh = 1;
	} else if (access(head.buf, F_OK) == 0) {
		rm_rf(tmp.buf); /* another process made it first */
	} else if (why == ENOTEMPTY || why == EEXIST) {
		/* a directory with other things in it (a store that lost its
		 * HEAD keeps its objects and refs): the store made in place,
		 * new only when it holds no runs yet */
		rm_rf(tmp.buf);
		sb_reset(&head);
		sb_addf(&head, "%s/refs", dir);
		*fresh = access(head.buf, F_OK) < 0;
		if (g->init(dir) < 0)
			goto out;
	} else {
		errno = why;
		err_sys("cannot create %s", dir);
		rm_rf(tmp.buf);
		goto out;
	}
	rc = 0;
out:
	sb_release(&tmp);
	sb_release(&parent);
	sb_release(&head);
	return rc;
}

static uint32_t be(const unsigned char *p, int n)
{
	uint32_t v = 0;
	for (int i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

/* Whether index.db is damaged in a way its header shows, without SQLite:
 * not a database at all, or shorter than the header says (truncated).
 * Only a checkpoint writes index.db, header included, so its size agrees
 * with its header whatever the WAL holds, but for a checkpoint half-way
 * through. Returns 1 damaged (why says how), 0 not (or no file). */
/* What the header suggests (a file shorter than its page count) is also
 * what another process's checkpoint looks like half-way through: ask
 * SQLite, which reads a consistent snapshot, before calling it damaged.
 * Setting a live index aside (its -shm unlinked under its readers) is
 * far worse than one failed command. */
static int sqlite_finds_damage(const char *db)
{
	sqlite3 *h = NULL;
	sqlite3_stmt *s = NULL;
	int damaged = 0;
	if (sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(h, "PRAGMA quick_check(1)", -1, &s, NULL) != SQLITE_OK) {
		int code = h ? sqlite3_errcode(h) & 0xff : SQLITE_CANTOPEN;
		damaged = code == SQLITE_CORRUPT || code == SQLITE_NOTADB;
	} else {
		int rc = sqlite3_step(s);
		damaged = rc == SQLITE_ROW ? strcmp((const char *)sqlite3_column_text(s, 0), "ok") != 0
					   : (sqlite3_errcode(h) & 0xff) == SQLITE_CORRUPT;
	}
	sqlite3_finalize(s);
	sqlite3_close(h);
	return damaged;
}

static int index_damaged(const char *dir, struct strbuf *why)
{
	struct strbuf p = STRBUF_INIT;
	unsigned char h[100];
	struct stat sb;
	int fd = -1, bad = 0;
	sb_addf(&p, "%s/" DAMAGED_MARK, dir);
	if (access(p.buf, F_OK) == 0) {
		sb_adds(why, "a query found it damaged");
		bad = 1;
		goto out;
	}
	sb_reset(&p);
	sb_addf(&p, "%s/index.db", dir);
	fd = open(p.buf, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &sb) < 0 || sb.st_size == 0)
		goto out; /* missing or empty: made from scratch */
	if (sb.st_size < (off_t)sizeof(h) || pread(fd, h, sizeof(h), 0) != (ssize_t)sizeof(h) ||
	    memcmp(h, "SQLite format 3", 16)) {
		sb_adds(why, "not an SQLite database");
		bad = 1;
		goto out;
	}
	uint32_t page = be(h + 16, 2) == 1 ? 65536 : be(h + 16, 2);
	if (page < 512 || (page & (page - 1))) {
		sb_adds(why, "its header is damaged");
		bad = 1;
		goto out;
	}
	/* the page count is valid when the change counter matches the
	 * version-valid-for field, as SQLite itself checks */
	uint64_t pages = be(h + 28, 4);
	/* a checkpoint writes whole pages: a part of one is never its doing */
	if (sb.st_size % page || (pages && be(h + 24, 4) == be(h + 92, 4) && pages * page > (uint64_t)sb.st_size &&
				  sqlite_finds_damage(p.buf))) {
		sb_addf(why, "truncated: %lld bytes", (long long)sb.st_size);
		bad = 1;
	}
out:
	if (fd >= 0)
		close(fd);
	sb_release(&p);
	return bad;
}

static ino_t index_inode(const char *dir)
{
	struct strbuf p = STRBUF_INIT;
	struct stat sb;
	sb_addf(&p, "%s/index.db", dir);
	ino_t ino = stat(p.buf, &sb) == 0 ? sb.st_ino : 0;
	sb_release(&p);
	return ino;
}

/* Moves a damaged index.db (inode ino, as judged) and its WAL aside as
 * index.db.corrupt-<time>, under the store lock, and only if it is still
 * that file: two processes that found it damaged must not move each
 * other's rebuilt index away. */
static int set_index_aside(struct store *st, ino_t ino, struct strbuf *aside)
{
	struct strbuf from = STRBUF_INIT, to = STRBUF_INIT;
	int lock = store_lock(st, STORE_LOCK_EXCLUSIVE), rc = -1;
	if (lock < 0)
		goto out;
	if (index_inode(st->dir) != ino) {
		rc = 0; /* another process set it aside meanwhile */
		goto out;
	}
	/* a new name each time: an earlier damaged copy is kept too */
	sb_addf(&to, "%s/index.db.corrupt-%lld", st->dir, (long long)(now_ms() / 1000));
	for (int n = 1, len = (int)to.len; access(to.buf, F_OK) == 0; n++) {
		sb_setlen(&to, (size_t)len);
		sb_addf(&to, ".%d", n);
	}
	sb_addf(&from, "%s/index.db", st->dir);
	if (rename(from.buf, to.buf) < 0 && errno != ENOENT) {
		err_sys("cannot move the damaged %s aside", from.buf);
		goto out;
	}
	sb_adds(aside, to.buf);
	sb_adds(&from, "-wal");
	sb_adds(&to, "-wal");
	/* a WAL must never be applied to another database */
	if (rename(from.buf, to.buf) < 0 && errno != ENOENT) {
		err_sys("cannot move %s aside", from.buf);
		goto out;
	}
	sb_setlen(&from, from.len - 4);
	sb_adds(&from, "-shm");
	unlink(from.buf);
	sb_reset(&from);
	sb_addf(&from, "%s/" DAMAGED_MARK, st->dir);
	unlink(from.buf);
	rc = 0;
out:
	store_unlock(lock);
	sb_release(&from);
	sb_release(&to);
	return rc;
}

/* A WAL database whose -shm file is missing and cannot be made (a
 * read-only store copied or left without it) opens only as immutable:
 * read-only, without locks. Fine for a store nobody can write; what is
 * read is checked against its digests anyway. */
static int open_immutable(struct store *st, const char *path)
{
	struct strbuf uri = STRBUF_INIT;
	int rc;
	sb_adds(&uri, "file:");
	for (const char *p = path; *p; p++)
		if (strchr("%?#", *p))
			sb_addf(&uri, "%%%02X", (unsigned char)*p);
		else
			sb_addc(&uri, *p);
	sb_adds(&uri, "?immutable=1");
	sqlite3_close(st->db);
	st->db = NULL;
	rc = sqlite3_open_v2(uri.buf, &st->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI | SQLITE_OPEN_NOMUTEX, NULL);
	sb_release(&uri);
	return rc == SQLITE_OK ? 0 : err_set("%s: %s", path, st->db ? sqlite3_errmsg(st->db) : "cannot open");
}

static void split_argv(const void *blob, int len, struct strvec *sv)
{
	const char *p = blob, *end = p + len;
	while (p < end) {
		size_t n = strnlen(p, (size_t)(end - p));
		sv_push_nocopy(sv, xstrndup(p, n));
		p += n + 1;
	}
}

/* cashet_cmd(argv): the command line as log shows it, for log's
 * substring filter; the index keeps only argv. */
static void sql_cmd(sqlite3_context *ctx, int argc, sqlite3_value **v)
{
	struct strvec argv = STRVEC_INIT;
	(void)argc;
	split_argv(sqlite3_value_blob(v[0]), sqlite3_value_bytes(v[0]), &argv);
	sqlite3_result_text(ctx, run_argv_cmdline(&argv), -1, free);
	sv_release(&argv);
}

int store_db_tune(sqlite3 *db)
{
	sqlite3_busy_timeout(db, STORE_BUSY_MS);
	/* Keep the -wal file when the last connection closes: deleting and
	 * recreating it on every command costs more than a whole lookup.
	 * store_close() truncates it after writes instead. */
	int persist = 1;
	sqlite3_file_control(db, "main", SQLITE_FCNTL_PERSIST_WAL, &persist);
	/* WAL with synchronous=NORMAL: a crash may lose the last transactions but
	 * never corrupts; the index can be rebuilt from git anyway. */
	/* Statement journals (an INSERT OR REPLACE inside a transaction
	 * writes one) in memory: in a temp file they were 29,000 writes, most
	 * of the time of an fsck or reindex of 2,000 runs. */
	/* A small miss commits two transactions. Checkpointing them into
	 * index.db as each command exits, and starting the WAL over in the
	 * next, cost four fsyncs (one of them the directory's) and a truncate:
	 * a third of a small miss's cost. The WAL is left as it is instead and
	 * checkpointed every WAL_PAGES pages, few enough for the next command to
	 * read them back unnoticed (store_close bounds it too). */
	sqlite3_db_config(db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
	return sqlite3_exec(db,
			    "PRAGMA synchronous=NORMAL; PRAGMA temp_store=MEMORY; PRAGMA wal_autocheckpoint=" STR(
				    WAL_PAGES),
			    NULL, NULL, NULL);
}

static int open_db(struct store *st, const char *path)
{
	if (sqlite3_open_v2(path, &st->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL) !=
	    SQLITE_OK)
		return err_set("%s: %s", path, st->db ? sqlite3_errmsg(st->db) : "cannot open");
	if (sqlite3_exec(st->db, "PRAGMA schema_version", NULL, NULL, NULL) != SQLITE_OK &&
	    (sqlite3_errcode(st->db) & 0xff) == SQLITE_CANTOPEN && access(st->dir, W_OK) < 0 &&
	    open_immutable(st, path) < 0)
		return -1;
	sqlite3_create_function(st->db, "cashet_cmd", 1, SQLITE_UTF8 | SQLITE_DETERMINISTIC, NULL, sql_cmd, NULL, NULL);
	if (store_db_tune(st->db) != SQLITE_OK)
		return store_sqlfail(st, "cannot open it");
	return 0;
}

int store_open(const char *dir, int flags, struct store **out, int *created)
{
	struct store *st = xcalloc(1, sizeof(*st));
	pthread_mutex_init(&st->packs_mu, NULL);
	struct strbuf p = STRBUF_INIT;
	int rc = -1, fresh = 0;
	if (created)
		*created = 0;
	st->dir = xstrdup(dir);
	sb_adds(&p, dir);
	char *slash = strrchr(p.buf, '/');
	sb_setlen(&p, slash && slash != p.buf ? (size_t)(slash - p.buf) : 1);
	st->root = sb_detach(&p);
	sb_addf(&p, "%s/tmp", dir);
	st->tmp = sb_detach(&p);

	sb_addf(&p, "%s/HEAD", dir);
	if (access(p.buf, F_OK) < 0) {
		if (!(flags & STORE_CREATE)) {
			err_set("no cashet store at %s (run 'cashet init' or 'cashet exec' first)", dir);
			goto out;
		}
		if (create_repo(dir, &fresh) < 0)
			goto out;
	}
	/* bad input, said before anything is done with the store */
	if (!(flags & STORE_ANY_CONFIG) && store_config_check(st, NULL) < 0)
		goto out;
	sb_reset(&p);
	sb_addf(&p, "%s/index.db", dir);
	/* The index is derived: a damaged one is moved aside and rebuilt
	 * from git, with one warning, and the command goes on. Damage the
	 * header shows is caught before SQLite reads it; what SQLite itself
	 * reports on the first read is caught just after. */
	struct strbuf why = STRBUF_INIT, aside = STRBUF_INIT;
	int v = -1;
	if (index_damaged(dir, &why) && set_index_aside(st, index_inode(dir), &aside) < 0)
		goto out_why;
	for (int tries = 0;; tries++) {
		ino_t ino = index_inode(dir);
		if (open_db(st, p.buf) == 0 && (v = read_version(st)) >= 0)
			break;
		if (tries || err_code() != E_CORRUPT)
			goto out_why;
		sb_reset(&why);
		sb_adds(&why, sqlite3_errmsg(st->db));
		sqlite3_close(st->db);
		st->db = NULL;
		if (set_index_aside(st, ino, &aside) < 0)
			goto out_why;
	}
out_why:
	if (v < 0) {
		sb_release(&why);
		sb_release(&aside);
		goto out;
	}
	if (v < SCHEMA_VERSION) {
		/* missing (deleted), damaged or from an older cashet: rebuilt from the refs */
		size_t n = 0;
		int made = create_schema(st);
		if (made < 0 || (made == 1 && !fresh && store_reindex(st, &n, NULL) < 0)) {
			sb_release(&why);
			sb_release(&aside);
			goto out;
		}
		if (made == 1 && !fresh)
			shrink_index(st);
		if (aside.len && made == 1)
			warn("warning: %s was damaged (%s): moved to %s and rebuilt from git (%zu run%s)", p.buf,
			     why.buf, aside.buf, n, n == 1 ? "" : "s");
		else if (aside.len)
			warn("warning: %s was damaged (%s): moved to %s and rebuilt from git", p.buf, why.buf,
			     aside.buf);
	}
	sb_release(&why);
	sb_release(&aside);
	if (v > SCHEMA_VERSION) {
		err_set("%s: index made by a newer cashet (schema %d)", p.buf, v);
		goto out;
	}
	if (created)
		*created = fresh;
	*out = st;
	st = NULL;
	rc = 0;
out:
	sb_release(&p);
	if (st)
		store_close(st);
	return rc;
}

void store_close(struct store *st)
{
	if (!st)
		return;
	store_batch_abort(st);
	store_statcache_drop(st);
	sb_release(&st->config);
	for (int i = 0; i < 3; i++)
		sb_release(&st->user_config[i]);
	store_pack_unload(st);
	sv_release(&st->bad_copies);
	pthread_mutex_destroy(&st->packs_mu);
	sqlite3_finalize(st->q_stat);
	sqlite3_finalize(st->q_lookup);
	sqlite3_finalize(st->q_files);
	for (size_t i = 0; i < sizeof(st->q_index) / sizeof(*st->q_index); i++)
		sqlite3_finalize(st->q_index[i]);
	if (st->db) {
		/* Every command reads the WAL's frames back when it opens the
		 * index: one that a big transaction (a reindex, a pipeline's
		 * batch) left large is emptied now, unless a reader is busy. */
		struct strbuf wal = STRBUF_INIT;
		struct stat sb;
		sb_addf(&wal, "%s/index.db-wal", st->dir);
		if (stat(wal.buf, &sb) == 0 && sb.st_size > WAL_MAX_BYTES) {
			sqlite3_busy_timeout(st->db, 0);
			sqlite3_wal_checkpoint_v2(st->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
		}
		sb_release(&wal);
		sqlite3_close(st->db);
	}
	free(st->dir);
	free(st->root);
	free(st->origin);
	free(st->tmp);
	free(st->unwritable);
	free(st);
}

int store_read_begin(struct store *st)
{
	if (!sqlite3_get_autocommit(st->db) || store_exec(st, "BEGIN") < 0) {
		err_clear(); /* only fewer locks: the lookups work without */
		return 0;
	}
	return 1;
}

void store_read_end(struct store *st, int began)
{
	if (began && store_exec(st, "COMMIT") < 0) {
		err_clear();
		store_rollback(st);
		err_clear();
	}
}

const char *store_dir(const struct store *st)
{
	return st->dir;
}

const char *store_root(const struct store *st)
{
	return st->root;
}

void store_stand_in(struct store *st, const char *origin)
{
	char *slash = strrchr(origin, '/');
	free(st->origin);
	free(st->root);
	st->origin = xstrdup(origin);
	st->root = slash && slash != origin ? xstrndup(origin, (size_t)(slash - origin)) : xstrdup("/");
}

const char *store_key_dir(const struct store *st)
{
	return st->origin ? st->origin : st->dir;
}

int store_holds(const struct store *st, const char *abs)
{
	return path_under(abs, st->dir) || (st->origin && path_under(abs, st->origin));
}

const char *store_tmpdir(struct store *st)
{
	/* made on first use: a hit needs no temporary files; a failure shows
	 * up as the caller's own error creating a file in it */
	if (!st->tmp_made && (mkdir(st->tmp, 0777) == 0 || errno == EEXIST))
		st->tmp_made = 1;
	return st->tmp;
}

int store_writable(struct store *st)
{
	if (!st->writable) {
		static const char *const dirs[] = { "", "/objects", "/refs" };
		struct strbuf p = STRBUF_INIT;
		st->writable = 1;
		for (size_t i = 0; st->writable > 0 && i < sizeof(dirs) / sizeof(*dirs); i++) {
			sb_reset(&p);
			sb_addf(&p, "%s%s", st->dir, dirs[i]);
			if (access(p.buf, W_OK) == 0)
				continue;
			err_sys("cannot write the store %s", p.buf);
			st->unwritable = xstrdup(err_msg());
			st->writable = -1;
		}
		if (st->writable > 0 && sqlite3_db_readonly(st->db, "main") == 1) {
			sb_reset(&p);
			sb_addf(&p, "cannot write the store's index %s/index.db", st->dir);
			st->unwritable = sb_detach(&p);
			st->writable = -1;
		}
		sb_release(&p);
	}
	if (st->writable < 0)
		err_set("%s", st->unwritable);
	return st->writable > 0;
}

void store_sweep_tmp(struct store *st)
{
	DIR *d = opendir(st->tmp);
	struct dirent *e;
	struct strbuf p = STRBUF_INIT;
	if (!d)
		return;
	while ((e = readdir(d))) {
		long pid;
		/* captures (run.c) and import staging (store-xfer.c) carry their pid */
		if ((sscanf(e->d_name, "cap-%ld-", &pid) != 1 && sscanf(e->d_name, "import-%ld-", &pid) != 1) ||
		    pid <= 0)
			continue;
		if (kill((pid_t)pid, 0) == 0 || errno != ESRCH)
			continue;
		sb_reset(&p);
		sb_addf(&p, "%s/%s", st->tmp, e->d_name);
		rm_rf(p.buf);
	}
	closedir(d);
	sb_release(&p);
}

int store_prepare(struct store *st, sqlite3_stmt **s, const char *sql)
{
	if (*s) {
		sqlite3_reset(*s);
		sqlite3_clear_bindings(*s);
		return 0;
	}
	if (sqlite3_prepare_v3(st->db, sql, -1, SQLITE_PREPARE_PERSISTENT, s, NULL) != SQLITE_OK)
		return store_sqlfail(st, "prepare");
	return 0;
}

void store_bind_oid(sqlite3_stmt *s, int i, const char *hex)
{
	unsigned char raw[(OID_HEX - 1) / 2];
	if (strlen(hex) == OID_HEX - 1 && hex_to_bytes(hex, raw, sizeof(raw)) == 0)
		sqlite3_bind_blob(s, i, raw, sizeof(raw), SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(s, i);
}

void store_column_oid(sqlite3_stmt *s, int i, char hex[OID_HEX])
{
	const unsigned char *raw = sqlite3_column_blob(s, i);
	bytes_to_hex(raw, raw && sqlite3_column_bytes(s, i) == (OID_HEX - 1) / 2 ? (OID_HEX - 1) / 2 : 0, hex);
}

static char *col_strdup(sqlite3_stmt *s, int i)
{
	const unsigned char *t = sqlite3_column_text(s, i);
	return t ? xstrdup((const char *)t) : NULL;
}

void store_row_to_run(sqlite3_stmt *s, int c, struct run_record *r)
{
	r->id = sqlite3_column_int64(s, c + 0);
	store_column_oid(s, c + 1, r->hash);
	store_column_oid(s, c + 2, r->parent);
	if (sqlite3_column_bytes(s, c + 3) == DIGEST_LEN)
		memcpy(r->fp.b, sqlite3_column_blob(s, c + 3), DIGEST_LEN);
	if (sqlite3_column_bytes(s, c + 4) == DIGEST_LEN)
		memcpy(r->line.b, sqlite3_column_blob(s, c + 4), DIGEST_LEN);
	r->name = col_strdup(s, c + 5);
	split_argv(sqlite3_column_blob(s, c + 6), sqlite3_column_bytes(s, c + 6), &r->argv);
	r->cwd = col_strdup(s, c + 7);
	r->ok = sqlite3_column_int(s, c + 8);
	r->exit_code = sqlite3_column_int(s, c + 9);
	r->created_ms = sqlite3_column_int64(s, c + 10);
	r->last_used_ms = sqlite3_column_int64(s, c + 11);
	r->duration_ms = sqlite3_column_int64(s, c + 12);
	r->expires_ms = sqlite3_column_int64(s, c + 13);
	r->timed_out = sqlite3_column_int(s, c + 14);
	if (sqlite3_column_count(s) > c + 16 && sqlite3_column_type(s, c + 15) == SQLITE_BLOB &&
	    run_inputs_decode(sqlite3_column_blob(s, c + 15), (size_t)sqlite3_column_bytes(s, c + 15),
			      sqlite3_column_blob(s, c + 16), (size_t)sqlite3_column_bytes(s, c + 16), r) < 0) {
		err_clear();
		r->observed = OBSERVED_BROKEN;
	}
}

int store_load_files(struct store *st, struct run_record *r, int all)
{
	if (store_prepare(
		    st, &st->q_files,
		    "SELECT kind, path, mode, oid, xxh, size, enc, data, perm FROM files WHERE run=?1 AND (kind<=?2 OR kind>=4)"
		    " ORDER BY kind, path") < 0)
		return -1;
	sqlite3_bind_int64(st->q_files, 1, r->id);
	sqlite3_bind_int(st->q_files, 2, all ? FILE_SOURCE : FILE_OUTPUT);
	int rc;
	while ((rc = sqlite3_step(st->q_files)) == SQLITE_ROW) {
		sqlite3_stmt *s = st->q_files;
		struct run_file *f = run_add_file(r, sqlite3_column_int(s, 0), (const char *)sqlite3_column_text(s, 1));
		f->mode = (unsigned)sqlite3_column_int(s, 2);
		store_column_oid(s, 3, f->oid);
		if (sqlite3_column_bytes(s, 4) == DIGEST_LEN)
			memcpy(f->xxh.b, sqlite3_column_blob(s, 4), DIGEST_LEN);
		f->size = (uint64_t)sqlite3_column_int64(s, 5);
		f->enc = sqlite3_column_int(s, 6);
		if (sqlite3_column_type(s, 7) == SQLITE_BLOB) {
			f->datalen = (size_t)sqlite3_column_bytes(s, 7);
			f->data = xmalloc(f->datalen ? f->datalen : 1);
			/* an empty blob reads as NULL, which memcpy() must not get */
			if (f->datalen)
				memcpy(f->data, sqlite3_column_blob(s, 7), f->datalen);
		} else if (f->size == 0 && sqlite3_column_type(s, 7) != SQLITE_NULL) {
			f->data = xmalloc(1);
		}
		if (sqlite3_column_type(s, 8) == SQLITE_INTEGER)
			f->perm = sqlite3_column_int(s, 8) & 0777;
	}
	sqlite3_reset(st->q_files);
	if (rc != SQLITE_DONE)
		return store_sqlfail(st, "reading files");
	return 0;
}

/* Best effort: a failure (a read-only store, a busy index) only means the
 * next lookup hashes again. */
static void refresh_inputs(struct store *st, const struct run_record *r)
{
	sqlite3_stmt *s;
	int64_t sets[2];
	if (sqlite3_exec(st->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		goto out;
	if (store_inputsets(st, r, sets) == 0 &&
	    sqlite3_prepare_v2(st->db, "UPDATE runs SET inputset=?1, inputset_own=?2 WHERE id=?3", -1, &s, NULL) ==
		    SQLITE_OK) {
		sqlite3_bind_int64(s, 1, sets[0]);
		sqlite3_bind_int64(s, 2, sets[1]);
		sqlite3_bind_int64(s, 3, r->id);
		sqlite3_step(s);
		sqlite3_finalize(s);
	}
	if (sqlite3_exec(st->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
out:
	err_clear();
}

int store_lookup(struct store *st, const struct digest *fp, const struct store_lookup_opts *o, struct run_record *r)
{
	/* Candidates newest first; with observed inputs several runs share a
	 * fingerprint (the same command over different files), and the first
	 * whose inputs all still match is the hit. Older ones are rarely it:
	 * the bound keeps a miss cheap (a miss is only ever a re-run). */
	enum { MAX_CANDIDATES = 32 };
	sqlite3_stmt *q;
	if (store_prepare(st, &st->q_lookup,
			  "SELECT " RUN_COLUMNS_INPUTS " FROM runs WHERE fp=?1 AND (ok=1 OR ?2) AND created>=?3"
			  " AND (expires=0 OR expires>?4) ORDER BY created DESC, id DESC LIMIT ?5") < 0)
		return -1;
	q = st->q_lookup;
	sqlite3_bind_blob(q, 1, fp->b, DIGEST_LEN, SQLITE_STATIC);
	sqlite3_bind_int(q, 2, o->allow_failed);
	sqlite3_bind_int64(q, 3, o->min_created);
	sqlite3_bind_int64(q, 4, o->now);
	sqlite3_bind_int(q, 5, MAX_CANDIDATES);
	int rc, found = 0;
	while (!found && (rc = sqlite3_step(q)) == SQLITE_ROW) {
		run_record_free(r);
		store_row_to_run(q, 0, r);
		found = o->accept ? o->accept(o->ctx, r) : 1;
		if (found < 0) {
			sqlite3_reset(q);
			return -1;
		}
	}
	if (!found && rc != SQLITE_DONE) {
		sqlite3_reset(q);
		return store_sqlfail(st, "lookup");
	}
	sqlite3_reset(q);
	if (!found) {
		run_record_free(r);
		return 0;
	}
	if (r->inputs_refreshed)
		refresh_inputs(st, r);
	/* a hit replays streams and outputs: sources are not needed */
	if (store_load_files(st, r, 0) < 0)
		return -1;
	return 1;
}

int store_newest_inputs(struct store *st, const struct digest *fp, struct run_record *r)
{
	sqlite3_stmt *s;
	if (sqlite3_prepare_v2(st->db,
			       "SELECT " INPUTS_COLUMN " FROM runs WHERE fp=?1 ORDER BY created DESC, id DESC LIMIT 1",
			       -1, &s, NULL) != SQLITE_OK)
		return store_sqlfail(st, "query");
	sqlite3_bind_blob(s, 1, fp->b, DIGEST_LEN, SQLITE_STATIC);
	int rc = sqlite3_step(s), found = 0;
	if (rc == SQLITE_ROW && sqlite3_column_type(s, 0) == SQLITE_BLOB)
		found = run_inputs_decode(sqlite3_column_blob(s, 0), (size_t)sqlite3_column_bytes(s, 0),
					  sqlite3_column_blob(s, 1), (size_t)sqlite3_column_bytes(s, 1), r) == 0;
	else if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		found = store_sqlfail(st, "query");
	sqlite3_finalize(s);
	err_clear();
	return found < 0 ? -1 : found;
}

/* key: keylen bytes, or (keylen < 0) a git id in hex */
static int load_one(struct store *st, const char *sql, const void *key, int keylen, struct run_record *r)
{
	sqlite3_stmt *s;
	if (sqlite3_prepare_v2(st->db, sql, -1, &s, NULL) != SQLITE_OK)
		return store_sqlfail(st, "query");
	if (keylen < 0)
		store_bind_oid(s, 1, key);
	else
		sqlite3_bind_blob(s, 1, key, keylen, SQLITE_STATIC);
	int rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		store_row_to_run(s, 0, r);
	sqlite3_finalize(s);
	if (rc == SQLITE_DONE)
		return 0;
	if (rc != SQLITE_ROW)
		return store_sqlfail(st, "query");
	return 1;
}

int store_parts_decode(const unsigned char *p, size_t len, int64_t **ids, size_t *n)
{
	*ids = NULL;
	*n = 0;
	for (size_t i = 0; i < len;) {
		uint64_t v = 0;
		int shift = 0;
		do {
			if (i >= len || shift > 56) {
				free(*ids);
				*ids = NULL;
				*n = 0;
				return -1;
			}
			v |= (uint64_t)(p[i] & 0x7f) << shift;
			shift += 7;
		} while (p[i++] & 0x80);
		*ids = xrealloc(*ids, (*n + 1) * sizeof(**ids));
		(*ids)[(*n)++] = (int64_t)v;
	}
	return 0;
}

/* The run's fingerprint parts, in order, from partvals. */
static int load_parts(struct store *st, struct run_record *r)
{
	sqlite3_stmt *s = NULL, *q = NULL;
	int64_t *ids = NULL;
	size_t n = 0;
	int rc = -1;
	/* prepared once per store: log --json and push list every run */
	if (store_prepare(st, &st->q_index[IX_PARTS_OF], "SELECT parts FROM runs WHERE id=?1") < 0 ||
	    store_prepare(st, &st->q_index[IX_PARTVAL], "SELECT kind, name, hash, detail FROM partvals WHERE id=?1") <
		    0)
		goto out;
	s = st->q_index[IX_PARTS_OF];
	q = st->q_index[IX_PARTVAL];
	sqlite3_bind_int64(s, 1, r->id);
	if (sqlite3_step(s) == SQLITE_ROW &&
	    store_parts_decode(sqlite3_column_blob(s, 0), (size_t)sqlite3_column_bytes(s, 0), &ids, &n) < 0) {
		err_setc(E_CORRUPT, "index: run %.12s: its list of parts is damaged (cashet reindex rebuilds it)",
			 r->hash);
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		if (ids[i] == 0) {
			run_add_argv_part(r);
			continue;
		}
		sqlite3_reset(q);
		sqlite3_bind_int64(q, 1, ids[i]);
		if (sqlite3_step(q) != SQLITE_ROW) {
			err_setc(E_CORRUPT, "index: run %.12s: part %lld is missing (cashet reindex rebuilds it)",
				 r->hash, (long long)ids[i]);
			goto out;
		}
		struct digest d = { { 0 } };
		if (sqlite3_column_bytes(q, 2) == DIGEST_LEN)
			memcpy(d.b, sqlite3_column_blob(q, 2), DIGEST_LEN);
		struct run_part *p = run_add_part(r, (const char *)sqlite3_column_text(q, 0),
						  (const char *)sqlite3_column_text(q, 1), &d);
		if (sqlite3_column_type(q, 3) != SQLITE_NULL)
			p->detail = xstrdup((const char *)sqlite3_column_text(q, 3));
	}
	rc = 0;
out:
	if (s)
		sqlite3_reset(s);
	if (q)
		sqlite3_reset(q);
	free(ids);
	return rc;
}

static int load_details(struct store *st, struct run_record *r)
{
	sqlite3_stmt *s;
	if (store_load_files(st, r, 1) < 0)
		return -1;
	if (load_parts(st, r) < 0)
		return -1;
	if (sqlite3_prepare_v2(st->db, "SELECT key, value FROM tags WHERE run=?1 ORDER BY key", -1, &s, NULL) !=
	    SQLITE_OK)
		return store_sqlfail(st, "tags");
	sqlite3_bind_int64(s, 1, r->id);
	while (sqlite3_step(s) == SQLITE_ROW) {
		struct strbuf t = STRBUF_INIT;
		sb_adds(&t, (const char *)sqlite3_column_text(s, 0));
		if (sqlite3_column_type(s, 1) != SQLITE_NULL)
			sb_addf(&t, "=%s", (const char *)sqlite3_column_text(s, 1));
		sv_push_nocopy(&r->tags, sb_detach(&t));
	}
	sqlite3_finalize(s);
	if (sqlite3_prepare_v2(st->db, "SELECT key, value FROM metrics WHERE run=?1 ORDER BY key", -1, &s, NULL) !=
	    SQLITE_OK)
		return store_sqlfail(st, "metrics");
	sqlite3_bind_int64(s, 1, r->id);
	while (sqlite3_step(s) == SQLITE_ROW) {
		struct strbuf t = STRBUF_INIT;
		sb_addf(&t, "%s=%s", (const char *)sqlite3_column_text(s, 0), (const char *)sqlite3_column_text(s, 1));
		sv_push_nocopy(&r->metrics, sb_detach(&t));
	}
	sqlite3_finalize(s);
	return 0;
}

int store_latest_of_line(struct store *st, const struct digest *line, struct run_record *r)
{
	int rc =
		load_one(st,
			 "SELECT " RUN_COLUMNS_INPUTS " FROM runs WHERE line=?1 ORDER BY created DESC, id DESC LIMIT 1",
			 line->b, DIGEST_LEN, r);
	if (rc == 1 && load_details(st, r) < 0)
		return -1;
	return rc;
}

int store_latest_of_argv(struct store *st, const struct strvec *argv, struct run_record *r)
{
	struct strbuf key = STRBUF_INIT;
	/* the form store_index_run() writes: each argument and its NUL */
	for (size_t i = 0; i < argv->n; i++)
		sb_add(&key, argv->v[i], strlen(argv->v[i]) + 1);
	int rc =
		load_one(st,
			 "SELECT " RUN_COLUMNS_INPUTS " FROM runs WHERE argv=?1 ORDER BY created DESC, id DESC LIMIT 1",
			 key.buf ? key.buf : "", (int)key.len, r);
	if (rc == 1 && load_details(st, r) < 0)
		rc = -1;
	sb_release(&key);
	return rc;
}

int store_load(struct store *st, const char *hash, struct run_record *r)
{
	int rc = load_one(st, "SELECT " RUN_COLUMNS_INPUTS " FROM runs WHERE hash=?1", hash, -1, r);
	if (rc == 1 && load_details(st, r) < 0)
		return -1;
	return rc;
}

int store_resolve(struct store *st, const char *prefix, char hash[OID_HEX])
{
	size_t n = strlen(prefix);
	if (n < 4 || n > 40 || strspn(prefix, "0123456789abcdef") != n)
		return err_set("'%s' is not a run hash (4 to 40 lowercase hex digits)", prefix);
	struct strbuf cands = STRBUF_INIT;
	char lo[OID_HEX], hi[OID_HEX];
	sqlite3_stmt *s;
	int found = 0, rc = -1;
	/* the ids the prefix covers: from it followed by 0s to it followed by fs */
	memset(lo, '0', OID_HEX - 1);
	memset(hi, 'f', OID_HEX - 1);
	memcpy(lo, prefix, n);
	memcpy(hi, prefix, n);
	lo[OID_HEX - 1] = hi[OID_HEX - 1] = '\0';
	if (sqlite3_prepare_v2(st->db, "SELECT hash FROM runs WHERE hash BETWEEN ?1 AND ?2 ORDER BY hash LIMIT 11", -1,
			       &s, NULL) != SQLITE_OK) {
		store_sqlfail(st, "resolve");
		goto out;
	}
	store_bind_oid(s, 1, lo);
	store_bind_oid(s, 2, hi);
	while (sqlite3_step(s) == SQLITE_ROW) {
		char h[OID_HEX];
		store_column_oid(s, 0, h);
		if (!found)
			memcpy(hash, h, OID_HEX);
		if (found < 10)
			sb_addf(&cands, " %.12s", h);
		found++;
	}
	sqlite3_finalize(s);
	if (found == 1)
		rc = 0;
	else if (found == 0)
		err_set("no run matches '%s'", prefix);
	else
		err_set("ambiguous hash '%s': candidates:%s%s", prefix, cands.buf, found > 10 ? " ..." : "");
out:
	sb_release(&cands);
	return rc;
}

int store_touch(struct store *st, const struct run_record *r, int64_t now)
{
	/* LRU needs minutes, not milliseconds: skip the write most of the time. */
	if (now - r->last_used_ms < 60000)
		return 0;
	sqlite3_stmt *s;
	if (sqlite3_prepare_v2(st->db, "UPDATE runs SET last_used=?2 WHERE id=?1", -1, &s, NULL) != SQLITE_OK)
		return store_sqlfail(st, "touch");
	sqlite3_bind_int64(s, 1, r->id);
	sqlite3_bind_int64(s, 2, now);
	int rc = sqlite3_step(s);
	sqlite3_finalize(s);
	return rc == SQLITE_DONE ? 0 : store_sqlfail(st, "touch");
}

int store_touch_runs(struct store *st, const struct strvec *hashes, int64_t now)
{
	sqlite3_stmt *s;
	int rc = 0;
	if (store_exec(st, "BEGIN IMMEDIATE") < 0)
		return -1;
	if (sqlite3_prepare_v2(st->db, "UPDATE runs SET last_used=?2 WHERE hash=?1 AND last_used<?3", -1, &s, NULL) !=
	    SQLITE_OK) {
		store_rollback(st);
		return store_sqlfail(st, "touch");
	}
	for (size_t i = 0; rc == 0 && i < hashes->n; i++) {
		store_bind_oid(s, 1, hashes->v[i]);
		sqlite3_bind_int64(s, 2, now);
		sqlite3_bind_int64(s, 3, now - 60000); /* as store_touch */
		if (sqlite3_step(s) != SQLITE_DONE)
			rc = store_sqlfail(st, "touch");
		sqlite3_reset(s);
	}
	sqlite3_finalize(s);
	if (rc < 0)
		store_rollback(st);
	else if (store_exec(st, "COMMIT") < 0)
		rc = -1;
	return rc;
}

int store_generation(struct store *st, int64_t *epoch, int64_t *gen)
{
	sqlite3_stmt *s;
	int found = 0;
	if (sqlite3_prepare_v2(st->db, "SELECT k, v FROM totals WHERE k IN ('epoch', 'gen')", -1, &s, NULL) !=
	    SQLITE_OK)
		return store_sqlfail(st, "generation");
	while (sqlite3_step(s) == SQLITE_ROW) {
		const char *k = (const char *)sqlite3_column_text(s, 0);
		found++;
		*(!strcmp(k, "epoch") ? epoch : gen) = sqlite3_column_int64(s, 1);
	}
	sqlite3_finalize(s);
	return found == 2 ? 0 : err_set("the index has no generation");
}

int store_list(struct store *st, const struct log_filter *f, store_run_cb cb, void *ctx)
{
	struct strbuf sql = STRBUF_INIT;
	sqlite3_stmt *s = NULL;
	int rc = -1, bind = 1;
	sb_adds(&sql, "SELECT " RUN_COLUMNS " FROM runs WHERE 1");
	if (f->name)
		sb_addf(&sql, " AND name=?%d", bind++);
	if (f->cmd_substr)
		sb_addf(&sql, " AND instr(cashet_cmd(argv), ?%d)>0", bind++);
	if (f->status)
		sb_addf(&sql, " AND ok=%d", strcmp(f->status, "ok") == 0);
	for (size_t i = 0; i < f->tags.n; i++) {
		if (strchr(f->tags.v[i], '='))
			sb_addf(&sql,
				" AND EXISTS(SELECT 1 FROM tags t WHERE t.run=runs.id AND t.key=?%d AND t.value=?%d)",
				bind, bind + 1);
		else
			sb_addf(&sql, " AND EXISTS(SELECT 1 FROM tags t WHERE t.run=runs.id AND t.key=?%d)", bind);
		bind += 2;
	}
	sb_adds(&sql, " ORDER BY created DESC, id DESC");
	if (f->limit > 0)
		sb_addf(&sql, " LIMIT %d", f->limit);
	if (sqlite3_prepare_v2(st->db, sql.buf, -1, &s, NULL) != SQLITE_OK) {
		store_sqlfail(st, "log");
		goto out;
	}
	bind = 1;
	if (f->name)
		sqlite3_bind_text(s, bind++, f->name, -1, SQLITE_STATIC);
	if (f->cmd_substr)
		sqlite3_bind_text(s, bind++, f->cmd_substr, -1, SQLITE_STATIC);
	for (size_t i = 0; i < f->tags.n; i++) {
		const char *t = f->tags.v[i], *eq = strchr(t, '=');
		sqlite3_bind_text(s, bind, t, eq ? (int)(eq - t) : -1, SQLITE_STATIC);
		if (eq)
			sqlite3_bind_text(s, bind + 1, eq + 1, -1, SQLITE_STATIC);
		bind += 2;
	}
	int step;
	while ((step = sqlite3_step(s)) == SQLITE_ROW) {
		struct run_record r = { 0 };
		store_row_to_run(s, 0, &r);
		int crc = f->rows_only ? 0 : load_details(st, &r);
		if (crc == 0)
			crc = cb(&r, ctx);
		run_record_free(&r);
		if (crc < 0)
			goto out;
	}
	if (step != SQLITE_DONE) {
		store_sqlfail(st, "log");
		goto out;
	}
	rc = 0;
out:
	sqlite3_finalize(s);
	sb_release(&sql);
	return rc;
}

/* The objects of a pack index (name, in directory dfd): the last entry of
 * its fan-out table. */
static int64_t idx_objects(int dfd, const char *name)
{
	unsigned char b[4];
	int fd = openat(dfd, name, O_RDONLY | O_CLOEXEC);
	int64_t n = 0;
	if (fd >= 0 && pread(fd, b, 4, 8 + 255 * 4) == 4)
		n = (int64_t)((uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3]);
	if (fd >= 0)
		close(fd);
	return n;
}

/* Objects and their disk usage below directory name of dfd (fanout: it
 * is objects/xx): a loose object is one file, a pack holds as many as its
 * index says. Auto-pack keeps the loose ones to a few thousand and the
 * packs to a few dozen, so this is bounded whatever the number of runs;
 * each entry is looked up in its directory's descriptor, not by a path
 * walked again from the root (that walk was half of stats' time). */
static void du(int dfd, const char *name, int fanout, int64_t *objects, int64_t *bytes)
{
	int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d) {
		if (fd >= 0)
			close(fd);
		return;
	}
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		struct stat sb;
		if (fstatat(fd, e->d_name, &sb, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		size_t len = strlen(e->d_name);
		if (S_ISDIR(sb.st_mode)) {
			du(fd, e->d_name, len == 2, objects, bytes);
			continue;
		}
		*bytes += (int64_t)sb.st_blocks * 512;
		if (len == 38 && fanout)
			(*objects)++; /* objects/xx/<38 hex> */
		else if (len > 9 && !strncmp(e->d_name, "pack-", 5) && !strcmp(e->d_name + len - 4, ".idx"))
			*objects += idx_objects(fd, e->d_name);
	}
	closedir(d);
}

int store_stats(struct store *st, struct store_stats *out)
{
	sqlite3_stmt *s;
	memset(out, 0, sizeof(*out));
	/* the counters the index keeps (triggers on runs), not a scan */
	if (sqlite3_prepare_v2(st->db, "SELECT k, v FROM totals", -1, &s, NULL) != SQLITE_OK)
		return store_sqlfail(st, "stats");
	while (sqlite3_step(s) == SQLITE_ROW) {
		const char *k = (const char *)sqlite3_column_text(s, 0);
		int64_t v = sqlite3_column_int64(s, 1);
		if (!strcmp(k, "runs"))
			out->runs = v;
		else if (!strcmp(k, "ok"))
			out->ok = v;
		else if (!strcmp(k, "bytes"))
			out->stored_bytes = v;
	}
	sqlite3_finalize(s);
	out->failed = out->runs - out->ok;
	struct strbuf p = STRBUF_INIT;
	sb_addf(&p, "%s/objects", st->dir);
	du(AT_FDCWD, p.buf, 0, &out->objects, &out->object_bytes);
	const char *suffix[] = { "", "-wal", "-shm" };
	for (int i = 0; i < 3; i++) {
		struct stat sb;
		sb_reset(&p);
		sb_addf(&p, "%s/index.db%s", st->dir, suffix[i]);
		if (stat(p.buf, &sb) == 0)
			out->index_bytes += (int64_t)sb.st_size;
	}
	sb_release(&p);
	return 0;
}
