/* store-fsck: checks the store against itself. git is the truth: every
 * object must read back under its SHA-1, every run's blobs must match the
 * XXH3 digests its meta recorded, and the index must say what the refs
 * say. The index is then rebuilt from git; runs that git cannot give back
 * whole are reported, and removed with prune. One pass reads each object
 * once: the git module hands over each run as it verifies its objects. */
#include "store/store-int.h"
#include "store/refs.h"
#include "store/gitmod.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* The blobs of a run read from git (small ones inlined by the read):
 * each against its recorded digest, a large one streamed. 1 if any is
 * damaged, with a line each in problems. */
static int check_blobs(struct store *st, const struct run_record *r, struct strvec *problems)
{
	struct strbuf mem = STRBUF_INIT, line = STRBUF_INIT;
	int bad = 0;
	for (size_t i = 0; i < r->nfiles; i++) {
		const struct run_file *f = &r->files[i];
		struct blob_hold held;
		if (f->kind == FILE_DIR)
			continue;
		sb_reset(&mem);
		if (store_blob_check(st, f, &mem, &held) == 0) {
			store_blob_release(&held);
			continue;
		}
		sb_reset(&line);
		sb_addf(&line, "run %.12s: %s (object %.12s): %s", r->hash, f->path, f->oid, err_msg());
		sv_push(problems, line.buf);
		err_clear();
		bad = 1;
	}
	sb_release(&mem);
	sb_release(&line);
	return bad;
}

struct fsck_pass {
	struct store *st;
	struct fsck_report *rep;
};

/* A run as a reader thread made it: its record, or why it could not be
 * built (the record may then be partly made: indexed all the same). */
struct fsck_run {
	struct run_record r;
	char *err;
};

/* On a reader thread: the run's record from what was read. Touches
 * nothing shared (blobs it still needs come through the git module's
 * repository of this thread). */
static void *prep_run(void *ctx, const char *hash, int ok, const char *meta, struct run_record *tree)
{
	struct fsck_pass *p = ctx;
	struct fsck_run *fr = xcalloc(1, sizeof(*fr));
	if (!ok || store_record_from_git(p->st, meta, tree, &fr->r) < 0)
		fr->err = xstrdup(err_msg());
	err_clear();
	return fr;
}

static void discard_run(void *ctx, void *prepared)
{
	struct fsck_run *fr = prepared;
	run_record_free(&fr->r);
	free(fr->err);
	free(fr);
}

/* One run, in the list's order: its blobs checked, indexed. A run with a
 * damaged blob is indexed all the same (a replay checks every blob and
 * runs the command instead). */
static int check_run(void *ctx, const char *hash, void *prepared)
{
	struct fsck_pass *p = ctx;
	struct fsck_run *fr = prepared;
	int bad = 0, rc = 0;
	if (fr->err) {
		struct strbuf line = STRBUF_INIT;
		sb_addf(&line, "run %.12s: %s", hash, fr->err);
		sv_push_nocopy(&p->rep->problems, sb_detach(&line));
		bad = 1;
	} else {
		bad = check_blobs(p->st, &fr->r, &p->rep->problems);
	}
	if (bad)
		sv_push(&p->rep->bad_runs, hash);
	err_clear();
	if (fr->r.hash[0] && store_index_run(p->st, &fr->r) < 0)
		rc = -1;
	discard_run(ctx, fr);
	return rc;
}

