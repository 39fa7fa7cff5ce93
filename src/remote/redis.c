/* remote-redis: the Redis backend. Keys: cashet:v1:fp:<fp hex> -> run
 * commit id, cashet:v1:run:<commit id> -> the archive store_export writes
 * for that one run, cashet:v1:lock:<fp hex> -> the owner of a cross-machine
 * claim. Every command has a deadline for its whole reply (not only for
 * each read: a server dripping a byte at a time is cut off too) and a
 * bound on the reply's size, checked as it arrives; what is checked and
 * when a lock is waited for is remote.c's business, not this file's. */
#include "remote/remote.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#define KEY_PREFIX "cashet:v1:"
/* silence: no byte for this long is a timeout */
#define TIMEOUT_MS 500
/* a whole command, request and reply; an archive gets 1 s more per MiB */
#define DEADLINE_MS 2000
/* the largest reply of a command that is not an archive */
#define SMALL_REPLY_MAX 4096

struct redis {
	redisContext *c;
	int broken; /* a reply was cut off: the connection is out of step */
};

/* Only the owner may extend or delete a lock: a lock that expired and was
 * taken by someone else must not be touched by its previous owner. */
static const char lua_refresh[] =
	"if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end";
static const char lua_unlock[] =
	"if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end";

/* The context's error in words; a timeout shows up as EAGAIN. */
static int ctx_error(const redisContext *c)
{
	if (!c)
		return err_set("out of memory");
	if (c->err == REDIS_ERR_IO && strstr(c->errstr, "temporarily unavailable"))
		return err_set("timed out after %d ms", TIMEOUT_MS);
	if (c->err == REDIS_ERR_EOF)
		return err_set("connection closed by the server");
	return err_set("%s", c->err ? c->errstr : "no reply");
}

/* Sends a command and reads its reply within ms, refusing a reply over
 * max bytes before it is read whole. NULL (error set) on a connection
 * error, a timeout or an error reply. */
static redisReply *vcommand(struct redis *rm, size_t max, int64_t ms, const char *fmt, va_list ap)
{
	redisContext *c = rm->c;
	void *reply = NULL;
	int64_t deadline = now_ms() + ms;
	int done = 0;
	if (rm->broken) {
		err_set("the connection was cut off by an earlier timeout");
		return NULL;
	}
	if (redisvAppendCommand(c, fmt, ap) != REDIS_OK) {
		ctx_error(c);
		return NULL;
	}
	/* writes and reads block for at most TIMEOUT_MS each (the socket's
	 * timeouts); the deadline bounds them all together */
	while (!done) {
		if (redisBufferWrite(c, &done) != REDIS_OK)
			goto io_error;
		if (!done && now_ms() >= deadline)
			goto too_slow;
	}
	for (;;) {
		if (redisGetReplyFromReader(c, &reply) != REDIS_OK)
			goto io_error;
		if (reply)
			break;
		if (c->reader->len - c->reader->pos > max + 64) {
			err_set("a reply of more than %zu bytes", max);
			rm->broken = 1;
			return NULL;
		}
		int64_t left = deadline - now_ms();
		if (left <= 0)
			goto too_slow;
		struct pollfd pf = { .fd = c->fd, .events = POLLIN };
		int pr = poll(&pf, 1, (int)(left < TIMEOUT_MS ? left : TIMEOUT_MS));
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr == 0 && left > TIMEOUT_MS) {
			err_set("timed out after %d ms", TIMEOUT_MS);
			rm->broken = 1;
			return NULL;
		}
		if (pr <= 0)
			goto too_slow;
		if (redisBufferRead(c) != REDIS_OK)
			goto io_error;
	}
	redisReply *rep = reply;
	if (rep->type == REDIS_REPLY_ERROR) {
		err_set("%s", rep->str);
		freeReplyObject(rep);
		return NULL;
	}
	return rep;
io_error:
	ctx_error(c);
	rm->broken = 1;
	return NULL;
too_slow:
	err_set("no complete reply within %lld ms", (long long)ms);
	rm->broken = 1;
	return NULL;
}

