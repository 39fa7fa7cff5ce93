/* cashet import [--allow-absolute] FILE: add the runs of an archive made by
 * `cashet export`. All or nothing: a damaged archive, or one run in it that
 * would write outside the project, and the store is left as it was. */
#include "cli/cli.h"

struct import_opts {
	int allow_absolute;
};

#define OPTS struct import_opts
static const struct opt import_rows[] = {
	OPT_BOOL("allow-absolute", 0, allow_absolute, "accept runs with outputs outside their project"),
	OPT_END,
};

const struct opt_table cmd_import_options = {
	OPT_ROWS(import_rows),
	.help = "Adds the runs of an archive made by 'cashet export'; runs the store has\n"
		"are skipped, and on any error nothing is imported.\n",
};
#undef OPTS

int cmd_import(struct cli *cli, void *opts, int argc, char **argv)
{
	const struct import_opts *o = opts;
	size_t imported = 0, present = 0;
	if (store_import(cli->st, argv[0], o->allow_absolute, &imported, &present) < 0)
		return cli_fail(1);
	printf("imported %zu run%s (%zu already present)\n", imported, imported == 1 ? "" : "s", present);
	return 0;
}
