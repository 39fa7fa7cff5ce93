/* store: the .cashet directory: a bare git object database that holds every
 * run completely (commit -> tree of meta, stdout, stderr, files/...), and a
 * SQLite index (index.db) that answers "is there a run for this fingerprint"
 * without loading libgit2. The index is derived: store_reindex() rebuilds it
 * from the refs under refs/cashet/runs/. This is the only module that touches either. */
#ifndef CASHET_STORE_H
#define CASHET_STORE_H

#include <stdint.h>
#include <sys/stat.h>

#include "util/hash.h"
#include "util/util.h"

#define STORE_DIRNAME ".cashet"
#define OID_HEX 41
#define OID_RAW 20 /* a git object id's bytes */

struct store;

/* Streams and outputs are replayed; sources (a copy of each script the
 * fingerprint canonicalized) only serve `why` and `diff`. A directory of a
 * declared output directory (FILE_DIR: mode 040000, no blob) is a "dir"
 * line of meta, not a tree entry: git trees hold no empty directory, and
 * older versions skip the line. FILE_STREAMS ("streams") says in which
 * order stdout's and stderr's bytes came, so a replay interleaves them as
 * the run did: one line per chunk, "o LEN" or "e LEN", consecutive bytes
 * of one stream one chunk; bytes past the last chunk follow, stdout's
 * first. Kept only when both streams have bytes. */
enum file_kind { FILE_STDOUT = 0, FILE_STDERR = 1, FILE_OUTPUT = 2, FILE_SOURCE = 3, FILE_DIR = 4, FILE_STREAMS = 5 };

/* An output's blob packed while the command still ran (exec/early.c) and
 * found to be what the file holds once the command had exited (read again,
 * its size and XXH3 digest the same): the save takes it without reading
 * the file. */
struct early_blob {
	int set;
	unsigned char id[OID_RAW]; /* the git blob id */
	struct digest xxh;
	uint64_t size;
};

/* One blob of a run: a captured stream or an output file. */
struct run_file {
	int kind;
	char *path; /* "stdout", "stderr", "streams", "files/<root-rel>" or "abs/<path>" (outputs), "sources/<root-rel>" */
	unsigned mode; /* git mode: 0100644, 0100755 or 0120000 */
	int perm; /* permission bits the run produced (0..0777), -1 unknown (a run from before they were kept: the git mode decides) */
	char oid[OID_HEX]; /* git blob id, filled when saved */
	struct digest xxh; /* content digest, checked on every replay */
	uint64_t size;
	char *src;           /* while saving: the local file holding the content */
	struct strbuf held;  /* while saving, src NULL: the content, kept in memory (a small stream) */
	unsigned char *data; /* inline copy from the index (maybe zstd), or NULL */
	size_t datalen;
	int enc; /* 0: data is raw, 1: zstd */
	struct early_blob early;
	struct file_sig seen; /* while saving, an output file: as the outputs' walk found it */
};

/* One ingredient of a fingerprint, kept so `show` and `why` can name it. */
struct run_part {
	char *kind; /* argv, cwd, exe, file, input, dir, glob, env, stdin, output */
	char *name;
	struct digest hash;
	char *detail; /* a short human value (an env var's value), or NULL */
};

/* An input the command was observed to depend on (see key/observed.h):
 * checked on every lookup, so a run is replayed only while each is as it
 * was. The stat signature lets an unchanged file pass with one stat(); all
 * zero means "compare the content" (the file was written too recently for
 * its timestamps to be trusted, as git's racy-clean entries). */
enum run_input_kind {
	INPUT_FILE = 'f',        /* a file read or executed: its content */
	INPUT_SOURCE = 's',      /* a Python or shell source read: its canonical form */
	INPUT_SOURCE_DOCS = 'S', /* an older store's source, docstrings kept: read as INPUT_SOURCE */
	INPUT_ABSENT = 'a',      /* looked for and not there: must still not exist */
	INPUT_LISTED = 'l',      /* a directory listed: its entry names */
	INPUT_DIR = 'd',         /* a directory looked at: must still be one */
	INPUT_ENV = 'e',         /* "$NAME": a variable a project source read names: its value */
	INPUT_LINK = 'k',        /* a symbolic link looked at or through: its target, as text */
};
struct run_input {
	char *path; /* root-relative inside the project, else absolute */
	char kind;  /* enum run_input_kind */
	struct digest d;
	int64_t size, mtime_ns, ctime_ns;
	uint64_t ino;
};
/* How a run's inputs were observed. */
enum run_observed {
	OBSERVED_NONE = 0,   /* not traced (--trace=off): the declared key is all */
	OBSERVED_TRACED = 1, /* traced: inputs hold every file it depended on */
	OBSERVED_BLIND = 2,  /* tracing was impossible here: the declared key, as with off */
	OBSERVED_BROKEN = 3, /* the index's copy cannot be read: never replayed (fsck rebuilds it) */
};

