/* request: what `cashet serve` makes of a request before touching the
 * store: the route and arguments of a path, the bearer token, the query
 * parameters of GET /log and POST /gc and a gc body. Plain strings in,
 * plain values out, no libmicrohttpd: the fuzzer calls these directly
 * (tests/fuzz/serve_fuzz.c), serve.c calls them from its MHD callbacks. */
#ifndef CASHET_SERVE_REQUEST_H
#define CASHET_SERVE_REQUEST_H

#include "store/store.h"

enum route {
	R_NONE,
	R_LOG,
	R_STATS,
	R_GC,
	R_RUN,
	R_STDOUT,
	R_STDERR,
	R_FILE,
	R_FP,
	R_ARCHIVE_GET,
	R_ARCHIVE_PUT,
	R_SUBMIT,
};

/* Splits the (already percent-decoded) path into a route and its
 * arguments (*arg: hash, fingerprint; *arg2: the file path of R_FILE;
 * both owned by the caller, set only when the path has them). Returns the
 * methods the path allows ("GET, HEAD"), or NULL when nothing lives there;
 * *route is R_NONE when the method is not one of them; *bad names a
 * malformed argument (400). */
const char *serve_route(const char *url, const char *method, enum route *route, char **arg, char **arg2,
			const char **bad);

/* 0 if header (the Authorization value, may be NULL) carries the token,
 * else the status to refuse a write with: 403 when the server has no
 * token, 401 when the header is missing or wrong. The comparison takes a
 * time that depends only on the token's length. */
unsigned serve_auth(const char *token, const char *header);

/* Applies one query parameter of GET /log (value NULL for "?key") to f,
 * which keeps pointers to value. NULL, or what is wrong with it (400). */
const char *serve_log_param(struct log_filter *f, const char *key, const char *value);

/* A gc setting from the query string or the JSON body: strings as on the
 * command line ("7d", "500M"), numbers in milliseconds or bytes. 0, or -1
 * with the reason appended to why. */
int serve_gc_setting(struct gc_opts *o, const char *key, const char *str, int64_t num, int isnum, struct strbuf *why);
/* The body of POST /gc: a JSON object of settings. 0, or -1 with why. */
int serve_gc_body(struct gc_opts *o, const struct strbuf *body, struct strbuf *why);

/* The output a /file/ request names: exactly its stored path
 * ("files/out.txt") or that path without "files/" ("out.txt"), or NULL. */
const struct run_file *serve_find_output(const struct run_record *r, const char *path);

#endif
