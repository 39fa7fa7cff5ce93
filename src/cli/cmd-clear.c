/* cashet clear: remove every run and every object. Asks first on a terminal. */
#include "cli/cli.h"
#include "exec/claim.h"

#include <unistd.h>

struct clear_opts {
	int force;
};

#define OPTS struct clear_opts
static const struct opt clear_rows[] = {
	OPT_BOOL("force", 'f', force, "do not ask for confirmation"),
	OPT_END,
};

const struct opt_table cmd_clear_options = {
	OPT_ROWS(clear_rows),
	.help = "Removes every run; asks for confirmation on a terminal unless --force.\n",
};
#undef OPTS

int cmd_clear(struct cli *cli, void *opts, int argc, char **argv)
{
	const struct clear_opts *o = opts;
	if (!o->force && isatty(STDIN_FILENO)) {
		char answer[16] = "";
		fprintf(stderr, "Remove every run in %s? [y/N] ", store_dir(cli->st));
		if (!fgets(answer, sizeof(answer), stdin) || (answer[0] != 'y' && answer[0] != 'Y')) {
			fputs("cancelled\n", stderr);
			return 1;
		}
	}
	struct gc_opts g = { .all = 1, .busy = claim_busy };
	struct gc_report r;
	if (store_gc(cli->st, &g, &r) < 0)
		return cli_fail(1);
	cli_print_gc(&r, 0);
	return 0;
}
