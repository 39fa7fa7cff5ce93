/* gitxfer: the git side of `cashet export` and `cashet import`. An archive's
 * pack is indexed into a staging directory first and read from there as an
 * alternate of this process only; nothing enters objects/pack until every
 * run in it has been checked, so a bad archive leaves the store untouched. */
#include "git/gitint.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct pack_sink {
	int fd;
	uint64_t bytes;
	int err;
};

static int sink_cb(void *buf, size_t size, void *payload)
{
	struct pack_sink *s = payload;
	const char *p = buf;
	while (size) {
		ssize_t n = write(s->fd, p, size);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			s->err = errno ? errno : EIO;
			return -1;
		}
		p += n;
		size -= (size_t)n;
		s->bytes += (uint64_t)n;
	}
	return 0;
}

int gx_write_pack(const char *dir, const struct strvec *hashes, int fd, uint64_t *bytes)
{
	git_packbuilder *pb = NULL;
	struct pack_sink sink = { fd, 0, 0 };
	int rc = -1;
	if (open_repo(dir) < 0)
		return -1;
	if (git_packbuilder_new(&pb, repo) < 0) {
		git_fail("packbuilder");
		goto out;
	}
	for (size_t i = 0; i < hashes->n; i++) {
		git_oid oid;
		/* insert_commit adds the commit and everything its tree reaches,
		 * never the parents: those stay references the importer may lack. */
		if (git_oid_fromstr(&oid, hashes->v[i]) < 0 || git_packbuilder_insert_commit(pb, &oid) < 0) {
			git_fail(hashes->v[i]);
			goto out;
		}
	}
	if (git_packbuilder_foreach(pb, sink_cb, &sink) < 0) {
		if (sink.err) {
			errno = sink.err;
			err_sys("cannot write the archive");
		} else {
			git_fail("cannot write pack");
		}
		goto out;
	}
	*bytes = sink.bytes;
	rc = 0;
out:
	git_packbuilder_free(pb);
	return rc;
}

static int damaged(const char *file)
{
	struct strbuf what = STRBUF_INIT;
	sb_addf(&what, "%s: the archive's pack is damaged", file);
	git_fail(what.buf);
	sb_release(&what);
	return -1;
}

int gx_stage_pack(const char *dir, const char *file, uint64_t offset, uint64_t size, const char *stage)
{
	git_indexer *idx = NULL;
	git_odb *odb = NULL;
	struct strbuf packdir = STRBUF_INIT;
	int rc = -1;
	if (open_repo(dir) < 0)
		goto out;
	sb_addf(&packdir, "%s/pack", stage);
	if (mkdir(packdir.buf, 0777) < 0 && errno != EEXIST) {
		err_sys("cannot create %s", packdir.buf);
		goto out;
	}
	/* No odb: an archive is never thin, every delta base must be inside it. */
	int ix = gs_index_pack(packdir.buf, file, offset, size, &idx);
	if (ix == GS_INDEX_SHORT)
		err_set("%s: the archive is truncated", file);
	else if (ix == GS_INDEX_DAMAGED)
		damaged(file);
	if (ix < 0)
		goto out;
	if (git_repository_odb(&odb, repo) < 0 || git_odb_add_disk_alternate(odb, stage) < 0) {
		git_fail("cannot read the staged pack");
		goto out;
	}
	rc = 0;
out:
	git_odb_free(odb);
	git_indexer_free(idx);
	sb_release(&packdir);
	return rc;
}

static int plain_name(const char *name)
{
	return *name && strcmp(name, ".") && strcmp(name, "..") && !strchr(name, '/') && !strchr(name, '\\');
}

/* Every entry a blob git could check out or a tree, its object present,
 * names unique within their tree (a blob "x" beside a tree "x" could make
 * a restore write through a symlink). */
