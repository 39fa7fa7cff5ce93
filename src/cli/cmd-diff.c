/* cashet diff A B: what differs between two runs, section by section: the
 * fingerprint parts (matched by kind and name, as `why` matches them), then
 * the results (exit, stdout, stderr, outputs). Times and durations are shown
 * in the header but never make two runs differ. Exit 0 identical, 1
 * different, 2 error, like diff(1). */
#include "cli/cli.h"
#include "key/explain.h"
#include "store/gitmod.h"
#include "util/json.h"

#include <stdlib.h>
#include <string.h>

/* Bigger texts are not diffed: a patch nobody reads costs memory and time. */
#define DIFF_MAX (256 * 1024)
#define STAT_BAR 40

struct section {
	const char *section; /* "command", "env", "stdout", "output", ... */
	char *name;          /* a part's or output's name; NULL for run-level sections */
	const char *change;  /* "changed", "added" or "removed" */
	char *old, *new;     /* values (a digest or blob id for content), NULL on the missing side */
	int shown;           /* old/new are readable values worth printing (env, exit, ...) */
	char *note;          /* "binary, 3 bytes vs 5 bytes", or NULL */
	char *patch;         /* unified diff, or NULL */
	int sized;           /* content: old_size/new_size are meaningful */
	uint64_t old_size, new_size;
	size_t adds, dels;
};

struct diff {
	struct section *v;
	size_t n;
};

static struct section *add_section(struct diff *d, const char *section, const char *name, const char *change)
{
	d->v = xrealloc(d->v, (d->n + 1) * sizeof(*d->v));
	struct section *s = &d->v[d->n++];
	memset(s, 0, sizeof(*s));
	s->section = section;
	s->name = name ? xstrdup(name) : NULL;
	s->change = change;
	return s;
}

static void diff_free(struct diff *d)
{
	for (size_t i = 0; i < d->n; i++) {
		free(d->v[i].name);
		free(d->v[i].old);
		free(d->v[i].new);
		free(d->v[i].note);
		free(d->v[i].patch);
	}
	free(d->v);
}

/* The section a fingerprint part belongs to: its kind, except where the
 * kind would read wrong next to the result sections. */
static const char *part_section(const char *kind)
{
	if (!strcmp(kind, "exe"))
		return "executable";
	if (!strcmp(kind, "output"))
		return "declared-output"; /* the path, not the content: that is "output" */
	return kind;
}

static int has_value(const char *kind)
{
	return !strcmp(kind, "env") || !strcmp(kind, "param");
}

static int is_source(const char *kind)
{
	return !strcmp(kind, "script") || !strcmp(kind, "source") || !strcmp(kind, "dep");
}

/* Text is what a unified diff can show: no NUL and valid UTF-8. */
static int is_text(const unsigned char *s, size_t n)
{
	size_t i = 0;
	while (i < n) {
		unsigned char c = s[i];
		size_t k = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
		if (!c || !k || i + k > n || c == 0xc0 || c == 0xc1 || c > 0xf4)
			return 0;
		for (size_t j = 1; j < k; j++)
			if ((s[i + j] & 0xc0) != 0x80)
				return 0;
		i += k;
	}
	return 1;
}

static void count_lines(struct section *s)
{
	const char *p = s->patch;
	for (int line = 0; p && *p; line++) {
		/* the first two lines are the ---/+++ file header */
		if (line >= 2 && *p == '+')
			s->adds++;
		else if (line >= 2 && *p == '-')
			s->dels++;
		p = strchr(p, '\n');
		if (p)
			p++;
	}
}

/* Fills s's sizes and either its patch or a note, from the two blobs (NULL:
 * the side where the file does not exist, compared as empty). */