/* A command with a small reply, within DEADLINE_MS. */
static redisReply *command(struct redis *rm, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	redisReply *rep = vcommand(rm, SMALL_REPLY_MAX, DEADLINE_MS, fmt, ap);
	va_end(ap);
	return rep;
}

/* A command moving an archive of up to size bytes, within its deadline. */
static redisReply *transfer(struct redis *rm, uint64_t size, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	redisReply *rep =
		vcommand(rm, (size_t)size + SMALL_REPLY_MAX, DEADLINE_MS + (int64_t)(size >> 20) * 1000, fmt, ap);
	va_end(ap);
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

/* redis://[[user]:password@]host[:port][/db], host may be [v6]. Without a
 * password in it, CASHET_REDIS_PASSWORD (and CASHET_REDIS_USER, for an
 * ACL user) are used. */
static int parse_url(const char *url, struct url_parts *u)
{
	const char *p = url, *at, *end;
	u->port = 6379;
	u->db = 0;
	p += strlen("redis://"); /* the backend table sent us this URL for its scheme */
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

static void redis_close(void *be)
{
	struct redis *rm = be;
	if (!rm)
		return;
	if (rm->c)
		redisFree(rm->c);
	free(rm);
}

static int redis_open(const char *url, void **be)
{
	struct url_parts u = { STRBUF_INIT, STRBUF_INIT, STRBUF_INIT, 0, 0 };
	struct timeval tv = { TIMEOUT_MS / 1000, (TIMEOUT_MS % 1000) * 1000 };
	struct redis *rm = xcalloc(1, sizeof(*rm));
	redisReply *rep = NULL;
	int rc = -1;
	*be = NULL;
	if (parse_url(url, &u) < 0)
		goto out;
	if (!u.pass.len) {
		/* the password from the environment keeps it out of the
		 * store's config, the process list and every message */
		const char *user = getenv("CASHET_REDIS_USER"), *pass = getenv("CASHET_REDIS_PASSWORD");
		if (pass && *pass) {
			sb_adds(&u.pass, pass);
			if (user && *user && !u.user.len)
				sb_adds(&u.user, user);
		}
	}
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
		rep = u.user.len ? command(rm, "AUTH %s %s", u.user.buf, u.pass.buf)
				 : command(rm, "AUTH %s", u.pass.buf);
		if (!rep)
			goto out;
		freeReplyObject(rep);
	}
	if (u.db) {
		if (!(rep = command(rm, "SELECT %d", u.db)))
			goto out;
		freeReplyObject(rep);
	}
	*be = rm;
	rm = NULL;
	rc = 0;
out:
	redis_close(rm);
	sb_release(&u.host);
	sb_release(&u.user);
	sb_release(&u.pass);
	return rc;
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

static int redis_get_fp(void *be, const struct digest *fp, char hash[OID_HEX])
{
	struct strbuf key = STRBUF_INIT;
	redisReply *rep;
	int rc = -1;
	fp_key(fp, "fp", &key);
	if (!(rep = command(be, "GET %s", key.buf)))
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

static int redis_get(void *be, const char *hash, uint64_t max, const char *path)
{
	struct strbuf key = STRBUF_INIT;
	redisReply *rep = NULL;
	int rc = -1;
	sb_addf(&key, KEY_PREFIX "run:%s", hash);
	/* the length first: an archive over the limit is not transferred */
	if (!(rep = command(be, "STRLEN %s", key.buf)))
		goto out;
	long long len = rep->type == REDIS_REPLY_INTEGER ? rep->integer : 0;
	freeReplyObject(rep);
	rep = NULL;
	if (len <= 0) {
		rc = REMOTE_MISSING;
		goto out;
	}
	if ((uint64_t)len > max) {
		rc = REMOTE_TOO_BIG;
		goto out;
	}
	/* the reply is refused past max: the length may have changed, or lied */
	if (!(rep = transfer(be, max, "GET %s", key.buf)))
		goto out;
	if (rep->type == REDIS_REPLY_NIL) {
		rc = REMOTE_MISSING; /* removed meanwhile */
		goto out;
	}
	if (rep->type != REDIS_REPLY_STRING) {
		err_set("%s does not hold an archive", key.buf);
		goto out;
	}
	if (write_file_atomic(path, rep->str, rep->len, 0600) < 0)
		goto out;
	rc = REMOTE_GOT;
out:
	if (rep)
		freeReplyObject(rep);
	sb_release(&key);
	return rc;
}

static int redis_put(void *be, const struct run_record *r, const char *path, int64_t ttl)
{
	struct strbuf data = STRBUF_INIT, key = STRBUF_INIT;
	redisReply *rep = NULL;
	int rc = -1;
	if (read_file_sb(path, &data) < 0)
		goto out;
	/* A run with a ttl expires from Redis with it. */
	sb_addf(&key, KEY_PREFIX "run:%s", r->hash);
	rep = ttl > 0 ? transfer(be, data.len, "SET %s %b PX %lld", key.buf, data.buf, data.len, (long long)ttl)
		      : transfer(be, data.len, "SET %s %b", key.buf, data.buf, data.len);
	if (!rep)
		goto out;
	freeReplyObject(rep);
	fp_key(&r->fp, "fp", &key);
	rep = ttl > 0 ? command(be, "SET %s %s PX %lld", key.buf, r->hash, (long long)ttl)
		      : command(be, "SET %s %s", key.buf, r->hash);
	if (!rep)
		goto out;
	freeReplyObject(rep);
	rc = 0;
out:
	sb_release(&data);
	sb_release(&key);
	return rc;
}

static int redis_lock(void *be, const struct digest *fp, const char *owner)
{
	struct strbuf key = STRBUF_INIT;
	redisReply *rep;
	int rc = -1;
	fp_key(fp, "lock", &key);
	/* it expires by itself if its owner stops refreshing it */
	if ((rep = command(be, "SET %s %s NX PX %d", key.buf, owner, REMOTE_LOCK_TTL_MS))) {
		rc = rep->type == REDIS_REPLY_STATUS; /* OK; nil if held */
		freeReplyObject(rep);
	}
	sb_release(&key);
	return rc;
}

static int redis_lease(void *be, const struct digest *fp, int64_t *ms)
{
	struct strbuf key = STRBUF_INIT;
	redisReply *rep;
	int rc = -1;
	fp_key(fp, "lock", &key);
	if ((rep = command(be, "PTTL %s", key.buf))) {
		if (rep->type != REDIS_REPLY_INTEGER)
			err_set("PTTL %s: not an integer", key.buf);
		else if (rep->integer == -2)
			rc = 1;
		else
			rc = 0, *ms = rep->integer < 0 ? -1 : rep->integer;
		freeReplyObject(rep);
	}
	sb_release(&key);
	return rc;
}

static int lua(void *be, const char *script, const struct digest *fp, const char *owner, const char *arg)
{
	struct strbuf key = STRBUF_INIT;
	redisReply *rep;
	fp_key(fp, "lock", &key);
	rep = arg ? command(be, "EVAL %s 1 %s %s %s", script, key.buf, owner, arg)
		  : command(be, "EVAL %s 1 %s %s", script, key.buf, owner);
	sb_release(&key);
	if (!rep)
		return -1;
	freeReplyObject(rep);
	return 0;
}

static int redis_heartbeat(void *be, const struct digest *fp, const char *owner)
{
	char ttl[32];
	snprintf(ttl, sizeof(ttl), "%d", REMOTE_LOCK_TTL_MS);
	return lua(be, lua_refresh, fp, owner, ttl);
}

static int redis_unlock(void *be, const struct digest *fp, const char *owner)
{
	return lua(be, lua_unlock, fp, owner, NULL);
}

const struct remote_ops remote_redis_ops = {
	.name = "redis",
	.open = redis_open,
	.close = redis_close,
	.get_fp = redis_get_fp,
	.get = redis_get,
	.put = redis_put,
	.lock = redis_lock,
	.lease = redis_lease,
	.heartbeat = redis_heartbeat,
	.unlock = redis_unlock,
};
