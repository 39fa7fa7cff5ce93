/* outputs: the files a run produced. Stored paths are "files/<root-relative>"
 * inside the project and "abs/<absolute>" outside it, so a tree entry never
 * holds "..", and a checkout elsewhere restores into its own root. */
#include "store/outputs.h"
#include "key/fp.h"
#include "util/fsrec.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <string.h>
#include <unistd.h>

void outputs_local_path(const struct store *st, const char *stored, struct strbuf *out)
{
	sb_reset(out);
	if (!strncmp(stored, "files/", 6))
		sb_addf(out, "%s/%s", store_root(st), stored + 6);
	else if (!strncmp(stored, "abs/", 4))
		sb_addf(out, "/%s", stored + 4);
	else
		sb_adds(out, stored);
}

static void stored_path(const struct store *st, const char *path, struct strbuf *out)
{
	struct strbuf rel = STRBUF_INIT;
	fp_store_path(st, NULL, path, &rel);
	sb_reset(out);
	sb_adds(out, rel.buf[0] == '/' ? "abs" : "files/");
	sb_adds(out, rel.buf);
	sb_release(&rel);
}

/* out = dir/name */
static void join_path(struct strbuf *out, const char *dir, const char *name)
{
	sb_reset(out);
	sb_adds(out, dir);
	sb_addc(out, '/');
	sb_adds(out, name);
}

/* The stored paths of a run's files, hashed: a directory of 20,000
 * outputs was 200 million strcmp()s with a scan of the list per file. */
struct pathset {
	size_t *slot; /* index + 1 into r->files, 0 empty */
	size_t cap;
};

static size_t *pathset_find(struct pathset *ps, const struct run_record *r, const char *stored)
{
	struct digest d;
	digest_of(stored, strlen(stored), &d);
	size_t i;
	memcpy(&i, d.b, sizeof(i));
	for (i &= ps->cap - 1; ps->slot[i]; i = (i + 1) & (ps->cap - 1))
		if (!strcmp(r->files[ps->slot[i] - 1].path, stored))
			break;
	return &ps->slot[i];
}

/* Adds every file of r from index from on (the table kept under half full). */
static void pathset_add(struct pathset *ps, const struct run_record *r, size_t from)
{
	if (2 * r->nfiles >= ps->cap) {
		free(ps->slot);
		ps->cap = ps->cap ? ps->cap : 256;
		while (2 * r->nfiles >= ps->cap)
			ps->cap *= 2;
		ps->slot = xcalloc(ps->cap, sizeof(*ps->slot));
		from = 0;
	}
	for (size_t i = from; i < r->nfiles; i++) {
		size_t *s = pathset_find(ps, r, r->files[i].path);
		if (!*s)
			*s = i + 1;
	}
}

static int have_file(struct pathset *ps, const struct run_record *r, const char *stored)
{
	return *pathset_find(ps, r, stored) != 0;
}

/* Every directory of a declared output directory is recorded, empty or
 * not, so a replay makes the empty ones and knows what a directory holds
 * (whatever else is in it goes). Never the project's root or "/". */
static void add_dir(struct store *st, const char *abs, mode_t mode, struct run_record *r, struct pathset *ps)
{
	struct strbuf sp = STRBUF_INIT;
	stored_path(st, abs, &sp);
	if (strcmp(sp.buf, "files/.") && strcmp(sp.buf, "abs/") && strcmp(sp.buf, "abs") && !have_file(ps, r, sp.buf)) {
		struct run_file *f = run_add_file(r, FILE_DIR, sp.buf);
		f->mode = 040000;
		f->perm = (int)(mode & 0777);
		pathset_add(ps, r, r->nfiles - 1);
	}
	sb_release(&sp);
}

int outputs_is_store(const struct store *st, int dirfd, const char *name, const char *abs)
{
	if (store_holds(st, abs))
		return 1;
	if (strcmp(name, STORE_DIRNAME))
		return 0;
	int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	int head = fd >= 0 && faccessat(fd, "HEAD", F_OK, AT_SYMLINK_NOFOLLOW) == 0;
	if (fd >= 0)
		close(fd);
	return head;
}

/* path is named in messages as the user declared it; abs is where it is,
 * name in the directory atfd when that is open (-1: abs alone): a stat
 * of one component, not a walk of the whole path for each file. */
