/* gitstore: the libgit2 side of the store, loaded on demand (see gitmod.h).
 * A run is a commit whose tree holds meta, stdout, stderr and files/...;
 * its parent is the previous run of the same command line, and
 * refs/cashet/runs/<id> keeps each run reachable until it is removed. */
#include "git/gitint.h"
#include "store/refs.h"
#include "store/tree.h"
#include "store/trust.h"

#include <fcntl.h>
#include <git2.h>
#include <git2/sys/repository.h>
#include <stdio.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The open repository, one per thread: libgit2 objects must not be shared
 * between threads, and `serve` runs the engine in several at once. The
 * state hangs off a pthread key (not _Thread_local: LeakSanitizer cannot
 * scan the dynamic TLS of a dlopen()ed module) and is freed when the
 * thread ends. */
struct git_thread {
	git_repository *opened;
	char *dir;
	int64_t packs_mtime; /* objects/pack when opened: a new pack means reopening */
};
static pthread_key_t repo_key;
static pthread_once_t repo_once = PTHREAD_ONCE_INIT;

static void free_thread(void *p)
{
	struct git_thread *t = p;
	git_repository_free(t->opened);
	free(t->dir);
	free(t);
}

static void make_repo_key(void)
{
	pthread_key_create(&repo_key, free_thread);
}

static struct git_thread *thread_state(void)
{
	pthread_once(&repo_once, make_repo_key);
	struct git_thread *t = pthread_getspecific(repo_key);
	if (!t) {
		t = xcalloc(1, sizeof(*t));
		pthread_setspecific(repo_key, t);
	}
	return t;
}

git_repository *git_repo(void)
{
	return thread_state()->opened;
}

const char *git_repo_dir(void)
{
	return thread_state()->dir;
}

int git_fail(const char *what)
{
	return git_fail_rc(GIT_ERROR, what);
}

int git_fail_rc(int rc, const char *what)
{
	const git_error *e = git_error_last();
	enum err_code code = rc == GIT_ENOTFOUND    ? E_NOTFOUND
			     : rc == GIT_EAMBIGUOUS ? E_AMBIGUOUS
			     : rc == GIT_EEXISTS    ? E_EXISTS
			     : rc == GIT_ELOCKED    ? E_BUSY
						    : E_ERROR;
	return err_setc(code, "%s: %s", what, e && e->message ? e->message : "libgit2 error");
}

/* When objects/pack last changed (its entries: a pack added or removed). */
static int64_t packs_mtime(const char *dir)
{
	struct strbuf p = STRBUF_INIT;
	struct stat sb;
	sb_addf(&p, "%s/objects/pack", dir);
	int64_t m = stat(p.buf, &sb) == 0 ? (int64_t)sb.st_mtim.tv_sec * 1000000000 + sb.st_mtim.tv_nsec : 0;
	sb_release(&p);
	return m;
}

/* A thread keeps its repository open between operations (serve's threads
 * serve many requests), but libgit2 does not always rescan the packs
 * another thread or process added (an imported archive, then exported
 * from another thread: "object not found"), so a changed pack directory
 * means opening again. */
int open_repo(const char *dir)
{
	struct git_thread *t = thread_state();
	int64_t packs = packs_mtime(dir);
	if (t->opened && !strcmp(t->dir, dir) && t->packs_mtime == packs)
		return 0;
	t->packs_mtime = packs;
	git_libgit2_init();
	git_repository_free(t->opened);
	free(t->dir);
	t->opened = NULL;
	t->dir = NULL;
	if (git_repository_open_bare(&t->opened, dir) < 0)
		return git_fail(dir);
	git_odb *odb;
	struct strbuf objects = STRBUF_INIT;
	sb_addf(&objects, "%s/objects", dir);
	int rc = git_repository_odb(&odb, t->opened) < 0 ? git_fail(dir) : gs_guard_odb(odb, objects.buf);
	if (rc == 0)
		git_odb_free(odb);
	sb_release(&objects);
	if (rc < 0) {
		git_repository_free(t->opened);
		t->opened = NULL;
		return -1;
	}
	t->dir = xstrdup(dir);
	return 0;
}

int gs_init(const char *dir)
{
	git_libgit2_init();
	git_repository *r = NULL;
	if (git_repository_open_bare(&r, dir) == 0) {
		git_repository_free(r);
		return 0;
	}
	if (git_repository_init(&r, dir, 1) < 0)
		return git_fail("cannot create git store");
	git_repository_free(r);
	return 0;
}

