/* executor-slurm: one pipeline step through Slurm (see executor-slurm.h).
 * The spool of a pipeline run holds, per step index I: I.sh (the job
 * script), I.out and I.err (Slurm's files for the job's streams),
 * I.archive (the run, `cashet export` format) and I.verdict, written last
 * and atomically: "VERDICT EXIT RUN" (RUN "-" when nothing was stored).
 * Its presence is what says the job is done; Slurm's state is asked, with
 * backoff, only to learn of a job that ended without writing it. */
#include "pipeline/executor-slurm.h"
#include "exec/claim.h"
#include "pipeline/step.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* Lines of a failed job's stderr shown under its report. */
#define TAIL_LINES 10
/* Slurm's state is first asked after this, then at most this often. */
#define QUERY_FIRST_MS 100
#define QUERY_MAX_MS 2000
/* How long the verdict file is looked for after Slurm says the job ended
 * (a shared filesystem may show it late). */
#define VERDICT_GRACE_MS 3000
/* How long a cancelled job may take to leave the queue. */
#define CANCEL_WAIT_MS 10000
/* scontrol failures in a row (at up to 2 s apart) before the step fails */
#define QUERY_ERRORS 15

static const volatile sig_atomic_t *stop_flag;

static int stopped(void)
{
	return stop_flag && *stop_flag;
}

static void nap_ms(int64_t ms)
{
	struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };
	nanosleep(&ts, NULL); /* a signal cuts it short: stopped() is checked next */
}

static void spool_path(const char *spool, const char *index, const char *ext, struct strbuf *p)
{
	sb_reset(p);
	sb_addf(p, "%s/%s.%s", spool, index, ext);
}

/* Appends s to sb quoted for sh: '...' with each ' as '\''. */
static void sh_quote(struct strbuf *sb, const char *s)
{
	sb_addc(sb, '\'');
	for (; *s; s++)
		if (*s == '\'')
			sb_adds(sb, "'\\''");
		else
			sb_addc(sb, *s);
	sb_addc(sb, '\'');
}

/* The job records of `pipeline status`: slurm/jobs/FP in the store,
 * "JOBID STEP", while the submitter holds the step's claim. */
static void job_record_path(const char *store, const struct digest *fp, struct strbuf *p)
{
	char hex[DIGEST_HEX];
	digest_hex(fp, hex);
	sb_reset(p);
	sb_addf(p, "%s/slurm/jobs/%s", store, hex);
}

static void tail_of(const char *path, struct strbuf *out)
{
	struct strbuf sb = STRBUF_INIT;
	if (read_file_sb(path, &sb) < 0) {
		err_clear();
		sb_release(&sb);
		return;
	}
	size_t end = sb.len, lines = 0, start = end;
	while (end && sb.buf[end - 1] == '\n')
		end--;
	for (start = end; start > 0; start--)
		if (sb.buf[start - 1] == '\n' && ++lines == TAIL_LINES)
			break;
	sb_add(out, sb.buf + start, end - start);
	sb_release(&sb);
}

/* Reads I.verdict: 1 read, 0 not there (yet), -1 malformed. */
static int read_verdict(const char *path, enum exec_verdict *v, int *exit_code, char run[OID_HEX])
{
	struct strbuf sb = STRBUF_INIT;
	char name[32], hash[OID_HEX + 8];
	int rc = 0;
	if (read_file_sb(path, &sb) < 0) {
		err_clear();
		goto out;
	}
	rc = -1;
	if (sscanf(sb.buf, "%31s %d %48s", name, exit_code, hash) != 3)
		goto out;
	for (int k = EXEC_MISS; k <= EXEC_NOT_STORED; k++)
		if (!strcmp(name, exec_verdict_name((enum exec_verdict)k))) {
			*v = (enum exec_verdict)k;
			rc = 1;
		}
	run[0] = 0;
	if (strcmp(hash, "-")) {
		if (strlen(hash) != OID_HEX - 1)
			rc = -1;
		else
			memcpy(run, hash, OID_HEX);
	}
out:
	sb_release(&sb);
	return rc;
}

/* Looks the step up and replays a hit to the step's logs. 1 hit, 0 miss
 * (res->fp filled either way), -1 error. */
static int lookup(struct store *st, const struct slurm_exec_request *req, unsigned flags, struct exec_result *res)
{
	struct step_request sr;
	int rc = -1;
	if (step_request_init(&sr, req->d, &req->d->steps[req->step], environ, flags | EXEC_LOOKUP_ONLY, req->out_fd,
			      req->err_fd) == 0 &&
	    exec_run(st, &sr.req, res) == 0)
		rc = res->verdict == EXEC_HIT && res->exit_code == 0;
	step_request_release(&sr);
	return rc;
}

