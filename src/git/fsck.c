/* fsck: read every object of the store back once, so libgit2 inflates it
 * and recomputes its SHA-1 (strict hash verification). The runs' objects
 * are read first, run by run, and each run goes to the store's checks with
 * what was read (meta, tree, small blobs): nothing is read twice. Then the
 * objects no run reached (orphans, large blobs) are read the same way.
 *
 * Reading is most of the work (inflate, SHA-1, parsing), and runs are
 * independent: reader threads, each with its own repository, read runs
 * ahead into a ring of slots, each run handed to the store's prep there
 * (its record built), while this thread hands them to the store's checks
 * in the order of the list, so reports come out as one thread would
 * print them. */
#include "git/gitint.h"

#include <pthread.h>
#include <string.h>
#include <unistd.h>

/* A set of object ids: open addressing on ids, which are uniformly
 * distributed already. */
struct oidset {
	git_oid *slot;
	unsigned char *used;
	size_t cap, n;
};

static size_t slot_of(const struct oidset *s, const git_oid *id)
{
	size_t h;
	memcpy(&h, id->id, sizeof(h));
	return h & (s->cap - 1);
}

static int oidset_has(const struct oidset *s, const git_oid *id)
{
	if (!s->cap)
		return 0;
	for (size_t i = slot_of(s, id);; i = (i + 1) & (s->cap - 1)) {
		if (!s->used[i])
			return 0;
		if (git_oid_equal(&s->slot[i], id))
			return 1;
	}
}

static void oidset_add(struct oidset *s, const git_oid *id)
{
	if (2 * (s->n + 1) > s->cap) {
		struct oidset old = *s;
		s->cap = old.cap ? 2 * old.cap : 1024;
		s->slot = xcalloc(s->cap, sizeof(*s->slot));
		s->used = xcalloc(s->cap, 1);
		s->n = 0;
		for (size_t i = 0; i < old.cap; i++)
			if (old.used[i])
				oidset_add(s, &old.slot[i]);
		free(old.slot);
		free(old.used);
	}
	size_t i = slot_of(s, id);
	while (s->used[i]) {
		if (git_oid_equal(&s->slot[i], id))
			return;
		i = (i + 1) & (s->cap - 1);
	}
	s->used[i] = 1;
	git_oid_cpy(&s->slot[i], id);
	s->n++;
}

/* What one reading met, in order: each object read whole and verified
 * (msg NULL) or unreadable (why). The objects seen are only known for
 * sure once replayed in list order (replay()). */
struct fsck_event {
	git_oid id;
	char *msg;
};

/* A reader's pass over one run (or the orphans). */
struct fsck_pass {
	git_odb *odb;
	size_t content_max;
	struct fsck_event *ev;
	size_t nev, cap;
	size_t bytes; /* content kept for the store's checks */
};

static void pass_log(struct fsck_pass *p, const git_oid *id, char *msg)
{
	if (p->nev == p->cap) {
		p->cap = p->cap ? 2 * p->cap : 16;
		p->ev = xrealloc(p->ev, p->cap * sizeof(*p->ev));
	}
	git_oid_cpy(&p->ev[p->nev].id, id);
	p->ev[p->nev++].msg = msg;
}

void gs_fsck_seen(struct fsck_pass *p, const git_oid *id)
{
	pass_log(p, id, NULL);
}

/* A bad object: err_set, and logged to be reported once. */
static int bad_object(struct fsck_pass *p, const git_oid *id)
{
	const git_error *e = git_error_last();
	char hex[GIT_OID_HEXSZ + 1];
	git_oid_tostr(hex, sizeof(hex), id);
	err_set("object %s: %s", hex, e && e->message ? e->message : "unreadable");
	pass_log(p, id, xstrdup(err_msg()));
	git_error_clear();
	return -1;
}

/* Reads id: 0, or -1 when no copy of it is intact (a bad object). A
 * damaged copy beside an intact one (a pack entry a re-run wrote again,
 * loose) is reported too, and the intact copy read. */
static int read_object(struct fsck_pass *p, const git_oid *id, git_odb_object **o)
{
	if (git_odb_read(o, p->odb, id) == 0)
		return 0;
	struct strbuf why = STRBUF_INIT;
	const git_error *e = git_error_last();
	sb_addf(&why, "%s in one copy; an intact copy is there (gc keeps that one)",
		e && e->message ? e->message : "unreadable");
	int rc = gs_read_any(p->odb, id, o);
	if (rc == 0)
		git_error_set_str(GIT_ERROR_ODB, why.buf);
	bad_object(p, id);
	sb_release(&why);
	return rc < 0 ? -1 : 0;
}

