/* store-blob: reading a run's blobs without libgit2: inline copies from the
 * index first, then loose git objects inflated with zlib; only packed
 * objects need the git module. Every read is checked against the XXH3
 * digest recorded when the run was stored, so corruption is never replayed. */
#include "store/store-int.h"
#include "store/gitmod.h"

#include <ctype.h>
#include <errno.h>
#include <nettle/sha1.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
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

/* Opens the loose object oid: 0 (*fd set), 1 there is none, -1 error. */
static int open_loose(struct store *st, const char *oid, int *fd)
{
	struct strbuf path = STRBUF_INIT;
	int rc = 0;
	sb_addf(&path, "%s/objects/%.2s/%s", st->dir, oid, oid + 2);
	*fd = open(path.buf, O_RDONLY | O_CLOEXEC);
	if (*fd < 0)
		rc = errno == ENOENT ? 1 : err_sys("cannot open %s", path.buf);
	sb_release(&path);
	return rc;
}

/* RFC 1950: a zlib header for deflate, no preset dictionary, its check */
static int zlib_head_ok(const unsigned char *p)
{
	return (p[0] & 0x0f) == 8 && !(p[1] & 0x20) && ((unsigned)p[0] << 8 | p[1]) % 31 == 0;
}

/* RFC 1951: the 5 bytes at p as a stored block's header (BFINAL, BTYPE
 * 00, then LEN and its complement from the next byte boundary): its
 * BFINAL (*len set), or -1 when they are not one. */
static int stored_head(const unsigned char *p, size_t *len)
{
	*len = (size_t)p[1] | (size_t)p[2] << 8;
	if ((p[0] & 6) || *len != (((size_t)p[3] | (size_t)p[4] << 8) ^ 0xffff))
		return -1;
	return p[0] & 1;
}

/* The zlib stream in p[0..n) if it is stored blocks only, whole, of
 * exactly size bytes (what cashet writes for blobs: packw.c, loose.c),
 * handed to fn as it lies in p, without zlib: 1 done, 0 not such a
 * stream (zlib inflates it, and says what is wrong with it), <0 fn failed.
 * The blocks are walked once before fn sees a byte, so a stream that
 * turns out otherwise was not half fed. */
static int copy_stored(const unsigned char *p, size_t n, uint64_t size, sink_fn fn, void *ctx)
{
	if (n < 2 || !zlib_head_ok(p))
		return 0;
	for (int feed = 0; feed < 2; feed++) {
		uint64_t got = 0;
		size_t at = 2, len;
		for (int last = 0; !last;) {
			if (n - at < 5 || (last = stored_head(p + at, &len)) < 0 || n - at - 5 < len ||
			    len > size - got)
				return 0;
			if (feed && len && fn(ctx, p + at + 5, len) < 0)
				return -1;
			at += 5 + len;
			got += len;
		}
		if (got != size)
			return 0;
	}
	return 1;
}

/* Reads up to len bytes of object oid at pos: how many (> 0), or -1 with
 * err set (E_CORRUPT when the object ends there). */
static ssize_t read_object(int fd, void *buf, size_t len, uint64_t pos, const char *oid)
{
	for (;;) {
		ssize_t n = len ? pread(fd, buf, len, (off_t)pos) : 0;
		if (n > 0)
			return n;
		if (n < 0 && errno == EINTR)
			continue;
		return n < 0 ? err_sys("cannot read object %s", oid)
			     : err_setc(E_CORRUPT, "object %s is truncated", oid);
	}
}

/* Whether the zlib stream at offset in fd, within end, is whole and of
 * stored blocks only: 1 it is (*total: its inflated length), 0 it is not
 * or cannot be read (zlib then says what is wrong with it). Walked by
 * the blocks' headers, a pread each (about 30 ms a GiB), so that no byte
 * is handed on before the whole stream is known to be such. */
