/* repack: after gc has dropped runs from the index and their refs, write one
 * pack with exactly what the kept runs reach (commit, tree, blobs; parents
 * only when kept too), delete every other object, and record the commits
 * whose parent is gone in `shallow`, as git does for shallow clones, so
 * `git log` and `git fsck` stay happy. */
#include "git/gitint.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Removes loose objects and every pack but `keep_pack` (a file name stem). */
static void remove_garbage(const char *dir, const char *keep_pack)
{
	struct strbuf p = STRBUF_INIT, q = STRBUF_INIT;
	sb_addf(&p, "%s/objects", dir);
	DIR *d = opendir(p.buf);
	struct dirent *e;
	while (d && (e = readdir(d))) {
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
			sb_setlen(&q, base);
			sb_addf(&q, "/%s", o->d_name);
			unlink(q.buf);
		}
		if (sub)
			closedir(sub);
		sb_setlen(&q, base);
		rmdir(q.buf);
	}
	if (d)
		closedir(d);
	sb_addf(&p, "/pack");
	d = opendir(p.buf);
	while (d && (e = readdir(d))) {
		if (strncmp(e->d_name, "pack-", 5) || (keep_pack && !strncmp(e->d_name, keep_pack, strlen(keep_pack)) &&
						       e->d_name[strlen(keep_pack)] == '.'))
			continue;
		sb_reset(&q);
		sb_addf(&q, "%s/%s", p.buf, e->d_name);
		unlink(q.buf);
	}
	if (d)
		closedir(d);
	sb_release(&p);
	sb_release(&q);
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
	git_packbuilder *pb = NULL;
	struct strvec roots = STRVEC_INIT, old_lines = STRVEC_INIT;
	char stem[64] = "";
	int rc = -1;
	if (open_repo(dir) < 0)
		return -1;
	if (keep_sorted->n) {
		if (git_packbuilder_new(&pb, repo) < 0) {
			git_fail("packbuilder");
			goto out;
		}
		for (size_t i = 0; i < keep_sorted->n; i++) {
			git_oid oid;
			git_commit *c = NULL;
			if (git_oid_fromstr(&oid, keep_sorted->v[i]) < 0 || git_commit_lookup(&c, repo, &oid) < 0 ||
			    git_packbuilder_insert_commit(pb, &oid) < 0) {
				git_commit_free(c);
				git_fail(keep_sorted->v[i]);
				goto out;
			}
			if (git_commit_parentcount(c) > 0 &&
			    !sv_sorted_has(keep_sorted, git_oid_tostr_s(git_commit_parent_id(c, 0))))
				sv_push(&roots, keep_sorted->v[i]);
			git_commit_free(c);
		}
		if (git_packbuilder_write(pb, NULL, 0, NULL, NULL) < 0) {
			git_fail("cannot write pack");
			goto out;
		}
		snprintf(stem, sizeof(stem), "pack-%s", git_packbuilder_name(pb));
	}
	/* Everything kept is in the new pack now: the rest is garbage. */
	remove_garbage(dir, keep_sorted->n ? stem : NULL);
	git_odb *odb;
	if (git_repository_odb(&odb, repo) == 0) {
		git_odb_refresh(odb);
		git_odb_free(odb);
	}
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
	git_packbuilder_free(pb);
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
