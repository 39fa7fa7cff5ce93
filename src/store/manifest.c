/* manifest: parsing the text head of an export archive (see manifest.h).
 * Archives come from other machines and over HTTP (PUT /archive), so every
 * line is bounded and checked before anything is believed; the pack that
 * follows is verified separately, object by object, by the git module. */
#include "store/manifest.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int is_oid(const char *s)
{
	return strlen(s) == 40 && strspn(s, "0123456789abcdef") == 40;
}

/* Decimal digits only, and below 2^64 (strtoull would saturate). */
static int pack_size(const char *s, uint64_t *size)
{
	if (!*s || strspn(s, "0123456789") != strlen(s))
		return -1;
	errno = 0;
	*size = strtoull(s, NULL, 10);
	return errno == ERANGE ? -1 : 0;
}

int manifest_parse(const char *buf, size_t len, uint64_t file_size, const char *name, struct strvec *ids,
		   uint64_t *offset, uint64_t *size)
{
	struct strvec got = STRVEC_INIT;
	char line[MANIFEST_LINE_MAX + 1];
	size_t pos = 0;
	uint64_t rest;
	int rc = -1, lineno = 0, have_pack = 0, whole = len >= file_size;
	while (!have_pack) {
		size_t avail = len - pos, n;
		const char *nl;
		if (!avail) {
			if (!whole)
				goto more;
			break;
		}
		lineno++;
		/* a line, newline included, is at most MANIFEST_LINE_MAX bytes */
		nl = memchr(buf + pos, '\n', avail < MANIFEST_LINE_MAX ? avail : MANIFEST_LINE_MAX);
		if (!nl && avail < MANIFEST_LINE_MAX && !whole)
			goto more;
		if (!nl) {
			err_set(lineno == 1 ? "%s: not a cashet archive"
					    : "%s: the archive is truncated or damaged (line %d)",
				name, lineno);
			goto out;
		}
		n = (size_t)(nl - (buf + pos));
		memcpy(line, buf + pos, n);
		line[n] = '\0';
		pos += n + 1;
		if (lineno == 1) {
			int v;
			char extra;
			if (sscanf(line, ARCHIVE_MAGIC " %d%c", &v, &extra) != 1 ||
			    strncmp(line, ARCHIVE_MAGIC " ", 15)) {
				err_set("%s: not a cashet archive", name);
				goto out;
			}
			if (v != ARCHIVE_VERSION) {
				err_set("%s: archive format %d is not supported (this cashet reads format %d)", name, v,
					ARCHIVE_VERSION);
				goto out;
			}
		} else if (!strncmp(line, "run ", 4) && is_oid(line + 4)) {
			sv_push(&got, line + 4);
		} else if (!strncmp(line, "pack ", 5) && pack_size(line + 5, size) == 0) {
			have_pack = 1;
		} else {
			err_set("%s: line %d of the manifest is damaged", name, lineno);
			goto out;
		}
	}
	if (!have_pack) {
		err_set(lineno ? "%s: the archive is truncated (no pack)" : "%s: not a cashet archive", name);
		goto out;
	}
	/* rest is compared with the size, not offset + size with the file
	 * size: a size near 2^64 would wrap the sum around */
	*offset = (uint64_t)pos;
	rest = file_size > *offset ? file_size - *offset : 0;
	if (*size > rest) {
		err_set("%s: the archive is truncated (%" PRIu64 " of %" PRIu64 " pack bytes)", name, rest, *size);
		goto out;
	}
	if (*size < rest) {
		err_set("%s: unexpected data after the pack", name);
		goto out;
	}
	sv_sort(&got);
	for (size_t i = 1; i < got.n; i++)
		if (!strcmp(got.v[i - 1], got.v[i])) {
			err_set("%s: run %.12s is listed twice", name, got.v[i]);
			goto out;
		}
	for (size_t i = 0; i < got.n; i++)
		sv_push_nocopy(ids, got.v[i]);
	free(got.v);
	return 0;
more:
	rc = 1;
out:
	sv_release(&got);
	return rc;
}
