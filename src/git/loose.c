/* loose: large blobs written as git loose objects without libgit2, which
 * reads a file whole and deflates it. The file streams through libcrypto's
 * SHA-1 and into zlib stored blocks (no compression: no zlib level keeps
 * within the budget of a copy plus a hash, see README) in a temp file
 * renamed into objects/xx/, as libgit2 writes its loose objects: memory
 * stays O(1) whatever the size, and git reads them as any other. */
#include "git/gitint.h"

#include <errno.h>
#include <fcntl.h>
#include <libdeflate.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

/* CHUNK: deflate's output buffer; WINDOW: how much of the file is mapped
 * at once (it counts in the resident memory while it is mapped); SLICE:
 * how much is hashed, then deflated, at a time. */
enum { CHUNK = 1 << 20, WINDOW = 8 << 20, SLICE = 256 << 10 };

struct loose_out {
	z_stream z;
	uint32_t adler;     /* of everything deflated so far */
	unsigned char *buf; /* deflate's output, CHUNK bytes */
	int fd;
	const char *tmp;
};

/* Deflates len bytes of data (flush: Z_NO_FLUSH or Z_FINISH) and writes
 * what comes out to the temp file. */
static int put(struct loose_out *o, const void *data, size_t len, int flush)
{
	o->z.next_in = (unsigned char *)data;
	o->z.avail_in = (uInt)len;
	if (len)
		o->adler = libdeflate_adler32(o->adler, data, len);
	for (;;) {
		o->z.next_out = o->buf;
		o->z.avail_out = CHUNK;
		int zr = deflate(&o->z, flush);
		if (zr == Z_STREAM_ERROR)
			return err_set("zlib failed writing %s", o->tmp);
		size_t n = CHUNK - o->z.avail_out;
		if (n && write_all(o->fd, o->buf, n) < 0)
			return err_sys("cannot write %s", o->tmp);
		if (flush == Z_FINISH ? zr == Z_STREAM_END : o->z.avail_in == 0 && o->z.avail_out != 0)
			return 0;
	}
}

/* Whether the store asks for object files to be fsync()ed before they are
 * renamed into place: git's core.fsyncObjectFiles, which libgit2 honours
 * for the objects it writes, so these get the same guarantee. */
int gs_want_fsync(void)
{
	git_config *cfg = NULL;
	int on = 0;
	if (git_repository_config_snapshot(&cfg, repo) == 0 &&
	    git_config_get_bool(&on, cfg, "core.fsyncObjectFiles") < 0)
		on = 0;
	git_config_free(cfg);
	git_error_clear();
	return on;
}

/* Moves the finished temp file to objects/xx/yyy. An object already there
 * is the same content (same name): it stays, the temp file goes. */
static int publish(const char *tmp, const char *objects, const char *hex)
{
	struct strbuf path = STRBUF_INIT;
	struct stat sb;
	int rc = 0;
	sb_addf(&path, "%s/%.2s", objects, hex);
	if (mkdir(path.buf, 0755) < 0 && errno != EEXIST) {
		rc = err_sys("cannot create %s", path.buf);
		goto out;
	}
	sb_addf(&path, "/%s", hex + 2);
	if (stat(path.buf, &sb) == 0)
		unlink(tmp);
	else if (rename(tmp, path.buf) < 0)
		rc = err_sys("cannot write %s", path.buf);
out:
	sb_release(&path);
	return rc;
}