static int write_script(const struct slurm_exec_request *req, const char *index, const char *path)
{
	struct strbuf sb = STRBUF_INIT;
	char *file = realpath(req->d->file, NULL);
	int rc;
	if (!file)
		return err_sys("cannot resolve %s", req->d->file);
	sb_adds(&sb, "#!/bin/sh\n# a step of a cashet pipeline (cashet-pipeline(5), \"Slurm\")\nexec ");
	sh_quote(&sb, req->cashet);
	sb_adds(&sb, " pipeline job --origin ");
	sh_quote(&sb, req->store);
	sb_adds(&sb, " --spool ");
	sh_quote(&sb, req->spool);
	sb_addf(&sb, " --index %s%s ", index, req->force ? " --force" : "");
	sh_quote(&sb, file);
	sb_addc(&sb, ' ');
	sh_quote(&sb, req->d->steps[req->step].name);
	sb_addc(&sb, '\n');
	rc = write_file_atomic(path, sb.buf, sb.len, 0755);
	free(file);
	sb_release(&sb);
	return rc;
}

/* scancel, then waits (a few seconds at most) until Slurm has the job
 * ended, so that a stopped pipeline leaves no job in squeue. */
static void cancel(const char *jobid)
{
	struct slurm_job job;
	int64_t until = now_ms() + CANCEL_WAIT_MS, nap = 20;
	if (slurm_cancel(jobid) == 0)
		while (now_ms() < until && slurm_query(jobid, &job) == 0 &&
		       (job.state == SLURM_QUEUED || job.state == SLURM_RUNNING)) {
			nap_ms(nap);
			nap = nap * 2 < 500 ? nap * 2 : 500;
		}
	err_clear();
}

/* Whether Slurm ended the job itself (TIMEOUT, OUT_OF_MEMORY, CANCELLED,
 * ...), waiting a few seconds for its final state; if so why says so. */
static int ended_by_slurm(const char *jobid, struct strbuf *why)
{
	struct slurm_job job;
	int64_t until = now_ms() + CANCEL_WAIT_MS, nap = 20;
	int rc = 0;
	while (slurm_query(jobid, &job) == 0) {
		if (job.state != SLURM_QUEUED && job.state != SLURM_RUNNING) {
			/* FAILED with NonZeroExitCode is the script's own exit */
			rc = job.state == SLURM_FAILED &&
			     (strcmp(job.state_name, "FAILED") ||
			      (strcmp(job.reason, "NonZeroExitCode") && strcmp(job.reason, "None")));
			break;
		}
		if (now_ms() >= until)
			break;
		nap_ms(nap);
		nap = nap * 2 < 500 ? nap * 2 : 500;
	}
	err_clear();
	if (rc) {
		sb_addf(why, "Slurm job %s: ", jobid);
		slurm_describe(&job, why);
	}
	return rc;
}

/* Follows the job until its verdict file appears, it ends without one
 * or the request is stopped (the job is then cancelled). Returns 1 with
 * the verdict read, 0 when it ended without one or was stopped (res->why
 * and res->stopped say which), -1 on error. */
static int follow(const struct slurm_exec_request *req, struct store *st, const struct digest *fp,
		  const struct claim_owner *me, const char *index, struct slurm_exec_result *res, enum exec_verdict *v,
		  int *exit_code, char run[OID_HEX])
{
	struct strbuf path = STRBUF_INIT;
	struct slurm_job job;
	int64_t start = now_ms(), next_query = start + QUERY_FIRST_MS, query_every = QUERY_FIRST_MS;
	int64_t beat = start, ended_at = 0, nap = 10;
	int rc = -1, query_errors = 0;
	spool_path(req->spool, index, "verdict", &path);
	memset(&job, 0, sizeof(job));
	for (;;) {
		if (stopped()) {
			cancel(res->jobid);
			res->stopped = 1;
			rc = 0;
			break;
		}
		int r = read_verdict(path.buf, v, exit_code, run);
		if (r != 0) {
			rc = r > 0 ? 1 : err_set("%s: not a verdict cashet wrote", path.buf);
			break;
		}
		int64_t now = now_ms();
		if (ended_at && now - ended_at > VERDICT_GRACE_MS) {
			sb_addf(&res->why, "Slurm job %s: ", res->jobid);
			slurm_describe(&job, &res->why);
			rc = 0;
			break;
		}
		if (!ended_at && now >= next_query) {
			/* a slurmctld restarting or slow for a moment is no failure */
			int q = slurm_query(res->jobid, &job);
			if (q < 0 && ++query_errors > QUERY_ERRORS)
				break;
			if (q == 0)
				query_errors = 0;
			err_clear();
			if (job.state == SLURM_ENDED || job.state == SLURM_FAILED || job.state == SLURM_GONE)
				ended_at = now;
			query_every = query_every * 3 / 2 < QUERY_MAX_MS ? query_every * 3 / 2 : QUERY_MAX_MS;
			next_query = now + query_every;
		}
		/* across machines a claim lives by its heartbeat */
		if (me && now - beat >= CLAIM_HEARTBEAT_MS) {
			store_claim_heartbeat(st, fp, me, now);
			err_clear();
			beat = now;
		}
		nap_ms(nap);
		nap = nap * 2 < 250 ? nap * 2 : 250;
	}
	sb_release(&path);
	return rc;
}

