/* packw: the blobs of a run with many small files written straight into
 * one new pack, as `git fast-import` does, instead of a loose object each
 * (a file created, deflated and renamed per blob, then read back and
 * packed again by auto-pack: 20,000 files took 26x the command that wrote
 * them). Each blob is hashed with libcrypto's SHA-1 and appended as zlib
 * stored blocks (libdeflate's level 0; its level 1 was three quarters of
 * the store, zlib's 3x that); other objects (autopack's, gc's) are
 * deflated at level 1. The pack's trailer and its version-2 index
 * follow, both renamed into objects/pack only once complete (the pack
 * first), so a crash leaves a temp file for gc, never a half pack. Blobs
 * the store already has are not written again. */
#include "git/gitint.h"

#include <errno.h>
#include <fcntl.h>
#include <git2/sys/odb_backend.h>
#include <libdeflate.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct packw_entry {
	unsigned char id[GIT_OID_RAWSZ];
	uint64_t offset;
	uint32_t crc;
};

/* A blob made ready to be written: read, hashed (SHA-1, XXH3), encoded. */
struct prep {
	unsigned char id[GIT_OID_RAWSZ];
	struct digest xxh;
	struct strbuf data, z; /* the content; its zlib stream (zlen bytes) */
	size_t zlen;
	char *err;        /* why it could not be made, or NULL */
	uint64_t claimed; /* the file's size when it was taken on (for bytes) */
	int ready;
};

/* Reading, hashing and encoding a blob was most of storing a directory of
 * small files, and each blob's is independent of the others': a helper
 * thread prepares the blobs after the one being added, at most AHEAD of
 * them and AHEAD_BYTES of content; gs_packw_add takes each in order
 * (preparing the next ones not begun while it is not ready) and writes it
 * on its own thread, so the pack is as one thread would write it. */
enum { AHEAD = 64, AHEAD_BYTES = 16 << 20 };

struct ahead {
	pthread_t thread;
	int started;
	pthread_mutex_t mu;
	pthread_cond_t cond;
	struct run_file **files;
	size_t n, next, done; /* the helper takes files[next]; files[done] is the next added */
	uint64_t bytes;       /* the content taken on and not yet added */
	int stop;
	int waiting[2];          /* the helper [0], the adding thread [1] waits on cond: a wake-up is a syscall */
	struct prep slot[AHEAD]; /* files[k] in slot[k % AHEAD] */
	EVP_MD_CTX *sha;         /* the helper's own */
	struct libdeflate_compressor *plain;
	struct diropen dirs;
};

static void prep_release(struct prep *p)
{
	sb_release(&p->data);
	sb_release(&p->z);
	free(p->err);
}

static void ahead_free(struct ahead *a)
{
	if (!a)
		return;
	if (a->started) {
		pthread_mutex_lock(&a->mu);
		a->stop = 1;
		pthread_cond_broadcast(&a->cond);
		pthread_mutex_unlock(&a->mu);
		pthread_join(a->thread, NULL);
	}
	for (size_t i = 0; i < AHEAD; i++)
		prep_release(&a->slot[i]);
	EVP_MD_CTX_free(a->sha);
	libdeflate_free_compressor(a->plain);
	diropen_close(&a->dirs);
	pthread_mutex_destroy(&a->mu);
	pthread_cond_destroy(&a->cond);
	free(a);
}

struct packw {
	struct strbuf tmp; /* objects/pack/tmp_pack_XXXXXX */
	int fd;
	uint64_t offset;
	struct packw_entry *v;
	size_t n, alloc;
	size_t *slots; /* open addressing over v (index + 1; 0 empty): a blob twice in one run is written once */
	size_t nslots;
	git_odb *odb; /* the store's packs only (see gs_packw_add) */
	struct strbuf data, z;
	struct strbuf out;   /* entries not yet written: written a MiB at a time */
	struct prep self;    /* a blob this thread prepares */
	struct diropen dirs; /* the files it reads, a walk's: by directory */
	struct ahead *ahead;
	EVP_MD_CTX *sha;
	struct libdeflate_compressor *deflate, *plain; /* levels 1 and 0 */
	/* announce(): the count the header holds, and the SHA-1 of
	 * every byte written since (NULL once that can no longer be the
	 * pack's: a roll-back) */
	uint32_t announced;
	EVP_MD_CTX *running;
};

static uint32_t be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

