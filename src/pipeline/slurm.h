/* slurm: the few Slurm commands the pipeline's Slurm executor needs,
 * sbatch, scontrol and scancel, run as child processes with their answers
 * parsed into structs. Slurm's own client library is not used: its ABI
 * changes with every release, its commands' output does not. */
#ifndef CASHET_SLURM_H
#define CASHET_SLURM_H

#include "util/util.h"

/* A job's state, as far as the pipeline cares. */
enum slurm_state {
	SLURM_QUEUED,  /* PENDING, CONFIGURING, REQUEUED, ... */
	SLURM_RUNNING, /* RUNNING, COMPLETING, SUSPENDED */
	SLURM_ENDED,   /* COMPLETED: the job script exited 0 */
	SLURM_FAILED,  /* any other end: FAILED, TIMEOUT, OUT_OF_MEMORY, CANCELLED, NODE_FAIL, ... */
	SLURM_GONE,    /* slurmctld no longer knows the job (past MinJobAge) */
};

struct slurm_job {
	enum slurm_state state;
	char state_name[32]; /* Slurm's word: "TIMEOUT", "OUT_OF_MEMORY", ... */
	char reason[64];     /* its Reason=, "None" when there is none */
	int exit_code, signal;
};

/* One job to submit: the script, its directory, its name, where Slurm
 * writes the script's stdout and stderr, and the resource options. */
struct slurm_submit {
	const char *script, *workdir, *name, *out, *err;
	const struct strvec *args; /* --cpus-per-task=2, ... (dag_sbatch_args) */
};

/* `sbatch --parsable`: fills jobid (the number Slurm printed, without the
 * ";cluster"). Returns 0, or -1 with err_msg() holding sbatch's own
 * error. sbatch runs in its own process group: a Ctrl-C meant for the
 * pipeline must not kill it after it submitted and before it said what. */
int slurm_submit(const struct slurm_submit *req, struct strbuf *jobid);

/* `scontrol show job -o ID`: 0 with *job filled (SLURM_GONE when Slurm
 * says the job id is invalid), or -1 when scontrol itself failed. */
int slurm_query(const char *jobid, struct slurm_job *job);

/* `scancel ID`: 0, or -1 with err_msg(). */
int slurm_cancel(const char *jobid);

/* For messages: "TIMEOUT (TimeLimit)", "FAILED (exit 3)", ... into out. */
void slurm_describe(const struct slurm_job *job, struct strbuf *out);

#endif
