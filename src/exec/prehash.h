/* prehash: the files a traced command reads, hashed while it still runs,
 * on the CPU it leaves idle, so that keying its result after it exits
 * takes a stat of each, not a read too (a dataset read at the start of a
 * long training run; the 20,000 files a `cp -r` copies). */
#ifndef CASHET_PREHASH_H
#define CASHET_PREHASH_H

#include "store/store.h"

#include <sys/stat.h>

struct prehash;

/* How long a command runs before the files it read are hashed, unless
 * CASHET_PREHASH_MS says otherwise ("off": never): a small miss never
 * starts the thread. */
#define PREHASH_AFTER_MS 10

/* NULL when off. */
struct prehash *prehash_new(struct store *st);
int64_t prehash_after_ms(const struct prehash *p);
/* The trace's read hook (trace_set_read_hook): never blocks. */
void prehash_offer(void *p, const char *path);
/* Starts the hashing thread (spawn's `later` hook); again, nothing. */
void prehash_start(void *p);
/* The command exited: the thread stops at its next file (or megabyte),
 * and what it hashed until now is what prehash_digest knows. */
void prehash_ended(struct prehash *p);
/* obs_spec's known: the digest of path's content, hashed while the command ran, when sb
 * (its lstat now) is as the thread found it before reading it and it was
 * quiet then (STORE_CACHE_QUIET_NS): 1 (out set), else 0. */
int prehash_digest(const void *p, const char *path, const struct stat *sb, struct digest *out);
/* Joins the thread. */
void prehash_free(struct prehash *p);

#endif
