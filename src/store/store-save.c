/* store-save: writing runs (git first, then the index row) and rebuilding
 * the index from git. The order is the crash-safety argument: an index row
 * is only ever written for a commit whose blobs, tree and ref exist. */
#include "store/store-int.h"
#include "store/gitmod.h"
#include "store/trust.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

/* Small blobs are copied into the index; zstd when it pays. */
static void inline_data(struct run_file *f, const char *content, size_t len)
{
	free(f->data);
	f->data = NULL;
	f->enc = 0;
	if (len > INLINE_MAX)
		return;
	if (len >= 512) {
		size_t cap = ZSTD_compressBound(len);
		unsigned char *z = xmalloc(cap);
		size_t zn = ZSTD_compress(z, cap, content, len, 1);
		if (!ZSTD_isError(zn) && zn < len - len / 8) {
			f->data = z;
			f->datalen = zn;
			f->enc = 1;
			return;
		}
		free(z);
	}
	f->data = xmalloc(len ? len : 1);
	memcpy(f->data, content, len);
	f->datalen = len;
}

static int bind_exec(struct store *st, sqlite3_stmt *s)
{
	int rc = sqlite3_step(s);
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? 0 : store_sqlfail(st, "writing the index");
}

/* Inserts r (hash, files with oids) into the index; the caller holds a transaction. */
int store_index_run(struct store *st, const struct run_record *r)
{
	sqlite3_stmt *s = NULL;
	struct strbuf argv = STRBUF_INIT, inputs = STRBUF_INIT;
	char *cmd = run_cmdline(r);
	int rc = -1;
	uint64_t bytes = 0;
	for (size_t i = 0; i < r->nfiles; i++)
		bytes += r->files[i].size;
	for (size_t i = 0; i < r->argv.n; i++)
		sb_add(&argv, r->argv.v[i], strlen(r->argv.v[i]) + 1);

	if (sqlite3_prepare_v2(st->db,
			       "INSERT INTO runs(hash, parent, fp, line, name, argv, cmd, cwd, ok, exit_code, created,"
			       " last_used, duration_ms, expires, bytes, inputs, timed_out)"
			       " VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17)",
			       -1, &s, NULL) != SQLITE_OK) {
		store_sqlfail(st, "writing the index");
		goto out;
	}
	sqlite3_bind_text(s, 1, r->hash, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, r->parent, -1, SQLITE_STATIC);
	sqlite3_bind_blob(s, 3, r->fp.b, DIGEST_LEN, SQLITE_STATIC);
	sqlite3_bind_blob(s, 4, r->line.b, DIGEST_LEN, SQLITE_STATIC);
	if (r->name)
		sqlite3_bind_text(s, 5, r->name, -1, SQLITE_STATIC);
	sqlite3_bind_blob(s, 6, argv.buf ? argv.buf : "", (int)argv.len, SQLITE_STATIC);
	sqlite3_bind_text(s, 7, cmd, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 8, r->cwd ? r->cwd : ".", -1, SQLITE_STATIC);
	sqlite3_bind_int(s, 9, r->ok);
	sqlite3_bind_int(s, 10, r->exit_code);
	sqlite3_bind_int64(s, 11, r->created_ms);
	sqlite3_bind_int64(s, 12, r->last_used_ms ? r->last_used_ms : r->created_ms);
	sqlite3_bind_int64(s, 13, r->duration_ms);
	sqlite3_bind_int64(s, 14, r->expires_ms);
	sqlite3_bind_int64(s, 15, (int64_t)bytes);
	sqlite3_bind_int(s, 17, r->timed_out);
	if (r->observed) {
		run_inputs_encode(r, &inputs);
		sqlite3_bind_blob(s, 16, inputs.buf, (int)inputs.len, SQLITE_STATIC);
	}
	if (bind_exec(st, s) < 0)
		goto out;
	sqlite3_finalize(s);
	int64_t id = sqlite3_last_insert_rowid(st->db);

	if (sqlite3_prepare_v2(st->db, "INSERT OR REPLACE INTO files VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10)", -1, &s,
			       NULL) != SQLITE_OK) {
		store_sqlfail(st, "writing the index");
		goto out;
	}
	for (size_t i = 0; i < r->nfiles; i++) {
		const struct run_file *f = &r->files[i];
		sqlite3_bind_int64(s, 1, id);
		sqlite3_bind_int(s, 2, f->kind);
		sqlite3_bind_text(s, 3, f->path, -1, SQLITE_STATIC);
		sqlite3_bind_int(s, 4, (int)f->mode);
		sqlite3_bind_text(s, 5, f->oid, -1, SQLITE_STATIC);
		sqlite3_bind_blob(s, 6, f->xxh.b, DIGEST_LEN, SQLITE_STATIC);
		sqlite3_bind_int64(s, 7, (int64_t)f->size);
		sqlite3_bind_int(s, 8, f->enc);
		if (f->data)
			sqlite3_bind_blob(s, 9, f->data, (int)f->datalen, SQLITE_STATIC);
		else
			sqlite3_bind_null(s, 9);
		if (f->perm >= 0)
			sqlite3_bind_int(s, 10, f->perm);
		else
			sqlite3_bind_null(s, 10);
		if (bind_exec(st, s) < 0)
			goto out;
	}
	sqlite3_finalize(s);

	if (sqlite3_prepare_v2(st->db, "INSERT OR REPLACE INTO parts VALUES(?1,?2,?3,?4,?5,?6)", -1, &s, NULL) !=
	    SQLITE_OK) {
		store_sqlfail(st, "writing the index");
		goto out;
	}
	for (size_t i = 0; i < r->nparts; i++) {
		sqlite3_bind_int64(s, 1, id);
		sqlite3_bind_int64(s, 2, (int64_t)i);
		sqlite3_bind_text(s, 3, r->parts[i].kind, -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 4, r->parts[i].name, -1, SQLITE_STATIC);
		sqlite3_bind_blob(s, 5, r->parts[i].hash.b, DIGEST_LEN, SQLITE_STATIC);
		if (r->parts[i].detail)
			sqlite3_bind_text(s, 6, r->parts[i].detail, -1, SQLITE_STATIC);
		else
			sqlite3_bind_null(s, 6);
		if (bind_exec(st, s) < 0)
			goto out;
	}
	sqlite3_finalize(s);

	if (sqlite3_prepare_v2(st->db, "INSERT OR REPLACE INTO tags VALUES(?1,?2,?3)", -1, &s, NULL) != SQLITE_OK) {
		store_sqlfail(st, "writing the index");
		goto out;
	}
	for (size_t i = 0; i < r->tags.n; i++) {
		const char *t = r->tags.v[i], *eq = strchr(t, '=');
		sqlite3_bind_int64(s, 1, id);
		sqlite3_bind_text(s, 2, t, eq ? (int)(eq - t) : -1, SQLITE_STATIC);
		if (eq)
			sqlite3_bind_text(s, 3, eq + 1, -1, SQLITE_STATIC);
		else
			sqlite3_bind_null(s, 3);
		if (bind_exec(st, s) < 0)
			goto out;
	}
	sqlite3_finalize(s);

	if (sqlite3_prepare_v2(st->db, "INSERT OR REPLACE INTO metrics VALUES(?1,?2,?3)", -1, &s, NULL) != SQLITE_OK) {
		store_sqlfail(st, "writing the index");
		goto out;
	}
	for (size_t i = 0; i < r->metrics.n; i++) {
		const char *m = r->metrics.v[i], *eq = strchr(m, '=');
		sqlite3_bind_int64(s, 1, id);
		sqlite3_bind_text(s, 2, m, (int)(eq - m), SQLITE_STATIC);
		sqlite3_bind_text(s, 3, eq + 1, -1, SQLITE_STATIC);
		if (bind_exec(st, s) < 0)
			goto out;
	}
	rc = 0;
out:
	sqlite3_finalize(s);
	sb_release(&argv);
	sb_release(&inputs);
	free(cmd);
	return rc;
}

