/* Internals shared by the store-*.c files; nothing outside the store includes this. */
#ifndef CASHET_STORE_INT_H
#define CASHET_STORE_INT_H

#include <pthread.h>
#include <sqlite3.h>

#include "store/store.h"

/* Blobs up to this size are copied into the index, so a hit never opens the
 * git object database for typical stdout/stderr. */
#define INLINE_MAX (64 * 1024)
/* ... unless the run has more output files than this (store-save.c). */
#define INLINE_OUTPUTS_MAX 64

struct pending_stat {
	char *path;
	int kind;
	struct stat sb;
	struct digest d;
	char *deps;
	size_t depslen;
};

/* A pack index, mapped once per open store (store-pack.c): a hit that
 * restores thousands of packed files looks each up without reopening. */
struct pack_map {
	char *pack; /* path of the .pack */
	int fd;     /* the .pack, open once found useful (-1 until then); callers get a dup() */
	const unsigned char *idx;
	size_t len;
};

enum {
	IX_RUN,
	IX_FILE,
	IX_PART_ADD,
	IX_PART_ID,
	IX_TAG,
	IX_METRIC,
	IX_SET_ADD,
	IX_SET_ID,
	IX_PARTS_OF,
	IX_PARTVAL,
	IX_NEXT_RUN,
	IX_COUNT
};

struct store {
	char *dir, *root, *tmp;
	char *origin; /* the store this one stands in for (store_stand_in), or NULL */
	int tmp_made;
	sqlite3 *db;
	sqlite3_stmt *q_stat, *q_lookup, *q_files;
	/* store_index_run's statements, prepared once per open store: reindex,
	 * fsck and import index thousands of runs */
	sqlite3_stmt *q_index[IX_COUNT];
	struct pack_map *packs; /* loaded on first use, again when an id is not found */
	size_t npacks;
	int packs_loaded;
	pthread_mutex_t packs_mu; /* serve reads blobs from several threads */
	struct strvec bad_copies; /* "<oid> <pack file name>": damaged copies found by reads (packs_mu) */
	struct pending_stat *pending;
	size_t npending, apending;
	struct flush_job *flushing; /* store_flush_statcache's, until store_statcache_join */
	struct digest claimed;      /* the fingerprint we hold a claim on */
	int have_claim;
	int64_t claim_pid;
	int writable;         /* store_writable(): 0 not checked yet, 1 yes, -1 no */
	char *unwritable;     /* why not */
	struct strbuf config; /* the git config file's text, read once (store_setting) */
	int config_read;
	/* the user's and the system's git config files, read once
	 * (store_setting_user): global, XDG, system */
	struct strbuf user_config[3];
	int user_config_read;
	struct store_batch *batch; /* store_batch_begin(): runs saved but not yet published */
	struct index_ids *ids;     /* store_index_ids(): row ids by digest, for one transaction */
};

/* How long a statement waits for another process's write to the index:
 * long for what must be written (a run, gc), short for a claim, which
 * stands between the user and the command (store-claim.c). */
#define STORE_BUSY_MS 30000
int store_sqlfail(struct store *st, const char *what);
/* What every connection to an index sets (busy timeout, WAL kept, no
 * checkpoint on close, synchronous=NORMAL): an SQLite result code. */
int store_db_tune(sqlite3 *db);
/* Waits for a store_flush_statcache writing on its own thread; drop
 * then frees the entries not written (store_close). */
void store_statcache_join(struct store *st);
void store_statcache_drop(struct store *st);
int store_exec(struct store *st, const char *sql);
/* Ends the transaction open on st->db, if one still is, keeping the last
 * error: SQLite rolls back by itself after some failures (a full disk at
 * COMMIT), and a ROLLBACK then only says that no transaction is active. */
void store_rollback(struct store *st);
/* The same, waiting at most wait_ms for another process's write. */
int store_exec_within(struct store *st, const char *sql, int wait_ms);
/* Prepares once and caches in *s (reset and unbound on later calls). */
int store_prepare(struct store *st, sqlite3_stmt **s, const char *sql);
/* Git ids in the index are their 20 bytes: binds hex (NULL when it is
 * not 40 hex digits, as the empty parent of a first run), reads back hex
 * ("" for NULL). Hex order is byte order: ORDER BY hash is unchanged. */
void store_bind_oid(sqlite3_stmt *s, int i, const char *hex);
/* The newest indexed run of a command line: 1 (hex filled), 0 none, -1.
 * A line's first run has no refs/cashet/lines/ ref (its run ref is the
 * same commit): its second finds its parent here. */
int store_line_newest(struct store *st, const struct digest *line, char hex[OID_HEX]);
void store_column_oid(sqlite3_stmt *s, int i, char hex[OID_HEX]);
/* Fills the row fields of r from a runs SELECT of RUN_COLUMNS. */
#define RUN_COLUMNS                                                                                                    \
	"id, hash, parent, fp, line, name, argv, cwd, ok, exit_code, created, last_used, duration_ms, expires, timed_out"
/* The same and the observed inputs (what a lookup and a load need; a
 * listing does without). */
