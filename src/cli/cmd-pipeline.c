/* cashet pipeline run|graph|status|report: the front end of the
 * pipeline. The steps run in pipeline/sched.c, through the engine; this
 * file chooses what to run (the file, the targets, --force), answers a
 * no-op run from the witness when it holds, shows the run (a line per
 * step, a live display on a terminal, the summary) and keeps its log for
 * the report. status and dry runs ask the engine in this process. */
#include "cli/cli.h"
#include "cli/report.h"
#include "pipeline/dag.h"
#include "pipeline/executor-slurm.h"
#include "pipeline/runlog.h"
#include "pipeline/sched.h"
#include "pipeline/step.h"
#include "pipeline/witness.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* The options of run, graph and status: each takes those its table lists. */
struct opts {
	const char *format;
	const char *executor;        /* --executor: "local" or "slurm", or NULL */
	const char *output, *metric; /* report: -o FILE, --metric NAME */
	struct strvec force_steps;
	int force_all, jobs, keep_going, dry_run, verbose;
	int report_fd; /* --report-fd N, plus one: 0 when not given */
};

struct ctx {
	struct dag *d;
	struct opts *o;
	struct strbuf store;  /* absolute store directory every worker opens */
	struct strbuf logdir; /* temporary: marks this run (the logs are in memory) */
	struct store *st;     /* open for in-process hits and explanations, or NULL */
	unsigned char *want, *force;
	struct sched_witness w; /* set up by witness_begin; the scheduler takes it */
	struct sched *s;        /* while the steps run */
	int tty;
	int color;        /* a terminal and no NO_COLOR */
	int lines;        /* how many lines the live display holds now (terminal only) */
	int64_t *prev_ms; /* each step's previous duration in the store, -1 unknown (terminal only) */
	int64_t start;
	size_t witnessed; /* steps the witness answered for */
};

static volatile sig_atomic_t got_signal;

static void on_signal(int sig)
{
	got_signal = sig;
}

/* No SA_RESTART: a signal must interrupt waitpid() so that we can stop. */
static void signals_init(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
}

static int is_file(const char *p)
{
	struct stat sb;
	return stat(p, &sb) == 0 && S_ISREG(sb.st_mode);
}

/* Step i's request, its streams to fds out and err. */
static int request(const struct ctx *x, size_t i, unsigned flags, int out, int err, struct step_request *sr)
{
	return step_request_init(sr, x->d, &x->d->steps[i], environ, flags | (x->force[i] ? EXEC_FORCE : 0), out, err);
}

static int take_duration(const struct run_record *r, void *ctx)
{
	*(int64_t *)ctx = r->duration_ms;
	return 0;
}

/* Erases the live display: the cursor goes back to its first line. */
static void clear_status(struct ctx *x)
{
	if (!x->tty || !x->lines)
		return;
	if (x->lines > 1)
		fprintf(stderr, "\r\033[%dA\033[J", x->lines - 1);
	else
		fputs("\r\033[K", stderr);
	x->lines = 0;
}

/* How long the steps not done yet should still take, from their previous
 * durations: the longest that a running one has left, then the queued
 * ones spread over the jobs (a rough bound: replays take no time, and the
 * graph may serialize them). -1 when no step has a duration to go by. */
static int64_t eta_ms(const struct ctx *x, int64_t now)
{
	int64_t longest = 0, queued = 0;
	int known = 0;
	for (size_t i = 0; i < x->d->n; i++) {
		enum sched_state st = x->s->state[i];
		if (!x->want[i] || x->prev_ms[i] < 0 || (st != SCHED_RUN && st != SCHED_WAIT))
			continue;
		known = 1;
		if (st == SCHED_RUN) {
			int64_t left = x->prev_ms[i] - (now - x->s->t0[i]);
			if (left > longest)
				longest = left;
		} else {
			queued += x->prev_ms[i];
		}
	}
	if (!known)
		return -1;
	queued /= x->o->jobs > 0 ? x->o->jobs : 1;
	return longest + queued;
}

/* A line of the live display: colored as head (an SGR parameter, 0 for
 * none) and tail, or, wider than the terminal, cut plain: a line that
 * wrapped would throw off how many lines clear_status() goes back up. */
static void add_line(const struct ctx *x, struct strbuf *sb, int sgr, const char *head, const char *tail, int width)
{
	size_t len = strlen(head) + strlen(tail);
	if (sb->len)
		sb_addc(sb, '\n');
	if (width > 1 && len > (size_t)width - 1) {
		struct strbuf plain = STRBUF_INIT;
		sb_addf(&plain, "%s%s", head, tail);
		sb_add(sb, plain.buf, (size_t)width - 1);
		sb_release(&plain);
	} else if (x->color && sgr) {
		sb_addf(sb, "\033[%dm%s\033[0m%s", sgr, head, tail);
	} else {
		sb_addf(sb, "%s%s", head, tail);
	}
}

