/* autopack: what git's `gc --auto` does, after a miss has stored its run
 * and found too many loose objects or packs: the small loose objects go into one
 * new pack (then deleted: only once the pack and its index are on disk),
 * packs are merged geometrically (each kept pack at least twice the size
 * of all smaller ones together, so an object is rewritten O(log n) times
 * over a store's life), and loose refs go into packed-refs. Nothing is
 * removed that is not in a pack written before; no object is dropped,
 * whatever is reachable. The caller holds the store lock exclusively. */
#include "git/gitint.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Packs larger than this are never merged: one holding a large blob
 * (from an import) would be read whole into memory. */
#define MERGE_MAX_BYTES ((int64_t)256 << 20)

struct pack_info {
	char *stem; /* objects/pack/pack-<id>, without .idx or .pack */
	uint32_t count;
	int64_t bytes;
};

static int by_count(const void *a, const void *b)
{
	const struct pack_info *x = a, *y = b;
	return x->count < y->count ? -1 : x->count > y->count;
}

static uint32_t be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* The number of objects of a version-2 pack index: its fan-out's last entry. */
static int idx_count(const char *path, uint32_t *count)
{
	unsigned char b[8];
	int fd = open(path, O_RDONLY | O_CLOEXEC), rc = -1;
	if (fd >= 0 && pread(fd, b, 8, 0) == 8 && !memcmp(b, "\377tOc", 4) && be32(b + 4) == 2 &&
	    pread(fd, b, 4, 8 + 255 * 4) == 4) {
		*count = be32(b);
		rc = 0;
	}
	if (fd >= 0)
		close(fd);
	return rc;
}

/* A loose object to pack: its header only, read whole when packed (the
 * last WINDOW stay in memory). */
struct obj {
	git_oid id;
	git_object_t type;
	size_t len;
};

/* Like types together, the largest first (git's order): a delta is made
 * from a larger object to a smaller one of the same kind. */
static int by_type_size(const void *a, const void *b)
{
	const struct obj *x = a, *y = b;
	if (x->type != y->type)
		return x->type < y->type ? -1 : 1;
	return x->len > y->len ? -1 : x->len < y->len;
}

/* Each object is
 * tried as a delta on the last WINDOW packed before it of its type, as
 * `git repack --window` does, and depth is bounded as git's is; but any
 * delta that deflates smaller is kept: git's rule (it must halve the
 * object) keeps whole the commits and trees of runs, which differ from
 * each other in a few ids. A blob's delta must halve it still, and a
 * blob that deflating does not halve is stored and not tried at all
 * (packw.c): a hit copies it out of the pack without zlib's inflate, and
 * searching such blobs for deltas was most of the gc of a store holding a
 * directory of 20,000 CSV files (15 s). Runs' meta blobs, text that
 * differs in a few values, still go in as deltas. */
