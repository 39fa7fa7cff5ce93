/* cashet reindex: rebuild index.db from the refs under refs/cashet/runs/ (the index is derived). */
#include "cli/cli.h"

#include <string.h>

int cmd_reindex(struct cli *cli, int argc, char **argv)
{
	struct store *st = NULL;
	size_t n = 0;
	if (argc > 1) {
		if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
			puts("usage: cashet reindex\n  rebuilds the index from the git object database");
			return 0;
		}
		return cli_usage("reindex", "unexpected argument '%s'", argv[1]);
	}
	if (cli_open_store(cli, &st) < 0)
		return cli_fail(1);
	struct strvec skipped = STRVEC_INIT;
	int rc = store_reindex(st, &n, &skipped);
	store_close(st);
	for (size_t i = 0; i < skipped.n; i++)
		fprintf(stderr, "cashet: warning: %s\n", skipped.v[i]);
	sv_release(&skipped);
	if (rc < 0)
		return cli_fail(1);
	printf("reindexed %zu run%s\n", n, n == 1 ? "" : "s");
	return 0;
}
