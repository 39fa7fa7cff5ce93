/* store-statcache: digests of files keyed by what stat() says (path, kind,
 * device, inode, size, mtime, ctime), so an unchanged file is never read
 * twice. kind 0 is the raw content; other kinds are derived digests (the
 * canonical form of a script) that also keep what the file depends on;
 * kind -1 rows are whole directory trees' snapshots (key/dirscan.c). */
#include "store/store-int.h"

#include <stdlib.h>
#include <string.h>

static int64_t ns_of(const struct timespec *ts)
{
	return (int64_t)ts->tv_sec * 1000000000 + ts->tv_nsec;
}

int store_cache_get(struct store *st, const char *path, int kind, const struct stat *sb, struct digest *out,
		    struct strbuf *deps)
{
	sqlite3_stmt *q;
	if (store_prepare(st, &st->q_stat,
			  "SELECT dev, ino, size, mtime, ctime, hash, deps FROM statcache WHERE path=?1 AND kind=?2") <
	    0)
		return -1;
	q = st->q_stat;
	sqlite3_bind_text(q, 1, path, -1, SQLITE_STATIC);
	sqlite3_bind_int(q, 2, kind);
	int found = sqlite3_step(q) == SQLITE_ROW && sqlite3_column_int64(q, 0) == (int64_t)sb->st_dev &&
		    sqlite3_column_int64(q, 1) == (int64_t)sb->st_ino &&
		    sqlite3_column_int64(q, 2) == (int64_t)sb->st_size &&
		    sqlite3_column_int64(q, 3) == ns_of(&sb->st_mtim) &&
		    sqlite3_column_int64(q, 4) == ns_of(&sb->st_ctim) && sqlite3_column_bytes(q, 5) == DIGEST_LEN;
	if (found) {
		memcpy(out->b, sqlite3_column_blob(q, 5), DIGEST_LEN);
		if (deps && sqlite3_column_bytes(q, 6) > 0)
			sb_add(deps, sqlite3_column_blob(q, 6), (size_t)sqlite3_column_bytes(q, 6));
	}
	sqlite3_reset(q);
	return found;
}

static void queue(struct store *st, const char *path, int kind, const struct stat *sb, const struct digest *d,
		  const void *deps, size_t depslen)
{
	st->pending = xrealloc(st->pending, (st->npending + 1) * sizeof(*st->pending));
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
	int64_t now = now_ns(), quiet = 2000000000LL;
	if (now - ns_of(&sb->st_mtim) < quiet || now - ns_of(&sb->st_ctim) < quiet)
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
	if (store_prepare(st, &st->q_stat,
			  "SELECT dev, ino, size, mtime, ctime, hash, deps FROM statcache WHERE path=?1 AND kind=?2") <
	    0)
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

/* The last error was the disk's, not the index's: read-only, full, or
 * over a file size limit. The error is dropped then. */
static int cannot_write(struct store *st)
{
	int code = sqlite3_errcode(st->db) & 0xff;
	if (code != SQLITE_READONLY && code != SQLITE_FULL && code != SQLITE_CANTOPEN && code != SQLITE_IOERR)
		return 0;
	err_clear();
	return 1;
}

int store_flush_statcache(struct store *st)
{
	sqlite3_stmt *s = NULL;
	int rc = -1;
	if (!st->npending)
		return 0;
	/* a cache that cannot be written (a read-only store, a full disk)
	 * only costs hashing those files again next time */
	if (sqlite3_db_readonly(st->db, "main") == 1) {
		rc = 0;
		goto out;
	}
	/* nor does it wait for another process's write (an import, a
	 * reindex): the entries are kept for this command's next flush */
	int began = store_exec_within(st, "BEGIN IMMEDIATE", 0);
	if (began < 0 && (sqlite3_errcode(st->db) & 0xff) == SQLITE_BUSY) {
		err_clear();
		return 0;
	}
	if (began < 0) {
		rc = cannot_write(st) ? 0 : -1;
		goto out;
	}
	if (sqlite3_prepare_v2(st->db, "INSERT OR REPLACE INTO statcache VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9)", -1, &s,
			       NULL) != SQLITE_OK) {
		store_sqlfail(st, "statcache");
		store_rollback(st);
		goto out;
	}
	for (size_t i = 0; i < st->npending; i++) {
		struct pending_stat *ps = &st->pending[i];
		sqlite3_reset(s);
		sqlite3_bind_text(s, 1, ps->path, -1, SQLITE_STATIC);
		sqlite3_bind_int(s, 2, ps->kind);
		sqlite3_bind_int64(s, 3, (int64_t)ps->sb.st_dev);
		sqlite3_bind_int64(s, 4, (int64_t)ps->sb.st_ino);
		sqlite3_bind_int64(s, 5, (int64_t)ps->sb.st_size);
		sqlite3_bind_int64(s, 6, ns_of(&ps->sb.st_mtim));
		sqlite3_bind_int64(s, 7, ns_of(&ps->sb.st_ctim));
		sqlite3_bind_blob(s, 8, ps->d.b, DIGEST_LEN, SQLITE_STATIC);
		if (ps->deps)
			sqlite3_bind_blob(s, 9, ps->deps, (int)ps->depslen, SQLITE_STATIC);
		else
			sqlite3_bind_null(s, 9);
		sqlite3_step(s);
	}
	rc = store_exec(st, "COMMIT");
	if (rc < 0) {
		rc = cannot_write(st) ? 0 : -1;
		store_rollback(st);
	}
out:
	sqlite3_finalize(s);
	for (size_t i = 0; i < st->npending; i++) {
		free(st->pending[i].path);
		free(st->pending[i].deps);
	}
	st->npending = 0;
	return rc;
}
