/* early: outputs packed while the command runs.
 *
 * Storing a directory of 20,000 small files after the command was reading,
 * hashing (SHA-1 and XXH3) and writing each into a pack: most of a miss's
 * cost beyond the command, while the machine's second CPU sat idle as the
 * command ran. Once the command has run a while (spawn's `slow` hook), a
 * thread at the lowest priority walks its declared outputs every so often
 * and packs the files that have not been written to for QUIET_NS into a
 * new pack of the store, published at once like any pack, remembering
 * each file's blob. When the command has exited, a thread at the engine's
 * priority packs what is left (first the rest of a pack the exit stopped,
 * handed over by the idle thread), while the engine reads the trace and
 * walks the outputs on the other CPU, then takes its share of those packs
 * (up to LAST_PACKS). The save takes the blob of every file whose bytes
 * are still those packed (their size and XXH3 digest, the check every
 * replay makes too) without reading it, and reads and stores the others
 * as it always did.
 *
 * A file packed while the command ran is taken on a stat's word only when
 * a write could not have left it as it was: its inode, size and times, as
 * the outputs' walk after the exit found them (an lstat of its own for
 * each was 15 ms of the engine's thread for 6,000 files), are those the
 * walk saw before the pack read it, that walk found it written
 * QUIET_NS before (so a write after it is stamped with a later ctime,
 * even by the kernel's coarse clock), its file system keeps ctimes finer
 * than a second, and the trace shows that no process of the command
 * could have written it through a shared mapping, which changes no time
 * stamp (on tmpfs never, elsewhere not while the page stays dirty): that
 * takes a descriptor open for reading and writing, so a file the trace
 * saw opened so, by any name (its inode), or an inherited descriptor, is
 * read again (on every CPU); so is every file when the command was not
 * traced, or a path it opened so is gone. Reading 15,000 files again took
 * 70 ms of CPU in the miss of a `cp -r` of 20,000. A file written again
 * after it was packed is stored as it is at the end, its early blob an
 * orphan until gc.
 * The store lock is held shared while an early pack is written (when gc
 * holds it, nothing is), and again from the check of which early packs
 * are still there until the save is done: gc, which may run in between
 * (not blocked for as long as the command runs), drops the early packs,
 * whose blobs no run names yet, and their files are then stored as they
 * would have been without them. */
#include "exec/early.h"
#include "store/outputs.h"
#include "trace/trace.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum {
	EARLY_MIN = 64,       /* files: fewer are left to the save (a pack costs an index and a lookup more) */
	ROUND_FILES = 8192,   /* a pack's most files ... */
	PERIOD_MS = 10,       /* between walks while they find files */
	PERIOD_MAX_MS = 1000, /* ... doubling to this while they find none */
	EARLY_DEPTH = 64,     /* directories deep, as outputs_collect */
	LAST_PACKS = 4,       /* the last walk's files in at most so many packs ... */
	LAST_PACK_MIN = 1024, /* ... of so many files or more (split_last) */
};
#define ROUND_BYTES ((uint64_t)32 << 20) /* ... and bytes: a pack stopped short is read back to be checksummed */
#define FILE_MAX ((uint64_t)1 << 20)     /* larger files are streamed loose by the save, never packed */
#define QUIET_NS 50000000LL

/* A file seen by a walk. */
struct efile {
	struct run_file f;   /* src: its absolute path, as outputs_collect names it */
	struct file_sig sig; /* before it was read to be packed */
	/* f.early.set: packed, no later walk looks at it again */
	int checked; /* packed after the command exited (of the last walk) */
	size_t pack; /* which of early->packs holds it */
};

/* A directory a walk listed while the command ran: a later walk that finds
 * it as it was then (its inode and times), every file in it packed or
 * never to be, goes down its subdirectories without reading it again.
 * Re-reading every directory on each walk, to skip the files packed
 * already one by one, was a fifth of packing 20,000 files. A file made in
 * the tick the listing was stamped in may be missed so: the walk once the
 * command has exited reads every directory. */
