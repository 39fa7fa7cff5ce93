/* store-xfer: archives that carry runs between stores without a server. An
 * archive is a text manifest (format version, run commit ids, pack size)
 * followed by a git pack of those commits, their trees and blobs. Import is
 * all or nothing: every run is checked before the first ref is written, and
 * a failure after that undoes the refs, the shallow entries and the pack. */
#include "store/store-int.h"
#include "store/gitmod.h"
#include "store/manifest.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

int store_export(struct store *st, const struct strvec *hashes, const char *file, uint64_t *size)
{
	const struct gitmod *g = gitmod_get();
	struct strbuf head = STRBUF_INIT, tmp = STRBUF_INIT, line = STRBUF_INIT;
	uint64_t packlen = 0;
	int fd = -1, lock = -1, rc = -1;
	if (!g)
		goto out;
	/* Shared, as for a save: gc must not delete objects while we pack them. */
	if ((lock = store_lock(st, STORE_LOCK_SHARED)) < 0)
		goto out;
	sb_addf(&head, "%s %d\n", ARCHIVE_MAGIC, ARCHIVE_VERSION);
	for (size_t i = 0; i < hashes->n; i++)
		sb_addf(&head, "run %s\n", hashes->v[i]);
	size_t size_at = head.len;
	sb_addf(&head, PACK_SIZE_FMT, (uint64_t)0);
	/* A temporary file beside FILE, renamed over it at the end: a failed
	 * export never leaves a half archive under the real name. */
	sb_addf(&tmp, "%s.tmp-XXXXXX", file);
	fd = mkstemp(tmp.buf);
	if (fd < 0) {
		err_sys("cannot write %s", file);
		sb_reset(&tmp);
		goto out;
	}
	if (write_all(fd, head.buf, head.len) < 0) {
		err_sys("cannot write %s", file);
		goto out;
	}
	if (g->write_pack(st->dir, hashes, fd, &packlen) < 0)
		goto out;
	sb_addf(&line, PACK_SIZE_FMT, packlen);
	if (pwrite(fd, line.buf, line.len, (off_t)size_at) != (ssize_t)line.len || fchmod(fd, 0644) < 0) {
		err_sys("cannot write %s", file);
		goto out;
	}
	int cr = close(fd);
	fd = -1;
	if (cr < 0 || rename(tmp.buf, file) < 0) {
		err_sys("cannot write %s", file);
		goto out;
	}
	sb_reset(&tmp);
	*size = head.len + packlen;
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	if (tmp.len)
		unlink(tmp.buf);
	store_unlock(lock);
	sb_release(&head);
	sb_release(&tmp);
	sb_release(&line);
	return rc;
}

/* Reads the manifest (manifest.c parses it): fills ids and the pack's
 * offset and size, checking that the file is exactly as long as the
 * manifest says. The head is read in growing pieces, as far as the parser
 * asks: what follows it is a pack that may be gigabytes long. */
static int read_manifest(const char *file, struct strvec *ids, uint64_t *offset, uint64_t *size)
{
	struct strbuf head = STRBUF_INIT;
	struct stat sb;
	uint64_t file_size;
	int fd = open(file, O_RDONLY | O_CLOEXEC), rc = -1;
	if (fd < 0)
		return err_sys("cannot open %s", file);
	/* The pack is read again later, from its offset: a pipe cannot be. */
	if (fstat(fd, &sb) < 0 || lseek(fd, 0, SEEK_CUR) < 0) {
		err_sys("cannot read %s", file);
		goto out;
	}
	file_size = (uint64_t)sb.st_size;
	for (size_t want = 4096;; want *= 2) {
		int end = 0;
		while (head.len < want && !end) {
			sb_grow(&head, want - head.len);
			ssize_t n = read(fd, head.buf + head.len, want - head.len);
			if (n < 0 && errno == EINTR)
				continue;
			if (n > 0)
				sb_setlen(&head, head.len + (size_t)n);
			end = n <= 0;
		}
		/* Shorter than fstat said, or unreadable (a directory): the
		 * manifest is judged on what could be read, as getline did. */
		if (end && head.len < file_size)
			file_size = head.len;
		rc = manifest_parse(sb_str(&head), head.len, file_size, file, ids, offset, size);
		if (rc != 1)
			break;
	}
out:
	close(fd);
	sb_release(&head);
	return rc;
}

/* A relative path that stays where it is put: no empty, "." or ".."
 * component, and no ".git" (a restore must not write git hooks). */