static int check_tree(git_odb *odb, const git_tree *tree, const char *hash, int depth)
{
	struct strvec names = STRVEC_INIT;
	int rc = -1;
	size_t n = git_tree_entrycount(tree);
	if (depth > 100) {
		err_set("run %.12s: directories nested too deep", hash);
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		const git_tree_entry *e = git_tree_entry_byindex(tree, i);
		const char *name = git_tree_entry_name(e);
		git_filemode_t mode = git_tree_entry_filemode(e);
		if (!plain_name(name)) {
			err_set("run %.12s: bad file name '%s' in its tree", hash, name);
			goto out;
		}
		sv_push(&names, name);
		if (mode == GIT_FILEMODE_TREE) {
			git_tree *sub = NULL;
			if (git_tree_lookup(&sub, repo, git_tree_entry_id(e)) < 0) {
				git_fail(hash);
				goto out;
			}
			int sr = check_tree(odb, sub, hash, depth + 1);
			git_tree_free(sub);
			if (sr < 0)
				goto out;
		} else if (mode == GIT_FILEMODE_BLOB || mode == GIT_FILEMODE_BLOB_EXECUTABLE ||
			   mode == GIT_FILEMODE_LINK) {
			if (!git_odb_exists(odb, git_tree_entry_id(e))) {
				err_set("run %.12s: file %s is missing from the archive", hash, name);
				goto out;
			}
		} else {
			err_set("run %.12s: unexpected entry '%s' (mode %o) in its tree", hash, name, (unsigned)mode);
			goto out;
		}
	}
	sv_sort(&names);
	for (size_t i = 1; i < names.n; i++)
		if (!strcmp(names.v[i - 1], names.v[i])) {
			err_set("run %.12s: '%s' appears twice in one directory", hash, names.v[i]);
			goto out;
		}
	rc = 0;
out:
	sv_release(&names);
	return rc;
}

int gx_check_run(const char *dir, const char *hash)
{
	git_oid oid;
	git_object *obj = NULL;
	git_tree *tree = NULL;
	git_odb *odb = NULL;
	int rc = -1;
	if (open_repo(dir) < 0)
		return -1;
	if (git_oid_fromstr(&oid, hash) < 0) {
		err_set("'%s' is not a commit id", hash);
		goto out;
	}
	if (git_object_lookup(&obj, repo, &oid, GIT_OBJECT_ANY) < 0) {
		err_set("run %.12s is missing from the archive's pack", hash);
		goto out;
	}
	if (git_object_type(obj) != GIT_OBJECT_COMMIT) {
		err_set("run %.12s is not a commit", hash);
		goto out;
	}
	if (git_commit_tree(&tree, (git_commit *)obj) < 0 || git_repository_odb(&odb, repo) < 0) {
		git_fail(hash);
		goto out;
	}
	rc = check_tree(odb, tree, hash, 0);
out:
	git_odb_free(odb);
	git_tree_free(tree);
	git_object_free(obj);
	return rc;
}

/* The .pack goes before the .idx: a reader that finds an index finds its pack. */
static int publish_order(const char *name)
{
	const char *dot = strrchr(name, '.');
	if (!dot || strncmp(name, "pack-", 5))
		return -1;
	return !strcmp(dot, ".pack") ? 0 : !strcmp(dot, ".idx") ? 2 : 1;
}

int gx_publish_pack(const char *dir, const char *stage, struct strvec *moved)
{
	struct strbuf from = STRBUF_INIT, to = STRBUF_INIT;
	struct strvec names = STRVEC_INIT;
	git_odb *odb = NULL;
	DIR *d = NULL;
	struct dirent *e;
	int rc = -1;
	if (open_repo(dir) < 0)
		goto out;
	sb_addf(&from, "%s/pack", stage);
	if (!(d = opendir(from.buf))) {
		err_sys("cannot read %s", from.buf);
		goto out;
	}
	while ((e = readdir(d)))
		if (publish_order(e->d_name) >= 0)
			sv_push(&names, e->d_name);
	for (int pass = 0; pass < 3; pass++) {
		for (size_t i = 0; i < names.n; i++) {
			if (publish_order(names.v[i]) != pass)
				continue;
			sb_reset(&from);
			sb_reset(&to);
			sb_addf(&from, "%s/pack/%s", stage, names.v[i]);
			sb_addf(&to, "%s/objects/pack/%s", dir, names.v[i]);
			/* Pack names are content hashes: an existing one is this very
			 * pack, and it is not ours to delete if the import fails. */
			if (access(to.buf, F_OK) == 0)
				continue;
			if (rename(from.buf, to.buf) < 0) {
				err_sys("cannot move the pack to %s", to.buf);
				goto out;
			}
			sv_push(moved, to.buf);
		}
	}
	if (git_repository_odb(&odb, repo) == 0)
		git_odb_refresh(odb);
	rc = 0;
out:
	if (d)
		closedir(d);
	git_odb_free(odb);
	sv_release(&names);
	sb_release(&from);
	sb_release(&to);
	return rc;
}

int gx_create_ref(const char *dir, const char *name, const char *hex)
{
	git_oid oid;
	git_reference *ref = NULL;
	if (open_repo(dir) < 0)
		return -1;
	if (git_oid_fromstr(&oid, hex) < 0)
		return err_set("'%s' is not an object id", hex);
	int e = git_reference_create(&ref, repo, name, &oid, 0, "cashet import");
	git_reference_free(ref);
	if (e == GIT_EEXISTS)
		return 1;
	return e < 0 ? git_fail(name) : 0;
}

