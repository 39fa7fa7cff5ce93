/* store-save: writing runs (git first, then the index row) and rebuilding
 * the index from git. The order is the crash-safety argument: an index row
 * is only ever written for a commit whose blobs, tree and ref exist. */
#include "store/store-int.h"
#include "store/gitmod.h"
#include "store/trust.h"

#include <stdio.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zstd.h>

/* Small blobs are copied into the index; zstd when it pays. */
void store_inline_data(struct run_file *f, const char *content, size_t len)
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

/* Whether f gets a copy in the index: a small blob, unless it is one of
 * many outputs (a directory of thousands of files): those stay in git
 * only, where they are packed and compressed (copies doubled such a
 * store, in overflow pages of SQLite), and a hit reads them from the
 * packs, whose indexes it maps once. */
static int inlined(const struct run_record *r, const struct run_file *f)
{
	if (f->size > INLINE_MAX || f->mode == 0120000 || f->kind == FILE_DIR)
		return 0;
	if (f->kind != FILE_OUTPUT)
		return 1;
	size_t outputs = 0;
	for (size_t i = 0; i < r->nfiles && outputs <= INLINE_OUTPUTS_MAX; i++)
		outputs += r->files[i].kind == FILE_OUTPUT;
	return outputs <= INLINE_OUTPUTS_MAX;
}

static int bind_exec(struct store *st, sqlite3_stmt *s)
{
	int rc = sqlite3_step(s);
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? 0 : store_sqlfail(st, "writing the index");
}

/* Row ids of partvals (table 0) and inputsets (1) by digest, their
 * unique key: open addressing, each id stored shifted left by one with its
 * table in the low bit. */
struct index_ids {
	struct digest *keys;
	int64_t *ids; /* 0: empty slot (row ids start at 1) */
	size_t cap, n;
};

void store_index_ids(struct store *st, int on)
{
	if (st->ids) {
		free(st->ids->keys);
		free(st->ids->ids);
		free(st->ids);
		st->ids = NULL;
	}
	if (on)
		st->ids = xcalloc(1, sizeof(*st->ids));
}

/* The slot of d in table t (0 partvals, 1 inputsets): its id, or the
 * empty slot where it goes. The digests are uniform: their first bytes
 * are the hash. */
static size_t ids_slot(struct index_ids *c, int t, const struct digest *d)
{
	uint64_t h;
	memcpy(&h, d->b, sizeof(h));
	size_t i = (size_t)(h ^ (uint64_t)t) & (c->cap - 1);
	while (c->ids[i] && (memcmp(c->keys[i].b, d->b, DIGEST_LEN) || (c->ids[i] & 1) != t))
		i = (i + 1) & (c->cap - 1);
	return i;
}

/* The id of row d of table t, 0 when not known. */
static int64_t ids_get(struct index_ids *c, int t, const struct digest *d)
{
	if (!c || !c->cap)
		return 0;
	int64_t v = c->ids[ids_slot(c, t, d)];
	return v ? v >> 1 : 0;
}

static void ids_put(struct index_ids *c, int t, const struct digest *d, int64_t id)
{
	if (!c)
		return;
	if (2 * (c->n + 1) > c->cap) {
		struct index_ids old = *c;
		c->cap = old.cap ? 2 * old.cap : 256;
		c->keys = xcalloc(c->cap, sizeof(*c->keys));
		c->ids = xcalloc(c->cap, sizeof(*c->ids));
		c->n = 0;
		for (size_t i = 0; i < old.cap; i++)
			if (old.ids[i])
				ids_put(c, (int)(old.ids[i] & 1), &old.keys[i], old.ids[i] >> 1);
		free(old.keys);
		free(old.ids);
	}
	size_t i = ids_slot(c, t, d);
	if (!c->ids[i])
		c->n++;
	c->keys[i] = *d;
	c->ids[i] = id << 1 | t;
}