struct edir {
	ino_t ino;
	int64_t mtime, ctime;
	int done;
	struct strvec subdirs;
};

/* Entries by path: each allocated once (early_apply's thread reads some as
 * the walk adds more), found by open addressing (index + 1; 0 empty). */
struct pathtab {
	struct pathent {
		const char *path; /* the entry's own */
		void *val;
	} * v;
	size_t n, alloc, *slot, nslots;
};

/* What a walk found to pack, and its bytes. */
struct todo {
	struct efile **v;
	size_t n, alloc;
	uint64_t bytes;
};

/* A round's pack, its files (their run_file in files) and the store lock
 * held for it. */
struct round {
	struct early_pack *pack;
	struct todo t;
	struct run_file **files;
	int lock;
};

struct early {
	struct store *st;
	const char *cwd;
	const struct strvec *outputs;
	struct pathtab files, dirs; /* of struct efile, struct edir */
	int64_t after_ms;           /* how long the command runs before the thread starts */
	struct strvec packs;        /* the early packs' names */
	struct round handed;        /* the idle thread's, stopped by the command's exit */
	struct round *last;         /* split_last's */
	size_t nlast, last_next;    /* how many; the next to take */
	int lock;                   /* the store lock, shared, from early_apply to the save */
	pthread_t idle, finisher;   /* while the command runs; once it has exited */
	int idle_started, finishing;
	pthread_mutex_t mu;
	pthread_cond_t cond;
	/* Read by the pack writer between files (atomically): ended, the
	 * command exited (a round stops short, the last takes the rest);
	 * stop, nothing more is wanted. */
	int ended, stop;
	int last_ready; /* the last walk's packs are there to take */
	/* Whether a stat may stand for that read, and the inodes that may
	 * have been written through a shared mapping (sorted): ended. */
	int trust_stat;
	ino_t *shared;
	size_t nshared;
};

static size_t *tab_slot(const struct pathtab *t, const char *path)
{
	size_t i = (size_t)XXH3_64bits(path, strlen(path)) & (t->nslots - 1);
	while (t->slot[i] && strcmp(t->v[t->slot[i] - 1].path, path))
		i = (i + 1) & (t->nslots - 1);
	return &t->slot[i];
}

static void *tab_find(const struct pathtab *t, const char *path)
{
	if (!t->nslots)
		return NULL;
	size_t i = *tab_slot(t, path);
	return i ? t->v[i - 1].val : NULL;
}

/* path's entry, or a new one (size bytes, zeroed): *made says which */
static void *tab_get(struct pathtab *t, const char *path, size_t size, int *made)
{
	if ((t->n + 1) * 2 > t->nslots) {
		free(t->slot);
		t->nslots = t->nslots ? t->nslots * 2 : 256;
		t->slot = xcalloc(t->nslots, sizeof(*t->slot));
		for (size_t i = 0; i < t->n; i++)
			*tab_slot(t, t->v[i].path) = i + 1;
	}
	size_t *s = tab_slot(t, path);
	if ((*made = !*s) == 0)
		return t->v[*s - 1].val;
	if (t->n == t->alloc) {
		t->alloc = t->alloc ? t->alloc * 2 : 256;
		t->v = xrealloc(t->v, t->alloc * sizeof(*t->v));
	}
	t->v[t->n] = (struct pathent){ xstrdup(path), xcalloc(1, size) };
	*s = ++t->n;
	return t->v[t->n - 1].val;
}

static struct efile *find(const struct early *e, const char *path)
{
	return tab_find(&e->files, path);
}

static struct efile *find_or_add(struct early *e, const char *path)
{
	int made;
	struct efile *ef = tab_get(&e->files, path, sizeof(*ef), &made);
	if (made) {
		ef->f.kind = FILE_OUTPUT;
		ef->f.src = (char *)e->files.v[e->files.n - 1].path; /* the table's */
	}
	return ef;
}