static size_t *slot_of(struct packw *w, const unsigned char *id)
{
	size_t i = (size_t)be32(id) & (w->nslots - 1);
	while (w->slots[i] && memcmp(w->v[w->slots[i] - 1].id, id, GIT_OID_RAWSZ))
		i = (i + 1) & (w->nslots - 1);
	return &w->slots[i];
}

static void grow_slots(struct packw *w)
{
	free(w->slots);
	w->nslots = w->nslots ? w->nslots * 2 : 1024;
	w->slots = xcalloc(w->nslots, sizeof(*w->slots));
	for (size_t i = 0; i < w->n; i++)
		*slot_of(w, w->v[i].id) = i + 1;
}

int gs_packw_begin(const char *dir, struct packw **out)
{
	struct packw *w = xcalloc(1, sizeof(*w));
	static const unsigned char head[12] = { 'P', 'A', 'C', 'K', 0, 0, 0, 2, 0, 0, 0, 0 };
	*out = NULL;
	w->fd = -1;
	sb_addf(&w->tmp, "%s/objects/pack", dir);
	if (open_repo(dir) < 0 || mkdirs(w->tmp.buf, 0755) < 0)
		goto fail;
	git_odb_backend *packs = NULL;
	struct strbuf objects = STRBUF_INIT;
	sb_addf(&objects, "%s/objects", dir);
	int ok = git_odb_new(&w->odb) == 0 && git_odb_backend_pack(&packs, objects.buf) == 0;
	sb_release(&objects);
	if (!ok) {
		git_fail("odb");
		goto fail;
	}
	if (git_odb_add_backend(w->odb, packs, 1) < 0) {
		packs->free(packs);
		git_fail("odb");
		goto fail;
	}
	if (!(w->sha = EVP_MD_CTX_new()) || !(w->deflate = libdeflate_alloc_compressor(1)) ||
	    !(w->plain = libdeflate_alloc_compressor(0))) {
		err_set("out of memory");
		goto fail;
	}
	sb_adds(&w->tmp, "/tmp_pack_XXXXXX");
	if ((w->fd = mkostemp(w->tmp.buf, O_CLOEXEC)) < 0) {
		err_sys("cannot create %s", w->tmp.buf);
		goto fail;
	}
	/* the object count is filled in at the end */
	if (write_all(w->fd, head, sizeof(head)) < 0) {
		err_sys("cannot write %s", w->tmp.buf);
		goto fail;
	}
	w->offset = sizeof(head);
	grow_slots(w);
	*out = w;
	return 0;
fail:
	gs_packw_abort(w);
	return -1;
}

static void swap_bufs(struct packw *w)
{
	struct strbuf t = w->z;
	w->z = w->data;
	w->data = t;
}

/* Writes len bytes at the end of the pack, into the running SHA-1 too. */
static int write_tail(struct packw *w, const void *data, size_t len)
{
	if (write_all(w->fd, data, len) < 0)
		return err_sys("cannot write %s", w->tmp.buf);
	if (w->running)
		EVP_DigestUpdate(w->running, data, len);
	return 0;
}

/* Writes what put_entry gathered. */
static int flush_out(struct packw *w)
{
	if (w->out.len && write_tail(w, w->out.buf, w->out.len) < 0)
		return -1;
	sb_reset(&w->out);
	return 0;
}

/* The header's count, announced before the first entry: the checksum is
 * then taken as the bytes go out. */
static int announce(struct packw *w, uint32_t n)
{
	unsigned char head[12] = { 'P', 'A', 'C', 'K', 0, 0, 0, 2 };
	if (w->offset != sizeof(head) || w->out.len || w->running)
		return err_set("internal: a pack's count announced after its first entry");
	put32(head + 8, n);
	if (pwrite(w->fd, head + 8, 4, 8) != 4)
		return err_sys("cannot write %s", w->tmp.buf);
	if (!(w->running = EVP_MD_CTX_new()) || EVP_DigestInit_ex(w->running, EVP_sha1(), NULL) != 1)
		return err_set("out of memory");
	EVP_DigestUpdate(w->running, head, sizeof(head));
	w->announced = n;
	return 0;
}

/* Deflates len bytes at data into z with c: its length, or 0 on failure. */
static size_t deflate_to(struct strbuf *z, struct libdeflate_compressor *c, const void *data, size_t len)
{
	size_t bound = libdeflate_zlib_compress_bound(c, len);
	sb_reset(z);
	sb_grow(z, bound);
	return libdeflate_zlib_compress(c, len ? data : "", len, z->buf, bound);
}

