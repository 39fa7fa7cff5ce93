/* cashet pipeline run|graph|status: runs the steps of a dag.toml in
 * topological order. Each step is a child `cashet exec` (this very binary),
 * so fingerprints, exactly-once claims, storing and replaying are exec's;
 * this file only schedules, captures each child's output to files, and
 * reports. Hit or run is read from the child's `-v` lines ("cashet: hit").
 * The one shortcut: a step that exec would only replay is replayed in this
 * process (exec_replay_cached, same argv, directory and environment as the
 * child would have), so a no-op run starts no process at all. */
#include "cli/cli.h"
#include "pipeline/dag.h"
#include "pipeline/pipeline-step.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static const char pipeline_usage[] =
	"usage: cashet pipeline run [options] [FILE] [TARGET...]\n"
	"       cashet pipeline graph [--format dot|mermaid] [FILE]\n"
	"       cashet pipeline status [FILE] [TARGET...]\n"
	"FILE is dag.toml by default (see cashet-pipeline(5)); TARGETs are step names\n"
	"(a sweep's base name means all its expansions); default: every step.\n"
	"  -j, --jobs N           run up to N steps at once (default: the number of cores)\n"
	"  -k, --keep-going       after a failure, still run every step not downstream of it\n"
	"  -n, --dry-run          run nothing: print each step in order, hit or run, and why\n"
	"  -f, --force [STEP]     run every step, or only STEP (repeatable), even if cached\n"
	"  -v, --verbose          print every step's output, not only a failed step's\n"
	"      --format FORMAT    graph: dot (default) or mermaid\n"
	"      --store DIR        use the store at DIR\n";

enum state { S_WAIT, S_RUN, S_HIT, S_RAN, S_FAIL, S_SKIP, S_STOP };

struct opts {
	const char *file, *format;
	struct strvec targets, force_steps;
	int force_all, jobs, keep_going, dry_run, verbose;
};

struct ctx {
	struct dag *d;
	struct opts *o;
	char self[PATH_MAX];
	struct strbuf store;	/* absolute store directory passed to every child */
	struct strbuf logdir;	/* temporary: one .out and .err per step */
	struct cli *cli;
	struct store *st;	/* open for in-process hits, or NULL: every step is a child */
	int cwd_fd;		/* the scheduler's directory, to come back to after a step's */
	unsigned char *want, *force;
	enum state *state;
	pid_t *pid;
	int64_t *t0;
	int tty;
	size_t total, done, running;
	int64_t start;
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

/* Options may come anywhere after the subcommand. The first positional word
 * is FILE if it is a file or ends in .toml, else a target (FILE = dag.toml).
 * The word after --force is the step to force unless it is an option or a
 * file; --force=STEP is unambiguous. Returns -1 ok, else an exit code. */
static int parse_opts(int argc, char **argv, struct opts *o)
{
	const char *sub = argv[1];
	int dashdash = 0;
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i];
		const char *val = NULL;
		if (dashdash || a[0] != '-' || !a[1]) {
			if (!o->file && !o->targets.n && (is_file(a) || (strlen(a) > 5 && !strcmp(a + strlen(a) - 5, ".toml"))))
				o->file = a;
			else
				sv_push(&o->targets, a);
			continue;
		}
		if (!strcmp(a, "--")) {
			dashdash = 1;
		} else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			fputs(pipeline_usage, stdout);
			return 0;
		} else if (!strcmp(a, "-k") || !strcmp(a, "--keep-going")) {
			o->keep_going = 1;
		} else if (!strcmp(a, "-n") || !strcmp(a, "--dry-run")) {
			o->dry_run = 1;
		} else if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) {
			o->verbose = 1;
		} else if (!strncmp(a, "--force=", 8)) {
			sv_push(&o->force_steps, a + 8);
		} else if (!strcmp(a, "-f") || !strcmp(a, "--force")) {
			if (i + 1 < argc && argv[i + 1][0] != '-' && !is_file(argv[i + 1]))
				sv_push(&o->force_steps, argv[++i]);
			else
				o->force_all = 1;
		} else if (!strncmp(a, "-j", 2) || !strncmp(a, "--jobs", 6)) {
			if (!strcmp(a, "-j") || !strcmp(a, "--jobs")) {
				if (i + 1 >= argc)
					return cli_usage("pipeline", "%s needs a number", a);
				val = argv[++i];
			} else {
				val = a[1] == 'j' ? a + 2 : !strncmp(a, "--jobs=", 7) ? a + 7 : NULL;
			}
			char *end;
			long j = val ? strtol(val, &end, 10) : 0;
			if (!val || !*val || *end || j < 1 || j > 1024)
				return cli_usage("pipeline", "invalid number of jobs '%s'", val ? val : a);
			o->jobs = (int)j;
		} else if (!strcmp(a, "--format") || !strncmp(a, "--format=", 9)) {
			if (a[8] == '=')
				val = a + 9;
			else if (i + 1 < argc)
				val = argv[++i];
			else
				return cli_usage("pipeline", "--format needs dot or mermaid");
			if (strcmp(val, "dot") && strcmp(val, "mermaid"))
				return cli_usage("pipeline", "unknown format '%s' (dot or mermaid)", val);
			o->format = val;
		} else {
			return cli_usage("pipeline", "unknown option '%s' for '%s'", a, sub);
		}
	}
	if (!o->file)
		o->file = "dag.toml";
	return -1;
}