#define INPUTS_COLUMN                                                                                                  \
	"(SELECT data FROM inputsets WHERE id = runs.inputset), (SELECT data FROM inputsets WHERE id = runs.inputset_own)"
#define RUN_COLUMNS_INPUTS RUN_COLUMNS ", " INPUTS_COLUMN
void store_row_to_run(sqlite3_stmt *s, int col, struct run_record *r);
/* Loads r's files; without all, only streams and outputs (what a hit replays). */
int store_load_files(struct store *st, struct run_record *r, int all);
int store_index_run(struct store *st, const struct run_record *r);
/* The ids in inputsets of r's observed inputs' two parts (shared, own:
 * run_inputs_encode), each added if no run had the same; the caller holds
 * a transaction. */
int store_inputsets(struct store *st, const struct run_record *r, int64_t ids[2]);
/* runs.parts (varint ids of partvals rows) as ids; *ids freed by the caller. */
int store_parts_decode(const unsigned char *p, size_t len, int64_t **ids, size_t *n);
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
/* on: until called with 0, store_index_run remembers the ids of the
 * partvals and inputsets rows it finds or adds, instead of asking SQLite
 * for each (most runs share most of them). Only inside one transaction
 * that nothing else writes: a rollback or another writer voids the ids. */
void store_index_ids(struct store *st, int on);
/* A rebuild of the index from git (reindex, fsck): begin empties the runs
 * and what hangs off them in one new transaction, with store_index_ids on
 * and totals' triggers and the secondary indexes dropped (a row each in
 * totals per run inserted and per run deleted was an eighth of a
 * rebuild); end counts totals once, bumps the generation, builds the
 * indexes, puts the triggers back and commits (ok) or rolls everything
 * back. */
extern const char store_indexes[], store_triggers[];
int store_rebuild_begin(struct store *st);
int store_rebuild_end(struct store *st, int ok);
/* The index record of a run from what git holds: meta's text decoded,
 * the tree's oids and modes merged in (tree: as gitmod.load_run gives it),
 * small blobs inlined as store_save does, from the tree's files' data when
 * they have it, else read. r must be zeroed; the caller frees it. */
int store_record_from_git(struct store *st, const char *meta, const struct run_record *tree, struct run_record *r);

/* Finds oid in the store's packs as a whole blob entry (store-pack.c): 0
 * (*fd the open pack, *data where its zlib stream starts, *size, pack
 * the pack's file name), 1 not packed or a delta, -1 error. A copy known
 * to be damaged is passed over. With mapped_only, only the packs mapped
 * already are searched (1 when none holds it, or none is mapped yet). */
int store_pack_find(struct store *st, const char *oid, int mapped_only, int *fd, uint64_t *data, uint64_t *size,
		    char pack[PACK_NAME_MAX]);
/* A pack's copy of oid was read and its own bytes are bad: from now on
 * reads look for another copy, and writers do not count it as stored
 * (a re-run writes the object again, loose). Packs are never edited: gc
 * leaves the damaged copy behind. */
void store_pack_mark_bad(struct store *st, const char *oid, const char *pack);
/* Whether a damaged copy of oid was found. */
int store_pack_bad(struct store *st, const char *oid);
/* Sorts oids by where the packs hold them (pack, then offset), those in
 * no pack last: read in that order, each object of a delta chain comes
 * after its base, which libgit2's cache of delta bases still holds. */
void store_pack_order(struct store *st, struct strvec *oids);
void store_pack_unload(struct store *st);
/* Whether oid is in one of the store's packs, whatever its type, in a
 * copy not known to be damaged: 1 yes, 0 no. Without reload, only the
 * packs mapped (once) are looked at. */
int store_pack_has(struct store *st, const char *oid, int reload);

/* Copies a small blob into f->data for the index (zstd when it pays);
 * nothing for one over INLINE_MAX. */
void store_inline_data(struct run_file *f, const char *content, size_t len);

/* Writes r's blobs, tree, commit and refs as libgit2 would, without it
 * (store-odb.c): 0 saved (r->hash, r->parent, the oids and the inline
 * copies filled; each file's digest and size from the bytes read, then
 * meta encoded), 1 not a run this writer takes (a file of 1 MiB or more,
 * a path git would refuse: the git module's), -1 error. */
int store_odb_save(struct store *st, struct run_record *r);
/* Whether object hex is in the store, loose or in a copy of a pack not
 * known to be damaged. */
int store_odb_has(struct store *st, const char *hex);
/* Writes a loose copy of each blob of r that has no intact one: the
 * writers count a pack's copy as stored, and a read may have found it
 * damaged since (store_pack_mark_bad). */
int store_odb_heal(struct store *st, struct run_record *r);

/* Indexes every run that has a ref but no index row: the refs are the
 * truth, and an interrupted save, import or pull leaves such runs. A run
 * git cannot give back is pushed to unreadable, or, when that is NULL,
 * fails the whole (nothing indexed). *added counts the runs indexed. */
int store_index_missing(struct store *st, size_t *added, struct strvec *unreadable);

#endif
