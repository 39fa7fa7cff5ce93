/* request: the pure half of serve's request handling (see request.h):
 * routes, the token check, /log and /gc parameters, gc bodies. Moved here
 * unchanged from serve.c so that they can be called, and fuzzed, without
 * libmicrohttpd; serve.c keeps the MHD callbacks that call them. */
#include "serve/request.h"

#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int is_hex(const char *s, size_t min, size_t max)
{
	size_t n = strlen(s);
	return n >= min && n <= max && strspn(s, "0123456789abcdef") == n;
}

const char *serve_route(const char *url, const char *method, enum route *route, char **arg, char **arg2,
			const char **bad)
{
	int get = !strcmp(method, "GET") || !strcmp(method, "HEAD");
	int is_post = !strcmp(method, "POST"), is_put = !strcmp(method, "PUT");
	const char *rest;
	*bad = NULL;
	*route = R_NONE;
	if (!strcmp(url, "/log")) {
		*route = get ? R_LOG : R_NONE;
		return "GET, HEAD";
	}
	if (!strcmp(url, "/stats")) {
		*route = get ? R_STATS : R_NONE;
		return "GET, HEAD";
	}
	if (!strcmp(url, "/gc")) {
		*route = is_post ? R_GC : R_NONE;
		return "POST";
	}
	if (!strcmp(url, "/archive")) {
		*route = is_put ? R_ARCHIVE_PUT : R_NONE;
		return "PUT";
	}
	if (!strcmp(url, "/submit")) {
		*route = is_post ? R_SUBMIT : R_NONE;
		return "POST";
	}
	if (!strncmp(url, "/archive/", 9)) {
		*arg = xstrdup(url + 9);
		if (!is_hex(*arg, 4, 40))
			*bad = "a run hash is 4 to 40 lowercase hex digits";
		*route = get ? R_ARCHIVE_GET : R_NONE;
		return "GET, HEAD";
	}
	if (!strncmp(url, "/fp/", 4)) {
		*arg = xstrdup(url + 4);
		if (!is_hex(*arg, DIGEST_HEX - 1, DIGEST_HEX - 1))
			*bad = "a fingerprint is 32 lowercase hex digits";
		*route = get ? R_FP : R_NONE;
		return "GET, HEAD";
	}
	if (strncmp(url, "/run/", 5))
		return NULL;
	url += 5;
	rest = strchr(url, '/');
	*arg = rest ? xstrndup(url, (size_t)(rest - url)) : xstrdup(url);
	if (!is_hex(*arg, 4, 40))
		*bad = "a run hash is 4 to 40 lowercase hex digits";
	if (!rest)
		*route = R_RUN;
	else if (!strcmp(rest, "/stdout"))
		*route = R_STDOUT;
	else if (!strcmp(rest, "/stderr"))
		*route = R_STDERR;
	else if (!strncmp(rest, "/file/", 6)) {
		*route = R_FILE;
		*arg2 = xstrdup(rest + 6);
		/* the path is only ever compared with stored paths, but say so
		 * plainly rather than answer a traversal attempt with a 404 */
		for (const char *p = *arg2; !*bad;) {
			size_t n = strcspn(p, "/");
			if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
				*bad = "invalid file path (empty, '.' or '..' component)";
			if (!p[n])
				break;
			p += n + 1;
		}
	} else {
		return NULL;
	}
	if (!get)
		*route = R_NONE;
	return "GET, HEAD";
}

/* Compares in time that depends only on the configured token's length. */
static int token_ok(const char *want, const char *got)
{
	size_t n = strlen(want), m = strlen(got);
	unsigned char diff = (unsigned char)(n != m);
	for (size_t i = 0; i < n; i++)
		diff |= (unsigned char)(want[i] ^ (i < m ? got[i] : 0));
	return diff == 0;
}

unsigned serve_auth(const char *token, const char *header)
{
	if (!token)
		return 403;
	if (!header || strncasecmp(header, "Bearer ", 7) || !token_ok(token, header + 7))
		return 401;
	return 0;
}

const char *serve_log_param(struct log_filter *f, const char *key, const char *value)
{
	const char *bad = NULL;
	if (!value)
		value = "";
	if (!strcmp(key, "limit")) {
		char *end;
		long n = strtol(value, &end, 10);
		if (*end || n <= 0 || n > 1000000)
			bad = "limit: expected a positive number";
		else
			f->limit = (int)n;
	} else if (!strcmp(key, "name")) {
		f->name = value;
	} else if (!strcmp(key, "cmd")) {
		f->cmd_substr = value;
	} else if (!strcmp(key, "status")) {
		if (strcmp(value, "ok") && strcmp(value, "failed"))
			bad = "status: expected 'ok' or 'failed'";
		f->status = value;
	} else if (!strcmp(key, "tag")) {
		sv_push(&f->tags, value);
	} else {
		bad = "unknown parameter (expected name, limit, status, tag or cmd)";
	}
	return bad;
}

int serve_gc_setting(struct gc_opts *o, const char *key, const char *str, int64_t num, int isnum, struct strbuf *why)
{
	if (!strcmp(key, "older_than")) {
		if (isnum ? num < 0 : parse_duration_ms(str, &o->older_than_ms) < 0) {
			sb_addf(why, "older_than: %s", isnum ? "must not be negative" : err_msg());
			return -1;
		}
		if (isnum)
			o->older_than_ms = num;
	} else if (!strcmp(key, "max_size")) {
		if (isnum ? num < 0 : parse_size(str, &o->max_size) < 0) {
			sb_addf(why, "max_size: %s", isnum ? "must not be negative" : err_msg());
			return -1;
		}
		if (isnum)
			o->max_size = (uint64_t)num;
	} else if (!strcmp(key, "dry_run")) {
		o->dry_run = isnum ? num != 0 : !strcmp(str, "1") || !strcmp(str, "true");
	} else {
		sb_addf(why, "unknown gc setting '%s' (expected older_than, max_size or dry_run)", key);
		return -1;
	}
	return 0;
}

int serve_gc_body(struct gc_opts *o, const struct strbuf *body, struct strbuf *why)
{
	struct json_tokener *tok = json_tokener_new();
	json_object *j = json_tokener_parse_ex(tok, body->buf, (int)body->len);
	int rc = -1;
	if (!j || json_tokener_get_error(tok) != json_tokener_success || !json_object_is_type(j, json_type_object)) {
		sb_adds(why, "the body is not a JSON object");
		goto out;
	}
	json_object_object_foreach(j, key, val)
	{
		int isnum = json_object_is_type(val, json_type_int) || json_object_is_type(val, json_type_boolean);
		if (!isnum && !json_object_is_type(val, json_type_string)) {
			sb_addf(why, "%s: expected a string or a number", key);
			goto out;
		}
		if (serve_gc_setting(o, key, isnum ? "" : json_object_get_string(val),
				     isnum ? (int64_t)json_object_get_int64(val) : 0, isnum, why) < 0)
			goto out;
	}
	rc = 0;
out:
	json_object_put(j);
	json_tokener_free(tok);
	return rc;
}

const struct run_file *serve_find_output(const struct run_record *r, const char *path)
{
	for (size_t i = 0; i < r->nfiles; i++) {
		const struct run_file *f = &r->files[i];
		if (f->kind != FILE_OUTPUT)
			continue;
		if (!strcmp(f->path, path) || (!strncmp(f->path, "files/", 6) && !strcmp(f->path + 6, path)))
			return f;
	}
	return NULL;
}
