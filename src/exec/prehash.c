/* prehash: files read, hashed while the command runs.
 *
 * The trace's serving thread hands each path the command opens for
 * reading to prehash_offer, which appends it to a list without a lock
 * (that thread must never wait: every stopped call of the command waits
 * for it, and a lock shared with a thread at the lowest priority would
 * make it wait for as long as that thread is not scheduled). A thread at
 * SCHED_IDLE, started once the command has run PREHASH_AFTER_MS, takes
 * the paths in turn: a regular file quiet for STORE_CACHE_QUIET_NS (any
 * write after it then changes its mtime or ctime) and not in the stat
 * cache already is read and hashed (XXH3, as obs_collect would), its
 * lstat taken before the read kept beside the digest. After the exit,
 * obs_collect takes a digest only when the file's lstat then is that one:
 * the stat cache's rule, for a cache filled during the run. Source files
 * are left alone (they are keyed by their canonical form, not their
 * bytes), so are files written by the command (not quiet).
 *
 * Both lists are chunks of pointers that never move, each entry published
 * by a release store of the count its one reader loads with acquire. */
#include "exec/prehash.h"
#include "key/canon.h"

#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

enum {
	CHUNK = 1024,           /* entries per chunk of a list */
	IDLE_NS = 2000000,      /* the thread's sleep while the list is empty ... */
	IDLE_MAX_NS = 64000000, /* ... doubling to this while it stays so (a long run reading nothing) */
	CACHED_MIN = 256 << 10, /* bytes: smaller files are hashed without asking the stat cache first */
	IOPRIO_CLASS_IDLE = 3,  /* linux/ioprio.h */
	IOPRIO_CLASS_SHIFT = 13,
};

/* A list one thread appends to and another reads, without a lock. */
struct list {
	struct chunk {
		struct chunk *next;
		void *v[CHUNK];
	} * head, *tail; /* head: the reader's first; tail: the writer's */
	size_t n;        /* published: written with release, read with acquire */
	/* the reader's place */
	struct chunk *at;
	size_t taken;
};

static void list_push(struct list *l, void *x)
{
	size_t n = l->n; /* the writer's own count */
	if (!l->tail || n % CHUNK == 0) {
		struct chunk *c = xcalloc(1, sizeof(*c));
		if (l->tail)
			l->tail->next = c; /* published by the store of n below */
		else
			l->head = c;
		l->tail = c;
	}
	l->tail->v[n % CHUNK] = x;
	__atomic_store_n(&l->n, n + 1, __ATOMIC_RELEASE);
}

/* The next entry published, or NULL. */
static void *list_take(struct list *l)
{
	if (l->taken == __atomic_load_n(&l->n, __ATOMIC_ACQUIRE))
		return NULL;
	if (!l->at)
		l->at = l->head;
	else if (l->taken % CHUNK == 0)
		l->at = l->at->next;
	return l->at->v[l->taken++ % CHUNK];
}

/* Once neither thread uses it: the entries not taken, and the chunks. */
static void list_free(struct list *l, void (*free_entry)(void *))
{
	struct chunk *c = l->head;
	for (size_t base = 0; c; base += CHUNK) {
		for (size_t i = base > l->taken ? base : l->taken; i < l->n && i < base + CHUNK; i++)
			free_entry(c->v[i - base]);
		struct chunk *next = c->next;
		free(c);
		c = next;
	}
}

/* A file hashed: what lstat said before it was read, and its digest. */
struct hashed {
	char *path;
	struct file_sig sig;
	mode_t mode;
	struct digest d;
};

static void free_hashed(void *p)
{
	struct hashed *h = p;
	free(h->path);
	free(h);
}

struct prehash {
	int64_t after_ms;
	struct cache_reader *cache;
	struct list paths; /* char *: from the trace's thread */
	struct list done;  /* struct hashed *: from this module's thread */
	int stop;          /* read between files and megabytes */
	pthread_t thread;
	int started;
	/* prehash_ended's: the files hashed by then, by path */
	struct hashed **by_path;
	size_t nby_path;
};

static int cmp_hashed(const void *a, const void *b)
{
	return strcmp((*(struct hashed *const *)a)->path, (*(struct hashed *const *)b)->path);
}

