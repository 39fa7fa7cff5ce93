/* loose: large blobs written as git loose objects without libgit2, which
 * reads a file whole and deflates it. The file streams through libcrypto's
 * SHA-1 and out as zlib stored blocks (no compression: no zlib level keeps
 * within the budget of a copy plus a hash, see README) into a temp file
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
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

/* SLICE: how much of the file is read, hashed and written at a time,
 * small enough to stay in the CPU's cache from the read to the write.
 * BLOCK: the most a stored block holds. */
enum { SLICE = 256 << 10, BLOCK = 0xffff };

/* Writes data[0..len) to fd as deflate stored blocks (RFC 1951 3.2.4;
 * the stream is byte-aligned before each), the last one final when last
 * is set: each a header (BFINAL with BTYPE 00 in one byte, LEN, its
 * complement) before up to BLOCK bytes written from where they are, all
 * in one writev. zlib's deflate would copy every byte once more. */
static int put_stored(int fd, const unsigned char *data, size_t len, int last)
{
	enum { MAX_BLOCKS = SLICE / BLOCK + 2 }; /* a slice and the object's header */
	unsigned char head[MAX_BLOCKS][5];
	struct iovec iov[2 * MAX_BLOCKS];
	int n = 0, b = 0;
	do {
		size_t l = len < BLOCK ? len : BLOCK;
		head[b][0] = last && l == len;
		head[b][1] = l & 0xff;
		head[b][2] = (l >> 8) & 0xff;
		head[b][3] = ~l & 0xff;
		head[b][4] = (~l >> 8) & 0xff;
		iov[n++] = (struct iovec){ head[b++], 5 };
		if (l)
			iov[n++] = (struct iovec){ (void *)data, l };
		data += l;
		len -= l;
	} while (len);
	return writev_all(fd, iov, n);
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
	struct strbuf tmp = STRBUF_INIT, objects = STRBUF_INIT;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;
	char hex[GIT_OID_HEXSZ + 1];
	enum { HEAD_MAX = 32 }; /* "blob <size>" and its NUL */
	unsigned char *buf = xmalloc(HEAD_MAX + SLICE);
	EVP_MD_CTX *sha = EVP_MD_CTX_new();
	struct hasher h;
	int rc = -1, out = -1, created = 0;
	hasher_init(&h);

	sb_addf(&objects, "%s/objects", git_repo_dir());
	sb_addf(&tmp, "%s/tmp_obj_XXXXXX", objects.buf);
	if (!sha || EVP_DigestInit_ex(sha, EVP_sha1(), NULL) != 1) {
		err_set("cannot hash %s: libcrypto has no SHA-1", src);
		goto out;
	}
	if ((out = mkostemp(tmp.buf, O_CLOEXEC)) < 0) {
		err_sys("cannot create %s", tmp.buf);
		goto out;
	}
	created = 1;
	/* zlib's wrapper (RFC 1950): deflate with a 32 KiB window, "fastest"
	 * (here: stored), and at the end the Adler-32 of the content,
	 * libdeflate's vectorized one, which runs at memory speed */
	static const unsigned char zhead[2] = { 0x78, 0x01 };
	uint32_t adler = libdeflate_adler32(0, NULL, 0);
	if (write_all(out, zhead, sizeof(zhead)) < 0) {
		err_sys("cannot write %s", tmp.buf);
		goto out;
	}
	/* The object's header goes first, in the first slice's blocks. Read,
	 * not mapped: populating and unmapping the pages cost four times the
	 * read on a virtual machine. (SHA-1 on a second thread was slower on a
	 * 2-core guest, not faster: the thread competes with whatever else
	 * runs.) */
	size_t have = (size_t)snprintf((char *)buf, HEAD_MAX, "blob %llu", (unsigned long long)size) + 1;
	for (uint64_t at = 0;;) {
		size_t want = size - at < SLICE ? (size_t)(size - at) : SLICE;
		ssize_t n = want ? pread(fd, buf + have, want, (off_t)at) : 0;
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			err_sys("cannot read %s", src);
			goto out;
		}
		if (want && n == 0) {
			err_set("%s shrank while it was stored", src);
			goto out;
		}
		hasher_bytes(&h, buf + have, (size_t)n);
		at += (uint64_t)n;
		have += (size_t)n;
		if (EVP_DigestUpdate(sha, buf, have) != 1) {
			err_set("cannot hash %s", src);
			goto out;
		}
		adler = libdeflate_adler32(adler, buf, have);
		if (put_stored(out, buf, have, at == size) < 0) {
			err_sys("cannot write %s", tmp.buf);
			goto out;
		}
		have = 0;
		if (at == size)
			break;
	}
	unsigned char ztail[4] = { adler >> 24, (adler >> 16) & 0xff, (adler >> 8) & 0xff, adler & 0xff };
	if (write_all(out, ztail, sizeof(ztail)) < 0) {
		err_sys("cannot write %s", tmp.buf);
		goto out;
	}
	if (EVP_DigestFinal_ex(sha, md, &mdlen) != 1 || mdlen != GIT_OID_RAWSZ) {
		err_set("cannot hash %s", src);
		goto out;
	}
	/* read-only, as git and libgit2 leave their objects */
	if (fchmod(out, 0444) < 0 || (gs_want_fsync() && fsync(out) < 0)) {
		err_sys("cannot write %s", tmp.buf);
		goto out;
	}
	int closed = close(out);
	out = -1;
	if (closed < 0) {
		err_sys("cannot write %s", tmp.buf);
		goto out;
	}
	git_oid_fromraw(oid, md);
	git_oid_tostr(hex, sizeof(hex), oid);
	if (publish(tmp.buf, objects.buf, hex) < 0)
		goto out;
	hasher_digest(&h, xxh);
	rc = 0;
out:
	hasher_free(&h);
	if (out >= 0)
		close(out);
	if (rc < 0 && created)
		unlink(tmp.buf);
	EVP_MD_CTX_free(sha);
	free(buf);
	sb_release(&tmp);
	sb_release(&objects);
	return rc;
}
