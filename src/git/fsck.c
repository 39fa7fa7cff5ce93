/* fsck: read every object of the store back once, so libgit2 inflates it
 * and recomputes its SHA-1 (strict hash verification). The runs' objects
 * are read first, run by run, and each run goes to the store's checks with
 * what was read (meta, tree, small blobs): nothing is read twice. Then the
 * objects no run reached (orphans, large blobs) are read the same way. */
#include "git/gitint.h"

#include <string.h>

/* The objects read (or reported bad) so far: open addressing on ids,
 * which are uniformly distributed already. */
struct fsck_pass {
	struct gitmod_fsck *req;
	git_odb *odb;
	git_oid *slot;
	unsigned char *used;
	size_t cap, n;
};

static size_t slot_of(const struct fsck_pass *p, const git_oid *id)
{
	size_t h;
	memcpy(&h, id->id, sizeof(h));
	return h & (p->cap - 1);
}

static int seen(const struct fsck_pass *p, const git_oid *id)
{
	if (!p->cap)
		return 0;
	for (size_t i = slot_of(p, id);; i = (i + 1) & (p->cap - 1)) {
		if (!p->used[i])
			return 0;
		if (git_oid_equal(&p->slot[i], id))
			return 1;
	}
}

void gs_fsck_seen(struct fsck_pass *p, const git_oid *id)
{
	if (2 * (p->n + 1) > p->cap) {
		struct fsck_pass old = *p;
		p->cap = old.cap ? 2 * old.cap : 1024;
		p->slot = xcalloc(p->cap, sizeof(*p->slot));
		p->used = xcalloc(p->cap, 1);
		p->n = 0;
		for (size_t i = 0; i < old.cap; i++)
			if (old.used[i])
				gs_fsck_seen(p, &old.slot[i]);
		free(old.slot);
		free(old.used);
	}
	size_t i = slot_of(p, id);
	while (p->used[i]) {
		if (git_oid_equal(&p->slot[i], id))
			return;
		i = (i + 1) & (p->cap - 1);
	}
	p->used[i] = 1;
	git_oid_cpy(&p->slot[i], id);
	p->n++;
}

/* A bad object: one line, the first time it is met. */
static int bad_object(struct fsck_pass *p, const git_oid *id)
{
	const git_error *e = git_error_last();
	char hex[GIT_OID_HEXSZ + 1];
	git_oid_tostr(hex, sizeof(hex), id);
	err_set("object %s: %s", hex, e && e->message ? e->message : "unreadable");
	if (!seen(p, id)) {
		gs_fsck_seen(p, id);
		sv_push(p->req->problems, err_msg());
		p->req->bad_objects++;
	}
	git_error_clear();
	return -1;
}

int gs_fsck_blob(struct fsck_pass *p, const git_oid *id, int whole, struct strbuf *out)
{
	git_odb_object *o = NULL;
	int rc = 0;
	/* read whole whatever its size, as the object check always did: one
	 * lookup, not a header read first */
	if (git_odb_read(&o, p->odb, id) < 0)
		return bad_object(p, id);
	if (git_odb_object_type(o) != GIT_OBJECT_BLOB) {
		git_odb_object_free(o);
		git_error_set_str(GIT_ERROR_OBJECT, "not a blob");
		return bad_object(p, id);
	}
	gs_fsck_seen(p, id);
	if (whole || git_odb_object_size(o) <= p->req->content_max)
		sb_add(out, git_odb_object_data(o), git_odb_object_size(o));
	else
		rc = 1;
	git_odb_object_free(o);
	return rc;
}

static int collect_oid(const git_oid *id, void *payload)
{
	struct strbuf *ids = payload;
	sb_add(ids, id, sizeof(*id));
	return 0;
}

int gs_fsck(const char *dir, struct gitmod_fsck *req)
{
	struct fsck_pass p = { .req = req };
	struct strbuf ids = STRBUF_INIT, meta = STRBUF_INIT;
	int rc = -1;
	if (open_repo(dir) < 0)
		return -1;
	git_libgit2_opts(GIT_OPT_ENABLE_STRICT_HASH_VERIFICATION, 1);
	if (git_repository_odb(&p.odb, repo) < 0) {
		git_fail("cannot open the object database");
		goto out;
	}
	for (size_t i = 0; i < req->runs->n; i++) {
		struct run_record tree = { 0 };
		sb_reset(&meta);
		int ok = gs_read_run(req->runs->v[i], &meta, &tree, &p) == 0;
		int fr = req->fn(req->ctx, req->runs->v[i], ok, sb_str(&meta), &tree);
		run_record_free(&tree);
		err_clear();
		if (fr < 0)
			goto out;
	}
	/* what no run reached; libgit2 lists an object once per copy (loose
	 * and packed), and each counts */
	if (git_odb_foreach(p.odb, collect_oid, &ids) < 0) {
		git_fail("cannot list objects");
		goto out;
	}
	req->objects = (int64_t)(ids.len / sizeof(git_oid));
	for (size_t off = 0; off < ids.len; off += sizeof(git_oid)) {
		git_oid id;
		git_odb_object *o = NULL;
		memcpy(&id, ids.buf + off, sizeof(id));
		if (seen(&p, &id))
			continue;
		if (git_odb_read(&o, p.odb, &id) < 0)
			bad_object(&p, &id);
		else
			gs_fsck_seen(&p, &id);
		git_odb_object_free(o);
	}
	err_clear();
	rc = 0;
out:
	git_odb_free(p.odb);
	free(p.slot);
	free(p.used);
	sb_release(&ids);
	sb_release(&meta);
	return rc;
}