static int diff_content(struct store *st, struct section *s, const char *label, const struct run_file *a,
			const struct run_file *b)
{
	struct strbuf x = STRBUF_INIT, y = STRBUF_INIT, patch = STRBUF_INIT;
	struct diff_hunk *h = NULL;
	size_t nh = 0;
	const struct gitmod *g;
	int rc = -1;
	s->sized = 1;
	s->old_size = a ? a->size : 0;
	s->new_size = b ? b->size : 0;
	s->old = a ? xstrdup(a->oid) : NULL;
	s->new = b ? xstrdup(b->oid) : NULL;
	if (a && b && a->mode != b->mode) {
		struct strbuf m = STRBUF_INIT;
		sb_addf(&m, "mode %06o -> %06o", a->mode, b->mode);
		s->note = sb_detach(&m);
		if (digest_eq(&a->xxh, &b->xxh)) {
			rc = 0;
			goto out;
		}
		free(s->note);
		s->note = NULL;
	}
	if (s->old_size > DIFF_MAX || s->new_size > DIFF_MAX) {
		sb_addf(&patch, "not diffed (over %d KiB), %llu bytes vs %llu bytes", DIFF_MAX / 1024,
			(unsigned long long)s->old_size, (unsigned long long)s->new_size);
		s->note = sb_detach(&patch);
		rc = 0;
		goto out;
	}
	if ((a && store_blob_read(st, a, &x) < 0) || (b && store_blob_read(st, b, &y) < 0))
		goto out;
	if (!is_text((const unsigned char *)sb_str(&x), x.len) || !is_text((const unsigned char *)sb_str(&y), y.len)) {
		sb_addf(&patch, "binary, %llu bytes vs %llu bytes", (unsigned long long)s->old_size,
			(unsigned long long)s->new_size);
		s->note = sb_detach(&patch);
		rc = 0;
		goto out;
	}
	if (!(g = gitmod_get()) || g->diff_text(sb_str(&x), x.len, sb_str(&y), y.len, label, 3, &h, &nh, &patch) < 0)
		goto out;
	s->patch = sb_detach(&patch);
	count_lines(s);
	rc = 0;
out:
	free(h);
	sb_release(&x);
	sb_release(&y);
	sb_release(&patch);
	return rc;
}

static const struct run_file *find_file(const struct run_record *r, int kind, const char *path)
{
	for (size_t i = 0; i < r->nfiles; i++)
		if (r->files[i].kind == kind && (!path || !strcmp(r->files[i].path, path)))
			return &r->files[i];
	return NULL;
}

static void digest_str(const struct run_part *p, char **out)
{
	char hx[DIGEST_HEX];
	if (!p)
		return;
	digest_hex(&p->hash, hx);
	*out = xstrdup(hx);
}

/* argv and cwd are named by their value, so they are compared by kind. */
static const struct run_part *part_of_kind(const struct run_record *r, const char *kind)
{
	for (size_t i = 0; i < r->nparts; i++)
		if (!strcmp(r->parts[i].kind, kind))
			return &r->parts[i];
	return NULL;
}

static void diff_named(struct diff *d, const char *section, const char *kind, const struct run_record *a,
		       const struct run_record *b)
{
	const struct run_part *p = part_of_kind(a, kind), *q = part_of_kind(b, kind);
	const char *x = p ? p->name : "", *y = q ? q->name : "";
	if (!strcmp(x, y))
		return;
	struct section *s = add_section(d, section, NULL, "changed");
	s->old = xstrdup(x);
	s->new = xstrdup(y);
	s->shown = 1;
}

/* The files and variables each run was seen to use (not in the
 * fingerprint: a run is replayed while they are as they were), one
 * "observed" section each, named by path or "$NAME", kind in the note. */
static void diff_inputs(struct diff *d, const struct run_record *a, const struct run_record *b)
{
	struct input_change *c;
	size_t n = explain_input_changes(a, b, &c);
	for (size_t i = 0; i < n; i++) {
		const struct run_input *p = c[i].old, *q = c[i].cur, *any = q ? q : p;
		struct section *s = add_section(d, "observed", any->path, p && q ? "changed" : q ? "added" : "removed");
		char hx[DIGEST_HEX];
		if (p) {
			digest_hex(&p->d, hx);
			s->old = xstrdup(hx);
		}
		if (q) {
			digest_hex(&q->d, hx);
			s->new = xstrdup(hx);
		}
		s->note = xstrdup(p && q && p->kind != q->kind ? "another kind" : run_input_kind_name(any->kind));
	}
	free(c);
}

