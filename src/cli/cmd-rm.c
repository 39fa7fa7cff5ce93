/* cashet rm HASH...: forget runs: their index rows and refs/cashet/runs/ refs go, so
 * they are never replayed; the commits stay in the lineage of later runs. */
#include "cli/cli.h"

int cmd_rm(struct cli *cli, void *opts, int argc, char **argv)
{
	int rc = 0;
	for (int i = 0; i < argc; i++) {
		char hash[OID_HEX];
		if (store_resolve(cli->st, argv[i], hash) < 0 || store_remove(cli->st, hash) < 0) {
			rc = cli_fail(1);
			continue;
		}
		printf("removed %.12s\n", hash);
	}
	return rc;
}

const struct opt_table cmd_rm_options = {
	.help = "Removes runs; they are no longer replayed.\n",
};
