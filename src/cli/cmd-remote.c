/* cashet remote add NAME URL | remove NAME | list: git remotes that serve
 * as shared caches (any git URL: a path to a bare repository, ssh, https, git://). */
#include "cli/cli.h"
#include "store/gitmod.h"

#include <string.h>

int cmd_remote(struct cli *cli, int argc, char **argv)
{
	const struct gitmod *g;
	struct store *st = NULL;
	struct strvec list = STRVEC_INIT;
	const char *op = argc > 1 ? argv[1] : "list";
	int rc;
	if (!strcmp(op, "-h") || !strcmp(op, "--help")) {
		puts("usage: cashet remote add NAME URL\n       cashet remote remove NAME\n       cashet remote [list]");
		return 0;
	}
	if (!((!strcmp(op, "add") && argc == 4) || (!strcmp(op, "remove") && argc == 3) ||
	      (!strcmp(op, "list") && argc <= 2)))
		return cli_usage("remote", "expected 'add NAME URL', 'remove NAME' or 'list'");
	if (cli_open_store(cli, &st) < 0 || !(g = gitmod_get()) ||
	    g->remote_config(store_dir(st), op, argc > 2 ? argv[2] : NULL, argc > 3 ? argv[3] : NULL, &list) < 0) {
		rc = cli_fail(1);
		goto out;
	}
	for (size_t i = 0; i < list.n; i++)
		puts(list.v[i]);
	rc = 0;
out:
	sv_release(&list);
	store_close(st);
	return rc;
}