int store_save(struct store *st, struct run_record *r)
{
	const struct gitmod *g = gitmod_get();
	struct strbuf meta = STRBUF_INIT, content = STRBUF_INIT, key = STRBUF_INIT;
	int rc = -1, lock = -1;
	if (!g || (lock = store_lock(st, 0)) < 0)
		goto out;
	meta_encode(r, &meta);
	/* A configured key that cannot sign fails the store: an unsigned run
	 * would be refused by every store that trusts this key. */
	int sign = store_signing_key(st, &key);
	if (g->save_run(st->dir, r, meta.buf, meta.len, sign ? key.buf : NULL, store_tmpdir(st)) < 0)
		goto out;
	for (size_t i = 0; i < r->nfiles; i++) {
		struct run_file *f = &r->files[i];
		if (f->size > INLINE_MAX || f->mode == 0120000 || f->kind == FILE_DIR)
			continue;
		sb_reset(&content);
		if (read_file_sb(f->src, &content) < 0)
			goto out;
		inline_data(f, content.buf ? content.buf : "", content.len);
	}
	if (store_exec(st, "BEGIN IMMEDIATE") < 0)
		goto out;
	if (store_index_run(st, r) < 0) {
		store_exec(st, "ROLLBACK");
		goto out;
	}
	if (st->have_claim && digest_eq(&st->claimed, &r->fp)) {
		sqlite3_stmt *s;
		if (sqlite3_prepare_v2(st->db, "DELETE FROM claims WHERE fp=?1 AND pid=?2", -1, &s, NULL) ==
		    SQLITE_OK) {
			sqlite3_bind_blob(s, 1, r->fp.b, DIGEST_LEN, SQLITE_STATIC);
			sqlite3_bind_int64(s, 2, st->claim_pid);
			sqlite3_step(s);
			sqlite3_finalize(s);
		}
		st->have_claim = 0;
	}
	rc = store_exec(st, "COMMIT");
	if (rc < 0)
		store_exec(st, "ROLLBACK");
out:
	store_unlock(lock);
	sb_release(&meta);
	sb_release(&content);
	sb_release(&key);
	return rc;
}

