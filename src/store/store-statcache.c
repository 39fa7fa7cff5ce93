/* store-statcache: digests of files keyed by what stat() says (path, kind,
 * device, inode, size, mtime, ctime), so an unchanged file is never read
 * twice. kind 0 is the raw content; other kinds are derived digests (the
 * canonical form of a script) that also keep what the file depends on;
 * kind -1 rows are whole directory trees' snapshots (key/dirscan.c). */
#include "store/store-int.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* rows: fewer are written at once (a thread and a connection cost more) */
#define FLUSH_ASYNC_MIN 1024

#define ROW_SELECT "SELECT dev, ino, size, mtime, ctime, hash, deps FROM statcache WHERE path=?1 AND kind=?2"

/* Whether q's row (ROW_SELECT, stepped) is of the file as sb finds it; if
 * so its digest goes to out. */
static int row_fresh(sqlite3_stmt *q, const struct stat *sb, struct digest *out)
{
	int found = sqlite3_column_int64(q, 0) == (int64_t)sb->st_dev &&
		    sqlite3_column_int64(q, 1) == (int64_t)sb->st_ino &&
		    sqlite3_column_int64(q, 2) == (int64_t)sb->st_size &&
		    sqlite3_column_int64(q, 3) == ts_ns(&sb->st_mtim) &&
		    sqlite3_column_int64(q, 4) == ts_ns(&sb->st_ctim) && sqlite3_column_bytes(q, 5) == DIGEST_LEN;
	if (found)
		memcpy(out->b, sqlite3_column_blob(q, 5), DIGEST_LEN);
	return found;
}

int store_cache_get(struct store *st, const char *path, int kind, const struct stat *sb, struct digest *out,
		    struct strbuf *deps)
{
	sqlite3_stmt *q;
	if (store_prepare(st, &st->q_stat, ROW_SELECT) < 0)
		return -1;
	q = st->q_stat;
	sqlite3_bind_text(q, 1, path, -1, SQLITE_STATIC);
	sqlite3_bind_int(q, 2, kind);
	int found = sqlite3_step(q) == SQLITE_ROW && row_fresh(q, sb, out);
	if (found && deps && sqlite3_column_bytes(q, 6) > 0)
		sb_add(deps, sqlite3_column_blob(q, 6), (size_t)sqlite3_column_bytes(q, 6));
	sqlite3_reset(q);
	return found;
}

struct cache_reader {
	char *db_path;
	sqlite3 *db;
	sqlite3_stmt *q;
	int failed; /* not to be opened again */
};

struct cache_reader *store_cache_reader_new(struct store *st)
{
	struct cache_reader *r = xcalloc(1, sizeof(*r));
	r->db_path = xstrdup(sqlite3_db_filename(st->db, "main"));
	return r;
}

