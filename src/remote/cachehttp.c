/* remote-cache-http: the HTTP cache protocol teams already run for Bazel
 * and ccache (bazel-remote, nginx with WebDAV, Artifactory, object storage
 * behind a proxy): GET, PUT and HEAD of content-addressed objects under
 * <prefix>/cas/<sha256> and of action entries under <prefix>/ac/<sha256>.
 * URLs cache+http(s)://host[:port][/prefix].
 *
 * A run's archive is a CAS object, named by the SHA-256 of its bytes and
 * checked against it when read. A fingerprint's action entry, under the
 * SHA-256 of "cashet-ac-v1:<fingerprint>", is a short text manifest
 * listing the newest runs stored for that declared key with their
 * archive's digest and size: the second level of the key (observed
 * inputs) picks among them locally, as it does among local runs. The AC
 * entry is not content-addressed, so it is parsed strictly and every run
 * it names is checked on import (one run, this fingerprint, the trust
 * policy). No lock: the protocol has none. */
#include "remote/curl/http.h"
#include "remote/remote.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <nettle/sha2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* To connect, and for a whole small request (an AC entry, a HEAD): a
 * server that is down costs one warning and at most this, plus loading
 * libcurl (some 20 ms): under 500 ms per command in all. */
#define TIMEOUT_MS 300
#define AC_MAGIC "cashet-ac 1\n"
#define AC_MAX 4096
/* Runs kept per fingerprint in its AC entry, newest first. */
#define AC_RUNS 4
#define SHA_HEX (2 * SHA256_DIGEST_SIZE + 1)

struct ac_entry {
	char run[OID_HEX];
	char sha[SHA_HEX];
	uint64_t size;
};

struct cache_remote {
	const struct httpmod *m;
	char *base;    /* http(s)://host[:port][/prefix], no trailing slash */
	char *token;   /* bearer token, or NULL */
	char *userpwd; /* basic auth, or NULL */
	/* what the last AC entry read said, so get() knows each run's digest */
	struct ac_entry ac[AC_RUNS];
	size_t nac;
};

static int cache_open(const char *url, void **out)
{
	const char *token = getenv("CASHET_REMOTE_TOKEN");
	const char *user = getenv("CASHET_REMOTE_USER"), *pass = getenv("CASHET_REMOTE_PASSWORD");
	struct cache_remote *cr;
	char *base;
	*out = NULL;
	if (remote_http_base(url + strlen("cache+"), &base) < 0)
		return -1;
	cr = xcalloc(1, sizeof(*cr));
	cr->m = remote_httpmod();
	/* user:password@ in the URL is libcurl's basic auth already */
	cr->base = base;
	cr->token = token && *token ? xstrdup(token) : NULL;
	if (user && *user) {
		struct strbuf up = STRBUF_INIT;
		sb_addf(&up, "%s:%s", user, pass ? pass : "");
		cr->userpwd = sb_detach(&up);
	}
	*out = cr;
	return 0;
}

static void cache_close(void *be)
{
	struct cache_remote *cr = be;
	if (!cr)
		return;
	free(cr->base);
	free(cr->token);
	free(cr->userpwd);
	free(cr);
}

static struct http_opts opts(const struct cache_remote *cr, long total_ms, uint64_t max)
{
	struct http_opts o = { .token = cr->token,
			       .userpwd = cr->userpwd,
			       .netrc = 1,
			       .timeout_ms = TIMEOUT_MS,
			       .total_ms = total_ms,
			       .max_bytes = max };
	return o;
}

static void hex(const uint8_t *b, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", b[i]);
}

static void ac_key(const struct digest *fp, char key[SHA_HEX])
{
	struct sha256_ctx c;
	uint8_t d[SHA256_DIGEST_SIZE];
	char hx[DIGEST_HEX];
	digest_hex(fp, hx);
	sha256_init(&c);
	sha256_update(&c, strlen("cashet-ac-v1:"), (const uint8_t *)"cashet-ac-v1:");
	sha256_update(&c, strlen(hx), (const uint8_t *)hx);
	sha256_digest(&c, sizeof(d), d);
	hex(d, sizeof(d), key);
}