/* The live display on a terminal: a line of counts, elapsed time and ETA,
 * then a line per running step with its time (and its previous one). */
static void draw_status(struct ctx *x)
{
	struct strbuf sb = STRBUF_INIT, head = STRBUF_INIT, tail = STRBUF_INIT;
	struct winsize ws;
	char a[32], b[32];
	int64_t now = now_ms(), eta;
	int shown = 0, width = 0;
	if (!x->tty || !x->s)
		return;
	if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0)
		width = ws.ws_col;
	clear_status(x);
	const struct sched *s = x->s;
	fmt_duration(now - s->start, a, sizeof(a));
	sb_addf(&head, "[%zu/%zu]", s->done, s->total);
	sb_addf(&tail, " %zu done, %zu running, %zu queued, %s", s->done, s->running, s->total - s->done - s->running,
		a);
	if ((eta = eta_ms(x, now)) >= 0) {
		fmt_duration(eta, b, sizeof(b));
		sb_addf(&tail, ", ETA %s", b);
	}
	add_line(x, &sb, 1, head.buf, tail.buf, width);
	x->lines = 1;
	for (size_t i = 0; i < x->d->n; i++) {
		if (s->state[i] != SCHED_RUN)
			continue;
		if (shown++ == 8) {
			add_line(x, &sb, 0, "  ...", "", width);
			x->lines++;
			break;
		}
		sb_reset(&head);
		sb_reset(&tail);
		fmt_duration(now - s->t0[i], a, sizeof(a));
		sb_addf(&head, "  %s", x->d->steps[i].name);
		sb_addf(&tail, "  %s", a);
		if (x->prev_ms[i] >= 0) {
			fmt_duration(x->prev_ms[i], b, sizeof(b));
			sb_addf(&tail, " (last %s)", b);
		}
		add_line(x, &sb, 36, head.buf, tail.buf, width);
		x->lines++;
	}
	fputs(sb.buf, stderr);
	sb_release(&sb);
	sb_release(&head);
	sb_release(&tail);
}

/* Each wanted step's previous duration, from its newest run: the ETA's basis. */
static void load_prev_durations(struct ctx *x)
{
	struct strbuf name = STRBUF_INIT;
	for (size_t i = 0; i < x->d->n; i++) {
		struct log_filter f = { .limit = 1 };
		x->prev_ms[i] = -1;
		if (!x->want[i] || !x->st)
			continue;
		sb_reset(&name);
		sb_addf(&name, "pipeline/%s", x->d->steps[i].name);
		f.name = name.buf;
		if (store_list(x->st, &f, take_duration, &x->prev_ms[i]) < 0)
			err_clear();
	}
	sb_release(&name);
}

/* The step's stdout, then its stderr (its logs), each line indented
 * under its name. */
static void print_output(const int log[2])
{
	struct strbuf sb = STRBUF_INIT;
	for (int k = 0; k < 2; k++) {
		int fd = log[k];
		sb_reset(&sb);
		for (off_t off = 0; fd >= 0;) {
			sb_grow(&sb, 65536);
			ssize_t n = pread(fd, sb.buf + sb.len, sb.alloc - sb.len - 1, off);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				break;
			sb_setlen(&sb, sb.len + (size_t)n);
			off += n;
		}
		if (!sb.len)
			continue;
		char *save = NULL;
		for (char *l = strtok_r(sb.buf, "\n", &save); l; l = strtok_r(NULL, "\n", &save))
			fprintf(stderr, "  | %s\n", l);
	}
	sb_release(&sb);
}

/* A step's event: "step NAME: VERDICT (detail)", the verdict in color
 * (an SGR parameter: 32 green) on a terminal that allows it. */
static void report(struct ctx *x, const char *name, int color, const char *verdict, const char *fmt, ...)
	PRINTF_LIKE(5, 6);
static void report(struct ctx *x, const char *name, int color, const char *verdict, const char *fmt, ...)
{
	struct strbuf sb = STRBUF_INIT;
	va_list ap;
	clear_status(x);
	sb_addf(&sb, "step %s: ", name);
	if (x->color)
		sb_addf(&sb, "\033[%dm%s\033[0m ", color, verdict);
	else
		sb_addf(&sb, "%s ", verdict);
	va_start(ap, fmt);
	sb_vaddf(&sb, fmt, ap);
	va_end(ap);
	sb_addc(&sb, '\n');
	/* one write: stderr is unbuffered, and a no-op run is mostly reports */
	fputs(sb.buf, stderr);
	sb_release(&sb);
}

