/* cashet fsck [--prune]: verify every object and index row against git,
 * repair the index, report (and with --prune remove) what cannot be repaired.
 * Exit 0: nothing wrong left; 1: problems remain. */
#include "cli/cli.h"
#include "exec/claim.h"

struct fsck_opts {
	int prune;
};

#define OPTS struct fsck_opts
static const struct opt fsck_rows[] = {
	OPT_BOOL("prune", 0, prune, "remove the runs whose objects are missing or corrupt"),
	OPT_END,
};

const struct opt_table cmd_fsck_options = {
	OPT_ROWS(fsck_rows),
	.help = "Verifies every object and run against git and rebuilds the index.\n",
};
#undef OPTS

int cmd_fsck(struct cli *cli, void *opts, int argc, char **argv)
{
	const struct fsck_opts *o = opts;
	struct fsck_report rep = { 0 };
	int rc;
	if (store_fsck(cli->st, o->prune, &rep) < 0) {
		rc = cli_fail(1);
		goto out;
	}
	if (o->prune && (rep.bad_objects || rep.pruned)) {
		/* a repack keeps what the remaining runs reach: corrupt and orphaned objects go */
		struct gc_opts g = { .busy = claim_busy };
		struct gc_report gr;
		if (store_gc(cli->st, &g, &gr) < 0) {
			rc = cli_fail(1);
			goto out;
		}
	}
	for (size_t i = 0; i < rep.problems.n; i++)
		printf("%s\n", rep.problems.v[i]);
	printf("checked %lld objects and %lld runs: %lld bad objects, %zu broken runs%s, %lld index rows repaired\n",
	       (long long)rep.objects, (long long)rep.runs, (long long)rep.bad_objects, rep.bad_runs.n,
	       rep.pruned ? " (pruned)" : "", (long long)rep.index_fixed);
	/* what was repaired or pruned is fixed; broken runs and bad objects kept are not */
	rc = !o->prune && (rep.bad_objects || rep.bad_runs.n) ? 1 : 0;
out:
	fsck_report_free(&rep);
	return rc;
}
