/* store-odb: a run of small files written as git objects and refs without
 * libgit2. Loading cashet-git.so costs more than storing such a run (18
 * libraries, and libgit2's init parses the system's CA bundle), so a miss
 * with small outputs writes its blobs, trees and commit as loose objects
 * (zlib, SHA-1) and its refs through lock files, exactly as libgit2 would
 * (the same bytes, so the same ids). Runs holding a file of 1 MiB or more
 * go to the git module, which streams them. */
#include "store/refs.h"
#include "store/store-int.h"
#include "store/gitmod.h"
#include "store/tree.h"

#include <errno.h>
#include <fcntl.h>
#include <nettle/sha1.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

/* The git module's own threshold (LOOSE_MIN): from it on a blob streams. */
#define ODB_SMALL_MAX ((uint64_t)1 << 20)
/* ... and its PACKW_MIN: a run of this many files goes into a pack there. */
#define ODB_PACK_MIN 64

/* A batch: the runs of many steps written as one pack and published
 * together (store_batch_begin). Until store_batch_flush nothing of them is
 * visible: the pack is a temp file gc would sweep (tmp_obj_*), no ref and
 * no index row names them, and their claims stay held; a process killed
 * mid-batch leaves a store exactly as before it. */
struct batch_obj {
	unsigned char oid[OID_RAW];
	uint64_t off;
	uint32_t crc;
};

struct batch_file {
	char *path;
	char oid[OID_HEX];
	unsigned mode;
	unsigned char *data;
	size_t datalen;
	int enc;
};

struct batch_run {
	char hash[OID_HEX], parent[OID_HEX];
	struct digest fp, line;
	char *meta;
	struct batch_file *files;
	size_t nfiles;
};

