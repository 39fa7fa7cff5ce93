/* cashet config KEY [VALUE] | --unset KEY: store settings, kept in the
 * store's git config (cashet.<key>). Known keys are checked here. */
#include "cli/cli.h"
#include "store/gitmod.h"
#include "remote/remote.h"

#include <string.h>

static const char *const keys[] = { "max-size", "remote", "trace", "auto-outputs", "ignore", NULL };

static int check(const char *key, const char *value)
{
	uint64_t n;
	if (!strcmp(key, "max-size") && value && parse_size(value, &n) < 0)
		return cli_usage("config", "max-size: %s", err_msg());
	if ((!strcmp(key, "trace") || !strcmp(key, "auto-outputs")) && value &&
	    !strstr(" on off true false yes no 1 0 ", value))
		return cli_usage("config", "%s: expected on or off, got '%s'", key, value);
	if (!strcmp(key, "remote") && value && !remote_url_known(value))
		return cli_usage("config", "remote: expected " REMOTE_URL_FORMS ", got '%s'", value);
	return 0;
}

int cmd_config(struct cli *cli, int argc, char **argv)
{
	const struct gitmod *g;
	struct store *st = NULL;
	struct strbuf v = STRBUF_INIT;
	int unset = 0, i = 1, rc;
	if (argc > 1 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
		puts("usage: cashet config KEY [VALUE]\n       cashet config --unset KEY\n"
		     "keys:\n  max-size SIZE   after storing a run, gc down to 90% of SIZE when the store is larger\n"
		     "  remote URL      the Redis server (redis://host:port/db) or cashet serve server\n"
		     "                  (http://host:port) exec shares runs through\n"
		     "  trace on|off    observe what commands read (default on)\n"
		     "  auto-outputs on|off  store the files commands write in the project (default off)\n"
		     "  ignore 'PATTERN, ...'  paths never taken as observed inputs");
		return 0;
	}
	if (argc > 1 && !strcmp(argv[1], "--unset")) {
		unset = 1;
		i++;
	}
	if (i >= argc || argc - i > (unset ? 1 : 2))
		return cli_usage("config", "expected KEY [VALUE] or --unset KEY");
	const char *key = argv[i], *value = i + 1 < argc ? argv[i + 1] : NULL;
	size_t k = 0;
	while (keys[k] && strcmp(keys[k], key))
		k++;
	if (!keys[k])
		return cli_usage("config", "unknown key '%s' (known: max-size, remote)", key);
	if ((rc = check(key, value)) != 0)
		return rc;
	if (cli_open_store(cli, &st) < 0 || !(g = gitmod_get())) {
		rc = cli_fail(1);
		goto out;
	}
	rc = g->config(store_dir(st), key, value, unset, &v);
	if (rc < 0)
		rc = cli_fail(1);
	else if (!value && !unset && rc == 0)
		puts(v.buf);
	/* rc 1: unset key, printed as nothing with exit 1, like git config */
out:
	store_close(st);
	sb_release(&v);
	return rc;
}
