/* executor-slurm: a pipeline step run as a Slurm job. Cache first: the
 * submitter looks the step up and replays a hit itself; only a miss is
 * submitted, under the step's claim, so that two pipelines submit it once.
 * The job never opens the submitter's index (SQLite in WAL mode must not
 * be shared over NFS): it runs `cashet pipeline job`, which runs the step
 * against a private store on the node standing in for the submitter's
 * (same root, same keys) and hands the run back as an archive in the
 * pipeline's spool directory on the shared filesystem; the submitter
 * imports it and replays it, as it would replay a local run. */
#ifndef CASHET_EXECUTOR_SLURM_H
#define CASHET_EXECUTOR_SLURM_H

#include "exec/engine.h"
#include "pipeline/dag.h"
#include "pipeline/slurm.h"

#include <signal.h>

/* One step to run through Slurm, from the submitting side. */
struct slurm_exec_request {
	const struct dag *d;
	size_t step;
	const char *store;  /* the submitter's store (absolute) */
	const char *spool;  /* this pipeline's spool directory (slurm_spool_create) */
	const char *cashet; /* the cashet binary the job runs (absolute, on the shared filesystem) */
	int force;
	int out_fd, err_fd; /* the step's logs: what the replay prints */
	/* set (by a signal): cancel the job, or stop waiting for a claim */
	const volatile sig_atomic_t *stop;
};

struct slurm_exec_result {
	enum exec_verdict verdict;
	int exit_code;
	char jobid[32];     /* "" when nothing was submitted */
	int stopped;        /* the request's stop came: the job was cancelled */
	struct strbuf why;  /* a failure as the report says it: "Slurm job 7: TIMEOUT, TimeLimit" */
	struct strbuf tail; /* the job's last stderr lines, on a failure */
};

/* Runs step req->step: hit (replayed here), waited (another pipeline ran
 * it), ran (as job res->jobid, imported and replayed) or failed (res->why
 * and res->tail say how). Returns 0 with *res filled, or -1 with err_msg()
 * when cashet itself failed. Release res with slurm_exec_result_free. */
int slurm_exec_step(const struct slurm_exec_request *req, struct slurm_exec_result *res);
void slurm_exec_result_free(struct slurm_exec_result *res);

/* The job side: runs step of dag file against a private store under
 * $TMPDIR (or /tmp) standing in for origin, its streams to this process's
 * stdout and stderr, then writes the run's archive and verdict to spool
 * (named by index) for the submitter. Returns the command's exit code. */
struct slurm_job_request {
	const char *file, *step; /* the pipeline file and the step's name */
	const char *origin;      /* the submitter's store (absolute) */
	const char *spool;
	const char *index; /* the spool files' name */
	int force;
};
int slurm_job_run(const struct slurm_job_request *req);

/* A spool directory for one pipeline run in the store's slurm/ directory
 * (on the shared filesystem with the store), named by host and pid; those
 * of pipelines of this host that died are removed first. Caller frees
 * path's buffer and removes the directory (rm_rf) at the end. */
int slurm_spool_create(const char *store, struct strbuf *path);

/* The step's job in flight, if a live pipeline submitted one: its id and
 * state (for `pipeline status`). 1 found, 0 none. */
int slurm_job_in_flight(struct store *st, const struct digest *fp, struct strbuf *jobid, struct slurm_job *job);

#endif
