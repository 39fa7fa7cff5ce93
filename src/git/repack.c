/* repack: after gc has dropped runs from the index and their refs, write one
 * pack with exactly what the kept runs reach (commit, tree, blobs; parents
 * only when kept too) but large loose blobs, which stay loose, delete every
 * other object, and record the commits
 * whose parent is gone in `shallow`, as git does for shallow clones, so
 * `git log` and `git fsck` stay happy. */
#include "git/gitint.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Removes loose objects but those in keep_loose (sorted ids), temp files
 * a writer left behind (gc holds the store lock: none is being written),
 * and every pack but `keep_pack` (a file name stem). */
static void remove_garbage(const char *dir, const char *keep_pack, const struct strvec *keep_loose)
{
	struct strbuf p = STRBUF_INIT, q = STRBUF_INIT, id = STRBUF_INIT;
	sb_addf(&p, "%s/objects", dir);
	DIR *d = opendir(p.buf);
	struct dirent *e;
	while (d && (e = readdir(d))) {
		if (!strncmp(e->d_name, "tmp_obj_", 8)) {
			sb_reset(&q);
			sb_addf(&q, "%s/%s", p.buf, e->d_name);
			unlink(q.buf);
			continue;
		}
		if (strlen(e->d_name) != 2 || !strchr("0123456789abcdef", e->d_name[0]) ||
		    !strchr("0123456789abcdef", e->d_name[1]))
			continue;
		sb_reset(&q);
		sb_addf(&q, "%s/%s", p.buf, e->d_name);
		DIR *sub = opendir(q.buf);
		struct dirent *o;
		size_t base = q.len;
		while (sub && (o = readdir(sub))) {
			if (o->d_name[0] == '.')
				continue;
			sb_reset(&id);
			sb_addf(&id, "%s%s", e->d_name, o->d_name);
			if (sv_sorted_has(keep_loose, id.buf))
				continue;
			sb_setlen(&q, base);
			sb_addf(&q, "/%s", o->d_name);
			unlink(q.buf);
		}
		if (sub)
			closedir(sub);
		sb_setlen(&q, base);
		rmdir(q.buf); /* fails, as it should, while it holds a kept object */
	}
	if (d)
		closedir(d);
	sb_addf(&p, "/pack");
	d = opendir(p.buf);
	while (d && (e = readdir(d))) {
		/* what packw.c left when killed midway */
		int stale = !strncmp(e->d_name, "tmp_pack_", 9) || !strncmp(e->d_name, "tmp_idx_", 8);
		if (!stale && (strncmp(e->d_name, "pack-", 5) ||
			       (keep_pack && !strncmp(e->d_name, keep_pack, strlen(keep_pack)) &&
				e->d_name[strlen(keep_pack)] == '.')))
			continue;
		sb_reset(&q);
		sb_addf(&q, "%s/%s", p.buf, e->d_name);
		unlink(q.buf);
	}
	if (d)
		closedir(d);
	sb_release(&p);
	sb_release(&q);
	sb_release(&id);
}

static int write_shallow(const char *dir, const struct strvec *roots)
{
	struct strbuf path = STRBUF_INIT, text = STRBUF_INIT;
	int rc = 0;
	sb_addf(&path, "%s/shallow", dir);
	for (size_t i = 0; i < roots->n; i++)
		sb_addf(&text, "%s\n", roots->v[i]);
	if (roots->n)
		rc = write_file_atomic(path.buf, text.buf, text.len, 0644);
	else
		unlink(path.buf);
	sb_release(&path);
	sb_release(&text);
	return rc;
}

/* Whether the object id is a loose file. */
static int is_loose(const char *dir, const git_oid *id)
{
	struct strbuf p = STRBUF_INIT;
	const char *hex = git_oid_tostr_s(id);
	sb_addf(&p, "%s/objects/%.2s/%s", dir, hex, hex + 2);
	int loose = access(p.buf, F_OK) == 0;
	sb_release(&p);
	return loose;
}

/* Adds tree id and what it holds to the pack, except large blobs that are
 * loose: those stay as they are (git's core.bigFileThreshold, for the
 * same reasons): packing one would read it whole into memory, deflate it
 * and search it for deltas, and a delta could no longer be replayed as a
 * stream. Their ids go to keep_loose. */
static int pack_tree(const char *dir, struct strvec *ids, git_odb *odb, const git_oid *id, struct strvec *keep_loose)
{
	git_tree *t = NULL;
	int rc = -1;
	sv_push(ids, git_oid_tostr_s(id));
	if (git_tree_lookup(&t, repo, id) < 0)
		return git_fail(git_oid_tostr_s(id));
	for (size_t i = 0; i < git_tree_entrycount(t); i++) {
		const git_tree_entry *e = git_tree_entry_byindex(t, i);
		const git_oid *eid = git_tree_entry_id(e);
		size_t len = 0;
		git_object_t type;
		if (git_tree_entry_type(e) == GIT_OBJECT_TREE) {
			if (pack_tree(dir, ids, odb, eid, keep_loose) < 0)
				goto out;
			continue;
		}
		if (git_odb_read_header(&len, &type, odb, eid) < 0) {
			git_fail(git_oid_tostr_s(eid));
			goto out;
		}
		sv_push(type == GIT_OBJECT_BLOB && len >= LOOSE_MIN && is_loose(dir, eid) ? keep_loose : ids,
			git_oid_tostr_s(eid));
	}
	rc = 0;
out:
	git_tree_free(t);
	return rc;
}

