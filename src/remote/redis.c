/* remote-redis: the Redis remote (see remote.h for the key layout). A run
 * travels as the archive store_export writes for it alone, so the receiving
 * store checks it exactly as `cashet import` would (pack checksum, tree
 * layout, paths), and we check in addition that it is the run the
 * fingerprint key named and that it has that fingerprint. */
#include "remote/remote.h"
#include "remote/http.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define KEY_PREFIX "cashet:v1:"
/* How often a waiter looks for the run another machine is computing. */
#define POLL_MS 100

struct remote {
	redisContext *c;
	char *url;
	struct http_remote *http; /* an http(s):// remote: remote-http.c does the work */
};

/* Only the owner may extend or delete a lock: a lock that expired and was
 * taken by someone else must not be touched by its previous owner. */
static const char lua_refresh[] =
	"if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end";
static const char lua_unlock[] =
	"if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end";

const char *remote_url(const struct remote *rm)
{
	return rm->url;
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

/* The context's error in words; a timeout shows up as EAGAIN. */
static int ctx_error(const redisContext *c)
{
	if (!c)
		return err_set("out of memory");
	if (c->err == REDIS_ERR_IO && strstr(c->errstr, "temporarily unavailable"))
		return err_set("timed out after %d ms", REMOTE_TIMEOUT_MS);
	if (c->err == REDIS_ERR_EOF)
		return err_set("connection closed by the server");
	return err_set("%s", c->err ? c->errstr : "no reply");
}

/* Runs a command; NULL (error set) on a connection error or an error reply. */
static redisReply *command(struct remote *rm, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	redisReply *rep = redisvCommand(rm->c, fmt, ap);
	va_end(ap);
	if (!rep) {
		ctx_error(rm->c);
		return NULL;
	}
	if (rep->type == REDIS_REPLY_ERROR) {
		err_set("%s", rep->str);
		freeReplyObject(rep);
		return NULL;
	}
	return rep;
}

static void fp_key(const struct digest *fp, const char *kind, struct strbuf *key)
{
	char hx[DIGEST_HEX];
	digest_hex(fp, hx);
	sb_reset(key);
	sb_addf(key, KEY_PREFIX "%s:%s", kind, hx);
}

struct url_parts {
	struct strbuf host, user, pass;
	int port, db;
};

/* redis://[[user]:password@]host[:port][/db], host may be [v6]. */
static int parse_url(const char *url, struct url_parts *u)
{
	const char *p = url, *at, *end;
	u->port = 6379;
	u->db = 0;
	if (strncmp(p, "redis://", 8))
		return err_set("expected a redis://host[:port][/db] or http(s)://host[:port] URL");
	p += 8;
	end = p + strcspn(p, "/");
	at = memchr(p, '@', (size_t)(end - p));
	if (at) {
		const char *colon = memchr(p, ':', (size_t)(at - p));
		if (colon) {
			sb_add(&u->user, p, (size_t)(colon - p));
			sb_add(&u->pass, colon + 1, (size_t)(at - colon - 1));
		} else {
			sb_add(&u->pass, p, (size_t)(at - p));
		}
		p = at + 1;
	}
	const char *port = NULL;
	if (*p == '[') {
		const char *close = memchr(p, ']', (size_t)(end - p));
		if (!close)
			return err_set("unterminated [ in the host");
		sb_add(&u->host, p + 1, (size_t)(close - p - 1));
		if (close + 1 < end && close[1] == ':')
			port = close + 2;
		else if (close + 1 != end)
			return err_set("unexpected text after the host");
	} else {
		const char *colon = memchr(p, ':', (size_t)(end - p));
		sb_add(&u->host, p, (size_t)((colon ? colon : end) - p));
		if (colon)
			port = colon + 1;
	}
	if (!u->host.len)
		return err_set("no host");
	if (port) {
		char *e;
		long n = strtol(port, &e, 10);
		if (e != end || port == end || n < 1 || n > 65535)
			return err_set("invalid port");
		u->port = (int)n;
	}
	if (*end == '/' && end[1]) {
		char *e;
		long n = strtol(end + 1, &e, 10);
		if (*e || n < 0 || n > 100000)
			return err_set("invalid database number '%s'", end + 1);
		u->db = (int)n;
	}
	return 0;
}

int remote_open(const char *url, struct remote **out)
{
	struct url_parts u = { STRBUF_INIT, STRBUF_INIT, STRBUF_INIT, 0, 0 };
	struct timeval tv = { REMOTE_TIMEOUT_MS / 1000, (REMOTE_TIMEOUT_MS % 1000) * 1000 };
	struct remote *rm = xcalloc(1, sizeof(*rm));
	redisReply *rep = NULL;
	int rc = -1;
	struct strbuf shown = STRBUF_INIT;
	*out = NULL;
	remote_redact(url, &shown);
	rm->url = sb_detach(&shown);
	if (http_remote_is_url(url)) {
		if (http_remote_open(url, &rm->http) < 0)
			goto out;
		*out = rm;
		rm = NULL;
		rc = 0;
		goto out;
	}
	if (parse_url(url, &u) < 0)
		goto out;
	rm->c = redisConnectWithTimeout(u.host.buf, u.port, tv);
	if (!rm->c || rm->c->err) {
		ctx_error(rm->c);
		goto out;
	}
	if (redisSetTimeout(rm->c, tv) != REDIS_OK) {
		ctx_error(rm->c);
		goto out;
	}
	if (u.pass.len) {
		rep = u.user.len ? command(rm, "AUTH %s %s", u.user.buf, u.pass.buf) : command(rm, "AUTH %s", u.pass.buf);
		if (!rep)
			goto out;
		freeReplyObject(rep);
	}
	if (u.db) {
		if (!(rep = command(rm, "SELECT %d", u.db)))
			goto out;
		freeReplyObject(rep);
	}
	*out = rm;
	rm = NULL;
	rc = 0;
out:
	remote_close(rm);
	sb_release(&u.host);
	sb_release(&u.user);
	sb_release(&u.pass);
	return rc;
}

void remote_close(struct remote *rm)
{
	if (!rm)
		return;
	if (rm->c)
		redisFree(rm->c);
	http_remote_close(rm->http);
	free(rm->url);
	free(rm);
}

static int is_oid(const char *s, size_t len)
{
	if (len != OID_HEX - 1)
		return 0;
	for (size_t i = 0; i < len; i++)
		if (!strchr("0123456789abcdef", s[i]))
			return 0;
	return 1;
}

int remote_get_fp(struct remote *rm, const struct digest *fp, char hash[OID_HEX])
{
	struct strbuf key = STRBUF_INIT;
	redisReply *rep;
	int rc = -1;
	if (rm->http)
		return http_remote_get_fp(rm->http, fp, hash);
	fp_key(fp, "fp", &key);
	if (!(rep = command(rm, "GET %s", key.buf)))
		goto out;
	if (rep->type == REDIS_REPLY_NIL) {
		rc = 0;
	} else if (rep->type == REDIS_REPLY_STRING && is_oid(rep->str, rep->len)) {
		memcpy(hash, rep->str, OID_HEX - 1);
		hash[OID_HEX - 1] = '\0';
		rc = 1;
	} else {
		err_set("%s does not hold a run id", key.buf);
	}
	freeReplyObject(rep);
out:
	sb_release(&key);
	return rc;
}

int remote_fetch(struct remote *rm, struct store *st, const struct digest *fp, const char *hash, int *too_big)
{
	struct strbuf key = STRBUF_INIT, path = STRBUF_INIT;
	redisReply *rep = NULL;
	int rc = -1;
	if (rm->http)
		return http_remote_fetch(rm->http, st, fp, hash, too_big);
	*too_big = 0;
	int local = remote_check_local(st, fp, hash);
	if (local != 0) {
		rc = local; /* already here: nothing to fetch */
		goto out;
	}
	err_clear(); /* "not found" is not an error here */
	sb_addf(&key, KEY_PREFIX "run:%s", hash);
	if (!(rep = command(rm, "STRLEN %s", key.buf)))
		goto out;
	long long len = rep->type == REDIS_REPLY_INTEGER ? rep->integer : 0;
	freeReplyObject(rep);
	rep = NULL;
	if (len <= 0) {
		rc = 0;
		goto out;
	}
	if ((uint64_t)len > remote_max_bytes()) {
		*too_big = 1;
		rc = 0;
		goto out;
	}
	if (!(rep = command(rm, "GET %s", key.buf)))
		goto out;
	if (rep->type == REDIS_REPLY_NIL) {
		rc = 0; /* removed meanwhile */
		goto out;
	}
	if (rep->type != REDIS_REPLY_STRING) {
		err_set("%s does not hold an archive", key.buf);
		goto out;
	}
	remote_tmp_name(st, "redis", hash, &path);
	if (write_file_atomic(path.buf, rep->str, rep->len, 0600) < 0)
		goto out;
	freeReplyObject(rep);
	rep = NULL;
	rc = remote_import_run(st, fp, hash, path.buf);
out:
	if (rep)
		freeReplyObject(rep);
	if (path.len)
		unlink(path.buf);
	sb_release(&key);
	sb_release(&path);
	return rc;
}

int remote_publish(struct remote *rm, struct store *st, const struct run_record *r, uint64_t *size)
{
	struct strvec one = STRVEC_INIT;
	struct strbuf path = STRBUF_INIT, data = STRBUF_INIT, key = STRBUF_INIT;
	redisReply *rep = NULL;
	int rc = -1;
	int64_t ttl = 0;
	if (rm->http)
		return http_remote_publish(rm->http, st, r, size);
	*size = 0;
	for (size_t i = 0; i < r->nfiles; i++) {
		if (!strncmp(r->files[i].path, "abs/", 4)) {
			/* import refuses them without --allow-absolute */
			err_set("it has outputs outside the project");
			rc = 1;
			goto out;
		}
	}
	if (r->expires_ms) {
		ttl = r->expires_ms - now_ms();
		if (ttl <= 0) {
			err_set("it has expired");
			rc = 1;
			goto out;
		}
	}
	sv_push(&one, r->hash);
	remote_tmp_name(st, "redis", r->hash, &path);
	if (store_export(st, &one, path.buf, size) < 0) {
		sb_reset(&path);
		goto out;
	}
	uint64_t max = remote_max_bytes();
	if (*size > max) {
		char a[32], b[32];
		snprintf(a, sizeof(a), "%" PRIu64, *size);
		snprintf(b, sizeof(b), "%" PRIu64, max);
		err_set("its archive (%s bytes) is over the limit of %s bytes", a, b);
		rc = 1;
		goto out;
	}
	if (read_file_sb(path.buf, &data) < 0)
		goto out;
	/* The archive first, then the key that names it: a reader that sees
	 * the fingerprint key finds the archive. A run with a ttl expires
	 * from Redis with it. */
	sb_addf(&key, KEY_PREFIX "run:%s", r->hash);
	rep = ttl ? command(rm, "SET %s %b PX %lld", key.buf, data.buf, data.len, (long long)ttl)
		  : command(rm, "SET %s %b", key.buf, data.buf, data.len);
	if (!rep)
		goto out;
	freeReplyObject(rep);
	fp_key(&r->fp, "fp", &key);
	rep = ttl ? command(rm, "SET %s %s PX %lld", key.buf, r->hash, (long long)ttl)
		  : command(rm, "SET %s %s", key.buf, r->hash);
	if (!rep)
		goto out;
	freeReplyObject(rep);
	rc = 0;
out:
	if (path.len)
		unlink(path.buf);
	sv_release(&one);
	sb_release(&path);
	sb_release(&data);
	sb_release(&key);
	return rc;
}

static void nap(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

/* 1 if the fingerprint key names a run other than seen, 0 if not, <0 error. */
static int new_run(struct remote *rm, const struct digest *fp, const char *seen, char hash[OID_HEX])
{
	int found = remote_get_fp(rm, fp, hash);
	return found == 1 && seen && !strcmp(hash, seen) ? 0 : found;
}

int remote_lock(struct remote *rm, const struct digest *fp, const char *owner, const char *seen,
		int (*cancelled)(void), char hash[OID_HEX])
{
	struct strbuf key = STRBUF_INIT;
	redisReply *rep;
	int rc = -1;
	if (rm->http)
		return 0; /* no lock over HTTP: "locked" at once */
	fp_key(fp, "lock", &key);
	for (;;) {
		if (!(rep = command(rm, "SET %s %s NX PX %d", key.buf, owner, REMOTE_LOCK_TTL_MS)))
			goto out;
		int got = rep->type == REDIS_REPLY_STATUS;
		freeReplyObject(rep);
		/* Even when we got the lock: the run may have been stored between
		 * our first look and now, by an owner that has just let go. */
		int found = new_run(rm, fp, seen, hash);
		if (found < 0)
			goto out;
		if (found) {
			if (got && remote_unlock(rm, fp, owner) < 0)
				goto out;
			rc = 1;
			goto out;
		}
		if (got) {
			rc = 0;
			goto out;
		}
		/* Held elsewhere: wait for the run or for the lock to go away
		 * (released, or expired because its owner stopped refreshing it). */
		for (;;) {
			nap(POLL_MS);
			if (cancelled && cancelled()) {
				rc = 2;
				goto out;
			}
			if ((found = new_run(rm, fp, seen, hash)) != 0) {
				rc = found < 0 ? -1 : 1;
				goto out;
			}
			if (!(rep = command(rm, "EXISTS %s", key.buf)))
				goto out;
			int held = rep->type == REDIS_REPLY_INTEGER && rep->integer > 0;
			freeReplyObject(rep);
			if (!held)
				break;
		}
	}
out:
	sb_release(&key);
	return rc;
}

static int lua(struct remote *rm, const char *script, const struct digest *fp, const char *owner, const char *arg)
{
	struct strbuf key = STRBUF_INIT;
	redisReply *rep;
	if (rm->http)
		return 0; /* no lock to refresh or delete */
	fp_key(fp, "lock", &key);
	rep = arg ? command(rm, "EVAL %s 1 %s %s %s", script, key.buf, owner, arg)
		  : command(rm, "EVAL %s 1 %s %s", script, key.buf, owner);
	sb_release(&key);
	if (!rep)
		return -1;
	freeReplyObject(rep);
	return 0;
}

int remote_lock_refresh(struct remote *rm, const struct digest *fp, const char *owner)
{
	char ttl[32];
	snprintf(ttl, sizeof(ttl), "%d", REMOTE_LOCK_TTL_MS);
	return lua(rm, lua_refresh, fp, owner, ttl);
}

int remote_unlock(struct remote *rm, const struct digest *fp, const char *owner)
{
	return lua(rm, lua_unlock, fp, owner, NULL);
}
