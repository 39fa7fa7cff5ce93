/* gitmod: the libgit2 half of the store, built as cashet-git.so and loaded
 * with dlopen() only by commands that write or walk git objects. Keeping
 * libgit2 out of the binary keeps a cache hit below ccache's start-up cost. */
#ifndef CASHET_GITMOD_H
#define CASHET_GITMOD_H

#include "store/store.h"

#define GITMOD_ABI 11

struct diff_hunk {
	int old_start, old_lines, new_start, new_lines; /* 1-based, as in unified diffs */
};

/* What an automatic pack did (see gitmod.autopack). */
struct autopack_report {
	int64_t loose_packed; /* loose objects moved into a new pack */
	int64_t packs_merged; /* packs merged into one */
};

/* fsck's object pass (gitmod.fsck) hands the store each run as it reads
 * it, in two steps. prep, on the reader thread that read it (so it must be
 * thread-safe; it may read blobs through the module): ok 1 with what
 * load_run gives (the meta text; parent and the tree's files in tree),
 * each blob of at most content_max bytes with its raw content in data
 * (enc 0; owned by tree); ok 0 when the commit, a tree or meta could not
 * be read (err_msg() says why). It returns what it made of the run. Then
 * fn, on the calling thread, in the order of the list: <0 stops the pass.
 * discard frees what prep made of a run fn never got (a stopped pass). */
typedef void *(*gitmod_fsck_prep)(void *ctx, const char *hash, int ok, const char *meta, struct run_record *tree);
typedef int (*gitmod_fsck_fn)(void *ctx, const char *hash, void *prepared);

struct gitmod_fsck {
	const struct strvec *runs; /* commit ids */
	size_t content_max;
	gitmod_fsck_prep prep;
	gitmod_fsck_fn fn;
	void (*discard)(void *ctx, void *prepared);
	void *ctx;
	int64_t objects, bad_objects; /* out: objects in the store, unreadable ones */
	struct strvec *problems;      /* out: "object <id>: why", one line per unreadable object */
};

struct early_pack;

