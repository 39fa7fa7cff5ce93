/* cashet pipeline run|graph|status: runs the steps of a dag.toml in
 * topological order through the exec engine (pipeline/step.c turns a step
 * into its request), so fingerprints, exactly-once claims, storing and
 * replaying are the engine's; this file schedules and reports. A step that
 * would only be replayed is replayed in this process; one that must run
 * goes to a forked worker that calls the engine and reports its verdict
 * through a pipe, so up to -j steps run at once and a no-op run starts no
 * process at all. A step for Slurm goes to a worker too, which hands it to
 * pipeline/executor-slurm.c: one worker per job in flight. */
#include "cli/cli.h"
#include "cli/report.h"
#include "exec/spawn.h"
#include "pipeline/dag.h"
#include "pipeline/executor-slurm.h"
#include "pipeline/runlog.h"
#include "pipeline/step.h"
#include "pipeline/witness.h"
#include "util/fsrec.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

enum state { S_WAIT, S_RUN, S_HIT, S_RAN, S_FAIL, S_SKIP, S_STOP };

/* The options of run, graph and status: each takes those its table lists. */
struct opts {
	const char *format;
	const char *executor;        /* --executor: "local" or "slurm", or NULL */
	const char *output, *metric; /* report: -o FILE, --metric NAME */
	struct strvec force_steps;
	int force_all, jobs, keep_going, dry_run, verbose;
	int report_fd; /* --report-fd N, plus one: 0 when not given */
};

/* What a worker tells the scheduler after each step. */
struct verdict {
	size_t step;
	int verdict; /* enum exec_verdict */
	int exit_code;
	char jobid[32]; /* the Slurm job that ran it, or "" */
	char why[240];  /* a failure told otherwise than by its exit code, or "" */
};

/* A worker process: it runs the steps the scheduler hands it, one at a
 * time, through the engine with one store handle and one batch for all of
 * them (store_batch_begin), so a step opens nothing and creates no file of
 * its own, and its run is published with the others of the batch. */
struct slot {
	pid_t pid; /* 0: no process */
	int sock;  /* the scheduler's end: step numbers and log fds out, verdicts in */
	long step; /* the step it runs, -1: idle */
};

