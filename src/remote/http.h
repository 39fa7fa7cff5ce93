/* remote-http: a `cashet serve` server as the remote (http:// or https://
 * URLs). remote.h's functions hand such a remote to these; their contract
 * is that of the remote_* function of the same name. There is no lock: the
 * server has none, so exactly-once across machines needs Redis. */
#ifndef CASHET_REMOTE_HTTP_H
#define CASHET_REMOTE_HTTP_H

#include "store/store.h"

/* How long a request may wait to connect, or with no data moving. */
#define REMOTE_HTTP_TIMEOUT_MS 2000

struct http_remote;

/* 1 if url names an HTTP remote (http:// or https://). */
int http_remote_is_url(const char *url);
/* Checks the URL and loads cashet-http.so; connects only on the first
 * request. The bearer token for uploads is $CASHET_REMOTE_TOKEN. Caller
 * closes. */
int http_remote_open(const char *url, struct http_remote **out);
void http_remote_close(struct http_remote *hr);
int http_remote_get_fp(struct http_remote *hr, const struct digest *fp, char hash[OID_HEX]);
int http_remote_fetch(struct http_remote *hr, struct store *st, const struct digest *fp, const char *hash,
		      int *too_big);
/* Also returns 1 (skipped) when there is no token to upload with. */
int http_remote_publish(struct http_remote *hr, struct store *st, const struct run_record *r, uint64_t *size);

#endif
