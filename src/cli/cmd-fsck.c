/* cashet fsck [--prune]: verify every object and index row against git,
 * repair the index, report (and with --prune remove) what cannot be repaired.
 * Exit 0: nothing wrong left; 1: problems remain. */
#include "cli/cli.h"
#include "exec/claim.h"

#include <string.h>

int cmd_fsck(struct cli *cli, int argc, char **argv)
{
	struct store *st = NULL;
	struct fsck_report rep = { 0 };
	int prune = 0, rc;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--prune")) {
			prune = 1;
		} else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			puts("usage: cashet fsck [--prune]\n"
			     "  verifies every object and run against git and rebuilds the index;\n"
			     "  --prune removes the runs whose objects are missing or corrupt");
			return 0;
		} else {
			return cli_usage("fsck", "unexpected argument '%s'", argv[i]);
		}
	}
	if (cli_open_store(cli, &st) < 0)
		return cli_fail(1);
	rc = store_fsck(st, prune, &rep);
	if (rc < 0) {
		rc = cli_fail(1);
		goto out;
	}
	if (prune && (rep.bad_objects || rep.pruned)) {
		/* a repack keeps what the remaining runs reach: corrupt and orphaned objects go */
		struct gc_opts o = { .busy = claim_busy };
		struct gc_report gr;
		if (store_gc(st, &o, &gr) < 0) {
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
	rc = !prune && (rep.bad_objects || rep.bad_runs.n) ? 1 : 0;
out:
	fsck_report_free(&rep);
	store_close(st);
	return rc;
}
