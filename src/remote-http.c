/* remote-http: a `cashet serve` server as the remote. GET /fp/<fp> names
 * the run ({"run": id}; 404: none), GET /archive/<id> brings the archive
 * store_export writes for that run alone, PUT /archive sends one with the
 * bearer token. The client is cashet-http.so (libcurl), dlopen()ed on the
 * first use of such a remote, so a cache hit never loads libcurl. As with
 * Redis, an imported run must be the one named, with the fingerprint asked
 * for; the server checks each upload as `cashet import` does. */
#include "remote-http.h"
#include "gitmod.h"
#include "http/http.h"
#include "remote.h"

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

/* A private file name in the store's tmp directory; the cap-<pid>- prefix
 * lets store_sweep_tmp() remove it if we die before we do. */
static void tmp_name(struct store *st, const char *what, struct strbuf *path)
{
	sb_reset(path);
	sb_addf(path, "%s/cap-%ld-http-%s.cashet", store_tmpdir(st), (long)getpid(), what);
}

/* 1 if the run is in st with fingerprint fp, 0 if not in st, <0 if it is
 * there with another fingerprint (as remote-redis.c checks). */
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
		rc = err_set("GET /archive: not an archive of run %.12s alone", hash);
	sb_release(&head);
	return rc;
}

int http_remote_fetch(struct http_remote *hr, struct store *st, const struct digest *fp, const char *hash,
		      int *too_big)
{
	/* no bound on the whole transfer, only on stalls: archives may be big */
	struct http_opts o = { hr->token, REMOTE_HTTP_TIMEOUT_MS, 0, remote_max_bytes() };
	struct strbuf url = STRBUF_INIT, path = STRBUF_INIT, body = STRBUF_INIT;
	size_t imported = 0, present = 0;
	long status;
	int rc = -1, g;
	*too_big = 0;
	int local = check_local(st, fp, hash);
	if (local != 0) {
		rc = local; /* already here: nothing to fetch */
		goto out;
	}
	err_clear(); /* "not found" is not an error here */
	sb_addf(&url, "%s/archive/%s", hr->base, hash);
	tmp_name(st, hash, &path);
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
	if (check_head(path.buf, hash) < 0 || store_import(st, path.buf, 0, &imported, &present) < 0)
		goto out;
	rc = check_local(st, fp, hash);
	if (rc < 0 && imported) {
		char msg[512];
		snprintf(msg, sizeof(msg), "%s", err_msg());
		store_remove(st, hash);
		err_set("%s", msg);
	} else if (rc == 0) {
		rc = err_set("run %.12s is not in the store after its import", hash);
	}
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
	tmp_name(st, r->hash, &path);
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
