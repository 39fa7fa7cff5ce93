/* dirscan: a directory input's parts, checked against the snapshot of its
 * last walk. The walk and the snapshot share one order (each directory's
 * names sorted, a subdirectory's files where its name falls), so the check
 * is a merge: one cursor moving forward, no lookup per file. A file is
 * trusted by its stat signature only if it was quiet when recorded. */
#include "key/dirscan.h"
#include "key/fp.h"
#include "util/fsrec.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A file changed this recently is hashed on every walk and not recorded:
 * a second write within its timestamp's tick would not show in stat
 * ("racy git"). Its change time counts too (a restored mtime). */
#define QUIET_NS 2000000000LL
#define MAX_DEPTH 64

/* The snapshot: the magic, then per file in walk order, as varints: the
 * length of the path prefix shared with the previous entry's, the length
 * of the rest, the rest; dev, ino and mtime less the previous entry's,
 * size, ctime less mtime (signed ones zigzagged); then the content
 * digest. Neighbours differ little, so a file takes about 30 bytes. */
static const char magic[8] = "cdtree2\n";
enum { SIG_DEV, SIG_INO, SIG_SIZE, SIG_MTIME, SIG_CTIME, SIG_N };

struct sig {
	uint64_t v[SIG_N];
};

/* A snapshot read at a cursor. */
struct snap {
	const unsigned char *p, *end; /* the entries after the cursor's */
	struct strbuf path;           /* the cursor's entry, relative to the tree */
	struct sig sig;
	struct digest d;
	int have; /* an entry is at the cursor */
};

/* The fstatat() calls of one directory, shared with a helper thread as
 * git's preload-index shares its lstat() calls: chunks are taken from a
 * counter, so a helper that runs late (a busy core) costs nothing. */
struct stat_job {
	int dfd;
	char **names;
	struct stat *sb;
	int *err; /* 0, or fstatat's errno */
	size_t n;
	atomic_size_t next;
};

enum helper_state { HELPER_IDLE, HELPER_POSTED, HELPER_RUNNING, HELPER_QUIT };

struct helper {
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	enum helper_state state;
	struct stat_job *job;
	int started; /* 1 running, -1 could not be started (not tried again) */
};

struct scan {
	struct store *st;
	struct run_record *r;
	const struct strvec *outputs;
	int64_t now;
	struct strbuf abs; /* the entry at hand */
	size_t rel;        /* abs.buf + rel: its path in the tree */
	struct strbuf old; /* the last snapshot's bytes */
	struct snap cur;
	/* while every file so far matched, the new snapshot is old's first
	 * kept bytes and is not written */
	size_t kept;
	int diverged;
	struct strbuf out, last; /* last: the path of out's newest entry */
	struct sig last_sig;
	struct helper helper;
};

static int get_varint(struct snap *s, uint64_t *v)
{
	*v = 0;
	for (int shift = 0; s->p < s->end && shift < 64; shift += 7) {
		unsigned char c = *s->p++;
		*v |= (uint64_t)(c & 0x7f) << shift;
		if (!(c & 0x80))
			return 0;
	}
	return -1;
}

static void put_varint(struct strbuf *sb, uint64_t v)
{
	for (; v > 0x7f; v >>= 7)
		sb_addc(sb, (char)((v & 0x7f) | 0x80));
	sb_addc(sb, (char)v);
}

/* A signed difference (two's complement, wrapping) as a small unsigned. */
static uint64_t zigzag(uint64_t d)
{
	return d << 1 ^ -(d >> 63);
}

static uint64_t unzigzag(uint64_t z)
{
	return z >> 1 ^ -(z & 1);
}

/* Moves the cursor to the next entry; a damaged tail ends the snapshot
 * (its files are hashed again). */