static int todo_full(const struct todo *t, int last)
{
	return !last && (t->n >= ROUND_FILES || t->bytes >= ROUND_BYTES);
}

enum walked {
	W_PENDING, /* a file to pack, now or on a later walk, or not looked at (halted, full) */
	W_DONE,    /* a file packed, or never to be (empty, large, not regular) */
	W_DIR,     /* a directory, walked */
};

/* A directory's subdirectories, at abs, each walked. */
static void walk_subdirs(struct early *e, const struct edir *ed, struct strbuf *abs, int depth, int64_t quiet,
			 const int *halt, struct todo *t);

/* The file or directory name in at (abs its path): each regular file
 * written to before quiet and not packed yet goes to t, until *halt. */
static enum walked walk(struct early *e, int at, const char *name, struct strbuf *abs, int depth, int64_t quiet,
			const int *halt, struct todo *t)
{
	struct stat sb;
	if (todo_full(t, !quiet) || __atomic_load_n(halt, __ATOMIC_RELAXED) ||
	    fstatat(at, name, &sb, AT_SYMLINK_NOFOLLOW) < 0)
		return W_PENDING;
	if (S_ISDIR(sb.st_mode)) {
		if (depth >= EARLY_DEPTH || outputs_is_store(e->st, at, name, abs->buf))
			return W_DIR;
		/* remembered while the command runs only: the last walk reads all */
		int made;
		struct edir *ed = quiet ? tab_get(&e->dirs, abs->buf, sizeof(*ed), &made) : NULL;
		int64_t m = ts_ns(&sb.st_mtim), c = ts_ns(&sb.st_ctim);
		if (ed && ed->done && ed->ino == sb.st_ino && ed->mtime == m && ed->ctime == c) {
			walk_subdirs(e, ed, abs, depth, quiet, halt, t);
			return W_DIR;
		}
		int fd = openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
		if (!d) {
			if (fd >= 0)
				close(fd);
			return W_DIR;
		}
		int done = 1;
		if (ed)
			sv_release(&ed->subdirs);
		size_t len = abs->len;
		struct dirent *de;
		while ((de = readdir(d))) {
			if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
				continue;
			sb_setlen(abs, len);
			sb_addc(abs, '/');
			sb_adds(abs, de->d_name);
			/* packed already: not even a stat (one written again
			 * since is read and stored by the save) */
			const struct efile *ef = de->d_type == DT_REG ? find(e, abs->buf) : NULL;
			if (ef && ef->f.early.set)
				continue;
			/* written too lately when last seen: not quiet yet
			 * either, however written since (a stat per walk was
			 * five for each file a `cp -r` writes) */
			enum walked w = ef && quiet && (ef->sig.mtime > quiet || ef->sig.ctime > quiet)
						? W_PENDING
						: walk(e, dirfd(d), de->d_name, abs, depth + 1, quiet, halt, t);
			if (w == W_DIR && ed)
				sv_push(&ed->subdirs, de->d_name);
			done &= w != W_PENDING;
		}
		sb_setlen(abs, len);
		closedir(d);
		if (ed) {
			ed->ino = sb.st_ino;
			ed->mtime = m;
			ed->ctime = c;
			ed->done = done;
		}
		return W_DIR;
	}
	int64_t m = ts_ns(&sb.st_mtim), c = ts_ns(&sb.st_ctim);
	if (!S_ISREG(sb.st_mode) || !sb.st_size || (uint64_t)sb.st_size >= FILE_MAX)
		return W_DONE;
	struct efile *ef = find_or_add(e, abs->buf);
	if (ef->f.early.set)
		return W_DONE; /* a declared file, or one declared twice */
	ef->sig = file_sig_of(&sb);
	if (quiet && (m > quiet || c > quiet))
		return W_PENDING;
	ef->f.size = (uint64_t)sb.st_size;
	if (t->n == t->alloc) {
		t->alloc = t->alloc ? t->alloc * 2 : 256;
		t->v = xrealloc(t->v, t->alloc * sizeof(*t->v));
	}
	t->v[t->n++] = ef;
	t->bytes += (uint64_t)sb.st_size;
	return W_PENDING;
}