int store_cache_reader_get(struct cache_reader *r, const char *path, const struct stat *sb, struct digest *out)
{
	if (!r->db && !r->failed &&
	    (sqlite3_open_v2(r->db_path, &r->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK ||
	     sqlite3_prepare_v2(r->db, ROW_SELECT, -1, &r->q, NULL) != SQLITE_OK)) {
		sqlite3_close(r->db); /* only a cache: the file is hashed */
		r->db = NULL;
		r->failed = 1;
	}
	if (!r->db)
		return 0;
	sqlite3_bind_text(r->q, 1, path, -1, SQLITE_STATIC);
	sqlite3_bind_int(r->q, 2, 0);
	int found = sqlite3_step(r->q) == SQLITE_ROW && row_fresh(r->q, sb, out);
	sqlite3_reset(r->q);
	return found;
}

void store_cache_reader_free(struct cache_reader *r)
{
	if (!r)
		return;
	sqlite3_finalize(r->q);
	sqlite3_close(r->db);
	free(r->db_path);
	free(r);
}

int store_cache_quiet(const struct stat *sb, int64_t now)
{
	return now - ts_ns(&sb->st_mtim) >= STORE_CACHE_QUIET_NS && now - ts_ns(&sb->st_ctim) >= STORE_CACHE_QUIET_NS;
}

static void queue(struct store *st, const char *path, int kind, const struct stat *sb, const struct digest *d,
		  const void *deps, size_t depslen)
{
	if (st->npending == st->apending) {
		st->apending = st->apending ? st->apending * 2 : 64;
		st->pending = xrealloc(st->pending, st->apending * sizeof(*st->pending));
	}
	struct pending_stat *ps = &st->pending[st->npending++];
	ps->path = xstrdup(path);
	ps->kind = kind;
	ps->sb = *sb;
	ps->d = *d;
	ps->deps = depslen ? xstrndup(deps, depslen) : NULL;
	ps->depslen = depslen;
}

void store_cache_put(struct store *st, const char *path, int kind, const struct stat *sb, const struct digest *d,
		     const void *deps, size_t depslen)
{
	/* A file changed within the timestamp granularity of its last write could
	 * change again without a visible stat change ("racy git"): cache only
	 * files that have been quiet for a while. */
	if (!store_cache_quiet(sb, now_ns()))
		return;
	queue(st, path, kind, sb, d, deps, depslen);
}

/* A tree's row: the snapshot in deps, its digest in hash; the stat fields
 * are unused (the snapshot checks each file, not the directory). */
enum { KIND_TREE = -1 };

int store_tree_get(struct store *st, const char *absdir, struct strbuf *snap)
{
	sqlite3_stmt *q;
	struct digest d;
	if (store_prepare(st, &st->q_stat, ROW_SELECT) < 0)
		return -1;
	q = st->q_stat;
	sqlite3_bind_text(q, 1, absdir, -1, SQLITE_STATIC);
	sqlite3_bind_int(q, 2, KIND_TREE);
	int found = sqlite3_step(q) == SQLITE_ROW && sqlite3_column_bytes(q, 5) == DIGEST_LEN;
	if (found) {
		const void *blob = sqlite3_column_blob(q, 6);
		size_t n = (size_t)sqlite3_column_bytes(q, 6);
		digest_of(blob, n, &d);
		/* damaged bytes are no snapshot: every file is hashed again */
		found = blob && !memcmp(d.b, sqlite3_column_blob(q, 5), DIGEST_LEN);
		if (found)
			sb_add(snap, blob, n);
	}
	sqlite3_reset(q);
	return found;
}

void store_tree_put(struct store *st, const char *absdir, const struct strbuf *snap)
{
	static const struct stat none;
	struct digest d;
	digest_of(snap->buf, snap->len, &d);
	queue(st, absdir, KIND_TREE, &none, &d, snap->buf, snap->len);
}

int store_file_digest(struct store *st, const char *path, const struct stat *sb, struct digest *out)
{
	int found = store_cache_get(st, path, 0, sb, out, NULL);
	if (found != 0)
		return found < 0 ? -1 : 0;
	if (digest_file(path, out, NULL) < 0)
		return -1;
	store_cache_put(st, path, 0, sb, out, NULL, 0);
	return 0;
}

/* Whether an SQLite result code is the disk's, not the index's: read-only,
 * full, or over a file size limit. */
static int disk_code(int rc)
{
	rc &= 0xff;
	return rc == SQLITE_READONLY || rc == SQLITE_FULL || rc == SQLITE_CANTOPEN || rc == SQLITE_IOERR;
}

/* The n rows of p in one transaction on db, without waiting for another
 * process's write: SQLITE_OK, or the code that stopped it, the
 * transaction left to the caller to roll back (its message kept). */
static int put_rows(sqlite3 *db, const struct pending_stat *p, size_t n)
{
	sqlite3_stmt *s = NULL;
	sqlite3_busy_timeout(db, 0);
	int rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO statcache VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9)", -1,
					&s, NULL);
	for (size_t i = 0; rc == SQLITE_OK && i < n; i++) {
		const struct pending_stat *ps = &p[i];
		sqlite3_reset(s);
		sqlite3_bind_text(s, 1, ps->path, -1, SQLITE_STATIC);
		sqlite3_bind_int(s, 2, ps->kind);
		sqlite3_bind_int64(s, 3, (int64_t)ps->sb.st_dev);
		sqlite3_bind_int64(s, 4, (int64_t)ps->sb.st_ino);
		sqlite3_bind_int64(s, 5, (int64_t)ps->sb.st_size);
		sqlite3_bind_int64(s, 6, ts_ns(&ps->sb.st_mtim));
		sqlite3_bind_int64(s, 7, ts_ns(&ps->sb.st_ctim));
		sqlite3_bind_blob(s, 8, ps->d.b, DIGEST_LEN, SQLITE_STATIC);
		if (ps->deps)
			sqlite3_bind_blob(s, 9, ps->deps, (int)ps->depslen, SQLITE_STATIC);
		else
			sqlite3_bind_null(s, 9);
		if ((rc = sqlite3_step(s)) == SQLITE_DONE)
			rc = SQLITE_OK;
	}
	sqlite3_finalize(s);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	sqlite3_busy_timeout(db, STORE_BUSY_MS);
	return rc;
}

