/* cashet show HASH: everything recorded about a run. */
#include "cli/cli.h"
#include "cli/runjson.h"

#include <stdlib.h>
#include <string.h>

static const char *kind_name(int kind)
{
	return kind == FILE_STDOUT   ? "stdout"
	       : kind == FILE_STDERR ? "stderr"
	       : kind == FILE_OUTPUT ? "output"
				     : "source";
}

static void show_json(const struct run_record *r)
{
	struct strbuf sb = STRBUF_INIT;
	runjson_show(&sb, r);
	puts(sb.buf);
	sb_release(&sb);
}

static void show_text(const struct run_record *r)
{
	char when[40], hx[DIGEST_HEX], size[32];
	char *cmd = run_cmdline(r);
	printf("run         %s\n", r->hash);
	printf("command     %s\n", cmd);
	if (r->name)
		printf("name        %s\n", r->name);
	printf("cwd         %s\n", r->cwd ? r->cwd : ".");
	printf("status      %s (exit %d)\n", r->ok ? "ok" : "failed", r->exit_code);
	fmt_duration(r->duration_ms, when, sizeof(when));
	printf("duration    %s\n", when);
	fmt_time(r->created_ms, when, sizeof(when));
	printf("created     %s\n", when);
	fmt_time(r->last_used_ms, when, sizeof(when));
	printf("last used   %s\n", when);
	if (r->expires_ms) {
		fmt_time(r->expires_ms, when, sizeof(when));
		printf("expires     %s\n", when);
	}
	printf("parent      %s\n", r->parent[0] ? r->parent : "-");
	digest_hex(&r->fp, hx);
	printf("fingerprint %s\n", hx);
	if (r->tags.n) {
		printf("tags       ");
		for (size_t i = 0; i < r->tags.n; i++)
			printf(" %s", r->tags.v[i]);
		putchar('\n');
	}
	printf("inputs:\n");
	for (size_t i = 0; i < r->nparts; i++) {
		digest_hex(&r->parts[i].hash, hx);
		printf("  %-11s %s  %s\n", r->parts[i].kind, hx, r->parts[i].name);
	}
	printf("observed    %s", run_observed_name(r->observed));
	if (r->observed == OBSERVED_TRACED)
		printf(", %zu inputs (never inputs: /proc, /sys, /dev, the store, __pycache__, declared outputs, what it "
		       "wrote, and the ignore parts above)",
		       r->ninputs);
	putchar('\n');
	for (size_t i = 0; i < r->ninputs; i++) {
		const struct run_input *in = &r->inputs[i];
		digest_hex(&in->d, hx);
		printf("  %-11s %-32s  %s\n", run_input_kind_name(in->kind),
		       in->kind == INPUT_ABSENT || in->kind == INPUT_DIR ? "-" : hx, in->path);
	}
	printf("files:\n");
	for (size_t i = 0; i < r->nfiles; i++) {
		const struct run_file *f = &r->files[i];
		fmt_size(f->size, size, sizeof(size));
		printf("  %-6s %06o %8s  %.12s  %s\n", kind_name(f->kind), f->mode, size, f->oid, f->path);
	}
	free(cmd);
}

int cmd_show(struct cli *cli, int argc, char **argv)
{
	struct store *st = NULL;
	struct run_record r = { 0 };
	const char *hash = NULL;
	int json = 0, rc;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json")) {
			json = 1;
		} else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			puts("usage: cashet show [--json] HASH");
			return 0;
		} else if (argv[i][0] == '-' || hash) {
			return cli_usage("show", "unexpected argument '%s'", argv[i]);
		} else {
			hash = argv[i];
		}
	}
	if (!hash)
		return cli_usage("show", "no run given (usage: cashet show [--json] HASH)");
	if (cli_open_store(cli, &st) < 0)
		return cli_fail(1);
	rc = cli_load_run(st, hash, &r);
	if (rc == 0) {
		if (json)
			show_json(&r);
		else
			show_text(&r);
	}
	run_record_free(&r);
	store_close(st);
	return rc;
}
