/* cashet pipeline report: one self-contained HTML page about a pipeline
 * (no network, no external script): the DAG as SVG with each step's state,
 * a timeline of the last run's steps, the experiments table (sortable) and
 * a plot of one metric. The DAG is laid out by Graphviz's dot when it is
 * installed (CASHET_DOT names another, empty: none), else by a simple
 * layered layout here; everything else is drawn here as plain SVG. */
#include "cli/cli.h"
#include "cli/exp.h"
#include "cli/report.h"
#include "exec/engine.h"
#include "pipeline/runlog.h"
#include "pipeline/step.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

enum node_state { N_UPTODATE, N_CHANGED, N_NEVER, N_FAILED, N_NOCACHE };
static const char *const state_class[] = { "uptodate", "changed", "never", "failed", "nocache" };
static const char *const state_text[] = { "up to date", "changed", "never run", "failed", "cache = false" };
static const char *const state_fill[] = { "#c8e6c9", "#ffe0b2", "#e0e0e0", "#ffcdd2", "#bbdefb" };

/* What `pipeline status` would say of step i, and whether its last run failed. */
static enum node_state step_state(const struct dag *d, size_t i, struct store *st, const struct runlog *last)
{
	struct step_request sr;
	struct explain e;
	enum node_state s = N_NEVER;
	for (size_t k = 0; last && k < last->n; k++)
		if (!strcmp(last->steps[k].name, d->steps[i].name) && !strcmp(last->steps[k].state, "failed"))
			return N_FAILED;
	if (!d->steps[i].cache)
		return N_NOCACHE;
	if (!st)
		return N_NEVER;
	memset(&e, 0, sizeof(e));
	if (step_request_init(&sr, d, &d->steps[i], environ, 0, -1, -1) == 0 && exec_explain(st, &sr.req, &e) == 0)
		s = e.hit ? N_UPTODATE : e.hash[0] ? N_CHANGED : N_NEVER;
	err_clear();
	explain_free(&e);
	step_request_release(&sr);
	return s;
}

static void dot_quote(struct strbuf *sb, const char *s)
{
	sb_addc(sb, '"');
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			sb_addc(sb, '\\');
		sb_addc(sb, *s);
	}
	sb_addc(sb, '"');
}

/* Runs dot -Tsvg on the graph; 0 with the <svg> element in svg, -1 when
 * dot is missing or fails (the built-in layout is used then). */