struct run_record {
	int64_t id;           /* index row id, 0 when not indexed */
	char hash[OID_HEX];   /* git commit id: the run's name for users */
	char parent[OID_HEX]; /* previous run of the same command line, "" if none */
	struct digest fp;     /* the fingerprint */
	struct digest line;   /* command-line key: argv + cwd (lineage) */
	char *name;
	struct strvec argv;
	char *cwd; /* root-relative ("." for the root), or absolute when outside */
	int ok;    /* exit status 0 and not timed out */
	int exit_code;
	int timed_out;                                             /* stopped by --timeout (exit_code 124) */
	int64_t created_ms, last_used_ms, duration_ms, expires_ms; /* expires 0: never */
	struct strvec tags;                                        /* "key=value" or "key" */
	/* "key=value": the values read from its --metrics files (nested keys
	 * flattened, "train.loss"), kept in meta and the index so that tables
	 * of many runs read no blob; never part of the key */
	struct strvec metrics;
	struct run_part *parts;
	size_t nparts;
	struct run_file *files;
	size_t nfiles;
	int observed;         /* enum run_observed */
	int inputs_refreshed; /* a lookup found new signatures for unchanged inputs */
	struct run_input *inputs;
	size_t ninputs;
};

void run_record_free(struct run_record *r);
struct run_part *run_add_part(struct run_record *r, const char *kind, const char *name, const struct digest *h);
/* Drops the parts past the first n. */
void run_truncate_parts(struct run_record *r, size_t n);
struct run_file *run_add_file(struct run_record *r, int kind, const char *path);
struct run_input *run_add_input(struct run_record *r, char kind, const char *path);
/* For people: "read", "source", "absent", "listed", "dir"; "none",
 * "traced", "blind", "broken". */
const char *run_input_kind_name(char kind);
const char *run_observed_name(int observed);
/* The inputs in the index's compact form (and back): what the lookup reads
 * for every candidate, so it is binary and parsed without copies. A list
 * is kept as two parts: what lies outside the project (absolute paths:
 * the C library, locales, the interpreter and its modules), which most
 * runs share, and the project's own paths, which tell steps apart. */
void run_inputs_encode(const struct run_record *r, struct strbuf *shared, struct strbuf *own);
/* both parts into r's inputs, in path order */
int run_inputs_decode(const void *shared, size_t slen, const void *own, size_t olen, struct run_record *r);
/* Command line for humans: argv joined, shell-quoted where needed. Caller frees. */
char *run_cmdline(const struct run_record *r);
char *run_argv_cmdline(const struct strvec *argv);
/* Adds the "argv" part of r's fingerprint: r->argv hashed, named by its
 * command line. The fingerprint and the index (which keeps no copy of
 * it: runs.argv holds what it is made of) both call this one function. */
struct run_part *run_add_argv_part(struct run_record *r);
void run_argv_digest(const struct strvec *argv, struct digest *d);

/* Finds the store: explicit (--store) first, then $CASHET_DIR, then walking up
 * from the working directory looking for .cashet. Fills dir with an absolute path.
 * Returns 0 found, 1 not found (dir holds where one would be created), <0 error. */
int store_find(const char *explicit_dir, struct strbuf *dir);
/* The same, walking up from the absolute directory from (NULL: the working directory). */
int store_find_from(const char *explicit_dir, const char *from, struct strbuf *dir);

/* Where the store's warnings go (a damaged index moved aside and rebuilt):
 * one line without the "cashet: " prefix. Process-wide; unset, they are dropped. */
void store_on_warning(void (*fn)(void *ctx, const char *msg), void *ctx);

enum { STORE_CREATE = 1, STORE_ANY_CONFIG = 2 };
/* Opens the store at dir (as found by store_find). With STORE_CREATE a missing
 * store is created (git init + schema); *created says so. A setting of
 * the store's config with a bad value fails the open (store_config_check),
 * unless STORE_ANY_CONFIG (`cashet config`, which mends it). Caller closes. */
