/* observed: the second level of the key. The declared key (fp.c) selects
 * candidate runs; each candidate carries the inputs its run was observed to
 * depend on (trace/), and a candidate is replayed only if every one of them
 * is as it was: the same content, still absent, the same directory
 * listing. This is what ccache's direct mode does with a manifest of
 * headers, for any command.
 *
 * What counts as an input: every path the process tree read, executed,
 * listed or looked for, except what the tree itself wrote or removed (a
 * temp file, __pycache__), the declared outputs, the store, kernel
 * interfaces (/proc, /sys, /dev but /dev/shm) and what the user ignores (--ignore,
 * `config ignore`). */
#ifndef CASHET_OBSERVED_H
#define CASHET_OBSERVED_H

#include "store/store.h"
#include "trace/trace.h"

/* Ignored unless the user says otherwise: caches a tool keeps for itself
 * next to sources it also reads (a .pyc is checked by Python against its
 * source, which is an input). */
extern const char *const obs_default_ignore[];

struct obs_spec {
	const char *cwd;              /* absolute: where the command ran */
	char *const *env;             /* its environment */
	const struct strvec *outputs; /* declared outputs, as given (relative to cwd) */
	const struct strvec *ignore;  /* patterns (fnmatch, or a directory prefix) */
	int raw_sources;              /* --raw-sources: sources recorded as plain files */
	/* now_ns() when the command started: a later ctime is a change
	 * while it ran. One in the tick before (fs_clock_ns) is taken as
	 * made before: the trace does not say whether the command read the
	 * file before or after another process changed it, and a file
	 * written just before the run (make, a script's previous line) must
	 * not lose its result. */
	int64_t started_ns;
	/* the declared output files there when it started (root-relative,
	 * sorted): one the command read first is an input too (sed -i) */
	const struct strvec *found_outputs;
	/* The inputs of the newest run of the same key (sorted by path), or
	 * NULL: an input it recorded under the same signature takes its
	 * digest from there, without a stat-cache query. */
	const struct run_record *prev;
	/* Digests taken while the command ran (exec/prehash.h), or NULL: 1
	 * with out set when abspath's content, as sb finds it now, is known. */
	int (*known)(const void *ctx, const char *abspath, const struct stat *sb, struct digest *out);
	const void *known_ctx;
};

struct obs_outcome {
	/* Inputs that changed while the command ran (not by it): the result
	 * may be computed from a half-edited tree and must not be stored. */
	struct strvec changed;
	/* Files the command wrote inside the project that are not declared
	 * outputs (root-relative, sorted). */
	struct strvec written;
	/* Declared output files that were there when the command started and
	 * that it read before it wrote them: its result depends on what they
	 * held then, which a replay overwrites (root-relative, sorted). */
	struct strvec read_outputs;
	/* Project files read that are neither declared nor found from the
	 * command's scripts (root-relative, sorted): --strict fails on them. */
	struct strvec undeclared;
	/* Input files read to hash their content (neither in the stat cache
	 * nor reused): while the command ran (spec->known), after it exited. */
	size_t hashed_during, hashed_after;
};

/* Turns what the trace saw into r->inputs (sorted by path) and sets
 * r->observed to OBSERVED_TRACED. Declared parts (r->parts) must already
 * be there. Returns 0 or -1 (err_msg). */
#define OBS_OUTCOME_INIT                                                                                               \
	{                                                                                                              \
		STRVEC_INIT, STRVEC_INIT, STRVEC_INIT, STRVEC_INIT, 0, 0                                               \
	}

int obs_collect(struct store *st, const struct obs_spec *spec, const struct trace_event *ev, size_t n,
		struct run_record *r, struct obs_outcome *out);
void obs_outcome_release(struct obs_outcome *o);

/* The declared files of r (its file, input, script, source, dep parts)
 * gone or changed at or after started_ns (fs_changed_since), appended to
 * changed: a result computed while they were being edited is not stored,
 * traced or not. */
void obs_declared_changed(const struct store *st, const struct run_record *r, int64_t started_ns,
			  struct strvec *changed);
/* The newest change time among them (0: none): the command starts on a
 * later tick of the file system's clock, so that a change while it runs
 * is told from one made just before. */
int64_t obs_declared_newest(const struct store *st, const struct run_record *r);

/* Checks r's observed inputs against the file system now: 1 all as they
 * were, 0 one differs (why, if not NULL, gets a sentence naming it), -1
 * error. A stat() per input; content is hashed again only when the stat
 * signature changed, and an input found unchanged that way gets the new
 * signature (r->inputs_refreshed says so). */
int obs_check(struct store *st, struct run_record *r, char *const *env, struct strbuf *why);

/* store_lookup's accept for a request: a traced candidate matches when
 * obs_check says so, one stored where tracing was impossible only where it
 * still is. why holds the newest candidate's reason for not matching. */
struct obs_match {
	struct store *st;
	char *const *env; /* the request's environment (NULL: this process's) */
	int tried;        /* candidates offered */
	struct strbuf why;
};
int obs_accept(void *ctx, struct run_record *r);

/* 1 if path (root-relative or absolute, as stored) matches one of the
 * patterns or of obs_default_ignore: fnmatch() without FNM_PATHNAME (so
 * "*" crosses "/"), or a directory prefix. */
int obs_ignored(const struct strvec *patterns, const char *path);
/* Whether a fingerprint part of r that names a path (-i, an argument
 * file, a script, the executable...) is path or a directory above it. */
int obs_part_covers(const struct run_record *r, const char *path);

#endif