/* One entry: header (type, size), for an offset delta the distance back to
 * its base, then the deflated payload z (zlen bytes). */
static int put_entry(struct packw *w, const unsigned char *id, int type, size_t size, uint64_t base, const char *z,
		     size_t zlen)
{
	unsigned char hdr[48];
	size_t h = 0;
	hdr[h] = (unsigned char)(type << 4 | (size & 15));
	for (size >>= 4; size; size >>= 7) {
		hdr[h++] |= 0x80;
		hdr[h] = size & 0x7f;
	}
	h++;
	if (type == GIT_OBJECT_OFS_DELTA) {
		/* big-endian 7 bits a byte, each continued byte one less (git's encoding) */
		unsigned char ofs[16];
		uint64_t d = w->offset - base;
		size_t at = sizeof(ofs) - 1;
		ofs[at] = d & 0x7f;
		while (d >>= 7)
			ofs[--at] = (unsigned char)(0x80 | (--d & 0x7f));
		memcpy(hdr + h, ofs + at, sizeof(ofs) - at);
		h += sizeof(ofs) - at;
	}
	uint32_t crc = libdeflate_crc32(libdeflate_crc32(0, hdr, h), z, zlen);
	sb_add(&w->out, hdr, h);
	sb_add(&w->out, z, zlen);
	if (w->out.len >= (1 << 20) && flush_out(w) < 0)
		return -1;
	if (w->n == w->alloc) {
		w->alloc = w->alloc ? w->alloc * 2 : 256;
		w->v = xrealloc(w->v, w->alloc * sizeof(*w->v));
	}
	memcpy(w->v[w->n].id, id, GIT_OID_RAWSZ);
	w->v[w->n].offset = w->offset;
	w->v[w->n].crc = crc;
	*slot_of(w, id) = ++w->n;
	w->offset += h + zlen;
	if (w->n * 2 > w->nslots)
		grow_slots(w);
	return 0;
}

/* The git id of an object of type holding len bytes at data, with
 * libcrypto's SHA-1 (the CPU's SHA instructions: 4x libgit2's
 * collision-detecting one here, which took 10 ms of a save for the meta of
 * a run of 20,000 files). 0, or -1. */
static int object_id(EVP_MD_CTX *sha, git_object_t type, const void *data, size_t len, unsigned char id[GIT_OID_RAWSZ])
{
	char head[48];
	unsigned mdlen = 0;
	int hlen = snprintf(head, sizeof(head), "%s %zu", git_object_type2string(type), len) + 1;
	return EVP_DigestInit_ex(sha, EVP_sha1(), NULL) == 1 && EVP_DigestUpdate(sha, head, (size_t)hlen) == 1 &&
			       EVP_DigestUpdate(sha, len ? data : "", len) == 1 &&
			       EVP_DigestFinal_ex(sha, id, &mdlen) == 1 && mdlen == GIT_OID_RAWSZ
		       ? 0
		       : -1;
}

/* Reads, hashes and encodes f's blob into p (on whichever thread): what
 * is stored is what is digested, the one read of an output. 0, or -1
 * with p->err saying why. */
static int prepare(struct prep *p, const struct run_file *f, EVP_MD_CTX *sha, struct libdeflate_compressor *plain,
		   struct diropen *dirs)
{
	const char *src = f->src;
	free(p->err);
	p->err = NULL;
	sb_reset(&p->data);
	if (src) {
		int fd = diropen_open(dirs, src, O_RDONLY | O_CLOEXEC);
		/* sized as the walk found it: an fstat a file less */
		int rc = fd < 0 ? err_sys("cannot open %s", src) : read_fd_sb_sized(fd, src, f->size, &p->data);
		if (fd >= 0)
			close(fd);
		if (rc < 0)
			goto fail;
	}
	if (!src) /* a stream kept in memory, or without a byte */
		sb_add(&p->data, f->held.buf, f->held.len);
	const char *data = p->data.buf ? p->data.buf : "";
	digest_of(data, p->data.len, &p->xxh);
	if (object_id(sha, GIT_OBJECT_BLOB, data, p->data.len, p->id) < 0) {
		err_set("cannot hash %s", src ? src : "an empty stream");
		goto fail;
	}
	/* stored blocks: deflating was three quarters of storing a directory
	 * of 20,000 files (and inflating a third of its restore), where the
	 * budget is the command's own time; a hit copies them out of the pack
	 * without zlib (store-blob.c). */
	if (!(p->zlen = deflate_to(&p->z, plain, data, p->data.len))) {
		err_set("cannot deflate %s", src ? src : "an empty stream");
		goto fail;
	}
	return 0;
fail:
	p->err = xstrdup(err_msg());
	return -1;
}

