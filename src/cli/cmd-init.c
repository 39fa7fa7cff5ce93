/* cashet init: create a store (.cashet in the current directory, or --store DIR). */
#include "cli/cli.h"

#include <stdlib.h>

int cmd_init(struct cli *cli, void *opts, int argc, char **argv)
{
	struct strbuf dir = STRBUF_INIT;
	struct store *st = NULL;
	const char *explicit_dir = argc ? argv[0] : cli->store_opt;
	int rc = 1, created = 0;
	if (!explicit_dir)
		explicit_dir = getenv("CASHET_DIR");
	if (!explicit_dir || !*explicit_dir) {
		/* init means here, not in a parent that already has a store */
		explicit_dir = STORE_DIRNAME;
	}
	if (store_find(explicit_dir, &dir) < 0 || store_open(dir.buf, STORE_CREATE, &st, &created) < 0) {
		rc = cli_fail(1);
		goto out;
	}
	printf(created ? "Initialized cashet store in %s\n" : "Store already exists in %s\n", dir.buf);
	rc = 0;
out:
	store_close(st);
	sb_release(&dir);
	return rc;
}

const struct opt_table cmd_init_options = {
	.help = "Creates DIR (default ./" STORE_DIRNAME ") as a cashet store.\n",
};
