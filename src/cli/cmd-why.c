/* cashet why [exec options] -- CMD: cashet exec --explain, without running.
 * Exit 0: it would replay; 1: it would run; other: error. Its options are
 * exec's (cmd-exec.c). */
#include "cli/cli.h"

int cmd_why(struct cli *cli, void *opts, int argc, char **argv)
{
	return exec_main(cli, opts, argc, argv, 1);
}