/* The scheduler's events: a line per step's end, and the live display. */
static void on_ended(void *ctx, const struct sched_end *e)
{
	struct ctx *x = ctx;
	const char *name = x->d->steps[e->step].name;
	const int log[2] = { e->out, e->err };
	char dur[32];
	snprintf(dur, sizeof(dur), "%.2fs", (double)(x->s->t1[e->step] - x->s->t0[e->step]) / 1000);
	if (e->state == SCHED_HIT || e->state == SCHED_RAN) {
		report(x, name, e->state == SCHED_HIT ? 32 : 34, e->state == SCHED_HIT ? "hit" : "ran", "(%s%s%s)", dur,
		       e->jobid[0] ? ", Slurm job " : "", e->jobid);
		if (x->o->verbose)
			print_output(log);
	} else if (e->state == SCHED_STOP) {
		report(x, name, 33, "stopped", "(%s)", dur);
	} else {
		if (e->why[0])
			report(x, name, 31, "FAILED", "(%s)", e->why);
		else if (WIFEXITED(e->status))
			report(x, name, 31, "FAILED", "(exit %d)", WEXITSTATUS(e->status));
		else
			report(x, name, 31, "FAILED", "(signal %d)", WTERMSIG(e->status));
		print_output(log);
	}
	draw_status(x);
}

static void on_skipped(void *ctx, size_t i, size_t up)
{
	struct ctx *x = ctx;
	report(x, x->d->steps[i].name, 33, "skipped", "(upstream step %s %s)", x->d->steps[up].name,
	       x->s->state[up] == SCHED_FAIL ? "failed" : "did not run");
	draw_status(x);
}

static void on_started(void *ctx, size_t i)
{
	(void)i;
	draw_status(ctx);
}

/* what was reported is shown before waiting (see buffer_stderr) */
static void on_waiting(void *ctx)
{
	(void)ctx;
	fflush(stderr);
}

static void on_tick(void *ctx)
{
	draw_status(ctx);
}

/* The run log of the pipeline file, for `pipeline report`'s timeline;
 * losing it loses only that, so a failure to write it is not the pipeline's. */
static void write_runlog(const struct ctx *x, const char *file, struct runlog *l)
{
	struct strbuf path = STRBUF_INIT, abs = STRBUF_INIT;
	path_absolute(NULL, file, &abs);
	runlog_path(x->store.buf, abs.buf, &path);
	if (runlog_write(path.buf, l) < 0)
		err_clear();
	runlog_free(l);
	sb_release(&path);
	sb_release(&abs);
}

/* What this run did, for the timeline. */
static void save_runlog(const struct ctx *x)
{
	static const char *const names[] = {
		[SCHED_WAIT] = NULL,     [SCHED_RUN] = NULL,       [SCHED_HIT] = "hit",     [SCHED_RAN] = "ran",
		[SCHED_FAIL] = "failed", [SCHED_SKIP] = "skipped", [SCHED_STOP] = "stopped"
	};
	const struct sched *s = x->s;
	struct runlog l = { .start_ms = x->start, .end_ms = now_ms() };
	for (size_t k = 0; k < x->d->n; k++) {
		size_t i = x->d->order[k];
		if (x->want[i] && names[s->state[i]])
			runlog_add(&l, x->d->steps[i].name, names[s->state[i]], s->t0[i], s->t1[i]);
	}
	/* steps in the order they started */
	for (size_t a = 1; a < l.n; a++)
		for (size_t b = a; b > 0 && l.steps[b - 1].start_ms > l.steps[b].start_ms; b--) {
			struct runlog_step tmp = l.steps[b];
			l.steps[b] = l.steps[b - 1];
			l.steps[b - 1] = tmp;
		}
	write_runlog(x, x->d->file, &l);
}

/* The last line, and with --report-fd the same counts as JSON. */
static void summary(const struct ctx *x, size_t ran, size_t hits, size_t failed, size_t not_run)
{
	char dur[32];
	int64_t ms = now_ms() - x->start;
	fmt_duration(ms, dur, sizeof(dur));
	fprintf(stderr, "pipeline: %zu ran, %zu hit, %zu failed, %zu not run (%s)\n", ran, hits, failed, not_run, dur);
	if (!x->o->report_fd)
		return;
	struct strbuf sb = STRBUF_INIT;
	sb_addf(&sb,
		"{\"ran\":%zu,\"hit\":%zu,\"failed\":%zu,\"not_run\":%zu,\"witnessed\":%zu,\"duration_ms\":%lld}\n",
		ran, hits, failed, not_run, x->witnessed, (long long)ms);
	if (write_all(x->o->report_fd - 1, sb.buf, sb.len) < 0)
		fprintf(stderr, "cashet: warning: cannot write the report to fd %d: %s\n", x->o->report_fd - 1,
			strerror(errno));
	sb_release(&sb);
}

/* Not on a terminal, a line per step is buffered until the scheduler
 * waits for a worker (wait_step flushes): a no-op run of 10,000 steps
 * made 10,000 writes; a step's line still shows when it ends. */
static void buffer_stderr(const struct ctx *x)
{
	static char errbuf[1 << 16];
	if (!x->tty)
		setvbuf(stderr, errbuf, _IOFBF, sizeof(errbuf));
}

