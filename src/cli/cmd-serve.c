/* cashet serve: parses the options here, from the table, then loads
 * cashet-serve.so (next to the binary, as in the build tree, else from the
 * install directory) and hands it the result. The server and everything it
 * links live there; see src/serve/serve.h. */
#include "cli/cli.h"
#include "store/gitmod.h"
#include "serve/serve.h"

#include <dlfcn.h>

/* --token and --token-file: the later one wins */
static int take_token(void *opts, const char *arg)
{
	struct serve_opts *o = opts;
	o->token = arg;
	o->token_file = NULL;
	return 0;
}

static int take_token_file(void *opts, const char *arg)
{
	struct serve_opts *o = opts;
	o->token_file = arg;
	o->token = NULL;
	return 0;
}

#define OPTS struct serve_opts
static const struct opt serve_rows[] = {
	OPT_STRING("listen", 0, listen, "ADDR:PORT", "the address to listen on (default " SERVE_DEFAULT_LISTEN ")"),
	OPT_CALLBACK("token", 0, take_token, "TOKEN", "the token writes need ('Authorization: Bearer TOKEN')"),
	OPT_CALLBACK("token-file", 0, take_token_file, "FILE", "the token, read from FILE"),
	OPT_SIZE("max-body", 0, max_body, "the largest request body accepted (default 1G)"),
	OPT_STRING("pipeline", 0, pipeline, "FILE",
		   "POST /submit {\"step\": NAME} runs that step of FILE (a dag.toml)"),
	OPT_BOOL("allow-exec", 0, allow_exec, "POST /submit {\"argv\": [...]} runs a command too (needs a token)"),
	OPT_END,
};

static const struct serve_opts serve_defaults = {
	.listen = SERVE_DEFAULT_LISTEN,
	.max_body = SERVE_DEFAULT_MAX_BODY,
};

const struct opt_table cmd_serve_options = {
	OPT_ROWS(serve_rows),
	.defaults = &serve_defaults,
	.help = "Serves the store over HTTP: GET /log, /stats, /run/HASH[/stdout|/stderr|/file/PATH],\n"
		"/fp/FINGERPRINT, /archive/HASH; POST /gc, PUT /archive and POST /submit need\n"
		"'Authorization: Bearer TOKEN'.\n",
};
#undef OPTS

int cmd_serve(struct cli *cli, void *opts, int argc, char **argv)
{
	struct strbuf errs = STRBUF_INIT;
	void *h = module_open("cashet-serve.so", NULL, &errs);
	int (*entry)(struct cli *, const struct serve_opts *) = NULL;
	if (h)
		*(void **)&entry = dlsym(h, SERVE_ENTRY);
	if (!entry) {
		int rc = cli_error(1, "cannot load the serve module: %s",
				   h ? "cashet-serve.so has the wrong version" : errs.buf);
		sb_release(&errs);
		return rc;
	}
	sb_release(&errs);
	/* the module stays loaded: the server runs until the process ends */
	return entry(cli, opts);
}