/* The id in inputsets of one part of a run's inputs, added when new. */
static int put_inputs(struct store *st, const struct strbuf *blob, int64_t *id)
{
	struct digest d;
	int rc = -1;
	digest_of(blob->buf, blob->len, &d);
	if ((*id = ids_get(st->ids, 1, &d))) {
		rc = 0;
		goto out;
	}
	if (store_prepare(st, &st->q_index[IX_SET_ADD],
			  "INSERT OR IGNORE INTO inputsets(digest, data) VALUES(?1, ?2)") < 0 ||
	    store_prepare(st, &st->q_index[IX_SET_ID], "SELECT id FROM inputsets WHERE digest=?1") < 0)
		goto out;
	sqlite3_stmt *add = st->q_index[IX_SET_ADD], *get = st->q_index[IX_SET_ID];
	sqlite3_bind_blob(add, 1, d.b, DIGEST_LEN, SQLITE_STATIC);
	sqlite3_bind_blob(add, 2, blob->buf, (int)blob->len, SQLITE_STATIC);
	sqlite3_bind_blob(get, 1, d.b, DIGEST_LEN, SQLITE_STATIC);
	if (sqlite3_step(add) != SQLITE_DONE || sqlite3_step(get) != SQLITE_ROW) {
		store_sqlfail(st, "writing the index");
		goto out;
	}
	*id = sqlite3_column_int64(get, 0);
	ids_put(st->ids, 1, &d, *id);
	rc = 0;
out:
	if (st->q_index[IX_SET_ADD])
		sqlite3_reset(st->q_index[IX_SET_ADD]);
	if (st->q_index[IX_SET_ID])
		sqlite3_reset(st->q_index[IX_SET_ID]);
	return rc;
}

int store_inputsets(struct store *st, const struct run_record *r, int64_t ids[2])
{
	struct strbuf shared = STRBUF_INIT, own = STRBUF_INIT;
	run_inputs_encode(r, &shared, &own);
	int rc = put_inputs(st, &shared, &ids[0]) < 0 || put_inputs(st, &own, &ids[1]) < 0 ? -1 : 0;
	sb_release(&shared);
	sb_release(&own);
	return rc;
}

/* r's parts as the varint ids of their partvals rows (added when new). */
static int part_ids(struct store *st, const struct run_record *r, struct strbuf *out)
{
	if (store_prepare(
		    st, &st->q_index[IX_PART_ADD],
		    "INSERT OR IGNORE INTO partvals(digest, kind, name, hash, detail) VALUES(?1, ?2, ?3, ?4, ?5)") <
		    0 ||
	    store_prepare(st, &st->q_index[IX_PART_ID], "SELECT id FROM partvals WHERE digest=?1") < 0)
		return -1;
	sqlite3_stmt *add = st->q_index[IX_PART_ADD], *get = st->q_index[IX_PART_ID];
	char *cmd = run_cmdline(r);
	struct digest argv_d;
	run_argv_digest(&r->argv, &argv_d);
	for (size_t i = 0; i < r->nparts; i++) {
		const struct run_part *p = &r->parts[i];
		struct hasher h;
		struct digest d;
		if (!strcmp(p->kind, "argv") && !p->detail && !strcmp(p->name, cmd) && digest_eq(&p->hash, &argv_d)) {
			sb_addc(out, 0); /* the run's own argv part: load_parts() makes it again */
			continue;
		}
		hasher_init(&h);
		hasher_str(&h, p->kind);
		hasher_str(&h, p->name);
		hasher_field(&h, p->hash.b, DIGEST_LEN);
		hasher_u64(&h, p->detail != NULL);
		if (p->detail)
			hasher_str(&h, p->detail);
		hasher_final(&h, &d);
		int64_t id = ids_get(st->ids, 0, &d);
		if (!id) {
			sqlite3_reset(add);
			sqlite3_reset(get);
			sqlite3_bind_blob(add, 1, d.b, DIGEST_LEN, SQLITE_TRANSIENT);
			sqlite3_bind_text(add, 2, p->kind, -1, SQLITE_STATIC);
			sqlite3_bind_text(add, 3, p->name, -1, SQLITE_STATIC);
			sqlite3_bind_blob(add, 4, p->hash.b, DIGEST_LEN, SQLITE_STATIC);
			if (p->detail)
				sqlite3_bind_text(add, 5, p->detail, -1, SQLITE_STATIC);
			else
				sqlite3_bind_null(add, 5);
			sqlite3_bind_blob(get, 1, d.b, DIGEST_LEN, SQLITE_TRANSIENT);
			if (sqlite3_step(add) != SQLITE_DONE || sqlite3_step(get) != SQLITE_ROW) {
				sqlite3_reset(add);
				sqlite3_reset(get);
				free(cmd);
				return store_sqlfail(st, "writing the index");
			}
			id = sqlite3_column_int64(get, 0);
			ids_put(st->ids, 0, &d, id);
		}
		for (uint64_t v = (uint64_t)id;; v >>= 7) {
			sb_addc(out, (char)((v & 0x7f) | (v > 0x7f ? 0x80 : 0)));
			if (v <= 0x7f)
				break;
		}
	}
	sqlite3_reset(add);
	sqlite3_reset(get);
	free(cmd);
	return 0;
}

