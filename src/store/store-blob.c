/* store-blob: reading a run's blobs without libgit2: inline copies from the
 * index first, then loose git objects inflated with zlib; only packed
 * objects need the git module. Every read is checked against the XXH3
 * digest recorded when the run was stored, so corruption is never replayed. */
#include "store/store-int.h"
#include "store/gitmod.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

typedef int (*sink_fn)(void *ctx, const void *data, size_t len);

struct verify {
	struct hasher h;
	uint64_t size;
	sink_fn sink;
	void *ctx;
};

static int verify_feed(struct verify *v, const void *data, size_t len)
{
	hasher_bytes(&v->h, data, len);
	v->size += len;
	return v->sink(v->ctx, data, len);
}

/* Inflates a loose object, skipping its "blob <size>\0" header.
 * Returns 1 if no loose object exists, 0 done, <0 error. */
static int read_loose(struct store *st, const char *oid, struct verify *v)
{
	struct strbuf path = STRBUF_INIT;
	sb_addf(&path, "%s/objects/%.2s/%s", st->dir, oid, oid + 2);
	int fd = open(path.buf, O_RDONLY | O_CLOEXEC);
	int rc = -1, header = 1;
	enum { CHUNK = 1 << 16 };
	unsigned char *in = NULL, *out = NULL;
	z_stream z;
	memset(&z, 0, sizeof(z));
	if (fd < 0) {
		rc = errno == ENOENT ? 1 : err_sys("cannot open %s", path.buf);
		goto out_nozlib;
	}
	in = xmalloc(CHUNK);
	out = xmalloc(CHUNK);
	if (inflateInit(&z) != Z_OK) {
		err_set("zlib init failed");
		goto out_nozlib;
	}
	int zr = Z_OK;
	while (zr != Z_STREAM_END) {
		ssize_t n = read(fd, in, CHUNK);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			err_set("object %s is truncated", oid);
			goto out;
		}
		z.next_in = in;
		z.avail_in = (uInt)n;
		while (z.avail_in && zr != Z_STREAM_END) {
			z.next_out = out;
			z.avail_out = CHUNK;
			zr = inflate(&z, Z_NO_FLUSH);
			if (zr != Z_OK && zr != Z_STREAM_END && zr != Z_BUF_ERROR) {
				err_set("object %s is corrupt", oid);
				goto out;
			}
			size_t got = CHUNK - z.avail_out;
			unsigned char *p = out;
			if (header) {
				unsigned char *nul = memchr(out, 0, got);
				if (!nul || memcmp(out, "blob ", 5)) {
					err_set("object %s is not a blob", oid);
					goto out;
				}
				header = 0;
				got -= (size_t)(nul + 1 - out);
				p = nul + 1;
			}
			if (got && verify_feed(v, p, got) < 0)
				goto out;
		}
	}
	rc = 0;
out:
	inflateEnd(&z);
out_nozlib:
	if (fd >= 0)
		close(fd);
	free(in);
	free(out);
	sb_release(&path);
	return rc;
}

static int verified(struct verify *v, const struct run_file *f)
{
	struct digest d;
	hasher_digest(&v->h, &d);
	return v->size == f->size && digest_eq(&d, &f->xxh);
}

/* A damaged loose object is moved aside (objects/xx/yyy.corrupt): git would
 * otherwise see the id as present and never write the good content again. */
static void quarantine(struct store *st, const char *oid)
{
	struct strbuf from = STRBUF_INIT, to = STRBUF_INIT;
	sb_addf(&from, "%s/objects/%.2s/%s", st->dir, oid, oid + 2);
	sb_addf(&to, "%s.corrupt", from.buf);
	if (access(from.buf, F_OK) == 0 && rename(from.buf, to.buf) < 0) {
		/* nothing better to do: the warning about the corruption follows */
	}
	sb_release(&from);
	sb_release(&to);
}

static int stream_blob(struct store *st, const struct run_file *f, sink_fn sink, void *ctx)
{
	struct verify v = { .sink = sink, .ctx = ctx };
	struct strbuf tmp = STRBUF_INIT;
	int rc = -1;
	hasher_init(&v.h);
	if (f->data && f->enc == 1) {
		unsigned long long n = ZSTD_getFrameContentSize(f->data, f->datalen);
		if (n == ZSTD_CONTENTSIZE_ERROR || n == ZSTD_CONTENTSIZE_UNKNOWN || n > INLINE_MAX) {
			err_set("inline copy of %s is corrupt", f->path);
			goto out;
		}
		sb_grow(&tmp, (size_t)n);
		size_t got = ZSTD_decompress(tmp.buf, (size_t)n + 1, f->data, f->datalen);
		if (ZSTD_isError(got)) {
			err_set("inline copy of %s is corrupt", f->path);
			goto out;
		}
		if (verify_feed(&v, tmp.buf, got) < 0)
			goto out;
	} else if (f->data) {
		if (verify_feed(&v, f->data, f->datalen) < 0)
			goto out;
	} else {
		int lr = read_loose(st, f->oid, &v);
		if (lr < 0 || (lr == 0 && !verified(&v, f))) {
			quarantine(st, f->oid);
			if (lr == 0)
				err_set("%s (object %.12s) is corrupt: content does not match its recorded hash",
					f->path, f->oid);
			goto out;
		}
		if (lr == 1) {
			const struct gitmod *g = gitmod_get();
			if (!g || g->read_blob(st->dir, f->oid, &tmp) < 0 || verify_feed(&v, tmp.buf, tmp.len) < 0)
				goto out;
		}
	}
	if (!verified(&v, f)) {
		err_set("%s (object %.12s) is corrupt: content does not match its recorded hash", f->path, f->oid);
		goto out;
	}
	rc = 0;
out:
	hasher_free(&v.h);
	sb_release(&tmp);
	return rc;
}

static int sink_sb(void *ctx, const void *data, size_t len)
{
	sb_add(ctx, data, len);
	return 0;
}

static int sink_fd(void *ctx, const void *data, size_t len)
{
	if (write_all(*(int *)ctx, data, len) < 0)
		return err_sys("write failed");
	return 0;
}

int store_blob_read(struct store *st, const struct run_file *f, struct strbuf *sb)
{
	size_t start = sb->len;
	int rc = stream_blob(st, f, sink_sb, sb);
	if (rc < 0)
		sb_setlen(sb, start);
	return rc;
}

int store_blob_to_fd(struct store *st, const struct run_file *f, int fd)
{
	return stream_blob(st, f, sink_fd, &fd);
}