/* Whether files[next] must wait: AHEAD blobs, or AHEAD_BYTES of content,
 * are taken on and not yet added. */
static int ahead_full(const struct ahead *a)
{
	return a->next - a->done >= AHEAD || (a->bytes && a->bytes + a->files[a->next]->size > AHEAD_BYTES);
}

/* The helper: prepares the blobs after the one being added, while fewer
 * than AHEAD, and AHEAD_BYTES of content, wait to be taken. */
static void *ahead_main(void *arg)
{
	struct ahead *a = arg;
	pthread_mutex_lock(&a->mu);
	for (;;) {
		while (!a->stop && a->next < a->n && ahead_full(a)) {
			a->waiting[0] = 1;
			pthread_cond_wait(&a->cond, &a->mu);
			a->waiting[0] = 0;
		}
		if (a->stop || a->next >= a->n)
			break;
		size_t j = a->next++;
		struct prep *p = &a->slot[j % AHEAD];
		p->claimed = a->files[j]->size;
		a->bytes += p->claimed;
		pthread_mutex_unlock(&a->mu);
		prepare(p, a->files[j], a->sha, a->plain, &a->dirs);
		pthread_mutex_lock(&a->mu);
		p->ready = 1;
		if (a->waiting[1])
			pthread_cond_broadcast(&a->cond);
	}
	pthread_mutex_unlock(&a->mu);
	return NULL;
}

int gs_packw_plan(struct packw *w, struct run_file **files, size_t n, size_t others, int helper)
{
	/* every blob new and different, as a run's outputs mostly are: the
	 * empty ones are one blob, written unless a pack has it */
	size_t empty = 0;
	for (size_t i = 0; i < n; i++)
		empty += !files[i]->size;
	git_oid none;
	int have_none = empty && git_odb_hash(&none, "", 0, GIT_OBJECT_BLOB) == 0 && git_odb_exists(w->odb, &none);
	if (announce(w, (uint32_t)(n - empty + (empty && !have_none) + others)) < 0)
		return -1;
	if (!helper || w->ahead || n < 2 || sysconf(_SC_NPROCESSORS_ONLN) < 2)
		return 0; /* one CPU: the helper would only take turns with this thread */
	struct ahead *a = xcalloc(1, sizeof(*a));
	a->files = files;
	a->n = n;
	pthread_mutex_init(&a->mu, NULL);
	pthread_cond_init(&a->cond, NULL);
	if (!(a->sha = EVP_MD_CTX_new()) || !(a->plain = libdeflate_alloc_compressor(0)) ||
	    pthread_create(&a->thread, NULL, ahead_main, a) != 0) {
		a->started = 0;
		ahead_free(a);
		return 0; /* everything is prepared here instead */
	}
	a->started = 1;
	w->ahead = a;
	return 0;
}

/* f's prepared blob when f is the next the helper was given, or NULL.
 * Until it is ready this thread prepares the next blobs not begun (f's
 * own first, if the helper has not begun it) instead of waiting: reading
 * and hashing is most of the work, and waiting for the helper file by
 * file was a sleep and a wake-up each (100,000 futex calls for 20,000
 * files, the helper the bottleneck). give_back() once used. */
static struct prep *take(struct ahead *a, const struct run_file *f, EVP_MD_CTX *sha,
			 struct libdeflate_compressor *plain, struct diropen *dirs)
{
	pthread_mutex_lock(&a->mu);
	if (a->done >= a->n || a->files[a->done] != f) {
		pthread_mutex_unlock(&a->mu);
		return NULL;
	}
	size_t k = a->done;
	struct prep *p = &a->slot[k % AHEAD];
	while (!p->ready) {
		size_t j = a->next;
		if (j < a->n && (j == k || !ahead_full(a))) {
			struct prep *q = &a->slot[j % AHEAD];
			a->next = j + 1;
			q->claimed = a->files[j]->size;
			a->bytes += q->claimed;
			pthread_mutex_unlock(&a->mu);
			prepare(q, a->files[j], sha, plain, dirs);
			pthread_mutex_lock(&a->mu);
			q->ready = 1;
			continue;
		}
		a->waiting[1] = 1;
		pthread_cond_wait(&a->cond, &a->mu);
		a->waiting[1] = 0;
	}
	pthread_mutex_unlock(&a->mu);
	return p;
}

