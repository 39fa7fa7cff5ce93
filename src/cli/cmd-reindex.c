/* cashet reindex: rebuild index.db from the refs under refs/cashet/runs/ (the index is derived). */
#include "cli/cli.h"

int cmd_reindex(struct cli *cli, void *opts, int argc, char **argv)
{
	struct strvec skipped = STRVEC_INIT;
	size_t n = 0;
	int rc = store_reindex(cli->st, &n, &skipped);
	for (size_t i = 0; i < skipped.n; i++)
		fprintf(stderr, "cashet: warning: %s\n", skipped.v[i]);
	sv_release(&skipped);
	if (rc < 0)
		return cli_fail(1);
	printf("reindexed %zu run%s\n", n, n == 1 ? "" : "s");
	return 0;
}
