/* store-odb: a run of small files written as git objects and refs without
 * libgit2. Loading cashet-git.so costs more than storing such a run (18
 * libraries, and libgit2's init parses the system's CA bundle), so a miss
 * with small outputs writes its blobs, trees and commit as loose objects
 * (zlib, SHA-1) and its refs through lock files, exactly as libgit2 would
 * (the same bytes, so the same ids). Runs holding a file of 1 MiB or more
 * go to the git module, which streams them. */
#include "store/store-int.h"

#include <errno.h>
#include <fcntl.h>
#include <nettle/sha1.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

/* The git module's own threshold (LOOSE_MIN): from it on a blob streams. */
#define ODB_SMALL_MAX ((uint64_t)1 << 20)

enum { OID_RAW = 20 };

struct odb_entry {
	const char *path;
	unsigned mode;
	unsigned char oid[OID_RAW];
};

static void hex_of(const unsigned char raw[OID_RAW], char hex[OID_HEX])
{
	static const char digits[] = "0123456789abcdef";
	for (int i = 0; i < OID_RAW; i++) {
		hex[2 * i] = digits[raw[i] >> 4];
		hex[2 * i + 1] = digits[raw[i] & 15];
	}
	hex[40] = '\0';
}

static int unhex(const char *hex, unsigned char raw[OID_RAW])
{
	for (int i = 0; i < 2 * OID_RAW; i++) {
		char c = hex[i];
		int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
		if (d < 0)
			return -1;
		raw[i / 2] = (unsigned char)(i % 2 ? raw[i / 2] << 4 | d : d);
	}
	return 0;
}

/* Whether objects are fsync()ed before they are renamed into place, as
 * libgit2 and the git module's large-object writer do. */
static int want_fsync(struct store *st)
{
	struct strbuf v = STRBUF_INIT;
	int on = store_config_get(st, "core", "fsyncobjectfiles", &v) && store_config_bool(v.buf);
	sb_release(&v);
	return on;
}

/* Writes one object (type "blob", "tree" or "commit") unless it exists:
 * deflated into a temp file in objects/, renamed into objects/xx/. */
static int write_object(struct store *st, const char *type, const void *data, size_t len, int sync,
			unsigned char oid[OID_RAW])
{
	struct strbuf path = STRBUF_INIT, tmp = STRBUF_INIT;
	struct sha1_ctx sha;
	char hdr[64], hex[OID_HEX];
	unsigned char *z = NULL;
	int hlen = snprintf(hdr, sizeof(hdr), "%s %zu", type, len) + 1, fd = -1, rc = -1;
	z_stream zs;
	int zinit = 0;

	sha1_init(&sha);
	sha1_update(&sha, (size_t)hlen, (const uint8_t *)hdr);
	sha1_update(&sha, len, data);
	sha1_digest(&sha, OID_RAW, oid);
	hex_of(oid, hex);
	sb_addf(&path, "%s/objects/%.2s/%s", st->dir, hex, hex + 2);
	if (access(path.buf, F_OK) == 0) {
		rc = 0; /* the same name is the same content */
		goto out;
	}
	memset(&zs, 0, sizeof(zs));
	if (deflateInit(&zs, Z_BEST_SPEED) != Z_OK) {
		err_set("zlib failed for an object");
		goto out;
	}
	zinit = 1;
	size_t cap = deflateBound(&zs, (uLong)(len + (size_t)hlen));
	z = xmalloc(cap);
	zs.next_out = z;
	zs.avail_out = (uInt)cap;
	zs.next_in = (unsigned char *)hdr;
	zs.avail_in = (uInt)hlen;
	if (deflate(&zs, Z_NO_FLUSH) != Z_OK) {
		err_set("zlib failed for an object");
		goto out;
	}
	zs.next_in = (unsigned char *)data;
	zs.avail_in = (uInt)len;
	if (deflate(&zs, Z_FINISH) != Z_STREAM_END) {
		err_set("zlib failed for an object");
		goto out;
	}
	sb_addf(&tmp, "%s/objects/tmp_obj_XXXXXX", st->dir);
	fd = mkostemp(tmp.buf, O_CLOEXEC);
	if (fd < 0) {
		err_sys("cannot create a temp file in %s/objects", st->dir);
		sb_reset(&tmp);
		goto out;
	}
	if (write_all(fd, z, zs.total_out) < 0 || fchmod(fd, 0444) < 0 || (sync && fsync(fd) < 0)) {
		err_sys("cannot write %s", tmp.buf);
		goto out;
	}
	close(fd);
	fd = -1;
	sb_setlen(&path, path.len - 39);
	if (mkdir(path.buf, 0755) < 0 && errno != EEXIST) {
		err_sys("cannot create %s", path.buf);
		goto out;
	}
	sb_addf(&path, "/%s", hex + 2);
	if (rename(tmp.buf, path.buf) < 0) {
		err_sys("cannot move an object to %s", path.buf);
		goto out;
	}
	sb_reset(&tmp);
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	if (tmp.len)
		unlink(tmp.buf);
	if (zinit)
		deflateEnd(&zs);
	free(z);
	sb_release(&path);
	sb_release(&tmp);
	return rc;
}