static int run_all(struct ctx *x)
{
	struct sched s;
	size_t n = x->d->n, failed = 0, hits = 0, ran = 0;
	sched_init(&s, x->d);
	s.want = x->want;
	s.force = x->force;
	s.store = x->store.buf;
	s.st = x->st;
	s.executor = x->o->executor;
	s.jobs = x->o->jobs;
	s.keep_going = x->o->keep_going;
	s.keep_logs = x->o->verbose;
	s.tick_ms = x->tty ? 100 : 0;
	s.interrupted = &got_signal;
	s.ev = (struct sched_events){ x, on_started, on_ended, on_skipped, on_waiting, on_tick };
	s.w = x->w; /* sched_release frees it */
	memset(&x->w, 0, sizeof(x->w));
	x->s = &s;
	x->start = now_ms();
	buffer_stderr(x);
	x->prev_ms = xcalloc(n ? n : 1, sizeof(*x->prev_ms));
	if (x->tty)
		load_prev_durations(x);
	int r = sched_run(&s);
	clear_status(x);
	for (size_t i = 0; i < n; i++) {
		failed += s.state[i] == SCHED_FAIL;
		hits += s.state[i] == SCHED_HIT;
		ran += s.state[i] == SCHED_RAN;
	}
	save_runlog(x);
	summary(x, ran, hits, failed, s.total - ran - hits - failed);
	fflush(stderr);
	setvbuf(stderr, NULL, _IONBF, 0);
	if (r < 0)
		cli_error(1, "%s", s.error.buf);
	int rc = got_signal ? 128 + got_signal : r < 0 || failed || s.stopped ? 1 : 0;
	x->s = NULL;
	sched_release(&s);
	return rc;
}

/* Whether step i would hit, and if not why (e->reasons), in this process. */
static int explain_step(struct ctx *x, size_t i, struct explain *e)
{
	struct step_request sr;
	int rc = -1;
	memset(e, 0, sizeof(*e));
	if (!x->st) {
		sv_push(&e->reasons, "never run before (no store)");
		return 0;
	}
	if (request(x, i, 0, -1, -1, &sr) == 0)
		rc = exec_explain(x->st, &sr.req, e);
	step_request_release(&sr);
	return rc;
}

/* " (Slurm: --cpus-per-task=2 --mem=1G)" after the first line of a dry
 * run's "run ..." for a step that would be submitted. */
static void slurm_suffix(const struct dag_step *s, struct strbuf *line)
{
	struct strvec args = STRVEC_INIT;
	struct strbuf tail = STRBUF_INIT;
	char *nl = strchr(sb_str(line), '\n');
	if (nl) {
		sb_adds(&tail, nl);
		sb_setlen(line, (size_t)(nl - line->buf));
	}
	dag_sbatch_args(s, &args);
	sb_adds(line, " (Slurm");
	for (size_t k = 0; k < args.n; k++)
		sb_addf(line, "%s%s", k ? " " : ": ", args.v[k]);
	sb_addc(line, ')');
	sb_adds(line, sb_str(&tail));
	sv_release(&args);
	sb_release(&tail);
}

static int dry_run(struct ctx *x)
{
	size_t n = x->d->n;
	unsigned char *will = xcalloc(n, 1);
	struct strbuf line = STRBUF_INIT;
	for (size_t k = 0; k < n; k++) {
		size_t i = x->d->order[k];
		const struct dag_step *s = &x->d->steps[i];
		if (!x->want[i])
			continue;
		sb_reset(&line);
		will[i] = 1;
		long up = -1;
		for (size_t p = 0; p < s->npreds && up < 0; p++)
			if (will[s->preds[p]])
				up = (long)s->preds[p];
		if (x->force[i]) {
			sb_adds(&line, "run (forced)");
		} else if (!s->cache) {
			sb_adds(&line, "run (cache = false)");
		} else if (up >= 0) {
			/* it cannot know yet whether the upstream outputs will change */
			sb_addf(&line, "run (upstream step %s will run)", x->d->steps[up].name);
		} else {
			struct explain e;
			if (explain_step(x, i, &e) < 0) {
				sb_addf(&line, "run (cannot tell: %s)", err_msg());
				err_clear();
			} else if (e.hit) {
				sb_adds(&line, "hit");
				will[i] = 0;
			} else {
				sb_adds(&line, "run");
				for (size_t r = 0; r < e.reasons.n; r++)
					sb_addf(&line, "\n  %s", e.reasons.v[r]);
			}
			explain_free(&e);
		}
		if (will[i] && sched_executor(x->d, i, x->o->executor) == DAG_EXEC_SLURM)
			slurm_suffix(s, &line);
		printf("step %s: %s\n", s->name, line.buf);
	}
	free(will);
	sb_release(&line);
	return 0;
}

/* "queued (Slurm job 12)" or "running (...)" into line when a live
 * pipeline has step i's job in flight; 0 when not. */