struct ctx {
	struct dag *d;
	struct opts *o;
	struct strbuf store;  /* absolute store directory every worker opens */
	struct strbuf logdir; /* temporary: marks this run (the logs are in memory) */
	struct strbuf spool;  /* the Slurm jobs' hand-back directory, when a step goes to Slurm */
	struct strbuf self;   /* this cashet's path, which Slurm jobs run */
	struct store *st;     /* open for in-process hits and explanations, or NULL */
	unsigned char *want, *force;
	enum state *state;
	int *log;             /* 2 per step: its output and error logs while it runs (memfds), else -1 */
	int64_t *t0, *t1;     /* when each step started and ended */
	struct slot *slots;   /* o->jobs of them */
	struct slot *oneshot; /* o->jobs of them: a process per Slurm step, its verdict pipe in sock */
	/* the ready queue: successors, the predecessors each still waits
	 * for, and two heaps of order positions (steps to start; steps to
	 * report as skipped), so a pass never rescans every step */
	size_t **succ, *nsucc, *left, *pos;
	size_t *ready, nready, *doomed, ndoomed;
	unsigned char *queued;
	int tty;
	int color;        /* a terminal and no NO_COLOR */
	int lines;        /* how many lines the live display holds now (terminal only) */
	int64_t *prev_ms; /* each step's previous duration in the store, -1 unknown (terminal only) */
	size_t total, done, running, failed;
	int64_t start;
	/* The witness (pipeline/witness.h): the key and the index's generation
	 * when the run began, and what each step's verdict asked of the file
	 * system, recorded as it was replayed here (seen[i], if captured[i]). */
	struct witness_run {
		int on;
		struct digest key;
		struct strbuf abs_file, path, options;
		int64_t epoch, gen;
		struct strbuf *seen;
		unsigned char *captured;
		char (*run)[OID_HEX];
		int64_t *expires;
	} w;
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

static void close_logs(struct ctx *x, size_t i)
{
	for (int k = 0; k < 2; k++) {
		if (x->log[2 * i + k] >= 0)
			close(x->log[2 * i + k]);
		x->log[2 * i + k] = -1;
	}
}

/* Step i's request, its streams to fds out and err. */
static int request(const struct ctx *x, size_t i, unsigned flags, int out, int err, struct step_request *sr)
{
	return step_request_init(sr, x->d, &x->d->steps[i], environ, flags | (x->force[i] ? EXEC_FORCE : 0), out, err);
}

/* Step i's output and error logs, made by the scheduler (a worker inherits
 * them) in memory: two files created and deleted per step cost more than
 * a trivial step on a file system that scans its recently deleted inodes
 * to allocate one. Kept until the step's report (finish). */
static int open_logs(struct ctx *x, size_t i)
{
	for (int k = 0; k < 2; k++) {
		int fd = memfd_create(k ? "cashet-step.err" : "cashet-step.out", MFD_CLOEXEC);
		if (fd < 0) {
			close_logs(x, i);
			return err_sys("cannot create the log files of step %s", x->d->steps[i].name);
		}
		x->log[2 * i + k] = fd;
	}
	return 0;
}

/* The engine's notices go with the step's output: ctx is its err log. */
static void step_notice(void *ctx, const char *msg)
{
	dprintf(*(const int *)ctx, "cashet: %s\n", msg);
}

/* Where step i runs: its own executor key, else --executor, else the
 * file's [defaults], else here. */
static enum dag_executor executor_of(const struct ctx *x, size_t i)
{
	enum dag_executor e = x->d->steps[i].executor;
	if (e == DAG_EXEC_UNSET && x->o->executor)
		e = strcmp(x->o->executor, "slurm") ? DAG_EXEC_LOCAL : DAG_EXEC_SLURM;
	if (e == DAG_EXEC_UNSET)
		e = x->d->executor;
	return e == DAG_EXEC_SLURM ? DAG_EXEC_SLURM : DAG_EXEC_LOCAL;
}

static volatile sig_atomic_t slurm_stop;

static void on_slurm_stop(int sig)
{
	slurm_stop = sig;
}

/* The worker of a Slurm step: the executor looks the step up, claims,
 * submits, follows and imports; a TERM from the scheduler (or INT from
 * the terminal) cancels its job. Its failure report and the job's stderr
 * tail go to the step's err log, which the scheduler prints. */
static void slurm_worker(const struct ctx *x, size_t i, int vfd, int out, int err)
{
	struct slurm_exec_result res;
	struct verdict v = { i, EXEC_NOT_STORED, EXEC_EXIT_CASHET, "", "" };
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_slurm_stop; /* no SA_RESTART: the follower's naps end at once */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	struct slurm_exec_request req = { x->d,        i,   x->store.buf, x->spool.buf, x->self.buf,
					  x->force[i], out, err,          &slurm_stop };
	if (slurm_exec_step(&req, &res) < 0) {
		dprintf(err, "cashet: %s\n", err_msg());
	} else {
		v.verdict = res.verdict;
		v.exit_code = res.stopped ? 128 + (slurm_stop ? slurm_stop : SIGTERM) : res.exit_code;
		snprintf(v.jobid, sizeof(v.jobid), "%s", res.jobid);
		snprintf(v.why, sizeof(v.why), "%s", sb_str(&res.why));
		if (res.tail.len)
			dprintf(err, "%s\n", res.tail.buf);
	}
	slurm_exec_result_free(&res);
	if (write(vfd, &v, sizeof(v)) < 0) {
		/* the scheduler sees no verdict: a failure */
	}
	_exit(v.exit_code & 0xff);
}

/* Sends step i and its two log fds to a worker. */
static int send_step(int sock, size_t i, const int fds[2])
{
	char ctl[CMSG_SPACE(2 * sizeof(int))];
	struct iovec iov = { &i, sizeof(i) };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof(ctl) };
	memset(ctl, 0, sizeof(ctl));
	struct cmsghdr *c = CMSG_FIRSTHDR(&m);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(2 * sizeof(int));
	memcpy(CMSG_DATA(c), fds, 2 * sizeof(int));
	ssize_t n;
	while ((n = sendmsg(sock, &m, MSG_NOSIGNAL)) < 0 && errno == EINTR)
		;
	return n == (ssize_t)sizeof(i) ? 0 : err_sys("cannot hand a step to a worker");
}

/* Receives a step and its log fds: 1, 0 at the end (the scheduler closed
 * its end), -1 interrupted or failed. */
static int recv_step(int sock, size_t *i, int fds[2])
{
	char ctl[CMSG_SPACE(2 * sizeof(int))];
	struct iovec iov = { i, sizeof(*i) };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof(ctl) };
	ssize_t n = recvmsg(sock, &m, MSG_CMSG_CLOEXEC);
	if (n == 0)
		return 0;
	struct cmsghdr *c = CMSG_FIRSTHDR(&m);
	if (n != (ssize_t)sizeof(*i) || !c || c->cmsg_type != SCM_RIGHTS || c->cmsg_len != CMSG_LEN(2 * sizeof(int)))
		return -1;
	memcpy(fds, CMSG_DATA(c), 2 * sizeof(int));
	return 1;
}

/* Runs step i in a worker, its streams to the step's logs, on the
 * worker's store st; without one (it could not be opened: unopened says
 * why), its command runs uncached, as exec runs a command then, with the
 * warning in its stderr. */
