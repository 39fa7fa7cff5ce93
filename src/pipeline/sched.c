/* sched: a dag's steps in dependency order, through the engine, in this
 * process (replays) or in forked workers (runs), up to `jobs` at once; see
 * sched.h. The one idea: a worker keeps one store handle and one batch for
 * all its steps, so a step opens nothing and creates no file of its own,
 * and the scheduler itself never waits on anything but its workers. */
#include "pipeline/sched.h"
#include "exec/spawn.h"
#include "pipeline/executor-slurm.h"
#include "pipeline/step.h"
#include "pipeline/witness.h"
#include "util/fsrec.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

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
struct sched_slot {
	pid_t pid; /* 0: no process */
	int sock;  /* the scheduler's end: step numbers and log fds out, verdicts in */
	long step; /* the step it runs, -1: idle */
};

static void close_logs(struct sched *x, size_t i)
{
	for (int k = 0; k < 2; k++) {
		if (x->log[2 * i + k] >= 0)
			close(x->log[2 * i + k]);
		x->log[2 * i + k] = -1;
	}
}

/* Step i's request, its streams to fds out and err. */
static int request(const struct sched *x, size_t i, unsigned flags, int out, int err, struct step_request *sr)
{
	return step_request_init(sr, x->d, &x->d->steps[i], environ, flags | (x->force[i] ? EXEC_FORCE : 0), out, err);
}

/* Step i's output and error logs, made by the scheduler (a worker inherits
 * them) in memory: two files created and deleted per step cost more than
 * a trivial step on a file system that scans its recently deleted inodes
 * to allocate one. Kept until the step's report (finish). */
static int open_logs(struct sched *x, size_t i)
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