int slurm_exec_step(const struct slurm_exec_request *req, struct slurm_exec_result *res)
{
	const struct dag_step *s = &req->d->steps[req->step];
	struct store *st = NULL;
	struct exec_result er;
	struct claim_owner me;
	struct digest fp; /* the step's key here, before it ran: what the claim is on */
	struct strvec args = STRVEC_INIT;
	struct strbuf record = STRBUF_INIT, p = STRBUF_INIT, jobid = STRBUF_INIT;
	struct strbuf script = STRBUF_INIT, out = STRBUF_INIT, err = STRBUF_INIT;
	char index[32], run[OID_HEX];
	enum exec_verdict v = EXEC_NOT_STORED;
	int claimed = 0, rc = -1, code = 0, h;
	unsigned force = req->force ? EXEC_FORCE : 0;

	memset(res, 0, sizeof(*res));
	memset(&er, 0, sizeof(er));
	res->verdict = EXEC_NOT_STORED;
	res->exit_code = EXEC_EXIT_CASHET;
	stop_flag = req->stop;
	snprintf(index, sizeof(index), "%zu", req->step);
	if (store_open(req->store, 0, &st, NULL) < 0)
		goto out;

	/* cache first: a hit is replayed here and never reaches the queue */
	if ((h = lookup(st, req, force, &er)) != 0) {
		if (h < 0)
			goto out;
		res->verdict = EXEC_HIT;
		res->exit_code = 0;
		rc = 0;
		goto out;
	}
	fp = er.fp;
	/* the claim covers the submission: a second pipeline waits for this
	 * one's job and replays its run instead of submitting its own */
	claim_self(&me);
	for (int cache = s->cache; cache;) {
		int c = claim_acquire(st, &fp, &me, stopped);
		if (c == 2) {
			res->stopped = 1;
			rc = 0;
			goto out;
		}
		if (c < 0)
			goto out;
		claimed = c == 0;
		exec_result_free(&er);
		if ((h = lookup(st, req, claimed ? force : 0, &er)) < 0)
			goto out;
		if (h) {
			res->verdict = claimed ? EXEC_HIT : EXEC_WAITED;
			res->exit_code = 0;
			rc = 0;
			goto out;
		}
		if (claimed)
			break;
	}

	/* submit */
	spool_path(req->spool, index, "sh", &script);
	spool_path(req->spool, index, "out", &out);
	spool_path(req->spool, index, "err", &err);
	sb_addf(&p, "cashet:%s", s->name);
	dag_sbatch_args(s, &args);
	struct step_request sr;
	int init = step_request_init(&sr, req->d, s, environ, 0, -1, -1);
	struct slurm_submit sub = { script.buf, sr.cwd.buf, p.buf, out.buf, err.buf, &args };
	if (init < 0 || write_script(req, index, script.buf) < 0 || slurm_submit(&sub, &jobid) < 0) {
		step_request_release(&sr);
		goto out;
	}
	step_request_release(&sr);
	snprintf(res->jobid, sizeof(res->jobid), "%s", jobid.buf);
	job_record_path(req->store, &fp, &record);
	sb_reset(&p);
	sb_addf(&p, "%s %s\n", res->jobid, s->name);
	char *slash = strrchr(record.buf, '/');
	*slash = 0;
	mkdirs(record.buf, 0755);
	*slash = '/';
	if (write_file_atomic(record.buf, p.buf, p.len, 0644) < 0)
		err_clear(); /* only `pipeline status` reads it */

	int f = follow(req, st, &fp, claimed ? &me : NULL, index, res, &v, &code, run);
	if (f < 0)
		goto out;
	rc = 0;
	if (res->stopped || f == 0) {
		if (!res->stopped)
			tail_of(err.buf, &res->tail);
		res->exit_code = 1;
		goto out;
	}
	/* the job's run is stored here whatever its status, as a local failure is */
	if (run[0]) {
		size_t added = 0, present = 0;
		spool_path(req->spool, index, "archive", &p);
		if (store_import(st, p.buf, 1, &added, &present) < 0) {
			rc = -1;
			goto out;
		}
	}
	res->exit_code = code;
	if (code > 128 && ended_by_slurm(res->jobid, &res->why)) {
		/* the command was killed by Slurm (time limit, memory, scancel):
		 * Slurm's word says more than the signal */
		tail_of(err.buf, &res->tail);
		goto out;
	}
	if (code != 0) {
		sb_addf(&res->why, "exit %d, Slurm job %s", code, res->jobid);
		tail_of(err.buf, &res->tail);
		goto out;
	}
	res->verdict = v;
	if (!s->cache || !run[0])
		goto out;
	/* what a local run would do next: replay the stored run here. A run
	 * the node keyed otherwise (another tool or input there) must not
	 * count as this step's */
	exec_result_free(&er);
	if ((h = lookup(st, req, 0, &er)) <= 0) {
		if (h == 0) {
			sb_addf(&res->why,
				"Slurm job %s stored run %.12s, but this host computes another key for the step "
				"(a tool, an input or the environment differs on the node)",
				res->jobid, run);
			res->exit_code = 1;
		}
		rc = h;
		goto out;
	}
	res->verdict = EXEC_RAN;
out:
	if (claimed)
		store_claim_release(st, &fp, &me);
	if (record.len)
		unlink(record.buf);
	exec_result_free(&er);
	store_close(st);
	sv_release(&args);
	sb_release(&record);
	sb_release(&p);
	sb_release(&jobid);
	sb_release(&script);
	sb_release(&out);
	sb_release(&err);
	return rc;
}