/* A blob of f's content (a symlink's target, as git stores it), inlined
 * for the index as store_save would. 1: too large for this writer. */
static int write_file(struct store *st, struct run_file *f, int sync, unsigned char oid[OID_RAW])
{
	struct strbuf content = STRBUF_INIT;
	struct stat sb;
	int rc = -1;
	if (lstat(f->src, &sb) < 0) {
		err_sys("cannot stat %s", f->src);
		goto out;
	}
	if (S_ISLNK(sb.st_mode)) {
		sb_grow(&content, (size_t)sb.st_size + 1);
		ssize_t n = readlink(f->src, content.buf, content.alloc - 1);
		if (n < 0) {
			err_sys("cannot read link %s", f->src);
			goto out;
		}
		sb_setlen(&content, (size_t)n);
	} else if ((uint64_t)sb.st_size >= ODB_SMALL_MAX) {
		rc = 1;
		goto out;
	} else if (read_file_sb(f->src, &content) < 0) {
		goto out;
	}
	if (write_object(st, "blob", content.buf ? content.buf : "", content.len, sync, oid) < 0)
		goto out;
	if (f->mode != 0120000 && f->size <= INLINE_MAX)
		store_inline_data(f, content.buf ? content.buf : "", content.len);
	rc = 0;
out:
	sb_release(&content);
	return rc;
}

static int by_path(const void *a, const void *b)
{
	return strcmp(((const struct odb_entry *)a)->path, ((const struct odb_entry *)b)->path);
}

/* A path libgit2 takes into a tree: no empty, ".", "..", ".git" part. */
static int plain_path(const char *p)
{
	for (;;) {
		size_t n = strcspn(p, "/");
		if (!n || (n == 1 && p[0] == '.') || (n == 2 && !strncmp(p, "..", 2)) ||
		    (n == 4 && !strncasecmp(p, ".git", 4)))
			return 0;
		if (!p[n])
			return 1;
		p += n + 1;
	}
}

/* Writes the tree of e[0..n), whose paths all start with a prefix of
 * skip bytes. Byte order of whole paths is git's tree order (a directory
 * sorts as its name and '/'), so a subtree's entries are contiguous. */
static int write_tree(struct store *st, const struct odb_entry *e, size_t n, size_t skip, int sync,
		      unsigned char oid[OID_RAW])
{
	struct strbuf t = STRBUF_INIT;
	int rc = -1;
	for (size_t i = 0; i < n;) {
		const char *name = e[i].path + skip, *slash = strchr(name, '/');
		if (!slash) {
			sb_addf(&t, "%o %s", e[i].mode, name);
			sb_add(&t, "", 1);
			sb_add(&t, (const char *)e[i].oid, OID_RAW);
			i++;
			continue;
		}
		size_t len = (size_t)(slash - name), j = i;
		while (j < n && !strncmp(e[j].path + skip, name, len + 1))
			j++;
		unsigned char sub[OID_RAW];
		if (write_tree(st, e + i, j - i, skip + len + 1, sync, sub) < 0)
			goto out;
		sb_addf(&t, "40000 %.*s", (int)len, name);
		sb_add(&t, "", 1);
		sb_add(&t, (const char *)sub, OID_RAW);
		i = j;
	}
	rc = write_object(st, "tree", t.buf ? t.buf : "", t.len, sync, oid);
out:
	sb_release(&t);
	return rc;
}

