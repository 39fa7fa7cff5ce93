/* cashet exp show, metrics diff, params diff: runs side by side as
 * experiments. A run's parameters are what its key recorded with a value
 * (--param values, -e variables, a sweep's matrix values from its step
 * name) and its metrics what its --metrics files held; all of it comes
 * from the index (store_load), so a table of many runs reads no blob. */
#include "cli/cli.h"
#include "cli/exp.h"
#include "exec/metrics.h"
#include "pipeline/dag.h"
#include "util/json.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define PIPELINE_PREFIX "pipeline/"

/* "train@lr=0.1,dropout=0.2": the matrix values of a sweep point. */
static void matrix_params(const char *name, struct strvec *out)
{
	const char *at = strchr(name, '@');
	if (!at)
		return;
	for (const char *p = at + 1; *p;) {
		size_t n = strcspn(p, ",");
		const char *eq = memchr(p, '=', n);
		if (eq && eq > p) {
			struct strbuf k = STRBUF_INIT, v = STRBUF_INIT;
			sb_add(&k, p, (size_t)(eq - p));
			sb_add(&v, eq + 1, n - (size_t)(eq + 1 - p));
			metrics_set(out, k.buf, v.buf);
			sb_release(&k);
			sb_release(&v);
		}
		p += n + (p[n] == ',');
	}
}

/* The parts of one kind that carry a value, as params: only those before
 * the "umask" setting, since the key's ambient variables (LANG, TZ, LC_*)
 * come after it and are no -e of the user's. */
static void part_params(const struct run_record *r, const char *kind, struct strvec *out)
{
	struct strbuf k = STRBUF_INIT;
	for (size_t i = 0; i < r->nparts; i++) {
		const struct run_part *p = &r->parts[i];
		if (!strcmp(p->kind, "setting") && !strcmp(p->name, "umask"))
			break;
		if (!p->detail || strcmp(p->kind, kind))
			continue;
		sb_reset(&k);
		if (!strcmp(kind, "param")) {
			/* "params.toml:train.lr" is train.lr; "params.toml:" the whole file */
			const char *colon = strrchr(p->name, ':');
			if (colon && colon[1])
				sb_adds(&k, colon + 1);
			else
				sb_add(&k, p->name, colon ? (size_t)(colon - p->name) : strlen(p->name));
		} else {
			sb_addf(&k, "env.%s", p->name);
		}
		if (!metrics_get(out, k.buf))
			metrics_set(out, k.buf, p->detail);
	}
	sb_release(&k);
}

void exp_run_params(const struct run_record *r, struct strvec *out)
{
	if (r->name && !strncmp(r->name, PIPELINE_PREFIX, sizeof(PIPELINE_PREFIX) - 1))
		matrix_params(r->name + sizeof(PIPELINE_PREFIX) - 1, out);
	part_params(r, "param", out);
	part_params(r, "env", out);
}

const char *exp_run_label(const struct run_record *r)
{
	if (!r->name)
		return "";
	if (!strncmp(r->name, PIPELINE_PREFIX, sizeof(PIPELINE_PREFIX) - 1))
		return r->name + sizeof(PIPELINE_PREFIX) - 1;
	return r->name;
}

int exp_number(const char *s, double *d)
{
	char *end;
	if (!s || !*s)
		return 0;
	*d = strtod(s, &end);
	return *end == '\0' && isfinite(*d);
}

/* The row of the table for one run. */
struct row {
	struct run_record r;
	struct strvec params;
	char *label; /* the name without "pipeline/" and, for a sweep, without its matrix */
};

enum col_kind { COL_RUN, COL_NAME, COL_PARAM, COL_METRIC };
struct col {
	enum col_kind kind;
	char *name;
	size_t width;
	int numeric; /* every value a number: right-aligned */
};

struct table {
	struct row *rows;
	size_t n;
	struct col *cols;
	size_t ncols;
};

static const char *cell(const struct table *t, size_t r, const struct col *c)
{
	const struct row *row = &t->rows[r];
	switch (c->kind) {
	case COL_RUN:
		return row->r.hash;
	case COL_NAME:
		return row->label;
	case COL_PARAM:
		return metrics_get(&row->params, c->name);
	case COL_METRIC:
		return metrics_get(&row->r.metrics, c->name);
	}
	return NULL;
}

static int add_run(struct store *st, struct table *t, const char *hash)
{
	for (size_t i = 0; i < t->n; i++)
		if (!strcmp(t->rows[i].r.hash, hash))
			return 0;
	t->rows = xrealloc(t->rows, (t->n + 1) * sizeof(*t->rows));
	struct row *row = &t->rows[t->n];
	memset(row, 0, sizeof(*row));
	int lr = store_load(st, hash, &row->r);
	if (lr <= 0)
		return lr;
	exp_run_params(&row->r, &row->params);
	const char *l = exp_run_label(&row->r);
	row->label = xstrdup(l);
	if (row->r.name && !strncmp(row->r.name, PIPELINE_PREFIX, sizeof(PIPELINE_PREFIX) - 1))
		row->label[strcspn(row->label, "@")] = '\0';
	t->n++;
	return 0;
}

