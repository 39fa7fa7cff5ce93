/* runlog: what the last `pipeline run` of a dag.toml did, step by step
 * (hit, ran, failed; when each started and ended), kept in the store as
 * pipelines/<digest of the file's absolute path>. A replay stores no run,
 * so the store alone cannot say which steps the last run replayed: this
 * small file can, for `pipeline report`'s timeline. Replaced atomically
 * by each run; losing it loses only the timeline. */
#ifndef CASHET_RUNLOG_H
#define CASHET_RUNLOG_H

#include <stdint.h>

#include "util/util.h"

struct runlog_step {
	char *name;
	char state[16]; /* "hit", "ran", "failed", "skipped", "stopped" */
	int64_t start_ms, end_ms;
};

struct runlog {
	int64_t start_ms, end_ms;
	struct runlog_step *steps;
	size_t n;
};

/* The log's path for the pipeline file (absolute) in the store at dir. */
void runlog_path(const char *store_dir, const char *file, struct strbuf *out);
void runlog_add(struct runlog *l, const char *name, const char *state, int64_t start_ms, int64_t end_ms);
/* 0, or -1 with err_msg(). */
int runlog_write(const char *path, const struct runlog *l);
/* 1 read, 0 there is none, -1 malformed (err_msg() names the line). */
int runlog_read(const char *path, struct runlog *l);
void runlog_free(struct runlog *l);

#endif