int store_open(const char *dir, int flags, struct store **out, int *created);
void store_close(struct store *st);
const char *store_dir(const struct store *st);
const char *store_root(const struct store *st);
/* Makes st, a private store (a Slurm job's, on the node), key runs as the
 * store at origin (absolute) does: the project root is origin's parent,
 * and origin is the store no input includes. A run made here then has
 * the key and the paths a run made in origin would have, and an archive
 * of it imports there as if it had. */
void store_stand_in(struct store *st, const char *origin);
/* The store directory keys know: the origin of a stand-in, else store_dir. */
const char *store_key_dir(const struct store *st);
/* 1 if abs (absolute, folded) is the store's directory or inside it, or
 * the one it stands in for: never an input, never an output, never
 * written by a replay. */
int store_holds(const struct store *st, const char *abs);
/* A store setting (`cashet config KEY`, kept as cashet.KEY in the store's
 * git config), read from the config file itself: the hit path never loads
 * libgit2. Only what git and libgit2 write is understood: "[section]"
 * lines and "key = value" (quoted or not); the last value wins. Returns 1
 * (value filled), 0 not set. */
int store_setting(struct store *st, const char *key, struct strbuf *value);
/* The same, then, where the store does not set it, the user's and the
 * system's git config (~/.gitconfig, $XDG_CONFIG_HOME/git/config,
 * /etc/gitconfig), as libgit2 reads cashet.KEY: for settings a user may
 * keep for every store (remote, max-size). */
int store_setting_user(struct store *st, const char *key, struct strbuf *value);
/* Any section.key of the store's git config file ("core",
 * "fsyncobjectfiles"), read as store_setting reads: 1 found, 0 not. */
int store_config_get(struct store *st, const char *section, const char *key, struct strbuf *value);
/* Whether value is one the setting key takes (max-size, stdin-limit,
 * auto-pack, remote-mode, trace, auto-outputs: the others are checked
 * where they are used): 0, or -1 with err_set("KEY: expected ..."). */
int store_setting_valid(const char *key, const char *value);
/* Every setting of the store's config (key NULL), or key's, against
 * store_setting_valid: 0, or -1 naming the first bad one as
 * "<dir>/config:<line>: KEY: expected ...". */
int store_config_check(struct store *st, const char *key);
/* The most `config auto-pack` takes. */
#define AUTOPACK_MAX 2147483647
/* A git config boolean that is true ("true", "yes", "on", "1", or a key
 * without a value). */
int store_config_bool(const char *v);
/* The trust settings (store-trust.c). The SSH key runs are signed with:
 * $CASHET_SIGNING_KEY, else `signing-key`; 1 set (key filled), 0 not. */
int store_signing_key(struct store *st, struct strbuf *key);
/* The allowed-signers file runs from elsewhere must be signed by:
 * $CASHET_ALLOWED_SIGNERS, else `trust.allowed-signers`; 1 set, 0 not (no
 * policy: every run is accepted, as before). */
int store_allowed_signers(struct store *st, struct strbuf *path);
/* Who signed run hash (a struct trust_verdict, trust.h), checked against
 * the allowed signers if set. Loads the git module. 0, or <0 (err_set). */
struct trust_verdict;
int store_signer(struct store *st, const char *hash, struct trust_verdict *v);
/* The policy for a run that arrives from elsewhere (import, pull, a Redis
 * or HTTP remote, serve's PUT /archive): 0 if there is no policy or an
 * allowed signer signed it, else <0 with E_UNTRUSTED and a message naming
 * its signer ("run 1a2b3c4d5e6f is unsigned"). */
int store_check_trust(struct store *st, const char *hash);

/* "tmp" directory inside the store for captures and spools. */
const char *store_tmpdir(struct store *st);

/* 1 if runs can be stored here (index.db, the object database and tmp/
 * accept writes), 0 if not, with err_msg() saying why (a read-only file
 * system, another user's store). Checked once per open store. */
int store_writable(struct store *st);

/* Removes captures and import staging left in tmp/ by processes that died (kill -9). */
void store_sweep_tmp(struct store *st);

/* Digest of a regular file's content, using the stat cache (path, size,
 * mtime, ctime, inode) so unchanged files are not read again. */
int store_file_digest(struct store *st, const char *abspath, const struct stat *sb, struct digest *out);
/* One read transaction around many lookups (a fingerprint): 1 if this call
 * began it (end it with store_read_end), 0 if one was open or none could
 * be. */