static void snap_next(struct snap *s)
{
	uint64_t keep, add, z[SIG_N];
	s->have = 0;
	if (s->p == s->end || get_varint(s, &keep) < 0 || get_varint(s, &add) < 0 || keep > s->path.len ||
	    add > (uint64_t)(s->end - s->p))
		goto damaged;
	sb_setlen(&s->path, keep);
	sb_add(&s->path, s->p, add);
	s->p += add;
	for (int i = 0; i < SIG_N; i++)
		if (get_varint(s, &z[i]) < 0)
			goto damaged;
	if (s->end - s->p < DIGEST_LEN)
		goto damaged;
	s->sig.v[SIG_DEV] += unzigzag(z[SIG_DEV]);
	s->sig.v[SIG_INO] += unzigzag(z[SIG_INO]);
	s->sig.v[SIG_SIZE] = z[SIG_SIZE];
	s->sig.v[SIG_MTIME] += unzigzag(z[SIG_MTIME]);
	s->sig.v[SIG_CTIME] = s->sig.v[SIG_MTIME] + unzigzag(z[SIG_CTIME]);
	memcpy(s->d.b, s->p, DIGEST_LEN);
	s->p += DIGEST_LEN;
	s->have = 1;
	return;
damaged:
	s->p = s->end;
}

/* strcmp one path component at a time: the walk's order, where "a/b"
 * comes before "a.txt" ('/' ranks below every byte of a name). */
static int walk_cmp(const char *a, const char *b)
{
	while (*a && *a == *b)
		a++, b++;
	int x = *a == '/' ? 1 : *a ? (unsigned char)*a + 1 : 0;
	int y = *b == '/' ? 1 : *b ? (unsigned char)*b + 1 : 0;
	return x - y;
}

static void put_entry(struct scan *s, const char *rel, const struct sig *sig, const struct digest *d)
{
	size_t n = strlen(rel), keep = 0;
	while (keep < n && keep < s->last.len && s->last.buf[keep] == rel[keep])
		keep++;
	put_varint(&s->out, keep);
	put_varint(&s->out, n - keep);
	sb_add(&s->out, rel + keep, n - keep);
	put_varint(&s->out, zigzag(sig->v[SIG_DEV] - s->last_sig.v[SIG_DEV]));
	put_varint(&s->out, zigzag(sig->v[SIG_INO] - s->last_sig.v[SIG_INO]));
	put_varint(&s->out, sig->v[SIG_SIZE]);
	put_varint(&s->out, zigzag(sig->v[SIG_MTIME] - s->last_sig.v[SIG_MTIME]));
	put_varint(&s->out, zigzag(sig->v[SIG_CTIME] - sig->v[SIG_MTIME]));
	sb_add(&s->out, d->b, DIGEST_LEN);
	sb_setlen(&s->last, keep);
	sb_add(&s->last, rel + keep, n - keep);
	s->last_sig = *sig;
}

/* The first difference from the old snapshot: the new one begins with the
 * old entries matched so far (all of them, in order). */
static void diverge(struct scan *s)
{
	if (s->diverged)
		return;
	s->diverged = 1;
	sb_add(&s->out, magic, sizeof(magic));
	if (!s->kept)
		return; /* there was no old snapshot */
	struct snap kept = { .p = (const unsigned char *)s->old.buf + sizeof(magic),
			     .end = (const unsigned char *)s->old.buf + s->kept };
	for (snap_next(&kept); kept.have; snap_next(&kept))
		put_entry(s, kept.path.buf, &kept.sig, &kept.d);
	sb_release(&kept.path);
}

/* 1 and the recorded digest when the snapshot has rel with this
 * signature, else 0. Entries passed over are files gone from the tree. */
static int snap_lookup(struct scan *s, const char *rel, const struct sig *sig, struct digest *d)
{
	int c = -1;
	while (s->cur.have && (c = walk_cmp(s->cur.path.buf, rel)) < 0) {
		diverge(s);
		snap_next(&s->cur);
	}
	if (!s->cur.have || c > 0)
		return 0;
	int same = !memcmp(&s->cur.sig, sig, sizeof(*sig));
	if (same) {
		*d = s->cur.d;
		if (!s->diverged)
			s->kept = (size_t)((const char *)s->cur.p - s->old.buf);
		else
			put_entry(s, rel, sig, d);
	} else {
		diverge(s);
	}
	snap_next(&s->cur);
	return same;
}

