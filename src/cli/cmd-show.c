/* cashet show HASH: everything recorded about a run. */
#include "cli/cli.h"
#include "cli/runjson.h"

#include <stdlib.h>

/* The same JSON as serve's GET /run (who signed is in log --signatures
 * --json: checking it loads the git module and runs ssh-keygen). */
static void show_json(const struct run_record *r)
{
	struct strbuf sb = STRBUF_INIT;
	runjson_show(&sb, r);
	puts(sb.buf);
	sb_release(&sb);
}

static void show_text(struct store *st, const struct run_record *r)
{
	struct strbuf signer = STRBUF_INIT;
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
	cli_signature(st, r->hash, &signer, NULL);
	printf("signature   %s\n", signer.buf);
	sb_release(&signer);
	digest_hex(&r->fp, hx);
	printf("fingerprint %s\n", hx);
	if (r->tags.n) {
		printf("tags       ");
		for (size_t i = 0; i < r->tags.n; i++)
			printf(" %s", r->tags.v[i]);
		putchar('\n');
	}
	if (r->metrics.n) {
		printf("metrics    ");
		for (size_t i = 0; i < r->metrics.n; i++)
			printf(" %s", r->metrics.v[i]);
		putchar('\n');
	}
	printf("inputs:\n");
	for (size_t i = 0; i < r->nparts; i++) {
		digest_hex(&r->parts[i].hash, hx);
		printf("  %-11s %s  %s\n", r->parts[i].kind, hx, r->parts[i].name);
	}
	printf("observed    %s", run_observed_name(r->observed));
	if (r->observed == OBSERVED_TRACED)
		printf(", %zu inputs (never inputs: /proc, /sys, /dev but /dev/shm, the store, __pycache__, declared outputs, what it "
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
		printf("  %-6s %06o %8s  %.12s  %s\n", runjson_kind_name(f->kind), f->mode, size, f->oid, f->path);
	}
	free(cmd);
}

int cmd_show(struct cli *cli, void *opts, int argc, char **argv)
{
	const struct json_opts *o = opts;
	struct run_record r = { 0 };
	int rc = cli_load_run(cli->st, argv[0], &r);
	if (rc == 0 && o->json)
		show_json(&r);
	else if (rc == 0)
		show_text(cli->st, &r);
	run_record_free(&r);
	return rc;
}