int gs_write_pack(const char *dir, git_odb *odb, const struct strvec *ids, char name[GIT_OID_HEXSZ + 1])
{
	/* larger objects are written whole and kept out of the window: the
	 * index of a base costs 4 bytes a byte of it */
	enum { WINDOW = 10, DEPTH = 50, DELTA_MAX = 1 << 20 };
	struct obj *objs = xcalloc(ids->n ? ids->n : 1, sizeof(*objs));
	struct {
		git_odb_object *o;
		size_t entry;
		int depth;
		struct gs_delta_index *ix;
	} win[WINDOW];
	struct packw *w = NULL;
	struct strbuf delta = STRBUF_INIT, best = STRBUF_INIT;
	size_t nwin = 0, next = 0;
	int rc = -1;
	for (size_t i = 0; i < ids->n; i++)
		if (git_oid_fromstr(&objs[i].id, ids->v[i]) < 0 ||
		    git_odb_read_header(&objs[i].len, &objs[i].type, odb, &objs[i].id) < 0) {
			git_fail(ids->v[i]);
			goto out;
		}
	qsort(objs, ids->n, sizeof(*objs), by_type_size);
	if (gs_packw_begin(dir, &w) < 0)
		goto out;
	for (size_t i = 0; i < ids->n; i++) {
		git_odb_object *o;
		if (gs_read_any(odb, &objs[i].id, &o) < 0) {
			const git_error *e = git_error_last();
			err_set("cannot read object %s to pack: %s (`cashet fsck --prune` drops the runs that need it)",
				git_oid_tostr_s(&objs[i].id), e && e->message ? e->message : "libgit2 error");
			goto out;
		}
		git_object_t type = git_odb_object_type(o);
		const void *data = git_odb_object_data(o);
		size_t len = git_odb_object_size(o), base = 0, max = type == GIT_OBJECT_BLOB ? len / 2 : len;
		int depth = 0, deltified, pays = type != GIT_OBJECT_BLOB || gs_packw_blob_pays(w, data, len);
		sb_reset(&best);
		for (size_t k = 0; k < nwin && len <= DELTA_MAX && pays; k++) {
			if (git_odb_object_type(win[k].o) != type || win[k].depth >= DEPTH)
				continue;
			if (gs_delta_make(win[k].ix, data, len, best.len ? best.len - 1 : max, &delta) == 0) {
				struct strbuf s = best;
				best = delta;
				delta = s;
				base = win[k].entry;
				depth = win[k].depth + 1;
			}
		}
		size_t entry = gs_packw_count(w);
		if (gs_packw_object(w, objs[i].id.id, type, data, len, best.len ? &best : NULL, base, &deltified) < 0) {
			git_odb_object_free(o);
			goto out;
		}
		if (len > DELTA_MAX || !pays) {
			git_odb_object_free(o);
			continue;
		}
		/* it takes the place of the oldest in the window */
		if (nwin == WINDOW) {
			gs_delta_index_free(win[next].ix);
			git_odb_object_free(win[next].o);
		} else {
			nwin++;
		}
		win[next].o = o;
		win[next].entry = entry;
		win[next].depth = deltified ? depth : 0;
		win[next].ix = gs_delta_index_new(data, len);
		next = (next + 1) % WINDOW;
	}
	rc = gs_packw_finish(w, 1, name);
	w = NULL;
out:
	gs_packw_abort(w);
	for (size_t k = 0; k < nwin; k++) {
		gs_delta_index_free(win[k].ix);
		git_odb_object_free(win[k].o);
	}
	free(objs);
	sb_release(&delta);
	sb_release(&best);
	return rc;
}

/* The small loose objects (large blobs stay loose, as gc leaves them). */
static int by_raw(const void *a, const void *b)
{
	return memcmp(a, b, GIT_OID_RAWSZ);
}

/* The ids of every object in the store's packs, sorted (20 bytes each). */
static void packed_ids(const char *dir, struct strbuf *out)
{
	struct strbuf p = STRBUF_INIT, idx = STRBUF_INIT;
	sb_addf(&p, "%s/objects/pack", dir);
	DIR *d = opendir(p.buf);
	struct dirent *e;
	size_t base = p.len;
	while (d && (e = readdir(d))) {
		size_t len = strlen(e->d_name);
		if (strncmp(e->d_name, "pack-", 5) || len < 9 || strcmp(e->d_name + len - 4, ".idx"))
			continue;
		sb_setlen(&p, base);
		sb_addf(&p, "/%s", e->d_name);
		sb_reset(&idx);
		if (read_file_sb(p.buf, &idx) < 0) {
			err_clear();
			continue;
		}
		const unsigned char *m = (const unsigned char *)idx.buf;
		const char *why;
		sb_setlen(&p, p.len - 4);
		if (idx.len < 8 + 1024 || memcmp(m, "\377tOc", 4) || be32(m + 4) != 2 || gs_idx_check(p.buf, &why)) {
			err_clear();
			continue;
		}
		uint32_t n = be32(m + 8 + 255 * 4);
		if (idx.len < 8 + 1024 + (size_t)n * 20)
			continue;
		sb_add(out, m + 8 + 1024, (size_t)n * 20);
	}
	if (d)
		closedir(d);
	if (out->len)
		qsort(out->buf, out->len / GIT_OID_RAWSZ, GIT_OID_RAWSZ, by_raw);
	sb_release(&p);
	sb_release(&idx);
}