static int add_file(struct scan *s, const struct stat *sb, const char *name)
{
	struct sig sig = { { (uint64_t)sb->st_dev, (uint64_t)sb->st_ino, (uint64_t)sb->st_size,
			     (uint64_t)ts_ns(&sb->st_mtim), (uint64_t)ts_ns(&sb->st_ctim) } };
	const char *rel = s->abs.buf + s->rel;
	struct digest d;
	if (!snap_lookup(s, rel, &sig, &d)) {
		if (digest_file(s->abs.buf, &d, NULL) < 0)
			return -1;
		if (s->now - (int64_t)sig.v[SIG_MTIME] >= QUIET_NS && s->now - (int64_t)sig.v[SIG_CTIME] >= QUIET_NS) {
			diverge(s);
			put_entry(s, rel, &sig, &d);
		}
	}
	fp_mode_digest(&d, sb->st_mode);
	run_add_part(s->r, "input", name, &d);
	return 0;
}

/* Fewer entries than this are stat()ed by the walk alone: waking the
 * helper costs about as much as a few dozen fstatat calls. */
enum { PARALLEL_MIN = 64, CHUNK = 16 };

static void stat_chunks(struct stat_job *j)
{
	for (;;) {
		size_t i = atomic_fetch_add(&j->next, CHUNK), end = i + CHUNK < j->n ? i + CHUNK : j->n;
		if (i >= j->n)
			return;
		for (; i < end; i++)
			j->err[i] = fstatat(j->dfd, j->names[i], &j->sb[i], 0) == 0 ? 0 : errno;
	}
}

static void *helper_main(void *arg)
{
	struct helper *h = arg;
	pthread_mutex_lock(&h->mu);
	for (;;) {
		while (h->state == HELPER_IDLE || h->state == HELPER_RUNNING)
			pthread_cond_wait(&h->cv, &h->mu);
		if (h->state == HELPER_QUIT)
			break;
		h->state = HELPER_RUNNING;
		pthread_mutex_unlock(&h->mu);
		stat_chunks(h->job);
		pthread_mutex_lock(&h->mu);
		h->state = HELPER_IDLE;
		pthread_cond_broadcast(&h->cv);
	}
	pthread_mutex_unlock(&h->mu);
	return NULL;
}

static void helper_stop(struct helper *h)
{
	if (h->started <= 0)
		return;
	pthread_mutex_lock(&h->mu);
	h->state = HELPER_QUIT;
	pthread_cond_broadcast(&h->cv);
	pthread_mutex_unlock(&h->mu);
	pthread_join(h->thread, NULL);
	pthread_cond_destroy(&h->cv);
	pthread_mutex_destroy(&h->mu);
	h->started = 0;
}

/* fstatat of each name in dfd (following links), into sb[i] and err[i]. */
static void stat_names(struct scan *s, int dfd, char **names, size_t n, struct stat *sb, int *err)
{
	struct helper *h = &s->helper;
	struct stat_job job = { .dfd = dfd, .names = names, .sb = sb, .err = err, .n = n };
	atomic_init(&job.next, 0);
	if (n >= PARALLEL_MIN && !h->started) {
		pthread_mutex_init(&h->mu, NULL);
		pthread_cond_init(&h->cv, NULL);
		h->state = HELPER_IDLE;
		h->started = thread_start(&h->thread, helper_main, h, 0) == 0 ? 1 : -1;
		if (h->started < 0) {
			pthread_cond_destroy(&h->cv);
			pthread_mutex_destroy(&h->mu);
		}
	}
	if (n < PARALLEL_MIN || h->started < 0) {
		stat_chunks(&job);
		return;
	}
	pthread_mutex_lock(&h->mu);
	h->job = &job;
	h->state = HELPER_POSTED;
	pthread_cond_broadcast(&h->cv);
	pthread_mutex_unlock(&h->mu);
	stat_chunks(&job);
	/* a helper that has not woken yet is not waited for */
	pthread_mutex_lock(&h->mu);
	if (h->state == HELPER_POSTED)
		h->state = HELPER_IDLE;
	while (h->state == HELPER_RUNNING)
		pthread_cond_wait(&h->cv, &h->mu);
	pthread_mutex_unlock(&h->mu);
}

