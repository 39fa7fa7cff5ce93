/* remote-http: the backend for a `cashet serve` server (http:// and
 * https:// URLs). GET /fp/<fp> names
 * the run ({"run": id}; 404: none), GET /archive/<id> brings the archive
 * store_export writes for that run alone, PUT /archive sends one with the
 * bearer token. The client is cashet-http.so (libcurl), dlopen()ed on the
 * first use of such a remote, so a cache hit never loads libcurl. There
 * is no lock: the server has none, so exactly-once across machines needs
 * Redis. The server checks each upload as `cashet import` does. */
#include "remote/curl/http.h"
#include "remote/remote.h"
#include "store/gitmod.h"

#include <dlfcn.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* How long a request may wait to connect, or with no data moving. */
#define TIMEOUT_MS 2000
/* A lookup's answer is one short JSON object. */
#define FP_ANSWER_MAX 4096

struct http_remote {
	const struct httpmod *m;
	char *base;  /* the URL without its trailing slashes */
	char *token; /* NULL: runs are not sent */
};

static const struct httpmod *loaded;

const struct httpmod *remote_httpmod(void)
{
	struct strbuf errs = STRBUF_INIT;
	if (!loaded) {
		void *h = module_open("cashet-http.so", NULL, &errs);
		const struct httpmod *(*entry)(void) = NULL;
		if (h)
			*(void **)&entry = (void *)dlsym(h, HTTPMOD_ENTRY);
		if (!entry)
			err_set("cannot load the http module: %s",
				h ? "cashet-http.so has the wrong version" : sb_str(&errs));
		else if (!(loaded = entry()))
			err_set("cannot load the http module: libcurl did not start");
	}
	sb_release(&errs);
	return loaded;
}

int remote_http_base(const char *url, char **base)
{
	const char *host = url + (strncmp(url, "https://", 8) ? 7 : 8);
	size_t n = strlen(url);
	if (!*host || *host == '/')
		return err_set("no host");
	if (strpbrk(host, "?# \t\r\n"))
		return err_set("unexpected query, fragment or blank in the URL");
	if (!remote_httpmod())
		return -1;
	while (n > (size_t)(host - url) && url[n - 1] == '/')
		n--;
	*base = xstrndup(url, n);
	return 0;
}

static int http_open(const char *url, void **out)
{
	const char *token = getenv("CASHET_REMOTE_TOKEN");
	struct http_remote *hr;
	char *base;
	*out = NULL;
	if (remote_http_base(url, &base) < 0)
		return -1;
	hr = xcalloc(1, sizeof(*hr));
	hr->m = loaded;
	hr->base = base;
	hr->token = token && *token ? xstrdup(token) : NULL;
	*out = hr;
	return 0;
}

static void http_close(void *be)
{
	struct http_remote *hr = be;
	if (!hr)
		return;
	free(hr->base);
	free(hr->token);
	free(hr);
}

/* Sets the error for an answer other than the one expected: the server's
 * {"error": "..."} if it sent one. Returns -1. */
static int answer_error(const char *what, long status, const struct strbuf *body)
{
	json_object *j = body->len ? json_tokener_parse(body->buf) : NULL, *e = NULL;
	if (j && json_object_object_get_ex(j, "error", &e) && json_object_is_type(e, json_type_string))
		err_set("%s: HTTP %ld: %s", what, status, json_object_get_string(e));
	else
		err_set("%s: HTTP %ld", what, status);
	json_object_put(j);
	return -1;
}

static int is_oid(const char *s)
{
	return strlen(s) == OID_HEX - 1 && strspn(s, "0123456789abcdef") == OID_HEX - 1;
}

static int http_get_fp(void *be, const struct digest *fp, char hash[OID_HEX])
{
	struct http_remote *hr = be;
	struct http_opts o = {
		.token = hr->token, .timeout_ms = TIMEOUT_MS, .total_ms = TIMEOUT_MS, .max_bytes = FP_ANSWER_MAX
	};
	struct strbuf url = STRBUF_INIT, body = STRBUF_INIT;
	json_object *j = NULL, *run = NULL;
	char hx[DIGEST_HEX];
	long status;
	int rc = -1, g;
	digest_hex(fp, hx);
	sb_addf(&url, "%s/fp/%s", hr->base, hx);
	g = hr->m->get(url.buf, &o, NULL, &body, &status);
	if (g < 0)
		goto out;
	if (g == 1) {
		err_set("GET /fp: the answer is over %d bytes", FP_ANSWER_MAX);
		goto out;
	}
	if (status == 404) {
		rc = 0; /* a miss there too */
		goto out;
	}
	if (status != 200) {
		answer_error("GET /fp", status, &body);
		goto out;
	}
	j = body.len ? json_tokener_parse(body.buf) : NULL;
	if (!j || !json_object_object_get_ex(j, "run", &run) || !json_object_is_type(run, json_type_string) ||
	    !is_oid(json_object_get_string(run))) {
		err_set("GET /fp: the answer does not name a run");
		goto out;
	}
	memcpy(hash, json_object_get_string(run), OID_HEX);
	rc = 1;
out:
	json_object_put(j);
	sb_release(&url);
	sb_release(&body);
	return rc;
}

static int http_get(void *be, const char *hash, uint64_t max, const char *path)
{
	struct http_remote *hr = be;
	/* no bound on the whole transfer, only on stalls: archives may be big */
	struct http_opts o = { .token = hr->token, .timeout_ms = TIMEOUT_MS, .max_bytes = max };
	struct strbuf url = STRBUF_INIT, body = STRBUF_INIT;
	long status;
	int rc = -1, g;
	sb_addf(&url, "%s/archive/%s", hr->base, hash);
	g = hr->m->get(url.buf, &o, path, &body, &status);
	if (g < 0)
		goto out;
	if (g == 1)
		rc = REMOTE_TOO_BIG;
	else if (status == 404)
		rc = REMOTE_MISSING; /* removed meanwhile */
	else if (status != 200)
		answer_error("GET /archive", status, &body);
	else
		rc = REMOTE_GOT;
out:
	sb_release(&url);
	sb_release(&body);
	return rc;
}

/* A server takes runs only with its token. */
static int http_can_put(void *be)
{
	const struct http_remote *hr = be;
	if (hr->token)
		return 0;
	err_set("CASHET_REMOTE_TOKEN is not set (the server needs its token to take runs)");
	return 1;
}

/* The archive carries the run's expiry; the server applies it itself. */
static int http_put(void *be, const struct run_record *r, const char *path, int64_t ttl_ms)
{
	struct http_remote *hr = be;
	struct http_opts o = { .token = hr->token, .timeout_ms = TIMEOUT_MS };
	struct strbuf url = STRBUF_INIT, body = STRBUF_INIT;
	long status;
	int rc = -1;
	(void)r;
	(void)ttl_ms;
	sb_addf(&url, "%s/archive", hr->base);
	if (hr->m->put(url.buf, &o, path, &body, &status) < 0)
		goto out;
	if (status != 200) {
		answer_error("PUT /archive", status, &body);
		goto out;
	}
	rc = 0;
out:
	sb_release(&url);
	sb_release(&body);
	return rc;
}

const struct remote_ops remote_http_ops = {
	.name = "http",
	.open = http_open,
	.close = http_close,
	.get_fp = http_get_fp,
	.get = http_get,
	.can_put = http_can_put,
	.put = http_put,
	/* no lock: heartbeat and unlock stay NULL too */
};