static void log_path(const struct ctx *x, size_t i, const char *ext, struct strbuf *p)
{
	sb_reset(p);
	sb_addf(p, "%s/%zu.%s", x->logdir.buf, i, ext);
}

/* Starts a child for step i in its workdir, stdout and stderr to the step's
 * log files, stdin from /dev/null, the step's env table set. */
static pid_t spawn(const struct ctx *x, size_t i, const char *mode)
{
	const struct dag_step *s = &x->d->steps[i];
	struct strvec av = STRVEC_INIT;
	struct strbuf out = STRBUF_INIT, err = STRBUF_INIT, wd = STRBUF_INIT;
	pipeline_step_argv(s, x->self, x->store.buf, mode, x->force[i], &av);
	log_path(x, i, "out", &out);
	log_path(x, i, "err", &err);
	pipeline_step_workdir(x->d, s, &wd);
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		signal(SIGINT, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		signal(SIGHUP, SIG_DFL);
		int fo = open(out.buf, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		int fe = open(err.buf, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		int fi = open("/dev/null", O_RDONLY);
		if (fo < 0 || fe < 0 || fi < 0)
			_exit(125);
		dup2(fi, 0);
		dup2(fo, 1);
		dup2(fe, 2);
		if (chdir(wd.buf) < 0) {
			dprintf(2, "cashet: cannot enter the workdir %s: %s\n", wd.buf, strerror(errno));
			_exit(125);
		}
		for (size_t k = 0; k < s->env_set.n; k++) {
			char *eq = strchr(s->env_set.v[k], '=');
			*eq = 0;
			setenv(s->env_set.v[k], eq + 1, 1);
		}
		execv(x->self, av.v);
		dprintf(2, "cashet: cannot execute %s: %s\n", x->self, strerror(errno));
		_exit(125);
	}
	if (pid < 0)
		err_sys("cannot fork");
	sv_release(&av);
	sb_release(&out);
	sb_release(&err);
	sb_release(&wd);
	return pid;
}

/* exec's -v lines are ours, not the step's: left out when showing its output. */
static int verbose_line(const char *l)
{
	static const char *const pre[] = { "cashet: hit ", "cashet: miss ", "cashet: forced ", "cashet: no-cache ",
					   "cashet: waited for ", "cashet: why: ", "cashet: stored ", NULL };
	for (size_t i = 0; pre[i]; i++)
		if (!strncmp(l, pre[i], strlen(pre[i])))
			return 1;
	return 0;
}

/* Whether the child replayed: exec -v ends a replay with "cashet: hit"
 * (or "waited for" another process running the same step) after the
 * replayed streams, and a run with "cashet: stored", so only the last line
 * counts: a step that itself runs `cashet exec -v` cannot fool it. The
 * line may start with the end of a replayed stderr that had no newline. */
static int child_hit(const struct ctx *x, size_t i)
{
	struct strbuf p = STRBUF_INIT;
	char *l = NULL;
	size_t cap = 0;
	int hit = 0;
	log_path(x, i, "err", &p);
	/* streamed: a step's stderr may be large */
	FILE *f = fopen(p.buf, "r");
	while (f && getline(&l, &cap, f) >= 0)
		hit = strstr(l, "cashet: hit ") || strstr(l, "cashet: waited for ");
	if (f)
		fclose(f);
	free(l);
	sb_release(&p);
	return hit;
}

/* What enter_step() changed in this process, for leave_step(). */
struct saved_env {
	struct strvec names;
	char **old;	/* the values before, NULL for unset */
	size_t set;	/* how many of names were set */
};

/* Puts this process where spawn() puts the step's child: in its workdir,
 * with its env table set. Returns 0, or -1 if it cannot (the child will
 * meet the same); either way leave_step() undoes what was done. */
static int enter_step(const struct ctx *x, size_t i, struct saved_env *sv)
{
	const struct dag_step *s = &x->d->steps[i];
	struct strbuf wd = STRBUF_INIT;
	int rc = -1;
	memset(sv, 0, sizeof(*sv));
	sv->old = xcalloc(s->env_set.n + 1, sizeof(*sv->old));
	/* every value before any is set: a name may be set twice */
	for (size_t k = 0; k < s->env_set.n; k++) {
		const char *e = s->env_set.v[k], *eq = strchr(e, '=');
		sv_push_nocopy(&sv->names, xstrndup(e, eq ? (size_t)(eq - e) : strlen(e)));
		const char *v = getenv(sv->names.v[k]);
		sv->old[k] = v ? xstrdup(v) : NULL;
	}
	pipeline_step_workdir(x->d, s, &wd);
	if (chdir(wd.buf) < 0)
		goto out;
	for (; sv->set < s->env_set.n; sv->set++) {
		const char *eq = strchr(s->env_set.v[sv->set], '=');
		if (!eq || setenv(sv->names.v[sv->set], eq + 1, 1) < 0)
			goto out;
	}
	rc = 0;
out:
	sb_release(&wd);
	return rc;
}

/* Returns -1 if the scheduler's own directory or environment cannot be put back. */
static int leave_step(const struct ctx *x, struct saved_env *sv)
{
	int rc = 0;
	for (size_t k = 0; k < sv->set; k++)
		if (sv->old[k] ? setenv(sv->names.v[k], sv->old[k], 1) : unsetenv(sv->names.v[k]))
			rc = -1;
	if (fchdir(x->cwd_fd) < 0)
		rc = -1;
	for (size_t k = 0; k < sv->names.n; k++)
		free(sv->old[k]);
	free(sv->old);
	sv_release(&sv->names);
	return rc;
}

/* The no-op fast path: when all step i's child would do is replay a run,
 * replays it in this process (exec_replay_cached, with the child's argv,
 * directory and environment), its streams to the step's log files when
 * they will be shown (-v). Returns 1 replayed, 0 to spawn the child (a
 * miss, or anything unusual), -1 if the scheduler's state cannot be put back. */
static int replay_in_process(struct ctx *x, size_t i)
{
	struct strvec av = STRVEC_INIT;
	struct strbuf p = STRBUF_INIT;
	struct saved_env sv;
	int fo = -1, fe = -1, rc = 0;
	if (!x->st || x->force[i] || !x->d->steps[i].cache)
		return 0;
	if (x->o->verbose) {
		log_path(x, i, "out", &p);
		fo = open(p.buf, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		log_path(x, i, "err", &p);
		fe = open(p.buf, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (fo < 0 || fe < 0)
			goto out;
	}
	pipeline_step_argv(&x->d->steps[i], x->self, x->store.buf, "exec", x->force[i], &av);
	int entered = enter_step(x, i, &sv) == 0;
	/* argv as exec_main gets it: av[0] is this binary, av[1] "exec" */
	int r = entered ? exec_replay_cached(x->cli, x->st, (int)av.n - 1, av.v + 1, fo, fe) : 1;
	if (leave_step(x, &sv) < 0) {
		err_set("cannot restore the pipeline's directory or environment after step %s", x->d->steps[i].name);
		rc = -1;
		goto out;
	}
	err_clear();
	rc = r == 0;
out:
	if (fo >= 0)
		close(fo);
	if (fe >= 0)
		close(fe);
	sv_release(&av);
	sb_release(&p);
	return rc;
}

static void clear_status(const struct ctx *x)
{
	if (x->tty)
		fputs("\r\033[K", stderr);
}

static void draw_status(const struct ctx *x)
{
	if (!x->tty)
		return;
	fprintf(stderr, "\r\033[K[%zu/%zu] %zu running, %zu left, %.1fs", x->done, x->total, x->running,
		x->total - x->done - x->running, (double)(now_ms() - x->start) / 1000);
}

/* The step's stdout, then its stderr, each line indented under its name. */
static void print_output(const struct ctx *x, size_t i)
{
	const char *ext[] = { "out", "err" };
	struct strbuf p = STRBUF_INIT, sb = STRBUF_INIT;
	for (int k = 0; k < 2; k++) {
		log_path(x, i, ext[k], &p);
		sb_reset(&sb);
		if (read_file_sb(p.buf, &sb) < 0) {
			err_clear();
			continue;
		}
		char *save = NULL;
		for (char *l = strtok_r(sb.buf, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
			/* exec's line may follow a replayed stderr without a newline */
			for (char *c = strstr(l, "cashet: "); k == 1 && c; c = strstr(c + 1, "cashet: "))
				if (verbose_line(c)) {
					*c = 0;
					break;
				}
			if (*l)
				fprintf(stderr, "  | %s\n", l);
		}
	}
	sb_release(&p);
	sb_release(&sb);
}

static void report(struct ctx *x, size_t i, const char *fmt, ...) PRINTF_LIKE(3, 4);
static void report(struct ctx *x, size_t i, const char *fmt, ...)
{
	struct strbuf sb = STRBUF_INIT;
	va_list ap;
	clear_status(x);
	sb_addf(&sb, "step %s: ", x->d->steps[i].name);
	va_start(ap, fmt);
	sb_vaddf(&sb, fmt, ap);
	va_end(ap);
	sb_addc(&sb, '\n');
	/* one write: stderr is unbuffered, and a no-op run is mostly reports */
	fputs(sb.buf, stderr);
	sb_release(&sb);
}

/* A step's end: status is the child's, hit < 0 to read hit or run from
 * its log, else whether it was replayed in this process. */
static void finish(struct ctx *x, size_t i, int status, int stopping, int hit)
{
	char dur[32];
	int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	snprintf(dur, sizeof(dur), "%.2fs", (double)(now_ms() - x->t0[i]) / 1000);
	x->running--;
	x->done++;
	x->pid[i] = 0;
	if (hit < 0)
		hit = x->d->steps[i].cache && !x->force[i] && child_hit(x, i);
	if (code == 0) {
		x->state[i] = hit ? S_HIT : S_RAN;
		report(x, i, "%s (%s)", x->state[i] == S_HIT ? "hit" : "ran", dur);
		if (x->o->verbose)
			print_output(x, i);
	} else if (stopping) {
		x->state[i] = S_STOP;
		report(x, i, "stopped (%s)", dur);
	} else {
		x->state[i] = S_FAIL;
		if (WIFEXITED(status))
			report(x, i, "FAILED (exit %d)", code);
		else
			report(x, i, "FAILED (signal %d)", WTERMSIG(status));
		print_output(x, i);
	}
	draw_status(x);
}

/* A step is ready when everything it needs is done; it will never run if
 * something it needs failed, was stopped or skipped (returned as *why). */
static int ready(const struct ctx *x, size_t i, size_t *why)
{
	const struct dag_step *s = &x->d->steps[i];
	int ok = 1;
	for (size_t p = 0; p < s->npreds; p++) {
		enum state st = x->state[s->preds[p]];
		if (st == S_FAIL || st == S_SKIP || st == S_STOP) {
			*why = s->preds[p];
			return -1;
		}
		if (st != S_HIT && st != S_RAN)
			ok = 0;
	}
	return ok;
}

static int run_all(struct ctx *x)
{
	size_t n = x->d->n, failed = 0, hits = 0, ran = 0;
	int stopping = 0, rc = 0;
	x->start = now_ms();
	/* one store for every in-process hit; without it every step is a child */
	x->cwd_fd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (x->cwd_fd < 0 || store_open(x->store.buf, 0, &x->st, NULL) < 0) {
		err_clear();
		x->st = NULL;
	}
	for (size_t i = 0; i < n; i++)
		x->total += x->want[i];
	draw_status(x);
	for (;;) {
		if (got_signal && !stopping) {
			stopping = 1;
			for (size_t i = 0; i < n; i++)
				if (x->pid[i] > 0)
					kill(x->pid[i], SIGTERM);
		}
		/* got_signal too: a pass of in-process replays starts no child to interrupt */
		for (size_t k = 0; k < n && !stopping && !got_signal; k++) {
			size_t i = x->d->order[k], up = 0;
			if (!x->want[i] || x->state[i] != S_WAIT)
				continue;
			int r = ready(x, i, &up);
			if (r < 0) {
				x->state[i] = S_SKIP;
				x->done++;
				report(x, i, "skipped (upstream step %s %s)", x->d->steps[up].name,
				       x->state[up] == S_FAIL ? "failed" : "did not run");
				draw_status(x);
				continue;
			}
			if (!r || x->running >= (size_t)x->o->jobs)
				continue;
			x->t0[i] = now_ms();
			int here = replay_in_process(x, i);
			if (here < 0) {
				rc = cli_fail(1);
				stopping = 1;
				break;
			}
			if (here) {
				x->running++;
				finish(x, i, 0, 0, 1);
				continue;
			}
			if (got_signal)
				break; /* it may have cut the replay short: nothing more starts */
			x->pid[i] = spawn(x, i, "exec");
			if (x->pid[i] < 0) {
				rc = cli_fail(1);
				x->pid[i] = 0;
				stopping = 1;
				break;
			}
			x->state[i] = S_RUN;
			x->running++;
			draw_status(x);
		}
		if (!x->running)
			break;
		int status;
		pid_t pid = waitpid(-1, &status, x->tty ? WNOHANG : 0);
		if (pid == 0) {
			poll(NULL, 0, 100);
			draw_status(x);
			continue;
		}
		if (pid < 0) {
			if (errno == EINTR)
				continue;
			err_sys("waitpid");
			rc = cli_fail(1);
			break;
		}
		for (size_t i = 0; i < n; i++) {
			if (x->pid[i] != pid)
				continue;
			finish(x, i, status, stopping, -1);
			if (x->state[i] == S_FAIL && !x->o->keep_going && !stopping) {
				/* fail fast: exec forwards TERM to its command and stores nothing */
				stopping = 1;
				for (size_t j = 0; j < n; j++)
					if (x->pid[j] > 0)
						kill(x->pid[j], SIGTERM);
			}
		}
	}
	clear_status(x);
	for (size_t i = 0; i < n; i++) {
		failed += x->state[i] == S_FAIL;
		hits += x->state[i] == S_HIT;
		ran += x->state[i] == S_RAN;
	}
	char dur[32];
	fmt_duration(now_ms() - x->start, dur, sizeof(dur));
	fprintf(stderr, "pipeline: %zu ran, %zu hit, %zu failed, %zu not run (%s)\n", ran, hits, failed,
		x->total - ran - hits - failed, dur);
	store_close(x->st);
	x->st = NULL;
	if (x->cwd_fd >= 0)
		close(x->cwd_fd);
	if (got_signal)
		return 128 + got_signal;
	return rc || failed || stopping ? 1 : 0;
}

/* Runs `cashet why` for step i and waits: returns its exit status (0 hit,
 * 1 run, else an error) and its stdout in out, first stderr line in err. */
static int why_step(struct ctx *x, size_t i, struct strbuf *out, struct strbuf *err)
{
	struct strbuf p = STRBUF_INIT;
	int status = 0, code;
	pid_t pid = spawn(x, i, "why");
	if (pid < 0)
		return -1;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	log_path(x, i, "out", &p);
	read_file_sb(p.buf, out);
	log_path(x, i, "err", &p);
	read_file_sb(p.buf, err);
	err_clear();
	char *nl = strchr(sb_str(err), '\n');
	if (nl)
		sb_setlen(err, (size_t)(nl - err->buf));
	sb_release(&p);
	return code;
}

/* The reason lines of a `why` answer: its indented lines. */
static void reasons(const char *text, const char *indent, const char *sep, struct strbuf *to)
{
	struct strbuf sb = STRBUF_INIT;
	char *save = NULL;
	int first = 1;
	sb_adds(&sb, text);
	for (char *l = strtok_r(sb.buf, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		if (strncmp(l, "  ", 2))
			continue;
		sb_addf(to, "%s%s%s", first ? "" : sep, indent, l + 2);
		first = 0;
	}
	sb_release(&sb);
}

static int dry_run(struct ctx *x)
{
	size_t n = x->d->n;
	unsigned char *will = xcalloc(n, 1);
	struct strbuf out = STRBUF_INIT, err = STRBUF_INIT, line = STRBUF_INIT;
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
			sb_reset(&out);
			sb_reset(&err);
			int code = why_step(x, i, &out, &err);
			if (code == 0) {
				sb_adds(&line, "hit");
				will[i] = 0;
			} else if (code == 1) {
				sb_adds(&line, "run");
				if (strstr(out.buf, "\n  "))
					sb_addc(&line, '\n');
				reasons(out.buf, "  ", "\n", &line);
			} else {
				sb_addf(&line, "run (cannot tell: %s)", err.len ? err.buf : "cashet why failed");
			}
		}
		printf("step %s: %s\n", s->name, line.buf);
	}
	free(will);
	sb_release(&out);
	sb_release(&err);
	sb_release(&line);
	return 0;
}

static int status_all(struct ctx *x)
{
	struct strbuf out = STRBUF_INIT, err = STRBUF_INIT, line = STRBUF_INIT;
	for (size_t k = 0; k < x->d->n; k++) {
		size_t i = x->d->order[k];
		const struct dag_step *s = &x->d->steps[i];
		if (!x->want[i])
			continue;
		sb_reset(&out);
		sb_reset(&err);
		sb_reset(&line);
		int code = s->cache ? why_step(x, i, &out, &err) : -2;
		if (code == -2) {
			sb_adds(&line, "always runs (cache = false)");
		} else if (code == 0) {
			sb_adds(&line, "up to date");
		} else if (code == 1 && !strncmp(out.buf, "run: changed since", 18)) {
			sb_adds(&line, "changed: ");
			reasons(out.buf, "", "; ", &line);
		} else if (code == 1) {
			sb_adds(&line, "never run");
		} else {
			sb_addf(&line, "unknown (%s)", err.len ? err.buf : "cashet why failed");
		}
		printf("%s: %s\n", s->name, line.buf);
	}
	sb_release(&out);
	sb_release(&err);
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

/* The store every child uses: --store or $CASHET_DIR, else the nearest
 * .cashet from the pipeline's directory (created there by `run`). */
static int find_store(struct cli *cli, struct ctx *x, int create)
{
	const char *env = getenv("CASHET_DIR");
	int explicit = (cli->store_opt && *cli->store_opt) || (env && *env);
	if (!explicit && chdir(x->d->dir) < 0)
		return err_sys("cannot enter %s", x->d->dir);
	int found = store_find(cli->store_opt, &x->store);
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

static void remove_logs(struct ctx *x)
{
	struct strbuf p = STRBUF_INIT;
	/* steps replayed in this process without -v left no logs: often none */
	if (!x->logdir.len || rmdir(x->logdir.buf) == 0)
		return;
	for (size_t i = 0; i < x->d->n; i++) {
		log_path(x, i, "out", &p);
		unlink(p.buf);
		log_path(x, i, "err", &p);
		unlink(p.buf);
	}
	rmdir(x->logdir.buf);
	sb_release(&p);
}

int cmd_pipeline(struct cli *cli, int argc, char **argv)
{
	struct opts o;
	struct ctx x;
	int rc;
	memset(&o, 0, sizeof(o));
	memset(&x, 0, sizeof(x));
	x.o = &o;
	x.cli = cli;
	x.cwd_fd = -1;
	if (argc < 2) {
		fputs(pipeline_usage, stderr);
		return 2;
	}
	const char *sub = argv[1];
	if (!strcmp(sub, "-h") || !strcmp(sub, "--help")) {
		fputs(pipeline_usage, stdout);
		return 0;
	}
	if (strcmp(sub, "run") && strcmp(sub, "graph") && strcmp(sub, "status"))
		return cli_usage("pipeline", "unknown subcommand '%s' (run, graph or status)", sub);
	rc = parse_opts(argc, argv, &o);
	if (rc >= 0)
		goto out;
	if (o.jobs <= 0) {
		long cores = sysconf(_SC_NPROCESSORS_ONLN);
		o.jobs = cores > 0 ? (int)cores : 1;
	}
	rc = 2;
	if (dag_load(o.file, &x.d) < 0) {
		cli_fail(2);
		goto out;
	}
	x.want = xcalloc(x.d->n, 1);
	x.force = xcalloc(x.d->n, 1);
	if (dag_select(x.d, o.targets.v, o.targets.n, x.want) < 0) {
		cli_fail(2);
		goto out;
	}
	if (o.force_all)
		memset(x.force, 1, x.d->n);
	for (size_t f = 0; f < o.force_steps.n; f++) {
		unsigned char *sel = xcalloc(x.d->n, 1);
		int bad = dag_select(x.d, &o.force_steps.v[f], 1, sel) < 0;
		/* only the named step is forced, not what it needs */
		for (size_t i = 0; !bad && i < x.d->n; i++)
			if (!strcmp(x.d->steps[i].name, o.force_steps.v[f]) ||
			    !strcmp(x.d->steps[i].base, o.force_steps.v[f]))
				x.force[i] = 1;
		free(sel);
		if (bad) {
			cli_fail(2);
			goto out;
		}
	}
	rc = 0;
	if (!strcmp(sub, "graph")) {
		rc = graph(&x);
		goto out;
	}
	rc = 1;
	ssize_t len = readlink("/proc/self/exe", x.self, sizeof(x.self) - 1);
	if (len < 0) {
		err_sys("cannot find the cashet executable");
		cli_fail(1);
		goto out;
	}
	x.self[len] = 0;
	if (find_store(cli, &x, !strcmp(sub, "run") && !o.dry_run) < 0) {
		cli_fail(1);
		goto out;
	}
	const char *tmp = getenv("TMPDIR");
	sb_addf(&x.logdir, "%s/cashet-pipeline.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(x.logdir.buf)) {
		err_sys("cannot create a directory for step logs in %s", tmp && *tmp ? tmp : "/tmp");
		sb_release(&x.logdir);
		cli_fail(1);
		goto out;
	}
	x.state = xcalloc(x.d->n, sizeof(*x.state));
	x.pid = xcalloc(x.d->n, sizeof(*x.pid));
	x.t0 = xcalloc(x.d->n, sizeof(*x.t0));
	x.tty = isatty(STDERR_FILENO);
	signals_init();
	if (!strcmp(sub, "status"))
		rc = status_all(&x);
	else if (o.dry_run)
		rc = dry_run(&x);
	else
		rc = run_all(&x);
out:
	if (x.d)
		remove_logs(&x);
	dag_free(x.d);
	free(x.want);
	free(x.force);
	free(x.state);
	free(x.pid);
	free(x.t0);
	sb_release(&x.store);
	sb_release(&x.logdir);
	sv_release(&o.targets);
	sv_release(&o.force_steps);
	return rc;
}