static int diff_parts(struct store *st, struct diff *d, const struct run_record *a, const struct run_record *b)
{
	struct part_change *c;
	struct strbuf path = STRBUF_INIT;
	size_t n = explain_part_changes(a, b, &c);
	int rc = 0;
	diff_named(d, "command", "argv", a, b);
	diff_named(d, "cwd", "cwd", a, b);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		const struct run_part *p = c[i].old, *q = c[i].cur, *any = q ? q : p;
		if (!strcmp(any->kind, "argv") || !strcmp(any->kind, "cwd"))
			continue;
		struct section *s = add_section(d, part_section(any->kind), any->name,
						p && q ? "changed"
						: q    ? "added"
						       : "removed");
		if (has_value(any->kind)) {
			s->shown = 1;
			s->old = p && p->detail ? xstrdup(p->detail) : NULL;
			s->new = q && q->detail ? xstrdup(q->detail) : NULL;
		}
		if (is_source(any->kind)) {
			/* the stored copies, when the run kept them (sources inside the root) */
			sb_reset(&path);
			sb_addf(&path, "sources/%s", any->name);
			const struct run_file *fa = find_file(a, FILE_SOURCE, path.buf),
					      *fb = find_file(b, FILE_SOURCE, path.buf);
			if ((fa || !p) && (fb || !q) && (fa || fb)) {
				rc = diff_content(st, s, any->name, fa, fb);
				free(s->old);
				free(s->new);
				s->old = s->new = NULL;
			}
		}
		if (!s->shown) {
			digest_str(p, &s->old);
			digest_str(q, &s->new);
		}
	}
	free(c);
	sb_release(&path);
	diff_inputs(d, a, b);
	return rc;
}

static void exit_value(const struct run_record *r, int with_status, char **out)
{
	struct strbuf sb = STRBUF_INIT;
	sb_addf(&sb, "%d", r->exit_code);
	if (with_status)
		sb_adds(&sb, r->ok ? " (ok)" : " (failed)");
	*out = sb_detach(&sb);
}

/* "files/<root-rel>" shows as the path, "abs/<path>" as the absolute path. */
static const char *output_name(const char *path, struct strbuf *sb)
{
	sb_reset(sb);
	if (!strncmp(path, "files/", 6))
		sb_adds(sb, path + 6);
	else if (!strncmp(path, "abs/", 4))
		sb_addf(sb, "/%s", path + 4);
	else
		sb_adds(sb, path);
	return sb->buf;
}

static int same_file(const struct run_file *x, const struct run_file *y)
{
	return x->size == y->size && x->mode == y->mode && digest_eq(&x->xxh, &y->xxh);
}

static int diff_results(struct store *st, struct diff *d, const struct run_record *a, const struct run_record *b)
{
	struct strbuf name = STRBUF_INIT;
	int rc = -1;
	if (a->exit_code != b->exit_code || a->ok != b->ok) {
		struct section *s = add_section(d, "exit", NULL, "changed");
		int both = a->exit_code == b->exit_code; /* same code, one timed out */
		exit_value(a, both, &s->old);
		exit_value(b, both, &s->new);
		s->shown = 1;
	}
	for (int k = FILE_STDOUT; k <= FILE_STDERR; k++) {
		const struct run_file *x = find_file(a, k, NULL), *y = find_file(b, k, NULL);
		const char *label = k == FILE_STDOUT ? "stdout" : "stderr";
		if ((!x && !y) || (x && y && same_file(x, y)))
			continue;
		struct section *s = add_section(d, label, NULL, x && y ? "changed" : y ? "added" : "removed");
		if (diff_content(st, s, label, x, y) < 0)
			goto out;
	}
	for (size_t i = 0; i < b->nfiles; i++) {
		const struct run_file *y = &b->files[i], *x;
		if (y->kind != FILE_OUTPUT)
			continue;
		x = find_file(a, FILE_OUTPUT, y->path);
		if (x && same_file(x, y))
			continue;
		output_name(y->path, &name);
		struct section *s = add_section(d, "output", name.buf, x ? "changed" : "added");
		if (diff_content(st, s, name.buf, x, y) < 0)
			goto out;
	}
	for (size_t i = 0; i < a->nfiles; i++) {
		const struct run_file *x = &a->files[i];
		if (x->kind != FILE_OUTPUT || find_file(b, FILE_OUTPUT, x->path))
			continue;
		output_name(x->path, &name);
		struct section *s = add_section(d, "output", name.buf, "removed");
		if (diff_content(st, s, name.buf, x, NULL) < 0)
			goto out;
	}
	rc = 0;
out:
	sb_release(&name);
	return rc;
}

