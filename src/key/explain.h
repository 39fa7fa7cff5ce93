/* explain: why a command would run instead of replaying: the fingerprint
 * parts compared with the newest run of the same command line. */
#ifndef CASHET_EXPLAIN_H
#define CASHET_EXPLAIN_H

#include "store/store.h"

struct explain {
	int hit;            /* 1: a run would be replayed */
	char hash[OID_HEX]; /* the run replayed, or the one compared against ("" if none) */
	int64_t created_ms;
	struct strvec reasons; /* one line each, e.g. "env LR changed: 0.1 -> 0.01" */
};

/* Whether cur would be replayed and, if not, why; its observed inputs are
 * checked against env, the environment the command would get. */
int explain_run(struct store *st, const struct run_record *cur, char *const *env, int cache_failures, int64_t now,
		struct explain *e);
void explain_free(struct explain *e);

/* One difference between two runs' fingerprint parts, matched by (kind,
 * name): old NULL means added, cur NULL removed, both: the hash changed. */
struct part_change {
	const struct run_part *old, *cur;
};
/* The parts that differ: cur's order first, then the parts only old has.
 * Returns how many; *out (caller frees) points into old and cur. */
size_t explain_part_changes(const struct run_record *old, const struct run_record *cur, struct part_change **out);
/* One sentence per differing part ("env LR changed: 0.1 -> 0.01"), appended
 * to out. A changed source is compared with cur's stored copy when cur has
 * one (two stored runs), else with the file on disk (a command about to run). */
void explain_diff_parts(struct store *st, const struct run_record *old, const struct run_record *cur,
			struct strvec *out);

/* One difference between two runs' observed inputs, matched by path: old
 * NULL means added, cur NULL removed, both: its kind or digest changed. */
struct input_change {
	const struct run_input *old, *cur;
};
/* The observed inputs that differ, in path order (both lists are sorted
 * by path), but for those a fingerprint part of either run names (a -i
 * file, a script, the executable, an -e variable): their changes are the
 * parts'. Returns how many; *out (caller frees) points into old and cur. */
size_t explain_input_changes(const struct run_record *old, const struct run_record *cur, struct input_change **out);
/* One sentence per differing observed input ("data.csv, read by the
 * command, changed"), the first max of them, then "and N more observed
 * inputs"; appended to out. */
void explain_diff_inputs(const struct run_record *old, const struct run_record *cur, size_t max, struct strvec *out);

#endif
