/* remote: a Redis server as a cache shared between machines (issue 6).
 * Keys: cashet:v1:fp:<fp hex> -> run commit id, cashet:v1:run:<commit id> ->
 * an archive of that one run (store_export), cashet:v1:lock:<fp hex> -> the
 * owner of a cross-machine claim. Redis is an accelerator, never the truth:
 * every error is returned so the caller can go on with the local store, and
 * every command is bounded by a short timeout.
 * An http(s):// URL names a `cashet serve` server instead (remote-http.h):
 * the same functions, with archives over HTTP and no lock. */
#ifndef CASHET_REMOTE_H
#define CASHET_REMOTE_H

#include <stdint.h>

#include "store/store.h"

#define REMOTE_TIMEOUT_MS 500
#define REMOTE_LOCK_TTL_MS 30000
/* Archives above this are neither sent nor fetched (CASHET_REMOTE_MAX_BYTES overrides it). */
#define REMOTE_MAX_BYTES ((uint64_t)64 << 20)

struct remote;

/* Connects to url (redis://[[user]:password@]host[:port][/db]) and selects
 * the database, each step bounded by REMOTE_TIMEOUT_MS; or, for an
 * http(s)://host[:port][/path] URL, loads the HTTP client (no request yet).
 * Caller closes. */
int remote_open(const char *url, struct remote **out);
void remote_close(struct remote *rm);
/* The URL for messages: a password in it is shown as "***". */
const char *remote_url(const struct remote *rm);
void remote_redact(const char *url, struct strbuf *out);
/* The size limit in bytes for an archive (REMOTE_MAX_BYTES or the env override). */
uint64_t remote_max_bytes(void);

/* Shared by the backends (remote.c): a temp file for an archive in st's
 * tmp directory; whether run hash is in st with fingerprint fp (1 yes, 0
 * not there, <0 there with another fingerprint); and importing the archive
 * at path as that one run (1 done, <0 refused: nothing is left imported). */
void remote_tmp_name(struct store *st, const char *backend, const char *what, struct strbuf *path);
int remote_check_local(struct store *st, const struct digest *fp, const char *hash);
int remote_import_run(struct store *st, const struct digest *fp, const char *hash, const char *path);

/* The run stored for fp: 1 found (hash filled), 0 none, <0 error. */
int remote_get_fp(struct remote *rm, const struct digest *fp, char hash[OID_HEX]);

/* Read-through: fetches the run hash names for fp into st (through an
 * archive in st's tmp directory) and checks that it is one run with this
 * fingerprint. Returns 1 imported (or already present), 0 not available
 * (missing, or over the size limit: *too_big set), <0 error. */
int remote_fetch(struct remote *rm, struct store *st, const struct digest *fp, const char *hash, int *too_big);

/* Write-through: exports the stored run r and sets its archive and then its
 * fingerprint key. Returns 0 sent, 1 skipped (archive over the size limit:
 * *size says how big), <0 error. */
int remote_publish(struct remote *rm, struct store *st, const struct run_record *r, uint64_t *size);

/* Cross-machine claim on fp (over HTTP there is none: 0 at once, and
 * refresh and unlock do nothing): SET lock NX PX REMOTE_LOCK_TTL_MS with owner.
 * While another owner holds it, polls the fingerprint key until a run
 * appears or the lock goes away (released, or expired with its owner), then
 * tries again. A key naming seen (a run already fetched that could not be
 * replayed, or NULL) does not count. Returns 0 locked, 1 a run appeared
 * (hash filled; not locked), 2 if cancelled() became non-zero while
 * waiting, <0 error. */
int remote_lock(struct remote *rm, const struct digest *fp, const char *owner, const char *seen,
		int (*cancelled)(void), char hash[OID_HEX]);
/* Extends our lock (only if we still own it). */
int remote_lock_refresh(struct remote *rm, const struct digest *fp, const char *owner);
/* Deletes our lock (only if we still own it: compare and delete in Lua). */
int remote_unlock(struct remote *rm, const struct digest *fp, const char *owner);

#endif