/* SHA-256 of the file at path, and its size. */
static int file_sha256(const char *path, char out[SHA_HEX], uint64_t *size)
{
	struct sha256_ctx c;
	uint8_t d[SHA256_DIGEST_SIZE], buf[65536];
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return err_sys("cannot open %s", path);
	sha256_init(&c);
	*size = 0;
	while ((n = read(fd, buf, sizeof(buf))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			close(fd);
			return err_sys("cannot read %s", path);
		}
		sha256_update(&c, (size_t)n, buf);
		*size += (uint64_t)n;
	}
	close(fd);
	sha256_digest(&c, sizeof(d), d);
	hex(d, sizeof(d), out);
	return 0;
}

static int all_hex(const char *s, size_t n)
{
	return strlen(s) == n && strspn(s, "0123456789abcdef") == n;
}

/* Parses an AC entry: "cashet-ac 1", then "run <commit> <sha256> <size>"
 * lines, at most AC_RUNS. Anything else is a damaged entry. */
static int parse_ac(const char *text, struct ac_entry *ac, size_t *n)
{
	*n = 0;
	if (strncmp(text, AC_MAGIC, strlen(AC_MAGIC)))
		return err_setc(E_CORRUPT, "its action entry is not a cashet-ac 1 entry");
	for (const char *p = text + strlen(AC_MAGIC); *p;) {
		const char *nl = strchr(p, '\n');
		char run[OID_HEX + 1], sha[SHA_HEX + 1];
		uint64_t size;
		int used = 0;
		if (!nl || *n == AC_RUNS || sscanf(p, "run %41s %65s %" SCNu64 "%n", run, sha, &size, &used) != 3 ||
		    p + used != nl || !all_hex(run, OID_HEX - 1) || !all_hex(sha, SHA_HEX - 1))
			return err_setc(E_CORRUPT, "its action entry is damaged");
		memcpy(ac[*n].run, run, OID_HEX);
		memcpy(ac[*n].sha, sha, SHA_HEX);
		ac[*n].size = size;
		(*n)++;
		p = nl + 1;
	}
	return 0;
}

/* Reads the AC entry of fp into cr->ac: 0 (none there: nac 0), <0 error. */
static int read_ac(struct cache_remote *cr, const struct digest *fp)
{
	struct http_opts o = opts(cr, TIMEOUT_MS, AC_MAX);
	struct strbuf url = STRBUF_INIT, body = STRBUF_INIT;
	char key[SHA_HEX];
	long status;
	int rc = -1, g;
	cr->nac = 0;
	ac_key(fp, key);
	sb_addf(&url, "%s/ac/%s", cr->base, key);
	g = cr->m->get(url.buf, &o, NULL, &body, &status);
	if (g < 0)
		goto out;
	if (g == 1) {
		err_set("GET /ac/%.12s: over %d bytes", key, AC_MAX);
		goto out;
	}
	if (status == 404) {
		rc = 0;
		goto out;
	}
	if (status != 200) {
		err_set("GET /ac/%.12s: HTTP %ld", key, status);
		goto out;
	}
	rc = parse_ac(sb_str(&body), cr->ac, &cr->nac);
out:
	sb_release(&url);
	sb_release(&body);
	return rc;
}

static int cache_get_fps(void *be, const struct digest *fp, struct strvec *hashes)
{
	struct cache_remote *cr = be;
	if (read_ac(cr, fp) < 0)
		return -1;
	for (size_t i = 0; i < cr->nac; i++)
		sv_push(hashes, cr->ac[i].run);
	return 0;
}

static int cache_get_fp(void *be, const struct digest *fp, char hash[OID_HEX])
{
	struct cache_remote *cr = be;
	if (read_ac(cr, fp) < 0)
		return -1;
	if (!cr->nac)
		return 0;
	memcpy(hash, cr->ac[0].run, OID_HEX);
	return 1;
}