int store_read_begin(struct store *st);
void store_read_end(struct store *st, int began);
/* The same cache for derived digests (kind > 0, e.g. a script's canonical
 * form), with what the file depends on (deps, opaque bytes). get: 1 found
 * (out and deps filled), 0 not cached, <0 error. put: recorded at flush. */
int store_cache_get(struct store *st, const char *abspath, int kind, const struct stat *sb, struct digest *out,
		    struct strbuf *deps);
void store_cache_put(struct store *st, const char *abspath, int kind, const struct stat *sb, const struct digest *d,
		     const void *deps, size_t depslen);
/* Files changed within the timestamp granularity of their last write
 * could change again without a visible stat change ("racy git"): only
 * files quiet for so long (as of now, in ns) are taken on a stat's word. */
#define STORE_CACHE_QUIET_NS 2000000000LL
int store_cache_quiet(const struct stat *sb, int64_t now);
/* The same cache (kind 0) read on another thread, through a connection of
 * its own, opened there at the first get: 1 found, 0 not cached or the
 * index unreadable. */
struct cache_reader;
struct cache_reader *store_cache_reader_new(struct store *st);
int store_cache_reader_get(struct cache_reader *r, const char *abspath, const struct stat *sb, struct digest *out);
void store_cache_reader_free(struct cache_reader *r);
/* A directory tree's snapshot (key/dirscan.c): opaque bytes under the
 * directory's absolute path, checked against their digest and replaced
 * whole. get: 1 found (snap filled), 0 none or damaged, <0 error. put:
 * written at store_flush_statcache(). */
int store_tree_get(struct store *st, const char *absdir, struct strbuf *snap);
void store_tree_put(struct store *st, const char *absdir, const struct strbuf *snap);
/* Writes pending stat-cache entries (one transaction), unless another
 * process is writing the index: then they wait for the next call. Many
 * are written on a thread of their own, joined by store_save before its
 * transaction and by store_close (those are dropped if another process
 * is writing). */
int store_flush_statcache(struct store *st);

/* The run a hit would replay for fp: the newest completed run, not
 * expired, that accept() takes (NULL: any). Each candidate is offered with
 * its row and inputs (not its files); accept returns 1 to take it, 0 to
 * try the next (older) one, <0 to fail. An accepted run whose inputs
 * accept marked refreshed (new stat signatures for unchanged content) has
 * them written back to the index, so the next lookup needs no hashing. With allow_failed, failed runs
 * count too. With min_created > 0, only runs created at or after it.
 * Returns 1 found (r filled, files too), 0 none, <0 error. */
struct store_lookup_opts {
	int allow_failed;
	int64_t min_created, now;
	int (*accept)(void *ctx, struct run_record *r);
	void *ctx;
};
int store_lookup(struct store *st, const struct digest *fp, const struct store_lookup_opts *o, struct run_record *r);
/* The observed inputs of the newest run of fp (r->inputs, r->observed),
 * whatever its status: what a new run of the same key most likely read
 * again. 1 found, 0 none, <0 error. */
int store_newest_inputs(struct store *st, const struct digest *fp, struct run_record *r);
/* Newest run of a command line (any status), for explain/history. */
int store_latest_of_line(struct store *st, const struct digest *line, struct run_record *r);
/* Newest run of the same arguments in any directory (any status), for
 * explain to name the directory a command line last ran in. */
int store_latest_of_argv(struct store *st, const struct strvec *argv, struct run_record *r);
/* Loads a run fully (parts, tags, files) by full commit id. 1 found, 0 not. */
int store_load(struct store *st, const char *hash, struct run_record *r);
/* Resolves a hash prefix (>= 4 hex digits) to one run; errors name the candidates. */
int store_resolve(struct store *st, const char *prefix, char hash[OID_HEX]);
/* Marks the run used now (coarse: at most once a minute per run). */
int store_touch(struct store *st, const struct run_record *r, int64_t now);
/* store_touch for runs known by their hashes, in one transaction (what a
 * pipeline replayed without loading them). 0 or -1. */
int store_touch_runs(struct store *st, const struct strvec *hashes, int64_t now);
/* Which index this is (a rebuilt one is another) and how many times its
 * runs changed, a touch aside: equal pairs, equal answers to every lookup. */
int store_generation(struct store *st, int64_t *epoch, int64_t *gen);

