/* store-gc: removing runs and returning their space. Removal drops index
 * rows and run refs; gc then repacks what the kept runs reach. A store
 * lock keeps gc from deleting objects that a concurrent `exec` has
 * written but not yet indexed: savers hold it shared, gc exclusive. */
#include "store/store-int.h"
#include "store/gitmod.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

int store_lock(struct store *st, int exclusive)
{
	struct strbuf p = STRBUF_INIT;
	sb_addf(&p, "%s/gc.lock", st->dir);
	int fd = open(p.buf, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0) {
		err_sys("cannot open %s", p.buf);
	} else if (flock(fd, exclusive ? LOCK_EX : LOCK_SH) < 0) {
		err_sys("cannot lock %s", p.buf);
		close(fd);
		fd = -1;
	}
	sb_release(&p);
	return fd;
}

void store_unlock(int fd)
{
	if (fd >= 0)
		close(fd); /* releases the flock */
}

int store_remove_many(struct store *st, const struct strvec *hashes)
{
	static const char *const del[] = {
		"DELETE FROM files WHERE run=(SELECT id FROM runs WHERE hash=?1)",
		"DELETE FROM parts WHERE run=(SELECT id FROM runs WHERE hash=?1)",
		"DELETE FROM tags WHERE run=(SELECT id FROM runs WHERE hash=?1)",
		"DELETE FROM metrics WHERE run=(SELECT id FROM runs WHERE hash=?1)",
		"DELETE FROM runs WHERE hash=?1",
	};
	enum { NDEL = sizeof(del) / sizeof(*del) };
	sqlite3_stmt *s[NDEL] = { 0 };
	const struct gitmod *g = gitmod_get();
	int rc = -1;
	if (!g || store_exec(st, "BEGIN IMMEDIATE") < 0)
		return -1;
	for (size_t i = 0; i < NDEL; i++)
		if (sqlite3_prepare_v2(st->db, del[i], -1, &s[i], NULL) != SQLITE_OK) {
			store_sqlfail(st, "remove");
			goto out;
		}
	for (size_t h = 0; h < hashes->n; h++) {
		for (size_t i = 0; i < NDEL; i++) {
			sqlite3_reset(s[i]);
			sqlite3_bind_text(s[i], 1, hashes->v[h], -1, SQLITE_STATIC);
			if (sqlite3_step(s[i]) != SQLITE_DONE) {
				store_sqlfail(st, "remove");
				goto out;
			}
		}
		/* The ref goes inside the transaction: if it cannot be deleted, the row stays. */
		if (g->delete_run(st->dir, hashes->v[h]) < 0)
			goto out;
	}
	rc = 0;
out:
	for (size_t i = 0; i < NDEL; i++)
		sqlite3_finalize(s[i]);
	if (store_exec(st, rc == 0 ? "COMMIT" : "ROLLBACK") < 0)
		rc = -1;
	return rc;
}

int store_remove(struct store *st, const char *hash)
{
	struct strvec one = STRVEC_INIT;
	sv_push(&one, hash);
	int rc = store_remove_many(st, &one);
	sv_release(&one);
	return rc;
}

int store_total_bytes(struct store *st, int64_t *bytes)
{
	sqlite3_stmt *s;
	*bytes = 0;
	if (sqlite3_prepare_v2(st->db, "SELECT v FROM totals WHERE k='bytes'", -1, &s, NULL) != SQLITE_OK)
		return store_sqlfail(st, "totals");
	if (sqlite3_step(s) == SQLITE_ROW)
		*bytes = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return 0;
}

static int64_t disk_bytes(struct store *st)
{
	struct store_stats s;
	return store_stats(st, &s) == 0 ? s.object_bytes : 0;
}

static int select_hashes(struct store *st, const char *sql, struct strvec *out)
{
	sqlite3_stmt *s;
	if (sqlite3_prepare_v2(st->db, sql, -1, &s, NULL) != SQLITE_OK)
		return store_sqlfail(st, "gc");
	while (sqlite3_step(s) == SQLITE_ROW) {
		struct strbuf row = STRBUF_INIT;
		for (int c = 0; c < sqlite3_column_count(s); c++) {
			if (c)
				sb_addc(&row, ' ');
			if (sqlite3_column_type(s, c) == SQLITE_BLOB) {
				struct digest d;
				char hx[DIGEST_HEX];
				memcpy(d.b, sqlite3_column_blob(s, c), DIGEST_LEN);
				digest_hex(&d, hx);
				sb_adds(&row, hx);
			} else {
				sb_adds(&row, (const char *)sqlite3_column_text(s, c));
			}
		}
		sv_push_nocopy(out, sb_detach(&row));
	}
	sqlite3_finalize(s);
	return 0;
}