static int in_flight(struct ctx *x, size_t i, int any_jobs, struct strbuf *line)
{
	struct step_request sr;
	struct run_record r = { 0 };
	struct strbuf jobid = STRBUF_INIT;
	struct slurm_job job;
	int rc = 0;
	if (!x->st || !any_jobs)
		return 0;
	if (request(x, i, 0, -1, -1, &sr) == 0 && exec_fingerprint(x->st, &sr.req, &r) == 0 &&
	    slurm_job_in_flight(x->st, &r.fp, &jobid, &job) == 1) {
		const char *word = job.state == SLURM_QUEUED    ? "queued"
				   : job.state == SLURM_RUNNING ? "running"
								: "ending";
		sb_addf(line, "%s (Slurm job %s)", word, jobid.buf);
		rc = 1;
	}
	err_clear();
	step_request_release(&sr);
	run_record_free(&r);
	sb_release(&jobid);
	return rc;
}

/* " (Slurm job 12)" when the run replayed was made by a Slurm job. */
static void job_of_run(struct ctx *x, const char *hash, struct strbuf *line)
{
	struct run_record r = { 0 };
	if (store_load(x->st, hash, &r) == 1)
		for (size_t t = 0; t < r.tags.n; t++)
			if (!strncmp(r.tags.v[t], "slurm-job=", 10))
				sb_addf(line, " (Slurm job %s)", r.tags.v[t] + 10);
	err_clear();
	run_record_free(&r);
}

static int status_all(struct ctx *x)
{
	struct strvec jobs = STRVEC_INIT;
	struct strbuf dir = STRBUF_INIT;
	/* records of jobs in flight: without any, no step needs a second look */
	sb_addf(&dir, "%s/slurm/jobs", x->store.buf);
	int any_jobs = dir_names(dir.buf, &jobs) == 0 && jobs.n > 0;
	err_clear();
	sv_release(&jobs);
	sb_release(&dir);
	struct strbuf line = STRBUF_INIT;
	for (size_t k = 0; k < x->d->n; k++) {
		size_t i = x->d->order[k];
		const struct dag_step *s = &x->d->steps[i];
		struct explain e;
		if (!x->want[i])
			continue;
		sb_reset(&line);
		if (!s->cache) {
			sb_adds(&line, "always runs (cache = false)");
		} else if (in_flight(x, i, any_jobs, &line)) {
			/* said */
		} else if (explain_step(x, i, &e) < 0) {
			sb_addf(&line, "unknown (%s)", err_msg());
			err_clear();
		} else {
			if (e.hit) {
				sb_adds(&line, "up to date");
				job_of_run(x, e.hash, &line);
			} else if (e.hash[0]) {
				sb_adds(&line, "changed: ");
				for (size_t r = 0; r < e.reasons.n; r++)
					sb_addf(&line, "%s%s", r ? "; " : "", e.reasons.v[r]);
			} else {
				sb_adds(&line, "never run");
			}
			explain_free(&e);
		}
		printf("%s: %s\n", s->name, line.buf);
	}
	sb_release(&line);
	return 0;
}

static void quote(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			putchar('\\');
		putchar(*s);
	}
	putchar('"');
}

static int graph(const struct ctx *x)
{
	const struct dag *d = x->d;
	int mermaid = x->o->format && !strcmp(x->o->format, "mermaid");
	puts(mermaid ? "flowchart TD" : "digraph pipeline {");
	for (size_t k = 0; k < d->n; k++) {
		size_t i = d->order[k];
		if (!x->want[i])
			continue;
		if (mermaid) {
			printf("\ts%zu[", i);
			quote(d->steps[i].name);
			puts("]");
		} else {
			putchar('\t');
			quote(d->steps[i].name);
			puts(";");
		}
	}
	for (size_t k = 0; k < d->n; k++) {
		size_t i = d->order[k];
		for (size_t p = 0; x->want[i] && p < d->steps[i].npreds; p++) {
			size_t j = d->steps[i].preds[p];
			if (mermaid) {
				printf("\ts%zu --> s%zu\n", j, i);
			} else {
				putchar('\t');
				quote(d->steps[j].name);
				fputs(" -> ", stdout);
				quote(d->steps[i].name);
				puts(";");
			}
		}
	}
	if (!mermaid)
		puts("}");
	return 0;
}

/* The store every step uses: --store or $CASHET_DIR, else the nearest
 * .cashet from the pipeline's directory (created there by `run`). */
static int find_store(struct cli *cli, struct ctx *x, int create)
{
	int found = store_find_from(cli->store_opt, x->d->dir, &x->store);
	if (found < 0)
		return -1;
	if (found == 1 && create) {
		struct store *st = NULL;
		int created = 0;
		/* store_open copes with another pipeline creating it at the same time */
		if (store_open(x->store.buf, STORE_CREATE, &st, &created) < 0)
			return -1;
		store_close(st);
		if (created)
			fprintf(stderr, "cashet: created a new store in %s\n", x->store.buf);
	}
	return 0;
}

