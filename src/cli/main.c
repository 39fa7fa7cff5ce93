/* main: the command table and the one path every command takes: the global
 * options, the command's options parsed from its table (and --help made
 * from it), the operands counted, the store opened, then the handler.
 * Each command lives in its own cmd-<name>.c and exports its entry. */
#include "cli/cli.h"
#include "cli/runjson.h"
#include "store/trust.h"
#include "util/json.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* The commands, in the order `cashet --help` lists them: name; handler and
 * option table (cmd-<name>.c); what main does first (enum cmd_flags); the
 * operands, as the usage line shows them; summary; subcommands. */
const struct command commands[] = {
	{ "init", cmd_init, &cmd_init_options, 0, "[DIR]", "create a store in the current directory", NULL },
	{ "exec", cmd_exec, &cmd_exec_options, CMD_STOP, "-- COMMAND [ARGS...]",
	  "run a command, or replay its cached result", NULL },
	{ "why", cmd_why, &cmd_why_options, CMD_STOP, "-- COMMAND [ARGS...]",
	  "say whether a command would hit, and what changed if not", NULL },
	{ "log", cmd_log, &cmd_log_options, CMD_STORE, NULL, "list runs, newest first", NULL },
	{ "show", cmd_show, &runjson_options, CMD_STORE, "HASH", "show everything about a run", NULL },
	{ "diff", cmd_diff, &cmd_diff_options, CMD_STORE | CMD_EXIT_2, "A B", "show what differs between two runs",
	  NULL },
	{ "history", cmd_history, &cmd_history_options, CMD_STORE, "HASH\n-- COMMAND [ARGS...]",
	  "list every run of a command line, oldest first", NULL },
	{ "get", cmd_get, &cmd_get_options, CMD_STORE, "HASH", "print a run's stdout, stderr or an output file", NULL },
	{ "rm", cmd_rm, &cmd_rm_options, CMD_STORE, "HASH...", "remove runs", NULL },
	{ "stats", cmd_stats, &runjson_options, CMD_STORE, NULL, "show store statistics", NULL },
	{ "reindex", cmd_reindex, NULL, CMD_STORE, NULL, "rebuild the index from the git store", NULL },
	{ "export", cmd_export, &cmd_export_options, CMD_STORE, "FILE [HASH...]",
	  "write runs to an archive for another store", NULL },
	/* importing into a fresh checkout is the point: like exec, import creates the store */
	{ "import", cmd_import, &cmd_import_options, CMD_STORE_CREATE, "FILE",
	  "add the runs of an archive made by export", NULL },
	{ "gc", cmd_gc, &cmd_gc_options, CMD_STORE, NULL, "remove expired, old or least recently used runs and repack",
	  NULL },
	{ "clear", cmd_clear, &cmd_clear_options, CMD_STORE, NULL, "remove every run", NULL },
	{ "invalidate", cmd_invalidate, &cmd_invalidate_options, CMD_STORE, NULL, "remove the runs with given tags",
	  NULL },
	{ "config", cmd_config, &cmd_config_options, CMD_STORE | CMD_ANY_CONFIG, "KEY [VALUE]",
	  "get or set store settings (max-size)", NULL },
	{ "fsck", cmd_fsck, &cmd_fsck_options, CMD_STORE, NULL, "verify the store against git and repair the index",
	  NULL },
	/* the pipeline finds its store from the dag.toml's directory */
	{ "pipeline", NULL, &cmd_pipeline_options, 0, NULL, "run the steps of a dag.toml, replaying what is unchanged",
	  cmd_pipeline_subs },
	{ "exp", NULL, NULL, 0, NULL, "compare runs as experiments: their params and metrics in a table",
	  cmd_exp_subs },
	{ "metrics", NULL, NULL, 0, NULL, "compare the metrics of two runs", cmd_metrics_subs },
	{ "params", NULL, NULL, 0, NULL, "compare the params of two runs", cmd_params_subs },
	{ "remote", NULL, NULL, 0, NULL, "add, remove or list git remotes used as shared caches", cmd_remote_subs },
	{ "push", cmd_push, &cmd_push_options, CMD_STORE, "[REMOTE]", "send runs to a git remote", NULL },
	{ "pull", cmd_pull, &cmd_pull_options, CMD_STORE, "[REMOTE]", "fetch a git remote's runs and index them",
	  NULL },
	/* the serve module opens the store once it has checked the options */
	{ "serve", cmd_serve, &cmd_serve_options, 0, NULL, "serve the store over HTTP (JSON API and a remote cache)",
	  NULL },
	{ NULL, NULL, NULL, 0, NULL, NULL, NULL },
};