static int collect(struct store *st, const char *path, const char *abs, int atfd, const char *name,
		   struct run_record *r, struct pathset *ps, int depth)
{
	struct stat sb;
	struct strbuf sp = STRBUF_INIT, child = STRBUF_INIT;
	DIR *d = NULL;
	int rc = -1;
	if (atfd < 0)
		name = abs;
	if (fstatat(atfd < 0 ? AT_FDCWD : atfd, name, &sb, AT_SYMLINK_NOFOLLOW) < 0) {
		err_sys("declared output %s was not produced", path);
		goto out;
	}
	if (S_ISDIR(sb.st_mode)) {
		if (depth > 64) {
			err_set("output %s: directories nested too deep", path);
			goto out;
		}
		add_dir(st, abs, sb.st_mode, r, ps);
		d = opendir(abs);
		struct strvec names = STRVEC_INIT;
		struct dirent *e;
		if (!d) {
			err_sys("cannot read output directory %s", path);
			goto out;
		}
		while ((e = readdir(d)))
			if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
				sv_push(&names, e->d_name);
		sv_sort(&names);
		rc = 0;
		for (size_t i = 0; rc == 0 && i < names.n; i++) {
			/* not sb_addf: a tenth of walking 20,000 outputs */
			join_path(&sp, path, names.v[i]);
			join_path(&child, abs, names.v[i]);
			/* a declared directory holding the store (-o .) is
			 * stored without it */
			if (!outputs_is_store(st, dirfd(d), names.v[i], child.buf))
				rc = collect(st, sp.buf, child.buf, dirfd(d), names.v[i], r, ps, depth + 1);
		}
		sv_release(&names);
		goto out;
	}
	stored_path(st, abs, &sp);
	if (have_file(ps, r, sp.buf)) {
		rc = 0; /* declared twice (a file inside a declared directory) */
		goto out;
	}
	struct run_file *f = run_add_file(r, FILE_OUTPUT, sp.buf);
	pathset_add(ps, r, r->nfiles - 1);
	f->src = xstrdup(abs);
	if (S_ISLNK(sb.st_mode)) {
		char target[PATH_MAX];
		ssize_t n = readlinkat(atfd < 0 ? AT_FDCWD : atfd, name, target, sizeof(target));
		if (n < 0) {
			err_sys("cannot read link %s", path);
			goto out;
		}
		f->mode = 0120000;
		f->size = (uint64_t)n;
		digest_of(target, (size_t)n, &f->xxh);
	} else if (S_ISREG(sb.st_mode)) {
		/* read once, by the store's writer, which sets the digest and
		 * size of what it stores: a read here too was a fifth of the
		 * store of a directory of 20,000 files */
		f->mode = (sb.st_mode & 0111) ? 0100755 : 0100644;
		f->perm = (int)(sb.st_mode & 0777);
		f->size = (uint64_t)sb.st_size;
		f->seen = file_sig_of(&sb);
	} else {
		err_set("output %s is not a regular file, directory or symlink", path);
		goto out;
	}
	rc = 0;
out:
	if (d)
		closedir(d);
	sb_release(&sp);
	sb_release(&child);
	return rc;
}

int outputs_collect(struct store *st, const char *cwd, const struct strvec *declared, int missing_ok,
		    struct run_record *r)
{
	struct strbuf abs = STRBUF_INIT;
	struct stat sb;
	struct pathset ps = { NULL, 0 };
	int rc = 0;
	pathset_add(&ps, r, 0);
	for (size_t i = 0; rc == 0 && i < declared->n; i++) {
		path_absolute(cwd, declared->v[i], &abs);
		if (missing_ok && lstat(abs.buf, &sb) < 0 && errno == ENOENT)
			continue;
		rc = collect(st, declared->v[i], abs.buf, -1, NULL, r, &ps, 0);
	}
	free(ps.slot);
	sb_release(&abs);
	return rc;
}

struct outputs_job {
	struct store *st;
	const char *cwd;
	const struct strvec *declared;
	int missing_ok, rc, started;
	struct run_record found;
	char *err;
	pthread_t thread;
};

static void *collect_main(void *arg)
{
	struct outputs_job *j = arg;
	/* no store state is touched: its root and directory only */
	j->rc = outputs_collect(j->st, j->cwd, j->declared, j->missing_ok, &j->found);
	if (j->rc < 0)
		j->err = xstrdup(err_msg()); /* this thread's: said on the caller's */
	return NULL;
}