/* Stores a finished run: blobs, tree, commit and refs through libgit2, then
 * the index row, in that order, so an index row always names a complete
 * commit. Fills r->hash, r->parent and each file's oid. The claim on r->fp,
 * if held, is released in the same index transaction. */
int store_save(struct store *st, struct run_record *r);
/* A new pack of files (each from its src) written while the command that
 * writes them runs (exec/early.c; gitmod.h's early_begin, early_add,
 * early_end): begin (NULL on failure), add until every file is
 * packed (1) or *stop is set (0; on any thread, one at a time), end: how
 * many were packed (the pack's name in name), or -1. The caller holds the
 * store lock meanwhile. store_has_pack: whether pack-<name> is still there
 * (gc may have removed it since: it held no run's object). */
struct early_pack;
struct early_pack *store_early_begin(struct store *st, struct run_file **files, size_t n);
int store_early_add(struct early_pack *p, const int *stop);
int store_early_end(struct early_pack *p, char name[OID_HEX]);
int store_has_pack(struct store *st, const char *name);

/* Batches (a pipeline's workers): after store_batch_begin, store_save
 * writes a run of small files into one pack shared by the batch and keeps
 * its refs and index row; store_batch_flush publishes them all (pack, then
 * refs, then one index transaction that also drops their claims), so a run
 * costs no file of its own and a process killed mid-batch leaves the store
 * as it was, its claims to be taken over. Runs holding a file of 1 MiB or
 * more are stored at once, as without a batch. store_close drops what was
 * not flushed. store_batch_has: whether fp is pending (flush before
 * looking it up: the claim on it is this process's own). */
int store_batch_begin(struct store *st);
int store_batch_flush(struct store *st);
void store_batch_abort(struct store *st);
size_t store_batch_runs(const struct store *st);
int store_batch_has(const struct store *st, const struct digest *fp);
/* Streams a blob's content to fd (or appends to sb when fd < 0), verifying its digest. */
int store_blob_to_fd(struct store *st, const struct run_file *f, int fd);
int store_blob_read(struct store *st, const struct run_file *f, struct strbuf *sb);
/* Checking a blob completely before writing a byte of it, in bounded
 * memory: a large object (over 8 MiB), loose or a whole pack entry, is
 * verified as it inflates and held open (held->fd, -1 otherwise), and
 * store_blob_send() then inflates it again from that same open file (git
 * objects never change in place) to fd. Any other blob is appended to
 * mem, verified: it is small, or a delta, which libgit2 reads whole.
 * store_blob_release() closes what is held. */
#define PACK_NAME_MAX 64
struct blob_hold {
	int fd;
	uint64_t offset; /* where its zlib stream starts */
	uint64_t size;   /* a pack entry's size */
	int packed;
	char pack[PACK_NAME_MAX]; /* the pack's file name, when packed */
};
int store_blob_check(struct store *st, const struct run_file *f, struct strbuf *mem, struct blob_hold *held);
int store_blob_send(struct store *st, const struct run_file *f, const struct blob_hold *held, int fd);
void store_blob_release(struct blob_hold *held);

int store_remove(struct store *st, const char *hash);
/* Removes runs (index rows and run refs) in one transaction. */
int store_remove_many(struct store *st, const struct strvec *hashes);

/* The store lock: held shared while a run is saved (and while an early
 * pack is written, and from the check of the early packs to the save),
 * exclusive by gc, so gc never deletes objects of a run being stored. mode: STORE_LOCK_SHARED or STORE_LOCK_EXCLUSIVE, or
 * either with STORE_LOCK_NOWAIT (-1 at once, E_BUSY, when held the other
 * way). Returns an fd for store_unlock(), or -1. */
enum { STORE_LOCK_SHARED = 0, STORE_LOCK_EXCLUSIVE = 1, STORE_LOCK_NOWAIT = 2 };
int store_lock(struct store *st, int mode);
void store_unlock(int fd);

struct gc_opts {
	int64_t older_than_ms; /* evict runs not used for this long (0: no limit) */
	uint64_t max_size;     /* keep the most recently used runs up to this many bytes (0: no limit) */
	int all;               /* evict everything (clear) */
	int dry_run;
	/* 1 if a live process holds a claim on fp: such runs are never evicted */
	int (*busy)(struct store *st, const struct digest *fp);
};
struct gc_report {
	int64_t expired, evicted, kept, busy, bytes_before, bytes_after;
	int64_t reindexed; /* runs that had a ref but no index row */
};
/* Indexes the runs that have a ref but no index row, evicts expired runs,
 * then by age and size (least recently used first), then repacks so only
 * what kept runs reach stays on disk. A run ref that git cannot read
 * stops it before anything is removed. */