/* Meta lists each file's digest and size; the tree gives oid and mode. */
static int merge_files(struct run_record *meta, const struct run_record *tree)
{
	for (size_t i = 0; i < tree->nfiles; i++) {
		const struct run_file *t = &tree->files[i];
		struct run_file *m = NULL;
		for (size_t j = 0; j < meta->nfiles; j++)
			if (!strcmp(meta->files[j].path, t->path))
				m = &meta->files[j];
		if (!m)
			return err_set("file %s of the tree is not in meta", t->path);
		memcpy(m->oid, t->oid, sizeof(m->oid));
		m->mode = t->mode;
	}
	for (size_t j = 0; j < meta->nfiles; j++)
		if (meta->files[j].kind != FILE_DIR && !meta->files[j].oid[0])
			return err_set("file %s of meta is not in the tree", meta->files[j].path);
	return 0;
}

/* Builds the index record of run hash from git alone: meta decoded, the
 * tree's oids and modes merged in, small blobs inlined as store_save does.
 * r must be zeroed; the caller frees it, also on error. */
int store_load_git(struct store *st, const char *hash, struct run_record *r)
{
	const struct gitmod *g = gitmod_get();
	struct run_record tree = { 0 };
	struct strbuf meta = STRBUF_INIT, content = STRBUF_INIT;
	int rc = -1;
	if (!g || g->load_run(st->dir, hash, &meta, &tree) < 0 || meta_decode(sb_str(&meta), r) < 0 ||
	    merge_files(r, &tree) < 0)
		goto out;
	memcpy(r->hash, tree.hash, sizeof(r->hash));
	memcpy(r->parent, tree.parent, sizeof(r->parent));
	for (size_t j = 0; j < r->nfiles; j++) {
		struct run_file *f = &r->files[j];
		if (f->size > INLINE_MAX || f->mode == 0120000 || f->kind == FILE_DIR)
			continue;
		sb_reset(&content);
		if (g->read_blob(st->dir, f->oid, &content) < 0)
			goto out;
		inline_data(f, sb_str(&content), content.len);
	}
	rc = 0;
out:
	run_record_free(&tree);
	sb_release(&meta);
	sb_release(&content);
	return rc;
}

