/* cashet log: runs newest first, as a table or as JSON lines. */
#include "cli/cli.h"
#include "cli/runjson.h"

#include <limits.h>
#include <stdlib.h>

struct log_ctx {
	struct store *st;
	int json;
	int signatures; /* each run's signer too: a git module load and an ssh-keygen per signed run */
	int count;
};

static int print_run(const struct run_record *r, void *ctx)
{
	struct log_ctx *lc = ctx;
	char *cmd = run_cmdline(r);
	char when[32], dur[32];
	if (lc->json) {
		struct strbuf sb = STRBUF_INIT;
		sb_adds(&sb, lc->count ? ",\n " : "[");
		runjson_log(&sb, r);
		if (lc->signatures && sb.len && sb.buf[sb.len - 1] == '}') {
			struct strbuf text = STRBUF_INIT;
			sb_setlen(&sb, sb.len - 1);
			cli_signature(lc->st, r->hash, &text, &sb);
			sb_addc(&sb, '}');
			sb_release(&text);
		}
		fputs(sb.buf, stdout);
		sb_release(&sb);
	} else {
		if (!lc->count)
			printf("%-12s  %-19s  %-6s  %4s  %8s  %s\n", "HASH", "CREATED", "STATUS", "EXIT", "DURATION",
			       "COMMAND");
		fmt_time(r->created_ms, when, sizeof(when));
		fmt_duration(r->duration_ms, dur, sizeof(dur));
		printf("%.12s  %-19s  %-6s  %4d  %8s  %s%s%s%s\n", r->hash, when, r->ok ? "ok" : "failed", r->exit_code,
		       dur, r->name ? "[" : "", r->name ? r->name : "", r->name ? "] " : "", cmd);
		if (lc->signatures) {
			struct strbuf text = STRBUF_INIT;
			cli_signature(lc->st, r->hash, &text, NULL);
			printf("              %s\n", text.buf);
			sb_release(&text);
		}
	}
	lc->count++;
	free(cmd);
	return 0;
}

struct log_opts {
	struct log_filter f;
	int json;
	int signatures;
};

#define OPTS struct log_opts
static const struct opt log_rows[] = {
	OPT_INT("limit", 'n', f.limit, "N", 1, INT_MAX, "list at most N runs"),
	OPT_STRING("name", 0, f.name, "NAME", "only the runs named NAME"),
	OPT_STRING("cmd", 0, f.cmd_substr, "TEXT", "only the runs whose command line contains TEXT"),
	OPT_CHOICE("status", 0, f.status, "ok|failed", "only the runs that succeeded, or failed"),
	OPT_LIST("tag", 't', f.tags, "K=V|K", "only the runs with this tag (repeatable: with all of them)"),
	OPT_BOOL("json", 0, json, "print JSON"),
	OPT_BOOL("signatures", 0, signatures, "also say who signed each run (checked against trust.allowed-signers)"),
	OPT_END,
};

const struct opt_table cmd_log_options = {
	OPT_ROWS(log_rows),
};
#undef OPTS

int cmd_log(struct cli *cli, void *opts, int argc, char **argv)
{
	const struct log_opts *o = opts;
	struct log_ctx lc = { .st = cli->st, .json = o->json, .signatures = o->signatures };
	if (store_list(cli->st, &o->f, print_run, &lc) < 0)
		return cli_fail(1);
	if (lc.json)
		puts(lc.count ? "]" : "[]");
	return 0;
}