/* The commit a ref names: its loose file, else its packed-refs line.
 * 0 found, 1 no such ref, -1 unreadable. */
static int read_ref(struct store *st, const char *name, char hex[OID_HEX])
{
	struct strbuf p = STRBUF_INIT, text = STRBUF_INIT;
	unsigned char raw[OID_RAW];
	int rc = 1;
	sb_addf(&p, "%s/%s", st->dir, name);
	if (read_file_sb(p.buf, &text) == 0) {
		rc = text.len >= 40 && unhex(text.buf, raw) == 0 ? 0 : err_set("%s: not a commit id", p.buf);
		if (rc == 0)
			memcpy(hex, text.buf, 40), hex[40] = '\0';
		goto out;
	}
	err_clear();
	sb_reset(&p);
	sb_reset(&text);
	sb_addf(&p, "%s/packed-refs", st->dir);
	if (read_file_sb(p.buf, &text) < 0) {
		err_clear();
		goto out;
	}
	size_t nlen = strlen(name);
	for (const char *l = text.buf; l && *l;) {
		const char *nl = strchrnul(l, '\n');
		if (nl - l == (ptrdiff_t)(41 + nlen) && l[40] == ' ' && !strncmp(l + 41, name, nlen) &&
		    unhex(l, raw) == 0) {
			memcpy(hex, l, 40);
			hex[40] = '\0';
			rc = 0;
			break;
		}
		l = *nl ? nl + 1 : nl;
	}
out:
	sb_release(&p);
	sb_release(&text);
	return rc;
}

/* Whether the object exists, loose or packed. */
static int have_object(struct store *st, const char *hex)
{
	struct strbuf p = STRBUF_INIT;
	sb_addf(&p, "%s/objects/%.2s/%s", st->dir, hex, hex + 2);
	int have = access(p.buf, F_OK) == 0 || store_pack_has(st, hex) == 1;
	sb_release(&p);
	return have;
}

/* Creates the directories of path below the store, as git does for refs. */
static int make_parents(struct strbuf *path, size_t from)
{
	for (size_t i = from; i < path->len; i++) {
		if (path->buf[i] != '/')
			continue;
		path->buf[i] = '\0';
		int bad = mkdir(path->buf, 0755) < 0 && errno != EEXIST;
		path->buf[i] = '/';
		if (bad)
			return err_sys("cannot create the directories of %s", path->buf);
	}
	return 0;
}

/* Points ref name at hex through name.lock, renamed into place, as git and
 * libgit2 update a loose ref (one shadows a packed-refs line of that name).
 * A lock another writer holds is waited for a while (two runs of one
 * command line finishing together write the same line ref). */