static void walk_subdirs(struct early *e, const struct edir *ed, struct strbuf *abs, int depth, int64_t quiet,
			 const int *halt, struct todo *t)
{
	size_t len = abs->len;
	for (size_t i = 0; i < ed->subdirs.n; i++) {
		sb_setlen(abs, len);
		sb_addc(abs, '/');
		sb_adds(abs, ed->subdirs.v[i]);
		char *path = xstrdup(abs->buf); /* walk() extends abs as it descends */
		walk(e, AT_FDCWD, path, abs, depth + 1, quiet, halt, t);
		free(path);
	}
	sb_setlen(abs, len);
}

/* Publishes r's pack: how many files went into it. */
static int round_end(struct early *e, struct round *r, int last)
{
	char name[OID_HEX];
	int packed = store_early_end(r->pack, name);
	store_unlock(r->lock);
	pthread_mutex_lock(&e->mu); /* the last round's packs end on two threads */
	for (size_t i = 0; packed > 0 && i < r->t.n; i++) {
		struct efile *ef = r->t.v[i];
		ef->checked = last && ef->f.early.set; /* read after the command exited */
		ef->pack = e->packs.n;
	}
	if (packed > 0)
		sv_push(&e->packs, name);
	pthread_mutex_unlock(&e->mu);
	err_clear(); /* only ever an optimization: the save stores every output */
	free(r->files);
	free(r->t.v);
	*r = (struct round){ 0 };
	return packed > 0 ? packed : 0;
}

/* A walk of the outputs: the files to pack in t. The last, once the
 * command has exited, takes every file, however recently written. */
static void walk_outputs(struct early *e, int last, struct todo *t)
{
	struct strbuf abs = STRBUF_INIT;
	int64_t quiet = last ? 0 : now_ns() - QUIET_NS;
	/* a round while the command runs gives up once it has exited */
	const int *halt = last ? &e->stop : &e->ended;
	for (size_t i = 0; i < e->outputs->n && !todo_full(t, last); i++) {
		path_absolute(e->cwd, e->outputs->v[i], &abs);
		/* its own copy: walk() extends abs as it descends */
		char *top = xstrdup(abs.buf);
		walk(e, AT_FDCWD, top, &abs, 0, quiet, halt, t);
		free(top);
	}
	sb_release(&abs);
}

/* A pack of r's files (r->t, freed): how many went into it. */
static int pack_round(struct early *e, struct round *r, int last)
{
	const int *halt = last ? &e->stop : &e->ended;
	r->lock = -1;
	/* no lock while gc runs: the save packs them, after it */
	if (r->t.n < EARLY_MIN || __atomic_load_n(halt, __ATOMIC_RELAXED) ||
	    (r->lock = store_lock(e->st, STORE_LOCK_SHARED | STORE_LOCK_NOWAIT)) < 0)
		goto drop;
	r->files = xcalloc(r->t.n, sizeof(*r->files));
	for (size_t i = 0; i < r->t.n; i++)
		r->files[i] = &r->t.v[i]->f;
	if (!(r->pack = store_early_begin(e->st, r->files, r->t.n)))
		goto drop;
	if (store_early_add(r->pack, halt) == 0 && !last) {
		/* the command exited: finish_main adds the rest, at the
		 * engine's priority; at this thread's, the rest waited
		 * behind the engine's threads for as long as they ran
		 * (125 ms of a `cp -r` of 20,000 files) */
		e->handed = *r;
		return 0;
	}
	return round_end(e, r, last);
drop:
	store_unlock(r->lock);
	err_clear(); /* only ever an optimization */
	free(r->files);
	free(r->t.v);
	*r = (struct round){ 0 };
	return 0;
}