int gs_fsck_blob(struct fsck_pass *p, const git_oid *id, int whole, struct strbuf *out)
{
	git_odb_object *o = NULL;
	int rc = 0;
	/* read whole whatever its size, as the object check always did: one
	 * lookup, not a header read first */
	if (read_object(p, id, &o) < 0)
		return -1;
	if (git_odb_object_type(o) != GIT_OBJECT_BLOB) {
		git_odb_object_free(o);
		git_error_set_str(GIT_ERROR_OBJECT, "not a blob");
		return bad_object(p, id);
	}
	gs_fsck_seen(p, id);
	if (whole || git_odb_object_size(o) <= p->content_max) {
		sb_add(out, git_odb_object_data(o), git_odb_object_size(o));
		p->bytes += git_odb_object_size(o);
	} else {
		rc = 1;
	}
	git_odb_object_free(o);
	return rc;
}

/* The run-wide state: objects seen, problems reported. */
struct fsck_state {
	struct gitmod_fsck *req;
	struct oidset seen;
};

/* p's events into the state, in order; p emptied. A bad object is
 * reported the first time it is met. */
static void replay(struct fsck_state *s, struct fsck_pass *p)
{
	for (size_t i = 0; i < p->nev; i++) {
		struct fsck_event *e = &p->ev[i];
		if (e->msg && !oidset_has(&s->seen, &e->id)) {
			sv_push_nocopy(s->req->problems, e->msg);
			s->req->bad_objects++;
			e->msg = NULL;
		}
		oidset_add(&s->seen, &e->id);
		free(e->msg);
	}
	p->nev = 0;
	p->bytes = 0;
}

/* One run read ahead: what the store's prep made of it, and the objects
 * its reading met. */
struct fsck_slot {
	void *prepared;
	struct fsck_pass pass;
	size_t held; /* content bytes it took to read */
	int ready;
};

/* Runs read ahead at most: RING slots, and past the first, RING_BYTES of
 * content (a run of thousands of small outputs holds them all). */
#define RING 32
#define RING_BYTES ((size_t)64 << 20)
#define READERS_MAX 4

struct fsck_ring {
	const char *dir;
	struct gitmod_fsck *req;
	struct fsck_slot slot[RING];
	size_t next;     /* the next run a reader takes */
	size_t consumed; /* runs handed to the store's checks */
	size_t bytes;    /* content held by ready slots */
	int stop;
	pthread_mutex_t mu;
	pthread_cond_t ready, room;
};

static void *reader(void *arg)
{
	struct fsck_ring *q = arg;
	const struct strvec *runs = q->req->runs;
	struct strbuf meta = STRBUF_INIT;
	git_odb *odb = NULL;
	char *open_err = NULL;
	if (open_repo(q->dir) < 0 || git_repository_odb(&odb, repo) < 0)
		open_err = xstrdup(err_msg()[0] ? err_msg() : "cannot open the object database");
	pthread_mutex_lock(&q->mu);
	for (;;) {
		while (!q->stop && q->next < runs->n && q->next > q->consumed &&
		       (q->next >= q->consumed + RING || q->bytes > RING_BYTES))
			pthread_cond_wait(&q->room, &q->mu);
		if (q->stop || q->next >= runs->n)
			break;
		size_t i = q->next++;
		struct fsck_slot *s = &q->slot[i % RING];
		pthread_mutex_unlock(&q->mu);
		struct run_record tree = { 0 };
		int ok = 0;
		s->pass.odb = odb;
		s->pass.content_max = q->req->content_max;
		sb_reset(&meta);
		if (open_err)
			err_set("%s", open_err);
		else
			ok = gs_read_run(runs->v[i], &meta, &tree, &s->pass) == 0;
		s->held = s->pass.bytes + meta.len;
		s->prepared = q->req->prep(q->req->ctx, runs->v[i], ok, sb_str(&meta), &tree);
		run_record_free(&tree);
		err_clear();
		pthread_mutex_lock(&q->mu);
		s->ready = 1;
		q->bytes += s->held;
		pthread_cond_broadcast(&q->ready);
	}
	pthread_mutex_unlock(&q->mu);
	free(open_err);
	sb_release(&meta);
	git_odb_free(odb);
	return NULL;
}

static size_t readers_for(size_t runs)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	size_t n = cpus < 1 ? 1 : cpus > READERS_MAX ? READERS_MAX : (size_t)cpus;
	/* a thread and its repository cost more than a few runs' reading */
	return runs < 64 ? 1 : n;
}

