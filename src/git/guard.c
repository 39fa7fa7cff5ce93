/* guard: loose objects read with their sizes checked. libgit2 1.5's own
 * loose reader trusts a damaged object: one whose content is longer than
 * its header says overflows its buffer (fsck, gc, reindex crashed), and
 * one cut short spins in inflate forever (they hung, and so did an exec
 * that had to rebuild its index, its command never run). This backend is
 * asked first: it reads every loose object itself and reports a damaged
 * one as an error, so libgit2's reader never sees it; the caller then
 * looks for another copy (copies.c) or names the object. */
#include "git/gitint.h"

#include <errno.h>
#include <fcntl.h>
#include <git2/sys/odb_backend.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

struct guard {
	git_odb_backend parent;
	char *objects;
};

static int corrupt(const char *hex, const char *why)
{
	char msg[160];
	snprintf(msg, sizeof(msg), "loose object %s is corrupt (%s)", hex, why);
	git_error_set_str(GIT_ERROR_ODB, msg);
	return GIT_ERROR;
}

/* "type size\0": the type and size, and the header's length; -1 if bad. */
static int parse_header(const unsigned char *h, size_t n, git_object_t *type, size_t *size, size_t *hlen)
{
	const unsigned char *nul = memchr(h, 0, n), *sp = memchr(h, ' ', n);
	if (!nul || !sp || sp > nul || sp + 1 == nul)
		return -1;
	char t[8];
	if ((size_t)(sp - h) >= sizeof(t))
		return -1;
	memcpy(t, h, (size_t)(sp - h));
	t[sp - h] = '\0';
	*type = git_object_string2type(t);
	if (*type != GIT_OBJECT_COMMIT && *type != GIT_OBJECT_TREE && *type != GIT_OBJECT_BLOB &&
	    *type != GIT_OBJECT_TAG)
		return -1;
	size_t v = 0;
	for (const unsigned char *p = sp + 1; p < nul; p++) {
		if (*p < '0' || *p > '9' || v > (SIZE_MAX - 9) / 10)
			return -1;
		v = v * 10 + (size_t)(*p - '0');
	}
	*size = v;
	*hlen = (size_t)(nul - h) + 1;
	return 0;
}

static int guard_read(void **out, size_t *len, git_object_t *type, git_odb_backend *b, const git_oid *oid)
{
	struct guard *g = (struct guard *)b;
	char hex[GIT_OID_HEXSZ + 1], path[4096];
	unsigned char head[64], *in = NULL, *data = NULL;
	struct stat sb;
	z_stream z;
	size_t size = 0, hlen = 0, have;
	int fd, rc = GIT_ERROR, zrc, zinit = 0;
	git_oid_tostr(hex, sizeof(hex), oid);
	snprintf(path, sizeof(path), "%s/%.2s/%s", g->objects, hex, hex + 2);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return errno == ENOENT ? GIT_PASSTHROUGH : (git_error_set_str(GIT_ERROR_OS, path), GIT_ERROR);
	if (fstat(fd, &sb) < 0 || !(in = malloc((size_t)sb.st_size + 1))) {
		git_error_set_str(GIT_ERROR_OS, path);
		goto out;
	}
	ssize_t got = 0, n;
	while (got < sb.st_size && (n = read(fd, in + got, (size_t)(sb.st_size - got))) > 0)
		got += n;
	memset(&z, 0, sizeof(z));
	if (inflateInit(&z) != Z_OK) {
		git_error_set_str(GIT_ERROR_ZLIB, "inflateInit");
		goto out;
	}
	zinit = 1;
	z.next_in = in;
	z.avail_in = (uInt)got;
	z.next_out = head;
	z.avail_out = sizeof(head);
	zrc = inflate(&z, Z_SYNC_FLUSH);
	have = sizeof(head) - z.avail_out;
	if ((zrc != Z_OK && zrc != Z_STREAM_END) || parse_header(head, have, type, &size, &hlen) < 0) {
		rc = corrupt(hex, "bad header");
		goto out;
	}
	/* one byte more than the header says: its room shows content too long */
	if (!(data = git_odb_backend_data_alloc(b, size + 1))) {
		git_error_set_oom();
		goto out;
	}
	if (have - hlen > size) {
		rc = corrupt(hex, "longer than its header says");
		goto out;
	}
	memcpy(data, head + hlen, have - hlen);
	z.next_out = data + (have - hlen);
	z.avail_out = (uInt)(size + 1 - (have - hlen));
	while (zrc == Z_OK) {
		uInt before_in = z.avail_in, before_out = z.avail_out;
		zrc = inflate(&z, Z_NO_FLUSH);
		if (zrc == Z_OK && z.avail_in == before_in && z.avail_out == before_out)
			break; /* no progress: the stream is cut short */
		if (z.avail_out == 0)
			break; /* past the size */
	}
	if (zrc != Z_STREAM_END) {
		rc = corrupt(hex, z.avail_out == 0 ? "longer than its header says" : "cut short or damaged");
		goto out;
	}
	if (z.total_out != hlen + size) {
		rc = corrupt(hex, "shorter than its header says");
		goto out;
	}
	data[size] = '\0';
	*out = data;
	*len = size;
	data = NULL;
	rc = 0;
out:
	if (zinit)
		inflateEnd(&z);
	if (data)
		git_odb_backend_data_free(b, data);
	free(in);
	close(fd);
	return rc;
}

/* Listing is the loose backend's (libgit2 calls every backend's). */
static int guard_foreach(git_odb_backend *b, git_odb_foreach_cb cb, void *payload)
{
	(void)b;
	(void)cb;
	(void)payload;
	return 0;
}

static void guard_free(git_odb_backend *b)
{
	struct guard *g = (struct guard *)b;
	free(g->objects);
	free(g);
}

int gs_guard_new(const char *objects, git_odb_backend **out)
{
	struct guard *g = xcalloc(1, sizeof(*g));
	git_odb_init_backend(&g->parent, GIT_ODB_BACKEND_VERSION);
	g->parent.read = guard_read;
	g->parent.foreach = guard_foreach;
	g->parent.free = guard_free;
	g->objects = xstrdup(objects);
	*out = &g->parent;
	return 0;
}

int gs_guard_odb(git_odb *odb, const char *objects)
{
	git_odb_backend *b;
	gs_guard_new(objects, &b);
	/* before libgit2's loose reader (priority 1), after the packs (2, and
	 * added first: libgit2's sort keeps the order of equals), as reads
	 * went before: fsck finds a damaged pack entry beside a loose copy */
	if (git_odb_add_backend(odb, b, 2) < 0) {
		b->free(b);
		return git_fail("cannot guard the object database");
	}
	return 0;
}
