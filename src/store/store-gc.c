/* store-gc: removing runs and returning their space. Removal drops index
 * rows and run refs; gc then repacks what the kept runs reach. A store
 * lock keeps gc from deleting objects that a concurrent `exec` has
 * written but not yet indexed: savers hold it shared, gc exclusive. */
#include "store/store-int.h"
#include "store/gitmod.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

int store_lock(struct store *st, int mode)
{
	struct strbuf p = STRBUF_INIT;
	sb_addf(&p, "%s/gc.lock", st->dir);
	int fd = open(p.buf, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0) {
		err_sys("cannot open %s", p.buf);
	} else if (flock(fd, ((mode & STORE_LOCK_EXCLUSIVE) ? LOCK_EX : LOCK_SH) |
				     ((mode & STORE_LOCK_NOWAIT) ? LOCK_NB : 0)) < 0) {
		if (errno == EWOULDBLOCK)
			err_setc(E_BUSY, "%s is held by another process", p.buf);
		else
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
			store_bind_oid(s[i], 1, hashes->v[h]);
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
	if (rc < 0)
		store_rollback(st);
	else if (store_exec(st, "COMMIT") < 0)
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
				/* a digest (16 bytes) or a git id (20) */
				size_t n = (size_t)sqlite3_column_bytes(s, c);
				char hx[OID_HEX];
				bytes_to_hex(sqlite3_column_blob(s, c), n < (OID_HEX - 1) / 2 ? n : (OID_HEX - 1) / 2,
					     hx);
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

static int by_id(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

/* Removes the partvals rows no run lists (its runs were removed). */
static int drop_unlisted_parts(struct store *st)
{
	sqlite3_stmt *s = NULL;
	int64_t *used = NULL;
	size_t n = 0, alloc = 0;
	int rc = -1;
	if (sqlite3_prepare_v2(st->db, "SELECT parts FROM runs", -1, &s, NULL) != SQLITE_OK) {
		store_sqlfail(st, "gc");
		goto out;
	}
	while (sqlite3_step(s) == SQLITE_ROW) {
		int64_t *ids;
		size_t k;
		if (store_parts_decode(sqlite3_column_blob(s, 0), (size_t)sqlite3_column_bytes(s, 0), &ids, &k) < 0) {
			rc = 0; /* a damaged list: keep every part, reindex repairs it */
			goto out;
		}
		if (k && n + k > alloc) {
			alloc = (n + k) * 2;
			used = xrealloc(used, alloc * sizeof(*used));
		}
		if (k)
			memcpy(used + n, ids, k * sizeof(*ids));
		n += k;
		free(ids);
	}
	sqlite3_finalize(s);
	s = NULL;
	if (n)
		qsort(used, n, sizeof(*used), by_id);
	if (store_exec(st, "BEGIN IMMEDIATE") < 0)
		goto out;
	sqlite3_stmt *ids = NULL, *del = NULL;
	if (sqlite3_prepare_v2(st->db, "SELECT id FROM partvals", -1, &ids, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(st->db, "DELETE FROM partvals WHERE id=?1", -1, &del, NULL) != SQLITE_OK) {
		store_sqlfail(st, "gc");
	} else {
		/* the unlisted ones first, then deleted: not while scanning */
		int64_t *gone = NULL;
		size_t ngone = 0;
		while (sqlite3_step(ids) == SQLITE_ROW) {
			int64_t id = sqlite3_column_int64(ids, 0);
			if (n && bsearch(&id, used, n, sizeof(*used), by_id))
				continue;
			gone = xrealloc(gone, (ngone + 1) * sizeof(*gone));
			gone[ngone++] = id;
		}
		rc = 0;
		for (size_t i = 0; rc == 0 && i < ngone; i++) {
			sqlite3_reset(del);
			sqlite3_bind_int64(del, 1, gone[i]);
			if (sqlite3_step(del) != SQLITE_DONE)
				rc = store_sqlfail(st, "gc");
		}
		free(gone);
	}
	sqlite3_finalize(ids);
	sqlite3_finalize(del);
	if (rc < 0)
		store_rollback(st);
	else if (store_exec(st, "COMMIT") < 0)
		rc = -1;
out:
	sqlite3_finalize(s);
	free(used);
	return rc;
}

int store_gc(struct store *st, const struct gc_opts *o, struct gc_report *rep)
{
	struct strvec evict = STRVEC_INIT, keep = STRVEC_INIT, lines = STRVEC_INIT;
	sqlite3_stmt *s = NULL;
	const struct gitmod *g = gitmod_get();
	int rc = -1, lock = -1;
	int64_t now = now_ms(), kept_bytes = 0;
	memset(rep, 0, sizeof(*rep));
	if (!g || (lock = store_lock(st, STORE_LOCK_EXCLUSIVE)) < 0)
		goto out;
	/* The keep list comes from the index, but the refs are the truth: a
	 * run with a ref and no row (an interrupted import or pull) is indexed
	 * first, or the repack below would delete it. One that git cannot
	 * give back stops gc: removing it is fsck --prune's decision. */
	if (!o->dry_run) {
		size_t added = 0;
		/* a damaged pack index hides its pack's objects: the repack
		 * below would leave them out */
		if (g->pack_indexes(st->dir, 0, NULL) < 0)
			goto out;
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
		char hash[OID_HEX];
		store_column_oid(s, 0, hash);
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
	/* lists of observed inputs no run names any more (removed runs, lists
	 * a lookup replaced with fresher stat signatures) */
	if (store_exec(st, "DELETE FROM inputsets WHERE id NOT IN (SELECT inputset FROM runs WHERE inputset IS NOT NULL"
			   " UNION ALL SELECT inputset_own FROM runs WHERE inputset_own IS NOT NULL)") < 0 ||
	    drop_unlisted_parts(st) < 0)
		goto out;
	if (select_hashes(st, "SELECT hash FROM runs ORDER BY hash", &keep) < 0 ||
	    select_hashes(st,
			  "SELECT line, hash FROM runs r WHERE created = (SELECT max(created) FROM runs q"
			  " WHERE q.line = r.line) GROUP BY line"
			  " HAVING (SELECT count(*) FROM runs q WHERE q.line = r.line) > 1",
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

/* Counts the small loose objects: every fan-out directory when the
 * threshold is under 1024, else objects/17 alone, times 256, as git's
 * `gc --auto` estimates (a miss pays one readdir of a few entries). Files
 * of 1 MiB or more are large blobs, which stay loose: not counted. */
static int64_t loose_estimate(struct store *st, int64_t threshold)
{
	struct strbuf p = STRBUF_INIT;
	int64_t n = 0;
	int all = threshold < 1024;
	for (int fan = all ? 0 : 0x17; fan <= (all ? 255 : 0x17); fan++) {
		sb_reset(&p);
		sb_addf(&p, "%s/objects/%02x", st->dir, fan);
		DIR *d = opendir(p.buf);
		struct dirent *e;
		size_t base = p.len;
		while (d && (e = readdir(d))) {
			struct stat sb;
			if (strlen(e->d_name) != 38)
				continue;
			sb_setlen(&p, base);
			sb_addf(&p, "/%s", e->d_name);
			if (stat(p.buf, &sb) == 0 && sb.st_size < (1 << 20))
				n++;
		}
		if (d)
			closedir(d);
	}
	sb_release(&p);
	return all ? n : n * 256;
}

/* Packs past this many are merged (git's gc.autoPackLimit): a pipeline's
 * batches each publish a pack and leave no loose objects behind, and a
 * lookup asks every pack (1,100 packs after 31,000 steps, the steps
 * stored 4x slower than the first thousand). */
#define AUTOPACK_PACKS 50

static int too_many_packs(struct store *st)
{
	struct strbuf p = STRBUF_INIT;
	int n = 0;
	sb_addf(&p, "%s/objects/pack", st->dir);
	DIR *d = opendir(p.buf);
	struct dirent *e;
	while (d && (e = readdir(d)) && n <= AUTOPACK_PACKS) {
		size_t len = strlen(e->d_name);
		n += len > 5 && !strcmp(e->d_name + len - 5, ".pack");
	}
	if (d)
		closedir(d);
	sb_release(&p);
	return n > AUTOPACK_PACKS;
}

int store_autopack(struct store *st, int wait, int *packed)
{
	const struct gitmod *g;
	struct strbuf v = STRBUF_INIT;
	struct autopack_report rep;
	int64_t threshold = AUTOPACK_DEFAULT;
	int rc = 0, lock = -1;
	*packed = 0;
	if (store_setting(st, "auto-pack", &v)) {
		char *end;
		long long t = strtoll(v.buf, &end, 10);
		threshold = end != v.buf && !*end && t >= 0 ? t : AUTOPACK_DEFAULT;
	}
	if (threshold == 0 || (loose_estimate(st, threshold) <= threshold && !too_many_packs(st)))
		goto out;
	/* A store or gc in progress means another time (the objects stay
	 * where they are until then), unless the caller waits: a pipeline's
	 * workers each hold a batch's shared lock most of the time, so one
	 * that never waited would never pack. Never with a batch of ours
	 * open: its own shared lock would block us. */
	struct strbuf p = STRBUF_INIT;
	sb_addf(&p, "%s/gc.lock", st->dir);
	lock = open(p.buf, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	sb_release(&p);
	if (lock < 0 || flock(lock, LOCK_EX | (wait && !store_batch_runs(st) ? 0 : LOCK_NB)) < 0)
		goto out;
	if (!(g = gitmod_get()) || (rc = g->autopack(st->dir, &rep)) < 0)
		goto out;
	*packed = 1;
out:
	store_unlock(lock);
	sb_release(&v);
	return rc;
}