static int list_loose(const char *dir, git_odb *odb, const struct strbuf *packed, struct strvec *ids,
		      struct strvec *dups)
{
	struct strbuf p = STRBUF_INIT, id = STRBUF_INIT;
	for (int fan = 0; fan < 256; fan++) {
		sb_reset(&p);
		sb_addf(&p, "%s/objects/%02x", dir, fan);
		DIR *d = opendir(p.buf);
		struct dirent *e;
		while (d && (e = readdir(d))) {
			git_oid oid;
			size_t len;
			git_object_t type;
			if (strlen(e->d_name) != GIT_OID_HEXSZ - 2)
				continue;
			sb_reset(&id);
			sb_addf(&id, "%02x%s", fan, e->d_name);
			if (git_oid_fromstr(&oid, id.buf) < 0)
				continue; /* a .corrupt file or a stranger */
			if (git_odb_read_header(&len, &type, odb, &oid) < 0) {
				git_error_clear();
				continue; /* unreadable: left for fsck */
			}
			if (type == GIT_OBJECT_BLOB && len >= LOOSE_MIN)
				continue;
			if (packed->len &&
			    bsearch(oid.id, packed->buf, packed->len / GIT_OID_RAWSZ, GIT_OID_RAWSZ, by_raw)) {
				/* a pack has it: the loose copy goes, unless it
				 * is the intact one (written again by a run
				 * whose packed copy was found damaged) */
				if (gs_packed_intact(&oid))
					sv_push(dups, id.buf);
				continue;
			}
			sv_push(ids, id.buf);
		}
		if (d)
			closedir(d);
	}
	sb_release(&p);
	sb_release(&id);
	return 0;
}

/* Removes the loose copies of ids, now in a pack: what prune-packed does,
 * but for the emptied fan-out directories, which the next runs' objects
 * go into (a directory made cost a small miss 50 to 450 us on an ext4
 * disk without a journal). */
static void remove_loose(const char *dir, const struct strvec *ids)
{
	struct strbuf p = STRBUF_INIT;
	for (size_t i = 0; i < ids->n; i++) {
		sb_reset(&p);
		sb_addf(&p, "%s/objects/%.2s/%s", dir, ids->v[i], ids->v[i] + 2);
		unlink(p.buf);
	}
	sb_release(&p);
}

static void list_packs(const char *dir, struct pack_info **packs, size_t *n)
{
	struct strbuf p = STRBUF_INIT, q = STRBUF_INIT;
	sb_addf(&p, "%s/objects/pack", dir);
	DIR *d = opendir(p.buf);
	struct dirent *e;
	while (d && (e = readdir(d))) {
		size_t len = strlen(e->d_name);
		struct stat sb;
		uint32_t count = 0;
		if (strncmp(e->d_name, "pack-", 5) || len < 9 || strcmp(e->d_name + len - 4, ".idx"))
			continue;
		sb_reset(&q);
		sb_addf(&q, "%s/%.*s", p.buf, (int)(len - 4), e->d_name);
		size_t stem = q.len;
		sb_adds(&q, ".keep");
		if (access(q.buf, F_OK) == 0)
			continue;
		sb_setlen(&q, stem);
		sb_adds(&q, ".pack");
		if (stat(q.buf, &sb) < 0 || sb.st_size > MERGE_MAX_BYTES)
			continue;
		sb_setlen(&q, stem);
		sb_adds(&q, ".idx");
		if (idx_count(q.buf, &count) < 0)
			continue;
		sb_setlen(&q, stem);
		/* a damaged index names wrong ids or offsets: its pack is left
		 * as it is, for fsck to index again */
		const char *why;
		if (gs_idx_check(q.buf, &why) != 0) {
			err_clear();
			continue;
		}
		*packs = xrealloc(*packs, (*n + 1) * sizeof(**packs));
		(*packs)[(*n)++] = (struct pack_info){ xstrdup(q.buf), count, (int64_t)sb.st_size };
	}
	if (d)
		closedir(d);
	sb_release(&p);
	sb_release(&q);
}