static int stored_only(int fd, uint64_t offset, uint64_t end, uint64_t *total)
{
	unsigned char p[5];
	if (end - offset < 2 || pread(fd, p, 2, (off_t)offset) != 2 || !zlib_head_ok(p))
		return 0;
	uint64_t at = offset + 2, got = 0;
	size_t len;
	for (int last = 0; !last;) {
		if (end - at < 5 || pread(fd, p, 5, (off_t)at) != 5 || (last = stored_head(p, &len)) < 0 ||
		    end - at - 5 < len)
			return 0;
		at += 5 + len;
		got += len;
	}
	*total = got;
	return 1;
}

/* Hands fn the content of the stored-only stream at offset in fd (as
 * stored_only found it) as it is read, a chunk at a time: inflate would
 * copy every byte once more into its output buffer (half of a large
 * hit's time). Read, not mapped: populating and unmapping the pages cost
 * four times the read on a virtual machine. */
static int feed_stored(int fd, uint64_t offset, uint64_t end, size_t chunk, const char *oid, sink_fn fn, void *ctx)
{
	unsigned char *buf = xmalloc(chunk);
	uint64_t pos = offset + 2; /* the file offset of buf[0] */
	size_t left = 0;           /* what is left of the current block */
	int last = 0, rc = -1;
	while (!last || left) {
		/* stored_only walked the blocks: one changed since is corrupt */
		ssize_t n = read_object(fd, buf, end - pos < chunk ? (size_t)(end - pos) : chunk, pos, oid);
		if (n < 0)
			goto out;
		size_t at = 0, put = 0;
		while (at < (size_t)n && (!last || left)) {
			if (!left) {
				if ((size_t)n - at < 5)
					break; /* the header is read again with the next chunk */
				if ((last = stored_head(buf + at, &left)) < 0) {
					err_setc(E_CORRUPT, "object %s is corrupt", oid);
					goto out;
				}
				at += 5;
			}
			size_t take = left < (size_t)n - at ? left : (size_t)n - at;
			memmove(buf + put, buf + at, take);
			put += take;
			at += take;
			left -= take;
		}
		if (put && fn(ctx, buf, put) < 0)
			goto out;
		if (!at) { /* a header cut short by the end */
			err_setc(E_CORRUPT, "object %s is corrupt", oid);
			goto out;
		}
		pos += at;
	}
	rc = 0;
out:
	free(buf);
	return rc;
}

/* Inflates the zlib stream of object oid that starts at offset in fd (a
 * loose object from its start, a pack entry after its header), handing
 * every byte (a loose object's "blob <size>\0" header included) to fn,
 * a pack entry's stream (packed) inflating to size bytes,
 * which must check them: the stream's own checksum is not.
 * Returns 0, or <0: err_code() is E_CORRUPT when the object's own bytes
 * are at fault (not zlib, truncated), E_ERROR when reading it or fn
 * failed otherwise. */
