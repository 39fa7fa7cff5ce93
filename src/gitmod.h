/* gitmod: the libgit2 half of the store, built as cashet-git.so and loaded
 * with dlopen() only by commands that write or walk git objects. Keeping
 * libgit2 out of the binary keeps a cache hit below ccache's start-up cost. */
#ifndef CASHET_GITMOD_H
#define CASHET_GITMOD_H

#include "store.h"

#define GITMOD_ABI 2

struct diff_hunk {
	int old_start, old_lines, new_start, new_lines; /* 1-based, as in unified diffs */
};

struct gitmod {
	int abi;
	/* Creates a bare repository at dir (no-op if one exists). */
	int (*init)(const char *dir);
	/* Writes the blobs of r (from each file's src), the tree (meta + streams +
	 * files), the commit (parent: current refs/cashet/lines/<line>), then
	 * refs/cashet/runs/<commit> and the line ref. Fills r->hash, r->parent
	 * and the oids. */
	int (*save_run)(const char *dir, struct run_record *r, const char *meta, size_t metalen);
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
	/* Deletes refs/cashet/runs/<hash>. */
	int (*delete_run)(const char *dir, const char *hash);
};

/* Loads the module once (next to the binary, then CASHET_LIBDIR, or
 * $CASHET_GIT_MODULE). Returns NULL with err_set on failure. */
const struct gitmod *gitmod_get(void);

/* The text of the tree's "meta" file: one "key value" line per field,
 * values escaped so a line is always one field. */
void meta_encode(const struct run_record *r, struct strbuf *out);
int meta_decode(const char *text, struct run_record *r);

#endif
