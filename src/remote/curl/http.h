/* http module: the HTTP client of an http(s):// remote, built as
 * cashet-http.so with libcurl and dlopen()ed only when such a remote is
 * used (see remote/http.c): libcurl and the libraries it needs (OpenSSL,
 * nghttp2, ssh, ldap, ...) would otherwise be loaded by every cache hit.
 * The module calls back into cashet's util (strbuf, err_set). */
#ifndef CASHET_HTTP_H
#define CASHET_HTTP_H

#include <stdint.h>

#include "util/util.h"

/* The entry point; the version is in the name, so a stale module is
 * refused rather than called with the wrong table. */
#define HTTPMOD_ENTRY "cashet_httpmod_v2"

struct http_opts {
	const char *token;   /* sent as "Authorization: Bearer TOKEN" unless NULL */
	const char *userpwd; /* "user:password" for basic auth, or NULL */
	int netrc;           /* credentials from ~/.netrc ($NETRC) for a host without others */
	long timeout_ms;     /* to connect, and the longest time no data moves */
	long total_ms;       /* the whole request at most (0: no bound beyond timeout_ms) */
	uint64_t max_bytes;  /* get: a longer body is not kept (0: no limit) */
};

struct httpmod {
	/* GET url. A 2xx body goes to the file path (created or truncated,
	 * mode 0600) or, if path is NULL, to body; any other body goes to
	 * body (its first 64 KiB). Returns 0 when the server answered
	 * (*status set, whatever it is), 1 when the body is over max_bytes
	 * (the file then holds a part of it), <0 with err_set on a transport
	 * error (refused, timed out, TLS, ...). */
	int (*get)(const char *url, const struct http_opts *o, const char *path, struct strbuf *body, long *status);
	/* PUT the file at path to url as application/octet-stream; the
	 * answer's body goes to body. Returns as get does (never 1). */
	int (*put)(const char *url, const struct http_opts *o, const char *path, struct strbuf *body, long *status);
	/* HEAD url: 0 with *status set, <0 on a transport error. */
	int (*head)(const char *url, const struct http_opts *o, long *status);
};

const struct httpmod *cashet_httpmod_v2(void);

/* Loads cashet-http.so once (remote/http.c); NULL with err_set on failure. */
const struct httpmod *remote_httpmod(void);
/* The base of an http(s):// URL, checked (a host, no query, fragment or
 * blank) and without trailing slashes, with the module loaded: the caller
 * frees *base. 0 or -1 with err_set. */
int remote_http_base(const char *url, char **base);

#endif
