/* remote: the backend table, and the policy every backend shares: an
 * archive is fetched into a temp file and imported only if it is exactly
 * the run the fingerprint named; a run is sent only if another machine
 * could import it; a lock held elsewhere is waited for by polling for the
 * run it protects. A backend (redis.c, http.c) knows none of this. */
#include "remote/remote.h"

#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* How often a waiter looks for the run another machine is computing. */
#define POLL_MS 100

struct remote {
	const struct remote_ops *ops;
	void *be;
	char *url; /* redacted */
};

/* The one place a URL's scheme chooses a backend. */
static const struct {
	const char *prefix;
	const struct remote_ops *ops;
} backends[] = {
	{ "redis://", &remote_redis_ops },
	{ "http://", &remote_http_ops },
	{ "https://", &remote_http_ops },
	{ "cache+http://", &remote_cache_http_ops },
	{ "cache+https://", &remote_cache_http_ops },
};

static const struct remote_ops *backend_for(const char *url)
{
	for (size_t i = 0; i < sizeof(backends) / sizeof(backends[0]); i++)
		if (!strncmp(url, backends[i].prefix, strlen(backends[i].prefix)))
			return backends[i].ops;
	return NULL;
}

int remote_url_known(const char *url)
{
	return backend_for(url) != NULL;
}

void remote_redact(const char *url, struct strbuf *out)
{
	const char *scheme = strstr(url, "://");
	const char *host = scheme ? scheme + 3 : url;
	const char *end = host + strcspn(host, "/");
	const char *at = memchr(host, '@', (size_t)(end - host));
	sb_reset(out);
	if (!at) {
		sb_adds(out, url);
		return;
	}
	const char *colon = memchr(host, ':', (size_t)(at - host));
	sb_add(out, url, (size_t)((colon ? colon + 1 : host) - url));
	sb_adds(out, "***");
	sb_adds(out, at);
}

uint64_t remote_max_bytes(void)
{
	const char *v = getenv("CASHET_REMOTE_MAX_BYTES");
	uint64_t n;
	if (v && *v && parse_size(v, &n) == 0)
		return n;
	err_clear();
	return REMOTE_MAX_BYTES;
}

int remote_open(const char *url, struct remote **out)
{
	const struct remote_ops *ops = backend_for(url);
	struct strbuf shown = STRBUF_INIT;
	void *be = NULL;
	*out = NULL;
	if (!ops && !strncmp(url, "rediss://", 9))
		/* hiredis_ssl came with hiredis 1.0; Debian 12 ships 0.14.1 */
		return err_set("rediss:// (Redis over TLS) is not supported: this hiredis has no TLS; "
			       "reach the server through a TLS tunnel (stunnel) on 127.0.0.1");
	if (!ops)
		return err_set("expected " REMOTE_URL_FORMS);
	if (ops->open(url, &be) < 0)
		return -1;
	remote_redact(url, &shown);
	*out = xcalloc(1, sizeof(**out));
	(*out)->ops = ops;
	(*out)->be = be;
	(*out)->url = sb_detach(&shown);
	return 0;
}

void remote_close(struct remote *rm)
{
	if (!rm)
		return;
	rm->ops->close(rm->be);
	free(rm->url);
	free(rm);
}

const char *remote_url(const struct remote *rm)
{
	return rm->url;
}

int remote_get_fp(struct remote *rm, const struct digest *fp, char hash[OID_HEX])
{
	return rm->ops->get_fp(rm->be, fp, hash);
}

int remote_get_fps(struct remote *rm, const struct digest *fp, struct strvec *hashes)
{
	char hash[OID_HEX];
	if (rm->ops->get_fps)
		return rm->ops->get_fps(rm->be, fp, hashes);
	int found = rm->ops->get_fp(rm->be, fp, hash);
	if (found == 1)
		sv_push(hashes, hash);
	return found < 0 ? -1 : 0;
}

static void tmp_name(struct remote *rm, struct store *st, const char *hash, struct strbuf *path)
{
	/* the cap-<pid>- prefix lets store_sweep_tmp() remove it if we die first */
	sb_reset(path);
	sb_addf(path, "%s/cap-%ld-%s-%s.cashet", store_tmpdir(st), (long)getpid(), rm->ops->name, hash);
}

/* Whether run hash is in st with fingerprint fp: 1 yes, 0 not there, <0
 * there with another fingerprint. */
static int check_local(struct store *st, const struct digest *fp, const char *hash)
{
	struct run_record r = { 0 };
	int found = store_load(st, hash, &r);
	if (found == 1 && !digest_eq(&r.fp, fp))
		found = err_set("run %.12s has another fingerprint than the lookup that named it", hash);
	run_record_free(&r);
	return found;
}

/* One run, the one the lookup named: an archive carrying others would add
 * runs nobody asked for. */
static int check_head(const char *path, const char *hash)
{
	struct strbuf head = STRBUF_INIT;
	char buf[128];
	ssize_t n = -1;
	int fd = open(path, O_RDONLY | O_CLOEXEC), rc = 0;
	sb_addf(&head, "cashet-archive 1\nrun %s\npack ", hash);
	if (fd >= 0) {
		n = read(fd, buf, head.len);
		close(fd);
	}
	if (n != (ssize_t)head.len || memcmp(buf, head.buf, head.len))
		rc = err_set("not an archive of run %.12s alone", hash);
	sb_release(&head);
	return rc;
}

/* Imports the archive at path as run hash with fingerprint fp: 1 done, <0
 * refused, with nothing left imported. */