/* Blob from a file: symlinks store their target, as git does; a large
 * file is streamed (loose.c). A file's digest and size are set from the
 * bytes read (the one read of an output). */
static int write_file_blob(struct run_file *f, git_oid *oid)
{
	const char *src = f->src;
	struct stat sb;
	if (!src) /* a stream kept in memory, or with no bytes */
		return git_blob_create_from_buffer(oid, repo, f->held.buf ? f->held.buf : "", f->held.len) < 0
			       ? git_fail("stream blob")
			       : 0;
	if (lstat(src, &sb) < 0)
		return err_sys("cannot stat %s", src);
	if (S_ISLNK(sb.st_mode)) {
		struct strbuf t = STRBUF_INIT;
		if (read_link(src, &t) < 0) {
			sb_release(&t);
			return -1;
		}
		int rc = git_blob_create_from_buffer(oid, repo, t.buf, t.len);
		sb_release(&t);
		return rc < 0 ? git_fail(src) : 0;
	}
	if ((uint64_t)sb.st_size < LOOSE_MIN) {
		struct strbuf t = STRBUF_INIT;
		int rc = read_file_sb(src, &t);
		if (rc == 0) {
			digest_of(t.buf ? t.buf : "", t.len, &f->xxh);
			f->size = t.len;
			if (git_blob_create_from_buffer(oid, repo, t.buf ? t.buf : "", t.len) < 0)
				rc = git_fail(src);
		}
		sb_release(&t);
		return rc;
	}
	/* libgit2 would read it whole and deflate it: streamed instead */
	int fd = open(src, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return err_sys("cannot open %s", src);
	int rc = fstat(fd, &sb) < 0 ? err_sys("cannot stat %s", src)
				    : gs_write_loose(src, fd, (uint64_t)sb.st_size, oid, &f->xxh);
	if (rc == 0)
		f->size = (uint64_t)sb.st_size;
	close(fd);
	return rc;
}

/* Where a run's meta and trees go: its pack when it has one, else loose
 * objects (no tree is checked for its entries: every one was just
 * written or found in the store). */
struct obj_sink {
	struct packw *pw;
	git_odb *odb;
};

static int sink_put(struct obj_sink *k, git_object_t type, const void *data, size_t len,
		    unsigned char oid[TREE_OID_RAW])
{
	git_oid id;
	int rc = k->pw                                             ? gs_packw_put(k->pw, type, data, len, &id)
		 : git_odb_write(&id, k->odb, data, len, type) < 0 ? git_fail("cannot write an object")
								   : 0;
	memcpy(oid, id.id, TREE_OID_RAW);
	return rc;
}

/* tree_write's writer */
static int put_tree(void *ctx, const void *data, size_t len, unsigned char oid[TREE_OID_RAW])
{
	return sink_put(ctx, GIT_OBJECT_TREE, data, len, oid);
}

static void line_ref(const struct run_record *r, struct strbuf *sb)
{
	char hx[DIGEST_HEX];
	digest_hex(&r->line, hx);
	sb_addf(sb, "refs/cashet/lines/%s", hx);
}

/* Writes the commit, signed with key when it is not NULL: the signature
 * covers the commit's bytes and goes in its gpgsig header, as git's
 * `commit -S` with gpg.format=ssh does it. */
static int write_commit(git_oid *oid, const git_signature *sig, const char *msg, const git_tree *tree,
			const git_commit *parent, const char *key, const char *tmpdir)
{
	git_buf body = { 0 };
	struct strbuf armor = STRBUF_INIT;
	const git_commit *parents[1] = { parent };
	int rc = -1;
	if (!key) {
		if (git_commit_create(oid, repo, NULL, sig, sig, NULL, msg, tree, parent ? 1 : 0, parents) < 0)
			return git_fail("cannot write commit");
		return 0;
	}
	if (git_commit_create_buffer(&body, repo, sig, sig, NULL, msg, tree, parent ? 1 : 0, parents) < 0) {
		git_fail("cannot write commit");
		goto out;
	}
	if (trust_sign(key, tmpdir, body.ptr, body.size, &armor) < 0)
		goto out;
	/* libgit2 indents the lines after the first; a last newline would
	 * end the header block early */
	while (armor.len && armor.buf[armor.len - 1] == '\n')
		sb_setlen(&armor, armor.len - 1);
	if (git_commit_create_with_signature(oid, repo, body.ptr, armor.buf, "gpgsig") < 0) {
		git_fail("cannot write signed commit");
		goto out;
	}
	rc = 0;
out:
	git_buf_dispose(&body);
	sb_release(&armor);
	return rc;
}

int gs_commit_signature(const char *dir, const char *hash, struct strbuf *sig, struct strbuf *data)
{
	git_buf s = { 0 }, d = { 0 };
	git_oid oid;
	int rc;
	if (open_repo(dir) < 0)
		return -1;
	if (git_oid_fromstr(&oid, hash) < 0)
		return err_set("'%s' is not a commit id", hash);
	int e = git_commit_extract_signature(&s, &d, repo, &oid, NULL);
	if (e == GIT_ENOTFOUND && git_error_last() && git_error_last()->klass == GIT_ERROR_OBJECT) {
		rc = 0; /* no gpgsig header */
	} else if (e < 0) {
		rc = git_fail(hash);
	} else {
		sb_add(sig, s.ptr, s.size);
		if (sig->len && sig->buf[sig->len - 1] != '\n')
			sb_addc(sig, '\n');
		sb_add(data, d.ptr, d.size);
		rc = 1;
	}
	git_buf_dispose(&s);
	git_buf_dispose(&d);
	return rc;
}

/* A file whose blob a run of many goes into its own pack (packw.c). */
static int packable(const struct run_file *f)
{
	return f->kind != FILE_DIR && f->mode != 0120000 && f->size < LOOSE_MIN;
}

/* A pack of outputs written while the command still runs (exec/early.c):
 * on one thread at a time, the other CPU being the command's. A file that
 * cannot be read (gone again) is left out, for the save to read. */
struct early_pack {
	char *dir; /* the repository each thread opens (open_repo) */
	struct packw *pw;
	struct run_file **files;
	size_t n, next, packed;
};

struct early_pack *gs_early_begin(const char *dir, struct run_file **files, size_t n)
{
	struct packw *pw = NULL;
	if (open_repo(dir) < 0 || gs_packw_begin(dir, &pw) < 0)
		return NULL;
	if (gs_packw_plan(pw, files, n, 0, 0) < 0) {
		gs_packw_abort(pw);
		return NULL;
	}
	struct early_pack *p = xcalloc(1, sizeof(*p));
	p->dir = xstrdup(dir);
	p->pw = pw;
	p->files = files;
	p->n = n;
	return p;
}

int gs_early_add(struct early_pack *p, const int *stop)
{
	for (; p->next < p->n; p->next++) {
		if (__atomic_load_n(stop, __ATOMIC_RELAXED))
			return 0;
		struct run_file *f = p->files[p->next];
		git_oid oid;
		f->early.set = 0;
		if (gs_packw_add(p->pw, f, &oid) < 0) {
			err_clear();
			continue;
		}
		/* the store's already: no early blob, as only this pack's
		 * blobs are known to be there by the save */
		if (!gs_packw_has(p->pw, oid.id))
			continue;
		memcpy(f->early.id, oid.id, GIT_OID_RAWSZ);
		f->early.xxh = f->xxh;
		f->early.size = f->size;
		f->early.set = 1;
		p->packed++;
	}
	return 1;
}

int gs_early_end(struct early_pack *p, char name[OID_HEX])
{
	name[0] = '\0';
	/* what was added, even when stopped short (the checksum read back) */
	int rc = -1;
	if (open_repo(p->dir) < 0) /* on this thread */
		gs_packw_abort(p->pw);
	else
		rc = gs_packw_finish(p->pw, gs_want_fsync(), name);
	for (size_t i = 0; rc < 0 && i < p->next; i++)
		p->files[i]->early.set = 0;
	rc = rc < 0 ? -1 : (int)p->packed;
	free(p->dir);
	free(p);
	return rc;
}

int gs_save_run(const char *dir, struct run_record *r, const char *signing_key, const char *tmpdir,
		void (*blobs_saved)(void *ctx), void *ctx)
{
	git_tree *tree = NULL;
	git_commit *parent = NULL;
	git_signature *sig = NULL;
	struct packw *pw = NULL;
	struct obj_sink sink = { NULL, NULL };
	struct run_file **ahead = NULL;
	struct tree_entry *e = NULL;
	struct strbuf name = STRBUF_INIT, msg = STRBUF_INIT;
	git_oid oid, tree_oid, commit_oid;
	char *cmd = NULL;
	size_t ne = 0;
	int rc = -1;

	if (open_repo(dir) < 0)
		return -1;
	/* the trees' entries: the files (a directory is a line of meta), meta */
	e = xcalloc(r->nfiles + 1, sizeof(*e));
	for (size_t i = 0; i < r->nfiles; i++)
		if (r->files[i].kind != FILE_DIR)
			e[ne++] = (struct tree_entry){ .path = r->files[i].path, .mode = r->files[i].mode };
	e[ne++] = (struct tree_entry){ .path = "meta", .mode = 0100644 };
	if (tree_sort_check(e, ne)) {
		err_set("cannot store the run: git takes no path with an empty, '.', '..' or '.git' part, nor a "
			"name twice, into a tree");
		goto out;
	}
	size_t small = 0;
	for (size_t i = 0; i < r->nfiles; i++)
		small += packable(&r->files[i]);
	if (small >= PACKW_MIN && gs_packw_begin(dir, &pw) < 0)
		goto out;
	if (pw) {
		ahead = xcalloc(small, sizeof(*ahead));
		size_t n = 0;
		for (size_t i = 0; i < r->nfiles; i++)
			if (packable(&r->files[i]) && !r->files[i].early.set)
				ahead[n++] = &r->files[i];
		/* meta and the trees go into the pack too */
		if (gs_packw_plan(pw, ahead, n, 1 + tree_count(e, ne), 1) < 0)
			goto out;
	}
	for (size_t i = 0; i < r->nfiles; i++) {
		struct run_file *f = &r->files[i];
		if (f->kind == FILE_DIR)
			continue;
		/* size is what was hashed; the blob is what the file holds now
		 * (the same: outputs are collected after the command ended) */
		int packed = pw && packable(f);
		if ((packed ? gs_packw_add(pw, f, &oid) : write_file_blob(f, &oid)) < 0)
			goto out;
		git_oid_tostr(f->oid, sizeof(f->oid), &oid);
		memcpy(tree_find(e, ne, f->path)->oid, oid.id, TREE_OID_RAW);
	}
	if (blobs_saved)
		blobs_saved(ctx);
	sink.pw = pw;
	if (!pw && git_repository_odb(&sink.odb, repo) < 0) {
		git_fail("odb");
		goto out;
	}
	/* after the blobs, which set the outputs' digests */
	meta_encode(r, &msg);
	int mr = sink_put(&sink, GIT_OBJECT_BLOB, msg.buf, msg.len, tree_find(e, ne, "meta")->oid);
	sb_reset(&msg);
	if (mr < 0 || tree_write(e, ne, put_tree, &sink, tree_oid.id) < 0)
		goto out;
	/* blobs, meta and trees published at once, before the commit */
	if (pw) {
		int prc = gs_packw_finish(pw, gs_want_fsync(), NULL);
		pw = NULL;
		if (prc < 0)
			goto out;
	}
	if (git_tree_lookup(&tree, repo, &tree_oid) < 0) {
		git_fail("cannot write tree");
		goto out;
	}

	line_ref(r, &name);
	/* store/refs.c, not libgit2's refdb: a packed store holds a ref per run;
	 * without a line ref (a line's first run has none), the newest
	 * indexed run the caller put in r->parent */
	char parent_hex[OID_HEX], newest[OID_HEX];
	memcpy(newest, r->parent, OID_HEX);
	r->parent[0] = '\0';
	int found = store_ref_read(dir, name.buf, parent_hex);
	if (found < 0)
		goto out;
	const char *want = found == 0 ? parent_hex : newest[0] ? newest : NULL;
	if (want && git_oid_fromstr(&oid, want) == 0 && git_commit_lookup(&parent, repo, &oid) == 0)
		memcpy(r->parent, want, OID_HEX);
	git_error_clear();

	if (git_signature_new(&sig, "cashet", "cashet@localhost", r->created_ms / 1000, 0) < 0) {
		git_fail("signature");
		goto out;
	}
	cmd = run_cmdline(r);
	sb_add(&msg, cmd, strlen(cmd) > 200 ? 200 : strlen(cmd));
	sb_addf(&msg, "\n\nstatus %s, exit %d, %lld ms\n", r->ok ? "ok" : "failed", r->exit_code,
		(long long)r->duration_ms);
	if (write_commit(&commit_oid, sig, msg.buf, tree, parent, signing_key, tmpdir) < 0)
		goto out;
	git_oid_tostr(r->hash, sizeof(r->hash), &commit_oid);

	/* The run ref first: a run that has it is complete and can be reindexed. */
	sb_reset(&msg);
	sb_addf(&msg, "refs/cashet/runs/%s", r->hash);
	if (store_ref_write(dir, msg.buf, r->hash) < 0 ||
	    (r->parent[0] && store_ref_write(dir, name.buf, r->hash) < 0)) /* see store_odb_save */
		goto out;
	rc = 0;
out:
	gs_packw_abort(pw);
	git_odb_free(sink.odb);
	free(ahead);
	free(e);
	git_signature_free(sig);
	git_commit_free(parent);
	git_tree_free(tree);
	sb_release(&name);
	sb_release(&msg);
	free(cmd);
	return rc;
}

int gs_read_blob(const char *dir, const char *hex, struct strbuf *out)
{
	git_oid oid;
	git_odb *odb = NULL;
	git_odb_object *o = NULL;
	int rc = -1;
	if (open_repo(dir) < 0)
		return -1;
	if (git_oid_fromstr(&oid, hex) < 0 || git_repository_odb(&odb, repo) < 0 ||
	    (rc = gs_read_any(odb, &oid, &o)) < 0) {
		rc = git_fail_rc(rc, hex);
	} else if (git_odb_object_type(o) != GIT_OBJECT_BLOB) {
		rc = err_set("%s: not a blob", hex);
	} else {
		sb_add(out, git_odb_object_data(o), git_odb_object_size(o));
		rc = 0;
	}
	git_odb_object_free(o);
	git_odb_free(odb);
	return rc;
}

static int list_cb(const char *name, void *payload)
{
	const char *slash = strrchr(name, '/');
	sv_push(payload, slash ? slash + 1 : name);
	return 0;
}

int gs_list_runs(const char *dir, struct strvec *out)
{
	if (open_repo(dir) < 0)
		return -1;
	if (git_reference_foreach_glob(repo, "refs/cashet/runs/*", list_cb, out) < 0)
		return git_fail("cannot list runs");
	return 0;
}

struct walk_ctx {
	struct run_record *r;
	struct strbuf *meta;
	struct fsck_pass *fsck;
	git_oid *trees; /* with fsck: the subtrees walked, seen once the walk succeeds */
	size_t ntrees;
	int rc;
};

/* A blob of the tree: meta's text, or a file of the run (with fsck, its
 * content when small; an unreadable one is left without: fsck's reading of
 * the run's blobs reports it). */
static int walk_blob(struct walk_ctx *w, const char *path, const git_tree_entry *e)
{
	const git_oid *id = git_tree_entry_id(e);
	if (!strcmp(path, "meta")) {
		if (!w->fsck)
			return gs_read_blob(git_repo_dir(), git_oid_tostr_s(id), w->meta);
		return gs_fsck_blob(w->fsck, id, 1, w->meta) < 0 ? -1 : 0;
	}
	int kind = !strcmp(path, "stdout")         ? FILE_STDOUT
		   : !strcmp(path, "stderr")       ? FILE_STDERR
		   : !strcmp(path, "streams")      ? FILE_STREAMS
		   : !strncmp(path, "sources/", 8) ? FILE_SOURCE
						   : FILE_OUTPUT;
	struct run_file *f = run_add_file(w->r, kind, path);
	f->mode = git_tree_entry_filemode(e);
	git_oid_tostr(f->oid, sizeof(f->oid), id);
	if (w->fsck) {
		struct strbuf content = STRBUF_INIT;
		if (gs_fsck_blob(w->fsck, id, 0, &content) == 0) {
			f->datalen = content.len;
			f->data = (unsigned char *)(content.buf ? sb_detach(&content) : xstrdup(""));
		}
		err_clear();
		sb_release(&content);
	}
	return 0;
}

static int walk_cb(const char *root, const git_tree_entry *e, void *payload)
{
	struct walk_ctx *w = payload;
	if (git_tree_entry_type(e) == GIT_OBJECT_TREE && w->fsck) {
		w->trees = xrealloc(w->trees, (w->ntrees + 1) * sizeof(*w->trees));
		git_oid_cpy(&w->trees[w->ntrees++], git_tree_entry_id(e));
	}
	if (git_tree_entry_type(e) != GIT_OBJECT_BLOB)
		return 0;
	struct strbuf path = STRBUF_INIT;
	sb_adds(&path, root);
	sb_adds(&path, git_tree_entry_name(e));
	if (walk_blob(w, path.buf, e) < 0)
		w->rc = -1;
	sb_release(&path);
	return w->rc < 0 ? -1 : 0;
}

int gs_read_run(const char *hash, struct strbuf *meta, struct run_record *r, struct fsck_pass *p)
{
	git_oid oid;
	git_commit *c = NULL;
	git_tree *tree = NULL;
	struct walk_ctx w = { r, meta, p, NULL, 0, 0 };
	int rc = -1;
	if (git_oid_fromstr(&oid, hash) < 0 || git_commit_lookup(&c, repo, &oid) < 0 || git_commit_tree(&tree, c) < 0) {
		git_fail(hash);
		goto out;
	}
	snprintf(r->hash, sizeof(r->hash), "%s", hash);
	r->parent[0] = '\0';
	if (git_commit_parentcount(c) > 0)
		git_oid_tostr(r->parent, sizeof(r->parent), git_commit_parent_id(c, 0));
	if (git_tree_walk(tree, GIT_TREEWALK_PRE, walk_cb, &w) < 0 || w.rc < 0) {
		if (w.rc == 0)
			git_fail(hash);
		goto out;
	}
	if (p) {
		/* each of them read whole by libgit2, its SHA-1 checked */
		gs_fsck_seen(p, &oid);
		gs_fsck_seen(p, git_tree_id(tree));
		for (size_t i = 0; i < w.ntrees; i++)
			gs_fsck_seen(p, &w.trees[i]);
	}
	rc = 0;
out:
	free(w.trees);
	git_tree_free(tree);
	git_commit_free(c);
	return rc;
}

int gs_load_run(const char *dir, const char *hash, struct strbuf *meta, struct run_record *r)
{
	if (open_repo(dir) < 0)
		return -1;
	/* a run's objects are read once (reindex reads every run: filling
	 * and freeing libgit2's cache cost a fifth of it, and 200 MB) */
	git_libgit2_opts(GIT_OPT_ENABLE_CACHING, 0);
	int rc = gs_read_run(hash, meta, r, NULL);
	git_libgit2_opts(GIT_OPT_ENABLE_CACHING, 1);
	return rc;
}

int gs_delete_run(const char *dir, const char *hash)
{
	struct strbuf name = STRBUF_INIT;
	int rc = 0;
	if (open_repo(dir) < 0)
		return -1;
	sb_addf(&name, "refs/cashet/runs/%s", hash);
	int e = git_reference_remove(repo, name.buf);
	if (e < 0 && e != GIT_ENOTFOUND)
		rc = git_fail(name.buf);
	sb_release(&name);
	return rc;
}

struct diff_ctx {
	struct diff_hunk **hunks;
	size_t *n;
	struct strbuf *patch;
};

static int hunk_cb(const git_diff_delta *d, const git_diff_hunk *h, void *payload)
{
	struct diff_ctx *c = payload;
	*c->hunks = xrealloc(*c->hunks, (*c->n + 1) * sizeof(**c->hunks));
	(*c->hunks)[(*c->n)++] = (struct diff_hunk){ h->old_start, h->old_lines, h->new_start, h->new_lines };
	if (c->patch)
		sb_add(c->patch, h->header, h->header_len);
	return 0;
}

static int line_cb(const git_diff_delta *d, const git_diff_hunk *h, const git_diff_line *l, void *payload)
{
	struct diff_ctx *c = payload;
	if (!c->patch)
		return 0;
	if (l->origin == GIT_DIFF_LINE_CONTEXT || l->origin == GIT_DIFF_LINE_ADDITION ||
	    l->origin == GIT_DIFF_LINE_DELETION)
		sb_addc(c->patch, l->origin);
	sb_add(c->patch, l->content, l->content_len);
	if (l->origin == GIT_DIFF_LINE_CONTEXT_EOFNL || l->origin == GIT_DIFF_LINE_ADD_EOFNL ||
	    l->origin == GIT_DIFF_LINE_DEL_EOFNL)
		sb_adds(c->patch, "");
	return 0;
}

int gs_diff_text(const char *a, size_t alen, const char *b, size_t blen, const char *label, int context,
		 struct diff_hunk **hunks, size_t *nhunks, struct strbuf *patch)
{
	git_diff_options opts;
	struct diff_ctx c = { hunks, nhunks, patch };
	git_libgit2_init();
	git_diff_options_init(&opts, GIT_DIFF_OPTIONS_VERSION);
	opts.context_lines = (uint32_t)context;
	opts.flags |= GIT_DIFF_FORCE_TEXT;
	if (patch)
		sb_addf(patch, "--- a/%s\n+++ b/%s\n", label, label);
	int rc = git_diff_buffers(a, alen, label, b, blen, label, &opts, NULL, NULL, hunk_cb, line_cb, &c);
	return rc < 0 ? git_fail("diff") : 0;
}
