/* cashet remote add NAME URL | remove NAME | list: git remotes that serve
 * as shared caches (any git URL: a path to a bare repository, ssh, https, git://). */
#include "cli/cli.h"
#include "store/gitmod.h"

/* op is the subcommand: the git module takes it as it is. */
static int remote_config(struct cli *cli, const char *op, const char *name, const char *url)
{
	const struct gitmod *g = gitmod_get();
	struct strvec list = STRVEC_INIT;
	int rc = 0;
	if (!g || g->remote_config(store_dir(cli->st), op, name, url, &list) < 0)
		rc = cli_fail(1);
	for (size_t i = 0; rc == 0 && i < list.n; i++)
		puts(list.v[i]);
	sv_release(&list);
	return rc;
}

static int cmd_remote_add(struct cli *cli, void *opts, int argc, char **argv)
{
	return remote_config(cli, "add", argv[0], argv[1]);
}

static int cmd_remote_remove(struct cli *cli, void *opts, int argc, char **argv)
{
	return remote_config(cli, "remove", argv[0], NULL);
}

static int cmd_remote_list(struct cli *cli, void *opts, int argc, char **argv)
{
	return remote_config(cli, "list", NULL, NULL);
}

/* name, handler, options, flags, operands, summary, subcommands: as main.c's table */
const struct command cmd_remote_subs[] = {
	{ "add", cmd_remote_add, NULL, CMD_STORE, "NAME URL", "add a remote", NULL },
	{ "remove", cmd_remote_remove, NULL, CMD_STORE, "NAME", "remove a remote", NULL },
	{ "list", cmd_remote_list, NULL, CMD_STORE | CMD_DEFAULT, NULL, "list the remotes (the default)", NULL },
	{ NULL, NULL, NULL, 0, NULL, NULL, NULL },
};
