/* outputs: declared output files of a run: collecting them after a run and
 * restoring them on a hit (temp file + digest check + rename, the run's
 * permission bits kept). */
#ifndef CASHET_OUTPUTS_H
#define CASHET_OUTPUTS_H

#include "store/store.h"

/* Adds every file under each declared output (files, directories,
 * symlinks; relative to cwd) to r with its digest, mode and size, and
 * every directory (FILE_DIR) of a declared directory. Missing
 * outputs are an error, unless missing_ok (a failed run: what it left). */
int outputs_collect(struct store *st, const char *cwd, const struct strvec *declared, int missing_ok,
		    struct run_record *r);
/* The same on a thread of its own, for a caller with other work meanwhile
 * (the engine reads the trace and hashes the inputs): the walk fills a
 * record of its own, which outputs_collect_finish waits for and adds to
 * r. cwd and declared must outlive the job. Without threaded, or where
 * no thread starts, the walk is made by finish. */
struct outputs_job;
struct outputs_job *outputs_collect_start(struct store *st, const char *cwd, const struct strvec *declared,
					  int missing_ok, int threaded);
/* As outputs_collect; frees job. r NULL: what it found is not wanted. */
int outputs_collect_finish(struct outputs_job *job, struct run_record *r);
/* Adds a copy of each canonicalized source inside the project (parts
 * script/source/dep) as "sources/<path>", so `why` can say which lines changed. */
int outputs_add_sources(struct store *st, struct run_record *r);
/* 1 if the directory name in dirfd (abs, its absolute path) is a store:
 * this one, or another project's (.cashet holding a HEAD) under a declared
 * directory. Never an output: a replay would lay old copies of its index
 * and refs over the live ones. */
int outputs_is_store(const struct store *st, int dirfd, const char *name, const char *abs);
/* Restores r's output files and directories; unchanged files are left
 * alone. Every changed file is staged (written beside its place and
 * checked) before any is renamed into place; on a failure the staged ones
 * are removed and -1 returned. Only after that, whatever r's directories
 * hold that r did not have is removed, links never followed. */
int outputs_restore(struct store *st, const struct run_record *r);
/* Local path of a stored output path ("files/x" -> root/x, "abs/p" -> /p). */
void outputs_local_path(const struct store *st, const char *stored, struct strbuf *out);

#endif