static void give_back(struct ahead *a, struct prep *p)
{
	pthread_mutex_lock(&a->mu);
	p->ready = 0;
	a->done++;
	a->bytes -= p->claimed;
	if (a->waiting[0])
		pthread_cond_broadcast(&a->cond);
	pthread_mutex_unlock(&a->mu);
}

int gs_packw_add(struct packw *w, struct run_file *f, git_oid *oid)
{
	if (f->early.set) {
		/* packed while the command ran, read again once it had
		 * exited, its pack found still there under the store lock
		 * held until the save (exec/early.c) */
		f->xxh = f->early.xxh;
		f->size = f->early.size;
		git_oid_fromraw(oid, f->early.id);
		return 0;
	}
	struct prep *p = w->ahead ? take(w->ahead, f, w->sha, w->plain, &w->dirs) : NULL;
	int rc = 0, mine = !p;
	if (mine) {
		p = &w->self;
		prepare(p, f, w->sha, w->plain, &w->dirs);
	}
	if (p->err) {
		rc = err_set("%s", p->err);
		goto out;
	}
	if (f->src) {
		f->xxh = p->xxh;
		f->size = p->data.len;
	}
	git_oid_fromraw(oid, p->id);
	/* no refresh: libgit2 would rescan objects/pack for every new blob
	 * (a blob written meanwhile by another run is only stored twice);
	 * packs only: a loose copy is an access() a blob that costs more than
	 * the blob (auto-pack drops a loose copy a pack also holds) */
	if (*slot_of(w, p->id) || git_odb_exists_ext(w->odb, oid, GIT_ODB_LOOKUP_NO_REFRESH))
		goto out; /* in this pack already, or in the store */
	rc = put_entry(w, p->id, GIT_OBJECT_BLOB, p->data.len, 0, p->z.buf, p->zlen);
out:
	if (!mine)
		give_back(w->ahead, p);
	return rc;
}

int gs_packw_object(struct packw *w, const unsigned char id[GIT_OID_RAWSZ], git_object_t type, const void *data,
		    size_t len, const struct strbuf *delta, size_t base, int *deltified)
{
	size_t zdelta = 0, zwhole;
	int blob = type == GIT_OBJECT_BLOB;
	*deltified = 0;
	if (*slot_of(w, id))
		return err_set("an object added twice to a pack");
	if (delta && delta->len && base < w->n) {
		if (!(zdelta = deflate_to(&w->z, w->deflate, delta->buf, delta->len)))
			return err_set("cannot deflate an object");
		swap_bufs(w); /* kept while the whole object is deflated */
	}
	/* a blob that deflating does not halve goes in stored, as
	 * gs_packw_add writes blobs: a hit copies it out of the pack
	 * (zlib's inflate was a third of restoring a directory of small
	 * CSV files after gc, which deflate to 0.6); a meta's delta may
	 * still take its place below. A large one whose first SAMPLE bytes
	 * do not halve is not deflated whole to find out: the meta of a run
	 * of 20,000 files (1.7 MB of names and digests) took 20 ms. */
	enum { SAMPLE = 64 << 10 };
	int plain = blob && len > 4 * SAMPLE && (zwhole = deflate_to(&w->z, w->deflate, data, SAMPLE)) > SAMPLE / 2;
	if ((!plain && !(zwhole = deflate_to(&w->z, w->deflate, data, len))) ||
	    (blob && (plain || zwhole > len / 2) && !(zwhole = deflate_to(&w->z, w->plain, data, len))))
		return err_set("cannot deflate an object");
	if (zdelta && zdelta < zwhole) {
		swap_bufs(w);
		*deltified = 1;
		return put_entry(w, id, GIT_OBJECT_OFS_DELTA, delta->len, w->v[base].offset, w->z.buf, zdelta);
	}
	return put_entry(w, id, type, len, 0, w->z.buf, zwhole);
}

#define PUT_PLAIN_MIN ((size_t)256 << 10)

