/* explain: why a command would run instead of replaying: the fingerprint
 * parts compared with the newest run of the same command line. */
#ifndef CASHET_EXPLAIN_H
#define CASHET_EXPLAIN_H

#include "store.h"

struct explain {
	int hit;               /* 1: a run would be replayed */
	char hash[OID_HEX];    /* the run replayed, or the one compared against ("" if none) */
	int64_t created_ms;
	struct strvec reasons; /* one line each, e.g. "env LR changed: 0.1 -> 0.01" */
};

int explain_run(struct store *st, const struct run_record *cur, int cache_failures, int64_t now, struct explain *e);
void explain_free(struct explain *e);

#endif