static int run_dot(const char *dot, const struct strbuf *graph, struct strbuf *svg)
{
	int in[2], out[2], status, rc = -1;
	if (pipe2(in, O_CLOEXEC) < 0)
		return -1;
	if (pipe2(out, O_CLOEXEC) < 0) {
		close(in[0]);
		close(in[1]);
		return -1;
	}
	pid_t pid = fork();
	if (pid == 0) {
		dup2(in[0], STDIN_FILENO);
		dup2(out[1], STDOUT_FILENO);
		int null = open("/dev/null", O_WRONLY);
		if (null >= 0)
			dup2(null, STDERR_FILENO);
		execlp(dot, dot, "-Tsvg", (char *)NULL);
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	if (pid < 0) {
		close(in[1]);
		close(out[0]);
		return -1;
	}
	/* dot reads the whole graph before it writes a byte, so writing all
	 * of it first cannot deadlock; a dot that could not start closed its
	 * end, which must not kill us */
	void (*pipe_was)(int) = signal(SIGPIPE, SIG_IGN);
	int wr = write_all(in[1], graph->buf, graph->len);
	close(in[1]);
	signal(SIGPIPE, pipe_was);
	struct strbuf all = STRBUF_INIT;
	char buf[8192];
	ssize_t n;
	while ((n = read(out[0], buf, sizeof(buf))) > 0 || (n < 0 && errno == EINTR))
		if (n > 0)
			sb_add(&all, buf, (size_t)n);
	close(out[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	const char *start = all.buf ? strstr(all.buf, "<svg") : NULL;
	if (wr == 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0 && start) {
		sb_adds(svg, start);
		rc = 0;
	}
	sb_release(&all);
	return rc;
}

static void dag_dot(const struct dag *d, const unsigned char *want, const enum node_state *state, struct strbuf *g)
{
	sb_adds(g, "digraph pipeline {\n graph [rankdir=LR, bgcolor=\"transparent\"];\n"
		   " node [shape=box, style=\"rounded,filled\", fontname=\"sans-serif\", fontsize=11];\n");
	for (size_t i = 0; i < d->n; i++) {
		if (!want[i])
			continue;
		struct strbuf label = STRBUF_INIT;
		sb_addf(&label, "%s\n%s", d->steps[i].name, state_text[state[i]]);
		sb_addf(g, " s%zu [id=\"step-%zu\", fillcolor=\"%s\", tooltip=", i, i, state_fill[state[i]]);
		dot_quote(g, state_class[state[i]]);
		sb_adds(g, ", label=");
		dot_quote(g, label.buf);
		sb_adds(g, "];\n");
		sb_release(&label);
	}
	for (size_t i = 0; i < d->n; i++)
		for (size_t p = 0; want[i] && p < d->steps[i].npreds; p++)
			sb_addf(g, " s%zu -> s%zu;\n", d->steps[i].preds[p], i);
	sb_adds(g, "}\n");
}

#define NODE_W 180
#define NODE_H 40
#define GAP_X 60
#define GAP_Y 20

/* Without dot: a column per depth (the longest path from a step without
 * predecessors), the steps of a column in file order. */
static void dag_builtin(const struct dag *d, const unsigned char *want, const enum node_state *state,
			struct strbuf *svg)
{
	size_t *depth = xcalloc(d->n, sizeof(*depth)), *row = xcalloc(d->n, sizeof(*row));
	size_t *count = xcalloc(d->n + 1, sizeof(*count)), cols = 0, rows = 0;
	for (size_t k = 0; k < d->n; k++) {
		size_t i = d->order[k];
		for (size_t p = 0; p < d->steps[i].npreds; p++)
			if (want[d->steps[i].preds[p]] && depth[d->steps[i].preds[p]] + 1 > depth[i])
				depth[i] = depth[d->steps[i].preds[p]] + 1;
	}
	for (size_t i = 0; i < d->n; i++) {
		if (!want[i])
			continue;
		row[i] = count[depth[i]]++;
		if (depth[i] + 1 > cols)
			cols = depth[i] + 1;
		if (count[depth[i]] > rows)
			rows = count[depth[i]];
	}
	int w = (int)(cols * (NODE_W + GAP_X) - GAP_X + 20), h = (int)(rows * (NODE_H + GAP_Y) - GAP_Y + 20);
	sb_addf(svg,
		"<svg width=\"%dpt\" height=\"%dpt\" viewBox=\"0 0 %d %d\">\n"
		"<defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"8\" "
		"markerHeight=\"8\" orient=\"auto\"><path d=\"M0,0 L10,5 L0,10 z\"/></marker></defs>\n",
		w, h, w, h);
#define NX(i) (10 + (int)depth[i] * (NODE_W + GAP_X))
#define NY(i) (10 + (int)row[i] * (NODE_H + GAP_Y))
	for (size_t i = 0; i < d->n; i++)
		for (size_t p = 0; want[i] && p < d->steps[i].npreds; p++) {
			size_t j = d->steps[i].preds[p];
			sb_addf(svg,
				"<g class=\"edge\"><line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#555\" "
				"marker-end=\"url(#arrow)\"/></g>\n",
				NX(j) + NODE_W, NY(j) + NODE_H / 2, NX(i), NY(i) + NODE_H / 2);
		}
	for (size_t i = 0; i < d->n; i++) {
		if (!want[i])
			continue;
		sb_addf(svg, "<g id=\"step-%zu\" class=\"node\"><title>", i);
		exp_html_text(svg, d->steps[i].name);
		sb_addf(svg,
			"</title><rect x=\"%d\" y=\"%d\" rx=\"6\" width=\"%d\" height=\"%d\" fill=\"%s\" "
			"stroke=\"#555\"/>",
			NX(i), NY(i), NODE_W, NODE_H, state_fill[state[i]]);
		sb_addf(svg, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">", NX(i) + NODE_W / 2, NY(i) + 17);
		exp_html_text(svg, d->steps[i].name);
		sb_addf(svg, "</text><text x=\"%d\" y=\"%d\" text-anchor=\"middle\" class=\"state\">%s</text></g>\n",
			NX(i) + NODE_W / 2, NY(i) + 32, state_text[state[i]]);
	}
#undef NX
#undef NY
	sb_adds(svg, "</svg>\n");
	free(depth);
	free(row);
	free(count);
}

static int collect(const struct run_record *r, void *ctx);

static int newest_run(struct store *st, const char *name, char hash[OID_HEX])
{
	struct log_filter f = { .limit = 1, .name = name };
	struct strvec out = STRVEC_INIT;
	int rc = store_list(st, &f, collect, &out);
	if (rc == 0 && out.n)
		snprintf(hash, OID_HEX, "%s", out.v[0]);
	rc = rc < 0 ? -1 : out.n > 0;
	sv_release(&out);
	return rc;
}

static int collect(const struct run_record *r, void *ctx)
{
	sv_push(ctx, r->hash);
	return 0;
}

/* The last run's steps as bars on a common time axis. Without a record
 * of the last run (never run by this version), each step's newest stored
 * run stands in. */
static void timeline(const struct dag *d, const unsigned char *want, struct store *st, const struct runlog *last,
		     struct strbuf *sb)
{
	struct runlog l = { 0 };
	if (last && last->n) {
		for (size_t i = 0; i < last->n; i++)
			runlog_add(&l, last->steps[i].name, last->steps[i].state, last->steps[i].start_ms,
				   last->steps[i].end_ms);
	} else {
		struct strbuf name = STRBUF_INIT;
		for (size_t i = 0; st && i < d->n; i++) {
			struct run_record r = { 0 };
			char hash[OID_HEX];
			if (!want[i])
				continue;
			sb_reset(&name);
			sb_addf(&name, "pipeline/%s", d->steps[i].name);
			if (newest_run(st, name.buf, hash) == 1 && store_load(st, hash, &r) == 1)
				runlog_add(&l, d->steps[i].name, r.ok ? "ran" : "failed", r.created_ms,
					   r.created_ms + r.duration_ms);
			run_record_free(&r);
			err_clear();
		}
		sb_release(&name);
	}
	if (!l.n) {
		sb_adds(sb, "<p class=\"none\">The pipeline has not run yet.</p>\n");
		return;
	}
	int64_t t0 = l.steps[0].start_ms, t1 = l.steps[0].end_ms;
	for (size_t i = 0; i < l.n; i++) {
		if (l.steps[i].start_ms < t0)
			t0 = l.steps[i].start_ms;
		if (l.steps[i].end_ms > t1)
			t1 = l.steps[i].end_ms;
	}
	double span = t1 > t0 ? (double)(t1 - t0) : 1, W = 560;
	const int label = 200, rowh = 24;
	int h = (int)l.n * rowh + 30;
	char dur[32];
	fmt_duration(t1 - t0, dur, sizeof(dur));
	sb_addf(sb, "<svg id=\"gantt\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\">\n", label + (int)W + 80, h,
		label + (int)W + 80, h);
	for (size_t i = 0; i < l.n; i++) {
		const struct runlog_step *s = &l.steps[i];
		double x = label + (double)(s->start_ms - t0) / span * W;
		double w = (double)(s->end_ms - s->start_ms) / span * W;
		int y = (int)i * rowh + 4;
		fmt_duration(s->end_ms - s->start_ms, dur, sizeof(dur));
		sb_addf(sb, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">", label - 8, y + 15);
		exp_html_text(sb, s->name);
		sb_addf(sb, "</text><rect class=\"bar %s\" x=\"%.1f\" y=\"%d\" width=\"%.1f\" height=\"%d\"><title>",
			s->state, x, y, w < 2 ? 2 : w, rowh - 6);
		exp_html_text(sb, s->name);
		sb_addf(sb, ": %s, %s</title></rect><text x=\"%.1f\" y=\"%d\" class=\"dur\">%s %s</text>\n", s->state,
			dur, x + (w < 2 ? 2 : w) + 6, y + 15, s->state, dur);
	}
	fmt_duration(t1 - t0, dur, sizeof(dur));
	sb_addf(sb,
		"<line class=\"axis\" x1=\"%d\" y1=\"%d\" x2=\"%.0f\" y2=\"%d\"/><text x=\"%d\" y=\"%d\">0</text>"
		"<text x=\"%.0f\" y=\"%d\" text-anchor=\"end\">%s</text>\n</svg>\n",
		label, h - 22, label + W, h - 22, label, h - 8, label + W, h - 8, dur);
	runlog_free(&l);
}

static const char page_style[] =
	"body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;background:#fff}"
	"h1{font-size:20px}h2{font-size:16px;margin-top:28px;border-bottom:1px solid #ddd}"
	"table{border-collapse:collapse}th,td{padding:3px 10px;border-bottom:1px solid #eee;text-align:left}"
	"th{cursor:pointer;background:#f5f5f5;user-select:none}th.metric{background:#e8f0fe}"
	"th.sorted-asc:after{content:' \\25b2'}th.sorted-desc:after{content:' \\25bc'}"
	"tr.failed td{color:#b71c1c}td{font-variant-numeric:tabular-nums}"
	".bar{fill:#90caf9}.bar.hit{fill:#a5d6a7}.bar.failed{fill:#ef9a9a}.bar.skipped,.bar.stopped{fill:#e0e0e0}"
	".axis{stroke:#888}.series{fill:none;stroke:#1976d2;stroke-width:2}.point{fill:#1976d2}"
	"svg text{font:12px system-ui,sans-serif}.dur,.state{fill:#555}.none{color:#777}"
	".legend span{display:inline-block;padding:1px 8px;margin-right:6px;border-radius:4px}";

/* Click a header to sort by it (again: the other way); #sort=[-]COLUMN in
 * the address sorts when the page opens. */
static const char page_script[] =
	"(function(){var t=document.getElementById('exp');if(!t)return;"
	"var hs=t.tHead.rows[0].cells;"
	"function key(v){var n=parseFloat(v);return v!=='-'&&isFinite(n)&&String(n)!=='NaN'&&/^[-+0-9.eE]+$/.test(v)?n:v}"
	"function sort(c,desc){var b=t.tBodies[0],rs=Array.prototype.slice.call(b.rows);"
	"rs.sort(function(x,y){var a=key(x.cells[c].textContent),z=key(y.cells[c].textContent);"
	"if(a==='-')return 1;if(z==='-')return -1;var r=(typeof a===typeof z)?(a<z?-1:a>z?1:0):(typeof a==='number'?-1:1);"
	"return desc?-r:r});rs.forEach(function(r){b.appendChild(r)});"
	"for(var i=0;i<hs.length;i++)hs[i].className=hs[i].className.replace(/ ?sorted-\\w+/,'');"
	"hs[c].className+=desc?' sorted-desc':' sorted-asc'}"
	"for(var i=0;i<hs.length;i++)(function(c){hs[c].onclick=function(){"
	"sort(c,/sorted-asc/.test(hs[c].className))}})(i);"
	"var m=/#sort=(-?)(.+)$/.exec(location.hash);if(m)for(var i=0;i<hs.length;i++)"
	"if(hs[i].textContent===decodeURIComponent(m[2]))sort(i,m[1]==='-')})();";

int report_write(const struct dag *d, struct store *st, const char *store_dir, const unsigned char *want,
		 const char *metric, struct strbuf *page)
{
	enum node_state *state = xcalloc(d->n, sizeof(*state));
	struct strbuf svg = STRBUF_INIT, graph = STRBUF_INIT, table = STRBUF_INIT, plot = STRBUF_INIT;
	struct strbuf path = STRBUF_INIT, file = STRBUF_INIT;
	struct runlog last = { 0 };
	const char *dot = getenv("CASHET_DOT");
	char when[32];
	int rc = -1, have_last = 0;

	path_absolute(NULL, d->file, &file);
	if (store_dir) {
		runlog_path(store_dir, file.buf, &path);
		have_last = runlog_read(path.buf, &last) == 1;
		err_clear();
	}
	for (size_t i = 0; i < d->n; i++)
		if (want[i])
			state[i] = step_state(d, i, st, have_last ? &last : NULL);
	dag_dot(d, want, state, &graph);
	if (!dot)
		dot = "dot";
	if (!*dot || run_dot(dot, &graph, &svg) < 0) {
		sb_reset(&svg);
		dag_builtin(d, want, state, &svg);
	}
	if (st && exp_html(st, d->file, metric, &table, &plot) < 0)
		goto out;

	sb_adds(page, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>");
	exp_html_text(page, d->file);
	sb_addf(page, " - cashet report</title>\n<style>%s</style>\n</head><body>\n<h1>", page_style);
	exp_html_text(page, d->file);
	fmt_time(now_ms(), when, sizeof(when));
	sb_addf(page, "</h1>\n<p>Made by cashet %s at %s.</p>\n", CASHET_VERSION, when);
	sb_adds(page, "<h2>Steps</h2>\n<p class=\"legend\">");
	for (size_t s = 0; s < sizeof(state_text) / sizeof(*state_text); s++)
		sb_addf(page, "<span style=\"background:%s\">%s</span>", state_fill[s], state_text[s]);
	sb_addf(page, "</p>\n<div id=\"dag\">%s</div>\n", svg.buf);
	sb_adds(page, "<h2>Last run</h2>\n");
	timeline(d, want, st, have_last ? &last : NULL, page);
	sb_adds(page, "<h2>Experiments</h2>\n");
	if (table.len)
		sb_adds(page, table.buf);
	else
		sb_adds(page, "<p class=\"none\">No runs.</p>\n");
	sb_adds(page, "<h2>Plot</h2>\n");
	sb_adds(page, plot.len ? plot.buf : "<p class=\"none\">No runs.</p>\n");
	sb_addf(page, "<script>%s</script>\n</body></html>\n", page_script);
	rc = 0;
out:
	runlog_free(&last);
	free(state);
	sb_release(&svg);
	sb_release(&graph);
	sb_release(&table);
	sb_release(&plot);
	sb_release(&path);
	sb_release(&file);
	return rc;
}