static int safe_rel(const char *p)
{
	if (!*p || *p == '/')
		return 0;
	while (*p) {
		size_t len = strcspn(p, "/");
		if (!len || (len == 1 && p[0] == '.') || (len == 2 && !strncmp(p, "..", 2)) ||
		    (len == 4 && !strncasecmp(p, ".git", 4)))
			return 0;
		p += len;
		if (*p == '/' && !*++p)
			return 0;
	}
	return 1;
}

/* The tree layout store_save writes, and nothing else: a path that
 * outputs_local_path() would resolve outside the project is refused. */
int store_check_layout(const struct run_record *r, int allow_abs)
{
	for (size_t i = 0; i < r->nfiles; i++) {
		const struct run_file *f = &r->files[i];
		const char *p = f->path;
		int ok;
		if (!strcmp(p, "stdout"))
			ok = f->kind == FILE_STDOUT;
		else if (!strcmp(p, "stderr"))
			ok = f->kind == FILE_STDERR;
		else if (!strcmp(p, "streams"))
			ok = f->kind == FILE_STREAMS;
		else if (!strncmp(p, "files/", 6))
			ok = (f->kind == FILE_OUTPUT || f->kind == FILE_DIR) && safe_rel(p + 6);
		else if (!strncmp(p, "sources/", 8))
			ok = f->kind == FILE_SOURCE && safe_rel(p + 8);
		else if (!strncmp(p, "abs/", 4))
			ok = (f->kind == FILE_OUTPUT || f->kind == FILE_DIR) && safe_rel(p + 4);
		else
			ok = 0;
		if (ok && !allow_abs && !strncmp(p, "abs/", 4))
			return err_set("run %.12s has an output outside its project (/%s); "
				       "import it with --allow-absolute if you trust it",
				       r->hash, p + 4);
		if (!ok)
			return err_set("run %.12s: unexpected file '%s' in its tree", r->hash, p);
		if (f->kind == FILE_DIR ? f->mode != 040000
					: f->mode != 0100644 && f->mode != 0100755 && f->mode != 0120000)
			return err_set("run %.12s: file '%s' has mode %o", r->hash, p, f->mode);
	}
	return 0;
}

/* Every run that arrives from elsewhere passes here before it gets a ref
 * or an index row: an archive's (cashet import, a Redis or HTTP remote's
 * fetch, serve's PUT /archive) from store_import, a git remote's from
 * store_pull. Its tree must have the layout store_save writes, and, when
 * the store has a trust policy, an allowed signer must have signed it. */
int store_admit(struct store *st, const struct run_record *r, int allow_abs)
{
	if (store_check_layout(r, allow_abs) < 0)
		return -1;
	return store_check_trust(st, r->hash);
}

static int indexed(struct store *st, const char *hash)
{
	sqlite3_stmt *s;
	if (sqlite3_prepare_v2(st->db, "SELECT 1 FROM runs WHERE hash=?1", -1, &s, NULL) != SQLITE_OK)
		return store_sqlfail(st, "import");
	store_bind_oid(s, 1, hash);
	int rc = sqlite3_step(s);
	sqlite3_finalize(s);
	return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : store_sqlfail(st, "import");
}

