/* sched: runs the wanted steps of a dag in dependency order through the
 * exec engine (step.c turns a step into its request), so fingerprints,
 * exactly-once claims, storing and replaying are the engine's; this module
 * only decides what starts when. A step that would only be replayed is
 * replayed in this process; one that must run goes to a forked worker
 * that calls the engine and reports its verdict through a socket, so up to
 * `jobs` steps run at once and a no-op run starts no process at all. A
 * step for Slurm goes to a process of its own, which hands it to
 * executor-slurm.c. It prints nothing: the front end (cli/cmd-pipeline.c)
 * is told of each step's start and end through struct sched_events. */
#ifndef CASHET_SCHED_H
#define CASHET_SCHED_H

#include "pipeline/dag.h"
#include "store/store.h"

#include <signal.h>

enum sched_state { SCHED_WAIT, SCHED_RUN, SCHED_HIT, SCHED_RAN, SCHED_FAIL, SCHED_SKIP, SCHED_STOP };

/* A step's end, as the front end is told it. */
struct sched_end {
	size_t step;
	enum sched_state state; /* SCHED_HIT, SCHED_RAN, SCHED_FAIL or SCHED_STOP */
	int status;             /* as waitpid gives it: the step's exit code, or how its worker died */
	const char *jobid;      /* the Slurm job that ran it, or "" */
	const char *why;        /* a failure told otherwise than by its exit code, or "" */
	int out, err;           /* its output and error logs (memfds, read with pread), -1 when none were kept */
};

struct sched_events {
	void *ctx;
	void (*started)(void *ctx, size_t step); /* a worker took it */
	void (*ended)(void *ctx, const struct sched_end *e);
	void (*skipped)(void *ctx, size_t step, size_t upstream); /* upstream failed or did not run */
	void (*waiting)(void *ctx);                               /* before each wait for a worker */
	void (*tick)(void *ctx); /* as the run begins, then every tick_ms while steps run (when set) */
};

/* The witness of a run (witness.h): its key and the index's generation
 * when the run began, set by the front end (on, key, abs_file, path,
 * options, epoch, gen); the rest is what each step's verdict asked of the
 * file system, recorded by sched_run as each was replayed. */
struct sched_witness {
	int on;
	struct digest key;
	struct strbuf abs_file, path, options;
	int64_t epoch, gen;
	struct strbuf *seen;
	unsigned char *captured;
	char (*run)[OID_HEX];
	int64_t *expires;
};

/* sched_init'ed, then filled by the caller down to the state. */
struct sched {
	struct dag *d;
	const unsigned char *want, *force; /* a flag per step of d */
	const char *store;                 /* the absolute store directory every worker opens */
	struct store *st;     /* open: in-process replays and the witness; NULL: every step goes to a worker */
	const char *executor; /* "local", "slurm" (--executor), or NULL: each step's, else the file's */
	int jobs, keep_going;
	int keep_logs;                            /* a replayed step's logs too (the front end shows them) */
	int tick_ms;                              /* 0: one tick event, as the run begins */
	const volatile sig_atomic_t *interrupted; /* non-zero: stop the running steps, start no more (NULL: never) */
	struct sched_events ev;
	struct sched_witness w;

	/* The state, kept by sched_run and read by the events. */
	enum sched_state *state;
	int64_t *t0, *t1; /* when each step started and ended */
	int64_t start;
	size_t total, done, running, failed;
	int stopped;         /* a failure (without keep_going) or interrupted stopped the run */
	struct strbuf error; /* why a step could not be started, or empty */

	/* sched.c's own */
	int *log;                   /* 2 per step: its logs while it runs, else -1 */
	struct sched_slot *slots;   /* jobs of them: the workers */
	struct sched_slot *oneshot; /* jobs of them: a process per Slurm step, its verdict pipe in sock */
	struct strbuf spool, self;  /* the Slurm jobs' hand-back directory and the cashet they run */
	/* the ready queue: successors, the predecessors each still waits
	 * for, and two heaps of order positions (steps to start; steps to
	 * report as skipped), so a pass never rescans every step */
	size_t **succ, *nsucc, *left, *pos;
	size_t *ready, nready, *doomed, ndoomed;
	unsigned char *queued;
};

/* Zeroes s and allocates its per-step arrays for d. Release with
 * sched_release. */
void sched_init(struct sched *s, struct dag *d);
void sched_release(struct sched *s);

/* Runs every wanted step, then (with the witness on) writes the witness
 * of a run whose every step hit or ran. Returns 0 once every step started
 * has ended, failed ones included; -1 when a step could not be started
 * (s->error says why; the others were stopped and waited for). */
int sched_run(struct sched *s);

/* Where step i runs: its own executor key, else executor (--executor),
 * else the file's [defaults], else here. */
enum dag_executor sched_executor(const struct dag *d, size_t i, const char *executor);

#endif