/* The log directories of pipelines that were killed (kill -9 never runs
 * remove_logs): cashet-pipeline.<pid>-XXXXXX whose process is gone,
 * this user's only. As store_sweep_tmp() does for the store's tmp/. */
static void sweep_stale_logdirs(const char *tmp)
{
	static const char prefix[] = "cashet-pipeline.";
	DIR *d = opendir(tmp);
	struct dirent *e;
	struct strbuf p = STRBUF_INIT;
	while (d && (e = readdir(d))) {
		struct stat sb;
		char *end;
		if (strncmp(e->d_name, prefix, sizeof(prefix) - 1))
			continue;
		long pid = strtol(e->d_name + sizeof(prefix) - 1, &end, 10);
		if (pid <= 0 || *end != '-' || kill((pid_t)pid, 0) == 0 || errno != ESRCH)
			continue;
		sb_reset(&p);
		sb_addf(&p, "%s/%s", tmp, e->d_name);
		if (lstat(p.buf, &sb) == 0 && S_ISDIR(sb.st_mode) && sb.st_uid == getuid())
			rm_rf(p.buf);
	}
	if (d)
		closedir(d);
	sb_release(&p);
}

static void remove_logs(struct ctx *x)
{
	/* the logs are in memory: the directory is only a marker of this run */
	if (x->logdir.len && rmdir(x->logdir.buf) < 0)
		rm_rf(x->logdir.buf);
}

enum sub { SUB_RUN, SUB_GRAPH, SUB_STATUS, SUB_REPORT };

/* A run whose witness held: every step a hit, said as a run that replayed
 * them says it, the run log and the runs' last use (once a minute, as
 * store_touch) kept as it keeps them. */
static void witnessed_run(struct ctx *x, struct store *st, const char *file, const struct strvec *names,
			  const struct strvec *runs)
{
	struct runlog l = { .start_ms = x->start };
	struct stat sb;
	x->tty = isatty(STDERR_FILENO);
	x->color = x->tty && !(getenv("NO_COLOR") && *getenv("NO_COLOR"));
	buffer_stderr(x);
	for (size_t i = 0; i < names->n; i++) {
		report(x, names->v[i], 32, "hit", "(0.00s)");
		runlog_add(&l, names->v[i], "hit", x->start, now_ms());
	}
	x->witnessed = names->n;
	l.end_ms = now_ms();
	write_runlog(x, file, &l);
	if (stat(x->w.path.buf, &sb) == 0 && l.end_ms - (int64_t)sb.st_mtime * 1000 >= 60000 &&
	    store_touch_runs(st, runs, l.end_ms) == 0)
		utimensat(AT_FDCWD, x->w.path.buf, NULL, 0);
	err_clear();
	summary(x, 0, names->n, 0, 0);
	fflush(stderr);
	setvbuf(stderr, NULL, _IONBF, 0);
}

/* Before the file is parsed: the witness's key and the index's generation
 * (what the witness written at the end must match), then whether the last
 * run's witness still holds. Returns 1 when it did (the run is done), 0
 * to run the pipeline. Not finding or opening the store is not an error
 * here: the run says it. */
static int witness_begin(struct cli *cli, struct ctx *x, const char *file, char *const *targets, int ntargets)
{
	struct opts *o = x->o;
	struct strvec names = STRVEC_INIT, runs = STRVEC_INIT;
	struct store *st = NULL;
	int held = 0;
	char *real = realpath(file, NULL);
	if (!real)
		goto out;
	*strrchr(real, '/') = 0;
	if (store_find_from(cli->store_opt, *real ? real : "/", &x->store) != 0 ||
	    store_open(x->store.buf, 0, &st, NULL) < 0 || store_generation(st, &x->w.epoch, &x->w.gen) < 0)
		goto out;
	path_absolute(NULL, file, &x->w.abs_file);
	sb_addf(&x->w.options, "executor=%s\n", o->executor ? o->executor : "");
	for (int i = 0; i < ntargets; i++)
		sb_addf(&x->w.options, "target=%s\n", targets[i]);
	if (witness_key(x->w.abs_file.buf, x->store.buf, x->w.options.buf, &x->w.key) < 0)
		goto out;
	witness_path(x->store.buf, x->w.abs_file.buf, &x->w.path);
	x->w.on = 1;
	/* -v shows the steps' output, which only a replay has */
	if (o->verbose || o->force_all || o->force_steps.n)
		goto out;
	x->start = now_ms();
	if (witness_holds(x->w.path.buf, &x->w.key, x->w.epoch, x->w.gen, x->start, &names, &runs)) {
		witnessed_run(x, st, file, &names, &runs);
		held = 1;
	}
out:
	err_clear();
	free(real);
	store_close(st);
	sv_release(&names);
	sv_release(&runs);
	if (!held)
		sb_reset(&x->store); /* found again once the file is read */
	return held;
}