/* An exclusive flock on import.lock in the store; store_unlock releases it. */
static int import_lock(struct store *st)
{
	struct strbuf p = STRBUF_INIT;
	sb_addf(&p, "%s/import.lock", st->dir);
	int fd = open(p.buf, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		err_sys("cannot open %s", p.buf);
	else
		while (flock(fd, LOCK_EX) < 0)
			if (errno != EINTR) {
				err_sys("cannot lock %s", p.buf);
				close(fd);
				fd = -1;
				break;
			}
	sb_release(&p);
	return fd;
}

int store_import(struct store *st, const char *file, int allow_abs, size_t *imported, size_t *present)
{
	const struct gitmod *g = gitmod_get();
	struct strvec ids = STRVEC_INIT, fresh = STRVEC_INIT;
	struct strvec moved = STRVEC_INIT, made_refs = STRVEC_INIT, grafted = STRVEC_INIT, undone = STRVEC_INIT;
	struct strbuf stage = STRBUF_INIT, name = STRBUF_INIT;
	struct run_record *recs = NULL;
	uint64_t offset = 0, size = 0;
	int lock = -1, ilock = -1, rc = -1, in_tx = 0;
	size_t nrecs = 0;
	if (!g || read_manifest(file, &ids, &offset, &size) < 0)
		goto out;
	if ((lock = store_lock(st, STORE_LOCK_SHARED)) < 0)
		goto out;
	/* One import at a time per store: two staging their packs at once
	 * made libgit2 miss a run in its own staged pack ("missing from the
	 * archive's pack"), seen with the Slurm executor's parallel imports. */
	if ((ilock = import_lock(st)) < 0)
		goto out;
	/* Present means indexed: a run whose ref is here but whose row is not
	 * (an import interrupted before its index transaction) is imported
	 * again; its ref, already there, is left as it is. */
	for (size_t i = 0; i < ids.n; i++) {
		int have = indexed(st, ids.v[i]);
		if (have < 0)
			goto out;
		if (!have)
			sv_push(&fresh, ids.v[i]);
	}

	/* The pack is verified even when every run is present: a damaged
	 * archive is reported as such, not silently accepted. */
	sb_addf(&stage, "%s/import-%ld-XXXXXX", store_tmpdir(st), (long)getpid());
	if (!mkdtemp(stage.buf)) {
		err_sys("cannot create %s", stage.buf);
		sb_reset(&stage);
		goto out;
	}
	if (g->stage_pack(st->dir, file, offset, size, stage.buf) < 0)
		goto out;
	recs = xcalloc(fresh.n ? fresh.n : 1, sizeof(*recs));
	nrecs = fresh.n;
	for (size_t i = 0; i < nrecs; i++) {
		if (g->check_run(st->dir, fresh.v[i]) < 0 || store_load_git(st, fresh.v[i], &recs[i]) < 0 ||
		    store_admit(st, &recs[i], allow_abs) < 0) {
			enum err_code code = err_code();
			char *why = xstrdup(err_msg());
			/* a refused signer is said as it is: the run names it, the
			 * archive (a remote's temp file) does not */
			if (code != E_UNTRUSTED)
				err_setc(code, "%s: %s", file, why);
			free(why);
			goto out;
		}
	}

	/* Everything checked: from here on, each step is undone on failure. */
	if (fresh.n) {
		if (g->publish_pack(st->dir, stage.buf, &moved) < 0)
			goto out;
		for (size_t i = 0; i < nrecs; i++) {
			sb_reset(&name);
			sb_addf(&name, "refs/cashet/runs/%s", recs[i].hash);
			int cr = g->create_ref(st->dir, name.buf, recs[i].hash);
			if (cr < 0)
				goto out;
			if (cr == 0)
				sv_push(&made_refs, name.buf);
		}
		/* A line without a ref here starts at the newest imported run of
		 * it, so the next local run continues that history; a line that
		 * has local runs keeps its ref. */
		for (size_t i = 0; i < nrecs; i++) {
			int newest = 1;
			for (size_t j = 0; j < nrecs && newest; j++)
				if (j != i && digest_eq(&recs[j].line, &recs[i].line) &&
				    (recs[j].created_ms > recs[i].created_ms ||
				     (recs[j].created_ms == recs[i].created_ms && j > i)))
					newest = 0;
			if (!newest)
				continue;
			char hx[DIGEST_HEX];
			digest_hex(&recs[i].line, hx);
			sb_reset(&name);
			sb_addf(&name, "refs/cashet/lines/%s", hx);
			int cr = g->create_ref(st->dir, name.buf, recs[i].hash);
			if (cr < 0)
				goto out;
			if (cr == 0)
				sv_push(&made_refs, name.buf);
		}
		if (g->shallow_update(st->dir, &fresh, 1, &grafted) < 0)
			goto out;
		if (store_exec(st, "BEGIN IMMEDIATE") < 0)
			goto out;
		in_tx = 1;
		for (size_t i = 0; i < nrecs; i++)
			if (store_index_run(st, &recs[i]) < 0)
				goto out;
		if (store_exec(st, "COMMIT") < 0)
			goto out;
		in_tx = 0;
	}
	*imported = fresh.n;
	*present = ids.n - fresh.n;
	rc = 0;
out:
	if (rc < 0) {
		/* Undo in reverse order; the first error is the one reported. */
		enum err_code code = err_code();
		char *why = xstrdup(err_msg());
		if (in_tx)
			store_rollback(st);
		if (g && grafted.n)
			g->shallow_update(st->dir, &grafted, 0, &undone);
		for (size_t i = made_refs.n; g && i-- > 0;)
			g->delete_ref(st->dir, made_refs.v[i]);
		for (size_t i = moved.n; i-- > 0;)
			unlink(moved.v[i]);
		err_setc(code, "%s", why);
		free(why);
	}
	if (stage.len)
		rm_rf(stage.buf);
	for (size_t i = 0; i < nrecs; i++)
		run_record_free(&recs[i]);
	free(recs);
	store_unlock(ilock);
	store_unlock(lock);
	sv_release(&ids);
	sv_release(&fresh);
	sv_release(&moved);
	sv_release(&made_refs);
	sv_release(&grafted);
	sv_release(&undone);
	sb_release(&stage);
	sb_release(&name);
	return rc;
}