/* The n objects ids of a pack that shares some with w (or holds a
 * damaged entry), each w lacks added whole, read through odb (a delta of
 * the pack resolved; a damaged copy passed over): 0, 1 when one has no
 * intact copy. */
static int copy_objects(struct packw *w, git_odb *odb, const unsigned char *ids, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		const unsigned char *id = ids + (size_t)i * GIT_OID_RAWSZ;
		git_odb_object *o = NULL;
		git_oid oid;
		int d;
		if (gs_packw_has(w, id))
			continue;
		git_oid_fromraw(&oid, id);
		if (gs_read_any(odb, &oid, &o) < 0) {
			git_error_clear();
			return 1; /* damaged, no intact copy: the pack stays for gc and fsck */
		}
		int rc = gs_packw_object(w, id, git_odb_object_type(o), git_odb_object_data(o), git_odb_object_size(o),
					 NULL, 0, &d);
		git_odb_object_free(o);
		if (rc < 0)
			return -1;
	}
	return 0;
}

/* Appends the entries of pack stem (.idx, .pack) to w: verbatim, or,
 * when it shares an object with w (a pipeline's batches share their
 * steps' common blobs), each object w lacks on its own. 0, 1 when it
 * cannot be merged (not one object per entry, or a damaged object with
 * no intact copy), -1 error. */
static int copy_pack(struct packw *w, git_odb *odb, const char *stem)
{
	struct strbuf p = STRBUF_INIT, idx = STRBUF_INIT;
	unsigned char head[12];
	uint64_t *offs = NULL;
	uint32_t *crcs = NULL;
	struct stat sb;
	int rc = -1, fd = -1;
	sb_addf(&p, "%s.idx", stem);
	if (read_file_sb(p.buf, &idx) < 0)
		goto out;
	const unsigned char *m = (const unsigned char *)idx.buf;
	uint32_t n = idx.len >= 8 + 1024 ? be32(m + 8 + 255 * 4) : 0;
	const unsigned char *ids = m + 8 + 1024, *crc = ids + (size_t)n * 20, *off = crc + (size_t)n * 4,
			    *big = off + (size_t)n * 4;
	if (idx.len < 8 + 1024 || memcmp(m, "\377tOc", 4) || be32(m + 4) != 2 || (size_t)(big - m) + 40 > idx.len) {
		err_set("%s: not a version-2 pack index", p.buf);
		goto out;
	}
	sb_reset(&p);
	sb_addf(&p, "%s.pack", stem);
	if ((fd = open(p.buf, O_RDONLY | O_CLOEXEC)) < 0 || fstat(fd, &sb) < 0 || pread(fd, head, 12, 0) != 12) {
		err_sys("cannot read %s", p.buf);
		goto out;
	}
	if (memcmp(head, "PACK", 4) || be32(head + 8) != n || sb.st_size < 32) {
		rc = 1; /* not one object per entry: left as it is */
		goto out;
	}
	offs = xmalloc((n ? n : 1) * sizeof(*offs));
	crcs = xmalloc((n ? n : 1) * sizeof(*crcs));
	for (uint32_t i = 0; i < n; i++) {
		uint32_t o = be32(off + (size_t)i * 4);
		crcs[i] = be32(crc + (size_t)i * 4);
		if (o & 0x80000000u) {
			const unsigned char *b = big + (size_t)(o & 0x7fffffffu) * 8;
			if ((size_t)(b + 8 - m) > idx.len - 40) {
				err_set("%s: truncated", stem);
				goto out;
			}
			offs[i] = (uint64_t)be32(b) << 32 | be32(b + 4);
		} else {
			offs[i] = o;
		}
	}
	rc = gs_packw_append(w, fd, 12, (uint64_t)sb.st_size - 20, ids, offs, crcs, n);
	if (rc == 1) /* shares objects with w, or holds a damaged entry */
		rc = copy_objects(w, odb, ids, n);
out:
	if (fd >= 0)
		close(fd);
	free(offs);
	free(crcs);
	sb_release(&p);
	sb_release(&idx);
	return rc;
}