int gx_delete_ref(const char *dir, const char *name)
{
	if (open_repo(dir) < 0)
		return -1;
	int e = git_reference_remove(repo, name);
	return e < 0 && e != GIT_ENOTFOUND ? git_fail(name) : 0;
}

/* Rewrites `shallow` (sorted, one id a line) through a temporary file, or
 * removes it when no id is left, as git does. */
static int write_shallow_file(const char *dir, const struct strvec *ids)
{
	struct strbuf path = STRBUF_INIT, tmp = STRBUF_INIT, text = STRBUF_INIT;
	int fd = -1, rc = -1;
	sb_addf(&path, "%s/shallow", dir);
	if (!ids->n) {
		if (unlink(path.buf) < 0 && errno != ENOENT) {
			err_sys("cannot remove %s", path.buf);
			goto out;
		}
		rc = 0;
		goto out;
	}
	for (size_t i = 0; i < ids->n; i++)
		if (!i || strcmp(ids->v[i - 1], ids->v[i]))
			sb_addf(&text, "%s\n", ids->v[i]);
	sb_addf(&tmp, "%s.cashet-XXXXXX", path.buf);
	fd = mkstemp(tmp.buf);
	if (fd < 0) {
		err_sys("cannot create %s", tmp.buf);
		goto out;
	}
	for (size_t off = 0; off < text.len;) {
		ssize_t n = write(fd, text.buf + off, text.len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			err_sys("cannot write %s", tmp.buf);
			goto out;
		}
		off += (size_t)n;
	}
	if (fchmod(fd, 0644) < 0 || close(fd) < 0) {
		fd = -1;
		err_sys("cannot write %s", tmp.buf);
		goto out;
	}
	fd = -1;
	if (rename(tmp.buf, path.buf) < 0) {
		err_sys("cannot write %s", path.buf);
		goto out;
	}
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	if (rc < 0 && tmp.len)
		unlink(tmp.buf);
	sb_release(&path);
	sb_release(&tmp);
	sb_release(&text);
	return rc;
}

int gx_shallow_update(const char *dir, const struct strvec *hashes, int add, struct strvec *changed)
{
	struct strbuf path = STRBUF_INIT, text = STRBUF_INIT;
	struct strvec ids = STRVEC_INIT, drop = STRVEC_INIT;
	git_odb *odb = NULL;
	int rc = -1, dirty = 0;
	if (open_repo(dir) < 0 || git_repository_odb(&odb, repo) < 0) {
		git_fail(dir);
		goto out;
	}
	sb_addf(&path, "%s/shallow", dir);
	if (access(path.buf, F_OK) == 0 && read_file_sb(path.buf, &text) < 0)
		goto out;
	for (char *p = text.buf, *nl; p && *p; p = nl ? nl + 1 : NULL) {
		nl = strchr(p, '\n');
		if (nl)
			*nl = '\0';
		if (*p)
			sv_push(&ids, p);
		if (!nl)
			break;
	}
	sv_sort(&ids);
	if (add) {
		for (size_t i = 0; i < hashes->n; i++) {
			git_oid oid;
			git_commit *c = NULL;
			if (sv_sorted_has(&ids, hashes->v[i]))
				continue;
			if (git_oid_fromstr(&oid, hashes->v[i]) < 0 || git_commit_lookup(&c, repo, &oid) < 0) {
				git_fail(hashes->v[i]);
				goto out;
			}
			int orphan = git_commit_parentcount(c) > 0 && !git_odb_exists(odb, git_commit_parent_id(c, 0));
			git_commit_free(c);
			if (orphan) {
				sv_push(changed, hashes->v[i]);
				sv_push(&ids, hashes->v[i]);
				dirty = 1;
			}
		}
		sv_sort(&ids);
	} else {
		struct strvec keep = STRVEC_INIT;
		for (size_t i = 0; i < hashes->n; i++)
			sv_push(&drop, hashes->v[i]);
		sv_sort(&drop);
		for (size_t i = 0; i < ids.n; i++) {
			if (sv_sorted_has(&drop, ids.v[i])) {
				sv_push(changed, ids.v[i]);
				dirty = 1;
			} else {
				sv_push(&keep, ids.v[i]);
			}
		}
		sv_release(&ids);
		ids = keep;
	}
	rc = dirty ? write_shallow_file(dir, &ids) : 0;
out:
	git_odb_free(odb);
	sv_release(&ids);
	sv_release(&drop);
	sb_release(&path);
	sb_release(&text);
	return rc;
}