static void table_free(struct table *t)
{
	for (size_t i = 0; i < t->n; i++) {
		run_record_free(&t->rows[i].r);
		sv_release(&t->rows[i].params);
		free(t->rows[i].label);
	}
	free(t->rows);
	for (size_t i = 0; i < t->ncols; i++)
		free(t->cols[i].name);
	free(t->cols);
}

static struct col *add_col(struct table *t, enum col_kind kind, const char *name)
{
	for (size_t i = 0; i < t->ncols; i++)
		if (t->cols[i].kind == kind && !strcmp(t->cols[i].name, name))
			return &t->cols[i];
	t->cols = xrealloc(t->cols, (t->ncols + 1) * sizeof(*t->cols));
	struct col *c = &t->cols[t->ncols++];
	memset(c, 0, sizeof(*c));
	c->kind = kind;
	c->name = xstrdup(name);
	return c;
}

/* Whether a parameter takes more than one value (or is missing somewhere):
 * only those tell the runs apart. With one run, every one. */
static int param_differs(const struct table *t, const char *key)
{
	const char *first = metrics_get(&t->rows[0].params, key);
	if (t->n < 2)
		return 1;
	for (size_t i = 1; i < t->n; i++) {
		const char *v = metrics_get(&t->rows[i].params, key);
		if (!first || !v || strcmp(first, v))
			return 1;
	}
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The columns: run, name (if any run has one), the parameters that differ
 * (in the order the runs have them), the metrics (sorted). */
static void make_columns(struct table *t)
{
	struct strvec metrics = STRVEC_INIT;
	int named = 0;
	add_col(t, COL_RUN, "run");
	for (size_t i = 0; i < t->n; i++)
		named |= t->rows[i].label[0] != '\0';
	if (named)
		add_col(t, COL_NAME, "name");
	for (size_t i = 0; i < t->n; i++)
		for (size_t k = 0; k < t->rows[i].params.n; k++) {
			const char *kv = t->rows[i].params.v[k];
			char *key = xstrdup(kv);
			key[strcspn(key, "=")] = '\0';
			if (param_differs(t, key))
				add_col(t, COL_PARAM, key);
			free(key);
		}
	for (size_t i = 0; i < t->n; i++)
		for (size_t k = 0; k < t->rows[i].r.metrics.n; k++) {
			char *key = xstrdup(t->rows[i].r.metrics.v[k]);
			key[strcspn(key, "=")] = '\0';
			int seen = 0;
			for (size_t m = 0; m < metrics.n && !seen; m++)
				seen = !strcmp(metrics.v[m], key);
			if (!seen)
				sv_push(&metrics, key);
			free(key);
		}
	if (metrics.n)
		qsort(metrics.v, metrics.n, sizeof(*metrics.v), cmp_str);
	for (size_t m = 0; m < metrics.n; m++)
		add_col(t, COL_METRIC, metrics.v[m]);
	sv_release(&metrics);
}

/* The column a user names: a metric before a parameter of the same name. */
static const struct col *find_col(const struct table *t, const char *name)
{
	static const enum col_kind order[] = { COL_RUN, COL_NAME, COL_METRIC, COL_PARAM };
	for (size_t o = 0; o < sizeof(order) / sizeof(*order); o++)
		for (size_t i = 0; i < t->ncols; i++)
			if (t->cols[i].kind == order[o] && !strcmp(t->cols[i].name, name))
				return &t->cols[i];
	return NULL;
}

/* Numbers by value, else text; a missing value after every present one. */
static int compare_values(const char *a, const char *b)
{
	double x, y;
	if (!a || !b)
		return !a - !b;
	if (exp_number(a, &x) && exp_number(b, &y))
		return (x > y) - (x < y);
	return strcmp(a, b);
}

struct sort_ctx {
	const struct table *t;
	const struct col *c;
	int desc;
};
static struct sort_ctx sort_by; /* qsort has no context argument */

static int cmp_rows(const void *a, const void *b)
{
	const struct row *x = a, *y = b;
	size_t ix = (size_t)(x - sort_by.t->rows), iy = (size_t)(y - sort_by.t->rows);
	const char *va = cell(sort_by.t, ix, sort_by.c), *vb = cell(sort_by.t, iy, sort_by.c);
	int c = compare_values(va, vb);
	if (va && vb && sort_by.desc)
		c = -c;
	if (!c)
		c = (x->r.created_ms > y->r.created_ms) - (x->r.created_ms < y->r.created_ms);
	return c;
}

/* --where "COL OP VALUE": OP one of < <= > >= = == != */
struct cond {
	char *col;
	char op[3];
	char *value;
};

static int parse_cond(const char *s, struct cond *c)
{
	size_t n = strcspn(s, "<>=!");
	memset(c, 0, sizeof(*c));
	if (!s[n])
		return err_set("--where '%s': expected COLUMN OP VALUE (OP: < <= > >= = != )", s);
	size_t a = 0, b = n;
	while (a < b && s[a] == ' ')
		a++;
	while (b > a && s[b - 1] == ' ')
		b--;
	const char *op = s + n;
	size_t ol = (op[1] == '=') ? 2 : 1;
	if (op[0] == '!' && ol == 1)
		return err_set("--where '%s': expected COLUMN OP VALUE (OP: < <= > >= = != )", s);
	if (a == b)
		return err_set("--where '%s': no column before '%.*s'", s, (int)ol, op);
	const char *v = op + ol;
	v += strspn(v, " ");
	c->col = xstrndup(s + a, b - a);
	memcpy(c->op, op, ol);
	c->value = xstrdup(v);
	return 0;
}

static int cond_holds(const struct cond *c, const char *v)
{
	if (!v)
		return 0;
	int cmp = compare_values(v, c->value);
	if (!strcmp(c->op, "<"))
		return cmp < 0;
	if (!strcmp(c->op, "<="))
		return cmp <= 0;
	if (!strcmp(c->op, ">"))
		return cmp > 0;
	if (!strcmp(c->op, ">="))
		return cmp >= 0;
	if (!strcmp(c->op, "!="))
		return cmp != 0;
	return cmp == 0;
}

struct show_opts {
	const char *line, *sort;
	struct strvec tags, where;
	int json, csv;
};

static int collect_list(const struct run_record *r, void *ctx)
{
	sv_push(ctx, r->hash);
	return 0;
}

/* The runs of the table, oldest first: each step's newest run for a
 * pipeline, every run of a line, the runs with the tags, or every run
 * that has metrics. */
static int select_runs(struct store *st, struct show_opts *o, const char *pipeline, struct table *t)
{
	struct strvec hashes = STRVEC_INIT;
	struct log_filter f = { 0 };
	struct dag *d = NULL;
	int rc = -1, every = 0;
	if (pipeline) {
		if (dag_load(pipeline, &d) < 0)
			goto out;
		struct strbuf name = STRBUF_INIT;
		for (size_t i = 0; i < d->n; i++) {
			struct log_filter one = { .limit = 1 };
			sb_reset(&name);
			sb_addf(&name, PIPELINE_PREFIX "%s", d->steps[i].name);
			one.name = name.buf;
			if (store_list(st, &one, collect_list, &hashes) < 0) {
				sb_release(&name);
				goto out;
			}
		}
		sb_release(&name);
	} else if (o->line) {
		struct run_record r = { 0 };
		char hash[OID_HEX];
		if (store_resolve(st, o->line, hash) < 0 || store_load(st, hash, &r) < 0)
			goto out;
		struct strvec *h = &hashes;
		rc = store_line_history(st, &r.line, collect_list, h);
		run_record_free(&r);
		if (rc < 0)
			goto out;
		rc = -1;
	} else {
		f.tags = o->tags;
		every = !o->tags.n;
		if (store_list(st, &f, collect_list, &hashes) < 0)
			goto out;
		/* store_list is newest first */
		for (size_t i = 0; i < hashes.n / 2; i++) {
			char *tmp = hashes.v[i];
			hashes.v[i] = hashes.v[hashes.n - 1 - i];
			hashes.v[hashes.n - 1 - i] = tmp;
		}
	}
	for (size_t i = 0; i < hashes.n; i++) {
		if (add_run(st, t, hashes.v[i]) < 0)
			goto out;
		/* without a selection, only runs that reported something */
		if (every && t->n && !t->rows[t->n - 1].r.metrics.n) {
			t->n--;
			run_record_free(&t->rows[t->n].r);
			sv_release(&t->rows[t->n].params);
			free(t->rows[t->n].label);
		}
	}
	rc = 0;
out:
	dag_free(d);
	sv_release(&hashes);
	return rc;
}

static int term_width(void)
{
	const char *c = getenv("COLUMNS");
	struct winsize ws;
	if (c && atoi(c) > 0)
		return atoi(c);
	if (isatty(STDOUT_FILENO) && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
		return ws.ws_col;
	return 0;
}

#define CELL_MAX 24

/* A cell as the terminal table shows it: a run's hash short, long text cut. */
static void shown(const struct col *c, const char *v, struct strbuf *out)
{
	sb_reset(out);
	if (!v)
		sb_adds(out, "-");
	else if (c->kind == COL_RUN)
		sb_add(out, v, 8);
	else if (strlen(v) > CELL_MAX)
		sb_addf(out, "%.*s...", CELL_MAX - 3, v);
	else
		sb_adds(out, v);
}

static void print_table(const struct table *t)
{
	struct strbuf sb = STRBUF_INIT, line = STRBUF_INIT;
	size_t keep = 0, width = 0;
	int avail = term_width();
	for (size_t k = 0; k < t->ncols; k++) {
		struct col *c = &t->cols[k];
		c->width = strlen(c->name);
		c->numeric = c->kind == COL_PARAM || c->kind == COL_METRIC;
		for (size_t i = 0; i < t->n; i++) {
			const char *v = cell(t, i, c);
			double d;
			shown(c, v, &sb);
			if (sb.len > c->width)
				c->width = sb.len;
			if (v && !exp_number(v, &d))
				c->numeric = 0;
		}
	}
	/* the columns that fit, from the left; the run's always */
	for (keep = 0; keep < t->ncols; keep++) {
		size_t w = width + (keep ? 2 : 0) + t->cols[keep].width;
		if (keep && avail > 0 && w > (size_t)avail)
			break;
		width = w;
	}
	for (size_t i = 0; i <= t->n; i++) {
		sb_reset(&line);
		for (size_t k = 0; k < keep; k++) {
			const struct col *c = &t->cols[k];
			if (i == 0) {
				sb_reset(&sb);
				sb_adds(&sb, c->name);
			} else {
				shown(c, cell(t, i - 1, c), &sb);
			}
			if (k)
				sb_adds(&line, "  ");
			if (c->numeric)
				sb_addf(&line, "%*s", (int)c->width, sb.buf);
			else if (k + 1 < keep)
				sb_addf(&line, "%-*s", (int)c->width, sb.buf);
			else
				sb_adds(&line, sb.buf);
		}
		puts(line.buf);
	}
	if (keep < t->ncols) {
		sb_reset(&sb);
		for (size_t k = keep; k < t->ncols; k++)
			sb_addf(&sb, "%s%s", k > keep ? ", " : "", t->cols[k].name);
		printf("(%zu more column%s: %s; --json or --csv shows them)\n", t->ncols - keep,
		       t->ncols - keep > 1 ? "s" : "", sb.buf);
	}
	sb_release(&sb);
	sb_release(&line);
}

/* A value as JSON: a number as it is written, else a string. */
static void json_value(struct strbuf *sb, const char *v)
{
	double d;
	size_t n = v ? strspn(v, "-0123456789.eE+") : 0;
	if (v && n == strlen(v) && exp_number(v, &d) && v[0] != '+' && v[0] != '.' && strstr(v, "-.") == NULL &&
	    v[n - 1] != '.' && !(v[0] == '0' && isdigit((unsigned char)v[1])) &&
	    !(v[0] == '-' && v[1] == '0' && isdigit((unsigned char)v[2])))
		sb_adds(sb, v);
	else
		json_str_or_null(sb, v);
}

static void json_map(struct strbuf *sb, const struct table *t, size_t i, enum col_kind kind)
{
	int first = 1;
	sb_addc(sb, '{');
	for (size_t k = 0; k < t->ncols; k++) {
		const char *v = cell(t, i, &t->cols[k]);
		if (t->cols[k].kind != kind || !v)
			continue;
		if (!first)
			sb_addc(sb, ',');
		first = 0;
		json_str(sb, t->cols[k].name);
		sb_addc(sb, ':');
		json_value(sb, v);
	}
	sb_addc(sb, '}');
}

static void print_json(const struct table *t)
{
	struct strbuf sb = STRBUF_INIT;
	char when[40];
	sb_addc(&sb, '[');
	for (size_t i = 0; i < t->n; i++) {
		const struct row *row = &t->rows[i];
		fmt_iso_time(row->r.created_ms, when, sizeof(when));
		sb_addf(&sb, "%s{\"run\":\"%s\",\"name\":", i ? "," : "", row->r.hash);
		json_str_or_null(&sb, row->r.name);
		sb_addf(&sb, ",\"created\":\"%s\",\"status\":\"%s\",\"params\":", when, row->r.ok ? "ok" : "failed");
		json_map(&sb, t, i, COL_PARAM);
		sb_adds(&sb, ",\"metrics\":");
		json_map(&sb, t, i, COL_METRIC);
		sb_addc(&sb, '}');
	}
	sb_addc(&sb, ']');
	puts(sb.buf);
	sb_release(&sb);
}

static void csv_cell(const char *v)
{
	if (!v)
		return;
	if (!strpbrk(v, ",\"\n\r")) {
		fputs(v, stdout);
		return;
	}
	putchar('"');
	for (; *v; v++) {
		if (*v == '"')
			putchar('"');
		putchar(*v);
	}
	putchar('"');
}

static void print_csv(const struct table *t)
{
	for (size_t i = 0; i <= t->n; i++) {
		for (size_t k = 0; k < t->ncols; k++) {
			if (k)
				putchar(',');
			csv_cell(i ? cell(t, i - 1, &t->cols[k]) : t->cols[k].name);
		}
		putchar('\n');
	}
}

static int cmd_exp_show(struct cli *cli, void *opts, int argc, char **argv)
{
	struct show_opts *o = opts;
	struct table t = { 0 };
	struct cond *conds = xcalloc(o->where.n + 1, sizeof(*conds));
	const char *pipeline = argc ? argv[0] : NULL;
	int rc = 1;
	if (!pipeline && !o->line && !o->tags.n && access("dag.toml", F_OK) == 0)
		pipeline = "dag.toml";
	for (size_t i = 0; i < o->where.n; i++)
		if (parse_cond(o->where.v[i], &conds[i]) < 0) {
			rc = cli_usage(cli->name, "%s", err_msg());
			goto out;
		}
	if (select_runs(cli->st, o, pipeline, &t) < 0) {
		rc = cli_fail(pipeline && !t.n ? 2 : 1);
		goto out;
	}
	if (t.n)
		make_columns(&t);
	/* filter first: a column named by --where or --sort must exist */
	for (size_t w = 0; w < o->where.n; w++) {
		const struct col *c = find_col(&t, conds[w].col);
		if (!c && t.n) {
			rc = cli_usage(cli->name, "--where: no column '%s'", conds[w].col);
			goto out;
		}
		size_t kept = 0;
		for (size_t i = 0; i < t.n; i++) {
			if (cond_holds(&conds[w], cell(&t, i, c))) {
				t.rows[kept++] = t.rows[i];
				continue;
			}
			run_record_free(&t.rows[i].r);
			sv_release(&t.rows[i].params);
			free(t.rows[i].label);
		}
		t.n = kept;
	}
	if (o->sort && t.n) {
		const char *name = o->sort + (o->sort[0] == '-' || o->sort[0] == '+');
		sort_by.t = &t;
		sort_by.c = find_col(&t, name);
		sort_by.desc = o->sort[0] == '-';
		if (!sort_by.c) {
			rc = cli_usage(cli->name, "--sort: no column '%s'", name);
			goto out;
		}
		qsort(t.rows, t.n, sizeof(*t.rows), cmp_rows);
	}
	if (o->json)
		print_json(&t);
	else if (o->csv)
		print_csv(&t);
	else if (!t.n)
		fprintf(stderr, "cashet: no runs to show\n");
	else
		print_table(&t);
	rc = 0;
out:
	for (size_t i = 0; i < o->where.n; i++) {
		free(conds[i].col);
		free(conds[i].value);
	}
	free(conds);
	table_free(&t);
	return rc;
}

/* ---- the report's table and plot ---- */

void exp_html_text(struct strbuf *sb, const char *s)
{
	for (; s && *s; s++) {
		switch (*s) {
		case '<':
			sb_adds(sb, "&lt;");
			break;
		case '>':
			sb_adds(sb, "&gt;");
			break;
		case '&':
			sb_adds(sb, "&amp;");
			break;
		case '"':
			sb_adds(sb, "&quot;");
			break;
		default:
			sb_addc(sb, *s);
		}
	}
}

/* The table: a header cell per column (the page's script sorts on a
 * click), a row per run. */
static void html_table(const struct table *t, struct strbuf *sb)
{
	struct strbuf v = STRBUF_INIT;
	sb_adds(sb, "<table id=\"exp\"><thead><tr>");
	for (size_t k = 0; k < t->ncols; k++) {
		sb_addf(sb, "<th class=\"%s\" data-col=\"%zu\">",
			t->cols[k].kind == COL_METRIC  ? "metric"
			: t->cols[k].kind == COL_PARAM ? "param"
						       : "key",
			k);
		exp_html_text(sb, t->cols[k].name);
		sb_adds(sb, "</th>");
	}
	sb_adds(sb, "</tr></thead><tbody>\n");
	for (size_t i = 0; i < t->n; i++) {
		sb_addf(sb, "<tr class=\"run%s\">", t->rows[i].r.ok ? "" : " failed");
		for (size_t k = 0; k < t->ncols; k++) {
			shown(&t->cols[k], cell(t, i, &t->cols[k]), &v);
			sb_adds(sb, "<td>");
			exp_html_text(sb, v.buf);
			sb_adds(sb, "</td>");
		}
		sb_adds(sb, "</tr>\n");
	}
	sb_adds(sb, "</tbody></table>\n");
	sb_release(&v);
}

struct point {
	double x, y;
	size_t row;
};

static int cmp_points(const void *a, const void *b)
{
	const struct point *p = a, *q = b;
	return (p->x > q->x) - (p->x < q->x);
}

/* The metric against the one numeric parameter that tells the rows apart
 * (a sweep), else against the rows' order (history): an SVG line with a
 * circle per point, its values in the circle's title. */
static void html_plot(const struct table *t, const char *metric, struct strbuf *sb)
{
	const struct col *m = NULL, *xcol = NULL;
	struct point *pts = xcalloc(t->n + 1, sizeof(*pts));
	size_t n = 0, nparams = 0;
	for (size_t k = 0; k < t->ncols; k++) {
		if (t->cols[k].kind == COL_METRIC && !m && (!metric || !strcmp(metric, t->cols[k].name)))
			m = &t->cols[k];
		if (t->cols[k].kind == COL_PARAM) {
			nparams++;
			xcol = &t->cols[k];
		}
	}
	if (!m) {
		sb_adds(sb, "<p class=\"none\">");
		if (metric) {
			sb_adds(sb, "No run has the metric ");
			exp_html_text(sb, metric);
		} else {
			sb_adds(sb, "No run has metrics");
		}
		sb_adds(sb, ".</p>\n");
		free(pts);
		return;
	}
	if (nparams != 1)
		xcol = NULL;
	for (size_t i = 0; i < t->n; i++) {
		double y, x;
		if (!exp_number(cell(t, i, m), &y))
			continue;
		if (xcol && !exp_number(cell(t, i, xcol), &x))
			xcol = NULL;
		pts[n++] = (struct point){ (double)i, y, i };
	}
	for (size_t i = 0; xcol && i < n; i++)
		exp_number(cell(t, pts[i].row, xcol), &pts[i].x);
	if (!xcol)
		for (size_t i = 0; i < n; i++)
			pts[i].x = (double)i;
	qsort(pts, n, sizeof(*pts), cmp_points);
	double x0 = n ? pts[0].x : 0, x1 = n ? pts[n - 1].x : 1, y0 = 0, y1 = 1;
	for (size_t i = 0; i < n; i++) {
		if (!i || pts[i].y < y0)
			y0 = pts[i].y;
		if (!i || pts[i].y > y1)
			y1 = pts[i].y;
	}
	if (x1 == x0) {
		x0 -= 1;
		x1 += 1;
	}
	if (y1 == y0) {
		y0 -= 1;
		y1 += 1;
	}
	const double W = 640, H = 300, L = 60, R = 20, T = 20, B = 40;
#define PX(v) (L + ((v)-x0) / (x1 - x0) * (W - L - R))
#define PY(v) (H - B - ((v)-y0) / (y1 - y0) * (H - T - B))
	sb_addf(sb, "<svg id=\"plot\" width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\">\n", W, H, W, H);
	sb_addf(sb, "<line class=\"axis\" x1=\"%.0f\" y1=\"%.0f\" x2=\"%.0f\" y2=\"%.0f\"/>", L, H - B, W - R, H - B);
	sb_addf(sb, "<line class=\"axis\" x1=\"%.0f\" y1=\"%.0f\" x2=\"%.0f\" y2=\"%.0f\"/>\n", L, T, L, H - B);
	sb_addf(sb, "<text x=\"%.0f\" y=\"%.0f\" text-anchor=\"end\">%g</text>", L - 6, H - B, y0);
	sb_addf(sb, "<text x=\"%.0f\" y=\"%.0f\" text-anchor=\"end\">%g</text>\n", L - 6, T + 10, y1);
	sb_addf(sb, "<text x=\"%.0f\" y=\"%.0f\" text-anchor=\"middle\">%g</text>", L, H - B + 16, x0);
	sb_addf(sb, "<text x=\"%.0f\" y=\"%.0f\" text-anchor=\"middle\">%g</text>\n", W - R, H - B + 16, x1);
	sb_addf(sb, "<text class=\"label\" x=\"%.0f\" y=\"%.0f\" text-anchor=\"middle\">", (L + W - R) / 2, H - 6);
	exp_html_text(sb, xcol ? xcol->name : "run (oldest first)");
	sb_addf(sb,
		"</text><text class=\"label\" x=\"14\" y=\"%.0f\" transform=\"rotate(-90 14 %.0f)\" "
		"text-anchor=\"middle\">",
		(T + H - B) / 2, (T + H - B) / 2);
	exp_html_text(sb, m->name);
	sb_adds(sb, "</text>\n<polyline class=\"series\" points=\"");
	for (size_t i = 0; i < n; i++)
		sb_addf(sb, "%s%.1f,%.1f", i ? " " : "", PX(pts[i].x), PY(pts[i].y));
	sb_adds(sb, "\"/>\n");
	for (size_t i = 0; i < n; i++) {
		sb_addf(sb, "<circle class=\"point\" cx=\"%.1f\" cy=\"%.1f\" r=\"4\"><title>", PX(pts[i].x),
			PY(pts[i].y));
		sb_addf(sb, "%.8s", t->rows[pts[i].row].r.hash);
		if (xcol) {
			sb_adds(sb, " ");
			exp_html_text(sb, xcol->name);
			sb_adds(sb, "=");
			exp_html_text(sb, cell(t, pts[i].row, xcol));
		}
		sb_adds(sb, ": ");
		exp_html_text(sb, m->name);
		sb_adds(sb, "=");
		exp_html_text(sb, cell(t, pts[i].row, m));
		sb_adds(sb, "</title></circle>\n");
	}
#undef PX
#undef PY
	sb_adds(sb, "</svg>\n");
	free(pts);
}

int exp_html(struct store *st, const char *pipeline, const char *metric, struct strbuf *table, struct strbuf *plot)
{
	struct show_opts o = { 0 };
	struct table t = { 0 };
	if (select_runs(st, &o, pipeline, &t) < 0) {
		table_free(&t);
		return -1;
	}
	if (t.n)
		make_columns(&t);
	html_table(&t, table);
	html_plot(&t, metric, plot);
	table_free(&t);
	return 0;
}

/* ---- metrics diff, params diff ---- */

struct diff_opts {
	int all, json;
};

/* The two runs: A B as given; one run and the run before it on its
 * line; none: the newest run and the one before it. */
static int diff_runs(struct cli *cli, int argc, char **argv, struct run_record *a, struct run_record *b)
{
	struct strvec newest = STRVEC_INIT;
	char hash[OID_HEX];
	int rc;
	if (argc == 2) {
		if ((rc = cli_load_run(cli->st, argv[0], a)) != 0)
			return rc;
		return cli_load_run(cli->st, argv[1], b);
	}
	if (argc == 1) {
		if ((rc = cli_load_run(cli->st, argv[0], b)) != 0)
			return rc;
	} else {
		struct log_filter f = { .limit = 1 };
		if (store_list(cli->st, &f, collect_list, &newest) < 0)
			return cli_fail(1);
		if (!newest.n)
			return cli_error(1, "no runs in the store");
		snprintf(hash, sizeof(hash), "%s", newest.v[0]);
		sv_release(&newest);
		if ((rc = cli_load_run(cli->st, hash, b)) != 0)
			return rc;
	}
	if (!b->parent[0] || store_load(cli->st, b->parent, a) != 1)
		return cli_error(1, "run %.12s has no earlier run of its command line to compare with (name two runs)",
				 b->hash);
	return 0;
}

static void fmt_change(const char *old, const char *new, struct strbuf *abs, struct strbuf *rel, double *dabs,
		       double *drel, int *have_rel)
{
	double x, y;
	*have_rel = 0;
	if (!exp_number(old, &x) || !exp_number(new, &y)) {
		sb_adds(abs, "-");
		sb_adds(rel, "-");
		*dabs = NAN;
		return;
	}
	*dabs = y - x;
	sb_addf(abs, "%+.6g", *dabs);
	if (x != 0) {
		*drel = (y - x) / fabs(x);
		*have_rel = 1;
		sb_addf(rel, "%+.1f%%", *drel * 100);
	} else {
		sb_adds(rel, "-");
	}
}

static int diff_values(struct cli *cli, const struct diff_opts *o, int argc, char **argv, int params)
{
	struct run_record a = { 0 }, b = { 0 };
	struct strvec va = STRVEC_INIT, vb = STRVEC_INIT, keys = STRVEC_INIT;
	struct strbuf sb = STRBUF_INIT;
	int rc = diff_runs(cli, argc, argv, &a, &b);
	if (rc)
		goto out;
	if (params) {
		exp_run_params(&a, &va);
		exp_run_params(&b, &vb);
	} else {
		for (size_t i = 0; i < a.metrics.n; i++)
			sv_push(&va, a.metrics.v[i]);
		for (size_t i = 0; i < b.metrics.n; i++)
			sv_push(&vb, b.metrics.v[i]);
	}
	const struct strvec *both[] = { &va, &vb };
	for (int s = 0; s < 2; s++)
		for (size_t i = 0; i < both[s]->n; i++) {
			char *key = xstrdup(both[s]->v[i]);
			key[strcspn(key, "=")] = '\0';
			const char *x = metrics_get(&va, key), *y = metrics_get(&vb, key);
			int seen = 0;
			for (size_t k = 0; k < keys.n && !seen; k++)
				seen = !strcmp(keys.v[k], key);
			if (!seen && (o->all || !x || !y || strcmp(x, y)))
				sv_push(&keys, key);
			free(key);
		}
	if (keys.n)
		qsort(keys.v, keys.n, sizeof(*keys.v), cmp_str);
	const char *what = params ? "param" : "metric";
	if (o->json) {
		sb_addf(&sb, "{\"old\":\"%s\",\"new\":\"%s\",\"%ss\":{", a.hash, b.hash, what);
		for (size_t k = 0; k < keys.n; k++) {
			struct strbuf ab = STRBUF_INIT, rl = STRBUF_INIT;
			double dabs, drel;
			int have_rel;
			const char *x = metrics_get(&va, keys.v[k]), *y = metrics_get(&vb, keys.v[k]);
			fmt_change(x, y, &ab, &rl, &dabs, &drel, &have_rel);
			sb_addf(&sb, "%s", k ? "," : "");
			json_str(&sb, keys.v[k]);
			sb_adds(&sb, ":{\"old\":");
			json_value(&sb, x);
			sb_adds(&sb, ",\"new\":");
			json_value(&sb, y);
			sb_adds(&sb, ",\"change\":");
			if (isnan(dabs))
				sb_adds(&sb, "null");
			else
				sb_addf(&sb, "%.12g", dabs);
			sb_adds(&sb, ",\"relative\":");
			if (have_rel)
				sb_addf(&sb, "%.12g", drel);
			else
				sb_adds(&sb, "null");
			sb_addc(&sb, '}');
			sb_release(&ab);
			sb_release(&rl);
		}
		sb_adds(&sb, "}}");
		puts(sb.buf);
		goto out;
	}
	if (!keys.n)
		goto out;
	/* widths first: a column as wide as its widest value */
	size_t w[4] = { strlen(what), 3, 3, 6 };
	struct strvec cells = STRVEC_INIT;
	for (size_t k = 0; k < keys.n; k++) {
		struct strbuf ab = STRBUF_INIT, rl = STRBUF_INIT;
		double dabs, drel;
		int have_rel;
		const char *x = metrics_get(&va, keys.v[k]), *y = metrics_get(&vb, keys.v[k]);
		fmt_change(x, y, &ab, &rl, &dabs, &drel, &have_rel);
		const char *c[5] = { keys.v[k], x ? x : "-", y ? y : "-", ab.buf, rl.buf };
		for (int j = 0; j < 5; j++) {
			sv_push(&cells, c[j]);
			if (j < 4 && strlen(c[j]) > w[j])
				w[j] = strlen(c[j]);
		}
		sb_release(&ab);
		sb_release(&rl);
	}
	printf("%-*s  %-*s  %-*s  %-*s  %s\n", (int)w[0], what, (int)w[1], "old", (int)w[2], "new", (int)w[3], "change",
	       "relative");
	for (size_t k = 0; k < keys.n; k++) {
		char **c = &cells.v[k * 5];
		printf("%-*s  %-*s  %-*s  %-*s  %s\n", (int)w[0], c[0], (int)w[1], c[1], (int)w[2], c[2], (int)w[3],
		       c[3], c[4]);
	}
	sv_release(&cells);
out:
	run_record_free(&a);
	run_record_free(&b);
	sv_release(&va);
	sv_release(&vb);
	sv_release(&keys);
	sb_release(&sb);
	return rc;
}

static int cmd_metrics_diff(struct cli *cli, void *opts, int argc, char **argv)
{
	return diff_values(cli, opts, argc, argv, 0);
}

static int cmd_params_diff(struct cli *cli, void *opts, int argc, char **argv)
{
	return diff_values(cli, opts, argc, argv, 1);
}

static int check_sort(void *opts, const char *arg)
{
	struct show_opts *o = opts;
	if (!arg[arg[0] == '-' || arg[0] == '+'])
		return err_set("--sort: expected [-]COLUMN");
	o->sort = arg;
	return 0;
}

static int check_where(void *opts, const char *arg)
{
	struct cond c;
	int rc = parse_cond(arg, &c);
	free(c.col);
	free(c.value);
	return rc;
}

static int check_show(const void *opts, int argc, char **argv, int dashdash)
{
	const struct show_opts *o = opts;
	if (o->json && o->csv)
		return err_set("--json and --csv exclude each other");
	if ((argc > 0) + (o->line != NULL) + (o->tags.n > 0) > 1)
		return err_set("name one of PIPELINE, --line or --tag");
	return 0;
}

#define OPTS struct show_opts
static const struct opt show_rows[] = {
	OPT_STRING("line", 0, line, "HASH", "every run of the command line of run HASH"),
	OPT_LIST("tag", 't', tags, "K=V", "the runs with this tag (repeatable: all of them)"),
	OPT_CALLBACK("sort", 0, check_sort, "[-]COL", "sort by a column, descending with '-'"),
	OPT_LIST_CHECK("where", 0, where, "'COL OP VALUE'", check_where,
		       "keep the rows where COL compares so (OP: < <= > >= = !=; repeatable)"),
	OPT_BOOL("json", 0, json, "print JSON: every run, its params and metrics"),
	OPT_BOOL("csv", 0, csv, "print CSV with every column"),
	OPT_END,
};
static const struct opt_table show_options = {
	OPT_ROWS(show_rows),
	.check = check_show,
	.help = "Rows: each step's newest run of PIPELINE (dag.toml when it exists here), every run\n"
		"of a command line (--line), the runs with tags (--tag), or every run with metrics.\n"
		"Columns: run, name, the params that differ between the rows, and the metrics.\n",
};
#undef OPTS

#define OPTS struct diff_opts
static const struct opt diff_rows[] = {
	OPT_BOOL("all", 'a', all, "list unchanged values too"),
	OPT_BOOL("json", 0, json, "print JSON"),
	OPT_END,
};
static const struct opt_table diff_options = {
	OPT_ROWS(diff_rows),
	.help = "A B: two runs. One run: it and the run before it on its command line.\n"
		"None: the newest run and the one before it.\n",
};
#undef OPTS

const struct command cmd_exp_subs[] = {
	{ "show", cmd_exp_show, &show_options, CMD_STORE | CMD_DEFAULT, "[PIPELINE]",
	  "a table of runs: the params that differ and the metrics", NULL },
	{ NULL, NULL, NULL, 0, NULL, NULL, NULL },
};

const struct command cmd_metrics_subs[] = {
	{ "diff", cmd_metrics_diff, &diff_options, CMD_STORE | CMD_DEFAULT, "[A [B]]",
	  "compare two runs' metrics: old, new, change and relative change", NULL },
	{ NULL, NULL, NULL, 0, NULL, NULL, NULL },
};

const struct command cmd_params_subs[] = {
	{ "diff", cmd_params_diff, &diff_options, CMD_STORE | CMD_DEFAULT, "[A [B]]",
	  "compare two runs' params: old, new, change and relative change", NULL },
	{ NULL, NULL, NULL, 0, NULL, NULL, NULL },
};