/* The error of a kept run that git cannot give back, said as what it
 * stops and what removes it. */
static void unreadable_run(const char *hash)
{
	char *why = xstrdup(err_msg());
	err_set("run %.12s cannot be read (%s); `cashet fsck --prune` drops the runs git cannot give back", hash, why);
	free(why);
}

static int collect_name(const char *name, void *payload)
{
	sv_push(payload, name);
	return 0;
}

static int drop_line_ref(const char *name, void *payload)
{
	git_reference *ref;
	if (git_reference_lookup(&ref, repo, name) == 0) {
		git_reference_delete(ref);
		git_reference_free(ref);
	}
	return 0;
}

int gs_repack(const char *dir, const struct strvec *keep_sorted, const struct strvec *lines)
{
	git_odb *odb = NULL;
	struct strvec roots = STRVEC_INIT, old_lines = STRVEC_INIT, keep_loose = STRVEC_INIT, ids = STRVEC_INIT,
		      once = STRVEC_INIT;
	char stem[64] = "", pack[GIT_OID_HEXSZ + 1];
	int rc = -1;
	if (open_repo(dir) < 0)
		return -1;
	if (keep_sorted->n) {
		if (git_repository_odb(&odb, repo) < 0) {
			git_fail("odb");
			goto out;
		}
		for (size_t i = 0; i < keep_sorted->n; i++) {
			git_oid oid;
			git_commit *c = NULL;
			if (git_oid_fromstr(&oid, keep_sorted->v[i]) < 0 || git_commit_lookup(&c, repo, &oid) < 0) {
				git_commit_free(c);
				git_fail(keep_sorted->v[i]);
				unreadable_run(keep_sorted->v[i]);
				goto out;
			}
			sv_push(&ids, keep_sorted->v[i]);
			if (pack_tree(dir, &ids, odb, git_commit_tree_id(c), &keep_loose) < 0) {
				git_commit_free(c);
				unreadable_run(keep_sorted->v[i]);
				goto out;
			}
			if (git_commit_parentcount(c) > 0 &&
			    !sv_sorted_has(keep_sorted, git_oid_tostr_s(git_commit_parent_id(c, 0))))
				sv_push(&roots, keep_sorted->v[i]);
			git_commit_free(c);
		}
		/* runs share blobs (an empty stderr, the same output): each once */
		sv_sort(&ids);
		for (size_t i = 0; i < ids.n; i++)
			if (!i || strcmp(ids.v[i], ids.v[i - 1]))
				sv_push(&once, ids.v[i]);
		if (gs_write_pack(dir, odb, &once, pack) < 0)
			goto out;
		snprintf(stem, sizeof(stem), "pack-%s", pack);
	}
	/* Everything kept is in the new pack now, or a large loose object:
	 * the rest is garbage. */
	sv_sort(&keep_loose);
	remove_garbage(dir, keep_sorted->n ? stem : NULL, &keep_loose);
	git_odb_free(odb);
	odb = NULL;
	if (git_repository_odb(&odb, repo) == 0)
		git_odb_refresh(odb);
	if (write_shallow(dir, &roots) < 0)
		goto out;
	/* Line refs point at the newest kept run of each command line. */
	git_reference_foreach_glob(repo, "refs/cashet/lines/*", collect_name, &old_lines);
	for (size_t i = 0; i < old_lines.n; i++)
		drop_line_ref(old_lines.v[i], NULL);
	for (size_t i = 0; i < lines->n; i++) {
		const char *sp = strchr(lines->v[i], ' ');
		git_oid oid;
		git_reference *ref = NULL;
		struct strbuf name = STRBUF_INIT;
		if (!sp || git_oid_fromstr(&oid, sp + 1) < 0)
			continue;
		sb_addf(&name, "refs/cashet/lines/%.*s", (int)(sp - lines->v[i]), lines->v[i]);
		if (git_reference_create(&ref, repo, name.buf, &oid, 1, "cashet gc") < 0) {
			sb_release(&name);
			git_fail("cannot write ref");
			goto out;
		}
		git_reference_free(ref);
		sb_release(&name);
	}
	rc = 0;
out:
	git_odb_free(odb);
	sv_release(&ids);
	sv_release(&once);
	sv_release(&keep_loose);
	sv_release(&roots);
	sv_release(&old_lines);
	return rc;
}

int gs_config(const char *dir, const char *key, const char *set, int unset, struct strbuf *value)
{
	git_config *cfg = NULL;
	git_buf buf = { 0 };
	struct strbuf name = STRBUF_INIT;
	int rc = -1;
	if (open_repo(dir) < 0)
		return -1;
	sb_addf(&name, "cashet.%s", key);
	if (git_repository_config(&cfg, repo) < 0) {
		git_fail("config");
		goto out;
	}
	if (unset) {
		int e = git_config_delete_entry(cfg, name.buf);
		rc = e == 0 || e == GIT_ENOTFOUND ? 0 : git_fail(name.buf);
	} else if (set) {
		rc = git_config_set_string(cfg, name.buf, set) < 0 ? git_fail(name.buf) : 0;
	} else {
		int e = git_config_get_string_buf(&buf, cfg, name.buf);
		if (e == GIT_ENOTFOUND) {
			rc = 1;
		} else if (e < 0) {
			git_fail(name.buf);
		} else {
			sb_add(value, buf.ptr, buf.size);
			rc = 0;
		}
	}
out:
	git_buf_dispose(&buf);
	git_config_free(cfg);
	sb_release(&name);
	return rc;
}