static int inflate_fd(int fd, uint64_t offset, int packed, uint64_t size, const char *oid, sink_fn fn, void *ctx)
{
	int rc = -1;
	/* CHUNK: large enough that inflate's copy of the last 32 KiB of each
	 * output chunk into its window, and the syscalls, are noise next to
	 * the data. A file larger than that is mapped a WINDOW at a time and
	 * inflated from the page cache in place, instead of being copied in
	 * by read() first: that copy was a third of a large hit. */
	enum { CHUNK = 1 << 20, WINDOW = 2 << 20 };
	unsigned char *in = NULL, *out = NULL;
	void *map = NULL;
	size_t maplen = 0;
	struct stat sb;
	z_stream z;
	memset(&z, 0, sizeof(z));
	/* How much of the file the stream can take: a pack entry of size
	 * bytes deflates to at most that and a little (stored blocks), so a
	 * small entry of a large pack is read in one small read, not mapped
	 * a window at a time (2 MiB of page tables populated for each of
	 * thousands of files was most of a many-file hit), and without a
	 * stat of the pack (a read past its end is short). */
	uint64_t bound = size + size / 64 + 1024, end = offset + bound, pos = offset;
	int small = packed && bound <= CHUNK;
	if (!small) {
		if (fstat(fd, &sb) < 0)
			return err_sys("cannot read object %s", oid);
		end = packed && offset + bound < (uint64_t)sb.st_size ? offset + bound : (uint64_t)sb.st_size;
	}
	uint64_t span = end - offset;
	int mapped = !small && S_ISREG(sb.st_mode) && span > CHUNK;
	size_t inlen = span < CHUNK ? (size_t)span : CHUNK, outlen = packed && size < CHUNK ? (size_t)size + 1 : CHUNK;
	if (!inlen)
		inlen = 1;
	uint64_t total;
	if (!small && span > CHUNK && stored_only(fd, offset, end, &total) && (!packed || total == size))
		return feed_stored(fd, offset, end, CHUNK, oid, fn, ctx);
	/* zlib's Adler-32 of the content is neither computed nor checked: it
	 * was a quarter of a large hit's time, and every caller checks the
	 * bytes themselves (the run's XXH3 digest, or the object's SHA-1). */
	if (inflateInit(&z) != Z_OK || inflateValidate(&z, 0) != Z_OK) {
		inflateEnd(&z);
		return err_set("zlib init failed");
	}
	if (!mapped)
		in = xmalloc(inlen);
	out = xmalloc(outlen);
	int zr = Z_OK;
	while (zr != Z_STREAM_END) {
		size_t n;
		if (mapped) {
			if (map)
				munmap(map, maplen);
			map = NULL;
			if (pos >= end) {
				err_setc(E_CORRUPT, "object %s is truncated", oid);
				goto out;
			}
			uint64_t base = pos & ~(uint64_t)(WINDOW - 1);
			maplen = end - base < WINDOW ? (size_t)(end - base) : WINDOW;
			map = mmap(NULL, maplen, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, (off_t)base);
			if (map == MAP_FAILED) {
				map = NULL;
				err_sys("cannot read object %s", oid);
				goto out;
			}
			z.next_in = (unsigned char *)map + (pos - base);
			n = maplen - (size_t)(pos - base);
			pos = base + maplen;
		} else {
			ssize_t got = read_object(fd, in, inlen, pos, oid);
			if (got < 0)
				goto out;
			/* a small entry is in the first read whole */
			int st = pos == offset && packed ? copy_stored(in, (size_t)got, size, fn, ctx) : 0;
			if (st != 0) {
				rc = st < 0 ? -1 : 0;
				goto out;
			}
			pos += (uint64_t)got;
			z.next_in = in;
			n = (size_t)got;
		}
		z.avail_in = (uInt)n;
		while (z.avail_in && zr != Z_STREAM_END) {
			z.next_out = out;
			z.avail_out = (uInt)outlen;
			zr = inflate(&z, Z_NO_FLUSH);
			if (zr != Z_OK && zr != Z_STREAM_END && zr != Z_BUF_ERROR) {
				err_setc(E_CORRUPT, "object %s is corrupt", oid);
				goto out;
			}
			size_t got = outlen - z.avail_out;
			if (got && fn(ctx, out, got) < 0)
				goto out;
		}
	}
	rc = 0;
out:
	inflateEnd(&z);
	if (map)
		munmap(map, maplen);
	free(in);
	free(out);
	return rc;
}

/* The content of a loose blob: the header is checked and skipped, and the
 * content must be exactly as long as the header says. */
struct loose_blob {
	struct verify *v;
	const char *oid;
	char head[32];
	size_t hlen;
	int in_body;
	uint64_t declared, got;
};

static int loose_blob_bytes(void *ctx, const void *data, size_t len)
{
	struct loose_blob *b = ctx;
	const char *p = data;
	while (!b->in_body && len) {
		char *end;
		b->head[b->hlen++] = *p++;
		len--;
		if (b->head[b->hlen - 1] != 0) {
			if (b->hlen == sizeof(b->head))
				return err_setc(E_CORRUPT, "object %s is not a blob", b->oid);
			continue;
		}
		if (strncmp(b->head, "blob ", 5) || !isdigit((unsigned char)b->head[5]))
			return err_setc(E_CORRUPT, "object %s is not a blob", b->oid);
		errno = 0;
		b->declared = strtoull(b->head + 5, &end, 10);
		if (errno || *end)
			return err_setc(E_CORRUPT, "object %s is not a blob", b->oid);
		b->in_body = 1;
	}
	if (!len)
		return 0;
	if (len > b->declared - b->got)
		return err_setc(E_CORRUPT, "object %s is longer than its header says", b->oid);
	b->got += len;
	return verify_feed(b->v, p, len);
}