/* The last walk's files, in up to LAST_PACKS packs of LAST_PACK_MIN files
 * or more, for the finishing thread and the engine's to take in turn
 * (take_last): the engine's waited for them otherwise, 140 ms of a
 * `tar -xf` of 20,000 files. */
static void split_last(struct early *e, struct todo *t)
{
	size_t n = t->n < EARLY_MIN ? 0 : t->n / LAST_PACK_MIN < 1 ? 1 : t->n / LAST_PACK_MIN;
	if (n > LAST_PACKS)
		n = LAST_PACKS;
	e->last = xcalloc(n ? n : 1, sizeof(*e->last));
	for (size_t k = 0, at = 0; k < n; k++) {
		struct todo *c = &e->last[k].t;
		c->n = c->alloc = t->n / n + (k < t->n % n);
		c->v = xcalloc(c->n, sizeof(*c->v));
		memcpy(c->v, t->v + at, c->n * sizeof(*c->v));
		at += c->n;
	}
	e->nlast = n;
	free(t->v);
}

/* The last walk's packs not taken yet, each packed on this thread. */
static void take_last(struct early *e)
{
	size_t k;
	while ((k = __atomic_fetch_add(&e->last_next, 1, __ATOMIC_RELAXED)) < e->nlast)
		pack_round(e, &e->last[k], 1);
}

static int ino_cmp(const void *a, const void *b)
{
	ino_t x = *(const ino_t *)a, y = *(const ino_t *)b;
	return x < y ? -1 : x > y;
}

/* Whether ef, packed while the command ran, is as the walk saw it before
 * the pack read it, by what the outputs' walk found after the exit (f's
 * seen; see above). */
static int unchanged(const struct early *e, const struct efile *ef, const struct run_file *f)
{
	return e->trust_stat && ef->sig.ctime % 1000000000 && f->seen.ino &&
	       !(e->nshared && bsearch(&ef->sig.ino, e->shared, e->nshared, sizeof(*e->shared), ino_cmp)) &&
	       file_sig_eq(&f->seen, &ef->sig);
}

/* A file packed while the command ran that unchanged() cannot vouch for,
 * read again: ok when it still holds the bytes packed. */
struct reread {
	const struct efile *ef;
	struct run_file *f;
	int ok;
};

static void reread_one(void *arg, size_t i, struct diropen *dirs)
{
	struct reread *rr = (struct reread *)arg + i;
	struct strbuf data = STRBUF_INIT;
	struct digest d;
	int fd = diropen_open(dirs, rr->ef->f.src, O_RDONLY | O_CLOEXEC);
	if (fd >= 0 && read_fd_sb(fd, rr->ef->f.src, &data) == 0) {
		digest_of(data.buf ? data.buf : "", data.len, &d);
		rr->ok = data.len == rr->ef->f.early.size && digest_eq(&d, &rr->ef->f.early.xxh);
	}
	err_clear(); /* gone: the save says so */
	if (fd >= 0)
		close(fd);
	sb_release(&data);
}

/* While the command runs, at the lowest priority there is: the tracer's
 * serving thread, which each stopped call of the command waits for, must
 * never wait for this one (it made a `cp -r` of 20,000 files 0.2 s
 * slower, the time the packing saved). */
