/* cashet remote add NAME URL | remove NAME | list: git remotes that serve
 * as shared caches (any git URL: a path to a bare repository, ssh, https, git://). */
#include "cli/cli.h"
#include "remote/remote.h"
#include "store/gitmod.h"

#include <stdlib.h>
#include <string.h>

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

/* The remotes runs arrive from, each with what is trusted from it: the git
 * remotes, then exec's Redis or HTTP remote (--remote aside) and its mode.
 * Without a trust policy every remote is untrusted: whoever can write to
 * it decides what this store replays. */
static int list_remotes(struct cli *cli)
{
	const struct gitmod *g = gitmod_get();
	struct strvec list = STRVEC_INIT;
	struct strbuf policy = STRBUF_INIT, trust = STRBUF_INIT, url = STRBUF_INIT, shown = STRBUF_INIT,
		      mode = STRBUF_INIT;
	const char *env = getenv("CASHET_REMOTE");
	int rc = 0;
	if (!g || g->remote_config(store_dir(cli->st), "list", NULL, NULL, &list) < 0) {
		rc = cli_fail(1);
		goto out;
	}
	if (store_allowed_signers(cli->st, &policy))
		sb_addf(&trust, "trusted: runs signed by a key of %s", policy.buf);
	else
		sb_adds(&trust, "untrusted: no trust.allowed-signers, runs are replayed whoever made them");
	for (size_t i = 0; i < list.n; i++)
		printf("%s (%s)\n", list.v[i], trust.buf);
	if (env && *env)
		sb_adds(&url, env);
	else if (!store_setting(cli->st, "remote", &url))
		sb_reset(&url);
	if (url.len) {
		const char *m = getenv("CASHET_REMOTE_MODE");
		if (m && *m)
			sb_adds(&mode, m);
		else if (!store_setting(cli->st, "remote-mode", &mode))
			sb_adds(&mode, "read-write");
		remote_redact(url.buf, &shown);
		printf("exec %s (%s, %s)\n", shown.buf, mode.buf, trust.buf);
	}
out:
	sv_release(&list);
	sb_release(&policy);
	sb_release(&trust);
	sb_release(&url);
	sb_release(&shown);
	sb_release(&mode);
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
	return list_remotes(cli);
}

/* name, handler, options, flags, operands, summary, subcommands: as main.c's table */
const struct command cmd_remote_subs[] = {
	{ "add", cmd_remote_add, NULL, CMD_STORE, "NAME URL", "add a remote", NULL },
	{ "remove", cmd_remote_remove, NULL, CMD_STORE, "NAME", "remove a remote", NULL },
	{ "list", cmd_remote_list, NULL, CMD_STORE | CMD_DEFAULT, NULL,
	  "list the remotes, and whether runs from them are trusted (the default)", NULL },
	{ NULL, NULL, NULL, 0, NULL, NULL, NULL },
};