/* The page to -o FILE (atomically), or to stdout. */
static int write_report(struct ctx *x)
{
	struct strbuf page = STRBUF_INIT;
	int rc = 1;
	if (report_write(x->d, x->st, x->store.buf, x->want, x->o->metric, &page) < 0) {
		cli_fail(1);
		goto out;
	}
	if (x->o->output && strcmp(x->o->output, "-")) {
		if (write_file_atomic(x->o->output, page.buf, page.len, 0644) < 0) {
			cli_fail(1);
			goto out;
		}
		fprintf(stderr, "cashet: wrote %s\n", x->o->output);
	} else if (write_all(STDOUT_FILENO, page.buf, page.len) < 0) {
		cli_error(1, "cannot write the report: %s", strerror(errno));
		goto out;
	}
	rc = 0;
out:
	sb_release(&page);
	return rc;
}

/* The operands are [FILE] [TARGET...]: the first is FILE if it is a file or
 * ends in .toml, else a target (FILE = dag.toml). */
static int pipeline(struct cli *cli, struct opts *o, int argc, char **argv, enum sub sub)
{
	const char *file = "dag.toml";
	struct ctx x;
	int rc;
	memset(&x, 0, sizeof(x));
	x.o = o;
	/* the file, if the first word names one (a path: step names have no
	 * '/'), else dag.toml and every word a target */
	if (argc && (is_file(argv[0]) || strchr(argv[0], '/') ||
		     (strlen(argv[0]) > 5 && !strcmp(argv[0] + strlen(argv[0]) - 5, ".toml")))) {
		file = argv[0];
		argc--;
		argv++;
	}
	if (o->jobs <= 0) {
		long cores = sysconf(_SC_NPROCESSORS_ONLN);
		o->jobs = cores > 0 ? (int)cores : 1;
	}
	if (sub == SUB_RUN && !o->dry_run && witness_begin(cli, &x, file, argv, argc)) {
		rc = 0;
		goto out;
	}
	rc = 2;
	if (dag_load(file, &x.d) < 0) {
		cli_fail(2);
		goto out;
	}
	x.want = xcalloc(x.d->n, 1);
	x.force = xcalloc(x.d->n, 1);
	if (dag_select(x.d, argv, (size_t)argc, x.want) < 0) {
		cli_fail(2);
		goto out;
	}
	if (o->force_all)
		memset(x.force, 1, x.d->n);
	for (size_t f = 0; f < o->force_steps.n; f++) {
		unsigned char *sel = xcalloc(x.d->n, 1);
		int bad = dag_select(x.d, &o->force_steps.v[f], 1, sel) < 0;
		/* only the named step is forced, not what it needs */
		for (size_t i = 0; !bad && i < x.d->n; i++)
			if (!strcmp(x.d->steps[i].name, o->force_steps.v[f]) ||
			    !strcmp(x.d->steps[i].base, o->force_steps.v[f]))
				x.force[i] = 1;
		free(sel);
		if (bad) {
			cli_fail(2);
			goto out;
		}
	}
	rc = 0;
	if (sub == SUB_GRAPH) {
		rc = graph(&x);
		goto out;
	}
	rc = 1;
	if (find_store(cli, &x, sub == SUB_RUN && !o->dry_run) < 0) {
		cli_fail(1);
		goto out;
	}
	if (dag_check_store(x.d, x.want, x.store.buf) < 0) {
		rc = cli_fail(2);
		goto out;
	}
	const char *tmp = getenv("TMPDIR");
	if (!tmp || !*tmp)
		tmp = "/tmp";
	sweep_stale_logdirs(tmp);
	sb_addf(&x.logdir, "%s/cashet-pipeline.%ld-XXXXXX", tmp, (long)getpid());
	if (!mkdtemp(x.logdir.buf)) {
		err_sys("cannot create a directory for step logs in %s", tmp);
		sb_release(&x.logdir);
		cli_fail(1);
		goto out;
	}
	x.tty = isatty(STDERR_FILENO);
	x.color = x.tty && !(getenv("NO_COLOR") && *getenv("NO_COLOR"));
	signals_init();
	/* one store for in-process hits and explanations; without it every
	 * step is new (status, dry run) or goes to a worker (run) */
	if (store_open(x.store.buf, 0, &x.st, NULL) < 0) {
		/* run made the store: it is there, and cannot be opened (a
		 * full disk, an I/O error); the steps run uncached, as exec's
		 * command does then, with one warning */
		if (sub == SUB_RUN && !o->dry_run)
			fprintf(stderr, "cashet: warning: %s; running the steps without caching them\n", err_msg());
		err_clear();
		x.st = NULL;
	}
	/* status and dry runs write nothing: the system's files are one
	 * snapshot for them (sched_run keeps it while nothing runs) */
	if (x.st && (sub == SUB_STATUS || o->dry_run))
		stat_memo_enable(store_root(x.st));
	if (sub == SUB_STATUS)
		rc = status_all(&x);
	else if (sub == SUB_REPORT)
		rc = write_report(&x);
	else if (o->dry_run)
		rc = dry_run(&x);
	else
		rc = run_all(&x);
	stat_memo_enable(NULL);
out:
	store_close(x.st);
	if (x.d)
		remove_logs(&x);
	dag_free(x.d);
	free(x.want);
	free(x.force);
	free(x.prev_ms);
	sb_release(&x.w.abs_file);
	sb_release(&x.w.path);
	sb_release(&x.w.options);
	sb_release(&x.store);
	sb_release(&x.logdir);
	return rc;
}