static void print_warning(void *ctx, const char *msg)
{
	(void)ctx;
	fprintf(stderr, "cashet: %s\n", msg);
}

#define OPTS struct cli
/* Every command takes these too, before or after its name. */
static const struct opt global_options[] = {
	OPT_STRING("store", 0, store_opt, "DIR", "use the store at DIR"),
	OPT_END,
};
/* Only before the command name. */
static const struct opt top_options[] = {
	OPT_BOOL("version", 0, version, "print the version"),
	OPT_END,
};
#undef OPTS

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

int cli_open_store(struct cli *cli, unsigned flags, struct store **st, int *created)
{
	struct strbuf dir = STRBUF_INIT;
	int rc = store_find(cli->store_opt, &dir);
	if (rc == 1 && !(flags & STORE_CREATE))
		err_set("no cashet store found (looked for %s in this directory and its parents; "
			"run 'cashet init' or set CASHET_DIR)",
			STORE_DIRNAME);
	else if (rc >= 0)
		rc = store_open(dir.buf, flags, st, created);
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

void cli_signature(struct store *st, const char *hash, struct strbuf *text, struct strbuf *json)
{
	struct trust_verdict v = { 0 };
	if (store_signer(st, hash, &v) < 0) {
		sb_addf(text, "not checked: %s", err_msg());
		if (json) {
			sb_adds(json, ",\"signature\":null,\"signer\":null");
		}
		err_clear();
	} else {
		trust_describe(&v, text);
		if (json) {
			sb_addf(json, ",\"signature\":\"%s\",\"signer\":", trust_state_name(v.state));
			json_str_or_null(json, v.who.len ? v.who.buf : NULL);
		}
	}
	sb_release(&v.who);
}

/* "usage: cashet NAME [options] OPERANDS", a line for each form of the operands. */
static void usage_lines(FILE *f, const struct command *c, const char *name, int *first)
{
	const char *p = c->operands ? c->operands : "";
	do {
		size_t n = strcspn(p, "\n");
		fprintf(f, "%s cashet %s [options]%s%.*s\n", *first ? "usage:" : "      ", name, n ? " " : "", (int)n,
			p);
		*first = 0;
		p += n + (p[n] == '\n');
	} while (*p);
}

/* --help, made from the table: usage, summary, options (or subcommands), prose. */
static void print_help(const struct command *c, const char *name, const struct opt_set *sets, size_t nsets)
{
	struct strbuf sub = STRBUF_INIT;
	int first = 1;
	if (c->subs) {
		for (const struct command *s = c->subs; s->name; s++) {
			sb_reset(&sub);
			sb_addf(&sub, "%s %s", name, s->name);
			usage_lines(stdout, s, sub.buf, &first);
		}
		printf("%s\n\nsubcommands:\n", c->summary);
		for (const struct command *s = c->subs; s->name; s++)
			printf("  %-9s %s\n", s->name, s->summary);
	} else {
		usage_lines(stdout, c, name, &first);
		printf("%s\n\noptions:\n", c->summary);
		opt_help(stdout, sets, nsets);
	}
	if (c->options && c->options->help)
		printf("\n%s", c->options->help);
	if (c->subs)
		printf("\nRun 'cashet %s SUBCOMMAND --help' for the options of each.\n", name);
	sb_release(&sub);
}

/* The next word of a usage form, from *p to end: its length, 0 at the end. */
static size_t next_word(const char **p, const char *end, const char **word)
{
	while (*p < end && **p == ' ')
		(*p)++;
	*word = *p;
	while (*p < end && **p != ' ')
		(*p)++;
	return (size_t)(*p - *word);
}

/* The form of the operands (a line of c->operands) that applies: the one
 * with a "--" if the command line had one, else one without. */
static const char *operand_form(const struct command *c, int dashdash, const char **end)
{
	const char *line = c->operands ? c->operands : "", *word;
	for (;;) {
		const char *eol = line + strcspn(line, "\n"), *p = line;
		int has = 0;
		size_t n;
		while ((n = next_word(&p, eol, &word)))
			has |= n == 2 && !strncmp(word, "--", 2);
		if (has == (dashdash >= 0) || !*eol) {
			/* none fits: the last form, and its count will say what is wrong */
			*end = eol;
			return line;
		}
		line = eol + 1;
	}
}

/* Checks the operand count against the usage form: WORD is one more
 * needed, [WORD] one more allowed, a "..." any number; "--" is none. */
static int count_operands(const struct command *c, const char *name, int dashdash, int argc, char **argv)
{
	const char *end, *form = operand_form(c, dashdash, &end), *p = form, *word, *missing = NULL;
	int need = 0, most = 0, missing_len = 0;
	size_t n;
	while ((n = next_word(&p, end, &word))) {
		if (n == 2 && !strncmp(word, "--", 2))
			continue;
		if (word[0] != '[' && need++ == argc) {
			missing = word;
			missing_len = (int)n - (memmem(word, n, "...", 3) ? 3 : 0);
		}
		most = most < 0 || memmem(word, n, "...", 3) ? -1 : most + 1;
	}
	if (missing)
		return cli_usage(name, "missing %.*s (usage: cashet %s [options] %.*s)", missing_len, missing, name,
				 (int)(end - form), form);
	if (most >= 0 && argc > most)
		return cli_usage(name, "unexpected argument '%s'", argv[most]);
	return 0;
}

/* `cashet CMD SUB ...`: the global options may stand before SUB. */
static int run_command(struct cli *cli, const struct command *c, struct strbuf *name, int argc, char **argv);

static int run_subcommand(struct cli *cli, const struct command *c, struct strbuf *name, int argc, char **argv)
{
	const struct opt_set set = { global_options, cli };
	const struct command *sub = NULL;
	struct strbuf known = STRBUF_INIT;
	struct opt_args args;
	int rc;

	switch (opt_parse(&set, 1, OPT_STOP_AT_OPERAND, argc, argv, &args)) {
	case OPT_HELP:
		print_help(c, name->buf, &set, 1);
		return 0;
	case OPT_ERROR:
		return cli_usage(name->buf, "%s", err_msg());
	case OPT_OK:
		break;
	}
	for (const struct command *s = c->subs; s->name && !sub; s++)
		if (args.argc ? !strcmp(s->name, args.argv[0]) : (s->flags & CMD_DEFAULT) != 0)
			sub = s;
	if (sub && args.argc)
		return run_command(cli, sub, name, args.argc, args.argv);
	if (sub) {
		char *only[] = { (char *)sub->name, NULL };
		return run_command(cli, sub, name, 1, only);
	}
	for (const struct command *s = c->subs; s->name; s++)
		sb_addf(&known, "%s%s", !known.len ? "" : s[1].name ? ", " : " or ", s->name);
	if (args.argc)
		rc = cli_usage(name->buf, "unknown subcommand '%s' (%s)", args.argv[0], known.buf);
	else
		rc = cli_usage(name->buf, "no subcommand given (%s)", known.buf);
	sb_release(&known);
	return rc;
}

/* Runs command c on argv (argv[0] is its name); name is what the user typed
 * so far ("pipeline"), for messages. */
static int run_command(struct cli *cli, const struct command *c, struct strbuf *name, int argc, char **argv)
{
	const struct opt_table *t = c->options;
	struct opt_set sets[3];
	struct opt_args args;
	size_t nsets = 0;
	void *opts = NULL;
	int rc;

	if (name->len)
		sb_addc(name, ' ');
	sb_adds(name, c->name);
	cli->name = name->buf;
	if (c->subs)
		return run_subcommand(cli, c, name, argc, argv);
	if (t && t->size) {
		opts = xcalloc(1, t->size);
		if (t->defaults)
			memcpy(opts, t->defaults, t->size);
	}
	/* --help lists the first two: the shared options have their own */
	sets[nsets++] = (struct opt_set){ t ? t->opts : NULL, opts };
	sets[nsets++] = (struct opt_set){ global_options, cli };
	if (t && t->shared)
		sets[nsets++] = (struct opt_set){ t->shared->opts, (char *)opts + t->shared_at };
	switch (opt_parse(sets, nsets, c->flags & CMD_STOP ? OPT_STOP_AT_OPERAND : OPT_PERMUTE, argc, argv, &args)) {
	case OPT_HELP:
		print_help(c, name->buf, sets, 2);
		rc = 0;
		goto out;
	case OPT_ERROR:
		rc = cli_usage(name->buf, "%s", err_msg());
		goto out;
	case OPT_OK:
		break;
	}
	cli->dashdash = args.dashdash;
	if ((rc = count_operands(c, name->buf, args.dashdash, args.argc, args.argv)) != 0)
		goto out;
	if (t && t->check && t->check(opts, args.argc, args.argv, args.dashdash) < 0) {
		rc = cli_usage(name->buf, "%s", err_msg());
		goto out;
	}
	if (c->flags & (CMD_STORE | CMD_STORE_CREATE) &&
	    cli_open_store(cli,
			   (c->flags & CMD_STORE_CREATE ? STORE_CREATE : 0) |
				   (c->flags & CMD_ANY_CONFIG ? STORE_ANY_CONFIG : 0),
			   &cli->st, NULL) < 0) {
		rc = cli_fail(c->flags & CMD_EXIT_2 ? 2 : 1);
		goto out;
	}
	rc = c->fn(cli, opts, args.argc, args.argv);
out:
	store_close(cli->st);
	cli->st = NULL;
	opt_release(sets, nsets);
	free(opts);
	return rc;
}

static void print_table_options(const char *name, const struct command *c)
{
	for (const struct opt *o = c->options ? c->options->opts : NULL; o && o->name; o++)
		printf("%s --%s\n", name, o->name);
}

/* `cashet __options`, left out of --help on purpose: every command's long
 * options from the tables, a "CMD [SUB] --OPTION" line each.
 * tests/bats/90-docs.bats reads it to check that the man page, the
 * completions and the README name them all. */
static int print_options(void)
{
	struct strbuf name = STRBUF_INIT;
	for (const struct command *c = commands; c->name; c++) {
		print_table_options(c->name, c);
		for (const struct command *s = c->subs; s && s->name; s++) {
			sb_reset(&name);
			sb_addf(&name, "%s %s", c->name, s->name);
			print_table_options(name.buf, s);
		}
	}
	sb_release(&name);
	return 0;
}

int main(int argc, char **argv)
{
	struct cli cli = { .dashdash = -1 };
	const struct opt_set sets[] = { { global_options, &cli }, { top_options, &cli } };
	struct strbuf name = STRBUF_INIT;
	struct opt_args args;
	/* the command line as given (parsing moves the operands in argv),
	 * for the process's life: static, so no leak checker counts it */
	static char **given;
	int rc = 2;

	/* A closed standard stream would be the number of the next file
	 * cashet opens (its signal pipe: the command's output was written
	 * into it and taken for signals), and the command would inherit that
	 * file: /dev/null stands in for it, as git does. */
	for (int fd = 0; fd <= 2; fd++)
		if (fcntl(fd, F_GETFD) < 0 && errno == EBADF) {
			int nul = open("/dev/null", fd ? O_WRONLY : O_RDONLY);
			if (nul >= 0 && nul != fd) {
				dup2(nul, fd);
				close(nul);
			}
		}
	given = xcalloc((size_t)argc + 1, sizeof(*given));
	memcpy(given, argv, (size_t)argc * sizeof(*argv));
	cli.argv = given;

	/* A file size limit (ulimit -f) must fail a write with EFBIG, which
	 * is reported and leaves the store alone, not kill cashet half-way.
	 * The command gets the default back (spawn.c). */
	signal(SIGXFSZ, SIG_IGN);
	store_on_warning(print_warning, NULL);
	switch (opt_parse(sets, 2, OPT_STOP_AT_OPERAND, argc, argv, &args)) {
	case OPT_HELP:
		usage(stdout);
		return 0;
	case OPT_ERROR:
		/* one line, as a command's own option errors are */
		fprintf(stderr, "cashet: %s (see 'cashet --help')\n", err_msg());
		return 2;
	case OPT_OK:
		break;
	}
	if (cli.version) {
		printf("cashet %s\n", CASHET_VERSION);
		return 0;
	}
	if (!args.argc) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(args.argv[0], "help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(args.argv[0], "__options"))
		return print_options();
	for (const struct command *c = commands; c->name; c++)
		if (!strcmp(c->name, args.argv[0])) {
			rc = run_command(&cli, c, &name, args.argc, args.argv);
			sb_release(&name);
			return rc;
		}
	fprintf(stderr, "cashet: '%s' is not a cashet command (see 'cashet --help')\n", args.argv[0]);
	return 2;
}
