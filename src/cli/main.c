/* main: global options and the command table. Each subcommand lives in its
 * own cmd-<name>.c; this file only dispatches and prints errors once. */
#include "cli/cli.h"

#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

const struct command commands[] = {
	{ "init", cmd_init, "create a store in the current directory" },
	{ "exec", cmd_exec, "run a command, or replay its cached result" },
	{ "why", cmd_why, "say whether a command would hit, and what changed if not" },
	{ "log", cmd_log, "list runs, newest first" },
	{ "show", cmd_show, "show everything about a run" },
	{ "diff", cmd_diff, "show what differs between two runs" },
	{ "history", cmd_history, "list every run of a command line, oldest first" },
	{ "get", cmd_get, "print a run's stdout, stderr or an output file" },
	{ "rm", cmd_rm, "remove runs" },
	{ "stats", cmd_stats, "show store statistics" },
	{ "reindex", cmd_reindex, "rebuild the index from the git store" },
	{ "export", cmd_export, "write runs to an archive for another store" },
	{ "import", cmd_import, "add the runs of an archive made by export" },
	{ "gc", cmd_gc, "remove expired, old or least recently used runs and repack" },
	{ "clear", cmd_clear, "remove every run" },
	{ "invalidate", cmd_invalidate, "remove the runs with given tags" },
	{ "config", cmd_config, "get or set store settings (max-size)" },
	{ "fsck", cmd_fsck, "verify the store against git and repair the index" },
	{ "pipeline", cmd_pipeline, "run the steps of a dag.toml, replaying what is unchanged" },
	{ "remote", cmd_remote, "add, remove or list git remotes used as shared caches" },
	{ "push", cmd_push, "send runs to a git remote" },
	{ "pull", cmd_pull, "fetch a git remote's runs and index them" },
	{ "serve", cmd_serve, "serve the store over HTTP (JSON API and a remote cache)" },
	{ NULL, NULL, NULL },
};

static void print_warning(void *ctx, const char *msg)
{
	(void)ctx;
	fprintf(stderr, "cashet: %s\n", msg);
}

static void usage(FILE *f)
{
	fprintf(f, "usage: cashet [--store DIR] <command> [options] [args]\n\ncommands:\n");
	for (const struct command *c = commands; c->name; c++)
		fprintf(f, "  %-9s %s\n", c->name, c->summary);
	fprintf(f, "\nRun 'man cashet' or 'cashet <command> --help' for details.\n");
}

int cli_fail(int code)
{
	fprintf(stderr, "cashet: %s\n", err_msg());
	return code;
}

int cli_error(int code, const char *fmt, ...)
{
	va_list ap;
	fputs("cashet: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return code;
}

int cli_usage(const char *cmd, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "cashet %s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (see 'cashet %s --help')\n", cmd);
	return 2;
}

int cli_open_store(struct cli *cli, struct store **st)
{
	struct strbuf dir = STRBUF_INIT;
	int rc = store_find(cli->store_opt, &dir);
	if (rc == 1)
		err_set("no cashet store found (looked for %s in this directory and its parents; "
			"run 'cashet init' or set CASHET_DIR)",
			STORE_DIRNAME);
	else if (rc == 0)
		rc = store_open(dir.buf, 0, st, NULL);
	sb_release(&dir);
	return rc == 0 ? 0 : -1;
}

int cli_load_run(struct store *st, const char *prefix, struct run_record *r)
{
	char hash[OID_HEX];
	if (store_resolve(st, prefix, hash) < 0)
		return cli_fail(1);
	int rc = store_load(st, hash, r);
	if (rc < 0)
		return cli_fail(1);
	if (rc == 0)
		return cli_error(1, "no run %s", hash);
	return 0;
}

/* `--store DIR` is accepted after the command name too (exec and why parse
 * it themselves, since everything after their `--` is the command's). */
static int take_store_opt(struct cli *cli, const struct command *c, int argc, char **argv)
{
	if (c->fn == cmd_exec || c->fn == cmd_why)
		return argc;
	int out = 1;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--")) {
			while (i < argc)
				argv[out++] = argv[i++];
			break;
		}
		if (!strcmp(argv[i], "--store") && i + 1 < argc) {
			cli->store_opt = argv[++i];
			continue;
		}
		if (!strncmp(argv[i], "--store=", 8)) {
			cli->store_opt = argv[i] + 8;
			continue;
		}
		argv[out++] = argv[i];
	}
	argv[out] = NULL;
	return out;
}

int main(int argc, char **argv)
{
	struct cli cli = { 0 };
	int i = 1;
	/* A file size limit (ulimit -f) must fail a write with EFBIG, which
	 * is reported and leaves the store alone, not kill cashet half-way.
	 * The command gets the default back (spawn.c). */
	signal(SIGXFSZ, SIG_IGN);
	store_on_warning(print_warning, NULL);
	while (i < argc && argv[i][0] == '-') {
		if (!strcmp(argv[i], "--store") && i + 1 < argc) {
			cli.store_opt = argv[i + 1];
			i += 2;
		} else if (!strncmp(argv[i], "--store=", 8)) {
			cli.store_opt = argv[i] + 8;
			i++;
		} else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			usage(stdout);
			return 0;
		} else if (!strcmp(argv[i], "--version")) {
			printf("cashet %s\n", CASHET_VERSION);
			return 0;
		} else {
			fprintf(stderr, "cashet: unknown option '%s'\n", argv[i]);
			usage(stderr);
			return 2;
		}
	}
	if (i >= argc) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[i], "help")) {
		usage(stdout);
		return 0;
	}
	for (const struct command *c = commands; c->name; c++)
		if (!strcmp(c->name, argv[i]))
			return c->fn(&cli, take_store_opt(&cli, c, argc - i, argv + i), argv + i);
	fprintf(stderr, "cashet: '%s' is not a cashet command (see 'cashet --help')\n", argv[i]);
	return 2;
}
