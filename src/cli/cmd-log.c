/* cashet log: runs newest first, as a table or as JSON lines. */
#include "cli/cli.h"
#include "cli/runjson.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

struct log_ctx {
	int json;
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
	}
	lc->count++;
	free(cmd);
	return 0;
}

int cmd_log(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "limit", required_argument, NULL, 'n' }, { "name", required_argument, NULL, 'N' },
		{ "cmd", required_argument, NULL, 'c' },   { "status", required_argument, NULL, 's' },
		{ "tag", required_argument, NULL, 't' },   { "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },        { NULL, 0, NULL, 0 },
	};
	struct log_filter f = { 0 };
	struct log_ctx lc = { 0 };
	struct store *st = NULL;
	int c, rc = 1;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "n:t:h", opts, NULL)) != -1) {
		switch (c) {
		case 'n': {
			char *end;
			f.limit = (int)strtol(optarg, &end, 10);
			if (*end || f.limit <= 0) {
				rc = cli_usage("log", "-n: expected a positive number, got '%s'", optarg);
				goto out;
			}
			break;
		}
		case 'N':
			f.name = optarg;
			break;
		case 'c':
			f.cmd_substr = optarg;
			break;
		case 's':
			if (strcmp(optarg, "ok") && strcmp(optarg, "failed")) {
				rc = cli_usage("log", "--status: expected 'ok' or 'failed', got '%s'", optarg);
				goto out;
			}
			f.status = optarg;
			break;
		case 't':
			sv_push(&f.tags, optarg);
			break;
		case 'j':
			lc.json = 1;
			break;
		case 'h':
			puts("usage: cashet log [-n|--limit N] [--name NAME] [--cmd TEXT] [--status ok|failed] [--tag K=V|K]... [--json]");
			rc = 0;
			goto out;
		default:
			rc = cli_usage("log", "unknown option or missing value: '%s'", argv[optind - 1]);
			goto out;
		}
	}
	if (optind < argc) {
		rc = cli_usage("log", "unexpected argument '%s'", argv[optind]);
		goto out;
	}
	if (cli_open_store(cli, &st) < 0 || store_list(st, &f, print_run, &lc) < 0) {
		rc = cli_fail(1);
		goto out;
	}
	if (lc.json)
		puts(lc.count ? "]" : "[]");
	rc = 0;
out:
	store_close(st);
	sv_release(&f.tags);
	return rc;
}
