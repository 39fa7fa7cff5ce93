/* cashet config KEY [VALUE] | --unset KEY: store settings, kept in the
 * store's git config (cashet.<key>). Known keys are checked here. */
#include "cli/cli.h"
#include "store/gitmod.h"
#include "remote/remote.h"

#include <string.h>
#include <unistd.h>

static const char *const keys[] = {
	"max-size", "auto-pack",   "remote",      "remote-mode",           "trace", "auto-outputs",
	"ignore",   "stdin-limit", "signing-key", "trust.allowed-signers", NULL
};

/* Keys whose value is a file: kept absolute, so the setting means the same
 * file from any directory of the project. */
static int is_path_key(const char *key)
{
	return !strcmp(key, "signing-key") || !strcmp(key, "trust.allowed-signers");
}

struct config_opts {
	int unset;
};

#define OPTS struct config_opts
static const struct opt config_rows[] = {
	OPT_BOOL("unset", 0, unset, "remove KEY's setting"),
	OPT_END,
};

static int check_config(const void *opts, int argc, char **argv, int dashdash)
{
	const struct config_opts *o = opts;
	const char *key = argv[0], *value = argc > 1 ? argv[1] : NULL;
	size_t k = 0;
	if (o->unset && value)
		return err_set("expected KEY [VALUE] or --unset KEY");
	while (keys[k] && strcmp(keys[k], key))
		k++;
	if (!keys[k])
		return err_set(
			"unknown key '%s' (known: max-size, auto-pack, remote, remote-mode, trace, auto-outputs, "
			"ignore, stdin-limit, signing-key, trust.allowed-signers)",
			key);
	/* the checks a value read from the config file gets too */
	if (value && store_setting_valid(key, value) < 0)
		return -1;
	if (!strcmp(key, "remote") && value && !remote_url_known(value))
		return err_set("remote: expected " REMOTE_URL_FORMS ", got '%s'", value);
	if (is_path_key(key) && value && access(value, R_OK) < 0)
		return err_sys("%s: cannot read %s", key, value);
	return 0;
}

const struct opt_table cmd_config_options = {
	OPT_ROWS(config_rows),
	.help = "keys:\n"
		"  max-size SIZE   after storing a run, gc down to 90% of SIZE when the store is larger\n"
		"  auto-pack N     after storing a run, pack the loose objects and refs when more\n"
		"                  than N objects are loose (default 2048; 0: never)\n"
		"  remote URL      the Redis server (redis://host:port/db) or cashet serve server\n"
		"                  (http://host:port) or HTTP cache (cache+http://host:port/prefix)\n"
		"                  exec shares runs through\n"
		"  remote-mode read|read-write  read: never write to the remote (default read-write)\n"
		"  signing-key PATH  the SSH key every stored run is signed with\n"
		"  trust.allowed-signers FILE  replay runs from elsewhere only if signed by a key\n"
		"                  of FILE (git's allowed-signers format)\n"
		"  trace on|off    observe what commands read (default on)\n"
		"  auto-outputs on|off  store the files commands write in the project (default off)\n"
		"  ignore 'PATTERN, ...'  paths never taken as observed inputs\n"
		"  stdin-limit SIZE  the most of a piped stdin read to its end before a\n"
		"                  command runs (default 64M; longer input runs uncached)\n",
	.check = check_config,
};
#undef OPTS

int cmd_config(struct cli *cli, void *opts, int argc, char **argv)
{
	const struct config_opts *o = opts;
	const struct gitmod *g;
	const char *key = argv[0], *value = argc > 1 ? argv[1] : NULL;
	struct strbuf v = STRBUF_INIT, abs = STRBUF_INIT;
	int rc = -1;
	if (value && is_path_key(key)) {
		path_absolute(NULL, value, &abs);
		value = abs.buf;
	}
	/* a value read is checked as every command checks it */
	if (!value && !o->unset && store_config_check(cli->st, key) < 0)
		rc = -1;
	else if ((g = gitmod_get()))
		rc = g->config(store_dir(cli->st), key, value, o->unset, &v);
	if (rc < 0)
		rc = cli_fail(1);
	else if (!value && !o->unset && rc == 0)
		puts(v.buf);
	/* rc 1: unset key, printed as nothing with exit 1, like git config */
	sb_release(&v);
	sb_release(&abs);
	return rc;
}
