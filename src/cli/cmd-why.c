/* cashet why [exec options] -- CMD: cashet exec --explain, without running.
 * Exit 0: it would replay; 1: it would run; other: error. */
#include "cli/cli.h"

int cmd_why(struct cli *cli, int argc, char **argv)
{
	return exec_main(cli, argc, argv, 1);
}