void slurm_exec_result_free(struct slurm_exec_result *res)
{
	sb_release(&res->why);
	sb_release(&res->tail);
}

static int copy_config(const char *from_store, const char *to_store)
{
	struct strbuf from = STRBUF_INIT, to = STRBUF_INIT, sb = STRBUF_INIT;
	int rc;
	sb_addf(&from, "%s/config", from_store);
	sb_addf(&to, "%s/config", to_store);
	rc = read_file_sb(from.buf, &sb);
	if (rc == 0)
		rc = write_file_atomic(to.buf, sb.buf, sb.len, 0644);
	sb_release(&from);
	sb_release(&to);
	sb_release(&sb);
	return rc;
}

/* Makes DIR/NAME.HOST.PID-XXXXXX (path), first removing those of this
 * host whose process is gone: a kill -9, or Slurm's SIGKILL of a job over
 * its memory, leaves them behind. Only this host's: DIR may be shared,
 * and another host's pid says nothing here. */
static int mkdtemp_swept(const char *dir, const char *name, struct strbuf *path)
{
	struct strbuf p = STRBUF_INIT, prefix = STRBUF_INIT;
	char host[256] = "localhost";
	DIR *dh;
	struct dirent *e;
	int rc = -1;
	gethostname(host, sizeof(host) - 1);
	sb_addf(&prefix, "%s.%s.", name, host);
	if ((dh = opendir(dir))) {
		while ((e = readdir(dh))) {
			char *end;
			if (strncmp(e->d_name, prefix.buf, prefix.len))
				continue;
			long pid = strtol(e->d_name + prefix.len, &end, 10);
			if (pid <= 0 || *end != '-' || kill((pid_t)pid, 0) == 0 || errno != ESRCH)
				continue;
			sb_reset(&p);
			sb_addf(&p, "%s/%s", dir, e->d_name);
			rm_rf(p.buf);
		}
		closedir(dh);
	}
	sb_reset(path);
	sb_addf(path, "%s/%s%ld-XXXXXX", dir, prefix.buf, (long)getpid());
	if (!mkdtemp(path->buf)) {
		err_sys("cannot create a directory in %s", dir);
		sb_reset(path);
		goto out;
	}
	rc = 0;
out:
	sb_release(&p);
	sb_release(&prefix);
	return rc;
}

