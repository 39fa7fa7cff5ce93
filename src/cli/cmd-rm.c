/* cashet rm HASH...: forget runs: their index rows and refs/cashet/runs/ refs go, so
 * they are never replayed; the commits stay in the lineage of later runs. */
#include "cli/cli.h"

#include <string.h>

int cmd_rm(struct cli *cli, int argc, char **argv)
{
	struct store *st = NULL;
	int rc = 0;
	if (argc < 2)
		return cli_usage("rm", "no run given (usage: cashet rm HASH...)");
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
		puts("usage: cashet rm HASH...\n  removes runs; they are no longer replayed");
		return 0;
	}
	if (cli_open_store(cli, &st) < 0)
		return cli_fail(1);
	for (int i = 1; i < argc; i++) {
		char hash[OID_HEX];
		if (store_resolve(st, argv[i], hash) < 0 || store_remove(st, hash) < 0) {
			rc = cli_fail(1);
			continue;
		}
		printf("removed %.12s\n", hash);
	}
	store_close(st);
	return rc;
}