static int cmp_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int add_entry(struct scan *s, int at, const char *entry, const char *name, int depth, const struct stat *sb,
		     int err);

/* The directory at (at, entry), s->abs its path: each entry in sorted
 * order, then the listing itself. The store and the declared outputs are
 * not inputs: `-i . -o build` would otherwise hash the run's own results. */
static int add_dir(struct scan *s, int at, const char *entry, int depth)
{
	struct strbuf arena = STRBUF_INIT, listing = STRBUF_INIT, name = STRBUF_INIT, child = STRBUF_INIT;
	size_t *offs = NULL, n = 0, alloc = 0;
	char **names = NULL;
	struct stat *sbs = NULL;
	int *errs = NULL;
	int rc = -1;
	if (depth > MAX_DEPTH)
		return err_set("input %s: directories nested too deep (symlink loop?)", s->abs.buf);
	if (fsrec_on()) {
		/* adding, removing or renaming an entry changes its times */
		struct stat dsb;
		fsrec_stat(s->abs.buf, stat(s->abs.buf, &dsb), &dsb);
	}
	int fd = openat(at, entry, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d) {
		rc = err_sys("input %s", s->abs.buf);
		if (fd >= 0)
			close(fd);
		return rc;
	}
	for (struct dirent *e; (e = readdir(d));) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (n == alloc) {
			alloc = alloc ? 2 * alloc : 64;
			offs = xrealloc(offs, alloc * sizeof(*offs));
		}
		offs[n++] = arena.len;
		sb_add(&arena, e->d_name, strlen(e->d_name) + 1);
	}
	names = xmalloc((n ? n : 1) * sizeof(*names));
	for (size_t i = 0; i < n; i++)
		names[i] = arena.buf + offs[i];
	qsort(names, n, sizeof(*names), cmp_name);
	sbs = xmalloc((n ? n : 1) * sizeof(*sbs));
	errs = xmalloc((n ? n : 1) * sizeof(*errs));
	stat_names(s, dirfd(d), names, n, sbs, errs);

	/* a file's store name is its directory's and its own, as
	 * fp_store_path gives it, without normalizing 50,000 paths */
	fp_store_path(s->st, NULL, s->abs.buf, &name);
	if (strcmp(name.buf, "."))
		sb_add(&child, name.buf, name.len);
	if (child.len && child.buf[child.len - 1] != '/')
		sb_addc(&child, '/');
	size_t cbase = child.len, base = s->abs.len;
	const char *keydir = store_key_dir(s->st);
	for (size_t i = 0; i < n; i++) {
		sb_setlen(&child, cbase);
		sb_adds(&child, names[i]);
		sb_setlen(&s->abs, base);
		if (s->abs.buf[base - 1] != '/')
			sb_addc(&s->abs, '/');
		sb_adds(&s->abs, names[i]);
		if (!strcmp(s->abs.buf, keydir) || dirscan_is_output(s->outputs, child.buf))
			continue;
		sb_add(&listing, names[i], strlen(names[i]) + 1);
		if (fsrec_on()) { /* the stats are taken on two threads, recorded on this one */
			errno = errs[i];
			fsrec_stat(s->abs.buf, errs[i] ? -1 : 0, &sbs[i]);
		}
		if (add_entry(s, dirfd(d), names[i], child.buf, depth + 1, &sbs[i], errs[i]) < 0)
			goto out;
	}
	sb_setlen(&s->abs, base);
	struct digest dg;
	digest_of(listing.buf ? listing.buf : "", listing.len, &dg);
	run_add_part(s->r, "dir", name.buf, &dg);
	rc = 0;