int store_gc(struct store *st, const struct gc_opts *o, struct gc_report *rep)
{
	struct strvec evict = STRVEC_INIT, keep = STRVEC_INIT, lines = STRVEC_INIT;
	sqlite3_stmt *s = NULL;
	const struct gitmod *g = gitmod_get();
	int rc = -1, lock = -1;
	int64_t now = now_ms(), kept_bytes = 0;
	memset(rep, 0, sizeof(*rep));
	if (!g || (lock = store_lock(st, 1)) < 0)
		goto out;
	/* The keep list comes from the index, but the refs are the truth: a
	 * run with a ref and no row (an interrupted import or pull) is indexed
	 * first, or the repack below would delete it. One that git cannot
	 * give back stops gc: removing it is fsck --prune's decision. */
	if (!o->dry_run) {
		size_t added = 0;
		if (store_index_missing(st, &added, NULL) < 0) {
			char *why = xstrdup(err_msg());
			err_set("gc: %s (see 'cashet fsck'; --prune removes such runs)", why);
			free(why);
			goto out;
		}
		rep->reindexed = (int64_t)added;
	}
	rep->bytes_before = disk_bytes(st);
	/* Newest use first: keep while under the size bound, evict the rest. */
	if (sqlite3_prepare_v2(st->db,
			       "SELECT hash, fp, bytes, last_used, expires FROM runs ORDER BY last_used DESC, id DESC",
			       -1, &s, NULL) != SQLITE_OK) {
		store_sqlfail(st, "gc");
		goto out;
	}
	while (sqlite3_step(s) == SQLITE_ROW) {
		const char *hash = (const char *)sqlite3_column_text(s, 0);
		struct digest fp = { { 0 } };
		if (sqlite3_column_bytes(s, 1) == DIGEST_LEN)
			memcpy(fp.b, sqlite3_column_blob(s, 1), DIGEST_LEN);
		int64_t bytes = sqlite3_column_int64(s, 2), used = sqlite3_column_int64(s, 3),
			expires = sqlite3_column_int64(s, 4);
		int why = 0; /* 1 expired, 2 old, 3 size */
		if (o->all)
			why = 3;
		else if (expires && expires <= now)
			why = 1;
		else if (o->older_than_ms > 0 && used < now - o->older_than_ms)
			why = 2;
		else if (o->max_size > 0 && (uint64_t)(kept_bytes + bytes) > o->max_size)
			why = 3;
		if (why && o->busy && o->busy(st, &fp)) {
			rep->busy++;
			why = 0; /* a live process is computing this fingerprint right now */
		}
		if (why) {
			sv_push(&evict, hash);
			if (why == 1)
				rep->expired++;
			else
				rep->evicted++;
		} else {
			kept_bytes += bytes;
			rep->kept++;
		}
	}
	sqlite3_finalize(s);
	s = NULL;
	if (o->dry_run) {
		rep->bytes_after = rep->bytes_before;
		rc = 0;
		goto out;
	}
	if (evict.n && store_remove_many(st, &evict) < 0)
		goto out;
	if (select_hashes(st, "SELECT hash FROM runs ORDER BY hash", &keep) < 0 ||
	    select_hashes(st,
			  "SELECT line, hash FROM runs r WHERE created = (SELECT max(created) FROM runs q"
			  " WHERE q.line = r.line) GROUP BY line",
			  &lines) < 0)
		goto out;
	if (g->repack(st->dir, &keep, &lines) < 0)
		goto out;
	rep->bytes_after = disk_bytes(st);
	rc = 0;
out:
	sqlite3_finalize(s);
	store_unlock(lock);
	sv_release(&evict);
	sv_release(&keep);
	sv_release(&lines);
	return rc;
}