struct gitmod {
	int abi;
	/* Creates a bare repository at dir (no-op if one exists). */
	int (*init)(const char *dir);
	/* Writes the blobs of r (from each file's src, whose digest and size
	 * are set from the bytes read: outputs are read once, by the writer),
	 * then meta (meta_encode), the tree (meta + streams + files), the commit (parent: current refs/cashet/lines/<line>, else
	 * r->parent as given: the line's newest indexed run, or empty), then
	 * refs/cashet/runs/<commit> and, once the line has two runs, the line
	 * ref. Fills r->hash, r->parent and the oids. signing_key (NULL: none): the commit is signed with it
	 * (trust.h), temporary files in tmpdir. blobs_saved (NULL: none) is
	 * called once every file has its oid, before meta: from then on this
	 * only reads r's files, and sets r->hash and r->parent. */
	int (*save_run)(const char *dir, struct run_record *r, const char *signing_key, const char *tmpdir,
			void (*blobs_saved)(void *ctx), void *ctx);
	/* A new pack of the files (each from its src), written while the
	 * command that writes them may still run (store.h's early_begin):
	 * begin plans it (NULL on failure); add
	 * packs the files from the next not packed yet, until every one is
	 * (1) or *stop is set (0), and may be called again, from another
	 * thread; end publishes what was added and frees it. Each file packed
	 * gets its early blob, the others none: a blob the store had already
	 * gets none, only this pack's being known to be there. end returns how
	 * many were packed (the pack's name in name when any), or -1. */
	struct early_pack *(*early_begin)(const char *dir, struct run_file **files, size_t n);
	int (*early_add)(struct early_pack *p, const int *stop);
	int (*early_end)(struct early_pack *p, char name[OID_HEX]);
	/* Appends a blob's content to out (for objects not stored loose). */
	int (*read_blob)(const char *dir, const char *oid, struct strbuf *out);
	/* Lists the commit ids under refs/cashet/runs/. */
	int (*list_runs)(const char *dir, struct strvec *out);
	/* Reads a run's meta text, parent and tree files (oid, mode, size). */
	int (*load_run)(const char *dir, const char *hash, struct strbuf *meta, struct run_record *r);
	/* Line diff of two texts (libgit2's xdiff) with `context` lines of
	 * context: hunks are appended to *hunks (caller frees), and, when patch
	 * is not NULL, a unified diff labelled a/ and b/ to patch. */
	int (*diff_text)(const char *a, size_t alen, const char *b, size_t blen, const char *label, int context,
			 struct diff_hunk **hunks, size_t *nhunks, struct strbuf *patch);
	/* The gpgsig header of commit hash (appended to sig, without its
	 * header name, one "\n"-ended line each) and the bytes it signs (the
	 * commit without that header, to data): 1 signed, 0 unsigned. */
	int (*commit_signature)(const char *dir, const char *hash, struct strbuf *sig, struct strbuf *data);
	/* Deletes refs/cashet/runs/<hash>. */
	int (*delete_run)(const char *dir, const char *hash);
	/* gc: one new pack with what the kept commits reach (keep_sorted: commit
	 * ids, sorted), every other object deleted, `shallow` listing kept
	 * commits whose parent is gone; line refs rewritten from lines
	 * ("<line hex> <commit>"). Caller holds the store's gc lock. */
	int (*repack)(const char *dir, const struct strvec *keep_sorted, const struct strvec *lines);
	/* The store's settings, in its git config as cashet.<key>: get (returns
	 * 1 if unset), set (set != NULL) or unset. */
	int (*config)(const char *dir, const char *key, const char *set, int unset, struct strbuf *value);
	/* fsck: reads back every object once (inflated, its SHA-1 checked):
	 * the runs' objects first, run by run, each run handed to fn as it is
	 * read, then every object no run reached. */
	int (*fsck)(const char *dir, struct gitmod_fsck *req);
	/* Git remotes as shared caches: op "add" (name, url), "remove" (name)
	 * or "list" ("name url" lines to list). */
	int (*remote_config)(const char *dir, const char *op, const char *name, const char *url, struct strvec *list);
	/* Pushes refs/cashet/runs/<hash> for each hash to the remote. */
	int (*push)(const char *dir, const char *remote, const struct strvec *hashes);
	/* Fetches the remote's refs/cashet/runs/ refs (and their objects). */
	int (*fetch)(const char *dir, const char *remote);
	/* Export and import (gitxfer.c). Streams to fd a pack of each run's
	 * commit, trees and blobs, never its parents; *bytes is its size. */
	int (*write_pack)(const char *dir, const struct strvec *hashes, int fd, uint64_t *bytes);
	/* Indexes the size bytes at offset of file into stage/pack (every
	 * object hashed, the trailer checked) and makes those objects readable
	 * by this process only, until publish_pack. */
	int (*stage_pack)(const char *dir, const char *file, uint64_t offset, uint64_t size, const char *stage);
	/* Checks that hash is a commit whose tree holds only blobs (regular,
	 * executable or symlink) and trees, under plain, unique names. */
	int (*check_run)(const char *dir, const char *hash);
	/* Moves the staged pack into objects/pack; appends each file it
	 * created to moved, so a failed import can delete them again. */
	int (*publish_pack)(const char *dir, const char *stage, struct strvec *moved);
	/* Creates ref name -> oid: 0 created, 1 it already existed (untouched). */
	int (*create_ref)(const char *dir, const char *name, const char *oid);
	/* Deletes a ref; a missing one is not an error. */
	int (*delete_ref)(const char *dir, const char *name);
	/* add: lists in the shallow file the commits of hashes whose parent is
	 * missing, so git treats them as roots, and appends them to changed;
	 * !add: takes hashes out of the shallow file again. */
	int (*shallow_update)(const char *dir, const struct strvec *hashes, int add, struct strvec *changed);
	/* git's `gc --auto`: the small loose objects into a new pack (then
	 * removed), packs merged geometrically, loose refs into packed-refs.
	 * Removes nothing that is not in a pack on disk; caller holds the
	 * store lock exclusively. */
	int (*autopack)(const char *dir, struct autopack_report *rep);
	/* Checks each pack's index against its checksums: the first damaged
	 * one is an error (E_CORRUPT) naming it, unless repair: then each is
	 * rebuilt from its pack, with a line in lines (an error only when its
	 * pack is damaged too). Caller holds the store lock exclusively. */
	int (*pack_indexes)(const char *dir, int repair, struct strvec *lines);
};

/* dlopen()s a module of cashet's (file, e.g. "cashet-serve.so"): $env if
 * set, else next to the binary, else in CASHET_LIBDIR. NULL on failure,
 * with the reasons appended to errs. */
void *module_open(const char *file, const char *env, struct strbuf *errs);

/* Loads the module once (next to the binary, then CASHET_LIBDIR, or
 * $CASHET_GIT_MODULE). Returns NULL with err_set on failure. */
const struct gitmod *gitmod_get(void);

/* The text of the tree's "meta" file: one "key value" line per field,
 * values escaped so a line is always one field; the first line starts
 * with META_MAGIC (the pack writer deltifies runs' metas by it). */
#define META_MAGIC "cashet-run "
void meta_encode(const struct run_record *r, struct strbuf *out);
int meta_decode(const char *text, struct run_record *r);

#endif
