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

static const char history_usage[] =
	"usage: cashet history [--reverse] [--json] HASH\n"
	"       cashet history [--reverse] [--json] [exec options] -- COMMAND [ARGS...]\n"
	"  HASH        a run (or a unique prefix): list the runs of its command line\n"
	"  COMMAND     list the runs of this command line; the exec options (see\n"
	"              'cashet exec --help') give its fingerprint, as for 'cashet why'\n"
	"  --reverse   newest first (default: oldest first)\n"
	"  --json      print JSON: [{hash, parent, created, status, exit, duration_ms, replay, changes}]\n"
	"'*' marks the run a hit would replay now; CHANGES says what differs from the run before.\n";

/* What changed since the previous run: explain's sentences. NULL: no
 * previous run; an empty list: the same fingerprint (a --force or a retry). */
static int changes(struct history *h, const struct run_record *r, struct strvec *out)
{
	if (!h->have_prev)
		return 0;
	if (!digest_eq(&h->prev.fp, &r->fp))
		explain_diff_parts(h->st, &h->prev, r, out);
	return 1;
}

static int add_row(const struct run_record *r, void *ctx)
{
	struct history *h = ctx;
	struct strvec why = STRVEC_INIT;
	struct strbuf sb = STRBUF_INIT;
	char when[40], dur[32];
	int have = changes(h, r, &why);
	int replay = !strcmp(h->mark, r->hash);
	if (h->json) {
		fmt_iso_time(r->created_ms, when, sizeof(when));
		sb_addf(&sb, "{\"hash\":\"%s\",\"parent\":", r->hash);
		if (r->parent[0])
			sb_addf(&sb, "\"%s\"", r->parent);
		else
			sb_adds(&sb, "null");
		sb_addf(&sb,
			",\"created\":\"%s\",\"status\":\"%s\",\"exit\":%d,\"duration_ms\":%lld,\"replay\":%s,"
			"\"changes\":",
			when, r->ok ? "ok" : "failed", r->exit_code, (long long)r->duration_ms,
			replay ? "true" : "false");
		if (have) {
			sb_addc(&sb, '[');
			for (size_t i = 0; i < why.n; i++) {
				if (i)
					sb_addc(&sb, ',');
				json_str(&sb, why.v[i]);
			}
			sb_addc(&sb, ']');
		} else {
			sb_adds(&sb, "null");
		}
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
	h->have_prev = 0;
	int lr = store_load(h->st, r->hash, &h->prev);
	if (lr < 0)
		return -1;
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

int cmd_history(struct cli *cli, int argc, char **argv)
{
	struct history h = { 0 };
	struct run_record r = { 0 }, hit = { 0 };
	struct strvec eargv = STRVEC_INIT;
	const char *hash = NULL;
	int reverse = 0, dashes = 0, rc = 1, cache_failures = 0;
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "--")) {
			dashes = i;
			break;
		}
	sv_push(&eargv, "history");
	/* history's own options may come anywhere before "--"; the rest there
	 * are exec's, which pick the fingerprint */
	for (int i = 1; i < (dashes ? dashes : argc); i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--reverse")) {
			reverse = 1;
		} else if (!strcmp(a, "--json")) {
			h.json = 1;
		} else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			fputs(history_usage, stdout);
			rc = 0;
			goto out;
		} else if (dashes) {
			sv_push(&eargv, a);
		} else if (a[0] == '-' || hash) {
			rc = cli_usage("history", "unexpected argument '%s' (a command goes after '--')", a);
			goto out;
		} else {
			hash = a;
		}
	}
	if (dashes) {
		for (int i = dashes; i < argc; i++)
			sv_push(&eargv, argv[i]);
		rc = exec_cli_fingerprint(cli, (int)eargv.n, eargv.v, &h.st, &r, &cache_failures);
		if (rc || !h.st)
			goto out;
		rc = 1;
	} else {
		if (!hash) {
			rc = cli_usage("history", "no run or command given (usage: cashet history HASH | -- COMMAND)");
			goto out;
		}
		if (cli_open_store(cli, &h.st) < 0) {
			cli_fail(1);
			goto out;
		}
		if (cli_load_run(h.st, hash, &r))
			goto out;
	}
	struct obs_match m = { .st = h.st, .why = STRBUF_INIT };
	struct store_lookup_opts lo = {
		.allow_failed = cache_failures, .now = now_ms(), .accept = dashes ? obs_accept : NULL, .ctx = &m
	};
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
	print_rows(&h, reverse);
	rc = 0;
out:
	run_record_free(&h.prev);
	run_record_free(&r);
	run_record_free(&hit);
	sv_release(&h.rows);
	sv_release(&eargv);
	store_close(h.st);
	return rc;
}
