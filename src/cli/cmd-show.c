/* cashet show HASH: everything recorded about a run. */
#include "cli.h"
#include "json.h"

#include <stdlib.h>
#include <string.h>

static const char *kind_name(int kind)
{
	return kind == FILE_STDOUT ? "stdout" : kind == FILE_STDERR ? "stderr" : kind == FILE_OUTPUT ? "output" : "source";
}

static void show_json(const struct run_record *r)
{
	struct strbuf sb = STRBUF_INIT;
	char when[40], hx[DIGEST_HEX];
	char *cmd = run_cmdline(r);
	sb_addf(&sb, "{\"hash\":\"%s\",\"parent\":", r->hash);
	if (r->parent[0])
		sb_addf(&sb, "\"%s\"", r->parent);
	else
		sb_adds(&sb, "null");
	digest_hex(&r->fp, hx);
	sb_addf(&sb, ",\"fingerprint\":\"%s\",\"cmd\":", hx);
	json_str(&sb, cmd);
	sb_adds(&sb, ",\"argv\":[");
	for (size_t i = 0; i < r->argv.n; i++) {
		if (i)
			sb_addc(&sb, ',');
		json_str(&sb, r->argv.v[i]);
	}
	sb_adds(&sb, "],\"name\":");
	if (r->name)
		json_str(&sb, r->name);
	else
		sb_adds(&sb, "null");
	sb_adds(&sb, ",\"cwd\":");
	json_str(&sb, r->cwd ? r->cwd : ".");
	sb_addf(&sb, ",\"status\":\"%s\",\"exit\":%d,\"duration_ms\":%lld", r->ok ? "ok" : "failed", r->exit_code,
		(long long)r->duration_ms);
	fmt_iso_time(r->created_ms, when, sizeof(when));
	sb_addf(&sb, ",\"created\":\"%s\"", when);
	fmt_iso_time(r->last_used_ms, when, sizeof(when));
	sb_addf(&sb, ",\"last_used\":\"%s\",\"expires\":", when);
	if (r->expires_ms) {
		fmt_iso_time(r->expires_ms, when, sizeof(when));
		sb_addf(&sb, "\"%s\"", when);
	} else {
		sb_adds(&sb, "null");
	}
	sb_adds(&sb, ",\"tags\":[");
	for (size_t i = 0; i < r->tags.n; i++) {
		if (i)
			sb_addc(&sb, ',');
		json_str(&sb, r->tags.v[i]);
	}
	sb_adds(&sb, "],\"parts\":[");
	for (size_t i = 0; i < r->nparts; i++) {
		digest_hex(&r->parts[i].hash, hx);
		sb_addf(&sb, "%s{\"kind\":\"%s\",\"name\":", i ? "," : "", r->parts[i].kind);
		json_str(&sb, r->parts[i].name);
		sb_addf(&sb, ",\"hash\":\"%s\"}", hx);
	}
	sb_adds(&sb, "],\"files\":[");
	for (size_t i = 0; i < r->nfiles; i++) {
		const struct run_file *f = &r->files[i];
		sb_addf(&sb, "%s{\"kind\":\"%s\",\"path\":", i ? "," : "", kind_name(f->kind));
		json_str(&sb, f->path);
		sb_addf(&sb, ",\"mode\":\"%06o\",\"size\":%llu,\"oid\":\"%s\"}", f->mode, (unsigned long long)f->size,
			f->oid);
	}
	sb_adds(&sb, "]}");
	puts(sb.buf);
	sb_release(&sb);
	free(cmd);
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