struct outputs_job *outputs_collect_start(struct store *st, const char *cwd, const struct strvec *declared,
					  int missing_ok, int threaded)
{
	struct outputs_job *j = xcalloc(1, sizeof(*j));
	j->st = st;
	j->cwd = cwd;
	j->declared = declared;
	j->missing_ok = missing_ok;
	j->started = threaded && declared->n && sysconf(_SC_NPROCESSORS_ONLN) > 1 &&
		     thread_start(&j->thread, collect_main, j, 0) == 0;
	return j;
}

int outputs_collect_finish(struct outputs_job *j, struct run_record *r)
{
	if (j->started)
		pthread_join(j->thread, NULL);
	else if (r)
		collect_main(j);
	int rc = r ? j->rc : 0;
	if (rc < 0) {
		err_set("%s", j->err);
	} else if (r) {
		/* moved: --auto-outputs never finds a declared output's file */
		for (size_t i = 0; i < j->found.nfiles; i++) {
			struct run_file *f = &j->found.files[i], *to = run_add_file(r, f->kind, f->path);
			free(to->path);
			*to = *f;
			memset(f, 0, sizeof(*f));
		}
	}
	run_record_free(&j->found);
	free(j->err);
	free(j);
	return rc;
}

int outputs_add_sources(struct store *st, struct run_record *r)
{
	struct strbuf sp = STRBUF_INIT, local = STRBUF_INIT;
	int rc = 0;
	size_t nparts = r->nparts;
	for (size_t i = 0; rc == 0 && i < nparts; i++) {
		const struct run_part *p = &r->parts[i];
		if ((strcmp(p->kind, "script") && strcmp(p->kind, "source") && strcmp(p->kind, "dep")) ||
		    p->name[0] == '/')
			continue;
		sb_reset(&sp);
		sb_addf(&sp, "sources/%s", p->name);
		sb_reset(&local);
		sb_addf(&local, "%s/%s", store_root(st), p->name);
		struct run_file *f = run_add_file(r, FILE_SOURCE, sp.buf);
		f->src = xstrdup(local.buf);
		f->mode = 0100644;
		rc = digest_file(local.buf, &f->xxh, &f->size);
	}
	sb_release(&sp);
	sb_release(&local);
	return rc;
}

/* The permission bits f is restored with: those the run produced, or for
 * a run from before they were kept, what its git mode says. */
static mode_t file_perm(const struct run_file *f)
{
	if (f->perm >= 0)
		return (mode_t)f->perm;
	return f->mode == 0100755 ? 0755 : 0644;
}

/* Same content and mode already there? Then leave it (and its mtime) alone. */
static int unchanged(struct store *st, const struct run_file *f, const char *path)
{
	struct stat sb;
	struct digest d;
	if (lstat(path, &sb) < 0)
		return 0;
	if (f->mode == 0120000) {
		char target[PATH_MAX];
		ssize_t n = S_ISLNK(sb.st_mode) ? readlink(path, target, sizeof(target)) : -1;
		if (n < 0)
			return 0;
		digest_of(target, (size_t)n, &d);
		return digest_eq(&d, &f->xxh);
	}
	if (!S_ISREG(sb.st_mode) || (uint64_t)sb.st_size != f->size || (sb.st_mode & 0777) != file_perm(f))
		return 0;
	if (store_file_digest(st, path, &sb, &d) < 0) {
		err_clear();
		return 0;
	}
	return digest_eq(&d, &f->xxh);
}

/* Opens the directory that will hold rel's last component, walking down
 * from dirfd one component at a time and making the missing ones. With
 * nofollow (outputs inside the project) no component may be a symbolic
 * link: whoever made it (another run's restored output, say), a replay
 * never writes through one, so it never writes outside the project.
 * Returns the directory's fd and points *name at the last component. */
