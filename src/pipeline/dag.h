/* dag: the pipeline file (dag.toml) as a validated graph of steps.
 * dag_load parses, expands matrix sweeps, substitutes ${...} references and
 * derives the edges (an input that is another step's output, plus `deps`);
 * every semantic error names "file:line:". Nothing here runs or prints:
 * each step is later run by the CLI as a `cashet exec` child. */
#ifndef CASHET_DAG_H
#define CASHET_DAG_H

#include <stddef.h>

#include "util/util.h"

/* Where a step runs: set by the step itself, else --executor, else the
 * file's [defaults] (UNSET everywhere: local). */
enum dag_executor { DAG_EXEC_UNSET, DAG_EXEC_LOCAL, DAG_EXEC_SLURM };

/* What a Slurm job of the step asks for, as sbatch takes it (NULL: not
 * given): [defaults] first, the step's own keys over them. */
struct dag_resources {
	char *cpus, *mem, *gpus, *time, *partition, *account;
	struct strvec slurm_args; /* passed to sbatch as they are */
};

struct dag_step {
	char *name; /* "train" or, for a sweep, "train@lr=0.1,dropout=0.2" */
	char *base; /* the [steps.NAME] it came from */
	int line;   /* line of its table, for messages */
	int shell;  /* cmd was a string: argv is { that string } for sh -c */
	struct strvec argv;
	struct strvec inputs, outputs; /* as written, relative to workdir */
	struct strvec envs;            /* names to hash */
	struct strvec env_set;         /* "NAME=VALUE": set for the step (and hashed) */
	struct strvec params;          /* "FILE:KEY" */
	struct strvec tags;            /* "K=V" */
	struct strvec metrics;         /* outputs read as the run's metrics (also in outputs) */
	char *workdir;                 /* relative to the pipeline's directory; "." by default */
	char *timeout;                 /* duration text, or NULL */
	int retries;                   /* -1: not given */
	int cache;                     /* 0: cache = false, always run */
	int trace;                     /* 0: trace = false, only the declared inputs are the key */
	int auto_outputs;              /* files written in the project are stored as outputs */
	int strict;                    /* reading an undeclared project file fails the step */
	struct strvec ignore;          /* paths never taken as observed inputs */
	enum dag_executor executor;    /* the step's own executor key, or UNSET */
	struct dag_resources res;
	size_t *preds; /* indices of the steps this one needs, sorted */
	size_t npreds;
	/* private: paths normalized relative to the pipeline's directory, and
	 * the lines of the arrays they came from, for messages */
	struct strvec norm_in, norm_out;
	int in_line, out_line;
};

struct dag {
	char *file;             /* the path as given, for messages */
	char *dir;              /* absolute directory of the file: workdirs are relative to it */
	struct dag_step *steps; /* in file order (sweeps expanded in place) */
	size_t n;
	size_t *order;              /* a topological order: producers first, else file order */
	enum dag_executor executor; /* [defaults] executor (or a top-level one), or UNSET */
};

/* Parses and validates a pipeline file. On success *out is the graph (free
 * with dag_free). On failure returns -1 and err_msg() says what is wrong,
 * "file:line: message" (or the TOML parser's "file:line:col: message"). */
int dag_load(const char *path, struct dag **out);
void dag_free(struct dag *d);

/* Index of the step with that exact name, or -1. */
long dag_find(const struct dag *d, const char *name);

/* Marks in want[] (d->n entries, zeroed by the caller or not) every step
 * the targets need: each target is a step name or the base name of a sweep
 * (all its expansions), plus everything upstream. No targets: every step.
 * Returns -1 with "unknown step 'x'" for a name that matches nothing. */
int dag_select(const struct dag *d, char *const *targets, size_t ntargets, unsigned char *want);

/* An output of a wanted step that is the store directory or lies inside
 * it (a replay would write the store's files over it): -1 with
 * "file:line: step 'a': output ... is the store", else 0. */
int dag_check_store(const struct dag *d, const unsigned char *want, const char *store);

/* The sbatch options of a step's resources ("--cpus-per-task=2", ...,
 * then slurm_args), appended to out. */
void dag_sbatch_args(const struct dag_step *s, struct strvec *out);

/* A binary min-heap of step indices (h holds n of them), ordered by
 * key[v] or, without key, by v: the first ready step in file order (the
 * topological sort) or in the run's order (the scheduler). */
void dag_heap_push(size_t *h, size_t *n, size_t v, const size_t *key);
size_t dag_heap_pop(size_t *h, size_t *n, const size_t *key);

/* True if step i needs step j, directly or not. */
int dag_depends(const struct dag *d, size_t i, size_t j);

#endif
