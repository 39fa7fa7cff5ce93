/* witness: a pipeline run's record that its steps were up to date, so the
 * next run can say so by stat alone, without parsing the file, computing a
 * fingerprint or opening the index per step (the no-op make does). Kept
 * next to the run log as pipelines/<digest>.witness and replaced
 * atomically at the end of each `pipeline run`. It holds: a key over
 * everything global the verdicts depend on (the file's bytes, this cashet,
 * the working directory, umask and user, the options, the store's config),
 * the index's epoch and generation (any run added or removed changes it),
 * and per step the run it replayed; then every question the verdicts asked
 * of the file system and the environment (util/fsrec.h), each once. Losing it costs one slow
 * run; a stale one is never believed: anything that differs falls back. */
#ifndef CASHET_WITNESS_H
#define CASHET_WITNESS_H

#include "store/store.h"
#include "util/hash.h"

/* The key of a run of the pipeline file at abs_file (absolute) with the
 * store at store_dir; options is what of the command line changes the
 * verdicts (targets, executor). Returns 0, or -1 (the file unreadable). */
int witness_key(const char *abs_file, const char *store_dir, const char *options, struct digest *out);

/* The witness being built by a run. */
struct witness_builder {
	struct strbuf steps; /* "S RUN EXPIRES NAME\n" lines */
	struct strvec lines; /* the distinct questions, in first-seen order */
	size_t *slot, cap;   /* index + 1 into lines, by hash */
	int broken;          /* a step could not be recorded: no witness */
};

/* Adds a step in the order the run reported it: its run and the questions
 * (util/fsrec.h lines) its verdict asked. */
void witness_add(struct witness_builder *b, const char *name, const char *run, int64_t expires_ms, const char *q,
		 size_t qlen);
/* Writes it atomically to path. 0, or -1 with err_msg(). */
int witness_write(const char *path, struct witness_builder *b, const struct digest *key, int64_t epoch, int64_t gen);
void witness_builder_free(struct witness_builder *b);

/* Whether the witness at path still holds: key, epoch and generation as
 * given, every step's run unexpired at now and every question answered as
 * recorded. 1 with the steps' names and runs appended to names and runs
 * (in order), 0 not (or none), never an error: a witness that cannot be
 * read is only a slower run. */
int witness_holds(const char *path, const struct digest *key, int64_t epoch, int64_t gen, int64_t now,
		  struct strvec *names, struct strvec *runs);

/* Where the witness of the pipeline file abs_file lives in the store. */
void witness_path(const char *store_dir, const char *abs_file, struct strbuf *out);

#endif
