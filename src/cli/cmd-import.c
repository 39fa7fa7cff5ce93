/* cashet import [--allow-absolute] FILE: add the runs of an archive made by
 * `cashet export`. All or nothing: a damaged archive, or one run in it that
 * would write outside the project, and the store is left as it was. */
#include "cli/cli.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

/* Like exec, import creates the store when there is none: importing into a
 * fresh checkout is the point. */
static int open_or_create(struct cli *cli, struct store **st)
{
	struct strbuf dir = STRBUF_INIT;
	int rc = store_find(cli->store_opt, &dir);
	if (rc >= 0)
		rc = store_open(dir.buf, STORE_CREATE, st, NULL);
	sb_release(&dir);
	return rc;
}

int cmd_import(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "allow-absolute", no_argument, NULL, 'a' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct store *st = NULL;
	size_t imported = 0, present = 0;
	int c, allow_abs = 0, rc = 1;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (c) {
		case 'a':
			allow_abs = 1;
			break;
		case 'h':
			puts("usage: cashet import [--allow-absolute] FILE\n"
			     "  adds the runs of an archive made by 'cashet export'; runs the store\n"
			     "  has are skipped, and on any error nothing is imported.\n"
			     "  --allow-absolute  accept runs with outputs outside their project");
			return 0;
		default:
			return cli_usage("import", "unknown option or missing value: '%s'", argv[optind - 1]);
		}
	}
	if (optind >= argc)
		return cli_usage("import", "no archive file given (usage: cashet import FILE)");
	if (optind + 1 < argc)
		return cli_usage("import", "unexpected argument '%s'", argv[optind + 1]);
	if (open_or_create(cli, &st) < 0 || store_import(st, argv[optind], allow_abs, &imported, &present) < 0) {
		rc = cli_fail(1);
		goto out;
	}
	printf("imported %zu run%s (%zu already present)\n", imported, imported == 1 ? "" : "s", present);
	rc = 0;
out:
	store_close(st);
	return rc;
}
