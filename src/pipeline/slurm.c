/* slurm: sbatch, scontrol and scancel as child processes (see slurm.h).
 * Each runs with stdin from /dev/null, in its own process group, and its
 * stdout and stderr read whole; nothing here prints. */
#include "pipeline/slurm.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* Runs argv, its stdout into out and its stderr into errout. Returns its
 * exit status (128+N for signal N), or -1 if it could not be started. */
static int capture(char *const *argv, struct strbuf *out, struct strbuf *errout)
{
	int po[2] = { -1, -1 }, pe[2] = { -1, -1 }, rc = -1, status;
	pid_t pid = -1;
	if (pipe2(po, O_CLOEXEC) < 0 || pipe2(pe, O_CLOEXEC) < 0) {
		err_sys("pipe");
		goto out;
	}
	pid = fork();
	if (pid < 0) {
		err_sys("cannot fork");
		goto out;
	}
	if (pid == 0) {
		int null = open("/dev/null", O_RDONLY);
		setpgid(0, 0);
		signal(SIGINT, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		signal(SIGHUP, SIG_DFL);
		if (null < 0 || dup2(null, 0) < 0 || dup2(po[1], 1) < 0 || dup2(pe[1], 2) < 0)
			_exit(127);
		execvp(argv[0], argv);
		dprintf(2, "cannot run %s: %s", argv[0], strerror(errno));
		_exit(127);
	}
	close(po[1]);
	close(pe[1]);
	po[1] = pe[1] = -1;
	struct pollfd fds[2] = { { po[0], POLLIN, 0 }, { pe[0], POLLIN, 0 } };
	struct strbuf *dst[2] = { out, errout };
	int open_fds = 2;
	while (open_fds) {
		if (poll(fds, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		for (int k = 0; k < 2; k++) {
			char buf[4096];
			if (fds[k].fd < 0 || !fds[k].revents)
				continue;
			ssize_t n = read(fds[k].fd, buf, sizeof(buf));
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				fds[k].fd = -1;
				open_fds--;
				continue;
			}
			sb_add(dst[k], buf, (size_t)n);
		}
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR) {
			err_sys("waitpid");
			goto out;
		}
	rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
out:
	for (int k = 0; k < 2; k++) {
		if (po[k] >= 0)
			close(po[k]);
		if (pe[k] >= 0)
			close(pe[k]);
	}
	return rc;
}

/* The first line of a command's stderr, for a one-line error. */
static void first_line(struct strbuf *sb)
{
	char *nl = strchr(sb_str(sb), '\n');
	if (nl)
		sb_setlen(sb, (size_t)(nl - sb->buf));
}

int slurm_submit(const struct slurm_submit *req, struct strbuf *jobid)
{
	struct strvec argv = STRVEC_INIT;
	struct strbuf out = STRBUF_INIT, err = STRBUF_INIT, opt = STRBUF_INIT;
	int rc = -1;
	sv_push(&argv, "sbatch");
	sv_push(&argv, "--parsable");
	sb_addf(&opt, "--job-name=%s", req->name);
	sv_push(&argv, opt.buf);
	sb_reset(&opt);
	sb_addf(&opt, "--chdir=%s", req->workdir);
	sv_push(&argv, opt.buf);
	sb_reset(&opt);
	sb_addf(&opt, "--output=%s", req->out);
	sv_push(&argv, opt.buf);
	sb_reset(&opt);
	sb_addf(&opt, "--error=%s", req->err);
	sv_push(&argv, opt.buf);
	for (size_t i = 0; req->args && i < req->args->n; i++)
		sv_push(&argv, req->args->v[i]);
	sv_push(&argv, req->script);
	int st = capture(argv.v, &out, &err);
	if (st < 0)
		goto out;
	/* "1234" or "1234;cluster" */
	size_t n = strspn(sb_str(&out), "0123456789");
	if (st != 0 || !n) {
		first_line(&err);
		err_set("sbatch failed (exit %d): %s", st, err.len ? err.buf : "it printed no job id");
		goto out;
	}
	sb_reset(jobid);
	sb_add(jobid, out.buf, n);
	rc = 0;
out:
	sv_release(&argv);
	sb_release(&out);
	sb_release(&err);
	sb_release(&opt);
	return rc;
}

/* The value of KEY= in scontrol's one-line answer, into dst (size len). */
static void field(const char *line, const char *key, char *dst, size_t len)
{
	size_t kl = strlen(key);
	dst[0] = 0;
	for (const char *p = line; (p = strstr(p, key)); p += kl) {
		if ((p != line && p[-1] != ' ') || p[kl] != '=')
			continue;
		p += kl + 1;
		size_t n = strcspn(p, " \n");
		if (n >= len)
			n = len - 1;
		memcpy(dst, p, n);
		dst[n] = 0;
		return;
	}
}

static enum slurm_state state_of(const char *name)
{
	static const char *const queued[] = { "PENDING",     "CONFIGURING",   "REQUEUED", "REQUEUE_HOLD",
					      "REQUEUE_FED", "RESV_DEL_HOLD", "RESIZING", NULL };
	static const char *const running[] = { "RUNNING",   "COMPLETING", "SUSPENDED", "STAGE_OUT",
					       "SIGNALING", "STOPPED",    NULL };
	for (size_t i = 0; queued[i]; i++)
		if (!strcmp(name, queued[i]))
			return SLURM_QUEUED;
	for (size_t i = 0; running[i]; i++)
		if (!strcmp(name, running[i]))
			return SLURM_RUNNING;
	return strcmp(name, "COMPLETED") ? SLURM_FAILED : SLURM_ENDED;
}

int slurm_query(const char *jobid, struct slurm_job *job)
{
	struct strbuf out = STRBUF_INIT, err = STRBUF_INIT;
	char *argv[] = { "scontrol", "show", "job", "-o", (char *)jobid, NULL };
	char code[32];
	int rc = -1;
	memset(job, 0, sizeof(*job));
	int st = capture(argv, &out, &err);
	if (st < 0)
		goto out;
	if (st != 0) {
		if (strstr(sb_str(&err), "Invalid job id")) {
			job->state = SLURM_GONE;
			snprintf(job->state_name, sizeof(job->state_name), "UNKNOWN");
			rc = 0;
			goto out;
		}
		first_line(&err);
		err_set("scontrol show job %s failed (exit %d): %s", jobid, st, sb_str(&err));
		goto out;
	}
	field(sb_str(&out), "JobState", job->state_name, sizeof(job->state_name));
	field(sb_str(&out), "Reason", job->reason, sizeof(job->reason));
	field(sb_str(&out), "ExitCode", code, sizeof(code));
	if (!job->state_name[0]) {
		err_set("scontrol show job %s: no JobState in its answer", jobid);
		goto out;
	}
	job->state = state_of(job->state_name);
	/* ExitCode=STATUS:SIGNAL */
	job->exit_code = atoi(code);
	job->signal = strchr(code, ':') ? atoi(strchr(code, ':') + 1) : 0;
	rc = 0;
out:
	sb_release(&out);
	sb_release(&err);
	return rc;
}

int slurm_cancel(const char *jobid)
{
	struct strbuf out = STRBUF_INIT, err = STRBUF_INIT;
	char *argv[] = { "scancel", (char *)jobid, NULL };
	int rc = 0;
	int st = capture(argv, &out, &err);
	if (st != 0) {
		first_line(&err);
		rc = st < 0 ? -1 : err_set("scancel %s failed (exit %d): %s", jobid, st, sb_str(&err));
	}
	sb_release(&out);
	sb_release(&err);
	return rc;
}

void slurm_describe(const struct slurm_job *job, struct strbuf *out)
{
	sb_adds(out, job->state_name);
	if (job->reason[0] && strcmp(job->reason, "None"))
		sb_addf(out, ", %s", job->reason);
	if (job->signal)
		sb_addf(out, ", signal %d", job->signal);
	else if (job->exit_code)
		sb_addf(out, ", exit %d", job->exit_code);
}
