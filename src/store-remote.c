/* store-remote: sharing runs through git remotes. Pushing sends run refs;
 * pulling fetches them and indexes, like reindex, every run that has a
 * ref but no index row (so an interrupted pull is finished by the next). */
#include "store-int.h"
#include "gitmod.h"

#include <stdio.h>
#include <string.h>

int store_push(struct store *st, const char *remote, const struct strvec *hashes)
{
	const struct gitmod *g = gitmod_get();
	return g ? g->push(st->dir, remote, hashes) : -1;
}

int store_pull(struct store *st, const char *remote, size_t *added)
{
	const struct gitmod *g = gitmod_get();
	struct strvec before = STRVEC_INIT, after = STRVEC_INIT;
	sqlite3_stmt *s = NULL;
	int rc = -1, lock = -1;
	*added = 0;
	/* shared, like a store: gc must not repack while objects arrive */
	if (!g || (lock = store_lock(st, 0)) < 0 || g->fetch(st->dir, remote) < 0 || g->list_runs(st->dir, &after) < 0)
		goto out;
	if (sqlite3_prepare_v2(st->db, "SELECT hash FROM runs ORDER BY hash", -1, &s, NULL) != SQLITE_OK) {
		store_sqlfail(st, "pull");
		goto out;
	}
	while (sqlite3_step(s) == SQLITE_ROW)
		sv_push(&before, (const char *)sqlite3_column_text(s, 0));
	if (store_exec(st, "BEGIN IMMEDIATE") < 0)
		goto out;
	for (size_t i = 0; i < after.n; i++) {
		struct run_record r = { 0 };
		if (sv_sorted_has(&before, after.v[i]))
			continue;
		if (store_load_git(st, after.v[i], &r) < 0 || store_index_run(st, &r) < 0) {
			run_record_free(&r);
			store_exec(st, "ROLLBACK");
			goto out;
		}
		run_record_free(&r);
		(*added)++;
	}
	rc = store_exec(st, "COMMIT");
out:
	sqlite3_finalize(s);
	store_unlock(lock);
	sv_release(&before);
	sv_release(&after);
	return rc;
}
