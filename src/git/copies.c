/* copies: an object can have more than one copy in a store (loose and
 * packed, or in two packs), and libgit2 reads only the first it finds: a
 * damaged pack entry (a flipped byte on disk) then hides the intact loose
 * copy a re-run wrote (store-blob.c). Whatever reads objects to keep them
 * (gc, auto-pack) reads through here, so a damaged copy is passed over
 * and an intact one kept; and a loose copy is deleted only once the
 * pack's copy was read back whole. */
#include "git/gitint.h"

#include <dirent.h>
#include <git2/sys/odb_backend.h>
#include <stdlib.h>
#include <string.h>

enum source { LOOSE, PACKS, ONE_PACK };

/* An object database of one kind of copy: the loose objects, the packs,
 * or one pack (idx: its .idx). */
static int one_source(enum source kind, const char *idx, git_odb **out)
{
	git_odb_backend *b = NULL;
	struct strbuf objects = STRBUF_INIT;
	int rc = -1;
	*out = NULL;
	sb_addf(&objects, "%s/objects", git_repo_dir());
	if (git_odb_new(out) < 0)
		goto out;
	if ((kind == ONE_PACK ? git_odb_backend_one_pack(&b, idx)
	     : kind == PACKS  ? git_odb_backend_pack(&b, objects.buf)
			      : gs_guard_new(objects.buf, &b)) < 0)
		goto out;
	if (git_odb_add_backend(*out, b, 1) < 0) {
		b->free(b);
		goto out;
	}
	rc = 0;
out:
	if (rc < 0) {
		git_odb_free(*out);
		*out = NULL;
	}
	sb_release(&objects);
	return rc;
}

/* Reads id from one source: 0, or <0. */
static int read_from(enum source kind, const char *idx, const git_oid *id, git_odb_object **out)
{
	git_odb *one;
	if (one_source(kind, idx, &one) < 0)
		return -1;
	int rc = git_odb_read(out, one, id);
	git_odb_free(one);
	return rc;
}

int gs_read_any(git_odb *odb, const git_oid *id, git_odb_object **out)
{
	int rc = git_odb_read(out, odb, id);
	if (rc == 0 || rc == GIT_ENOTFOUND)
		return rc;
	/* the copy libgit2 found is damaged (or unreadable): the others */
	const git_error *e = git_error_last();
	char *why = xstrdup(e && e->message ? e->message : "unreadable");
	struct strbuf p = STRBUF_INIT;
	if (read_from(LOOSE, NULL, id, out) == 0) {
		rc = 0;
		goto out;
	}
	sb_addf(&p, "%s/objects/pack", git_repo_dir());
	DIR *d = opendir(p.buf);
	struct dirent *de;
	size_t base = p.len;
	while (d && (de = readdir(d))) {
		size_t n = strlen(de->d_name);
		if (strncmp(de->d_name, "pack-", 5) || n < 9 || strcmp(de->d_name + n - 4, ".idx"))
			continue;
		sb_setlen(&p, base);
		sb_addf(&p, "/%s", de->d_name);
		if (read_from(ONE_PACK, p.buf, id, out) == 0) {
			rc = 0;
			break;
		}
	}
	if (d)
		closedir(d);
out:
	if (rc < 0) /* no intact copy: what was wrong with the first */
		git_error_set_str(GIT_ERROR_ODB, why);
	free(why);
	sb_release(&p);
	return rc;
}

int gs_packed_intact(const git_oid *id)
{
	git_odb_object *o = NULL;
	int ok = read_from(PACKS, NULL, id, &o) == 0;
	git_odb_object_free(o);
	git_error_clear();
	return ok;
}
