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
	int rc = -1, lock = -1;
	*added = 0;
	/* shared, like a store: gc must not repack while objects arrive */
	if (!g || (lock = store_lock(st, 0)) < 0 || g->fetch(st->dir, remote) < 0)
		goto out;
	rc = store_index_missing(st, added, NULL);
out:
	store_unlock(lock);
	return rc;
}