static struct verdict worker_step(const struct ctx *x, struct store *st, const char *unopened, size_t i, int out,
				  int err)
{
	struct step_request sr;
	struct exec_result res;
	struct verdict v = { i, EXEC_NOT_STORED, EXEC_EXIT_CASHET, "", "" };
	memset(&res, 0, sizeof(res));
	/* whatever a library says goes with the step's output too */
	dup2(err, STDERR_FILENO);
	int r = request(x, i, 0, out, err, &sr);
	sr.req.on_notice = step_notice;
	sr.req.ctx = &err;
	if (r == 0 && !st)
		dprintf(err, "cashet: " EXEC_UNCACHED_WARNING "\n", unopened);
	if (r < 0 || (st ? exec_run(st, &sr.req, &res) : exec_run_unstored(&sr.req, &res)) < 0) {
		dprintf(err, "cashet: %s\n", err_msg());
	} else {
		if (res.note && res.verdict != EXEC_HIT)
			dprintf(err, "cashet: %s\n", res.note);
		v.verdict = res.verdict;
		v.exit_code = res.exit_code;
	}
	exec_result_free(&res);
	step_request_release(&sr);
	err_clear();
	return v;
}

static int slurm_prepare(struct ctx *x);

/* When a worker publishes its batch: when it waited this long for its next
 * step, when it holds this many runs, when the oldest is this old, or
 * after a step this long (batching pays for small steps only, and a kill
 * loses what is not published). */
enum { IDLE_FLUSH_MS = 20, BATCH_MAX = 64, BATCH_AGE_MS = 1000, SLOW_STEP_MS = 1000 };

/* A worker's batch published; then, as each batch is a pack, auto-pack
 * (merging past 50 packs), waiting for the other workers' batches: they
 * hold the store's shared lock most of the time, so one that never waited
 * would never pack. */
static void publish(struct store *st, int report_fd)
{
	int packed;
	if (store_batch_flush(st) < 0)
		dprintf(report_fd, "cashet: warning: runs not stored: %s\n", err_msg());
	store_autopack(st, 1, &packed);
	err_clear();
}

/* The worker process: steps in, verdicts out, until the scheduler closes
 * its end (or a signal stops it); then the batch is published. A worker
 * whose scheduler died publishes nothing: its SQLite state came from the
 * scheduler, whose locks died with it (see start_worker). */
static void worker_main(const struct ctx *x, int sock, pid_t parent, int report_fd)
{
	struct store *st = NULL;
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGHUP, SIG_DFL);
	setvbuf(stderr, NULL, _IONBF, 0); /* the scheduler's buffer is not this process's */
	spawn_signals_init();
	char *unopened = NULL;
	if (store_open(x->store.buf, 0, &st, NULL) < 0) {
		st = NULL; /* each step says why */
		unopened = xstrdup(err_msg());
		err_clear();
	}
	/* a run sent to a remote must be in the store: no batch then */
	struct strbuf v = STRBUF_INIT;
	if (st && !(getenv("CASHET_REMOTE") && *getenv("CASHET_REMOTE")) && !store_setting_user(st, "remote", &v))
		store_batch_begin(st);
	sb_release(&v);
	int64_t oldest = 0; /* when the batch's first run started */
	while (!spawn_pending_signal()) {
		struct pollfd pf = { sock, POLLIN, 0 };
		int pr = poll(&pf, 1, st && store_batch_runs(st) ? IDLE_FLUSH_MS : -1);
		if (pr == 0)
			publish(st, report_fd);
		if (pr <= 0)
			continue;
		size_t i;
		int fds[2];
		if (recv_step(sock, &i, fds) <= 0)
			break;
		int64_t t0 = now_ms();
		if (st && !store_batch_runs(st))
			oldest = t0;
		struct verdict vd = worker_step(x, st, unopened, i, fds[0], fds[1]);
		close(fds[0]);
		close(fds[1]);
		if (write_all(sock, &vd, sizeof(vd)) < 0)
			break;
		int64_t t1 = now_ms();
		if (st && store_batch_runs(st) &&
		    (store_batch_runs(st) >= BATCH_MAX || t1 - t0 >= SLOW_STEP_MS || t1 - oldest >= BATCH_AGE_MS))
			publish(st, report_fd);
	}
	if (st && getppid() == parent && store_batch_flush(st) < 0)
		dprintf(report_fd, "cashet: warning: runs not stored: %s\n", err_msg());
	if (getppid() != parent)
		store_batch_abort(st);
	store_close(st);
	free(unopened);
	_exit(0);
}

/* Starts the worker of slot k. Returns 0, or -1. */
static int start_worker(struct ctx *x, size_t k)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return err_sys("socketpair");
	fflush(NULL);
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid == 0) {
		close(sv[0]);
		/* only its own end: another worker holding the scheduler's end
		 * of this one would keep it from seeing the end */
		for (int j = 0; j < x->o->jobs; j++)
			if (x->slots[j].pid > 0)
				close(x->slots[j].sock);
		for (size_t i = 0; i < 2 * x->d->n; i++)
			if (x->log[i] >= 0)
				close(x->log[i]);
		/* A worker outlives no scheduler: the SQLite state it inherited
		 * shares the scheduler's file locks, which die with it, and the
		 * next process to open the index would then reset the WAL index
		 * under the worker's feet (SIGBUS). Stopping as if interrupted
		 * stores nothing, as a Ctrl-C would. */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() != parent)
			raise(SIGTERM);
		worker_main(x, sv[1], parent, dup(STDERR_FILENO));
	}
	close(sv[1]);
	if (pid < 0) {
		close(sv[0]);
		return err_sys("cannot fork");
	}
	x->slots[k] = (struct slot){ pid, sv[0], -1 };
	return 0;
}

