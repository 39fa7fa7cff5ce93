/* Internals of cashet-git.so: the open repository and the functions the
 * module table (module.c) points at, one file per concern. */
#ifndef CASHET_GITINT_H
#define CASHET_GITINT_H

#include <git2.h>

#include "gitmod.h"

/* The repository of the store being worked on, opened once per process. */
extern git_repository *repo;
extern char *repo_dir;
int open_repo(const char *dir);
/* err_set() with libgit2's last error. Returns -1. */
int git_fail(const char *what);

/* gitstore.c */
int gs_init(const char *dir);
int gs_save_run(const char *dir, struct run_record *r, const char *meta, size_t metalen);
int gs_read_blob(const char *dir, const char *oid, struct strbuf *out);
int gs_list_runs(const char *dir, struct strvec *out);
int gs_load_run(const char *dir, const char *hash, struct strbuf *meta, struct run_record *r);
int gs_delete_run(const char *dir, const char *hash);
int gs_diff_text(const char *a, size_t alen, const char *b, size_t blen, const char *label, int context,
		 struct diff_hunk **hunks, size_t *nhunks, struct strbuf *patch);

#endif