static int open_parent(int dirfd, const char *shown, const char *rel, int nofollow, const char **name,
		       struct strvec *made)
{
	struct strbuf comp = STRBUF_INIT;
	int fd = dup(dirfd);
	if (fd < 0) {
		err_sys("cannot restore %s", shown);
		goto fail;
	}
	for (const char *p = rel;;) {
		size_t len = strcspn(p, "/");
		if (!p[len]) {
			if (!len || (len == 1 && p[0] == '.') || (len == 2 && !strncmp(p, "..", 2))) {
				err_set("refusing to restore %s: not a plain path", shown);
				goto fail;
			}
			*name = p;
			break;
		}
		sb_reset(&comp);
		sb_add(&comp, p, len);
		p += len + 1;
		if (!len || !strcmp(comp.buf, ".") || !strcmp(comp.buf, "..")) {
			err_set("refusing to restore %s: not a plain path", shown);
			goto fail;
		}
		int flags = O_RDONLY | O_DIRECTORY | O_CLOEXEC | (nofollow ? O_NOFOLLOW : 0);
		int sub = openat(fd, comp.buf, flags);
		if (sub < 0 && errno == ENOENT) {
			int mk = mkdirat(fd, comp.buf, 0777);
			if (mk == 0)
				sv_push_nocopy(made, xstrndup(rel, (size_t)(p - 1 - rel)));
			if (mk == 0 || errno == EEXIST)
				sub = openat(fd, comp.buf, flags);
		}
		if (sub < 0) {
			struct stat sb;
			if (nofollow && fstatat(fd, comp.buf, &sb, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(sb.st_mode))
				err_set("refusing to restore %s: %.*s is a symbolic link, and a replay never writes "
					"through one",
					shown, (int)(p - 1 - rel), rel);
			else
				err_sys("cannot restore %s", shown);
			goto fail;
		}
		close(fd);
		fd = sub;
	}
	sb_release(&comp);
	return fd;
fail:
	if (fd >= 0)
		close(fd);
	sb_release(&comp);
	return -1;
}

/* A temp name is the name, TMP_INFIX, the writer's pid and its host's
 * name (up to its first dot): a project shared over NFS is restored into
 * from several hosts, and only this host's pids can be asked whether
 * they are alive (a name without its host is an older cashet's). */
#define TMP_INFIX ".cashet-tmp."

static char host_name[65];
static pthread_once_t host_once = PTHREAD_ONCE_INIT;

static void host_init(void)
{
	if (gethostname(host_name, sizeof(host_name) - 1) < 0)
		host_name[0] = 0;
	host_name[strcspn(host_name, "./")] = 0;
}

static void tmp_suffix(struct strbuf *out)
{
	pthread_once(&host_once, host_init);
	sb_addf(out, TMP_INFIX "%ld%s%s", (long)getpid(), host_name[0] ? "." : "", host_name);
}

static void tmp_name(const char *name, struct strbuf *out)
{
	sb_reset(out);
	sb_adds(out, name);
	tmp_suffix(out);
}

/* Writes f's content as name's temp file in the directory dirfd, fully
 * checked; swap() renames it over name, so the last component is
 * replaced, never followed. In place (a directory built aside, where
 * nothing was): as name itself. */
static int stage_one(struct store *st, const struct run_file *f, int dirfd, const char *name, const char *path,
		     int in_place)
{
	struct strbuf tmp = STRBUF_INIT, content = STRBUF_INIT;
	int rc = -1, fd = -1;
	if (in_place) {
		sb_adds(&tmp, name);
	} else {
		tmp_name(name, &tmp);
		unlinkat(dirfd, tmp.buf, 0);
	}
	stat_memo_clear(); /* a file is written: what was seen before may not hold */
	fsrec_spoil();
	if (f->mode == 0120000) {
		if (store_blob_read(st, f, &content) < 0)
			goto out;
		if (symlinkat(content.buf, dirfd, tmp.buf) < 0) {
			err_sys("cannot create %s", path);
			goto out;
		}
	} else {
		/* private while it is written; the run's bits once it is in */
		fd = openat(dirfd, tmp.buf, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd < 0) {
			err_sys("cannot create %s", path);
			goto out;
		}
		if (store_blob_to_fd(st, f, fd) < 0) {
			/* a bad stored blob says so itself; a write that
			 * failed names the file it was for */
			if (err_code() != E_CORRUPT)
				err_set("cannot write %s: %s", path, err_msg());
			unlinkat(dirfd, tmp.buf, 0);
			goto out;
		}
		/* The umask must not change the recorded mode. */
		if (fchmod(fd, file_perm(f)) < 0) {
			err_sys("cannot set the mode of %s", path);
			unlinkat(dirfd, tmp.buf, 0);
			goto out;
		}
	}
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	sb_release(&tmp);
	sb_release(&content);
	return rc;
}

/* A directory of the run: made if missing, and writable by its owner
 * until the end of the restore (the run's bits, 0555 say, are set last). */
static int ensure_dir(int dirfd, const char *name, const char *path)
{
	struct stat sb;
	if (mkdirat(dirfd, name, 0700) == 0) {
		fsrec_spoil(); /* a recording vouches for a restore that wrote nothing */
		return 1;      /* made */
	}
	if (errno != EEXIST)
		return err_sys("cannot restore %s", path);
	if (fstatat(dirfd, name, &sb, AT_SYMLINK_NOFOLLOW) < 0)
		return err_sys("cannot restore %s", path);
	if (!S_ISDIR(sb.st_mode))
		return err_set("cannot restore the directory %s: something else is in its place", path);
	if ((sb.st_mode & 0700) != 0700) {
		fsrec_spoil();
		if (fchmodat(dirfd, name, (sb.st_mode & 07777) | 0700, 0) < 0)
			return err_sys("cannot restore %s", path);
	}
	return 0;
}

static int dir_entries(int fd, struct strvec *names);

/* Removes name from dirfd, a directory with everything in it, following
 * no symbolic link (a link is removed, not what it points to). */
static int remove_entry(int dirfd, const char *name, const char *path, int depth)
{
	struct stat sb;
	if (fstatat(dirfd, name, &sb, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : err_sys("cannot remove %s", path);
	fsrec_spoil();
	if (!S_ISDIR(sb.st_mode)) {
		if (unlinkat(dirfd, name, 0) < 0 && errno != ENOENT)
			return err_sys("cannot remove %s", path);
		return 0;
	}
	if (depth > 64)
		return err_set("cannot remove %s: directories nested too deep", path);
	if ((sb.st_mode & 0700) != 0700)
		fchmodat(dirfd, name, (sb.st_mode & 07777) | 0700, 0);
	int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	struct strvec names = STRVEC_INIT;
	struct strbuf sub = STRBUF_INIT;
	int rc = 0;
	if (fd < 0 || dir_entries(fd, &names) < 0) {
		rc = err_sys("cannot remove %s", path);
		goto out;
	}
	for (size_t i = 0; rc == 0 && i < names.n; i++) {
		sb_reset(&sub);
		sb_addf(&sub, "%s/%s", path, names.v[i]);
		rc = remove_entry(fd, names.v[i], sub.buf, depth + 1);
	}
	if (rc == 0 && unlinkat(dirfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
		rc = err_sys("cannot remove %s", path);
out:
	if (fd >= 0)
		close(fd);
	sv_release(&names);
	sb_release(&sub);
	return rc;
}

/* The names in directory fd, "." and ".." left out. fd stays open. */
static int dir_entries(int fd, struct strvec *names)
{
	int dup_fd = dup(fd);
	DIR *d = dup_fd >= 0 ? fdopendir(dup_fd) : NULL;
	struct dirent *e;
	if (!d) {
		if (dup_fd >= 0)
			close(dup_fd);
		return -1;
	}
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			sv_push(names, e->d_name);
	closedir(d);
	return 0;
}

/* Removes what a restore killed part-way left in dirfd: a directory it
 * was building or a file it was writing, <name>.cashet-tmp.<pid>[.<host>]
 * of a process of this host that is gone (name NULL: whatever the name).
 * A temp file is never renamed into place unless whole and checked, so
 * what is left is only ever litter. */
static void sweep_aside(int dirfd, const char *name)
{
	struct strvec names = STRVEC_INIT;
	struct strbuf stem = STRBUF_INIT;
	pthread_once(&host_once, host_init);
	if (name)
		sb_addf(&stem, "%s" TMP_INFIX, name);
	if (dir_entries(dirfd, &names) == 0)
		for (size_t i = 0; i < names.n; i++) {
			char *end;
			const char *n = names.v[i], *at = name ? n : strstr(n, TMP_INFIX);
			if (name ? strncmp(n, stem.buf, stem.len) : !at || at == n)
				continue;
			long pid = strtol(at + (name ? stem.len : strlen(TMP_INFIX)), &end, 10);
			if (*end == '.' && !strcmp(end + 1, host_name))
				end += strlen(end);
			/* ours (just made), a live process's and another host's are left */
			if (*end || pid <= 0 || !(kill((pid_t)pid, 0) < 0 && errno == ESRCH))
				continue;
			remove_entry(dirfd, n, n, 0);
		}
	sv_release(&names);
	sb_release(&stem);
}

/* Where a restore walks from: the project's root (through no symlink) or
 * "/" for an absolute output, each opened once. */
struct restore_ctx {
	struct store *st;
	const struct run_record *r;
	int rootfd, slash;
	struct strbuf path;
	/* the directory of the previous file, still open: files come sorted,
	 * so a directory of thousands is walked to once, not once a file */
	struct strbuf last;
	int lastfd;
	/* directories this restore created (stored paths, "files/..." or
	 * "abs/..."), removed again, deepest first, if it fails */
	struct strvec made;
	/* the run's directories that were missing, each built whole under a
	 * temp name beside its place (indexes into r->files) and renamed in
	 * once complete: what they hold is written in place, without a temp
	 * file, a check of what is there and a rename each (a third of the
	 * restore of 20,000 files), and a restore that fails or is killed
	 * leaves a temp directory, never a partial one under the run's name.
	 * Until renamed (in_aside), paths under them lead into the temp one. */
	size_t *aside, naside, hint; /* hint: the one found last, looked at first */
	int in_aside;
	struct strbuf walk;
};

/* The aside directory f is in (or is, with self), or NULL. */
static const struct run_file *aside_of(struct restore_ctx *c, const struct run_file *f, int self)
{
	for (size_t k = 0; k < c->naside; k++) {
		size_t i = k ? k - (k <= c->hint) : c->hint; /* the hint, then the others */
		const char *root = c->r->files[c->aside[i]].path;
		size_t len = strlen(root);
		if (!strncmp(f->path, root, len) && (f->path[len] == '/' || (self && !f->path[len]))) {
			c->hint = i;
			return &c->r->files[c->aside[i]];
		}
	}
	return NULL;
}

/* Opens the directory holding f and names its last component; -1 on
 * error. The fd is the context's, valid until the next call: not closed
 * by the caller (a dup() and a close() a file were a tenth of a restore). */
static int parent_of(struct restore_ctx *c, const struct run_file *f, const char **name)
{
	int in_project = !strncmp(f->path, "files/", 6);
	int *base = in_project ? &c->rootfd : &c->slash;
	const char *slash = strrchr(f->path, '/');
	size_t dirlen = (size_t)(slash - f->path);
	outputs_local_path(c->st, f->path, &c->path);
	/* a run stored before the store was left out of outputs, or from an
	 * archive: the store's files are never written by a replay */
	if (store_holds(c->st, c->path.buf))
		return err_set("refusing to restore %s: it is in the store", c->path.buf);
	if (c->lastfd >= 0 && c->last.len == dirlen && !memcmp(c->last.buf, f->path, dirlen)) {
		*name = slash + 1;
		return c->lastfd;
	}
	if (*base < 0 && (*base = open(in_project ? store_root(c->st) : "/", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return err_sys("cannot restore %s", c->path.buf);
	size_t made = c->made.n;
	const char *rel = f->path + (in_project ? 6 : 4);
	const struct run_file *a = c->in_aside ? aside_of(c, f, 0) : NULL;
	if (a) {
		size_t len = strlen(a->path);
		sb_reset(&c->walk);
		sb_add(&c->walk, a->path, len);
		tmp_suffix(&c->walk);
		sb_adds(&c->walk, f->path + len);
		rel = c->walk.buf + (in_project ? 6 : 4);
	}
	int fd = open_parent(*base, c->path.buf, rel, in_project, name, &c->made);
	for (size_t i = made; i < c->made.n; i++) { /* named as stored */
		struct strbuf stored = STRBUF_INIT;
		sb_addf(&stored, "%s%s", in_project ? "files/" : "abs/", c->made.v[i]);
		free(c->made.v[i]);
		c->made.v[i] = sb_detach(&stored);
	}
	if (fd >= 0) {
		if (c->lastfd >= 0)
			close(c->lastfd);
		c->lastfd = fd;
		sb_reset(&c->last);
		sb_add(&c->last, f->path, dirlen);
	}
	return fd;
}

static int is_restored(const struct run_file *f)
{
	return f->kind == FILE_OUTPUT || f->kind == FILE_DIR;
}

/* Removes what the run's directories hold and the run did not have. */
static int prune(struct restore_ctx *c)
{
	struct strvec have = STRVEC_INIT, names = STRVEC_INIT;
	struct strbuf child = STRBUF_INIT, shown = STRBUF_INIT;
	int rc = 0;
	for (size_t i = 0; i < c->r->nfiles; i++)
		if (is_restored(&c->r->files[i]))
			sv_push(&have, c->r->files[i].path);
	sv_sort(&have);
	for (size_t i = 0; rc == 0 && i < c->r->nfiles; i++) {
		const struct run_file *d = &c->r->files[i];
		const char *name;
		if (d->kind != FILE_DIR || aside_of(c, d, 1))
			continue; /* built aside: it holds only the run's */
		int pfd = parent_of(c, d, &name);
		if (pfd < 0) {
			rc = -1;
			break;
		}
		int fd = openat(pfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		sv_release(&names);
		if (fd < 0 || dir_entries(fd, &names) < 0) {
			rc = err_sys("cannot read %s", c->path.buf);
			if (fd >= 0)
				close(fd);
			break;
		}
		sb_reset(&shown);
		sb_adds(&shown, c->path.buf);
		for (size_t j = 0; rc == 0 && j < names.n; j++) {
			sb_reset(&child);
			sb_addf(&child, "%s/%s", d->path, names.v[j]);
			if (sv_sorted_has(&have, child.buf))
				continue;
			sb_reset(&child);
			sb_addf(&child, "%s/%s", shown.buf, names.v[j]);
			if (!outputs_is_store(c->st, fd, names.v[j], child.buf))
				rc = remove_entry(fd, names.v[j], child.buf, 0);
		}
		close(fd);
	}
	sv_release(&have);
	sv_release(&names);
	sb_release(&child);
	sb_release(&shown);
	return rc;
}

/* The outputs as the restore leaves them, for a recording (util/fsrec.h):
 * each file's stat, each directory's entries and mode, and that no
 * directory on the way into the project became a symbolic link. */
static void note_outputs(struct store *st, const struct run_record *r)
{
	struct strbuf abs = STRBUF_INIT;
	struct strvec parents = STRVEC_INIT;
	struct stat sb;
	size_t root = strlen(store_root(st));
	for (size_t i = 0; i < r->nfiles; i++) {
		const struct run_file *f = &r->files[i];
		if (!is_restored(f))
			continue;
		outputs_local_path(st, f->path, &abs);
		if (f->kind == FILE_DIR)
			fsrec_dir(abs.buf);
		else
			fsrec_lstat(abs.buf, lstat(abs.buf, &sb), &sb);
		for (char *s = strrchr(abs.buf, '/');
		     s && !strncmp(f->path, "files/", 6) && (size_t)(s - abs.buf) > root; s = strrchr(abs.buf, '/')) {
			*s = 0;
			sv_push(&parents, abs.buf);
		}
	}
	sv_sort(&parents);
	for (size_t i = 0; i < parents.n; i++)
		if (!i || strcmp(parents.v[i], parents.v[i - 1]))
			fsrec_type(parents.v[i]);
	sb_release(&abs);
	sv_release(&parents);
}

/* Three steps, so that a restore that fails leaves the tree as it was
 * (but for directories it made): every changed file is written beside its
 * place and checked (stage), then renamed into place (swap); only then is
 * what the run's directories hold and the run did not have removed
 * (prune) and the directories given the run's bits. */
int outputs_restore(struct store *st, const struct run_record *r)
{
	struct restore_ctx c = { st, r, -1, -1, STRBUF_INIT, STRBUF_INIT, -1, STRVEC_INIT, NULL, 0, 0, 1, STRBUF_INIT };
	struct strbuf tmp = STRBUF_INIT, swept = STRBUF_INIT;
	size_t *staged = xcalloc(r->nfiles + 1, sizeof(*staged)), nstaged = 0, swapped = 0;
	int rc = 0, dirs = 0;
	c.aside = xcalloc(r->nfiles + 1, sizeof(*c.aside));
	/* the directories first: one a run left 0555 takes files again */
	for (size_t n = 0; rc == 0 && n < 2 * r->nfiles; n++) {
		const struct run_file *f = &r->files[n % r->nfiles];
		const char *name = NULL;
		if (n < r->nfiles ? f->kind != FILE_DIR : f->kind != FILE_OUTPUT)
			continue;
		size_t i = n % r->nfiles;
		int dirfd = parent_of(&c, f, &name);
		if (dirfd < 0) {
			rc = -1;
			break;
		}
		int in_place = aside_of(&c, f, 0) != NULL;
		struct stat sb;
		if (f->kind == FILE_DIR) {
			dirs = 1;
			tmp_name(name, &tmp);
			if (!in_place && fstatat(dirfd, name, &sb, AT_SYMLINK_NOFOLLOW) < 0 && errno == ENOENT &&
			    mkdirat(dirfd, tmp.buf, 0700) == 0) {
				fsrec_spoil();
				sweep_aside(dirfd, name);
				c.aside[c.naside++] = i;
			} else {
				rc = ensure_dir(dirfd, name, c.path.buf);
				if (rc == 1 && !in_place)
					sv_push(&c.made, f->path);
				rc = rc == 1 ? 0 : rc;
			}
		} else if (in_place || !unchanged(st, f, c.path.buf)) {
			/* a directory written in is swept once (files come
			 * sorted: a directory's together) */
			if (!in_place &&
			    (!swept.len || swept.len != c.last.len || memcmp(swept.buf, c.last.buf, c.last.len))) {
				sweep_aside(dirfd, NULL);
				sb_reset(&swept);
				sb_add(&swept, c.last.buf, c.last.len);
			}
			rc = stage_one(st, f, dirfd, name, c.path.buf, in_place);
			if (rc == 0 && !in_place)
				staged[nstaged++] = i;
		}
	}
	for (; rc == 0 && swapped < nstaged + c.naside; swapped++) {
		const struct run_file *f = &r->files[swapped < nstaged ? staged[swapped] : c.aside[swapped - nstaged]];
		const char *name;
		int dirfd = parent_of(&c, f, &name);
		if (dirfd < 0) {
			rc = -1;
			break;
		}
		tmp_name(name, &tmp);
		if (renameat(dirfd, tmp.buf, dirfd, name) < 0)
			rc = err_sys("cannot restore %s", c.path.buf);
	}
	if (rc < 0) {
		/* the temp files not renamed into place go */
		char *msg = xstrdup(err_msg());
		int code = err_code();
		for (size_t k = swapped; k < nstaged + c.naside; k++) {
			const char *name;
			const struct run_file *f = &r->files[k < nstaged ? staged[k] : c.aside[k - nstaged]];
			int dirfd = parent_of(&c, f, &name);
			if (dirfd < 0)
				continue;
			tmp_name(name, &tmp);
			if (k < nstaged)
				unlinkat(dirfd, tmp.buf, 0);
			else
				remove_entry(dirfd, tmp.buf, tmp.buf, 0);
		}
		/* and the directories it made: the command that runs instead
		 * finds the outputs as they were */
		for (size_t k = c.made.n; k-- > 0;) {
			struct strbuf abs = STRBUF_INIT;
			outputs_local_path(st, c.made.v[k], &abs);
			rmdir(abs.buf);
			sb_release(&abs);
		}
		err_setc(code, "%s", msg);
		free(msg);
		goto out;
	}
	c.in_aside = 0; /* each is in its place */
	if (dirs && (rc = prune(&c)) < 0)
		goto out;
	/* deepest first: a directory made read-only is left alone after */
	for (size_t i = r->nfiles; dirs && rc == 0 && i-- > 0;) {
		const struct run_file *f = &r->files[i];
		const char *name;
		if (f->kind != FILE_DIR || f->perm < 0)
			continue;
		int dirfd = parent_of(&c, f, &name);
		if (dirfd < 0) {
			rc = -1;
			break;
		}
		if (fchmodat(dirfd, name, (mode_t)f->perm, 0) < 0)
			rc = err_sys("cannot set the mode of %s", c.path.buf);
	}
	if (rc == 0 && fsrec_on())
		note_outputs(st, r);
out:
	if (c.lastfd >= 0)
		close(c.lastfd);
	sb_release(&c.last);
	sv_release(&c.made);
	free(c.aside);
	sb_release(&c.walk);
	if (c.rootfd >= 0)
		close(c.rootfd);
	if (c.slash >= 0)
		close(c.slash);
	free(staged);
	sb_release(&c.path);
	sb_release(&tmp);
	sb_release(&swept);
	return rc;
}