static void *idle_main(void *arg)
{
	struct early *e = arg;
	int64_t period = PERIOD_MS;
	struct sched_param sp = { 0 };
	pthread_setschedparam(pthread_self(), SCHED_IDLE, &sp);
	pthread_mutex_lock(&e->mu);
	while (!e->stop && !e->ended) {
		pthread_mutex_unlock(&e->mu);
		struct round r = { 0 };
		walk_outputs(e, 0, &r.t);
		int packed = pack_round(e, &r, 0);
		pthread_mutex_lock(&e->mu);
		period = packed ? PERIOD_MS : period * 2 < PERIOD_MAX_MS ? period * 2 : PERIOD_MAX_MS;
		struct timespec until;
		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_sec += period / 1000;
		until.tv_nsec += (period % 1000) * 1000000;
		if (until.tv_nsec >= 1000000000) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000;
		}
		while (!e->stop && !e->ended && pthread_cond_timedwait(&e->cond, &e->mu, &until) != ETIMEDOUT)
			;
	}
	pthread_mutex_unlock(&e->mu);
	return NULL;
}

/* Once the command has exited, at the engine's priority (an idle thread
 * cannot come back from SCHED_IDLE unprivileged): the rest packed, and
 * what was packed before read again. */
static void *finish_main(void *arg)
{
	struct early *e = arg;
	pthread_join(e->idle, NULL);
	if (e->handed.pack) { /* the round the exit stopped, packed on */
		store_early_add(e->handed.pack, &e->stop);
		round_end(e, &e->handed, 0);
	}
	struct todo t = { NULL, 0, 0, 0 };
	walk_outputs(e, 1, &t);
	split_last(e, &t);
	pthread_mutex_lock(&e->mu);
	e->last_ready = 1;
	pthread_cond_broadcast(&e->cond);
	pthread_mutex_unlock(&e->mu);
	take_last(e);
	return NULL;
}

struct early *early_new(struct store *st, const char *cwd, const struct strvec *outputs)
{
	int64_t after = env_delay_ms("CASHET_EARLY_PACK_MS", EARLY_AFTER_MS);
	if (!outputs->n || after < 0)
		return NULL;
	struct early *e = xcalloc(1, sizeof(*e));
	e->after_ms = after;
	e->st = st;
	e->cwd = cwd;
	e->outputs = outputs;
	e->lock = -1;
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&e->cond, &ca);
	pthread_condattr_destroy(&ca);
	pthread_mutex_init(&e->mu, NULL);
	return e;
}

int64_t early_after_ms(const struct early *e)
{
	return e ? e->after_ms : 0;
}

void early_start(void *arg)
{
	struct early *e = arg;
	/* one CPU: the walk and the pack would only take turns with the
	 * command (asked here, not for every small miss: it reads a file) */
	if (e && !e->idle_started && !e->ended && sysconf(_SC_NPROCESSORS_ONLN) > 1)
		e->idle_started = thread_start(&e->idle, idle_main, e, 0) == 0;
}

/* Tells the threads the command exited, or (stop) to stop at once. */
static void signal_threads(struct early *e, int stop)
{
	pthread_mutex_lock(&e->mu);
	__atomic_store_n(&e->ended, 1, __ATOMIC_RELAXED);
	if (stop)
		__atomic_store_n(&e->stop, 1, __ATOMIC_RELAXED);
	pthread_cond_broadcast(&e->cond);
	pthread_mutex_unlock(&e->mu);
}

/* Waits for whichever thread runs last. */
static void join_threads(struct early *e)
{
	if (e->finishing)
		pthread_join(e->finisher, NULL);
	else if (e->idle_started)
		pthread_join(e->idle, NULL);
	e->finishing = e->idle_started = 0;
}

/* Sets e->trust_stat and e->shared from what the command did (see above). */
static void trust(struct early *e, const struct trace_event *ev, size_t n, const struct fds *fds)
{
	size_t cap = 0;
	struct stat sb;
	e->trust_stat = 0;
	if (!ev)
		return;
	for (size_t i = 0; i < n + fds->nfiles; i++) {
		if (i < n && (ev[i].access & (TRACE_READ | TRACE_WRITE)) != (TRACE_READ | TRACE_WRITE))
			continue;
		/* as open() resolved it: through a link */
		if (i < n ? stat(ev[i].path, &sb) < 0 : fstat(fds->files[i - n].fd, &sb) < 0)
			return; /* gone: it may be any file now */
		if (!S_ISREG(sb.st_mode))
			continue; /* /dev/null, /dev/tty */
		if (e->nshared == cap) {
			cap = cap ? 2 * cap : 16;
			e->shared = xrealloc(e->shared, cap * sizeof(*e->shared));
		}
		e->shared[e->nshared++] = sb.st_ino;
	}
	if (e->nshared)
		qsort(e->shared, e->nshared, sizeof(*e->shared), ino_cmp);
	e->trust_stat = 1;
}