int slurm_job_run(const struct slurm_job_request *req)
{
	struct dag *d = NULL;
	struct store *st = NULL;
	struct step_request sr;
	struct exec_result res;
	struct strbuf tmp = STRBUF_INIT, priv = STRBUF_INIT, p = STRBUF_INIT, line = STRBUF_INIT;
	const char *t = getenv("TMPDIR"), *jobid = getenv("SLURM_JOB_ID");
	int code = EXEC_EXIT_CASHET, have_sr = 0;
	long i;

	memset(&res, 0, sizeof(res));
	res.verdict = EXEC_NOT_STORED;
	res.exit_code = EXEC_EXIT_CASHET;
	if (dag_load(req->file, &d) < 0)
		goto out;
	if ((i = dag_find(d, req->step)) < 0) {
		err_set("%s: no step '%s'", req->file, req->step);
		goto out;
	}
	/* the run's private store: node-local, never shared, removed after
	 * (and by a later job if this one is killed outright) */
	if (mkdtemp_swept(t && *t ? t : "/tmp", "cashet-job", &tmp) < 0)
		goto out;
	sb_addf(&priv, "%s/.cashet", tmp.buf);
	if (store_open(priv.buf, STORE_CREATE, &st, NULL) < 0)
		goto out;
	store_close(st);
	st = NULL;
	/* the origin's settings (trace, ignore, ...) are part of keys */
	if (copy_config(req->origin, priv.buf) < 0 || store_open(priv.buf, 0, &st, NULL) < 0)
		goto out;
	store_stand_in(st, req->origin);
	struct dag_step *s = &d->steps[i];
	if (jobid) {
		/* a tag: not in the key, so the run is the one a local run would be */
		sb_addf(&p, "slurm-job=%s", jobid);
		sv_push(&s->tags, p.buf);
	}
	if (step_request_init(&sr, d, s, environ, req->force ? EXEC_FORCE : 0, STDOUT_FILENO, STDERR_FILENO) < 0)
		goto out;
	have_sr = 1;
	if (exec_run(st, &sr.req, &res) < 0)
		goto out;
	if (res.note && res.verdict != EXEC_HIT)
		fprintf(stderr, "cashet: %s\n", res.note);
	if (res.run[0]) {
		struct strvec hashes = STRVEC_INIT;
		uint64_t size = 0;
		sv_push(&hashes, res.run);
		spool_path(req->spool, req->index, "archive", &p);
		int e = store_export(st, &hashes, p.buf, &size);
		sv_release(&hashes);
		if (e < 0)
			goto out;
	}
	/* last: its presence tells the submitter everything else is there */
	sb_addf(&line, "%s %d %s\n", exec_verdict_name(res.verdict), res.exit_code, res.run[0] ? res.run : "-");
	spool_path(req->spool, req->index, "verdict", &p);
	if (write_file_atomic(p.buf, line.buf, line.len, 0644) < 0)
		goto out;
	code = res.exit_code;
out:
	if (code == EXEC_EXIT_CASHET && err_msg()[0])
		fprintf(stderr, "cashet: %s\n", err_msg());
	if (have_sr)
		step_request_release(&sr);
	exec_result_free(&res);
	store_close(st);
	if (tmp.len)
		rm_rf(tmp.buf);
	dag_free(d);
	sb_release(&tmp);
	sb_release(&priv);
	sb_release(&p);
	sb_release(&line);
	return code;
}

int slurm_spool_create(const char *store, struct strbuf *path)
{
	struct strbuf dir = STRBUF_INIT;
	sb_addf(&dir, "%s/slurm", store);
	int rc = mkdirs(dir.buf, 0755) < 0 ? -1 : mkdtemp_swept(dir.buf, "run", path);
	sb_release(&dir);
	return rc;
}

int slurm_job_in_flight(struct store *st, const struct digest *fp, struct strbuf *jobid, struct slurm_job *job)
{
	struct strbuf path = STRBUF_INIT, sb = STRBUF_INIT;
	int rc = 0;
	job_record_path(store_dir(st), fp, &path);
	/* a record whose claim is not held is left by a pipeline that died */
	if (read_file_sb(path.buf, &sb) < 0 || !claim_busy(st, fp)) {
		err_clear();
		goto out;
	}
	size_t n = strspn(sb.buf, "0123456789");
	if (!n)
		goto out;
	sb_reset(jobid);
	sb_add(jobid, sb.buf, n);
	if (slurm_query(jobid->buf, job) < 0) {
		err_clear();
		memset(job, 0, sizeof(*job));
		job->state = SLURM_QUEUED;
		snprintf(job->state_name, sizeof(job->state_name), "UNKNOWN");
	}
	rc = 1;
out:
	sb_release(&path);
	sb_release(&sb);
	return rc;
}