int gs_packw_put(struct packw *w, git_object_t type, const void *data, size_t len, git_oid *oid)
{
	int deltified;
	if (object_id(w->sha, type, data, len, oid->id) < 0)
		return err_set("cannot hash an object");
	/* as gs_packw_add: the store's packs alone asked */
	if (*slot_of(w, oid->id) || git_odb_exists(w->odb, oid))
		return 0;
	/* a run's large meta (3.8 MB for 20,000 files) stored as it is, as
	 * its outputs are: deflating it was 15 ms of the miss, after the
	 * command; gc's repack (gs_write_pack) deflates it */
	if (type == GIT_OBJECT_BLOB && len > PUT_PLAIN_MIN) {
		size_t z = deflate_to(&w->z, w->plain, data, len);
		return z ? put_entry(w, oid->id, type, len, 0, w->z.buf, z) : err_set("cannot deflate an object");
	}
	return gs_packw_object(w, oid->id, type, data, len, NULL, 0, &deltified);
}

int gs_packw_blob_pays(struct packw *w, const void *data, size_t len)
{
	/* a run's meta: text differing from the other runs' in a few values
	 * (its delta on one is a tenth of it), which alone does not deflate
	 * to half (hex digests) */
	if (len >= strlen(META_MAGIC) && !memcmp(data, META_MAGIC, strlen(META_MAGIC)))
		return 1;
	size_t z = deflate_to(&w->z, w->deflate, data, len);
	return z && z <= len / 2;
}

int gs_packw_has(struct packw *w, const unsigned char id[GIT_OID_RAWSZ])
{
	return *slot_of(w, id) != 0;
}

size_t gs_packw_count(const struct packw *w)
{
	return w->n;
}

/* The entries' indexes in the order of their offsets (qsort_r-free: the
 * offsets ride along). */
struct at_entry {
	uint64_t off;
	size_t i;
};

static int by_off(const void *a, const void *b)
{
	const struct at_entry *x = a, *y = b;
	return x->off < y->off ? -1 : x->off > y->off;
}

/* Forgets the entries from the n0-th on and what was written for them. */
static int roll_back(struct packw *w, size_t n0, uint64_t offset)
{
	w->n = n0;
	w->offset = offset;
	EVP_MD_CTX_free(w->running); /* hashed bytes that are no longer there */
	w->running = NULL;
	memset(w->slots, 0, w->nslots * sizeof(*w->slots));
	for (size_t i = 0; i < w->n; i++)
		*slot_of(w, w->v[i].id) = i + 1;
	if (ftruncate(w->fd, (off_t)offset) < 0 || lseek(w->fd, (off_t)offset, SEEK_SET) < 0)
		return err_sys("cannot write %s", w->tmp.buf);
	return 0;
}

int gs_packw_append(struct packw *w, int fd, uint64_t from, uint64_t to, const unsigned char *ids,
		    const uint64_t *offsets, const uint32_t *crcs, size_t n)
{
	enum { BUF = 1 << 20 };
	unsigned char *buf = xmalloc(BUF);
	struct at_entry *order = xmalloc((n ? n : 1) * sizeof(*order));
	uint64_t base = w->offset;
	size_t n0 = w->n, e = 0;
	uint32_t crc = 0;
	int rc = flush_out(w);
	if (rc < 0)
		goto out;
	rc = -1;
	/* a duplicate means this copy cannot be made: nothing is added then */
	for (size_t i = 0; i < n; i++)
		if (*slot_of(w, ids + i * GIT_OID_RAWSZ)) {
			rc = 1;
			goto out;
		}
	for (size_t i = 0; i < n; i++)
		order[i] = (struct at_entry){ offsets[i], i };
	qsort(order, n, sizeof(*order), by_off);
	if (n && order[0].off != from) {
		rc = 1; /* not entries end to end */
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		size_t *slot = slot_of(w, ids + i * GIT_OID_RAWSZ);
		if (*slot) { /* twice in that pack: not one git wrote */
			rc = err_set("a pack lists an object twice");
			goto out;
		}
		if (w->n == w->alloc) {
			w->alloc = w->alloc ? w->alloc * 2 : 256;
			w->v = xrealloc(w->v, w->alloc * sizeof(*w->v));
		}
		memcpy(w->v[w->n].id, ids + i * GIT_OID_RAWSZ, GIT_OID_RAWSZ);
		w->v[w->n].offset = base + (offsets[i] - from);
		w->v[w->n].crc = crcs[i];
		*slot = ++w->n;
		if (w->n * 2 > w->nslots)
			grow_slots(w);
	}
	/* Each entry's bytes are checked against the CRC its index holds as
	 * they are copied: a damaged entry copied verbatim would take the
	 * place of an intact copy elsewhere (a loose object, another pack),
	 * which the merge then deletes. */
	for (uint64_t at = from; at < to;) {
		ssize_t got = pread(fd, buf, to - at < BUF ? (size_t)(to - at) : BUF, (off_t)at);
		if (got <= 0) {
			err_sys("cannot read a pack");
			goto out;
		}
		for (size_t p = 0; p < (size_t)got && e < n;) {
			uint64_t end = e + 1 < n ? order[e + 1].off : to;
			size_t take = end - (at + p) < (size_t)got - p ? (size_t)(end - (at + p)) : (size_t)got - p;
			crc = libdeflate_crc32(crc, buf + p, take);
			p += take;
			if (at + p == end) {
				if (crc != crcs[order[e].i]) {
					rc = roll_back(w, n0, base) < 0 ? -1 : 1;
					goto out;
				}
				e++;
				crc = 0;
			}
		}
		if (write_tail(w, buf, (size_t)got) < 0)
			goto out;
		at += (uint64_t)got;
	}
	w->offset += to - from;
	rc = 0;
out:
	free(order);
	free(buf);
	return rc;
}