int store_gc(struct store *st, const struct gc_opts *o, struct gc_report *rep);
/* git's `gc --auto`, after a run is stored: when the store holds more
 * small loose objects than `config auto-pack` (default AUTOPACK_DEFAULT,
 * 0: never), or more than 50 packs, the loose ones go into a pack, packs are merged geometrically and loose
 * refs go into packed-refs. Skipped (0) when another process stores or
 * collects, unless wait (then it waits for them; never while a batch of
 * st's own is open). *packed says whether it ran. */
#define AUTOPACK_DEFAULT 2048
int store_autopack(struct store *st, int wait, int *packed);
/* Git remotes: push the given runs' refs; pull fetches the remote's runs
 * and indexes every run that has a ref but no index row. */
/* Runs that cannot be pushed because gc cut their lineage are left out,
 * with a line each in skipped. */
int store_push(struct store *st, const char *remote, const struct strvec *hashes, struct strvec *skipped);
/* Runs fetched that import would refuse (outputs outside the project, an
 * unexpected tree) are not taken: their refs are removed again, with a
 * line each in refused. */
int store_pull(struct store *st, const char *remote, size_t *added, struct strvec *refused);

struct fsck_report {
	int64_t objects, bad_objects, runs, index_fixed, pruned;
	struct strvec problems; /* one line each */
	struct strvec bad_runs; /* runs git cannot give back whole */
};
/* Verifies every object and run against git, rebuilds the index from git,
 * and with prune removes the runs that cannot be repaired. */
int store_fsck(struct store *st, int prune, struct fsck_report *rep);
void fsck_report_free(struct fsck_report *rep);
/* Sum of the sizes of all runs' blobs (kept up to date by the index). */
int store_total_bytes(struct store *st, int64_t *bytes);
/* Rebuilds the index from the run refs. A run that cannot be read is
 * skipped, with a line for it in skipped (may be NULL). */
int store_reindex(struct store *st, size_t *count, struct strvec *skipped);

/* Listing for `log`: newest first. */
struct log_filter {
	int limit; /* <= 0: no limit */
	const char *name;
	const char *cmd_substr;
	const char *status; /* "ok", "failed" or NULL */
	struct strvec tags; /* "k=v" or "k", AND-ed */
	int rows_only;      /* each run's row only: no files, parts, tags (push needs its hash) */
};
typedef int (*store_run_cb)(const struct run_record *r, void *ctx);
int store_list(struct store *st, const struct log_filter *f, store_run_cb cb, void *ctx);
/* Every run of a command line (same line key: argv + cwd), any status,
 * oldest first, each loaded fully (parts, files), for `history`. */
int store_line_history(struct store *st, const struct digest *line, store_run_cb cb, void *ctx);

struct store_stats {
	int64_t runs, ok, failed, objects, object_bytes, index_bytes, stored_bytes;
};
int store_stats(struct store *st, struct store_stats *s);

/* Claims: at most one process runs a fingerprint at a time (see claim.h). */
struct claim_owner {
	int64_t pid;
	char host[256];
	int64_t start;     /* process start time (clock ticks since boot), guards pid reuse */
	int64_t heartbeat; /* ms */
};
/* Inserts our claim if none is held, or replaces one for which stale(owner)
 * returns true. Returns 0 claimed, 1 held by another (owner filled), <0 error. */
int store_claim(struct store *st, const struct digest *fp, const struct claim_owner *me,
		int (*stale)(const struct claim_owner *o), struct claim_owner *owner);
int store_claim_heartbeat(struct store *st, const struct digest *fp, const struct claim_owner *me, int64_t now);
int store_claim_release(struct store *st, const struct digest *fp, const struct claim_owner *me);
/* 1 if a claim is held on fp (owner filled), 0 if not. */
int store_claim_get(struct store *st, const struct digest *fp, struct claim_owner *owner);

/* Archives (store-xfer.c). Export writes hashes (full commit ids) to file
 * atomically; *size is the archive's size. Import checks every run of file
 * before adding any, skips the runs the store has, and refuses outputs
 * outside the project ("abs/") unless allow_abs; on error nothing is added. */
int store_export(struct store *st, const struct strvec *hashes, const char *file, uint64_t *size);
int store_import(struct store *st, const char *file, int allow_abs, size_t *imported, size_t *present);

#endif