static void hash_path(struct prehash *p, char *path)
{
	struct stat sb;
	struct digest d;
	int64_t now = now_ns();
	int found = lstat(path, &sb) == 0;
	/* through a link (/usr/bin/sh), under the name obs_collect looks for */
	if (found && S_ISLNK(sb.st_mode)) {
		char *real = realpath(path, NULL);
		free(path);
		if (!(path = real))
			return;
		found = lstat(path, &sb) == 0;
	}
	if (!found || canon_detect(path, NULL, 0) != CANON_RAW || !S_ISREG(sb.st_mode) ||
	    !store_cache_quiet(&sb, now) ||
	    (sb.st_size >= CACHED_MIN && store_cache_reader_get(p->cache, path, &sb, &d))) {
		free(path);
		return;
	}
	if (digest_file_halt(path, &sb, &d, &p->stop) != 0) {
		err_clear(); /* gone, unreadable: hashed after the exit, if it is an input */
		free(path);
		return;
	}
	struct hashed *h = xcalloc(1, sizeof(*h));
	*h = (struct hashed){ path, file_sig_of(&sb), sb.st_mode, d };
	list_push(&p->done, h);
}

static void *prehash_main(void *arg)
{
	struct prehash *p = arg;
	struct sched_param sp = { 0 };
	pthread_setschedparam(pthread_self(), SCHED_IDLE, &sp);
	/* and its reads after the command's: a file not cached is read from
	 * the disk the command may be reading its data from */
	syscall(SYS_ioprio_set, 1 /* IOPRIO_WHO_PROCESS */, (int)syscall(SYS_gettid),
		IOPRIO_CLASS_IDLE << IOPRIO_CLASS_SHIFT);
	long idle = IDLE_NS;
	while (!__atomic_load_n(&p->stop, __ATOMIC_RELAXED)) {
		char *path = list_take(&p->paths);
		if (path) {
			hash_path(p, path);
			idle = IDLE_NS;
			continue;
		}
		struct timespec ts = { 0, idle };
		nanosleep(&ts, NULL);
		idle = idle * 2 < IDLE_MAX_NS ? idle * 2 : IDLE_MAX_NS;
	}
	return NULL;
}

struct prehash *prehash_new(struct store *st)
{
	int64_t after = env_delay_ms("CASHET_PREHASH_MS", PREHASH_AFTER_MS);
	if (after < 0)
		return NULL;
	struct prehash *p = xcalloc(1, sizeof(*p));
	p->after_ms = after;
	p->cache = store_cache_reader_new(st);
	return p;
}

int64_t prehash_after_ms(const struct prehash *p)
{
	return p ? p->after_ms : 0;
}

void prehash_offer(void *arg, const char *path)
{
	struct prehash *p = arg;
	if (path[0] == '/')
		list_push(&p->paths, xstrdup(path));
}

void prehash_start(void *arg)
{
	struct prehash *p = arg;
	if (p && !p->started && !__atomic_load_n(&p->stop, __ATOMIC_RELAXED))
		p->started = thread_start(&p->thread, prehash_main, p, 0) == 0;
}

void prehash_ended(struct prehash *p)
{
	if (!p)
		return;
	__atomic_store_n(&p->stop, 1, __ATOMIC_RELAXED);
	/* not joined: at its priority, it may not run again for as long as
	 * the engine's threads are busy */
	struct hashed *h;
	size_t cap = 0;
	while ((h = list_take(&p->done))) {
		if (p->nby_path == cap) {
			cap = cap ? 2 * cap : 256;
			p->by_path = xrealloc(p->by_path, cap * sizeof(*p->by_path));
		}
		p->by_path[p->nby_path++] = h;
	}
	if (p->nby_path)
		qsort(p->by_path, p->nby_path, sizeof(*p->by_path), cmp_hashed);
}

int prehash_digest(const void *arg, const char *path, const struct stat *sb, struct digest *out)
{
	const struct prehash *p = arg;
	if (!p || !p->nby_path)
		return 0;
	struct hashed key = { .path = (char *)path }, *k = &key;
	struct hashed **f = bsearch(&k, p->by_path, p->nby_path, sizeof(*p->by_path), cmp_hashed);
	if (!f)
		return 0;
	const struct hashed *h = *f;
	struct file_sig now = file_sig_of(sb);
	if (!file_sig_eq(&h->sig, &now) || h->mode != sb->st_mode)
		return 0;
	*out = h->d;
	return 1;
}

void prehash_free(struct prehash *p)
{
	if (!p)
		return;
	__atomic_store_n(&p->stop, 1, __ATOMIC_RELAXED);
	if (p->started)
		pthread_join(p->thread, NULL);
	list_free(&p->paths, free);
	list_free(&p->done, free_hashed);
	for (size_t i = 0; i < p->nby_path; i++)
		free_hashed(p->by_path[i]);
	free(p->by_path);
	store_cache_reader_free(p->cache);
	free(p);
}
