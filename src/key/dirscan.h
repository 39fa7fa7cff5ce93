/* dirscan: a directory input, walked in sorted order into the parts the
 * fingerprint hashes: an "input" per file, a "dir" per listing (so an added,
 * removed or renamed entry is seen), a "link" per dangling symlink. The walk
 * is checked against a snapshot of the last one (one stat-cache row per
 * tree: each file's path, stat signature and digest in walk order, as git's
 * index keeps its entries), so an unchanged tree of 50,000 files costs one
 * getdents per directory and one fstatat per file, no query per file. */
#ifndef CASHET_DIRSCAN_H
#define CASHET_DIRSCAN_H

#include "store/store.h"

/* Adds the parts of abspath (absolute, lexically normal) that is not a
 * regular file: a directory's whole tree, a dangling link's target text;
 * anything else is an error naming it. outputs are the declared outputs as
 * the store names them (fp_store_path), sorted: never inputs, like the
 * store itself. A changed tree's snapshot is written at the next
 * store_flush_statcache(). */
int dirscan_add(struct store *st, const struct strvec *outputs, struct run_record *r, const char *abspath);

/* Whether the store name is a declared output or below one. */
int dirscan_is_output(const struct strvec *outputs, const char *name);

#endif
