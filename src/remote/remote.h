/* remote: a cache shared between machines, Redis or a `cashet serve`
 * server, behind one small vtable (struct remote_ops). A backend only
 * moves bytes: the run id a fingerprint names, a run's archive, a lock.
 * What is fetched and checked, what is sent, and how a lock is waited for
 * are written once, here in remote.c. A remote is an accelerator, never the
 * truth: every error is returned so the caller can go on with the local
 * store. */
#ifndef CASHET_REMOTE_H
#define CASHET_REMOTE_H

#include <stdint.h>

#include "store/store.h"

#define REMOTE_LOCK_TTL_MS 30000
/* how long past the end of a lock's lease a waiter still waits */
#define REMOTE_LOCK_MARGIN_MS 2000
/* Archives above this are neither sent nor fetched (CASHET_REMOTE_MAX_BYTES overrides it). */
#define REMOTE_MAX_BYTES ((uint64_t)64 << 20)

/* What a backend's get found. */
enum remote_got {
	REMOTE_GOT,     /* the archive is in the file */
	REMOTE_MISSING, /* no such run there (or removed meanwhile) */
	REMOTE_TOO_BIG, /* over the size limit: not transferred */
};

/* One backend. be is the backend's own state, made by open. Every
 * function is bounded by the backend's timeouts and returns <0 with
 * err_set() on any failure. */
struct remote_ops {
	const char *name; /* for temp file names: "redis", "http" */
	/* Checks url (of a scheme the backend table gives it) and connects,
	 * or prepares to. */
	int (*open)(const char *url, void **be);
	void (*close)(void *be);
	/* The run stored for fp: 1 found (hash filled), 0 none. */
	int (*get_fp)(void *be, const struct digest *fp, char hash[OID_HEX]);
	/* NULL, or every run stored for fp, newest first, appended to hashes
	 * (runs of one declared key that observed different inputs: the
	 * lookup picks the one whose inputs are unchanged here). */
	int (*get_fps)(void *be, const struct digest *fp, struct strvec *hashes);
	/* Writes the archive of run hash to the file path if it is at most
	 * max bytes: an enum remote_got. */
	int (*get)(void *be, const char *hash, uint64_t max, const char *path);
	/* NULL: runs may always be sent. Else 0 if they may, 1 if not
	 * (err_set says why); asked before a run is exported for nothing. */
	int (*can_put)(void *be);
	/* Sends the archive at path of run r, then names it under r's
	 * fingerprint (in this order: a reader that sees the name finds the
	 * archive). ttl_ms > 0: the run expires then. Returns 0. */
	int (*put)(void *be, const struct run_record *r, const char *path, int64_t ttl_ms);
	/* The cross-machine lock on fp, owner its value; NULL: the backend has
	 * none. lock tries once: 1 taken, 0 held by another owner. heartbeat
	 * extends it and unlock deletes it, both only while owner holds it. */
	int (*lock)(void *be, const struct digest *fp, const char *owner);
	/* How long the lock on fp has left unless its owner extends it: 0
	 * (*ms; -1 if it never expires), 1 there is no such lock. */
	int (*lease)(void *be, const struct digest *fp, int64_t *ms);
	int (*heartbeat)(void *be, const struct digest *fp, const char *owner);
	int (*unlock)(void *be, const struct digest *fp, const char *owner);
};

/* The backends, each defined in its own file; remote.c maps URL schemes to them. */
extern const struct remote_ops remote_redis_ops;      /* redis.c */
extern const struct remote_ops remote_http_ops;       /* http.c */
extern const struct remote_ops remote_cache_http_ops; /* cachehttp.c */

struct remote;

/* The URLs remote_open takes, for messages. */
#define REMOTE_URL_FORMS "a redis://host[:port][/db], http(s)://host[:port] or cache+http(s)://host[:port][/prefix] URL"

/* 1 if a backend takes url's scheme. */
int remote_url_known(const char *url);
/* Opens the remote url names: redis://[[user]:password@]host[:port][/db]
 * (connects and selects the database) or http(s)://host[:port][/path] (a
 * `cashet serve` server: loads the HTTP client, no request yet). Caller
 * closes. */
int remote_open(const char *url, struct remote **out);
void remote_close(struct remote *rm);
/* The URL for messages: a password in it is shown as "***". */
const char *remote_url(const struct remote *rm);
void remote_redact(const char *url, struct strbuf *out);
/* The size limit in bytes for an archive (REMOTE_MAX_BYTES or the env override). */
uint64_t remote_max_bytes(void);

/* The run stored for fp: 1 found (hash filled), 0 none, <0 error. */
int remote_get_fp(struct remote *rm, const struct digest *fp, char hash[OID_HEX]);
/* Every run stored for fp, newest first (a backend without a list: the
 * one get_fp names), appended to hashes. 0, or <0 error. */
int remote_get_fps(struct remote *rm, const struct digest *fp, struct strvec *hashes);

/* Read-through: fetches the run hash names for fp into st (through an
 * archive in st's tmp directory) and checks that it is that one run, with
 * this fingerprint. Returns 1 imported (or already present), 0 not
 * available (missing, or over the size limit: *too_big set), <0 error. */
int remote_fetch(struct remote *rm, struct store *st, const struct digest *fp, const char *hash, int *too_big);

/* Write-through: exports the stored run r and sends it. Returns 0 sent, 1
 * skipped (err_set says why: the remote takes no runs, outputs outside the
 * project, expired, over the size limit; *size says how big), <0 error. */
int remote_publish(struct remote *rm, struct store *st, const struct run_record *r, uint64_t *size);

/* Cross-machine claim on fp (a backend without a lock: 0 at once, and
 * refresh and unlock do nothing). While another owner holds it, polls the
 * fingerprint until a run appears or the lock can be taken (released, or
 * expired with its owner). The wait follows the lock's lease: as long as
 * its owner keeps extending it, and REMOTE_LOCK_MARGIN_MS past its end;
 * a lock that never expires, or one the server says is held but cannot
 * show, is not waited for (an error). A run named seen (one already
 * fetched that could not be replayed, or NULL) does not count. Returns 0
 * locked, 1 a run appeared (hash filled; not locked), 2 if cancelled()
 * became non-zero while waiting, <0 error. */
int remote_lock(struct remote *rm, const struct digest *fp, const char *owner, const char *seen, int (*cancelled)(void),
		char hash[OID_HEX]);
/* Extends our lock (only if we still own it). */
int remote_lock_refresh(struct remote *rm, const struct digest *fp, const char *owner);
/* Deletes our lock (only if we still own it). */
int remote_unlock(struct remote *rm, const struct digest *fp, const char *owner);

#endif