static int import_run(struct store *st, const struct digest *fp, const char *hash, const char *path)
{
	size_t imported = 0, present = 0;
	if (check_head(path, hash) < 0 || store_import(st, path, 0, &imported, &present) < 0)
		return -1;
	int rc = check_local(st, fp, hash);
	if (rc < 0 && imported) {
		/* not what the fingerprint named: take it back out */
		char msg[512];
		snprintf(msg, sizeof(msg), "%s", err_msg());
		store_remove(st, hash);
		err_set("%s", msg);
	} else if (rc == 0) {
		rc = err_set("run %.12s is not in the store after its import", hash);
	}
	return rc;
}

int remote_fetch(struct remote *rm, struct store *st, const struct digest *fp, const char *hash, int *too_big)
{
	struct strbuf path = STRBUF_INIT;
	int rc = check_local(st, fp, hash);
	*too_big = 0;
	if (rc != 0)
		return rc; /* already here: nothing to fetch */
	err_clear();       /* "not found" is not an error here */
	tmp_name(rm, st, hash, &path);
	int got = rm->ops->get(rm->be, hash, remote_max_bytes(), path.buf);
	if (got < 0)
		rc = -1;
	else if (got == REMOTE_TOO_BIG)
		*too_big = 1;
	else if (got == REMOTE_GOT)
		rc = import_run(st, fp, hash, path.buf);
	unlink(path.buf);
	sb_release(&path);
	return rc;
}

/* 1 (err_set says why) if another machine could not use run r, else 0
 * with *ttl_ms the time it has left (0: no ttl). */
static int unsendable(const struct run_record *r, int64_t *ttl_ms)
{
	for (size_t i = 0; i < r->nfiles; i++)
		if (!strncmp(r->files[i].path, "abs/", 4)) {
			/* import refuses them without --allow-absolute */
			err_set("it has outputs outside the project");
			return 1;
		}
	*ttl_ms = r->expires_ms ? r->expires_ms - now_ms() : 0;
	if (r->expires_ms && *ttl_ms <= 0) {
		err_set("it has expired");
		return 1;
	}
	return 0;
}

int remote_publish(struct remote *rm, struct store *st, const struct run_record *r, uint64_t *size)
{
	struct strvec one = STRVEC_INIT;
	struct strbuf path = STRBUF_INIT;
	int64_t ttl = 0;
	int rc;
	*size = 0;
	/* checked before the export, so a run that cannot go costs nothing */
	if ((rc = rm->ops->can_put ? rm->ops->can_put(rm->be) : 0) != 0 || (rc = unsendable(r, &ttl)) != 0)
		return rc;
	sv_push(&one, r->hash);
	tmp_name(rm, st, r->hash, &path);
	rc = -1;
	if (store_export(st, &one, path.buf, size) < 0)
		goto out;
	uint64_t max = remote_max_bytes();
	if (*size > max) {
		char a[32], b[32];
		snprintf(a, sizeof(a), "%" PRIu64, *size);
		snprintf(b, sizeof(b), "%" PRIu64, max);
		err_set("its archive (%s bytes) is over the limit of %s bytes", a, b);
		rc = 1;
		goto out;
	}
	rc = rm->ops->put(rm->be, r, path.buf, ttl);
out:
	unlink(path.buf);
	sv_release(&one);
	sb_release(&path);
	return rc;
}

static void nap(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

/* 1 if the fingerprint names a run other than seen, 0 if not, <0 error. */
static int new_run(struct remote *rm, const struct digest *fp, const char *seen, char hash[OID_HEX])
{
	int found = remote_get_fp(rm, fp, hash);
	return found == 1 && seen && !strcmp(hash, seen) ? 0 : found;
}

int remote_lock(struct remote *rm, const struct digest *fp, const char *owner, const char *seen, int (*cancelled)(void),
		char hash[OID_HEX])
{
	int64_t until = 0; /* when to stop waiting: the lease seen, plus the margin */
	if (!rm->ops->lock)
		return 0; /* no lock to take: "locked" at once */
	for (;;) {
		int got = rm->ops->lock(rm->be, fp, owner);
		if (got < 0)
			return -1;
		/* Even when we got the lock: the run may have been stored between
		 * our first look and now, by an owner that has just let go. */
		int found = new_run(rm, fp, seen, hash);
		if (found < 0)
			return -1;
		if (found)
			return got && remote_unlock(rm, fp, owner) < 0 ? -1 : 1;
		if (got)
			return 0;
		/* Held elsewhere: wait for the run, or for the lock to go away
		 * (released, or expired because its owner stopped refreshing it),
		 * as long as its lease says it can stay. */
		int64_t lease = 0, now = now_ms();
		int lr = rm->ops->lease ? rm->ops->lease(rm->be, fp, &lease) : 1;
		if (lr < 0)
			return -1;
		if (lr == 0 && lease < 0)
			return err_set("its lock on this command never expires; not waiting for it");
		if (lr == 0 && lease <= REMOTE_LOCK_TTL_MS)
			until = now + lease + REMOTE_LOCK_MARGIN_MS; /* its owner extends it */
		else if (!until)
			until = now + (lr == 0 ? REMOTE_LOCK_TTL_MS : 0) + REMOTE_LOCK_MARGIN_MS;
		if (now >= until)
			return err_set("its lock on this command was %s; not waiting any longer",
				       lr == 0 ? "held past its lease" : "reported held but cannot be seen");
		nap(POLL_MS);
		if (cancelled && cancelled())
			return 2;
	}
}

int remote_lock_refresh(struct remote *rm, const struct digest *fp, const char *owner)
{
	return rm->ops->lock ? rm->ops->heartbeat(rm->be, fp, owner) : 0;
}

int remote_unlock(struct remote *rm, const struct digest *fp, const char *owner)
{
	return rm->ops->lock ? rm->ops->unlock(rm->be, fp, owner) : 0;
}