static int packed_blob_bytes(void *ctx, const void *data, size_t len)
{
	struct loose_blob *b = ctx;
	if (len > b->declared - b->got)
		return err_setc(E_CORRUPT, "object %s is longer than its pack entry says", b->oid);
	b->got += len;
	return verify_feed(b->v, data, len);
}

/* Streams the content of the blob held open by h (a loose object, or a
 * whole pack entry) through v. 0 done, <0 as inflate_fd. */
static int read_held(const struct blob_hold *h, const char *oid, struct verify *v)
{
	struct loose_blob b = { .v = v, .oid = oid, .in_body = h->packed, .declared = h->size };
	int rc = inflate_fd(h->fd, h->offset, h->packed, h->size, oid, h->packed ? packed_blob_bytes : loose_blob_bytes,
			    &b);
	if (rc == 0 && (!b.in_body || b.got != b.declared))
		rc = err_setc(E_CORRUPT, "object %s is truncated", oid);
	return rc;
}

/* Where oid can be read without libgit2: a loose object, else a whole
 * entry of a pack. 0 (h holds it open), 1 neither (libgit2 must read
 * it: packed as a delta), -1 error. */
static int locate(struct store *st, const char *oid, struct blob_hold *h)
{
	h->offset = h->size = 0;
	h->packed = 0;
	h->pack[0] = '\0';
	/* The packs already mapped first (a hit restoring thousands of
	 * packed files then tries no loose path for each), then the loose
	 * object, then the packs there now: auto-pack writes a pack before it
	 * deletes the loose copies, so one of the three has it. */
	int rc = store_pack_find(st, oid, 1, &h->fd, &h->offset, &h->size, h->pack);
	if (rc == 1 && (rc = open_loose(st, oid, &h->fd)) == 1)
		rc = store_pack_find(st, oid, 0, &h->fd, &h->offset, &h->size, h->pack);
	h->packed = rc == 0 && h->offset > 0;
	return rc;
}

static int sha1_bytes(void *ctx, const void *data, size_t len)
{
	sha1_update(ctx, len, data);
	return 0;
}

/* Whether the copy h holds still hashes to oid: 1 it does, 0 it does not
 * (or does not even inflate), -1 cannot tell (a read error). Plain SHA-1
 * (nettle), not git's collision-detecting one: a collision could only
 * make a damaged object look intact, and the run's own XXH3 digest still
 * refuses to replay it. */
static int copy_intact(const struct blob_hold *h, const char *oid)
{
	struct sha1_ctx s;
	unsigned char d[SHA1_DIGEST_SIZE];
	char hex[2 * SHA1_DIGEST_SIZE + 1];
	sha1_init(&s);
	if (h->packed) { /* a pack entry holds the content only */
		char head[32];
		int n = snprintf(head, sizeof(head), "blob %llu", (unsigned long long)h->size) + 1;
		sha1_update(&s, (size_t)n, (const uint8_t *)head);
	}
	int rc = inflate_fd(h->fd, h->offset, h->packed, h->size, oid, sha1_bytes, &s);
	if (rc != 0)
		return rc < 0 && err_code() == E_CORRUPT ? 0 : -1;
	sha1_digest(&s, sizeof(d), d);
	bytes_to_hex(d, sizeof(d), hex);
	return strcmp(hex, oid) == 0;
}

static int verified(struct verify *v, const struct run_file *f)
{
	struct digest d;
	hasher_digest(&v->h, &d);
	return v->size == f->size && digest_eq(&d, &f->xxh);
}