/* Every run of the list read (by readers) and handed to req->fn in order. */
static int check_runs(struct fsck_state *st, const char *dir)
{
	struct gitmod_fsck *req = st->req;
	struct fsck_ring *q = xcalloc(1, sizeof(*q));
	pthread_t tid[READERS_MAX];
	size_t started = 0, want = readers_for(req->runs->n);
	int rc = 0;
	q->dir = dir;
	q->req = req;
	pthread_mutex_init(&q->mu, NULL);
	pthread_cond_init(&q->ready, NULL);
	pthread_cond_init(&q->room, NULL);
	for (; started < want; started++)
		if (pthread_create(&tid[started], NULL, reader, q) != 0)
			break;
	if (!started) {
		err_set("fsck: cannot start a reader thread");
		rc = -1;
	}
	for (size_t i = 0; rc == 0 && i < req->runs->n; i++) {
		struct fsck_slot *s = &q->slot[i % RING];
		pthread_mutex_lock(&q->mu);
		while (!s->ready)
			pthread_cond_wait(&q->ready, &q->mu);
		pthread_mutex_unlock(&q->mu);
		replay(st, &s->pass);
		int fr = req->fn(req->ctx, req->runs->v[i], s->prepared);
		s->prepared = NULL;
		if (fr == 0) /* else its error is the pass's */
			err_clear();
		pthread_mutex_lock(&q->mu);
		s->ready = 0;
		q->consumed++;
		q->bytes -= s->held;
		if (fr < 0) {
			q->stop = 1;
			rc = -1;
		}
		pthread_cond_broadcast(&q->room);
		pthread_mutex_unlock(&q->mu);
	}
	pthread_mutex_lock(&q->mu);
	q->stop = 1;
	pthread_cond_broadcast(&q->room);
	pthread_mutex_unlock(&q->mu);
	for (size_t t = 0; t < started; t++)
		pthread_join(tid[t], NULL);
	/* a stop leaves slots read and not handed over */
	for (size_t i = 0; i < RING; i++) {
		struct fsck_slot *s = &q->slot[i];
		for (size_t e = 0; e < s->pass.nev; e++)
			free(s->pass.ev[e].msg);
		free(s->pass.ev);
		if (s->prepared)
			req->discard(req->ctx, s->prepared);
	}
	pthread_mutex_destroy(&q->mu);
	pthread_cond_destroy(&q->ready);
	pthread_cond_destroy(&q->room);
	free(q);
	return rc;
}

static int collect_oid(const git_oid *id, void *payload)
{
	struct strbuf *ids = payload;
	sb_add(ids, id, sizeof(*id));
	return 0;
}

int gs_fsck(const char *dir, struct gitmod_fsck *req)
{
	struct fsck_state st = { .req = req };
	struct fsck_pass p = { .content_max = req->content_max };
	struct strbuf ids = STRBUF_INIT;
	int rc = -1;
	if (open_repo(dir) < 0)
		return -1;
	git_libgit2_opts(GIT_OPT_ENABLE_STRICT_HASH_VERIFICATION, 1);
	/* each object is read once: libgit2's object cache only cost time
	 * (filled, then freed with each thread's repository) and memory
	 * (360 MB at 100,000 runs) */
	git_libgit2_opts(GIT_OPT_ENABLE_CACHING, 0);
	if (git_repository_odb(&p.odb, repo) < 0) {
		git_fail("cannot open the object database");
		goto out;
	}
	if (check_runs(&st, dir) < 0)
		goto out;
	/* what no run reached; libgit2 lists an object once per copy (loose
	 * and packed), and each counts */
	if (git_odb_foreach(p.odb, collect_oid, &ids) < 0) {
		git_fail("cannot list objects");
		goto out;
	}
	req->objects = (int64_t)(ids.len / sizeof(git_oid));
	for (size_t off = 0; off < ids.len; off += sizeof(git_oid)) {
		git_oid id;
		git_odb_object *o = NULL;
		memcpy(&id, ids.buf + off, sizeof(id));
		if (oidset_has(&st.seen, &id))
			continue;
		if (read_object(&p, &id, &o) == 0)
			gs_fsck_seen(&p, &id);
		git_odb_object_free(o);
		replay(&st, &p);
	}
	err_clear();
	rc = 0;
out:
	git_libgit2_opts(GIT_OPT_ENABLE_CACHING, 1);
	git_odb_free(p.odb);
	free(p.ev);
	free(st.seen.slot);
	free(st.seen.used);
	sb_release(&ids);
	return rc;
}