static int by_id(const void *a, const void *b)
{
	return memcmp(((const struct packw_entry *)a)->id, ((const struct packw_entry *)b)->id, GIT_OID_RAWSZ);
}

/* SHA-1 of the whole file so far (the pack, read back from the page
 * cache: its header changed last). */
static int sha1_file(int fd, uint64_t len, unsigned char md[GIT_OID_RAWSZ])
{
	enum { BUF = 1 << 20 };
	unsigned char *buf = xmalloc(BUF);
	unsigned mdlen = 0;
	int rc = -1;
	EVP_MD_CTX *sha = EVP_MD_CTX_new();
	if (!sha || EVP_DigestInit_ex(sha, EVP_sha1(), NULL) != 1)
		goto out;
	for (uint64_t at = 0; at < len;) {
		ssize_t got = pread(fd, buf, len - at < BUF ? (size_t)(len - at) : BUF, (off_t)at);
		if (got <= 0)
			goto out;
		EVP_DigestUpdate(sha, buf, (size_t)got);
		at += (uint64_t)got;
	}
	rc = EVP_DigestFinal_ex(sha, md, &mdlen) == 1 && mdlen == GIT_OID_RAWSZ ? 0 : -1;
out:
	EVP_MD_CTX_free(sha);
	free(buf);
	return rc;
}

/* The version-2 index of the entries (sorted), ending with the pack's
 * checksum and its own. */
static void build_idx(struct packw *w, const unsigned char packsum[GIT_OID_RAWSZ], struct strbuf *idx)
{
	unsigned char b[8], md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;
	uint32_t fan[256] = { 0 }, large = 0;
	static const unsigned char magic[8] = { 0xff, 't', 'O', 'c', 0, 0, 0, 2 };
	sb_add(idx, magic, sizeof(magic));
	for (size_t i = 0; i < w->n; i++)
		fan[w->v[i].id[0]]++;
	for (uint32_t i = 0, sum = 0; i < 256; i++) {
		sum += fan[i];
		put32(b, sum);
		sb_add(idx, b, 4);
	}
	for (size_t i = 0; i < w->n; i++)
		sb_add(idx, w->v[i].id, GIT_OID_RAWSZ);
	for (size_t i = 0; i < w->n; i++) {
		put32(b, w->v[i].crc);
		sb_add(idx, b, 4);
	}
	for (size_t i = 0; i < w->n; i++) {
		put32(b, w->v[i].offset < 0x80000000u ? (uint32_t)w->v[i].offset : 0x80000000u | large++);
		sb_add(idx, b, 4);
	}
	for (size_t i = 0; i < w->n; i++)
		if (w->v[i].offset >= 0x80000000u) {
			put32(b, (uint32_t)(w->v[i].offset >> 32));
			put32(b + 4, (uint32_t)w->v[i].offset);
			sb_add(idx, b, 8);
		}
	sb_add(idx, packsum, GIT_OID_RAWSZ);
	EVP_Digest(idx->buf, idx->len, md, &mdlen, EVP_sha1(), NULL);
	sb_add(idx, md, GIT_OID_RAWSZ);
}

