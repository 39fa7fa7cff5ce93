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

/* The fetched runs (refs without an index row) that import would refuse
 * lose their refs again: a pull must not let a later replay write outside
 * the project, or replay a run the trust policy refuses, where an import
 * would not. */
static int refuse_foreign(struct store *st, const struct gitmod *g, struct strvec *refused)
{
	struct strvec refs = STRVEC_INIT;
	int rc = -1;
	if (g->list_runs(st->dir, &refs) < 0)
		goto out;
	for (size_t i = 0; i < refs.n; i++) {
		struct run_record r = { 0 };
		if (store_load(st, refs.v[i], &r) == 1) { /* indexed: ours already */
			run_record_free(&r);
			continue;
		}
		run_record_free(&r);
		if (store_load_git(st, refs.v[i], &r) == 0 && store_admit(st, &r, 0) < 0) {
			struct strbuf line = STRBUF_INIT;
			sb_addf(&line, "%s; not pulled", err_msg());
			err_clear();
			if (store_remove(st, refs.v[i]) < 0)
				err_clear();
			sv_push_nocopy(refused, sb_detach(&line));
		}
		err_clear();
		run_record_free(&r);
	}
	rc = 0;
out:
	sv_release(&refs);
	return rc;
}

int store_pull(struct store *st, const char *remote, size_t *added, struct strvec *refused)
{
	const struct gitmod *g = gitmod_get();
	int rc = -1, lock = -1;
	*added = 0;
	/* shared, like a store: gc must not repack while objects arrive */
	if (!g || (lock = store_lock(st, STORE_LOCK_SHARED)) < 0 || g->fetch(st->dir, remote) < 0 ||
	    refuse_foreign(st, g, refused) < 0)
		goto out;
	rc = store_index_missing(st, added, NULL);
out:
	store_unlock(lock);
	return rc;
}