struct store_batch {
	int fd, lock; /* the temp pack (-1 until the first object); the shared store lock held meanwhile */
	struct strbuf tmp;
	uint64_t off;
	struct batch_obj *objs;
	size_t nobjs, aobjs;
	struct batch_run *runs;
	size_t nruns, aruns;
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

/* Whether objects are fsync()ed before they are renamed into place, as
 * libgit2 and the git module's large-object writer do. */
static int want_fsync(struct store *st)
{
	struct strbuf v = STRBUF_INIT;
	int on = store_config_get(st, "core", "fsyncobjectfiles", &v) && store_config_bool(v.buf);
	sb_release(&v);
	return on;
}

/* deflate at level 1 with a window and hash table no larger than the
 * object: zlib's defaults allocate (and clear) 256 KiB per stream, most
 * of a small miss's page faults; any window is a valid zlib stream. */
static int deflate_start(z_stream *zs, size_t len)
{
	int wbits = 9;
	while (wbits < 15 && ((size_t)1 << wbits) < len)
		wbits++;
	memset(zs, 0, sizeof(*zs));
	return deflateInit2(zs, Z_BEST_SPEED, Z_DEFLATED, wbits, wbits - 7, Z_DEFAULT_STRATEGY);
}

/* The id of an object of type ("blob", "tree", "commit") and content. */
static void object_id(const char *type, const void *data, size_t len, unsigned char oid[OID_RAW])
{
	struct sha1_ctx sha;
	char hdr[64];
	int hlen = snprintf(hdr, sizeof(hdr), "%s %zu", type, len) + 1;
	sha1_init(&sha);
	sha1_update(&sha, (size_t)hlen, (const uint8_t *)hdr);
	sha1_update(&sha, len, data);
	sha1_digest(&sha, OID_RAW, oid);
}

static int batch_put(struct store *st, const char *type, const void *data, size_t len,
		     const unsigned char oid[OID_RAW]);
static const struct batch_run *batch_line(const struct store_batch *b, const struct digest *line);
static void batch_keep(struct store_batch *b, const struct run_record *r, const char *meta, size_t metalen);

/* Writes one object (type "blob", "tree" or "commit") unless it exists:
 * deflated into a temp file in objects/, renamed into objects/xx/; in a
 * batch, appended to the batch's pack instead. */
static int write_object(struct store *st, const char *type, const void *data, size_t len, int sync,
			unsigned char oid[OID_RAW])
{
	struct strbuf path = STRBUF_INIT, tmp = STRBUF_INIT;
	char hdr[64], hex[OID_HEX];
	unsigned char *z = NULL;
	int hlen = snprintf(hdr, sizeof(hdr), "%s %zu", type, len) + 1, fd = -1, rc = -1;
	z_stream zs;
	int zinit = 0;

	object_id(type, data, len, oid);
	if (st->batch)
		return batch_put(st, type, data, len, oid);
	hex_of(oid, hex);
	sb_addf(&path, "%s/objects/%.2s/%s", st->dir, hex, hex + 2);
	/* the same name is the same content; a copy of a packed object would
	 * be packed again by auto-pack, and two packs holding one object are
	 * not merged */
	if (access(path.buf, F_OK) == 0 || store_pack_has(st, hex, 0) == 1) {
		rc = 0;
		goto out;
	}
	if (deflate_start(&zs, len + (size_t)hlen) != Z_OK) {
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
	/* its fan-out directory made only when it is not there (auto-pack
	 * keeps the emptied ones) */
	int moved = rename(tmp.buf, path.buf);
	if (moved < 0 && errno == ENOENT) {
		sb_setlen(&path, path.len - 39);
		if (mkdir(path.buf, 0755) < 0 && errno != EEXIST) {
			err_sys("cannot create %s", path.buf);
			goto out;
		}
		sb_addf(&path, "/%s", hex + 2);
		moved = rename(tmp.buf, path.buf);
	}
	if (moved < 0) {
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
 * for the index as store_save would; a file's digest and size are set
 * from the bytes read (the one read of an output). 1: too large for this
 * writer. */
static int write_file(struct store *st, struct run_file *f, int sync, unsigned char oid[OID_RAW])
{
	struct strbuf content = STRBUF_INIT;
	struct stat sb;
	int rc = -1;
	if (!f->src) {
		/* a stream kept in memory, or with no bytes */
		sb_add(&content, f->held.buf, f->held.len);
	} else if (lstat(f->src, &sb) < 0) {
		err_sys("cannot stat %s", f->src);
		goto out;
	} else if (S_ISLNK(sb.st_mode)) {
		if (read_link(f->src, &content) < 0)
			goto out;
	} else if ((uint64_t)sb.st_size >= ODB_SMALL_MAX) {
		rc = 1;
		goto out;
	} else if (read_file_sb(f->src, &content) < 0) {
		goto out;
	} else {
		digest_of(content.buf ? content.buf : "", content.len, &f->xxh);
		f->size = content.len;
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

/* tree_write's writer here: loose objects. */
struct tree_sink {
	struct store *st;
	int sync;
};

static int put_tree(void *ctx, const void *data, size_t len, unsigned char oid[TREE_OID_RAW])
{
	struct tree_sink *k = ctx;
	return write_object(k->st, "tree", data, len, k->sync, oid);
}

int store_odb_has(struct store *st, const char *hex)
{
	struct strbuf p = STRBUF_INIT;
	sb_addf(&p, "%s/objects/%.2s/%s", st->dir, hex, hex + 2);
	int have = access(p.buf, F_OK) == 0 || store_pack_has(st, hex, 1) == 1;
	sb_release(&p);
	return have;
}

int store_odb_save(struct store *st, struct run_record *r)
{
	struct tree_entry *e = xcalloc(r->nfiles + 1, sizeof(*e));
	struct strbuf body = STRBUF_INIT, name = STRBUF_INIT, meta = STRBUF_INIT;
	unsigned char tree[OID_RAW], commit[OID_RAW];
	char hx[OID_HEX], line[DIGEST_HEX];
	size_t n = 0;
	int sync = want_fsync(st), rc = 1;

	/* what this writer cannot take goes to libgit2, which decides; so do
	 * runs of many files, which the git module writes into one pack
	 * (src/git/packw.c) instead of a loose object and an index copy each */
	size_t small = 0;
	for (size_t i = 0; i < r->nfiles; i++)
		small += r->files[i].kind != FILE_DIR && r->files[i].mode != 0120000;
	if (small >= ODB_PACK_MIN)
		goto out;
	for (size_t i = 0; i < r->nfiles; i++) {
		const struct run_file *f = &r->files[i];
		if (f->kind == FILE_DIR)
			continue;
		if (!strcmp(f->path, "meta") || f->size >= ODB_SMALL_MAX)
			goto out;
		e[n].path = f->path;
		e[n++].mode = f->mode;
	}
	e[n].path = "meta";
	e[n++].mode = 0100644;
	if (tree_sort_check(e, n))
		goto out;

	rc = -1;
	size_t meta_at = 0;
	for (size_t i = 0; i < n; i++) {
		if (!strcmp(e[i].path, "meta")) {
			meta_at = i;
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
	/* after the blobs, which set the outputs' digests */
	meta_encode(r, &meta);
	struct tree_sink sink = { st, sync };
	if (write_object(st, "blob", meta.buf, meta.len, sync, e[meta_at].oid) < 0 ||
	    tree_write(e, n, put_tree, &sink, tree) < 0)
		goto out;

	/* the parent: the newest run of the command line, if its commit is here */
	digest_hex(&r->line, line);
	sb_addf(&name, "refs/cashet/lines/%s", line);
	r->parent[0] = '\0';
	const struct batch_run *pending = batch_line(st->batch, &r->line);
	int pr = pending ? 0 : store_ref_read(st->dir, name.buf, hx);
	if (pr < 0)
		goto out;
	if (pr == 1) { /* no line ref: the line's first run, or none yet */
		int nr = store_line_newest(st, &r->line, hx);
		if (nr < 0)
			goto out;
		pr = nr == 1 ? 0 : 1;
	}
	if (pending)
		memcpy(r->parent, pending->hash, OID_HEX);
	else if (pr == 0 && store_odb_has(st, hx))
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
	if (st->batch) {
		batch_keep(st->batch, r, meta.buf, meta.len);
		rc = 0;
		goto out;
	}

	/* the run ref first: a run that has it is complete and can be reindexed */
	struct strbuf run = STRBUF_INIT;
	sb_addf(&run, "refs/cashet/runs/%s", r->hash);
	int wr = store_ref_write(st->dir, run.buf, r->hash);
	sb_release(&run);
	/* a line ref once the line has two runs: before, it would name the
	 * same commit as the run ref (a ref per distinct command line) */
	if (wr < 0 || (r->parent[0] && store_ref_write(st->dir, name.buf, r->hash) < 0))
		goto out;
	rc = 0;
out:
	free(e);
	sb_release(&body);
	sb_release(&name);
	sb_release(&meta);
	return rc;
}

int store_odb_heal(struct store *st, struct run_record *r)
{
	int sync = want_fsync(st);
	for (size_t i = 0; i < r->nfiles; i++) {
		struct run_file *f = &r->files[i];
		unsigned char oid[OID_RAW];
		if (f->kind == FILE_DIR || !f->oid[0] || !store_pack_bad(st, f->oid) || store_odb_has(st, f->oid))
			continue;
		/* 1: a large one, which its writer streams loose whatever the packs hold */
		if (write_file(st, f, sync, oid) < 0)
			return -1;
	}
	return 0;
}

int store_batch_begin(struct store *st)
{
	if (st->batch)
		return 0;
	st->batch = xcalloc(1, sizeof(*st->batch));
	st->batch->fd = st->batch->lock = -1;
	return 0;
}

size_t store_batch_runs(const struct store *st)
{
	return st->batch ? st->batch->nruns : 0;
}

int store_batch_has(const struct store *st, const struct digest *fp)
{
	for (size_t i = 0; st->batch && i < st->batch->nruns; i++)
		if (digest_eq(&st->batch->runs[i].fp, fp))
			return 1;
	return 0;
}

static const struct batch_obj *batch_find(const struct store_batch *b, const unsigned char oid[OID_RAW])
{
	for (size_t i = 0; b && i < b->nobjs; i++)
		if (!memcmp(b->objs[i].oid, oid, OID_RAW))
			return &b->objs[i];
	return NULL;
}

/* The newest pending run of a command line, for its successor's parent. */
static const struct batch_run *batch_line(const struct store_batch *b, const struct digest *line)
{
	for (size_t i = b ? b->nruns : 0; i-- > 0;)
		if (digest_eq(&b->runs[i].line, line))
			return &b->runs[i];
	return NULL;
}

static void batch_reset(struct store_batch *b)
{
	if (b->fd >= 0)
		close(b->fd);
	if (b->tmp.len)
		unlink(b->tmp.buf);
	sb_release(&b->tmp);
	store_unlock(b->lock);
	b->fd = b->lock = -1;
	b->off = 0;
	for (size_t i = 0; i < b->nruns; i++) {
		for (size_t j = 0; j < b->runs[i].nfiles; j++) {
			free(b->runs[i].files[j].path);
			free(b->runs[i].files[j].data);
		}
		free(b->runs[i].files);
		free(b->runs[i].meta);
	}
	free(b->runs);
	free(b->objs);
	b->runs = NULL;
	b->objs = NULL;
	b->nruns = b->aruns = b->nobjs = b->aobjs = 0;
}

void store_batch_abort(struct store *st)
{
	if (!st->batch)
		return;
	batch_reset(st->batch);
	free(st->batch);
	st->batch = NULL;
}

/* Appends an object to the batch's pack (once: a pack must not hold one
 * object twice), whole and deflated, as git's own packs hold them. */
static int batch_put(struct store *st, const char *type, const void *data, size_t len, const unsigned char oid[OID_RAW])
{
	struct store_batch *b = st->batch;
	unsigned char hdr[16], *z = NULL;
	size_t h = 0;
	int rc = -1;
	z_stream zs;
	memset(&zs, 0, sizeof(zs));
	if (batch_find(b, oid))
		return 0;
	if (b->fd < 0) {
		if ((b->lock = store_lock(st, STORE_LOCK_SHARED)) < 0)
			return -1;
		sb_addf(&b->tmp, "%s/objects/tmp_obj_pack_XXXXXX", st->dir);
		b->fd = mkostemp(b->tmp.buf, O_CLOEXEC);
		if (b->fd < 0) {
			err_sys("cannot create a temp file in %s/objects", st->dir);
			sb_release(&b->tmp);
			return -1;
		}
		static const unsigned char head[12] = { 'P', 'A', 'C', 'K', 0, 0, 0, 2, 0, 0, 0, 0 };
		if (write_all(b->fd, head, sizeof(head)) < 0)
			return err_sys("cannot write %s", b->tmp.buf);
		b->off = sizeof(head);
	}
	/* type and size: 3 bits, then 4 + 7 per byte of the size */
	int t = !strcmp(type, "commit") ? 1 : !strcmp(type, "tree") ? 2 : 3;
	uint64_t sz = len;
	hdr[h] = (unsigned char)(t << 4 | (sz & 15));
	for (sz >>= 4; sz; sz >>= 7) {
		hdr[h++] |= 0x80;
		hdr[h] = (unsigned char)(sz & 0x7f);
	}
	h++;
	if (deflate_start(&zs, len) != Z_OK)
		return err_set("zlib failed for an object");
	size_t cap = deflateBound(&zs, (uLong)len);
	z = xmalloc(cap);
	zs.next_in = (unsigned char *)data;
	zs.avail_in = (uInt)len;
	zs.next_out = z;
	zs.avail_out = (uInt)cap;
	if (deflate(&zs, Z_FINISH) != Z_STREAM_END) {
		err_set("zlib failed for an object");
		goto out;
	}
	if (write_all(b->fd, hdr, h) < 0 || write_all(b->fd, z, zs.total_out) < 0) {
		err_sys("cannot write %s", b->tmp.buf);
		goto out;
	}
	if (b->nobjs == b->aobjs) {
		b->aobjs = b->aobjs ? 2 * b->aobjs : 64;
		b->objs = xrealloc(b->objs, b->aobjs * sizeof(*b->objs));
	}
	struct batch_obj *o = &b->objs[b->nobjs++];
	memcpy(o->oid, oid, OID_RAW);
	o->off = b->off;
	o->crc = (uint32_t)crc32(crc32(0, hdr, (uInt)h), z, (uInt)zs.total_out);
	b->off += h + zs.total_out;
	rc = 0;
out:
	deflateEnd(&zs);
	free(z);
	return rc;
}

/* Keeps what the index row of r needs until the flush: its meta (the row
 * is made from it as reindex makes one) and each file's id, mode and
 * inline copy. */
static void batch_keep(struct store_batch *b, const struct run_record *r, const char *meta, size_t metalen)
{
	if (b->nruns == b->aruns) {
		b->aruns = b->aruns ? 2 * b->aruns : 16;
		b->runs = xrealloc(b->runs, b->aruns * sizeof(*b->runs));
	}
	struct batch_run *br = &b->runs[b->nruns++];
	memset(br, 0, sizeof(*br));
	memcpy(br->hash, r->hash, OID_HEX);
	memcpy(br->parent, r->parent, OID_HEX);
	br->fp = r->fp;
	br->line = r->line;
	br->meta = xstrndup(meta, metalen);
	br->files = xcalloc(r->nfiles ? r->nfiles : 1, sizeof(*br->files));
	for (size_t i = 0; i < r->nfiles; i++) {
		const struct run_file *f = &r->files[i];
		if (f->kind == FILE_DIR)
			continue;
		struct batch_file *bf = &br->files[br->nfiles++];
		bf->path = xstrdup(f->path);
		memcpy(bf->oid, f->oid, OID_HEX);
		bf->mode = f->mode;
		bf->enc = f->enc;
		if (f->data) {
			bf->data = xmalloc(f->datalen ? f->datalen : 1);
			memcpy(bf->data, f->data, f->datalen);
			bf->datalen = f->datalen;
		}
	}
}

static int by_oid(const void *a, const void *b)
{
	return memcmp(((const struct batch_obj *)a)->oid, ((const struct batch_obj *)b)->oid, OID_RAW);
}

static void put_be32(struct strbuf *sb, uint32_t v)
{
	unsigned char b[4] = { (unsigned char)(v >> 24), (unsigned char)(v >> 16), (unsigned char)(v >> 8),
			       (unsigned char)v };
	sb_add(sb, (const char *)b, 4);
}

/* Finishes the pack (object count, SHA-1 trailer), writes its version-2
 * index and moves both into objects/pack/, the index last: a reader finds
 * a pack through its index. */
static int publish_pack(struct store *st, struct store_batch *b, int sync)
{
	struct strbuf idx = STRBUF_INIT, path = STRBUF_INIT, tmpidx = STRBUF_INIT;
	struct sha1_ctx sha;
	unsigned char sum[OID_RAW], buf[65536], cnt[4];
	char hex[OID_HEX];
	int rc = -1, ifd = -1;
	uint32_t n = (uint32_t)b->nobjs;
	cnt[0] = (unsigned char)(n >> 24);
	cnt[1] = (unsigned char)(n >> 16);
	cnt[2] = (unsigned char)(n >> 8);
	cnt[3] = (unsigned char)n;
	if (pwrite(b->fd, cnt, 4, 8) != 4) {
		err_sys("cannot write %s", b->tmp.buf);
		goto out;
	}
	sha1_init(&sha);
	for (uint64_t off = 0; off < b->off;) {
		ssize_t got = pread(b->fd, buf, sizeof(buf), (off_t)off);
		if (got <= 0) {
			err_sys("cannot read %s back", b->tmp.buf);
			goto out;
		}
		sha1_update(&sha, (size_t)got, buf);
		off += (uint64_t)got;
	}
	sha1_digest(&sha, OID_RAW, sum);
	if (pwrite(b->fd, sum, OID_RAW, (off_t)b->off) != OID_RAW || (sync && fsync(b->fd) < 0)) {
		err_sys("cannot write %s", b->tmp.buf);
		goto out;
	}

	qsort(b->objs, b->nobjs, sizeof(*b->objs), by_oid);
	sb_add(&idx, "\377tOc\0\0\0\2", 8);
	for (int f = 0, i = 0; f < 256; f++) {
		while ((size_t)i < b->nobjs && b->objs[i].oid[0] <= f)
			i++;
		put_be32(&idx, (uint32_t)i);
	}
	for (size_t i = 0; i < b->nobjs; i++)
		sb_add(&idx, (const char *)b->objs[i].oid, OID_RAW);
	for (size_t i = 0; i < b->nobjs; i++)
		put_be32(&idx, b->objs[i].crc);
	size_t nbig = 0;
	for (size_t i = 0; i < b->nobjs; i++)
		put_be32(&idx,
			 b->objs[i].off < 0x80000000u ? (uint32_t)b->objs[i].off : 0x80000000u | (uint32_t)nbig++);
	for (size_t i = 0; i < b->nobjs; i++)
		if (b->objs[i].off >= 0x80000000u) {
			put_be32(&idx, (uint32_t)(b->objs[i].off >> 32));
			put_be32(&idx, (uint32_t)b->objs[i].off);
		}
	sb_add(&idx, (const char *)sum, OID_RAW);
	unsigned char isum[OID_RAW];
	sha1_init(&sha);
	sha1_update(&sha, idx.len, (const uint8_t *)idx.buf);
	sha1_digest(&sha, OID_RAW, isum);
	sb_add(&idx, (const char *)isum, OID_RAW);

	sb_addf(&tmpidx, "%s/objects/tmp_obj_idx_XXXXXX", st->dir);
	ifd = mkostemp(tmpidx.buf, O_CLOEXEC);
	if (ifd < 0) {
		err_sys("cannot create a temp file in %s/objects", st->dir);
		sb_reset(&tmpidx);
		goto out;
	}
	if (write_all(ifd, idx.buf, idx.len) < 0 || fchmod(ifd, 0444) < 0 || fchmod(b->fd, 0444) < 0 ||
	    (sync && fsync(ifd) < 0)) {
		err_sys("cannot write %s", tmpidx.buf);
		goto out;
	}
	hex_of(sum, hex);
	sb_addf(&path, "%s/objects/pack", st->dir);
	if (mkdir(path.buf, 0755) < 0 && errno != EEXIST) {
		err_sys("cannot create %s", path.buf);
		goto out;
	}
	sb_addf(&path, "/pack-%s.pack", hex);
	if (rename(b->tmp.buf, path.buf) < 0) {
		err_sys("cannot move a pack to %s", path.buf);
		goto out;
	}
	sb_reset(&b->tmp);
	sb_setlen(&path, path.len - 4);
	sb_adds(&path, "idx");
	if (rename(tmpidx.buf, path.buf) < 0) {
		err_sys("cannot move a pack index to %s", path.buf);
		goto out;
	}
	sb_reset(&tmpidx);
	rc = 0;
out:
	if (ifd >= 0)
		close(ifd);
	if (tmpidx.len)
		unlink(tmpidx.buf);
	sb_release(&idx);
	sb_release(&path);
	sb_release(&tmpidx);
	return rc;
}

/* The index row of a pending run, made from its meta as reindex makes one
 * from git, with the ids, modes and inline copies the save found. */
static int index_pending(struct store *st, struct batch_run *br)
{
	struct run_record r = { 0 };
	int rc = -1;
	if (meta_decode(br->meta, &r) < 0)
		goto out;
	memcpy(r.hash, br->hash, OID_HEX);
	memcpy(r.parent, br->parent, OID_HEX);
	for (size_t j = 0; j < r.nfiles; j++) {
		struct run_file *f = &r.files[j];
		if (f->kind == FILE_DIR)
			continue;
		for (size_t k = 0; k < br->nfiles; k++) {
			struct batch_file *bf = &br->files[k];
			if (strcmp(bf->path, f->path))
				continue;
			memcpy(f->oid, bf->oid, OID_HEX);
			f->mode = bf->mode;
			f->enc = bf->enc;
			f->data = bf->data;
			f->datalen = bf->datalen;
			bf->data = NULL;
			break;
		}
		if (!f->oid[0]) {
			err_set("run %s: file %s of meta was not stored", br->hash, f->path);
			goto out;
		}
	}
	rc = store_index_run(st, &r);
out:
	run_record_free(&r);
	return rc;
}

int store_batch_flush(struct store *st)
{
	struct store_batch *b = st->batch;
	struct strbuf ref = STRBUF_INIT;
	char line[DIGEST_HEX];
	int rc = -1, sync;
	if (!b || (!b->nruns && !b->nobjs))
		return 0;
	sync = want_fsync(st);
	/* objects, then refs, then index rows: as store_save's order */
	if (b->nobjs && publish_pack(st, b, sync) < 0)
		goto out;
	for (size_t i = 0; i < b->nruns; i++) {
		sb_reset(&ref);
		sb_addf(&ref, "refs/cashet/runs/%s", b->runs[i].hash);
		if (store_ref_write(st->dir, ref.buf, b->runs[i].hash) < 0)
			goto out;
		/* a line's newest run last: its ref ends at that one (once the
		 * line has two runs: see store_odb_save) */
		if (batch_line(b, &b->runs[i].line) != &b->runs[i] || !b->runs[i].parent[0])
			continue;
		digest_hex(&b->runs[i].line, line);
		sb_reset(&ref);
		sb_addf(&ref, "refs/cashet/lines/%s", line);
		if (store_ref_write(st->dir, ref.buf, b->runs[i].hash) < 0)
			goto out;
	}
	if (store_exec(st, "BEGIN IMMEDIATE") < 0)
		goto out;
	sqlite3_stmt *s = NULL;
	for (size_t i = 0; i < b->nruns; i++)
		if (index_pending(st, &b->runs[i]) < 0)
			goto rollback;
	/* the claims this process held on them */
	if (sqlite3_prepare_v2(st->db, "DELETE FROM claims WHERE fp=?1 AND pid=?2", -1, &s, NULL) != SQLITE_OK) {
		store_sqlfail(st, "claims");
		goto rollback;
	}
	for (size_t i = 0; i < b->nruns; i++) {
		sqlite3_bind_blob(s, 1, b->runs[i].fp.b, DIGEST_LEN, SQLITE_STATIC);
		sqlite3_bind_int64(s, 2, (int64_t)getpid());
		int sr = sqlite3_step(s);
		sqlite3_reset(s);
		if (sr != SQLITE_DONE) {
			store_sqlfail(st, "claims");
			sqlite3_finalize(s);
			goto rollback;
		}
	}
	sqlite3_finalize(s);
	if (store_exec(st, "COMMIT") == 0) {
		rc = 0;
		goto out;
	}
rollback:
	store_rollback(st);
out:
	/* published or not, the batch is over: a run whose ref was written
	 * but not its row is indexed again by gc and reindex */
	batch_reset(b);
	sb_release(&ref);
	return rc;
}
