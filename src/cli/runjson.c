/* runjson: JSON objects for runs and store statistics (see runjson.h).
 * Appends to a strbuf and never prints, so serve can send the same bytes. */
#include "cli/runjson.h"
#include "cli/cli.h"
#include "util/json.h"

#include <stdlib.h>
#include <string.h>

#define OPTS struct json_opts
static const struct opt json_rows[] = {
	OPT_BOOL("json", 0, json, "print JSON"),
	OPT_END,
};

const struct opt_table runjson_options = { OPT_ROWS(json_rows) };
#undef OPTS

const char *runjson_kind_name(int kind)
{
	return kind == FILE_STDOUT    ? "stdout"
	       : kind == FILE_STDERR  ? "stderr"
	       : kind == FILE_OUTPUT  ? "output"
	       : kind == FILE_DIR     ? "dir"
	       : kind == FILE_STREAMS ? "order"
				      : "source";
}

void runjson_log(struct strbuf *sb, const struct run_record *r)
{
	char when[32];
	char *cmd = run_cmdline(r);
	fmt_iso_time(r->created_ms, when, sizeof(when));
	sb_addf(sb, "{\"hash\":\"%s\",\"created\":\"%s\",\"status\":\"%s\",\"exit\":%d,\"duration_ms\":%lld,\"name\":",
		r->hash, when, r->ok ? "ok" : "failed", r->exit_code, (long long)r->duration_ms);
	json_str_or_null(sb, r->name);
	sb_adds(sb, ",\"cmd\":");
	json_str(sb, cmd);
	sb_adds(sb, ",\"tags\":{");
	for (size_t i = 0; i < r->tags.n; i++) {
		const char *t = r->tags.v[i], *eq = strchr(t, '=');
		char *k = xstrndup(t, eq ? (size_t)(eq - t) : strlen(t));
		if (i)
			sb_addc(sb, ',');
		json_str(sb, k);
		sb_addc(sb, ':');
		if (eq)
			json_str(sb, eq + 1);
		else
			sb_adds(sb, "true");
		free(k);
	}
	sb_adds(sb, "}}");
	free(cmd);
}

void runjson_show(struct strbuf *sb, const struct run_record *r)
{
	char when[40], hx[DIGEST_HEX];
	char *cmd = run_cmdline(r);
	sb_addf(sb, "{\"hash\":\"%s\",\"parent\":", r->hash);
	json_str_or_null(sb, r->parent[0] ? r->parent : NULL);
	digest_hex(&r->fp, hx);
	sb_addf(sb, ",\"fingerprint\":\"%s\",\"cmd\":", hx);
	json_str(sb, cmd);
	sb_adds(sb, ",\"argv\":");
	json_str_array(sb, &r->argv);
	sb_adds(sb, ",\"name\":");
	json_str_or_null(sb, r->name);
	sb_adds(sb, ",\"cwd\":");
	json_str(sb, r->cwd ? r->cwd : ".");
	sb_addf(sb, ",\"status\":\"%s\",\"exit\":%d,\"duration_ms\":%lld", r->ok ? "ok" : "failed", r->exit_code,
		(long long)r->duration_ms);
	fmt_iso_time(r->created_ms, when, sizeof(when));
	sb_addf(sb, ",\"created\":\"%s\"", when);
	fmt_iso_time(r->last_used_ms, when, sizeof(when));
	sb_addf(sb, ",\"last_used\":\"%s\",\"expires\":", when);
	if (r->expires_ms) {
		fmt_iso_time(r->expires_ms, when, sizeof(when));
		sb_addf(sb, "\"%s\"", when);
	} else {
		sb_adds(sb, "null");
	}
	sb_adds(sb, ",\"tags\":");
	json_str_array(sb, &r->tags);
	sb_adds(sb, ",\"metrics\":");
	json_str_array(sb, &r->metrics);
	sb_adds(sb, ",\"parts\":[");
	for (size_t i = 0; i < r->nparts; i++) {
		digest_hex(&r->parts[i].hash, hx);
		sb_addf(sb, "%s{\"kind\":\"%s\",\"name\":", i ? "," : "", r->parts[i].kind);
		json_str(sb, r->parts[i].name);
		sb_addf(sb, ",\"hash\":\"%s\"}", hx);
	}
	sb_addf(sb, "],\"observed\":\"%s\",\"observed_inputs\":[", run_observed_name(r->observed));
	for (size_t i = 0; i < r->ninputs; i++) {
		const struct run_input *in = &r->inputs[i];
		digest_hex(&in->d, hx);
		sb_addf(sb, "%s{\"kind\":\"%s\",\"path\":", i ? "," : "", run_input_kind_name(in->kind));
		json_str(sb, in->path);
		if (in->kind == INPUT_ABSENT || in->kind == INPUT_DIR)
			sb_adds(sb, "}");
		else
			sb_addf(sb, ",\"hash\":\"%s\"}", hx);
	}
	sb_adds(sb, "],\"files\":[");
	for (size_t i = 0; i < r->nfiles; i++) {
		const struct run_file *f = &r->files[i];
		sb_addf(sb, "%s{\"kind\":\"%s\",\"path\":", i ? "," : "", runjson_kind_name(f->kind));
		json_str(sb, f->path);
		sb_addf(sb, ",\"mode\":\"%06o\",\"size\":%llu,\"oid\":\"%s\"}", f->mode, (unsigned long long)f->size,
			f->oid);
	}
	sb_adds(sb, "]}");
	free(cmd);
}

void runjson_stats(struct strbuf *sb, const char *dir, const struct store_stats *s)
{
	sb_adds(sb, "{\"store\":");
	json_str(sb, dir);
	sb_addf(sb,
		",\"runs\":%lld,\"completed\":%lld,\"failed\":%lld,\"objects\":%lld,\"object_bytes\":%lld,"
		"\"index_bytes\":%lld,\"stored_bytes\":%lld}",
		(long long)s->runs, (long long)s->ok, (long long)s->failed, (long long)s->objects,
		(long long)s->object_bytes, (long long)s->index_bytes, (long long)s->stored_bytes);
}