void early_ended(struct early *e, const struct trace_event *ev, size_t n, const struct fds *fds)
{
	if (!e)
		return;
	trust(e, ev, n, fds);
	signal_threads(e, 0);
	if (!e->idle_started || e->finishing)
		return; /* the command was quick: the save stores every output */
	if (thread_start(&e->finisher, finish_main, e, 0) == 0) {
		e->finishing = 1;
	} else {
		finish_main(e);
		e->idle_started = 0;
	}
}

void early_apply(struct early *e, struct run_record *r)
{
	if (!e)
		return;
	if (e->finishing) {
		pthread_mutex_lock(&e->mu);
		while (!e->last_ready)
			pthread_cond_wait(&e->cond, &e->mu);
		pthread_mutex_unlock(&e->mu);
		take_last(e); /* beside the thread */
	}
	join_threads(e);
	if (!e->packs.n || (e->lock = store_lock(e->st, STORE_LOCK_SHARED)) < 0) {
		err_clear(); /* the save says why it cannot lock, if it cannot */
		return;
	}
	/* which early packs gc left (it removes them all, and auto-pack
	 * may have merged one into another): held so until the save */
	char *kept = xcalloc(e->packs.n, 1);
	for (size_t i = 0; i < e->packs.n; i++)
		kept[i] = store_has_pack(e->st, e->packs.v[i]);
	struct reread *rr = NULL;
	size_t nrr = 0, cap = 0;
	for (size_t i = 0; i < r->nfiles; i++) {
		struct run_file *f = &r->files[i];
		const struct efile *ef = f->kind == FILE_OUTPUT && f->src ? find(e, f->src) : NULL;
		if (!ef || !ef->f.early.set || !kept[ef->pack])
			continue;
		if (ef->checked || unchanged(e, ef, f)) {
			f->early = ef->f.early;
			continue;
		}
		if (nrr == cap) {
			cap = cap ? 2 * cap : 64;
			rr = xrealloc(rr, cap * sizeof(*rr));
		}
		rr[nrr++] = (struct reread){ ef, f, 0 };
	}
	parallel_for(nrr, 64, reread_one, rr);
	for (size_t i = 0; i < nrr; i++)
		if (rr[i].ok)
			rr[i].f->early = rr[i].ef->f.early;
	free(rr);
	free(kept);
}

void early_free(struct early *e)
{
	if (!e)
		return;
	signal_threads(e, 1);
	join_threads(e);
	if (e->handed.pack) /* no finish_main: what it added */
		round_end(e, &e->handed, 0);
	store_unlock(e->lock);
	for (size_t i = 0; i < e->dirs.n; i++)
		sv_release(&((struct edir *)e->dirs.v[i].val)->subdirs);
	struct pathtab *tabs[] = { &e->files, &e->dirs };
	for (size_t k = 0; k < 2; k++) {
		for (size_t i = 0; i < tabs[k]->n; i++) {
			free((char *)tabs[k]->v[i].path);
			free(tabs[k]->v[i].val);
		}
		free(tabs[k]->v);
		free(tabs[k]->slot);
	}
	for (size_t k = 0; k < e->nlast; k++)
		free(e->last[k].t.v); /* packed, unless the finishing thread never ran */
	free(e->last);
	free(e->shared);
	sv_release(&e->packs);
	pthread_cond_destroy(&e->cond);
	pthread_mutex_destroy(&e->mu);
	free(e);
}