/* A Slurm step goes to a process of its own, as it waits on Slurm, not on
 * a command, and stores through an import: main's worker, one per step. */
static int dispatch_slurm(struct ctx *x, size_t i)
{
	int k = -1, p[2];
	for (int j = 0; j < x->o->jobs && k < 0; j++)
		if (!x->oneshot[j].pid)
			k = j;
	/* only when a step is submitted: a no-op run touches nothing more */
	if (k < 0 || (!x->spool.len && slurm_prepare(x) < 0) || open_logs(x, i) < 0)
		return -1;
	if (pipe2(p, O_CLOEXEC) < 0) {
		close_logs(x, i);
		return err_sys("pipe");
	}
	fflush(NULL);
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid == 0) {
		close(p[0]);
		for (int j = 0; j < x->o->jobs; j++) {
			if (x->slots[j].pid > 0)
				close(x->slots[j].sock);
			if (x->oneshot[j].pid > 0)
				close(x->oneshot[j].sock);
		}
		prctl(PR_SET_PDEATHSIG, SIGTERM); /* as start_worker's */
		if (getppid() != parent)
			raise(SIGTERM);
		setvbuf(stderr, NULL, _IONBF, 0);
		dup2(x->log[2 * i + 1], STDERR_FILENO);
		slurm_worker(x, i, p[1], x->log[2 * i], x->log[2 * i + 1]);
	}
	close(p[1]);
	if (pid < 0) {
		close(p[0]);
		close_logs(x, i);
		return err_sys("cannot fork");
	}
	x->oneshot[k] = (struct slot){ pid, p[0], (long)i };
	return 0;
}

/* Hands step i to an idle worker, starting one if none is. */
static int dispatch(struct ctx *x, size_t i)
{
	int k = -1;
	if (executor_of(x, i) == DAG_EXEC_SLURM)
		return dispatch_slurm(x, i);
	for (int j = 0; j < x->o->jobs && k < 0; j++)
		if (x->slots[j].pid > 0 && x->slots[j].step < 0)
			k = j;
	for (int j = 0; j < x->o->jobs && k < 0; j++)
		if (!x->slots[j].pid && start_worker(x, (size_t)j) == 0)
			k = j;
	if (k < 0 || open_logs(x, i) < 0)
		return -1;
	if (send_step(x->slots[k].sock, i, &x->log[2 * i]) < 0) {
		/* it died idle: another one takes the step */
		int status;
		close(x->slots[k].sock);
		while (waitpid(x->slots[k].pid, &status, 0) < 0 && errno == EINTR)
			;
		x->slots[k].pid = 0;
		if (start_worker(x, (size_t)k) < 0 || send_step(x->slots[k].sock, i, &x->log[2 * i]) < 0) {
			close_logs(x, i);
			return -1;
		}
	}
	x->slots[k].step = (long)i;
	return 0;
}

/* What a witness keeps of step i's hit. */
static void note_run(struct ctx *x, size_t i, const struct exec_result *res)
{
	memcpy(x->w.run[i], res->run, OID_HEX);
	x->w.expires[i] = res->expires_ms;
}

/* The no-op fast path: when all step i's run would do is replay, replays
 * it in this process, its streams to the step's logs when they will be
 * shown (-v). Returns 1 replayed, 0 to start a worker (a miss, or anything
 * unusual: the worker meets it again and says what it is). */
