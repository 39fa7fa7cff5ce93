/* outputs: the files a run produced. Stored paths are "files/<root-relative>"
 * inside the project and "abs/<absolute>" outside it, so a tree entry never
 * holds "..", and a checkout elsewhere restores into its own root. */
#include "store/outputs.h"
#include "key/fp.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
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
	if (rel.buf[0] == '/')
		sb_addf(out, "abs%s", rel.buf);
	else
		sb_addf(out, "files/%s", rel.buf);
	sb_release(&rel);
}

/* path is named in messages as the user declared it; abs is where it is. */
static int collect(struct store *st, const char *path, const char *abs, struct run_record *r, int depth)
{
	struct stat sb;
	struct strbuf sp = STRBUF_INIT, child = STRBUF_INIT;
	int rc = -1;
	if (lstat(abs, &sb) < 0) {
		err_sys("declared output %s was not produced", path);
		goto out;
	}
	if (S_ISDIR(sb.st_mode)) {
		if (depth > 64) {
			err_set("output %s: directories nested too deep", path);
			goto out;
		}
		DIR *d = opendir(abs);
		struct strvec names = STRVEC_INIT;
		struct dirent *e;
		if (!d) {
			err_sys("cannot read output directory %s", path);
			goto out;
		}
		while ((e = readdir(d)))
			if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
				sv_push(&names, e->d_name);
		closedir(d);
		sv_sort(&names);
		rc = 0;
		for (size_t i = 0; rc == 0 && i < names.n; i++) {
			sb_reset(&sp);
			sb_addf(&sp, "%s/%s", path, names.v[i]);
			sb_reset(&child);
			sb_addf(&child, "%s/%s", abs, names.v[i]);
			rc = collect(st, sp.buf, child.buf, r, depth + 1);
		}
		sv_release(&names);
		goto out;
	}
	stored_path(st, abs, &sp);
	for (size_t i = 0; i < r->nfiles; i++)
		if (!strcmp(r->files[i].path, sp.buf)) {
			rc = 0; /* declared twice (a file inside a declared directory) */
			goto out;
		}
	struct run_file *f = run_add_file(r, FILE_OUTPUT, sp.buf);
	f->src = xstrdup(abs);
	if (S_ISLNK(sb.st_mode)) {
		char target[PATH_MAX];
		ssize_t n = readlink(abs, target, sizeof(target));
		if (n < 0) {
			err_sys("cannot read link %s", path);
			goto out;
		}
		f->mode = 0120000;
		f->size = (uint64_t)n;
		digest_of(target, (size_t)n, &f->xxh);
	} else if (S_ISREG(sb.st_mode)) {
		f->mode = (sb.st_mode & 0111) ? 0100755 : 0100644;
		f->perm = (int)(sb.st_mode & 0777);
		if (digest_file(abs, &f->xxh, &f->size) < 0)
			goto out;
	} else {
		err_set("output %s is not a regular file, directory or symlink", path);
		goto out;
	}
	rc = 0;
out:
	sb_release(&sp);
	sb_release(&child);
	return rc;
}

int outputs_collect(struct store *st, const char *cwd, const struct strvec *declared, struct run_record *r)
{
	struct strbuf abs = STRBUF_INIT;
	int rc = 0;
	for (size_t i = 0; rc == 0 && i < declared->n; i++) {
		path_absolute(cwd, declared->v[i], &abs);
		rc = collect(st, declared->v[i], abs.buf, r, 0);
	}
	sb_release(&abs);
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
static int open_parent(int dirfd, const char *shown, const char *rel, int nofollow, const char **name)
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
		if (sub < 0 && errno == ENOENT && (mkdirat(fd, comp.buf, 0777) == 0 || errno == EEXIST))
			sub = openat(fd, comp.buf, flags);
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

/* Writes f as name in the directory dirfd: a temp file (or link) beside
 * it, renamed over it, so the last component is replaced, never followed. */
static int restore_one(struct store *st, const struct run_file *f, int dirfd, const char *name, const char *path)
{
	struct strbuf tmp = STRBUF_INIT, content = STRBUF_INIT;
	int rc = -1, fd = -1;
	sb_addf(&tmp, "%s.cashet-tmp.%ld", name, (long)getpid());
	unlinkat(dirfd, tmp.buf, 0);
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
	if (renameat(dirfd, tmp.buf, dirfd, name) < 0) {
		err_sys("cannot restore %s", path);
		unlinkat(dirfd, tmp.buf, 0);
		goto out;
	}
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	sb_release(&tmp);
	sb_release(&content);
	return rc;
}

int outputs_restore(struct store *st, const struct run_record *r)
{
	struct strbuf path = STRBUF_INIT;
	int rc = 0, rootfd = -1, slash = -1;
	for (size_t i = 0; rc == 0 && i < r->nfiles; i++) {
		const struct run_file *f = &r->files[i];
		const char *name = NULL;
		if (f->kind != FILE_OUTPUT)
			continue;
		outputs_local_path(st, f->path, &path);
		/* inside the project: from its root, through no symlink; an
		 * absolute output (declared by hand, or imported with
		 * --allow-absolute) goes where its path leads */
		int in_project = !strncmp(f->path, "files/", 6);
		int *base = in_project ? &rootfd : &slash;
		if (*base < 0 &&
		    (*base = open(in_project ? store_root(st) : "/", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
			rc = err_sys("cannot restore %s", path.buf);
			break;
		}
		int dirfd = open_parent(*base, path.buf, f->path + (in_project ? 6 : 4), in_project, &name);
		if (dirfd < 0) {
			rc = -1;
			break;
		}
		if (!unchanged(st, f, path.buf))
			rc = restore_one(st, f, dirfd, name, path.buf);
		close(dirfd);
	}
	if (rootfd >= 0)
		close(rootfd);
	if (slash >= 0)
		close(slash);
	sb_release(&path);
	return rc;
}