int store_fsck(struct store *st, int prune, struct fsck_report *rep)
{
	const struct gitmod *g = gitmod_get();
	struct strvec refs = STRVEC_INIT, rows = STRVEC_INIT, order = STRVEC_INIT;
	struct strbuf line = STRBUF_INIT;
	struct fsck_pass pass = { st, rep };
	sqlite3_stmt *s = NULL;
	int rc = -1, lock = -1;
	if (!g || (lock = store_lock(st, STORE_LOCK_EXCLUSIVE)) < 0)
		goto out;
	/* a damaged packed-refs makes libgit2 refuse every ref: what is
	 * still readable is kept, and the runs whose ref was lost get it back
	 * from the index below */
	int64_t kept, dropped;
	struct strbuf aside = STRBUF_INIT;
	int sr = store_refs_salvage(st->dir, &kept, &dropped, &aside);
	if (sr == 1) {
		sb_addf(&line,
			"refs: packed-refs was damaged: %lld refs kept, %lld lines dropped (the damaged file is %s)",
			(long long)kept, (long long)dropped, aside.buf);
		sv_push(&rep->problems, line.buf);
	}
	sb_release(&aside);
	/* before any object is read: a damaged pack index makes its objects
	 * look missing, and their runs broken */
	if (sr < 0 || g->pack_indexes(st->dir, 1, &rep->problems) < 0 || g->list_runs(st->dir, &refs) < 0)
		goto out;
	sv_sort(&refs);
	rep->runs = (int64_t)refs.n;
	/* The index against the refs, before it is rebuilt. Its order (the
	 * order the runs were stored in, as the packs hold them, each commit,
	 * tree and meta a delta on its predecessor's) is the order the runs
	 * are read and reported in: along the delta chains, not across them
	 * as in the refs' order, reading takes a fifth less CPU. Runs the
	 * index lacks come last. */
	if (sqlite3_prepare_v2(st->db, "SELECT hash FROM runs ORDER BY created, hash", -1, &s, NULL) != SQLITE_OK) {
		store_sqlfail(st, "fsck");
		goto out;
	}
	while (sqlite3_step(s) == SQLITE_ROW) {
		char h[OID_HEX];
		store_column_oid(s, 0, h);
		sv_push(&rows, h);
		if (sv_sorted_has(&refs, h)) {
			sv_push(&order, h);
			continue;
		}
		/* the index names a commit git has: the ref was lost, not the
		 * run (a damaged packed-refs), and gets it back */
		struct strbuf ref = STRBUF_INIT;
		sb_addf(&ref, "refs/cashet/runs/%s", h);
		int back = store_odb_has(st, h) && store_ref_write(st->dir, ref.buf, h) == 0;
		sb_release(&ref);
		err_clear();
		sb_reset(&line);
		sb_addf(&line,
			back ? "index: run %.12s had no ref (restored)"
			     : "index: run %.12s has no ref (removed from the index)",
			h);
		sv_push(&rep->problems, line.buf);
		rep->index_fixed++;
		if (back) {
			sv_push(&order, h);
			rep->runs++;
		}
	}
	sv_sort(&rows);
	for (size_t i = 0; i < refs.n; i++)
		if (!sv_sorted_has(&rows, refs.v[i])) {
			sb_reset(&line);
			sb_addf(&line, "index: run %.12s was missing (added back)", refs.v[i]);
			sv_push(&rep->problems, line.buf);
			sv_push(&order, refs.v[i]);
			rep->index_fixed++;
		}
	/* Each run is read from git once, checked, and indexed from what was
	 * read: the index is rebuilt in the same pass (in one transaction). */
	if (store_rebuild_begin(st) < 0)
		goto out;
	struct gitmod_fsck req = {
		.runs = &order,
		.content_max = INLINE_MAX,
		.prep = prep_run,
		.fn = check_run,
		.discard = discard_run,
		.ctx = &pass,
		.problems = &rep->problems,
	};
	if (store_rebuild_end(st, g->fsck(st->dir, &req) == 0) < 0)
		goto out;
	rep->objects = req.objects;
	rep->bad_objects = req.bad_objects;
	if (prune && rep->bad_runs.n) {
		if (store_remove_many(st, &rep->bad_runs) < 0)
			goto out;
		rep->pruned = (int64_t)rep->bad_runs.n;
	}
	rc = 0;
out:
	sqlite3_finalize(s);
	store_unlock(lock);
	sv_release(&refs);
	sv_release(&rows);
	sv_release(&order);
	sb_release(&line);
	return rc;
}

void fsck_report_free(struct fsck_report *rep)
{
	sv_release(&rep->problems);
	sv_release(&rep->bad_runs);
}