enum dag_executor sched_executor(const struct dag *d, size_t i, const char *executor)
{
	enum dag_executor e = d->steps[i].executor;
	if (e == DAG_EXEC_UNSET && executor)
		e = strcmp(executor, "slurm") ? DAG_EXEC_LOCAL : DAG_EXEC_SLURM;
	if (e == DAG_EXEC_UNSET)
		e = d->executor;
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
static void slurm_worker(const struct sched *x, size_t i, int vfd, int out, int err)
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
	struct slurm_exec_request req = { x->d,        i,   x->store, x->spool.buf, x->self.buf,
					  x->force[i], out, err,      &slurm_stop };
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
static struct verdict worker_step(const struct sched *x, struct store *st, const char *unopened, size_t i, int out,
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
static void worker_main(const struct sched *x, int sock, pid_t parent, int report_fd)
{
	struct store *st = NULL;
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGHUP, SIG_DFL);
	setvbuf(stderr, NULL, _IONBF, 0); /* the scheduler's buffer is not this process's */
	spawn_signals_init();
	char *unopened = NULL;
	if (store_open(x->store, 0, &st, NULL) < 0) {
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
static int start_worker(struct sched *x, size_t k)
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
		for (int j = 0; j < x->jobs; j++)
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
	x->slots[k] = (struct sched_slot){ pid, sv[0], -1 };
	return 0;
}

/* Before the first Slurm job: the spool jobs hand their runs back
 * through, and the path of the cashet they run (the one running now: on a
 * cluster it is on the shared filesystem with the project). */
static int slurm_prepare(struct sched *x)
{
	char *self = realpath("/proc/self/exe", NULL);
	if (!self)
		return err_sys("cannot find this program's path for the Slurm jobs");
	sb_adds(&x->self, self);
	free(self);
	return slurm_spool_create(x->store, &x->spool);
}

/* A Slurm step goes to a process of its own, as it waits on Slurm, not on
 * a command, and stores through an import: main's worker, one per step. */
static int dispatch_slurm(struct sched *x, size_t i)
{
	int k = -1, p[2];
	for (int j = 0; j < x->jobs && k < 0; j++)
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
		for (int j = 0; j < x->jobs; j++) {
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
	x->oneshot[k] = (struct sched_slot){ pid, p[0], (long)i };
	return 0;
}

/* Hands step i to an idle worker, starting one if none is. */
static int dispatch(struct sched *x, size_t i)
{
	int k = -1;
	if (sched_executor(x->d, i, x->executor) == DAG_EXEC_SLURM)
		return dispatch_slurm(x, i);
	for (int j = 0; j < x->jobs && k < 0; j++)
		if (x->slots[j].pid > 0 && x->slots[j].step < 0)
			k = j;
	for (int j = 0; j < x->jobs && k < 0; j++)
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
static void note_run(struct sched *x, size_t i, const struct exec_result *res)
{
	memcpy(x->w.run[i], res->run, OID_HEX);
	x->w.expires[i] = res->expires_ms;
}

/* The no-op fast path: when all step i's run would do is replay, replays
 * it in this process, its streams to the step's logs when they will be
 * shown (-v). Returns 1 replayed, 0 to start a worker (a miss, or anything
 * unusual: the worker meets it again and says what it is). */
static int replay_in_process(struct sched *x, size_t i)
{
	struct step_request sr;
	struct exec_result res;
	int rc = 0;
	if (!x->st || x->force[i] || !x->d->steps[i].cache)
		return 0;
	if (x->keep_logs && open_logs(x, i) < 0)
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

/* A step's end: status as waitpid gives it (the worker's verdict, or how
 * it died), hit whether it was replayed; the front end is told, its logs
 * still open. */
static void finish(struct sched *x, size_t i, int status, int stopping, int hit, const struct verdict *v)
{
	int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	x->t1[i] = now_ms();
	x->running--;
	x->done++;
	if (code == 0) {
		x->state[i] = hit ? SCHED_HIT : SCHED_RAN;
	} else if (stopping) {
		x->state[i] = SCHED_STOP;
	} else {
		x->state[i] = SCHED_FAIL;
		x->failed++;
	}
	struct sched_end e = {
		i, x->state[i], status, v ? v->jobid : "", v ? v->why : "", x->log[2 * i], x->log[2 * i + 1]
	};
	if (x->ev.ended)
		x->ev.ended(x->ev.ctx, &e);
	close_logs(x, i);
}

/* A step is ready when everything it needs is done; it will never run if
 * something it needs failed, was stopped or skipped (returned as *why). */
static int ready(const struct sched *x, size_t i, size_t *why)
{
	const struct dag_step *s = &x->d->steps[i];
	int ok = 1;
	for (size_t p = 0; p < s->npreds; p++) {
		enum sched_state st = x->state[s->preds[p]];
		if (st == SCHED_FAIL || st == SCHED_SKIP || st == SCHED_STOP) {
			*why = s->preds[p];
			return -1;
		}
		if (st != SCHED_HIT && st != SCHED_RAN)
			ok = 0;
	}
	return ok;
}

/* After step i ended: what waited for it is ready once all it needs is
 * done, or to be skipped as soon as one of them failed or did not run. */
static void settle(struct sched *x, size_t i)
{
	int ok = x->state[i] == SCHED_HIT || x->state[i] == SCHED_RAN;
	for (size_t e = 0; e < x->nsucc[i]; e++) {
		size_t j = x->succ[i][e];
		if (!x->want[j] || x->state[j] != SCHED_WAIT || x->queued[j] == 2)
			continue;
		if (!ok) {
			x->queued[j] = 2;
			dag_heap_push(x->doomed, &x->ndoomed, j, x->pos);
		} else if (!--x->left[j]) {
			x->queued[j] = 1;
			dag_heap_push(x->ready, &x->nready, j, x->pos);
		}
	}
}

/* The successors of every step and the ready queue's first steps. */
static void queue_init(struct sched *x)
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
			dag_heap_push(x->ready, &x->nready, i, x->pos);
		}
	}
	free(fill);
}

static void queue_free(struct sched *x)
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

static void stop_workers(struct sched *x)
{
	for (int k = 0; k < x->jobs; k++) {
		if (x->slots[k].pid > 0 && x->slots[k].step >= 0)
			kill(x->slots[k].pid, SIGTERM);
		if (x->oneshot[k].pid > 0)
			kill(x->oneshot[k].pid, SIGTERM); /* cancels its job */
	}
}

/* Waits for the next verdict (or a worker's death) and ends that step.
 * Returns 0, or -1 when there is nothing to wait for. */
static int wait_step(struct sched *x, int stopping)
{
	struct pollfd *pf = xcalloc(2 * (size_t)x->jobs, sizeof(*pf));
	int np = 0, rc = 0;
	for (int k = 0; k < x->jobs; k++) {
		if (x->slots[k].pid > 0 && x->slots[k].step >= 0)
			pf[np++] = (struct pollfd){ x->slots[k].sock, POLLIN, 0 };
		if (x->oneshot[k].pid > 0)
			pf[np++] = (struct pollfd){ x->oneshot[k].sock, POLLIN, 0 };
	}
	if (x->ev.waiting)
		x->ev.waiting(x->ev.ctx);
	int pr = np ? poll(pf, (nfds_t)np, x->tick_ms ? x->tick_ms : -1) : -1;
	if (pr == 0 && x->ev.tick)
		x->ev.tick(x->ev.ctx);
	for (int k = 0; pr > 0 && k < x->jobs; k++) {
		struct sched_slot *sl = &x->slots[k];
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
	for (int k = 0; pr > 0 && k < x->jobs; k++) {
		/* a Slurm step's process: its verdict, then its exit */
		struct sched_slot *sl = &x->oneshot[k];
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
static void end_workers(struct sched *x)
{
	for (int k = 0; k < x->jobs; k++)
		if (x->slots[k].pid > 0)
			close(x->slots[k].sock);
	for (int k = 0; k < x->jobs; k++) {
		int status;
		while (x->slots[k].pid > 0 && waitpid(x->slots[k].pid, &status, 0) < 0 && errno == EINTR)
			;
		x->slots[k].pid = 0;
	}
}

/* Asks what step i's verdict asks, recorded: a step that ran (in a worker,
 * on Slurm) or whose recording came before a run was stored. 1 it is a
 * hit that a witness can vouch for, 0 not. */
static int capture(struct sched *x, size_t i)
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
static void witness_save(struct sched *x)
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
	    witness_key(x->w.abs_file.buf, x->store, x->w.options.buf, &key) < 0 || !digest_eq(&key, &x->w.key))
		b.broken = 1;
	if (witness_write(x->w.path.buf, &b, &x->w.key, epoch, gen) < 0)
		err_clear();
	witness_builder_free(&b);
}

void sched_init(struct sched *s, struct dag *d)
{
	memset(s, 0, sizeof(*s));
	s->d = d;
	s->state = xcalloc(d->n ? d->n : 1, sizeof(*s->state));
	s->t0 = xcalloc(d->n ? d->n : 1, sizeof(*s->t0));
	s->t1 = xcalloc(d->n ? d->n : 1, sizeof(*s->t1));
	s->log = xmalloc(2 * (d->n ? d->n : 1) * sizeof(*s->log));
	for (size_t i = 0; i < 2 * d->n; i++)
		s->log[i] = -1;
}

void sched_release(struct sched *s)
{
	for (size_t i = 0; s->log && i < 2 * s->d->n; i++)
		if (s->log[i] >= 0)
			close(s->log[i]);
	if (s->spool.len)
		rm_rf(s->spool.buf);
	sb_release(&s->spool);
	sb_release(&s->self);
	for (size_t i = 0; s->w.seen && i < s->d->n; i++)
		sb_release(&s->w.seen[i]);
	free(s->w.seen);
	free(s->w.captured);
	free(s->w.run);
	free(s->w.expires);
	sb_release(&s->w.abs_file);
	sb_release(&s->w.path);
	sb_release(&s->w.options);
	sb_release(&s->error);
	free(s->state);
	free(s->t0);
	free(s->t1);
	free(s->log);
}

/* Step i will never run: something it needs failed or did not run. */
static void skip(struct sched *x, size_t i)
{
	size_t up = 0;
	ready(x, i, &up);
	x->state[i] = SCHED_SKIP;
	x->t0[i] = x->t1[i] = now_ms();
	x->done++;
	if (x->ev.skipped)
		x->ev.skipped(x->ev.ctx, i, up);
	settle(x, i);
}

static void stop(struct sched *x, int *stopping)
{
	*stopping = 1;
	stop_workers(x);
}

int sched_run(struct sched *x)
{
	static const volatile sig_atomic_t never;
	size_t n = x->d->n, failed = 0, hits = 0, ran = 0;
	int stopping = 0, rc = 0;
	if (!x->interrupted)
		x->interrupted = &never;
	x->start = now_ms();
	for (size_t i = 0; i < n; i++)
		x->total += x->want[i];
	x->slots = xcalloc((size_t)x->jobs, sizeof(*x->slots));
	x->oneshot = xcalloc((size_t)x->jobs, sizeof(*x->oneshot));
	if (x->w.on && !x->st)
		x->w.on = 0;
	if (x->w.on) {
		x->w.seen = xcalloc(n ? n : 1, sizeof(*x->w.seen));
		x->w.captured = xcalloc(n ? n : 1, 1);
		x->w.run = xcalloc(n ? n : 1, sizeof(*x->w.run));
		x->w.expires = xcalloc(n ? n : 1, sizeof(*x->w.expires));
	}
	queue_init(x);
	if (x->ev.tick)
		x->ev.tick(x->ev.ctx); /* the display before anything runs */
	/* the files outside the project are judged as one snapshot */
	if (x->st)
		stat_memo_enable(store_root(x->st));
	for (;;) {
		if (*x->interrupted && !stopping)
			stop(x, &stopping);
		/* interrupted too: a pass of in-process replays starts no child to interrupt */
		while (!stopping && !*x->interrupted) {
			size_t i;
			if (x->ndoomed) {
				skip(x, dag_heap_pop(x->doomed, &x->ndoomed, x->pos));
				continue;
			}
			if (!x->nready || x->running >= (size_t)x->jobs)
				break;
			i = dag_heap_pop(x->ready, &x->nready, x->pos);
			x->t0[i] = now_ms();
			if (replay_in_process(x, i)) {
				x->running++;
				finish(x, i, 0, 0, 1, NULL);
				settle(x, i);
				continue;
			}
			if (*x->interrupted) {
				dag_heap_push(x->ready, &x->nready, i, x->pos);
				break; /* it may have cut the replay short: nothing more starts */
			}
			if (dispatch(x, i) < 0) {
				dag_heap_push(x->ready, &x->nready, i, x->pos);
				sb_adds(&x->error, err_msg());
				err_clear();
				rc = -1;
				stop(x, &stopping);
				break;
			}
			x->state[i] = SCHED_RUN;
			x->running++;
			if (x->ev.started)
				x->ev.started(x->ev.ctx, i);
		}
		if (!x->running)
			break;
		size_t before = x->failed;
		if (wait_step(x, stopping) < 0)
			break;
		/* fail fast: a worker forwards TERM to its command and stores nothing */
		if (x->failed > before && !x->keep_going && !stopping)
			stop(x, &stopping);
	}
	end_workers(x);
	for (size_t i = 0; i < n; i++) {
		failed += x->state[i] == SCHED_FAIL;
		hits += x->state[i] == SCHED_HIT;
		ran += x->state[i] == SCHED_RAN;
	}
	if (x->w.on && !*x->interrupted && !stopping && !failed && ran + hits == x->total)
		witness_save(x);
	else if (x->w.on)
		unlink(x->w.path.buf); /* it no longer says what the steps are */
	stat_memo_enable(NULL);
	queue_free(x);
	free(x->slots);
	free(x->oneshot);
	x->slots = x->oneshot = NULL;
	x->stopped = stopping;
	return rc;
}