static void free_rows(struct pending_stat *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(p[i].path);
		free(p[i].deps);
	}
	free(p);
}

/* A flush of many rows, on its own connection and thread (see
 * store_flush_statcache). */
struct flush_job {
	pthread_t thread;
	char *db;
	struct pending_stat *rows;
	size_t n;
};

static void *flush_main(void *arg)
{
	struct flush_job *j = arg;
	sqlite3 *db = NULL;
	/* only a cache: a failure costs hashing those files again */
	if (sqlite3_open_v2(j->db, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) == SQLITE_OK &&
	    store_db_tune(db) == SQLITE_OK && put_rows(db, j->rows, j->n) != SQLITE_OK && !sqlite3_get_autocommit(db))
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	sqlite3_close(db);
	return NULL;
}

void store_statcache_join(struct store *st)
{
	struct flush_job *j = st->flushing;
	if (!j)
		return;
	pthread_join(j->thread, NULL);
	free_rows(j->rows, j->n);
	free(j->db);
	free(j);
	st->flushing = NULL;
}

void store_statcache_drop(struct store *st)
{
	store_statcache_join(st);
	free_rows(st->pending, st->npending);
	st->pending = NULL;
	st->npending = st->apending = 0;
}

int store_flush_statcache(struct store *st)
{
	int rc = 0;
	store_statcache_join(st);
	if (!st->npending)
		return 0;
	/* a cache that cannot be written (a read-only store, a full disk)
	 * only costs hashing those files again next time */
	if (sqlite3_db_readonly(st->db, "main") == 1)
		goto out;
	/* The 20,000 rows of a `cp -r` took 35 ms of its miss, on one CPU
	 * while the other idled: so many are written beside what follows
	 * (the git half of the save, which joins it before its own
	 * transaction; store_close). Not waiting either, they are dropped
	 * when another process writes. */
	if (st->npending >= FLUSH_ASYNC_MIN) {
		struct flush_job *j = xcalloc(1, sizeof(*j));
		j->db = xstrdup(sqlite3_db_filename(st->db, "main"));
		j->rows = st->pending;
		j->n = st->npending;
		if (thread_start(&j->thread, flush_main, j, 0) == 0) {
			st->flushing = j;
			st->pending = NULL;
			st->npending = st->apending = 0;
			return 0;
		}
		free(j->db);
		free(j);
	}
	/* nor does it wait for another process's write (an import, a
	 * reindex): the entries are kept for this command's next flush */
	int code = put_rows(st->db, st->pending, st->npending);
	if (code != SQLITE_OK && (code & 0xff) != SQLITE_BUSY && !disk_code(code))
		rc = store_sqlfail(st, "statcache");
	if (code != SQLITE_OK)
		store_rollback(st);
	if ((code & 0xff) == SQLITE_BUSY)
		return rc;
out:
	store_statcache_drop(st);
	return rc;
}
