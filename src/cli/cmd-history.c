/* cashet history: every run of one command line (argv + cwd, the lineage
 * that refs/cashet/lines/<line> and each commit's parent follow in git),
 * with what changed from one run to the next. `*` marks the run a hit would
 * replay now: store_lookup() of the fingerprint the command has now, its
 * observed inputs checked (for `-- CMD`), or the newest run of the given
 * run's fingerprint (for HASH: the files it read are those of its time). */
#include "cli/cli.h"
#include "key/explain.h"
#include "key/observed.h"
#include "util/json.h"

#include <stdlib.h>
#include <string.h>

struct history {
	struct store *st;
	char mark[OID_HEX]; /* the run a hit would replay, "" if none */
	int json;
	struct run_record prev; /* the previous run of the line, loaded fully */
	int have_prev;
	struct strvec rows; /* formatted, oldest first */
};

/* Observed inputs named in a row; past that, a count. */
#define ROW_INPUTS 3

/* What changed since the previous run: explain's sentences, the
 * fingerprint's parts and then the files and variables it was seen to
 * use. 0: no previous run; an empty list: the same (a --force or a retry). */
static int changes(struct history *h, const struct run_record *r, struct strvec *out)
{
	if (!h->have_prev)
		return 0;
	if (!digest_eq(&h->prev.fp, &r->fp))
		explain_diff_parts(h->st, &h->prev, r, out);
	explain_diff_inputs(&h->prev, r, ROW_INPUTS, out);
	return 1;
}

static int add_row(const struct run_record *listed, void *ctx)
{
	struct history *h = ctx;
	struct strvec why = STRVEC_INIT;
	struct strbuf sb = STRBUF_INIT;
	char when[40], dur[32];
	/* whole, observed inputs included: the listing's rows may not hold them */
	struct run_record full = { 0 };
	int lr = store_load(h->st, listed->hash, &full);
	if (lr < 0)
		return -1;
	const struct run_record *r = lr == 1 ? &full : listed;
	int have = changes(h, r, &why);
	int replay = !strcmp(h->mark, r->hash);
	if (h->json) {
		fmt_iso_time(r->created_ms, when, sizeof(when));
		sb_addf(&sb, "{\"hash\":\"%s\",\"parent\":", r->hash);
		json_str_or_null(&sb, r->parent[0] ? r->parent : NULL);
		sb_addf(&sb,
			",\"created\":\"%s\",\"status\":\"%s\",\"exit\":%d,\"duration_ms\":%lld,\"replay\":%s,"
			"\"changes\":",
			when, r->ok ? "ok" : "failed", r->exit_code, (long long)r->duration_ms,
			replay ? "true" : "false");
		if (have)
			json_str_array(&sb, &why);
		else
			sb_adds(&sb, "null");
		sb_addc(&sb, '}');
	} else {
		fmt_time(r->created_ms, when, sizeof(when));
		fmt_duration(r->duration_ms, dur, sizeof(dur));
		sb_addf(&sb, "%c %.12s  %-19s  %-6s  %4d  %8s  ", replay ? '*' : ' ', r->hash, when,
			r->ok ? "ok" : "failed", r->exit_code, dur);
		if (!have)
			sb_adds(&sb, "first run");
		else if (!why.n)
			sb_adds(&sb, "same inputs");
		for (size_t i = 0; i < why.n; i++)
			sb_addf(&sb, "%s%s", i ? "; " : "", why.v[i]);
	}
	sv_push_nocopy(&h->rows, sb_detach(&sb));
	sv_release(&why);
	/* the next row compares with this run, sources and all */
	run_record_free(&h->prev);
	h->prev = full;
	h->have_prev = lr == 1;
	return 0;
}

static void print_rows(const struct history *h, int reverse)
{
	if (h->json) {
		fputs("[", stdout);
		for (size_t i = 0; i < h->rows.n; i++)
			printf("%s%s", i ? ",\n " : "", h->rows.v[reverse ? h->rows.n - 1 - i : i]);
		puts("]");
		return;
	}
	if (!h->rows.n)
		return;
	printf("  %-12s  %-19s  %-6s  %4s  %8s  %s\n", "HASH", "CREATED", "STATUS", "EXIT", "DURATION", "CHANGES");
	for (size_t i = 0; i < h->rows.n; i++)
		puts(h->rows.v[reverse ? h->rows.n - 1 - i : i]);
}

struct history_opts {
	int reverse, json;
	struct exec_opts exec; /* with -- COMMAND: what gives its fingerprint, as for why */
};

#define OPTS struct history_opts
static const struct opt history_rows[] = {
	OPT_BOOL("reverse", 0, reverse, "newest first (default: oldest first)"),
	OPT_BOOL("json", 0, json, "print JSON: [{hash, parent, created, status, exit, duration_ms, replay, changes}]"),
	OPT_END,
};

static const struct history_opts history_defaults = { .exec = EXEC_OPTS_INIT };

/* HASH alone, or exec options and -- COMMAND (main counted the operands). */
static int check_history(const void *opts, int argc, char **argv, int dashdash)
{
	const struct history_opts *o = opts;
	if (dashdash > 0)
		return err_set("unexpected argument '%s' (a command goes after '--')", argv[0]);
	if (dashdash < 0 && exec_opts_given(&o->exec))
		return err_set("exec options need a command: '-- COMMAND' after them");
	return 0;
}

const struct opt_table cmd_history_options = {
	OPT_ROWS(history_rows),
	.defaults = &history_defaults,
	.help = "HASH is a run (or a unique prefix): the runs of its command line are listed.\n"
		"With -- COMMAND, the runs of that command line: the exec options (see\n"
		"'cashet exec --help') give its fingerprint, as for 'cashet why'.\n"
		"'*' marks the run a hit would replay now; CHANGES says what differs from the run before.\n",
	.check = check_history,
	.shared = &cmd_exec_options,
	.shared_at = offsetof(struct history_opts, exec),
};
#undef OPTS

int cmd_history(struct cli *cli, void *opts, int argc, char **argv)
{
	struct history_opts *o = opts;
	struct history h = { .st = cli->st, .json = o->json };
	struct run_record r = { 0 }, hit = { 0 };
	int rc = 1;
	if (cli->dashdash == 0) {
		if (exec_cli_fingerprint(&o->exec, argv, cli->st, &r) < 0) {
			cli_fail(1);
			goto out;
		}
	} else if (cli_load_run(cli->st, argv[0], &r)) {
		goto out;
	}
	struct obs_match m = { .st = h.st, .why = STRBUF_INIT };
	struct store_lookup_opts lo = { .allow_failed = o->exec.cache_failures,
					.now = now_ms(),
					.accept = cli->dashdash == 0 ? obs_accept : NULL,
					.ctx = &m };
	int l = store_lookup(h.st, &r.fp, &lo, &hit);
	sb_release(&m.why);
	if (l < 0) {
		cli_fail(1);
		goto out;
	}
	if (l == 1)
		memcpy(h.mark, hit.hash, sizeof(h.mark));
	if (store_line_history(h.st, &r.line, add_row, &h) < 0) {
		cli_fail(1);
		goto out;
	}
	print_rows(&h, o->reverse);
	rc = 0;
out:
	run_record_free(&h.prev);
	run_record_free(&r);
	run_record_free(&hit);
	sv_release(&h.rows);
	return rc;
}
