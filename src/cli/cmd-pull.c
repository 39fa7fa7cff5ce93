/* cashet pull [REMOTE]: fetch the remote's runs and index the new ones. */
#include "cli/cli.h"

int cmd_pull(struct cli *cli, void *opts, int argc, char **argv)
{
	const char *remote = argc ? argv[0] : "origin";
	struct strvec refused = STRVEC_INIT;
	size_t added = 0;
	int rc = store_pull(cli->st, remote, &added, &refused);
	for (size_t i = 0; i < refused.n; i++)
		fprintf(stderr, "cashet: %s\n", refused.v[i]);
	sv_release(&refused);
	if (rc < 0)
		return cli_fail(1);
	printf("pulled %zu new run%s from %s\n", added, added == 1 ? "" : "s", remote);
	return 0;
}

const struct opt_table cmd_pull_options = {
	.help = "Fetches REMOTE's runs (default: origin) and indexes the new ones.\n",
};
