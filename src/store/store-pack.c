/* store-pack: finding a blob in the store's packs without libgit2, so that
 * a hit on a packed object (after gc or import) streams it like a loose one
 * instead of loading libgit2 and holding the whole object in memory. Only
 * whole entries are read here: a delta needs its base, and libgit2 then
 * reads it (gc does not deltify objects over 512 MiB, the big ones). */
#include "store/store-int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

enum { PACK_BLOB = 3 };

static uint32_t be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Looks id up in one version-2 .idx (mapped): its offset in the pack, or
 * 0 when it is not there (an offset is never 0: the pack header is). */
static uint64_t idx_offset(const unsigned char *m, size_t len, const unsigned char id[20])
{
	if (len < 8 + 256 * 4 || memcmp(m, "\377tOc", 4) || be32(m + 4) != 2)
		return 0;
	const unsigned char *fan = m + 8;
	uint32_t n = be32(fan + 255 * 4), lo = id[0] ? be32(fan + (id[0] - 1) * 4) : 0, hi = be32(fan + id[0] * 4);
	const unsigned char *names = fan + 256 * 4, *offs = names + (size_t)n * 24, *big = offs + (size_t)n * 4;
	if (hi > n || lo > hi || (size_t)(big - m) > len)
		return 0;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		int c = memcmp(names + (size_t)mid * 20, id, 20);
		if (c == 0) {
			uint32_t o = be32(offs + (size_t)mid * 4);
			if (!(o & 0x80000000u))
				return o;
			const unsigned char *b = big + (size_t)(o & 0x7fffffffu) * 8;
			if ((size_t)(b + 8 - m) > len)
				return 0;
			return (uint64_t)be32(b) << 32 | be32(b + 4);
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 0;
}

/* Reads the entry header at offset of the open pack: a whole blob gives
 * its size and where its zlib stream starts; anything else is 1. */
static int entry_header(int fd, uint64_t offset, uint64_t *size, uint64_t *data)
{
	unsigned char h[16];
	ssize_t got = pread(fd, h, sizeof(h), (off_t)offset);
	if (got <= 0)
		return got < 0 ? err_sys("cannot read a pack") : 1;
	int type = (h[0] >> 4) & 7, shift = 4;
	uint64_t sz = h[0] & 15;
	size_t i = 0;
	while (h[i] & 0x80) {
		if (++i >= (size_t)got || shift > 57)
			return 1;
		sz |= (uint64_t)(h[i] & 0x7f) << shift;
		shift += 7;
	}
	if (type != PACK_BLOB)
		return 1;
	*size = sz;
	*data = offset + i + 1;
	return 0;
}

void store_pack_unload(struct store *st)
{
	for (size_t i = 0; i < st->npacks; i++) {
		munmap((void *)st->packs[i].idx, st->packs[i].len);
		if (st->packs[i].fd >= 0)
			close(st->packs[i].fd);
		free(st->packs[i].pack);
	}
	free(st->packs);
	st->packs = NULL;
	st->npacks = 0;
	st->packs_loaded = 0;
}

/* Maps every .idx of objects/pack (the caller holds packs_mu). */
static void load_packs(struct store *st)
{
	struct strbuf p = STRBUF_INIT;
	store_pack_unload(st);
	st->packs_loaded = 1;
	sb_addf(&p, "%s/objects/pack", st->dir);
	DIR *d = opendir(p.buf);
	struct dirent *e;
	size_t base = p.len;
	while (d && (e = readdir(d))) {
		size_t n = strlen(e->d_name);
		if (n < 5 || strcmp(e->d_name + n - 4, ".idx"))
			continue;
		sb_setlen(&p, base);
		sb_addf(&p, "/%s", e->d_name);
		int ifd = open(p.buf, O_RDONLY | O_CLOEXEC);
		struct stat sb, ps;
		if (ifd < 0 || fstat(ifd, &sb) < 0 || sb.st_size == 0) {
			if (ifd >= 0)
				close(ifd);
			continue;
		}
		/* an index whose pack is gone lists copies that are not
		 * there: readers and writers pass them over, as libgit2 does */
		sb_setlen(&p, p.len - 4);
		sb_adds(&p, ".pack");
		if (stat(p.buf, &ps) < 0) {
			close(ifd);
			continue;
		}
		void *m = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, ifd, 0);
		close(ifd);
		if (m == MAP_FAILED)
			continue;
		st->packs = xrealloc(st->packs, (st->npacks + 1) * sizeof(*st->packs));
		st->packs[st->npacks++] = (struct pack_map){ xstrdup(p.buf), -1, m, (size_t)sb.st_size };
	}
	if (d)
		closedir(d);
	sb_release(&p);
}

static const char *base_name(const char *path)
{
	const char *slash = strrchr(path, '/');
	return slash ? slash + 1 : path;
}

/* Whether pack (a file name) holds a damaged copy of id, as a read of it
 * found (store_pack_mark_bad). */
static int copy_bad(const struct store *st, const char *pack, const unsigned char id[20])
{
	char hex[OID_HEX];
	bytes_to_hex(id, 20, hex);
	for (size_t i = 0; i < st->bad_copies.n; i++) {
		const char *e = st->bad_copies.v[i];
		if (!strncmp(e, hex, 40) && !strcmp(e + 41, pack))
			return 1;
	}
	return 0;
}

/* Where the mapped packs hold a copy of id not known to be damaged: its
 * offset in pack *k, 0 in none (the caller holds packs_mu). */