static int write_ref(struct store *st, const char *name, const char *hex)
{
	struct strbuf path = STRBUF_INIT, lock = STRBUF_INIT;
	char line[OID_HEX + 1];
	int fd = -1, rc = -1;
	sb_addf(&path, "%s/%s", st->dir, name);
	sb_addf(&lock, "%s.lock", path.buf);
	if (make_parents(&path, strlen(st->dir) + 1) < 0)
		goto out;
	for (int tries = 0;; tries++) {
		fd = open(lock.buf, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		if (fd >= 0 || errno != EEXIST || tries >= 200)
			break;
		struct timespec ts = { 0, 5 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	if (fd < 0) {
		errno == EEXIST ? err_setc(E_BUSY, "cannot write ref %s: %s is locked", name, lock.buf)
				: err_sys("cannot write ref %s", name);
		goto out;
	}
	snprintf(line, sizeof(line), "%s\n", hex);
	if (write_all(fd, line, OID_HEX) < 0 || close(fd) < 0) {
		fd = -1;
		err_sys("cannot write %s", lock.buf);
		unlink(lock.buf);
		goto out;
	}
	fd = -1;
	if (rename(lock.buf, path.buf) < 0) {
		err_sys("cannot write ref %s", name);
		unlink(lock.buf);
		goto out;
	}
	rc = 0;
out:
	if (fd >= 0) {
		close(fd);
		unlink(lock.buf);
	}
	sb_release(&path);
	sb_release(&lock);
	return rc;
}

int store_odb_save(struct store *st, struct run_record *r, const char *meta, size_t metalen)
{
	struct odb_entry *e = xcalloc(r->nfiles + 1, sizeof(*e));
	struct strbuf body = STRBUF_INIT, name = STRBUF_INIT;
	unsigned char tree[OID_RAW], commit[OID_RAW];
	char hx[OID_HEX], line[DIGEST_HEX];
	size_t n = 0;
	int sync = want_fsync(st), rc = 1;

	/* what this writer cannot take goes to libgit2, which decides */
	for (size_t i = 0; i < r->nfiles; i++) {
		const struct run_file *f = &r->files[i];
		if (f->kind == FILE_DIR)
			continue;
		if (!plain_path(f->path) || !strcmp(f->path, "meta") || f->size >= ODB_SMALL_MAX)
			goto out;
		e[n].path = f->path;
		e[n++].mode = f->mode;
	}
	e[n].path = "meta";
	e[n++].mode = 0100644;
	qsort(e, n, sizeof(*e), by_path);
	for (size_t i = 0; i + 1 < n; i++) {
		size_t len = strlen(e[i].path);
		if (!strncmp(e[i].path, e[i + 1].path, len) && (!e[i + 1].path[len] || e[i + 1].path[len] == '/'))
			goto out; /* one name twice, or a file where a directory is */
	}

	rc = -1;
	for (size_t i = 0; i < n; i++) {
		if (!strcmp(e[i].path, "meta")) {
			if (write_object(st, "blob", meta, metalen, sync, e[i].oid) < 0)
				goto out;
			continue;
		}
		struct run_file *f = NULL;
		for (size_t j = 0; j < r->nfiles && !f; j++)
			if (r->files[j].kind != FILE_DIR && !strcmp(r->files[j].path, e[i].path))
				f = &r->files[j];
		int w = write_file(st, f, sync, e[i].oid);
		if (w != 0) {
			rc = w; /* grew past the limit since it was collected: the module's */
			goto out;
		}
		hex_of(e[i].oid, f->oid);
	}
	if (write_tree(st, e, n, 0, sync, tree) < 0)
		goto out;

	/* the parent: the newest run of the command line, if its commit is here */
	digest_hex(&r->line, line);
	sb_addf(&name, "refs/cashet/lines/%s", line);
	r->parent[0] = '\0';
	int pr = read_ref(st, name.buf, hx);
	if (pr < 0)
		goto out;
	if (pr == 0 && have_object(st, hx))
		memcpy(r->parent, hx, OID_HEX);

	/* the bytes libgit2's git_commit_create writes for this run */
	hex_of(tree, hx);
	long long when = (long long)(r->created_ms / 1000);
	sb_addf(&body, "tree %s\n", hx);
	if (r->parent[0])
		sb_addf(&body, "parent %s\n", r->parent);
	sb_addf(&body,
		"author cashet <cashet@localhost> %lld +0000\ncommitter cashet <cashet@localhost> %lld +0000\n\n", when,
		when);
	char *cmd = run_cmdline(r);
	sb_add(&body, cmd, strlen(cmd) > 200 ? 200 : strlen(cmd));
	free(cmd);
	sb_addf(&body, "\n\nstatus %s, exit %d, %lld ms\n", r->ok ? "ok" : "failed", r->exit_code,
		(long long)r->duration_ms);
	if (write_object(st, "commit", body.buf, body.len, sync, commit) < 0)
		goto out;
	hex_of(commit, r->hash);

	/* the run ref first: a run that has it is complete and can be reindexed */
	struct strbuf run = STRBUF_INIT;
	sb_addf(&run, "refs/cashet/runs/%s", r->hash);
	int wr = write_ref(st, run.buf, r->hash);
	sb_release(&run);
	if (wr < 0 || write_ref(st, name.buf, r->hash) < 0)
		goto out;
	rc = 0;
out:
	free(e);
	sb_release(&body);
	sb_release(&name);
	return rc;
}