out:
	closedir(d);
	free(offs);
	free(names);
	free(sbs);
	free(errs);
	sb_release(&arena);
	sb_release(&listing);
	sb_release(&name);
	sb_release(&child);
	return rc;
}

/* The entry at (at, entry), s->abs its path, name its store name (a
 * file's or a link's): followed if a link, a regular file inside the
 * tree, a directory, or a dangling link (its target text is hashed: it is
 * still an input). */
static int add_entry(struct scan *s, int at, const char *entry, const char *name, int depth, const struct stat *sb,
		     int err)
{
	if (!err) {
		if (S_ISREG(sb->st_mode) && depth > 0)
			return add_file(s, sb, name);
		if (S_ISDIR(sb->st_mode))
			return add_dir(s, at, entry, depth);
		return err_set("input %s: not a regular file or directory", s->abs.buf);
	}
	struct strbuf target = STRBUF_INIT;
	struct stat lsb;
	int lrc = fstatat(at, entry, &lsb, AT_SYMLINK_NOFOLLOW);
	fsrec_lstat(s->abs.buf, lrc, &lsb);
	if (lrc < 0 || !S_ISLNK(lsb.st_mode)) {
		errno = err;
		return err_sys("input %s", s->abs.buf);
	}
	sb_grow(&target, PATH_MAX);
	ssize_t len = readlinkat(at, entry, target.buf, PATH_MAX);
	sb_setlen(&target, len > 0 ? (size_t)len : 0);
	struct digest d;
	digest_of(target.buf, target.len, &d);
	run_add_part(s->r, "link", name, &d);
	sb_release(&target);
	return 0;
}

int dirscan_is_output(const struct strvec *outputs, const char *name)
{
	for (size_t i = 0; i < outputs->n; i++) {
		size_t n = strlen(outputs->v[i]);
		if (!strncmp(outputs->v[i], name, n) && (!name[n] || name[n] == '/'))
			return 1;
	}
	return 0;
}

int dirscan_add(struct store *st, const struct strvec *outputs, struct run_record *r, const char *abspath)
{
	struct scan s = { .st = st, .r = r, .outputs = outputs, .now = now_ns() };
	struct strbuf name = STRBUF_INIT;
	int rc;
	sb_adds(&s.abs, abspath);
	s.rel = s.abs.len + (abspath[s.abs.len - 1] != '/');
	fp_store_path(st, NULL, abspath, &name); /* a dangling link's */
	if (store_tree_get(st, abspath, &s.old) == 1 && s.old.len >= sizeof(magic) &&
	    !memcmp(s.old.buf, magic, sizeof(magic))) {
		s.cur.p = (const unsigned char *)s.old.buf + sizeof(magic);
		s.cur.end = (const unsigned char *)s.old.buf + s.old.len;
		s.kept = sizeof(magic);
		snap_next(&s.cur);
	}
	err_clear(); /* no snapshot: every file is hashed */
	struct stat sb;
	rc = add_entry(&s, AT_FDCWD, abspath, name.buf, 0, &sb, fsrec_do_stat(abspath, &sb) == 0 ? 0 : errno);
	helper_stop(&s.helper);
	if (rc == 0 && s.cur.have)
		diverge(&s); /* files gone at the end */
	if (rc == 0 && s.diverged)
		store_tree_put(st, abspath, &s.out);
	sb_release(&name);
	sb_release(&s.abs);
	sb_release(&s.old);
	sb_release(&s.cur.path);
	sb_release(&s.out);
	sb_release(&s.last);
	return rc;
}
