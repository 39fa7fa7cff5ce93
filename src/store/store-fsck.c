/* store-fsck: checks the store against itself. git is the truth: every
 * object must read back under its SHA-1, every run's blobs must match the
 * XXH3 digests its meta recorded, and the index must say what the refs
 * say. The index is then rebuilt from git; runs that git cannot give back
 * whole are reported, and removed with prune. */
#include "store/store-int.h"
#include "store/gitmod.h"

#include <inttypes.h>
#include <string.h>

/* One run from git alone: meta parses, tree and meta agree, blobs match. */
static int check_run(const struct gitmod *g, struct store *st, const char *hash, struct strvec *problems)
{
	struct run_record tree = { 0 }, meta = { 0 };
	struct strbuf text = STRBUF_INIT, blob = STRBUF_INIT, line = STRBUF_INIT;
	int bad = 0;
	size_t blobs = 0;
	if (g->load_run(st->dir, hash, &text, &tree) < 0 || meta_decode(text.buf ? text.buf : "", &meta) < 0) {
		sb_addf(&line, "run %.12s: %s", hash, err_msg());
		sv_push(problems, line.buf);
		bad = 1;
		goto out;
	}
	for (size_t i = 0; i < meta.nfiles; i++) {
		const struct run_file *m = &meta.files[i], *t = NULL;
		if (m->kind == FILE_DIR) /* a line of meta, no tree entry */
			continue;
		blobs++;
		for (size_t j = 0; j < tree.nfiles; j++)
			if (!strcmp(tree.files[j].path, m->path))
				t = &tree.files[j];
		sb_reset(&line);
		sb_reset(&blob);
		if (!t) {
			sb_addf(&line, "run %.12s: %s is in meta but not in the tree", hash, m->path);
		} else if (g->read_blob(st->dir, t->oid, &blob) < 0) {
			sb_addf(&line, "run %.12s: %s (object %.12s): %s", hash, m->path, t->oid, err_msg());
		} else {
			struct digest d;
			digest_of(blob.buf ? blob.buf : "", blob.len, &d);
			if (blob.len != m->size || !digest_eq(&d, &m->xxh))
				sb_addf(&line, "run %.12s: %s (object %.12s) does not match its recorded digest", hash,
					m->path, t->oid);
		}
		if (line.len) {
			sv_push(problems, line.buf);
			bad = 1;
		}
	}
	if (tree.nfiles != blobs) {
		sb_reset(&line);
		sb_addf(&line, "run %.12s: the tree has %zu files, meta lists %zu", hash, tree.nfiles, blobs);
		sv_push(problems, line.buf);
		bad = 1;
	}
out:
	err_clear();
	run_record_free(&tree);
	run_record_free(&meta);
	sb_release(&text);
	sb_release(&blob);
	sb_release(&line);
	return bad;
}

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

int store_fsck(struct store *st, int prune, struct fsck_report *rep)
{
	const struct gitmod *g = gitmod_get();
	struct strvec refs = STRVEC_INIT, rows = STRVEC_INIT;
	struct strbuf line = STRBUF_INIT;
	sqlite3_stmt *s = NULL;
	int rc = -1, lock = -1;
	size_t n = 0;
	if (!g || (lock = store_lock(st, 1)) < 0)
		goto out;
	if (g->check_objects(st->dir, &rep->objects, &rep->problems) < 0)
		goto out;
	rep->bad_objects = (int64_t)rep->problems.n;
	if (g->list_runs(st->dir, &refs) < 0)
		goto out;
	sv_sort(&refs);
	rep->runs = (int64_t)refs.n;
	/* The index against the refs, before it is rebuilt. */
	if (sqlite3_prepare_v2(st->db, "SELECT hash FROM runs ORDER BY hash", -1, &s, NULL) != SQLITE_OK) {
		store_sqlfail(st, "fsck");
		goto out;
	}
	while (sqlite3_step(s) == SQLITE_ROW) {
		char h[OID_HEX];
		store_column_oid(s, 0, h);
		sv_push(&rows, h);
	}
	for (size_t i = 0; i < rows.n; i++)
		if (!sv_sorted_has(&refs, rows.v[i])) {
			sb_reset(&line);
			sb_addf(&line, "index: run %.12s has no ref (removed from the index)", rows.v[i]);
			sv_push(&rep->problems, line.buf);
			rep->index_fixed++;
		}
	for (size_t i = 0; i < refs.n; i++)
		if (!sv_sorted_has(&rows, refs.v[i])) {
			sb_reset(&line);
			sb_addf(&line, "index: run %.12s was missing (added back)", refs.v[i]);
			sv_push(&rep->problems, line.buf);
			rep->index_fixed++;
		}
	/* Each run is read from git once, checked, and indexed from what was
	 * read: the index is rebuilt in the same pass (in one transaction). */
	if (store_exec(st, "BEGIN IMMEDIATE; DELETE FROM files; DELETE FROM tags; DELETE FROM metrics;"
			   " DELETE FROM runs; DELETE FROM inputsets; DELETE FROM partvals") < 0)
		goto out;
	for (size_t i = 0; i < refs.n; i++) {
		struct run_record r = { 0 };
		int bad = 0;
		if (store_load_git(st, refs.v[i], &r) < 0)
			bad = check_run(g, st, refs.v[i], &rep->problems) | 1; /* says what is wrong */
		else
			bad = check_blobs(st, &r, &rep->problems);
		if (bad)
			sv_push(&rep->bad_runs, refs.v[i]);
		err_clear();
		/* a run with a damaged blob is indexed all the same (a replay
		 * checks every blob and runs the command instead) */
		if (r.hash[0] && store_index_run(st, &r) < 0) {
			run_record_free(&r);
			store_exec(st, "ROLLBACK");
			goto out;
		}
		run_record_free(&r);
		n++;
	}
	if (store_exec(st, "COMMIT") < 0) {
		store_exec(st, "ROLLBACK");
		goto out;
	}
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
	sb_release(&line);
	return rc;
}

void fsck_report_free(struct fsck_report *rep)
{
	sv_release(&rep->problems);
	sv_release(&rep->bad_runs);
}