static int replay_in_process(struct ctx *x, size_t i)
{
	struct step_request sr;
	struct exec_result res;
	int rc = 0;
	if (!x->st || x->force[i] || !x->d->steps[i].cache)
		return 0;
	if (x->o->verbose && open_logs(x, i) < 0)
		goto out;
	if (x->w.on)
		fsrec_begin(&x->w.seen[i]);
	if (request(x, i, EXEC_LOOKUP_ONLY, x->log[2 * i], x->log[2 * i + 1], &sr) == 0 &&
	    exec_run(x->st, &sr.req, &res) == 0) {
		/* only ok runs: the step would succeed */
		rc = res.verdict == EXEC_HIT && res.exit_code == 0;
		if (rc && x->w.on)
			note_run(x, i, &res);
		exec_result_free(&res);
	}
	if (x->w.on)
		x->w.captured[i] = fsrec_end() && rc;
	step_request_release(&sr);
out:
	err_clear();
	if (!rc) /* a worker gets fresh ones */
		close_logs(x, i);
	return rc;
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
		if (!x->want[i] || x->prev_ms[i] < 0 || (x->state[i] != S_RUN && x->state[i] != S_WAIT))
			continue;
		known = 1;
		if (x->state[i] == S_RUN) {
			int64_t left = x->prev_ms[i] - (now - x->t0[i]);
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
	if (!x->tty)
		return;
	if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0)
		width = ws.ws_col;
	clear_status(x);
	fmt_duration(now - x->start, a, sizeof(a));
	sb_addf(&head, "[%zu/%zu]", x->done, x->total);
	sb_addf(&tail, " %zu done, %zu running, %zu queued, %s", x->done, x->running, x->total - x->done - x->running,
		a);
	if ((eta = eta_ms(x, now)) >= 0) {
		fmt_duration(eta, b, sizeof(b));
		sb_addf(&tail, ", ETA %s", b);
	}
	add_line(x, &sb, 1, head.buf, tail.buf, width);
	x->lines = 1;
	for (size_t i = 0; i < x->d->n; i++) {
		if (x->state[i] != S_RUN)
			continue;
		if (shown++ == 8) {
			add_line(x, &sb, 0, "  ...", "", width);
			x->lines++;
			break;
		}
		sb_reset(&head);
		sb_reset(&tail);
		fmt_duration(now - x->t0[i], a, sizeof(a));
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

/* The step's stdout, then its stderr, each line indented under its name. */
static void print_output(const struct ctx *x, size_t i)
{
	struct strbuf sb = STRBUF_INIT;
	for (int k = 0; k < 2; k++) {
		int fd = x->log[2 * i + k];
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

/* A step's end: status as waitpid gives it (the worker's verdict, or how
 * it died), hit whether it was replayed. */
static void finish(struct ctx *x, size_t i, int status, int stopping, int hit, const struct verdict *v)
{
	char dur[32];
	int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	x->t1[i] = now_ms();
	snprintf(dur, sizeof(dur), "%.2fs", (double)(x->t1[i] - x->t0[i]) / 1000);
	x->running--;
	x->done++;
	if (code == 0) {
		x->state[i] = hit ? S_HIT : S_RAN;
		report(x, x->d->steps[i].name, x->state[i] == S_HIT ? 32 : 34, x->state[i] == S_HIT ? "hit" : "ran",
		       "(%s%s%s)", dur, v && v->jobid[0] ? ", Slurm job " : "", v ? v->jobid : "");
		if (x->o->verbose)
			print_output(x, i);
	} else if (stopping) {
		x->state[i] = S_STOP;
		report(x, x->d->steps[i].name, 33, "stopped", "(%s)", dur);
	} else {
		x->state[i] = S_FAIL;
		x->failed++;
		if (v && v->why[0])
			report(x, x->d->steps[i].name, 31, "FAILED", "(%s)", v->why);
		else if (WIFEXITED(status))
			report(x, x->d->steps[i].name, 31, "FAILED", "(exit %d)", code);
		else
			report(x, x->d->steps[i].name, 31, "FAILED", "(signal %d)", WTERMSIG(status));
		print_output(x, i);
	}
	close_logs(x, i);
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

/* A min-heap of steps by their position in the order: steps are started
 * (and skips reported) in the order a pass over every step would take. */
static void heap_push(const struct ctx *x, size_t *h, size_t *n, size_t v)
{
	size_t i = (*n)++;
	while (i && x->pos[h[(i - 1) / 2]] > x->pos[v]) {
		h[i] = h[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	h[i] = v;
}

static size_t heap_pop(const struct ctx *x, size_t *h, size_t *n)
{
	size_t top = h[0], v = h[--*n], i = 0;
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= *n)
			break;
		if (c + 1 < *n && x->pos[h[c + 1]] < x->pos[h[c]])
			c++;
		if (x->pos[h[c]] >= x->pos[v])
			break;
		h[i] = h[c];
		i = c;
	}
	if (*n)
		h[i] = v;
	return top;
}

/* After step i ended: what waited for it is ready once all it needs is
 * done, or to be skipped as soon as one of them failed or did not run. */
static void settle(struct ctx *x, size_t i)
{
	int ok = x->state[i] == S_HIT || x->state[i] == S_RAN;
	for (size_t e = 0; e < x->nsucc[i]; e++) {
		size_t j = x->succ[i][e];
		if (!x->want[j] || x->state[j] != S_WAIT || x->queued[j] == 2)
			continue;
		if (!ok) {
			x->queued[j] = 2;
			heap_push(x, x->doomed, &x->ndoomed, j);
		} else if (!--x->left[j]) {
			x->queued[j] = 1;
			heap_push(x, x->ready, &x->nready, j);
		}
	}
}

/* The successors of every step and the ready queue's first steps. */
static void queue_init(struct ctx *x)
{
	size_t n = x->d->n;
	x->nsucc = xcalloc(n ? n : 1, sizeof(*x->nsucc));
	x->left = xcalloc(n ? n : 1, sizeof(*x->left));
	x->pos = xcalloc(n ? n : 1, sizeof(*x->pos));
	x->succ = xcalloc(n ? n : 1, sizeof(*x->succ));
	x->ready = xmalloc((n ? n : 1) * sizeof(*x->ready));
	x->doomed = xmalloc((n ? n : 1) * sizeof(*x->doomed));
	x->queued = xcalloc(n ? n : 1, 1);
	for (size_t k = 0; k < n; k++)
		x->pos[x->d->order[k]] = k;
	for (size_t i = 0; i < n; i++)
		for (size_t p = 0; p < x->d->steps[i].npreds; p++)
			x->nsucc[x->d->steps[i].preds[p]]++;
	size_t *fill = xcalloc(n ? n : 1, sizeof(*fill));
	for (size_t i = 0; i < n; i++)
		x->succ[i] = xmalloc((x->nsucc[i] ? x->nsucc[i] : 1) * sizeof(**x->succ));
	for (size_t i = 0; i < n; i++) {
		x->left[i] = x->d->steps[i].npreds;
		for (size_t p = 0; p < x->d->steps[i].npreds; p++) {
			size_t j = x->d->steps[i].preds[p];
			x->succ[j][fill[j]++] = i;
		}
		if (x->want[i] && !x->left[i]) {
			x->queued[i] = 1;
			heap_push(x, x->ready, &x->nready, i);
		}
	}
	free(fill);
}

static void queue_free(struct ctx *x)
{
	for (size_t i = 0; x->succ && i < x->d->n; i++)
		free(x->succ[i]);
	free(x->succ);
	free(x->nsucc);
	free(x->left);
	free(x->pos);
	free(x->ready);
	free(x->doomed);
	free(x->queued);
}

static void stop_workers(struct ctx *x)
{
	for (int k = 0; k < x->o->jobs; k++) {
		if (x->slots[k].pid > 0 && x->slots[k].step >= 0)
			kill(x->slots[k].pid, SIGTERM);
		if (x->oneshot[k].pid > 0)
			kill(x->oneshot[k].pid, SIGTERM); /* cancels its job */
	}
}

/* Waits for the next verdict (or a worker's death) and ends that step.
 * Returns 0, or -1 when there is nothing to wait for. */
static int wait_step(struct ctx *x, int stopping)
{
	struct pollfd *pf = xcalloc(2 * (size_t)x->o->jobs, sizeof(*pf));
	int np = 0, rc = 0;
	for (int k = 0; k < x->o->jobs; k++) {
		if (x->slots[k].pid > 0 && x->slots[k].step >= 0)
			pf[np++] = (struct pollfd){ x->slots[k].sock, POLLIN, 0 };
		if (x->oneshot[k].pid > 0)
			pf[np++] = (struct pollfd){ x->oneshot[k].sock, POLLIN, 0 };
	}
	/* what was reported is shown before waiting (see run_all) */
	fflush(stderr);
	int pr = np ? poll(pf, (nfds_t)np, x->tty ? 100 : -1) : -1;
	if (pr == 0)
		draw_status(x);
	for (int k = 0; pr > 0 && k < x->o->jobs; k++) {
		struct slot *sl = &x->slots[k];
		int ready = 0;
		for (int q = 0; q < np; q++)
			ready |= pf[q].fd == sl->sock && pf[q].revents;
		if (sl->pid <= 0 || sl->step < 0 || !ready)
			continue;
		size_t i = (size_t)sl->step;
		struct verdict v;
		ssize_t got = read(sl->sock, &v, sizeof(v));
		if (got < 0 && errno == EINTR)
			continue;
		sl->step = -1;
		if (got == (ssize_t)sizeof(v) && v.step == i) {
			finish(x, i, (v.exit_code & 0xff) << 8, stopping,
			       v.verdict == EXEC_HIT || v.verdict == EXEC_WAITED, &v);
		} else {
			/* it died: the step ends as the worker did (no verdict: a failure) */
			int status = 0;
			close(sl->sock);
			while (waitpid(sl->pid, &status, 0) < 0 && errno == EINTR)
				;
			sl->pid = 0;
			finish(x, i, WIFEXITED(status) && !WEXITSTATUS(status) ? 1 << 8 : status, stopping, 0, NULL);
		}
		/* the command may have written anything */
		stat_memo_clear();
		settle(x, i);
	}
	for (int k = 0; pr > 0 && k < x->o->jobs; k++) {
		/* a Slurm step's process: its verdict, then its exit */
		struct slot *sl = &x->oneshot[k];
		int ready = 0;
		for (int q = 0; q < np; q++)
			ready |= pf[q].fd == sl->sock && pf[q].revents;
		if (sl->pid <= 0 || !ready)
			continue;
		size_t i = (size_t)sl->step;
		struct verdict v;
		int status = 0;
		int got = read(sl->sock, &v, sizeof(v)) == (ssize_t)sizeof(v) && v.step == i;
		close(sl->sock);
		while (waitpid(sl->pid, &status, 0) < 0 && errno == EINTR)
			;
		sl->pid = 0;
		if (got)
			v.jobid[sizeof(v.jobid) - 1] = v.why[sizeof(v.why) - 1] = 0;
		finish(x, i, status, stopping, got && (v.verdict == EXEC_HIT || v.verdict == EXEC_WAITED),
		       got ? &v : NULL);
		stat_memo_clear();
		settle(x, i);
	}
	if (np == 0)
		rc = -1;
	free(pf);
	return rc;
}

/* Ends the workers: each publishes its batch once its end is closed. */
static void end_workers(struct ctx *x)
{
	for (int k = 0; k < x->o->jobs; k++)
		if (x->slots[k].pid > 0)
			close(x->slots[k].sock);
	for (int k = 0; k < x->o->jobs; k++) {
		int status;
		while (x->slots[k].pid > 0 && waitpid(x->slots[k].pid, &status, 0) < 0 && errno == EINTR)
			;
		x->slots[k].pid = 0;
	}
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
		[S_WAIT] = NULL,     [S_RUN] = NULL,       [S_HIT] = "hit",     [S_RAN] = "ran",
		[S_FAIL] = "failed", [S_SKIP] = "skipped", [S_STOP] = "stopped"
	};
	struct runlog l = { .start_ms = x->start, .end_ms = now_ms() };
	for (size_t k = 0; k < x->d->n; k++) {
		size_t i = x->d->order[k];
		if (x->want[i] && names[x->state[i]])
			runlog_add(&l, x->d->steps[i].name, names[x->state[i]], x->t0[i], x->t1[i]);
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

/* Asks what step i's verdict asks, recorded: a step that ran (in a worker,
 * on Slurm) or whose recording came before a run was stored. 1 it is a
 * hit that a witness can vouch for, 0 not. */
static int capture(struct ctx *x, size_t i)
{
	struct step_request sr;
	struct exec_result res;
	int ok = 0;
	memset(&res, 0, sizeof(res));
	sb_reset(&x->w.seen[i]);
	fsrec_begin(&x->w.seen[i]);
	if (step_request_init(&sr, x->d, &x->d->steps[i], environ, EXEC_LOOKUP_ONLY, -1, -1) == 0 &&
	    exec_run(x->st, &sr.req, &res) == 0 && res.verdict == EXEC_HIT && res.exit_code == 0) {
		note_run(x, i, &res);
		ok = 1;
	}
	ok &= fsrec_end();
	exec_result_free(&res);
	step_request_release(&sr);
	err_clear();
	return ok;
}

/* Writes the witness of a run whose every step hit or ran: what each
 * verdict asked, and the index's generation. When runs were stored since
 * the run began, what was recorded before may no longer be what a lookup
 * answers: every step is asked again. Nothing may change the index while
 * the questions are asked (another process storing a run): no witness. */
static void witness_save(struct ctx *x)
{
	struct witness_builder b = { 0 };
	struct digest key;
	int64_t epoch, gen, gen2;
	stat_memo_clear(); /* the steps wrote: nothing seen before holds */
	if (store_generation(x->st, &epoch, &gen) < 0 || epoch != x->w.epoch)
		b.broken = 1;
	for (size_t k = 0; k < x->d->n && !b.broken; k++) {
		size_t i = x->d->order[k];
		const struct dag_step *s = &x->d->steps[i];
		if (!x->want[i])
			continue;
		if (!s->cache || ((gen != x->w.gen || !x->w.captured[i]) && !capture(x, i)))
			b.broken = 1;
		else
			witness_add(&b, s->name, x->w.run[i], x->w.expires[i], x->w.seen[i].buf ? x->w.seen[i].buf : "",
				    x->w.seen[i].len);
	}
	/* the file, the environment, the store's config: as when the run began */
	if (store_generation(x->st, &epoch, &gen2) < 0 || gen2 != gen ||
	    witness_key(x->w.abs_file.buf, x->store.buf, x->w.options.buf, &key) < 0 || !digest_eq(&key, &x->w.key))
		b.broken = 1;
	if (witness_write(x->w.path.buf, &b, &x->w.key, epoch, gen) < 0)
		err_clear();
	witness_builder_free(&b);
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
	size_t n = x->d->n, failed = 0, hits = 0, ran = 0;
	int stopping = 0, rc = 0;
	x->start = now_ms();
	for (size_t i = 0; i < n; i++)
		x->total += x->want[i];
	x->slots = xcalloc((size_t)x->o->jobs, sizeof(*x->slots));
	x->oneshot = xcalloc((size_t)x->o->jobs, sizeof(*x->oneshot));
	queue_init(x);
	buffer_stderr(x);
	/* the files outside the project are judged as one snapshot */
	if (x->st)
		stat_memo_enable(store_root(x->st));
	x->prev_ms = xcalloc(n, sizeof(*x->prev_ms));
	if (x->tty)
		load_prev_durations(x);
	draw_status(x);
	for (;;) {
		if (got_signal && !stopping) {
			stopping = 1;
			stop_workers(x);
		}
		/* got_signal too: a pass of in-process replays starts no child to interrupt */
		while (!stopping && !got_signal) {
			size_t i, up = 0;
			if (x->ndoomed) {
				i = heap_pop(x, x->doomed, &x->ndoomed);
				ready(x, i, &up);
				x->state[i] = S_SKIP;
				x->t0[i] = x->t1[i] = now_ms();
				x->done++;
				report(x, x->d->steps[i].name, 33, "skipped", "(upstream step %s %s)",
				       x->d->steps[up].name, x->state[up] == S_FAIL ? "failed" : "did not run");
				draw_status(x);
				settle(x, i);
				continue;
			}
			if (!x->nready || x->running >= (size_t)x->o->jobs)
				break;
			i = heap_pop(x, x->ready, &x->nready);
			x->t0[i] = now_ms();
			if (replay_in_process(x, i)) {
				x->running++;
				finish(x, i, 0, 0, 1, NULL);
				settle(x, i);
				continue;
			}
			if (got_signal) {
				heap_push(x, x->ready, &x->nready, i);
				break; /* it may have cut the replay short: nothing more starts */
			}
			if (dispatch(x, i) < 0) {
				heap_push(x, x->ready, &x->nready, i);
				rc = cli_fail(1);
				stopping = 1;
				stop_workers(x);
				break;
			}
			x->state[i] = S_RUN;
			x->running++;
			draw_status(x);
		}
		if (!x->running)
			break;
		size_t before = x->failed;
		if (wait_step(x, stopping) < 0)
			break;
		/* fail fast: a worker forwards TERM to its command and stores nothing */
		if (x->failed > before && !x->o->keep_going && !stopping) {
			stopping = 1;
			stop_workers(x);
		}
	}
	end_workers(x);
	clear_status(x);
	for (size_t i = 0; i < n; i++) {
		failed += x->state[i] == S_FAIL;
		hits += x->state[i] == S_HIT;
		ran += x->state[i] == S_RAN;
	}
	if (x->w.on && !got_signal && !stopping && !failed && ran + hits == x->total)
		witness_save(x);
	else if (x->w.on)
		unlink(x->w.path.buf); /* it no longer says what the steps are */
	stat_memo_enable(NULL);
	queue_free(x);
	free(x->slots);
	free(x->oneshot);
	save_runlog(x);
	summary(x, ran, hits, failed, x->total - ran - hits - failed);
	fflush(stderr);
	setvbuf(stderr, NULL, _IONBF, 0);
	if (got_signal)
		return 128 + got_signal;
	return rc || failed || stopping ? 1 : 0;
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
		if (will[i] && executor_of(x, i) == DAG_EXEC_SLURM)
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

/* Before the first Slurm job: the spool jobs hand their runs back
 * through, and the path of the cashet they run (the one running now: on a
 * cluster it is on the shared filesystem with the project). */
static int slurm_prepare(struct ctx *x)
{
	char *self = realpath("/proc/self/exe", NULL);
	if (!self)
		return err_sys("cannot find this program's path for the Slurm jobs");
	sb_adds(&x->self, self);
	free(self);
	return slurm_spool_create(x->store.buf, &x->spool);
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
	x->total = x->witnessed = names->n;
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
	x.state = xcalloc(x.d->n, sizeof(*x.state));
	x.log = xmalloc(2 * x.d->n * sizeof(*x.log));
	for (size_t i = 0; i < 2 * x.d->n; i++)
		x.log[i] = -1;
	x.t0 = xcalloc(x.d->n, sizeof(*x.t0));
	x.t1 = xcalloc(x.d->n, sizeof(*x.t1));
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
	x.w.on &= x.st != NULL;
	if (x.w.on) {
		x.w.seen = xcalloc(x.d->n, sizeof(*x.w.seen));
		x.w.captured = xcalloc(x.d->n, 1);
		x.w.run = xcalloc(x.d->n, sizeof(*x.w.run));
		x.w.expires = xcalloc(x.d->n, sizeof(*x.w.expires));
	}
	/* status and dry runs write nothing: the system's files are one
	 * snapshot for them (run_all keeps it while nothing runs) */
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
	for (size_t i = 0; x.log && i < 2 * x.d->n; i++)
		if (x.log[i] >= 0)
			close(x.log[i]);
	if (x.d)
		remove_logs(&x);
	if (x.spool.len)
		rm_rf(x.spool.buf);
	sb_release(&x.spool);
	sb_release(&x.self);
	for (size_t i = 0; x.w.seen && i < x.d->n; i++)
		sb_release(&x.w.seen[i]);
	dag_free(x.d);
	free(x.want);
	free(x.force);
	free(x.state);
	free(x.log);
	free(x.t0);
	free(x.t1);
	free(x.prev_ms);
	free(x.w.seen);
	free(x.w.captured);
	free(x.w.run);
	free(x.w.expires);
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
