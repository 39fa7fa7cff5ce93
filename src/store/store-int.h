/* Internals shared by the store-*.c files; nothing outside the store includes this. */
#ifndef CASHET_STORE_INT_H
#define CASHET_STORE_INT_H

#include <sqlite3.h>

#include "store/store.h"

/* Blobs up to this size are copied into the index, so a hit never opens the
 * git object database for typical stdout/stderr. */
#define INLINE_MAX (64 * 1024)

struct pending_stat {
	char *path;
	int kind;
	struct stat sb;
	struct digest d;
	char *deps;
	size_t depslen;
};

struct store {
	char *dir, *root, *tmp;
	char *origin; /* the store this one stands in for (store_stand_in), or NULL */
	int tmp_made;
	sqlite3 *db;
	sqlite3_stmt *q_stat, *q_lookup, *q_files;
	struct pending_stat *pending;
	size_t npending;
	struct digest claimed; /* the fingerprint we hold a claim on */
	int have_claim;
	int64_t claim_pid;
	int writable;         /* store_writable(): 0 not checked yet, 1 yes, -1 no */
	char *unwritable;     /* why not */
	struct strbuf config; /* the git config file's text, read once (store_setting) */
	int config_read;
	struct store_batch *batch; /* store_batch_begin(): runs saved but not yet published */
	struct stat_rows *pre;     /* store_cache_prefetch(): a directory's stat cache rows */
};

int store_sqlfail(struct store *st, const char *what);
int store_exec(struct store *st, const char *sql);
/* Prepares once and caches in *s (reset and unbound on later calls). */
int store_prepare(struct store *st, sqlite3_stmt **s, const char *sql);
/* Fills the row fields of r from a runs SELECT of RUN_COLUMNS. */
#define RUN_COLUMNS                                                                                                    \
	"id, hash, parent, fp, line, name, argv, cwd, ok, exit_code, created, last_used, duration_ms, expires, timed_out"
/* The same and the observed inputs (what a lookup and a load need; a
 * listing does without). */
#define RUN_COLUMNS_INPUTS RUN_COLUMNS ", inputs"
void store_row_to_run(sqlite3_stmt *s, int col, struct run_record *r);
/* Loads r's files; without all, only streams and outputs (what a hit replays). */
int store_load_files(struct store *st, struct run_record *r, int all);
int store_index_run(struct store *st, const struct run_record *r);
/* A run that came from elsewhere has the tree layout store_save writes
 * and nothing else, and (without allow_abs) no output outside its
 * project. 0, or -1 with err_msg() naming what is wrong. */
int store_check_layout(const struct run_record *r, int allow_abs);
/* What every arriving run must pass: the layout, then the trust policy
 * (E_UNTRUSTED). store-xfer.c. */
int store_admit(struct store *st, const struct run_record *r, int allow_abs);
/* The index record of a run, built from its commit (what reindex and import
 * insert). r zeroed by the caller, freed by the caller even on error. */
int store_load_git(struct store *st, const char *hash, struct run_record *r);

/* Finds oid in the store's packs as a whole blob entry (store-pack.c): 0
 * (*fd the open pack, *data where its zlib stream starts, *size), 1 not
 * packed or a delta, -1 error. */
int store_pack_find(struct store *st, const char *oid, int *fd, uint64_t *data, uint64_t *size);
/* Whether oid is in one of the store's packs, whatever its type: 1 yes, 0 no. */
int store_pack_has(struct store *st, const char *oid);

/* Copies a small blob into f->data for the index (zstd when it pays);
 * nothing for one over INLINE_MAX. */
void store_inline_data(struct run_file *f, const char *content, size_t len);

/* Writes r's blobs, tree, commit and refs as libgit2 would, without it
 * (store-odb.c): 0 saved (r->hash, r->parent, the oids and the inline
 * copies filled), 1 not a run this writer takes (a file of 1 MiB or more,
 * a path git would refuse: the git module's), -1 error. */
int store_odb_save(struct store *st, struct run_record *r, const char *meta, size_t metalen);

/* Indexes every run that has a ref but no index row: the refs are the
 * truth, and an interrupted save, import or pull leaves such runs. A run
 * git cannot give back is pushed to unreadable, or, when that is NULL,
 * fails the whole (nothing indexed). *added counts the runs indexed. */
int store_index_missing(struct store *st, size_t *added, struct strvec *unreadable);

#endif