/* A damaged loose object is moved aside (objects/xx/yyy.corrupt): git would
 * otherwise see the id as present and never write the good content again.
 * Only ever an object whose own bytes are bad: a destination that cannot be
 * written, or an index row naming another run's object, is not the
 * object's fault, and moving a good object aside would break its runs. */
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

/* Reads f's object from the copy h holds through v: 0 it is f's content,
 * <0 not (err says why). A copy whose own bytes are bad is dealt with: a
 * loose one moved aside, a pack's noted (store_pack_mark_bad); *again is
 * then set when another copy may be tried. */
static int read_copy(struct store *st, const struct run_file *f, const struct blob_hold *h, struct verify *v,
		     int *again)
{
	*again = 0;
	int rc = read_held(h, f->oid, v), bad;
	if (rc == 0 && verified(v, f))
		return 0;
	if (rc < 0) {
		/* a sink that failed (a full disk at the destination) is
		 * reported as what it is; the object is fine */
		if (err_code() != E_CORRUPT)
			return -1;
		bad = 1;
		if (!h->packed) {
			char *why = xstrdup(err_msg());
			err_setc(E_CORRUPT, "%s: %s", f->path, why);
			free(why);
		}
	} else {
		/* Whole, but not the content this run recorded: the copy was
		 * altered, or the index names another (maybe another run's,
		 * intact) object. */
		bad = copy_intact(h, f->oid) == 0;
		err_setc(E_CORRUPT, "%s (object %.12s) is corrupt: content does not match its recorded hash", f->path,
			 f->oid);
	}
	if (bad && !h->packed)
		quarantine(st, f->oid);
	if (bad && h->packed) {
		store_pack_mark_bad(st, f->oid, h->pack);
		*again = 1;
	}
	return -1;
}

/* Streams f to sink, checked against its digest. Its object is read from
 * held when that is given and open; it stays open. Otherwise a copy of
 * the object is found, and when a pack's copy turns out damaged and reset
 * can take back what the sink got, another copy is read (a loose one a
 * re-run wrote, or another pack's). */
static int stream_blob(struct store *st, const struct run_file *f, sink_fn sink, int (*reset)(void *ctx), void *ctx,
		       const struct blob_hold *held)
{
	struct verify v = { .sink = sink, .ctx = ctx };
	struct strbuf tmp = STRBUF_INIT;
	struct blob_hold own = { .fd = -1 };
	const struct blob_hold *h = held && held->fd >= 0 ? held : &own;
	char *first = NULL; /* why the copy read first was refused */
	int rc = -1;
	hasher_init(&v.h);
	if (f->data && f->enc == 1) {
		unsigned long long n = ZSTD_getFrameContentSize(f->data, f->datalen);
		if (n == ZSTD_CONTENTSIZE_ERROR || n == ZSTD_CONTENTSIZE_UNKNOWN || n > INLINE_MAX) {
			err_setc(E_CORRUPT, "inline copy of %s is corrupt", f->path);
			goto out;
		}
		sb_grow(&tmp, (size_t)n);
		size_t got = ZSTD_decompress(tmp.buf, (size_t)n + 1, f->data, f->datalen);
		if (ZSTD_isError(got)) {
			err_setc(E_CORRUPT, "inline copy of %s is corrupt", f->path);
			goto out;
		}
		if (verify_feed(&v, tmp.buf, got) < 0)
			goto out;
	} else if (f->data) {
		if (verify_feed(&v, f->data, f->datalen) < 0)
			goto out;
	} else {
		int lr;
		/* at most two copies: when the first is a pack's and damaged,
		 * the next locate passes it over */
		for (int tries = 0;; tries++) {
			int again;
			lr = h == &own ? locate(st, f->oid, &own) : 0;
			if (lr != 0 || read_copy(st, f, h, &v, &again) == 0)
				break;
			if (!again || tries || h != &own || !reset || reset(ctx) < 0)
				goto out;
			first = xstrdup(err_msg());
			store_blob_release(&own);
			hasher_free(&v.h);
			hasher_init(&v.h);
			v.size = 0;
		}
		if (lr < 0)
			goto out;
		if (lr == 1) {
			const struct gitmod *g = gitmod_get();
			if (!g || g->read_blob(st->dir, f->oid, &tmp) < 0 || verify_feed(&v, tmp.buf, tmp.len) < 0) {
				if (first) /* no other copy: what was wrong with the one there */
					err_setc(E_CORRUPT, "%s", first);
				else if (err_code() == E_NOTFOUND) /* the store's fault, not the destination's */
					err_setc(E_CORRUPT, "%s (object %.12s) is missing from the store", f->path,
						 f->oid);
				goto out;
			}
		}
	}
	if (!verified(&v, f)) {
		err_setc(E_CORRUPT, "%s (object %.12s) is corrupt: content does not match its recorded hash", f->path,
			 f->oid);
		goto out;
	}
	rc = 0;
out:
	free(first);
	store_blob_release(&own);
	hasher_free(&v.h);
	sb_release(&tmp);
	return rc;
}

