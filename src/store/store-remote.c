/* store-remote: sharing runs through git remotes. Pushing sends run refs;
 * pulling fetches them and indexes, like reindex, every run that has a
 * ref but no index row (so an interrupted pull is finished by the next). */
#include "store/store-int.h"
#include "store/gitmod.h"

#include <stdio.h>
#include <string.h>

int store_push(struct store *st, const char *remote, const struct strvec *hashes, struct strvec *skipped)
{
	const struct gitmod *g = gitmod_get();
	struct strvec one = STRVEC_INIT;
	int rc = 0;
	if (!g)
		return -1;
	if (g->push(st->dir, remote, hashes) == 0)
		return 0;
	if (err_code() != E_NOTFOUND)
		return -1; /* the remote itself: unknown, unreachable, refusing */
	/* libgit2 walks a run's lineage while packing; where gc cut it (the
	 * parent is gone) that fails. Push the runs one by one so only those
	 * are left out; a remote that cannot be reached fails on the first. */
	for (size_t i = 0; rc == 0 && i < hashes->n; i++) {
		sv_release(&one);
		sv_push(&one, hashes->v[i]);
		if (g->push(st->dir, remote, &one) == 0)
			continue;
		if (err_code() != E_NOTFOUND) {
			rc = -1;
			break;
		}
		struct strbuf line = STRBUF_INIT;
		sb_addf(&line, "run %.12s not pushed: its history was cut by gc (%s); use export/import", hashes->v[i],
			err_msg());
		sv_push_nocopy(skipped, sb_detach(&line));
	}
	sv_release(&one);
	return rc;
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