static int cmd_run(struct cli *cli, void *opts, int argc, char **argv)
{
	return pipeline(cli, opts, argc, argv, SUB_RUN);
}

static int cmd_graph(struct cli *cli, void *opts, int argc, char **argv)
{
	return pipeline(cli, opts, argc, argv, SUB_GRAPH);
}

static int cmd_status(struct cli *cli, void *opts, int argc, char **argv)
{
	return pipeline(cli, opts, argc, argv, SUB_STATUS);
}

static int cmd_report(struct cli *cli, void *opts, int argc, char **argv)
{
	return pipeline(cli, opts, argc, argv, SUB_REPORT);
}

/* --force alone forces every step; --force STEP only STEP (force_steps). */
static int force_all(void *opts, const char *step)
{
	struct opts *o = opts;
	o->force_all |= !step;
	return 0;
}

static int take_report_fd(void *opts, const char *arg)
{
	struct opts *o = opts;
	int fd;
	if (opt_fd("report-fd", arg, &fd) < 0)
		return -1;
	o->report_fd = fd + 1;
	return 0;
}

/* The word after --force is STEP unless it is a file (FILE) or an option. */
static int not_a_file(const char *word)
{
	return !is_file(word);
}

#define OPTS struct opts
static const struct opt run_rows[] = {
	OPT_INT("jobs", 'j', jobs, "N", 1, 1024, "run up to N steps at once (default: the number of cores)"),
	OPT_BOOL("keep-going", 'k', keep_going, "after a failure, still run every step not downstream of it"),
	OPT_BOOL("dry-run", 'n', dry_run, "run nothing: print each step in order, hit or run, and why"),
	OPT_LIST_OPTIONAL("force", 'f', force_steps, "STEP", force_all, not_a_file,
			  "run every step, or only STEP (repeatable), even if cached"),
	OPT_BOOL("verbose", 'v', verbose, "print every step's output, not only a failed step's"),
	OPT_CALLBACK("report-fd", 0, take_report_fd, "N",
		     "write the run's counts as one JSON line to file descriptor N"),
	OPT_CHOICE("executor", 0, executor, "local|slurm",
		   "run the steps that name no executor here or as Slurm jobs (default: the file's, else local)"),
	OPT_END,
};
static const struct opt graph_rows[] = {
	OPT_CHOICE("format", 0, format, "dot|mermaid", "the graph's language (default: dot)"),
	OPT_END,
};

static const struct opt report_rows[] = {
	OPT_STRING("output", 'o', output, "FILE", "write the page to FILE (default: standard output)"),
	OPT_STRING("metric", 0, metric, "NAME", "the metric to plot (default: the first)"),
	OPT_END,
};

static const struct opt_table run_options = { OPT_ROWS(run_rows) };
static const struct opt_table report_options = { OPT_ROWS(report_rows) };
static const struct opt_table graph_options = { OPT_ROWS(graph_rows) };
static const struct opt_table status_options = { OPT_ROWS(NULL) };

/* name, handler, options, flags, operands, summary, subcommands: as main.c's table */
const struct command cmd_pipeline_subs[] = {
	{ "run", cmd_run, &run_options, 0, "[FILE] [TARGET...]", "run the steps, replaying those that are unchanged",
	  NULL },
	{ "graph", cmd_graph, &graph_options, 0, "[FILE] [TARGET...]", "print the steps and their edges as a graph",
	  NULL },
	{ "status", cmd_status, &status_options, 0, "[FILE] [TARGET...]",
	  "say for each step whether it is up to date, queued or running on Slurm, and if not what changed", NULL },
	{ "job", cmd_pipeline_job, &cmd_pipeline_job_options, 0, "FILE STEP",
	  "run one step as a Slurm job of 'pipeline run --executor slurm' does", NULL },
	{ "report", cmd_report, &report_options, 0, "[FILE] [TARGET...]",
	  "write an HTML page: the steps' graph and states, the last run's timeline, experiments and a plot", NULL },
	{ NULL, NULL, NULL, 0, NULL, NULL, NULL },
};

const struct opt_table cmd_pipeline_options = {
	.help = "FILE is dag.toml by default (see cashet-pipeline(5)); TARGETs are step names\n"
		"(a sweep's base name means all its expansions); default: every step.\n",
};
#undef OPTS