/* Merges the smallest packs while one of them is not at least twice as
 * large as all smaller ones together: what stays is a geometric series,
 * so a store of n objects has O(log n) packs. The entries are copied as
 * they are (deltas too, each pack's in one stretch, so an offset delta
 * still finds its base), not searched for deltas again: a merge runs at
 * disk speed, whatever the store's size; only a pack sharing objects with
 * those before it has its other objects copied one by one, whole. */
static int merge_packs(const char *dir, git_odb *odb, struct autopack_report *rep)
{
	struct pack_info *packs = NULL;
	struct packw *w = NULL;
	struct strbuf p = STRBUF_INIT;
	size_t n = 0, upto = 0;
	uint64_t sum = 0;
	int rc = -1;
	list_packs(dir, &packs, &n);
	if (n)
		qsort(packs, n, sizeof(*packs), by_count);
	for (size_t i = 0; i < n; i++) {
		if (i > 0 && packs[i].count < 2 * sum)
			upto = i + 1;
		sum += packs[i].count;
	}
	if (upto < 2) {
		rc = 0;
		goto out;
	}
	if (gs_packw_begin(dir, &w) < 0)
		goto out;
	size_t merged = 0;
	for (size_t i = 0; i < upto; i++) {
		int cr = copy_pack(w, odb, packs[i].stem);
		if (cr < 0)
			goto out;
		if (cr == 1) { /* not a pack git or cashet wrote: stays as it is (gc repacks it) */
			free(packs[i].stem);
			packs[i].stem = NULL;
			continue;
		}
		merged++;
	}
	if (merged < 2) {
		rc = 0;
		goto out;
	}
	int fr = gs_packw_finish(w, 1, NULL);
	w = NULL;
	if (fr < 0)
		goto out;
	/* every object of theirs is in the new pack, on disk: the old ones go
	 * (the index first, so no reader finds a pack being removed) */
	for (size_t i = 0; i < upto; i++) {
		const char *ext[] = { ".idx", ".pack", ".rev", ".bitmap" };
		if (!packs[i].stem)
			continue;
		for (size_t k = 0; k < sizeof(ext) / sizeof(*ext); k++) {
			sb_reset(&p);
			sb_addf(&p, "%s%s", packs[i].stem, ext[k]);
			unlink(p.buf);
		}
	}
	rep->packs_merged = (int64_t)merged;
	rc = 0;
out:
	gs_packw_abort(w);
	for (size_t i = 0; i < n; i++)
		free(packs[i].stem);
	free(packs);
	sb_release(&p);
	return rc;
}

int gs_autopack(const char *dir, struct autopack_report *rep)
{
	struct strvec ids = STRVEC_INIT, dups = STRVEC_INIT;
	struct strbuf packed = STRBUF_INIT;
	git_odb *odb = NULL;
	git_refdb *refdb = NULL;
	int rc = -1;
	memset(rep, 0, sizeof(*rep));
	if (open_repo(dir) < 0)
		return -1;
	if (git_repository_odb(&odb, repo) < 0) {
		git_fail("odb");
		goto out;
	}
	packed_ids(dir, &packed);
	if (list_loose(dir, odb, &packed, &ids, &dups) < 0)
		goto out;
	remove_loose(dir, &dups);
	if (ids.n) {
		sv_sort(&ids);
		if (gs_write_pack(dir, odb, &ids, NULL) < 0)
			goto out;
		remove_loose(dir, &ids);
		rep->loose_packed = (int64_t)ids.n;
		git_odb_refresh(odb);
	}
	/* also with nothing loose: a pipeline's batches come as packs */
	if (merge_packs(dir, odb, rep) < 0)
		goto out;
	git_odb_refresh(odb);
	/* the run and line refs of the runs just packed: into packed-refs */
	if (git_repository_refdb(&refdb, repo) < 0 || git_refdb_compress(refdb) < 0) {
		git_fail("cannot pack refs");
		goto out;
	}
	rc = 0;
out:
	git_refdb_free(refdb);
	git_odb_free(odb);
	sv_release(&ids);
	sv_release(&dups);
	sb_release(&packed);
	return rc;
}