/* Sinks, each with its reset: what takes back the bytes it got, so that
 * another copy of a damaged object can be read in its place. */
struct sb_sink {
	struct strbuf *sb;
	size_t start;
};

static int sink_sb(void *ctx, const void *data, size_t len)
{
	sb_add(((struct sb_sink *)ctx)->sb, data, len);
	return 0;
}

static int reset_sb(void *ctx)
{
	struct sb_sink *s = ctx;
	sb_setlen(s->sb, s->start);
	return 0;
}

static int sink_fd(void *ctx, const void *data, size_t len)
{
	if (write_all(*(int *)ctx, data, len) < 0)
		return err_set("%s", strerror(errno));
	return 0;
}

/* store_blob_to_fd's file is a new one the caller made for the blob */
static int reset_fd(void *ctx)
{
	int fd = *(int *)ctx;
	return ftruncate(fd, 0) == 0 && lseek(fd, 0, SEEK_SET) == 0 ? 0 : -1;
}

/* Up to this size a blob is checked in memory, inflated once; beyond it,
 * twice (checked, then written), to keep a hit's memory bounded: two
 * streams of 8 MiB stay well under 32 MiB. */
#define CHECK_IN_MEMORY_MAX (8u << 20)

static int sink_none(void *ctx, const void *data, size_t len)
{
	return 0;
}

int store_blob_read(struct store *st, const struct run_file *f, struct strbuf *sb)
{
	struct sb_sink s = { sb, sb->len };
	int rc = stream_blob(st, f, sink_sb, reset_sb, &s, NULL);
	if (rc < 0)
		reset_sb(&s);
	return rc;
}

int store_blob_to_fd(struct store *st, const struct run_file *f, int fd)
{
	return stream_blob(st, f, sink_fd, reset_fd, &fd, NULL);
}

int store_blob_check(struct store *st, const struct run_file *f, struct strbuf *mem, struct blob_hold *held)
{
	held->fd = -1;
	/* a large object: checked as it inflates, kept open, nothing kept
	 * in memory; a smaller one is inflated once, into memory. A pack's
	 * copy found damaged is passed over by the second locate. */
	for (int tries = 0; !f->data && f->size > CHECK_IN_MEMORY_MAX; tries++) {
		int rc = locate(st, f->oid, held);
		if (rc < 0)
			return -1;
		if (rc == 1)
			break;
		if (stream_blob(st, f, sink_none, NULL, NULL, held) == 0)
			return 0;
		int other = held->packed && store_pack_bad(st, f->oid);
		store_blob_release(held);
		if (!other || tries)
			return -1;
	}
	return store_blob_read(st, f, mem);
}

int store_blob_send(struct store *st, const struct run_file *f, const struct blob_hold *held, int fd)
{
	return stream_blob(st, f, sink_fd, NULL, &fd, held);
}

void store_blob_release(struct blob_hold *h)
{
	if (h->fd >= 0)
		close(h->fd);
	h->fd = -1;
}
