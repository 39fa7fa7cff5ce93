/* cashet pull [REMOTE]: fetch the remote's runs and index the new ones. */
#include "cli/cli.h"

#include <string.h>

int cmd_pull(struct cli *cli, int argc, char **argv)
{
	struct store *st = NULL;
	size_t added = 0;
	if (argc > 1 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
		puts("usage: cashet pull [REMOTE]\n  fetches REMOTE's runs (default: origin) and indexes the new ones");
		return 0;
	}
	if (argc > 2 || (argc == 2 && argv[1][0] == '-'))
		return cli_usage("pull", "unexpected argument '%s'", argv[argc - 1]);
	const char *remote = argc == 2 ? argv[1] : "origin";
	if (cli_open_store(cli, &st) < 0 || store_pull(st, remote, &added) < 0) {
		store_close(st);
		return cli_fail(1);
	}
	printf("pulled %zu new run%s from %s\n", added, added == 1 ? "" : "s", remote);
	store_close(st);
	return 0;
}
