/* remote-http: a `cashet serve` server as the remote. GET /fp/<fp> names
 * the run ({"run": id}; 404: none), GET /archive/<id> brings the archive
 * store_export writes for that run alone, PUT /archive sends one with the
 * bearer token. The client is cashet-http.so (libcurl), dlopen()ed on the
 * first use of such a remote, so a cache hit never loads libcurl. As with
 * Redis, an imported run must be the one named, with the fingerprint asked
 * for; the server checks each upload as `cashet import` does. */
#include "remote/http.h"
#include "store/gitmod.h"
#include "remote/curl/http.h"
#include "remote/remote.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A lookup's answer is one short JSON object. */
#define FP_ANSWER_MAX 4096

struct http_remote {
	const struct httpmod *m;
	char *base;  /* the URL without its trailing slashes */
	char *token; /* NULL: runs are not sent */
};

static const struct httpmod *loaded;

static const struct httpmod *load_module(void)
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

int http_remote_is_url(const char *url)
{
	return !strncmp(url, "http://", 7) || !strncmp(url, "https://", 8);
}

int http_remote_open(const char *url, struct http_remote **out)
{
	const char *host = url + (strncmp(url, "https://", 8) ? 7 : 8);
	const char *token = getenv("CASHET_REMOTE_TOKEN");
	struct http_remote *hr;
	size_t n = strlen(url);
	*out = NULL;
	if (!http_remote_is_url(url))
		return err_set("expected an http://host[:port][/path] URL");
	if (!*host || *host == '/')
		return err_set("no host");
	if (strpbrk(host, "?# \t\r\n"))
		return err_set("unexpected query, fragment or blank in the URL");
	if (!load_module())
		return -1;
	while (n > (size_t)(host - url) && url[n - 1] == '/')
		n--;
	hr = xcalloc(1, sizeof(*hr));
	hr->m = loaded;
	hr->base = xstrndup(url, n);
	hr->token = token && *token ? xstrdup(token) : NULL;
	*out = hr;
	return 0;
}

void http_remote_close(struct http_remote *hr)
{
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

int http_remote_get_fp(struct http_remote *hr, const struct digest *fp, char hash[OID_HEX])
{
	struct http_opts o = { hr->token, REMOTE_HTTP_TIMEOUT_MS, REMOTE_HTTP_TIMEOUT_MS, FP_ANSWER_MAX };
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

int http_remote_fetch(struct http_remote *hr, struct store *st, const struct digest *fp, const char *hash,
		      int *too_big)
{
	/* no bound on the whole transfer, only on stalls: archives may be big */
	struct http_opts o = { hr->token, REMOTE_HTTP_TIMEOUT_MS, 0, remote_max_bytes() };
	struct strbuf url = STRBUF_INIT, path = STRBUF_INIT, body = STRBUF_INIT;
	long status;
	int rc = -1, g;
	*too_big = 0;
	int local = remote_check_local(st, fp, hash);
	if (local != 0) {
		rc = local; /* already here: nothing to fetch */
		goto out;
	}
	err_clear(); /* "not found" is not an error here */
	sb_addf(&url, "%s/archive/%s", hr->base, hash);
	remote_tmp_name(st, "http", hash, &path);
	g = hr->m->get(url.buf, &o, path.buf, &body, &status);
	if (g < 0)
		goto out;
	if (g == 1) {
		*too_big = 1;
		rc = 0;
		goto out;
	}
	if (status == 404) {
		rc = 0; /* removed meanwhile */
		goto out;
	}
	if (status != 200) {
		answer_error("GET /archive", status, &body);
		goto out;
	}
	rc = remote_import_run(st, fp, hash, path.buf);
out:
	if (path.len)
		unlink(path.buf);
	sb_release(&url);
	sb_release(&path);
	sb_release(&body);
	return rc;
}

int http_remote_publish(struct http_remote *hr, struct store *st, const struct run_record *r, uint64_t *size)
{
	struct http_opts o = { hr->token, REMOTE_HTTP_TIMEOUT_MS, 0, 0 };
	struct strvec one = STRVEC_INIT;
	struct strbuf url = STRBUF_INIT, path = STRBUF_INIT, body = STRBUF_INIT;
	long status;
	int rc = -1;
	*size = 0;
	if (!hr->token) {
		/* a server takes runs only with its token: checked first, so a
		 * read-only client does not export for nothing */
		err_set("CASHET_REMOTE_TOKEN is not set (the server needs its token to take runs)");
		return 1;
	}
	for (size_t i = 0; i < r->nfiles; i++) {
		if (!strncmp(r->files[i].path, "abs/", 4)) {
			/* the server's import refuses them */
			err_set("it has outputs outside the project");
			return 1;
		}
	}
	if (r->expires_ms && r->expires_ms <= now_ms()) {
		err_set("it has expired");
		return 1;
	}
	sv_push(&one, r->hash);
	remote_tmp_name(st, "http", r->hash, &path);
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
	sb_addf(&url, "%s/archive", hr->base);
	if (hr->m->put(url.buf, &o, path.buf, &body, &status) < 0)
		goto out;
	if (status != 200) {
		answer_error("PUT /archive", status, &body);
		goto out;
	}
	rc = 0;
out:
	unlink(path.buf);
	sv_release(&one);
	sb_release(&url);
	sb_release(&path);
	sb_release(&body);
	return rc;
}