static void label_of(const struct section *s, struct strbuf *sb)
{
	sb_reset(sb);
	sb_adds(sb, s->section);
	if (s->name)
		sb_addf(sb, " %s", s->name);
}

static void print_header(const char *side, const struct run_record *r)
{
	char when[32], dur[32];
	fmt_time(r->created_ms, when, sizeof(when));
	fmt_duration(r->duration_ms, dur, sizeof(dur));
	printf("%s %.12s  %s  %s, exit %d, took %s\n", side, r->hash, when, r->ok ? "ok" : "failed", r->exit_code, dur);
}

static void print_text(const struct diff *d, const struct run_record *a, const struct run_record *b)
{
	struct strbuf label = STRBUF_INIT;
	print_header("a", a);
	print_header("b", b);
	if (!d->n)
		puts("identical: same inputs, exit status, stdout, stderr and outputs");
	for (size_t i = 0; i < d->n; i++) {
		const struct section *s = &d->v[i];
		label_of(s, &label);
		printf("%s: %s", label.buf, s->change);
		if (s->shown && s->old && s->new)
			printf(": %s -> %s", s->old, s->new);
		else if (s->shown && (s->old || s->new))
			printf(": %s", s->old ? s->old : s->new);
		if (s->note)
			printf(": %s", s->note);
		putchar('\n');
		if (s->patch)
			fputs(s->patch, stdout);
	}
	sb_release(&label);
}

static void print_stat(const struct diff *d)
{
	struct strbuf label = STRBUF_INIT;
	size_t width = 0;
	if (!d->n) /* like git diff --stat: nothing to list */
		return;
	for (size_t i = 0; i < d->n; i++) {
		label_of(&d->v[i], &label);
		if (label.len > width)
			width = label.len;
	}
	for (size_t i = 0; i < d->n; i++) {
		const struct section *s = &d->v[i];
		label_of(s, &label);
		printf(" %-*s | ", (int)width, label.buf);
		if (s->patch) {
			size_t adds = s->adds, dels = s->dels, total = adds + dels;
			if (total > STAT_BAR) { /* scale the bar, keeping at least one of each kind */
				adds = adds ? (adds * STAT_BAR + total - 1) / total : 0;
				dels = dels ? STAT_BAR - adds : 0;
				if (dels == 0 && s->dels)
					dels = 1, adds--;
			}
			printf("%zu ", s->adds + s->dels);
			for (size_t k = 0; k < adds; k++)
				putchar('+');
			for (size_t k = 0; k < dels; k++)
				putchar('-');
		} else if (s->note && !strncmp(s->note, "binary", 6)) {
			printf("Bin %llu -> %llu bytes", (unsigned long long)s->old_size,
			       (unsigned long long)s->new_size);
		} else if (s->shown && s->old && s->new) {
			printf("%s -> %s", s->old, s->new);
		} else {
			fputs(s->note ? s->note : s->change, stdout);
		}
		putchar('\n');
	}
	printf(" %zu section%s differ%s\n", d->n, d->n == 1 ? "" : "s", d->n == 1 ? "s" : "");
	sb_release(&label);
}

