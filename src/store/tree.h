/* tree: the git trees of a run's files, written bottom-up as libgit2
 * would write them (the same bytes, so the same ids), through whichever
 * writer the caller has: loose objects (store-odb.c) or a pack (the git
 * module's runs of many files). */
#ifndef CASHET_TREE_H
#define CASHET_TREE_H

#include <stddef.h>

enum { TREE_OID_RAW = 20 };

struct tree_entry {
	const char *path; /* relative, '/'-separated */
	unsigned mode;    /* git's: 100644, 100755, 120000 */
	unsigned char oid[TREE_OID_RAW];
};

/* Sorts e in git's tree order; 1 when git could not take them into trees
 * (an empty, ".", ".." or ".git" part; one name twice; a file where a
 * directory is), else 0. */
int tree_sort_check(struct tree_entry *e, size_t n);

/* The entry of path among the sorted entries, or NULL. */
struct tree_entry *tree_find(struct tree_entry *e, size_t n, const char *path);

/* How many trees the sorted entries make (the root's included). */
size_t tree_count(const struct tree_entry *e, size_t n);

/* Writes one object (type "tree") of len bytes, setting its id: 0 or -1. */
typedef int (*tree_put_fn)(void *ctx, const void *data, size_t len, unsigned char oid[TREE_OID_RAW]);

/* Writes the trees of the sorted entries through put, the root's last;
 * its id in oid. 0 or -1 (put's error). */
int tree_write(const struct tree_entry *e, size_t n, tree_put_fn put, void *ctx, unsigned char oid[TREE_OID_RAW]);

#endif