static int cache_get(void *be, const char *hash, uint64_t max, const char *path)
{
	struct cache_remote *cr = be;
	struct http_opts o = opts(cr, 0, max);
	struct strbuf url = STRBUF_INIT, body = STRBUF_INIT;
	const struct ac_entry *e = NULL;
	char got[SHA_HEX];
	uint64_t size;
	long status;
	int rc = -1, g;
	for (size_t i = 0; i < cr->nac && !e; i++)
		if (!strcmp(cr->ac[i].run, hash))
			e = &cr->ac[i];
	if (!e)
		return REMOTE_MISSING; /* not named by the entry read last */
	if (e->size > max)
		return REMOTE_TOO_BIG;
	sb_addf(&url, "%s/cas/%s", cr->base, e->sha);
	g = cr->m->get(url.buf, &o, path, &body, &status);
	if (g < 0)
		goto out;
	if (g == 1)
		rc = REMOTE_TOO_BIG;
	else if (status == 404)
		rc = REMOTE_MISSING; /* evicted meanwhile */
	else if (status != 200)
		err_set("GET /cas/%.12s: HTTP %ld", e->sha, status);
	else if (file_sha256(path, got, &size) < 0)
		;
	else if (strcmp(got, e->sha))
		/* a content-addressed object is its digest, or nothing */
		err_setc(E_CORRUPT, "object cas/%.12s does not match its digest (it is %.12s)", e->sha, got);
	else
		rc = REMOTE_GOT;
out:
	sb_release(&url);
	sb_release(&body);
	return rc;
}

/* PUT of a file to <base>/<what>: 0 or <0. */
static int put_file(struct cache_remote *cr, const char *what, const char *path)
{
	struct http_opts o = opts(cr, 0, 0);
	struct strbuf url = STRBUF_INIT, body = STRBUF_INIT;
	long status;
	int rc = -1;
	sb_addf(&url, "%s/%s", cr->base, what);
	if (cr->m->put(url.buf, &o, path, &body, &status) < 0)
		goto out;
	if (status / 100 != 2) {
		err_set("PUT /%.16s: HTTP %ld", what, status);
		goto out;
	}
	rc = 0;
out:
	sb_release(&url);
	sb_release(&body);
	return rc;
}

/* The archive first, then the AC entry that names it (a reader that sees
 * the entry finds the object), this run first, then the newest others. */
static int cache_put(void *be, const struct run_record *r, const char *path, int64_t ttl_ms)
{
	struct cache_remote *cr = be;
	struct http_opts o = opts(cr, TIMEOUT_MS, 0);
	struct strbuf url = STRBUF_INIT, what = STRBUF_INIT, text = STRBUF_INIT, acpath = STRBUF_INIT;
	char sha[SHA_HEX], key[SHA_HEX];
	uint64_t size;
	long status;
	int rc = -1;
	(void)ttl_ms; /* the server's eviction decides; the archive carries the expiry */
	if (file_sha256(path, sha, &size) < 0)
		goto out;
	sb_addf(&url, "%s/cas/%s", cr->base, sha);
	if (cr->m->head(url.buf, &o, &status) < 0)
		goto out;
	sb_addf(&what, "cas/%s", sha);
	if (status != 200 && put_file(cr, what.buf, path) < 0)
		goto out;
	if (read_ac(cr, &r->fp) < 0) {
		if (err_code() != E_CORRUPT)
			goto out;
		err_clear(); /* a damaged entry is replaced */
		cr->nac = 0;
	}
	sb_adds(&text, AC_MAGIC);
	sb_addf(&text, "run %s %s %" PRIu64 "\n", r->hash, sha, size);
	for (size_t i = 0, kept = 1; i < cr->nac && kept < AC_RUNS; i++)
		if (strcmp(cr->ac[i].run, r->hash)) {
			sb_addf(&text, "run %s %s %" PRIu64 "\n", cr->ac[i].run, cr->ac[i].sha, cr->ac[i].size);
			kept++;
		}
	sb_addf(&acpath, "%s.ac", path);
	if (write_file_atomic(acpath.buf, text.buf, text.len, 0600) < 0)
		goto out;
	ac_key(&r->fp, key);
	sb_reset(&what);
	sb_addf(&what, "ac/%s", key);
	rc = put_file(cr, what.buf, acpath.buf);
out:
	if (acpath.len)
		unlink(acpath.buf);
	sb_release(&url);
	sb_release(&what);
	sb_release(&text);
	sb_release(&acpath);
	return rc;
}

const struct remote_ops remote_cache_http_ops = {
	.name = "cachehttp",
	.open = cache_open,
	.close = cache_close,
	.get_fp = cache_get_fp,
	.get_fps = cache_get_fps,
	.get = cache_get,
	.put = cache_put,
	/* no lock in the protocol */
};
