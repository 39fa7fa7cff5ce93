/* cashet clear: remove every run and every object. Asks first on a terminal. */
#include "cli/cli.h"
#include "exec/claim.h"

#include <string.h>
#include <unistd.h>

int cmd_clear(struct cli *cli, int argc, char **argv)
{
	struct store *st = NULL;
	int force = 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-f") || !strcmp(argv[i], "--force"))
			force = 1;
		else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			puts("usage: cashet clear [-f|--force]\n  removes every run; asks for confirmation on a terminal unless --force");
			return 0;
		} else
			return cli_usage("clear", "unexpected argument '%s'", argv[i]);
	}
	if (cli_open_store(cli, &st) < 0)
		return cli_fail(1);
	if (!force && isatty(STDIN_FILENO)) {
		char answer[16] = "";
		fprintf(stderr, "Remove every run in %s? [y/N] ", store_dir(st));
		if (!fgets(answer, sizeof(answer), stdin) || (answer[0] != 'y' && answer[0] != 'Y')) {
			store_close(st);
			fputs("cancelled\n", stderr);
			return 1;
		}
	}
	struct gc_opts o = { .all = 1, .busy = claim_busy };
	struct gc_report r;
	int rc = store_gc(st, &o, &r);
	if (rc == 0)
		cli_print_gc(&r, 0);
	store_close(st);
	return rc < 0 ? cli_fail(1) : 0;
}