static void json_opt(struct strbuf *sb, const char *key, const char *v)
{
	sb_addf(sb, ",\"%s\":", key);
	if (v)
		json_str(sb, v);
	else
		sb_adds(sb, "null");
}

static void json_run(struct strbuf *sb, const struct run_record *r)
{
	char when[40];
	fmt_iso_time(r->created_ms, when, sizeof(when));
	sb_addf(sb, "{\"hash\":\"%s\",\"created\":\"%s\",\"duration_ms\":%lld,\"status\":\"%s\",\"exit\":%d}", r->hash,
		when, (long long)r->duration_ms, r->ok ? "ok" : "failed", r->exit_code);
}

static void print_json(const struct diff *d, const struct run_record *a, const struct run_record *b)
{
	struct strbuf sb = STRBUF_INIT;
	sb_addf(&sb, "{\"identical\":%s,\"a\":", d->n ? "false" : "true");
	json_run(&sb, a);
	sb_adds(&sb, ",\"b\":");
	json_run(&sb, b);
	sb_adds(&sb, ",\"sections\":[");
	for (size_t i = 0; i < d->n; i++) {
		const struct section *s = &d->v[i];
		sb_addf(&sb, "%s{\"section\":\"%s\"", i ? "," : "", s->section);
		json_opt(&sb, "name", s->name);
		sb_addf(&sb, ",\"change\":\"%s\"", s->change);
		json_opt(&sb, "old", s->old);
		json_opt(&sb, "new", s->new);
		if (s->sized)
			sb_addf(&sb, ",\"old_size\":%llu,\"new_size\":%llu", (unsigned long long)s->old_size,
				(unsigned long long)s->new_size);
		if (s->note)
			json_opt(&sb, "note", s->note);
		if (s->patch) {
			json_opt(&sb, "patch", s->patch);
			sb_addf(&sb, ",\"insertions\":%zu,\"deletions\":%zu", s->adds, s->dels);
		}
		sb_addc(&sb, '}');
	}
	sb_adds(&sb, "]}");
	puts(sb.buf);
	sb_release(&sb);
}

struct diff_opts {
	int stat, json;
};

#define OPTS struct diff_opts
static const struct opt diff_rows[] = {
	OPT_BOOL("stat", 0, stat, "one line per difference instead of the patches"),
	OPT_BOOL("json", 0, json,
		 "print JSON: {identical, a, b, sections: [{section, name, change, old, new, patch?}]}"),
	OPT_END,
};

static int check_diff(const void *opts, int argc, char **argv, int dashdash)
{
	const struct diff_opts *o = opts;
	return o->json && o->stat ? err_set("--stat and --json cannot be combined") : 0;
}

const struct opt_table cmd_diff_options = {
	OPT_ROWS(diff_rows),
	.help = "A and B are runs (hashes or unique prefixes of at least 4 hex digits).\n"
		"Exit 0: identical (times and durations never count), 1: different, 2: error.\n",
	.check = check_diff,
};
#undef OPTS

int cmd_diff(struct cli *cli, void *opts, int argc, char **argv)
{
	const struct diff_opts *o = opts;
	struct run_record a = { 0 }, b = { 0 };
	struct diff d = { 0 };
	int rc = 2;
	if (cli_load_run(cli->st, argv[0], &a) || cli_load_run(cli->st, argv[1], &b))
		goto out;
	if (diff_parts(cli->st, &d, &a, &b) < 0 || diff_results(cli->st, &d, &a, &b) < 0) {
		cli_fail(2);
		goto out;
	}
	if (o->json)
		print_json(&d, &a, &b);
	else if (o->stat)
		print_stat(&d);
	else
		print_text(&d, &a, &b);
	rc = d.n ? 1 : 0;
out:
	diff_free(&d);
	run_record_free(&a);
	run_record_free(&b);
	return rc;
}