int store_reindex(struct store *st, size_t *count, struct strvec *skipped)
{
	const struct gitmod *g = gitmod_get();
	struct strvec hashes = STRVEC_INIT;
	size_t n = 0;
	int rc = -1;
	if (!g || g->list_runs(st->dir, &hashes) < 0)
		goto out;
	if (store_exec(st,
		       "BEGIN IMMEDIATE; DELETE FROM files; DELETE FROM parts; DELETE FROM tags; DELETE FROM metrics; "
		       "DELETE FROM runs") < 0)
		goto out;
	for (size_t i = 0; i < hashes.n; i++) {
		struct run_record r = { 0 };
		if (store_load_git(st, hashes.v[i], &r) < 0) {
			/* One broken run must not make the others unreachable. */
			if (skipped) {
				struct strbuf line = STRBUF_INIT;
				sb_addf(&line, "skipped run %.12s: %s", hashes.v[i], err_msg());
				sv_push_nocopy(skipped, sb_detach(&line));
			}
		} else if (store_index_run(st, &r) < 0) {
			run_record_free(&r);
			store_exec(st, "ROLLBACK");
			goto out;
		} else {
			n++;
		}
		run_record_free(&r);
	}
	if (store_exec(st, "COMMIT") < 0) {
		store_exec(st, "ROLLBACK");
		goto out;
	}
	if (count)
		*count = n;
	rc = 0;
out:
	sv_release(&hashes);
	return rc;
}

int store_index_missing(struct store *st, size_t *added, struct strvec *unreadable)
{
	const struct gitmod *g = gitmod_get();
	struct strvec refs = STRVEC_INIT, rows = STRVEC_INIT;
	sqlite3_stmt *s = NULL;
	int rc = -1, in_tx = 0;
	*added = 0;
	if (!g || g->list_runs(st->dir, &refs) < 0)
		goto out;
	if (sqlite3_prepare_v2(st->db, "SELECT hash FROM runs ORDER BY hash", -1, &s, NULL) != SQLITE_OK) {
		store_sqlfail(st, "reading the index");
		goto out;
	}
	while (sqlite3_step(s) == SQLITE_ROW)
		sv_push(&rows, (const char *)sqlite3_column_text(s, 0));
	for (size_t i = 0; i < refs.n; i++) {
		struct run_record r = { 0 };
		if (sv_sorted_has(&rows, refs.v[i]))
			continue;
		if (!in_tx) {
			if (store_exec(st, "BEGIN IMMEDIATE") < 0)
				goto out;
			in_tx = 1;
		}
		if (store_load_git(st, refs.v[i], &r) < 0) {
			run_record_free(&r);
			if (!unreadable) {
				char *why = xstrdup(err_msg());
				err_set("run %.12s: %s", refs.v[i], why);
				free(why);
				goto out;
			}
			sv_push(unreadable, refs.v[i]);
			err_clear();
			continue;
		}
		int ir = store_index_run(st, &r);
		run_record_free(&r);
		if (ir < 0)
			goto out;
		(*added)++;
	}
	if (in_tx && store_exec(st, "COMMIT") < 0)
		goto out;
	in_tx = 0;
	rc = 0;
out:
	if (in_tx) {
		store_exec(st, "ROLLBACK");
		*added = 0;
	}
	sqlite3_finalize(s);
	sv_release(&refs);
	sv_release(&rows);
	return rc;
}