/* What r's row in runs holds besides its commit (r->hash, r->parent),
 * made with the rest of r's rows (index_body) while the git half of a
 * save writes the commit (store_save). */
struct run_row {
	int64_t id; /* the row's to be: rows of other tables name it first */
	int64_t sets[2];
	struct strbuf argv, parts;
	uint64_t bytes;
};

static void run_row_release(struct run_row *row)
{
	sb_release(&row->argv);
	sb_release(&row->parts);
}

/* Every row of r's but its row in runs, under the id that row will have;
 * the caller holds a write transaction. */
static int index_body(struct store *st, const struct run_record *r, struct run_row *row)
{
	sqlite3_stmt *s = NULL;
	int rc = -1;
	for (size_t i = 0; i < r->nfiles; i++)
		row->bytes += r->files[i].size;
	for (size_t i = 0; i < r->argv.n; i++)
		sb_add(&row->argv, r->argv.v[i], strlen(r->argv.v[i]) + 1);
	if ((r->observed && store_inputsets(st, r, row->sets) < 0) || part_ids(st, r, &row->parts) < 0)
		goto out;
	/* the id SQLite would give the row (the largest one's next) */
	if (store_prepare(st, &st->q_index[IX_NEXT_RUN], "SELECT COALESCE(MAX(id), 0) + 1 FROM runs") < 0)
		goto out;
	s = st->q_index[IX_NEXT_RUN];
	if (sqlite3_step(s) != SQLITE_ROW) {
		store_sqlfail(st, "reading the index");
		goto out;
	}
	row->id = sqlite3_column_int64(s, 0);
	sqlite3_reset(s);

	if (store_prepare(st, &st->q_index[IX_FILE],
			  "INSERT OR REPLACE INTO files VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10)") < 0)
		goto out;
	s = st->q_index[IX_FILE];
	for (size_t i = 0; i < r->nfiles; i++) {
		const struct run_file *f = &r->files[i];
		sqlite3_bind_int64(s, 1, row->id);
		sqlite3_bind_int(s, 2, f->kind);
		sqlite3_bind_text(s, 3, f->path, -1, SQLITE_STATIC);
		sqlite3_bind_int(s, 4, (int)f->mode);
		store_bind_oid(s, 5, f->oid);
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

	if (store_prepare(st, &st->q_index[IX_TAG], "INSERT OR REPLACE INTO tags VALUES(?1,?2,?3)") < 0)
		goto out;
	s = st->q_index[IX_TAG];
	for (size_t i = 0; i < r->tags.n; i++) {
		const char *t = r->tags.v[i], *eq = strchr(t, '=');
		sqlite3_bind_int64(s, 1, row->id);
		sqlite3_bind_text(s, 2, t, eq ? (int)(eq - t) : -1, SQLITE_STATIC);
		if (eq)
			sqlite3_bind_text(s, 3, eq + 1, -1, SQLITE_STATIC);
		else
			sqlite3_bind_null(s, 3);
		if (bind_exec(st, s) < 0)
			goto out;
	}

	if (store_prepare(st, &st->q_index[IX_METRIC], "INSERT OR REPLACE INTO metrics VALUES(?1,?2,?3)") < 0)
		goto out;
	s = st->q_index[IX_METRIC];
	for (size_t i = 0; i < r->metrics.n; i++) {
		const char *m = r->metrics.v[i], *eq = strchr(m, '=');
		sqlite3_bind_int64(s, 1, row->id);
		sqlite3_bind_text(s, 2, m, (int)(eq - m), SQLITE_STATIC);
		sqlite3_bind_text(s, 3, eq + 1, -1, SQLITE_STATIC);
		if (bind_exec(st, s) < 0)
			goto out;
	}
	rc = 0;
out:
	if (s)
		sqlite3_reset(s);
	return rc;
}

/* r's row in runs, with the id its other rows name (index_body). */
static int index_row(struct store *st, const struct run_record *r, const struct run_row *row)
{
	if (store_prepare(st, &st->q_index[IX_RUN],
			  "INSERT INTO runs(id, hash, parent, fp, line, name, argv, cwd, ok, exit_code, created,"
			  " last_used, duration_ms, expires, bytes, inputset, timed_out, parts, inputset_own)"
			  " VALUES(?19,?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17,?18)") < 0)
		return -1;
	sqlite3_stmt *s = st->q_index[IX_RUN];
	store_bind_oid(s, 1, r->hash);
	store_bind_oid(s, 2, r->parent);
	sqlite3_bind_blob(s, 3, r->fp.b, DIGEST_LEN, SQLITE_STATIC);
	sqlite3_bind_blob(s, 4, r->line.b, DIGEST_LEN, SQLITE_STATIC);
	if (r->name)
		sqlite3_bind_text(s, 5, r->name, -1, SQLITE_STATIC);
	sqlite3_bind_blob(s, 6, row->argv.buf ? row->argv.buf : "", (int)row->argv.len, SQLITE_STATIC);
	sqlite3_bind_text(s, 7, r->cwd ? r->cwd : ".", -1, SQLITE_STATIC);
	sqlite3_bind_int(s, 8, r->ok);
	sqlite3_bind_int(s, 9, r->exit_code);
	sqlite3_bind_int64(s, 10, r->created_ms);
	sqlite3_bind_int64(s, 11, r->last_used_ms ? r->last_used_ms : r->created_ms);
	sqlite3_bind_int64(s, 12, r->duration_ms);
	sqlite3_bind_int64(s, 13, r->expires_ms);
	sqlite3_bind_int64(s, 14, (int64_t)row->bytes);
	sqlite3_bind_int(s, 16, r->timed_out);
	if (r->observed) {
		sqlite3_bind_int64(s, 15, row->sets[0]);
		sqlite3_bind_int64(s, 18, row->sets[1]);
	}
	sqlite3_bind_blob(s, 17, row->parts.buf ? row->parts.buf : "", (int)row->parts.len, SQLITE_STATIC);
	sqlite3_bind_int64(s, 19, row->id);
	return bind_exec(st, s);
}

/* Inserts r (hash, files with oids) into the index; the caller holds a transaction. */
int store_index_run(struct store *st, const struct run_record *r)
{
	struct run_row row = { 0 };
	int rc = index_body(st, r, &row) < 0 || index_row(st, r, &row) < 0 ? -1 : 0;
	run_row_release(&row);
	return rc;
}

struct early_pack *store_early_begin(struct store *st, struct run_file **files, size_t n)
{
	const struct gitmod *g = gitmod_get();
	return g ? g->early_begin(st->dir, files, n) : NULL;
}

/* (begin loaded the module) */
int store_early_add(struct early_pack *p, const int *stop)
{
	return gitmod_get()->early_add(p, stop);
}

int store_early_end(struct early_pack *p, char name[OID_HEX])
{
	return gitmod_get()->early_end(p, name);
}

int store_has_pack(struct store *st, const char *name)
{
	struct strbuf p = STRBUF_INIT;
	sb_addf(&p, "%s/objects/pack/pack-%s.idx", st->dir, name);
	int has = access(p.buf, F_OK) == 0;
	sb_release(&p);
	return has;
}

/* The index's half of a save: r's inline copies, then, in a transaction
 * left open for r's row in runs, every other row of r's. On a thread of
 * its own from the moment the git half has every blob's oid (save_run's
 * blobs_saved), beside the rest of that half: meta, trees and the commit
 * (30 ms, and 20,000 index rows 25 ms, for a run of 20,000 files). */
struct index_half {
	struct store *st;
	struct run_record *r;
	struct run_row row;
	pthread_t thread;
	int started, began, rc;
	enum err_code code; /* the thread's error, said again on the caller's */
	char *why;
};

static int index_half(struct index_half *h)
{
	struct strbuf content = STRBUF_INIT;
	int rc = -1;
	for (size_t i = 0; i < h->r->nfiles; i++) {
		struct run_file *f = &h->r->files[i];
		if (!inlined(h->r, f) || f->data)
			continue;
		sb_reset(&content);
		if (f->src && read_file_sb(f->src, &content) < 0)
			goto out;
		if (!f->src)
			sb_add(&content, f->held.buf, f->held.len);
		store_inline_data(f, content.buf ? content.buf : "", content.len);
	}
	store_statcache_join(h->st); /* its rows written beside the git half */
	if (store_exec(h->st, "BEGIN IMMEDIATE") < 0)
		goto out;
	h->began = 1;
	rc = index_body(h->st, h->r, &h->row);
out:
	sb_release(&content);
	return rc;
}

static void *index_main(void *arg)
{
	struct index_half *h = arg;
	if ((h->rc = index_half(h)) < 0) {
		h->code = err_code();
		h->why = xstrdup(err_msg());
	}
	return NULL;
}

static void blobs_saved(void *arg)
{
	struct index_half *h = arg;
	h->started = thread_start(&h->thread, index_main, h, 0) == 0;
}

/* The index's half done: joined, or done here if it was not started.
 * 0, or -1 with its error. */
static int index_done(struct index_half *h)
{
	if (!h->started)
		return index_half(h);
	pthread_join(h->thread, NULL);
	h->started = 0;
	if (h->rc < 0)
		err_setc(h->code, "%s", h->why);
	return h->rc;
}

int store_save(struct store *st, struct run_record *r)
{
	const struct gitmod *g;
	struct strbuf key = STRBUF_INIT;
	struct index_half ih = { .st = st, .r = r };
	int rc = -1, lock = -1;
	if ((lock = store_lock(st, STORE_LOCK_SHARED)) < 0)
		goto out;
	/* A configured key that cannot sign fails the store: an unsigned run
	 * would be refused by every store that trusts this key. */
	int sign = store_signing_key(st, &key);
	/* a run of small files without libgit2 (a signed one goes through it:
	 * it signs); the rest through it */
	int own = sign ? 1 : store_odb_save(st, r);
	/* the module's parent where the line has no ref yet (gitmod.h) */
	int newest = own == 1 ? store_line_newest(st, &r->line, r->parent) : 1;
	if (newest < 0)
		goto out;
	if (newest == 0)
		r->parent[0] = '\0';
	if (own < 0 || (own == 1 && (!(g = gitmod_get()) || g->save_run(st->dir, r, sign ? key.buf : NULL,
									store_tmpdir(st), blobs_saved, &ih) < 0)))
		goto out;
	if (st->bad_copies.n && store_odb_heal(st, r) < 0)
		goto out;
	if (own == 0 && st->batch) {
		rc = 0; /* published by store_batch_flush, claim and all */
		goto out;
	}
	if (index_done(&ih) < 0 || index_row(st, r, &ih.row) < 0)
		goto out;
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
out:
	if (ih.started) { /* the git half failed after its blobs: what the other did is undone */
		pthread_join(ih.thread, NULL);
		ih.started = 0;
	}
	if (rc < 0 && ih.began)
		store_rollback(st);
	store_unlock(lock);
	run_row_release(&ih.row);
	free(ih.why);
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

int store_record_from_git(struct store *st, const char *meta, const struct run_record *tree, struct run_record *r)
{
	const struct gitmod *g = gitmod_get();
	struct strbuf content = STRBUF_INIT;
	int rc = -1;
	if (meta_decode(meta, r) < 0 || merge_files(r, tree) < 0)
		goto out;
	memcpy(r->hash, tree->hash, sizeof(r->hash));
	memcpy(r->parent, tree->parent, sizeof(r->parent));
	for (size_t j = 0; j < r->nfiles; j++) {
		struct run_file *f = &r->files[j];
		const struct run_file *t = NULL;
		if (!inlined(r, f))
			continue;
		for (size_t i = 0; i < tree->nfiles && !t; i++)
			if (tree->files[i].data && !strcmp(tree->files[i].path, f->path))
				t = &tree->files[i];
		if (t) {
			store_inline_data(f, (const char *)t->data, t->datalen);
			continue;
		}
		sb_reset(&content);
		if (!g || g->read_blob(st->dir, f->oid, &content) < 0)
			goto out;
		store_inline_data(f, sb_str(&content), content.len);
	}
	rc = 0;
out:
	sb_release(&content);
	return rc;
}

/* Builds the index record of run hash from git alone. r must be zeroed;
 * the caller frees it, also on error. */
int store_load_git(struct store *st, const char *hash, struct run_record *r)
{
	const struct gitmod *g = gitmod_get();
	struct run_record tree = { 0 };
	struct strbuf meta = STRBUF_INIT;
	int rc = -1;
	if (!g || g->load_run(st->dir, hash, &meta, &tree) < 0)
		goto out;
	rc = store_record_from_git(st, sb_str(&meta), &tree, r);
out:
	run_record_free(&tree);
	sb_release(&meta);
	return rc;
}

int store_rebuild_begin(struct store *st)
{
	/* a page cache of 128 MiB (as large as the index of 100,000 runs,
	 * and only used as it fills): SQLite's default 2 MiB spilled the
	 * rebuild's pages to the WAL and read them back over and over */
	if (store_exec(
		    st,
		    "PRAGMA cache_size=-131072; BEGIN IMMEDIATE; DROP TRIGGER runs_add; DROP TRIGGER runs_del; DROP TRIGGER runs_upd;"
		    " DROP TRIGGER runs_chg; DROP INDEX runs_fp; DROP INDEX runs_line; DROP INDEX runs_created;"
		    " DROP INDEX tags_key; DELETE FROM files; DELETE FROM tags; DELETE FROM metrics;"
		    " DELETE FROM runs; DELETE FROM inputsets; DELETE FROM partvals") < 0) {
		store_rollback(st);
		store_exec(st, "PRAGMA cache_size=-2000");
		return -1;
	}
	store_index_ids(st, 1);
	return 0;
}

int store_rebuild_end(struct store *st, int ok)
{
	store_index_ids(st, 0);
	if (ok &&
	    store_exec(st, "UPDATE totals SET v = CASE k WHEN 'runs' THEN (SELECT count(*) FROM runs)"
			   " WHEN 'ok' THEN (SELECT count(*) FROM runs WHERE ok)"
			   " WHEN 'bytes' THEN (SELECT coalesce(sum(bytes), 0) FROM runs)"
			   " WHEN 'gen' THEN v + 1 ELSE v END") == 0 &&
	    store_exec(st, store_indexes) == 0 && store_exec(st, store_triggers) == 0 &&
	    store_exec(st, "COMMIT") == 0) {
		store_exec(st, "PRAGMA cache_size=-2000");
		return 0;
	}
	store_rollback(st);
	store_exec(st, "PRAGMA cache_size=-2000");
	return -1;
}

int store_reindex(struct store *st, size_t *count, struct strvec *skipped)
{
	const struct gitmod *g = gitmod_get();
	struct strvec hashes = STRVEC_INIT;
	size_t n = 0;
	int rc = -1;
	if (!g || g->list_runs(st->dir, &hashes) < 0)
		goto out;
	/* in the refs' (the ids') order, each run's commit, tree and meta
	 * were deltas resolved from far down their chains: 60 s for 100,000
	 * runs */
	store_pack_order(st, &hashes);
	if (store_rebuild_begin(st) < 0)
		goto out;
	int ok = 1;
	for (size_t i = 0; ok && i < hashes.n; i++) {
		struct run_record r = { 0 };
		if (store_load_git(st, hashes.v[i], &r) < 0) {
			/* One broken run must not make the others unreachable. */
			if (skipped) {
				struct strbuf line = STRBUF_INIT;
				sb_addf(&line, "skipped run %.12s: %s", hashes.v[i], err_msg());
				sv_push_nocopy(skipped, sb_detach(&line));
			}
		} else if (store_index_run(st, &r) < 0) {
			ok = 0;
		} else {
			n++;
		}
		run_record_free(&r);
	}
	if (store_rebuild_end(st, ok) < 0)
		goto out;
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
	while (sqlite3_step(s) == SQLITE_ROW) {
		char h[OID_HEX];
		store_column_oid(s, 0, h);
		sv_push(&rows, h);
	}
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
		store_rollback(st);
		*added = 0;
	}
	sqlite3_finalize(s);
	sv_release(&refs);
	sv_release(&rows);
	return rc;
}
