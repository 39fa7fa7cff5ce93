/* delta: git's delta format (a pack's OFS_DELTA payload) made from two
 * small objects. Runs' commits, trees and meta blobs differ in a few ids
 * and numbers: copying the rest from a similar object saves most of each,
 * where git's and libgit2's rule (a delta must halve its target) keeps
 * them whole. Matches are found at any byte, from an index of the base's
 * 4-byte sequences; the caller keeps the delta only if it deflates
 * smaller than the object itself. */
#include "git/gitint.h"

#include <stdlib.h>
#include <string.h>

enum {
	MINMATCH = 4,     /* a copy costs 3 to 5 bytes: shorter ones are inserted */
	MAXCHAIN = 32,    /* candidates tried at a position: bounds the time on repetitive data */
	MAXCOPY = 0xffff, /* bytes a copy instruction moves (3 size bytes allow more; 2 are enough) */
	MAXINSERT = 127,
};

struct gs_delta_index {
	const unsigned char *src;
	size_t len;
	uint32_t mask;
	int32_t *head; /* per hash bucket: the last position with it, or -1 */
	int32_t *next; /* per position: the previous one in its bucket */
};

static uint32_t hash4(const unsigned char *p)
{
	uint32_t v = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
	return v * 2654435761u;
}

struct gs_delta_index *gs_delta_index_new(const void *src, size_t len)
{
	struct gs_delta_index *ix = xcalloc(1, sizeof(*ix));
	size_t buckets = 64;
	while (buckets < len && buckets < ((size_t)1 << 24))
		buckets <<= 1;
	ix->src = src;
	ix->len = len;
	ix->mask = (uint32_t)(buckets - 1);
	ix->head = xmalloc(buckets * sizeof(*ix->head));
	memset(ix->head, 0xff, buckets * sizeof(*ix->head));
	ix->next = xmalloc((len ? len : 1) * sizeof(*ix->next));
	/* later positions first in a chain: nearer matches come out ahead */
	for (size_t i = 0; i + MINMATCH <= len; i++) {
		uint32_t h = hash4(ix->src + i) >> 8 & ix->mask;
		ix->next[i] = ix->head[h];
		ix->head[h] = (int32_t)i;
	}
	return ix;
}

void gs_delta_index_free(struct gs_delta_index *ix)
{
	if (!ix)
		return;
	free(ix->head);
	free(ix->next);
	free(ix);
}

static void put_varint(struct strbuf *out, size_t v)
{
	while (v >= 0x80) {
		sb_addc(out, (char)((v & 0x7f) | 0x80));
		v >>= 7;
	}
	sb_addc(out, (char)v);
}

static void put_insert(struct strbuf *out, const unsigned char *p, size_t n)
{
	while (n) {
		size_t k = n < MAXINSERT ? n : MAXINSERT;
		sb_addc(out, (char)k);
		sb_add(out, p, k);
		p += k;
		n -= k;
	}
}

static void put_copy(struct strbuf *out, size_t off, size_t n)
{
	while (n) {
		size_t k = n < MAXCOPY ? n : MAXCOPY;
		unsigned char op[8];
		int len = 1;
		op[0] = 0x80;
		for (int b = 0; b < 4; b++)
			if (off >> (8 * b) & 0xff) {
				op[0] |= (unsigned char)(1 << b);
				op[len++] = (unsigned char)(off >> (8 * b));
			}
		for (int b = 0; b < 2; b++)
			if (k >> (8 * b) & 0xff) {
				op[0] |= (unsigned char)(0x10 << b);
				op[len++] = (unsigned char)(k >> (8 * b));
			}
		sb_add(out, op, (size_t)len);
		off += k;
		n -= k;
	}
}

int gs_delta_make(const struct gs_delta_index *ix, const void *target, size_t len, size_t max, struct strbuf *out)
{
	const unsigned char *dst = target, *src = ix->src;
	size_t i = 0, lit = 0;
	sb_reset(out);
	put_varint(out, ix->len);
	put_varint(out, len);
	while (i + MINMATCH <= len) {
		size_t best = 0, at = 0;
		int tries = 0;
		for (int32_t c = ix->head[hash4(dst + i) >> 8 & ix->mask]; c >= 0 && tries < MAXCHAIN;
		     c = ix->next[c], tries++) {
			size_t n = 0, room = ix->len - (size_t)c < len - i ? ix->len - (size_t)c : len - i;
			while (n < room && src[(size_t)c + n] == dst[i + n])
				n++;
			if (n > best) {
				best = n;
				at = (size_t)c;
			}
		}
		if (best < MINMATCH) {
			i++;
			continue;
		}
		/* the bytes just before may match too: fewer to insert */
		while (i > lit && at > 0 && src[at - 1] == dst[i - 1]) {
			i--;
			at--;
			best++;
		}
		put_insert(out, dst + lit, i - lit);
		put_copy(out, at, best);
		i += best;
		lit = i;
		if (out->len > max)
			return 1;
	}
	put_insert(out, dst + lit, len - lit);
	return out->len > max ? 1 : 0;
}