int gs_packw_finish(struct packw *w, int sync, char name[GIT_OID_HEXSZ + 1])
{
	unsigned char count[4], packsum[GIT_OID_RAWSZ];
	char hex[GIT_OID_HEXSZ + 1];
	struct strbuf idx = STRBUF_INIT, path = STRBUF_INIT, itmp = STRBUF_INIT;
	int rc = -1;
	if (w->n == 0) { /* every blob was there already */
		gs_packw_abort(w);
		return 0;
	}
	put32(count, (uint32_t)w->n);
	if (flush_out(w) < 0)
		goto out;
	/* the count announced and met: the checksum was taken as the bytes
	 * went out; else the header is set now, and the pack read back */
	unsigned mdlen = 0;
	int hashed = w->running && w->n == w->announced && EVP_DigestFinal_ex(w->running, packsum, &mdlen) == 1 &&
		     mdlen == GIT_OID_RAWSZ;
	if ((!hashed && (pwrite(w->fd, count, 4, 8) != 4 || sha1_file(w->fd, w->offset, packsum) < 0)) ||
	    write_all(w->fd, packsum, sizeof(packsum)) < 0 || fchmod(w->fd, 0444) < 0 || (sync && fsync(w->fd) < 0)) {
		err_sys("cannot write %s", w->tmp.buf);
		goto out;
	}
	qsort(w->v, w->n, sizeof(*w->v), by_id);
	build_idx(w, packsum, &idx);
	git_oid sum;
	git_oid_fromraw(&sum, packsum);
	git_oid_tostr(hex, sizeof(hex), &sum);
	if (name)
		memcpy(name, hex, sizeof(hex));
	sb_add(&path, w->tmp.buf, (size_t)(strrchr(w->tmp.buf, '/') - w->tmp.buf));
	sb_addf(&itmp, "%s/tmp_idx_%s", path.buf, hex);
	int ifd = open(itmp.buf, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0444);
	if (ifd < 0 || write_all(ifd, idx.buf, idx.len) < 0 || (sync && fsync(ifd) < 0) || close(ifd) < 0) {
		err_sys("cannot write %s", itmp.buf);
		if (ifd >= 0)
			close(ifd);
		unlink(itmp.buf);
		goto out;
	}
	/* the pack first: an index without its pack would name missing objects */
	size_t base = path.len;
	sb_addf(&path, "/pack-%s.pack", hex);
	if (rename(w->tmp.buf, path.buf) < 0) {
		err_sys("cannot write %s", path.buf);
		unlink(itmp.buf);
		goto out;
	}
	sb_setlen(&path, base);
	sb_addf(&path, "/pack-%s.idx", hex);
	if (rename(itmp.buf, path.buf) < 0) {
		err_sys("cannot write %s", path.buf);
		unlink(itmp.buf);
		goto out;
	}
	sb_setlen(&path, base);
	if (sync) {
		int dfd = open(path.buf, O_RDONLY | O_CLOEXEC);
		if (dfd >= 0) {
			fsync(dfd);
			close(dfd);
		}
	}
	git_odb *odb = NULL; /* the trees that name its blobs are checked against it */
	if (git_repository_odb(&odb, repo) == 0)
		git_odb_refresh(odb);
	git_odb_free(odb);
	sb_reset(&w->tmp); /* published: nothing for abort to remove */
	rc = 0;
out:
	sb_release(&idx);
	sb_release(&path);
	sb_release(&itmp);
	gs_packw_abort(w);
	return rc;
}

void gs_packw_abort(struct packw *w)
{
	if (!w)
		return;
	ahead_free(w->ahead); /* the helper stopped first */
	if (w->fd >= 0)
		close(w->fd);
	if (w->tmp.len && w->fd >= 0)
		unlink(w->tmp.buf);
	git_odb_free(w->odb);
	EVP_MD_CTX_free(w->sha);
	EVP_MD_CTX_free(w->running);
	libdeflate_free_compressor(w->deflate);
	libdeflate_free_compressor(w->plain);
	prep_release(&w->self);
	diropen_close(&w->dirs);
	sb_release(&w->tmp);
	sb_release(&w->data);
	sb_release(&w->z);
	sb_release(&w->out);
	free(w->v);
	free(w->slots);
	free(w);
}
