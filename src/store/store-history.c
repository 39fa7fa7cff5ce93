/* store-history: every run of one command line, oldest first. The line key
 * (argv + cwd) is what refs/cashet/lines/<line> and each commit's parent
 * follow in git, so this listing and `git log` of that ref agree. */
#include "store/store-int.h"

#include <string.h>

int store_line_newest(struct store *st, const struct digest *line, char hex[OID_HEX])
{
	sqlite3_stmt *s = NULL;
	int rc;
	if (sqlite3_prepare_v2(st->db, "SELECT hash FROM runs WHERE line=?1 ORDER BY created DESC, id DESC LIMIT 1", -1,
			       &s, NULL) != SQLITE_OK)
		return store_sqlfail(st, "history");
	sqlite3_bind_blob(s, 1, line->b, DIGEST_LEN, SQLITE_STATIC);
	int step = sqlite3_step(s);
	if (step == SQLITE_ROW)
		store_column_oid(s, 0, hex);
	rc = step == SQLITE_ROW ? 1 : step == SQLITE_DONE ? 0 : store_sqlfail(st, "history");
	sqlite3_finalize(s);
	return rc;
}

int store_line_history(struct store *st, const struct digest *line, store_run_cb cb, void *ctx)
{
	struct strvec hashes = STRVEC_INIT;
	sqlite3_stmt *s = NULL;
	int rc = -1, step;
	/* Hashes first, then each run in full: store_load() is the one place
	 * that knows how to read parts and files, and the callback may query
	 * the index itself while we would still be stepping. */
	if (sqlite3_prepare_v2(st->db, "SELECT hash FROM runs WHERE line=?1 ORDER BY created, id", -1, &s, NULL) !=
	    SQLITE_OK) {
		store_sqlfail(st, "history");
		goto out;
	}
	sqlite3_bind_blob(s, 1, line->b, DIGEST_LEN, SQLITE_STATIC);
	while ((step = sqlite3_step(s)) == SQLITE_ROW) {
		char h[OID_HEX];
		store_column_oid(s, 0, h);
		sv_push(&hashes, h);
	}
	if (step != SQLITE_DONE) {
		store_sqlfail(st, "history");
		goto out;
	}
	for (size_t i = 0; i < hashes.n; i++) {
		struct run_record r = { 0 };
		int lr = store_load(st, hashes.v[i], &r);
		int crc = lr == 1 ? cb(&r, ctx) : lr;
		run_record_free(&r);
		if (crc < 0)
			goto out;
	}
	rc = 0;
out:
	sqlite3_finalize(s);
	sv_release(&hashes);
	return rc;
}
