/* cashet pipeline job: the command a Slurm job of `pipeline run
 * --executor slurm` runs on its node (executor-slurm.h): one step against
 * a private store standing in for the submitter's, its run handed back
 * through the spool directory. Not meant to be typed, but it is an
 * ordinary command: the job script names it in full. */
#include "cli/cli.h"
#include "exec/spawn.h"
#include "pipeline/executor-slurm.h"

#include <signal.h>
#include <string.h>

struct job_opts {
	const char *origin, *spool, *index;
	int force;
};

#define OPTS struct job_opts
static const struct opt job_rows[] = {
	OPT_STRING("origin", 0, origin, "STORE", "the submitting pipeline's store, which the run is keyed for"),
	OPT_STRING("spool", 0, spool, "DIR", "where the run's archive and verdict go"),
	OPT_STRING("index", 0, index, "N", "the name of the step's files in DIR"),
	OPT_BOOL("force", 'f', force, "run even if the private store has the run (it never has)"),
	OPT_END,
};

const struct opt_table cmd_pipeline_job_options = {
	OPT_ROWS(job_rows),
	.help = "Runs STEP of FILE as `pipeline run --executor slurm` asks a Slurm job to:\n"
		"see cashet-pipeline(5), SLURM.\n",
};
#undef OPTS

int cmd_pipeline_job(struct cli *cli, void *opts, int argc, char **argv)
{
	const struct job_opts *o = opts;
	if (!o->origin || !o->spool || !o->index || o->origin[0] != '/')
		return cli_error(2, "pipeline job needs --origin (absolute), --spool and --index");
	if (strspn(o->index, "0123456789") != strlen(o->index) || !o->index[0])
		return cli_error(2, "--index must be a number");
	struct slurm_job_request req = { argv[0], argv[1], o->origin, o->spool, o->index, o->force };
	/* scancel and a time limit send TERM first: caught, it ends the
	 * command and the job still removes its private store from the node's
	 * TMPDIR, which dying of it at once left behind. Then the job dies of
	 * it all the same, so that Slurm reports the signal, not an exit. */
	spawn_signals_init();
	int rc = slurm_job_run(&req);
	int sig = spawn_pending_signal();
	if (sig) {
		signal(sig, SIG_DFL);
		raise(sig);
	}
	return rc;
}