int gs_write_loose(const char *src, int fd, uint64_t size, git_oid *oid, struct digest *xxh)
{
	struct loose_out o = { .fd = -1 };
	struct strbuf tmp = STRBUF_INIT, objects = STRBUF_INIT;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;
	char head[64], hex[GIT_OID_HEXSZ + 1];
	EVP_MD_CTX *sha = EVP_MD_CTX_new();
	struct hasher h;
	int rc = -1, zinit = 0, created = 0;
	hasher_init(&h);

	sb_addf(&objects, "%s/objects", git_repo_dir());
	sb_addf(&tmp, "%s/tmp_obj_XXXXXX", objects.buf);
	o.tmp = tmp.buf;
	o.buf = xmalloc(CHUNK);
	if (!sha || EVP_DigestInit_ex(sha, EVP_sha1(), NULL) != 1) {
		err_set("cannot hash %s: libcrypto has no SHA-1", src);
		goto out;
	}
	/* zlib writes the deflate blocks; the zlib wrapper around them (RFC
	 * 1950: two bytes, then the Adler-32 of the content) is written here,
	 * with libdeflate's vectorized Adler-32, which runs at memory speed:
	 * zlib's own was a fifth of the time of a large store. */
	if (deflateInit2(&o.z, Z_NO_COMPRESSION, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
		err_set("zlib init failed");
		goto out;
	}
	zinit = 1;
	o.adler = libdeflate_adler32(0, NULL, 0);
	if ((o.fd = mkostemp(tmp.buf, O_CLOEXEC)) < 0) {
		err_sys("cannot create %s", tmp.buf);
		goto out;
	}
	created = 1;
	/* deflate, 32 KiB window, "fastest" (here: stored) */
	static const unsigned char zhead[2] = { 0x78, 0x01 };
	if (write_all(o.fd, zhead, sizeof(zhead)) < 0) {
		err_sys("cannot write %s", tmp.buf);
		goto out;
	}
	int hlen = snprintf(head, sizeof(head), "blob %llu", (unsigned long long)size) + 1;
	EVP_DigestUpdate(sha, head, (size_t)hlen);
	if (put(&o, head, (size_t)hlen, Z_NO_FLUSH) < 0)
		goto out;
	/* A window of the file at a time, mapped: the pages are hashed and
	 * deflated where the page cache holds them, never copied in first.
	 * (SHA-1 on a second thread, while the window is written, was slower
	 * on this 2-core guest, not faster: each munmap() then interrupts the
	 * other CPU, and the thread competes with whatever else runs.) */
	for (uint64_t at = 0; at < size;) {
		size_t len = size - at < WINDOW ? (size_t)(size - at) : WINDOW;
		void *p = mmap(NULL, len, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, (off_t)at);
		if (p == MAP_FAILED) {
			err_sys("cannot read %s", src);
			goto out;
		}
		/* a slice small enough to stay in the CPU's cache between
		 * the hash and the copy */
		int pr = 0, hr = 1;
		for (size_t off = 0; off < len && pr == 0 && hr == 1; off += SLICE) {
			size_t n = len - off < SLICE ? len - off : SLICE;
			hr = EVP_DigestUpdate(sha, (char *)p + off, n);
			hasher_bytes(&h, (char *)p + off, n);
			pr = put(&o, (char *)p + off, n, Z_NO_FLUSH);
		}
		munmap(p, len);
		if (pr < 0)
			goto out;
		if (hr != 1) {
			err_set("cannot hash %s", src);
			goto out;
		}
		at += len;
	}
	if (put(&o, NULL, 0, Z_FINISH) < 0)
		goto out;
	unsigned char ztail[4] = { o.adler >> 24, (o.adler >> 16) & 0xff, (o.adler >> 8) & 0xff, o.adler & 0xff };
	if (write_all(o.fd, ztail, sizeof(ztail)) < 0) {
		err_sys("cannot write %s", tmp.buf);
		goto out;
	}
	if (EVP_DigestFinal_ex(sha, md, &mdlen) != 1 || mdlen != GIT_OID_RAWSZ) {
		err_set("cannot hash %s", src);
		goto out;
	}
	/* read-only, as git and libgit2 leave their objects */
	if (fchmod(o.fd, 0444) < 0 || (gs_want_fsync() && fsync(o.fd) < 0)) {
		err_sys("cannot write %s", tmp.buf);
		goto out;
	}
	if (close(o.fd) < 0) {
		o.fd = -1;
		err_sys("cannot write %s", tmp.buf);
		goto out;
	}
	o.fd = -1;
	git_oid_fromraw(oid, md);
	git_oid_tostr(hex, sizeof(hex), oid);
	if (publish(tmp.buf, objects.buf, hex) < 0)
		goto out;
	hasher_digest(&h, xxh);
	rc = 0;
out:
	hasher_free(&h);
	if (o.fd >= 0)
		close(o.fd);
	if (rc < 0 && created)
		unlink(tmp.buf);
	if (zinit)
		deflateEnd(&o.z);
	EVP_MD_CTX_free(sha);
	free(o.buf);
	sb_release(&tmp);
	sb_release(&objects);
	return rc;
}
