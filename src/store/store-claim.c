/* store-claim: the claims table, one row per fingerprint being computed.
 * BEGIN IMMEDIATE serialises claimers, so exactly one process inserts.
 * Claims come before the command runs and heartbeats while it runs: they
 * wait for the index only briefly, so that another process holding it
 * for long (an import, a reindex, a pipeline's batch) delays the command
 * by at most CLAIM_BUSY_MS (the caller then runs it unclaimed) and never
 * stalls its output (a heartbeat that cannot be written is skipped). */
#include "store/store-int.h"

#include <string.h>
#include <stdio.h>

#define CLAIM_BUSY_MS 2000

static int read_owner(sqlite3_stmt *s, struct claim_owner *o)
{
	o->pid = sqlite3_column_int64(s, 0);
	snprintf(o->host, sizeof(o->host), "%s", (const char *)sqlite3_column_text(s, 1));
	o->start = sqlite3_column_int64(s, 2);
	o->heartbeat = sqlite3_column_int64(s, 3);
	return 1;
}

static int get_owner(struct store *st, const struct digest *fp, struct claim_owner *o)
{
	sqlite3_stmt *s;
	if (sqlite3_prepare_v2(st->db, "SELECT pid, host, start, heartbeat FROM claims WHERE fp=?1", -1, &s, NULL) !=
	    SQLITE_OK)
		return store_sqlfail(st, "claims");
	sqlite3_bind_blob(s, 1, fp->b, DIGEST_LEN, SQLITE_STATIC);
	int rc = sqlite3_step(s);
	int found = rc == SQLITE_ROW ? read_owner(s, o) : 0;
	sqlite3_finalize(s);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return store_sqlfail(st, "claims");
	return found;
}

int store_claim_get(struct store *st, const struct digest *fp, struct claim_owner *owner)
{
	return get_owner(st, fp, owner);
}

int store_claim(struct store *st, const struct digest *fp, const struct claim_owner *me,
		int (*stale)(const struct claim_owner *o), struct claim_owner *owner)
{
	sqlite3_stmt *s = NULL;
	int rc = -1;
	if (store_exec_within(st, "BEGIN IMMEDIATE", CLAIM_BUSY_MS) < 0)
		return -1;
	int found = get_owner(st, fp, owner);
	if (found < 0)
		goto out;
	if (found && !stale(owner)) {
		rc = 1;
		goto out;
	}
	if (sqlite3_prepare_v2(st->db, "INSERT OR REPLACE INTO claims VALUES(?1,?2,?3,?4,?5)", -1, &s, NULL) !=
	    SQLITE_OK) {
		store_sqlfail(st, "claims");
		goto out;
	}
	sqlite3_bind_blob(s, 1, fp->b, DIGEST_LEN, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, me->pid);
	sqlite3_bind_text(s, 3, me->host, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 4, me->start);
	sqlite3_bind_int64(s, 5, me->heartbeat);
	if (sqlite3_step(s) != SQLITE_DONE) {
		store_sqlfail(st, "claims");
		goto out;
	}
	st->claimed = *fp;
	st->have_claim = 1;
	st->claim_pid = me->pid;
	rc = 0;
out:
	sqlite3_finalize(s);
	if (rc < 0)
		store_rollback(st);
	else if (store_exec(st, "COMMIT") < 0)
		rc = -1;
	return rc;
}

static int claim_update(struct store *st, const char *sql, const struct digest *fp, const struct claim_owner *me,
			int64_t now)
{
	sqlite3_stmt *s;
	if (sqlite3_prepare_v2(st->db, sql, -1, &s, NULL) != SQLITE_OK)
		return store_sqlfail(st, "claims");
	sqlite3_bind_blob(s, 1, fp->b, DIGEST_LEN, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, me->pid);
	sqlite3_bind_text(s, 3, me->host, -1, SQLITE_STATIC);
	if (now)
		sqlite3_bind_int64(s, 4, now);
	int rc = sqlite3_step(s);
	sqlite3_finalize(s);
	return rc == SQLITE_DONE ? 0 : store_sqlfail(st, "claims");
}

int store_claim_heartbeat(struct store *st, const struct digest *fp, const struct claim_owner *me, int64_t now)
{
	sqlite3_busy_timeout(st->db, 0);
	int rc = claim_update(st, "UPDATE claims SET heartbeat=?4 WHERE fp=?1 AND pid=?2 AND host=?3", fp, me, now);
	sqlite3_busy_timeout(st->db, STORE_BUSY_MS);
	return rc;
}

int store_claim_release(struct store *st, const struct digest *fp, const struct claim_owner *me)
{
	st->have_claim = 0;
	return claim_update(st, "DELETE FROM claims WHERE fp=?1 AND pid=?2 AND host=?3", fp, me, 0);
}