static uint64_t packed_at(const struct store *st, const unsigned char id[20], size_t *k)
{
	for (*k = 0; *k < st->npacks; ++*k) {
		uint64_t off = idx_offset(st->packs[*k].idx, st->packs[*k].len, id);
		if (off && !(st->bad_copies.n && copy_bad(st, base_name(st->packs[*k].pack), id)))
			return off;
	}
	return 0;
}

int store_pack_find(struct store *st, const char *oid, int mapped_only, int *fd, uint64_t *data, uint64_t *size,
		    char pack[PACK_NAME_MAX])
{
	unsigned char id[20];
	int rc = 1;
	*fd = -1;
	if (strlen(oid) != 40 || hex_to_bytes(oid, id, 20) < 0)
		return 1;
	pthread_mutex_lock(&st->packs_mu);
	/* packs come and go (auto-pack, gc, import): what is not found in
	 * the ones mapped is looked for again in those there now */
	for (int pass = st->packs_loaded ? 0 : 1; rc == 1 && pass < (mapped_only ? 1 : 2); pass++) {
		if (pass == 1)
			load_packs(st);
		size_t i;
		uint64_t off = packed_at(st, id, &i);
		if (off) {
			struct pack_map *pm = &st->packs[i];
			if (pm->fd < 0)
				pm->fd = open(pm->pack, O_RDONLY | O_CLOEXEC);
			/* an fd of its own for the caller (it closes it); the
			 * contents of a pack never change */
			*fd = pm->fd >= 0 ? fcntl(pm->fd, F_DUPFD_CLOEXEC, 0) : -1;
			if (*fd < 0) {
				if (errno == ENOENT)
					continue; /* merged away since: mapped again in the next pass */
				rc = err_sys("cannot open %s", st->packs[i].pack);
				break;
			}
			rc = entry_header(*fd, off, size, data);
			snprintf(pack, PACK_NAME_MAX, "%s", base_name(pm->pack));
			if (rc != 0) {
				close(*fd);
				*fd = -1;
			}
			break; /* in this pack (1: a delta, libgit2's) */
		}
	}
	pthread_mutex_unlock(&st->packs_mu);
	return rc;
}

struct pack_pos {
	size_t pack, i;
	uint64_t off;
};

static int by_pack_pos(const void *a, const void *b)
{
	const struct pack_pos *x = a, *y = b;
	if (x->pack != y->pack)
		return x->pack < y->pack ? -1 : 1;
	if (x->off != y->off)
		return x->off < y->off ? -1 : 1;
	return x->i < y->i ? -1 : x->i > y->i;
}

void store_pack_order(struct store *st, struct strvec *oids)
{
	if (!oids->n)
		return; /* an empty store's reindex: oids->v may be NULL */
	struct pack_pos *pos = xcalloc(oids->n, sizeof(*pos));
	char **v = xcalloc(oids->n, sizeof(*v));
	pthread_mutex_lock(&st->packs_mu);
	load_packs(st);
	for (size_t i = 0; i < oids->n; i++) {
		unsigned char id[20];
		pos[i] = (struct pack_pos){ st->npacks, i, 0 }; /* not packed: last, in the list's order */
		if (strlen(oids->v[i]) != 40 || hex_to_bytes(oids->v[i], id, 20) < 0)
			continue;
		size_t k;
		uint64_t off = packed_at(st, id, &k);
		if (off)
			pos[i] = (struct pack_pos){ k, i, off };
	}
	pthread_mutex_unlock(&st->packs_mu);
	qsort(pos, oids->n, sizeof(*pos), by_pack_pos);
	for (size_t i = 0; i < oids->n; i++)
		v[i] = oids->v[pos[i].i];
	memcpy(oids->v, v, oids->n * sizeof(*v));
	free(v);
	free(pos);
}

int store_pack_has(struct store *st, const char *oid, int reload)
{
	unsigned char id[20];
	int have = 0;
	if (strlen(oid) != 40 || hex_to_bytes(oid, id, 20) < 0)
		return 0;
	pthread_mutex_lock(&st->packs_mu);
	/* the packs mapped, then those there now (one may have come since) */
	for (int pass = st->packs_loaded ? 0 : 1; !have && pass < (reload || !st->packs_loaded ? 2 : 1); pass++) {
		if (pass == 1)
			load_packs(st);
		size_t k;
		have = packed_at(st, id, &k) != 0;
	}
	pthread_mutex_unlock(&st->packs_mu);
	return have;
}

void store_pack_mark_bad(struct store *st, const char *oid, const char *pack)
{
	struct strbuf e = STRBUF_INIT;
	sb_addf(&e, "%s %s", oid, pack);
	pthread_mutex_lock(&st->packs_mu);
	if (!sv_sorted_has(&st->bad_copies, e.buf)) {
		sv_push(&st->bad_copies, e.buf);
		sv_sort(&st->bad_copies);
	}
	pthread_mutex_unlock(&st->packs_mu);
	sb_release(&e);
}

int store_pack_bad(struct store *st, const char *oid)
{
	int bad = 0;
	pthread_mutex_lock(&st->packs_mu);
	for (size_t i = 0; i < st->bad_copies.n && !bad; i++)
		bad = !strncmp(st->bad_copies.v[i], oid, 40);
	pthread_mutex_unlock(&st->packs_mu);
	return bad;
}
