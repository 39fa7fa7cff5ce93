/* submit: POST /submit (see submit.h). A step runs as the very command line
 * `cashet pipeline run` gives it (cli/pipeline-step.c), in its workdir, so
 * it has the same fingerprint: a step the pipeline ran is a hit here, and
 * the other way round. The child's `-v` lines say hit or run and name the
 * run; only resolving that name takes the store mutex. The server is
 * multi-threaded: between fork and exec the child calls only
 * async-signal-safe functions, so everything is prepared before. */
#include "serve/submit.h"
#include "pipeline/pipeline-step.h"
#include "util/json.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* What one request asks for, validated. */
struct submit_job {
	const struct dag_step *step; /* a step, or NULL for an argv */
	struct strvec argv, inputs, outputs, envs;
	char *timeout;		/* argv only */
	struct strbuf wd;	/* where the child runs */
	int slot;		/* its index in running[], -1 none yet */
};

static void set_error(unsigned *status, struct strbuf *out, unsigned code, const char *msg)
{
	*status = code;
	sb_reset(out);
	sb_adds(out, "{\"error\":");
	json_str(out, msg);
	sb_addc(out, '}');
}

int submit_init(struct submit *sm, struct store *st, pthread_mutex_t *lock)
{
	char self[PATH_MAX];
	ssize_t len = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (len < 0)
		return err_sys("cannot find the cashet executable");
	self[len] = 0;
	sm->self = xstrdup(self);
	sm->store = xstrdup(store_dir(st));
	sm->st = st;
	sm->lock = lock;
	memset(sm->running, 0, sizeof(sm->running));
	return 0;
}

void submit_release(struct submit *sm)
{
	free(sm->self);
	free(sm->store);
	sm->self = sm->store = NULL;
}

void submit_stop(struct submit *sm)
{
	pthread_mutex_lock(sm->lock);
	sm->stopping = 1;
	for (size_t i = 0; i < SUBMIT_MAX; i++)
		if (sm->running[i] > 0)
			kill(sm->running[i], SIGTERM);
	pthread_mutex_unlock(sm->lock);
}

/* --- the request ------------------------------------------------------- */

/* A JSON string without NUL bytes (C strings would cut it short). */
static const char *plain_string(json_object *v)
{
	if (!json_object_is_type(v, json_type_string))
		return NULL;
	const char *s = json_object_get_string(v);
	return strlen(s) == (size_t)json_object_get_string_len(v) ? s : NULL;
}

static int string_array(json_object *v, const char *key, struct strvec *out, struct strbuf *why)
{
	if (!json_object_is_type(v, json_type_array)) {
		sb_addf(why, "'%s' must be an array of strings", key);
		return -1;
	}
	for (size_t i = 0; i < json_object_array_length(v); i++) {
		const char *s = plain_string(json_object_array_get_idx(v, i));
		if (!s || !*s) {
			sb_addf(why, "'%s' must be an array of non-empty strings", key);
			return -1;
		}
		sv_push(out, s);
	}
	return 0;
}

/* A matrix value as dag.c writes it into a step's name: floats in the
 * shortest form that reads back the same ("0.1"). */
static int matrix_text(json_object *v, struct strbuf *out)
{
	char buf[64];
	switch (json_object_get_type(v)) {
	case json_type_string:
		if (!plain_string(v))
			return -1;
		sb_adds(out, json_object_get_string(v));
		return 0;
	case json_type_int:
		sb_addf(out, "%lld", (long long)json_object_get_int64(v));
		return 0;
	case json_type_boolean:
		sb_adds(out, json_object_get_boolean(v) ? "true" : "false");
		return 0;
	case json_type_double: {
		double f = json_object_get_double(v);
		for (int prec = 1; prec <= 17; prec++) {
			snprintf(buf, sizeof(buf), "%.*g", prec, f);
			if (strtod(buf, NULL) == f)
				break;
		}
		sb_adds(out, buf);
		return 0;
	}
	default:
		return -1;
	}
}

/* Whether p, an expansion's name after the '@' ("lr=0.1,dropout=0.2"),
 * holds exactly the pairs keys[i]=vals[i], in any order. */
static int matrix_matches(const char *p, const struct strvec *keys, const struct strvec *vals)
{
	unsigned char *used = xcalloc(keys->n + 1, 1);
	size_t left = keys->n;
	int ok = 1;
	while (ok && *p) {
		size_t k, kl = 0, vl = 0;
		for (k = 0; k < keys->n; k++) {
			kl = strlen(keys->v[k]);
			vl = strlen(vals->v[k]);
			if (!used[k] && !strncmp(p, keys->v[k], kl) && p[kl] == '=' &&
			    !strncmp(p + kl + 1, vals->v[k], vl) && (p[kl + 1 + vl] == ',' || !p[kl + 1 + vl]))
				break;
		}
		if (k == keys->n) {
			ok = 0;
			break;
		}
		used[k] = 1;
		left--;
		p += kl + 1 + vl;
		if (*p == ',')
			p++;
	}
	free(used);
	return ok && !left;
}

/* The step {"step": NAME} or {"step": BASE, "matrix": {...}} names. */
static int find_step(const struct dag *d, const char *name, json_object *matrix, const struct dag_step **out,
		     unsigned *code, struct strbuf *why)
{
	struct strvec keys = STRVEC_INIT, vals = STRVEC_INIT;
	long i = -1;
	int sweep = 0, rc = -1;
	*code = 400;
	if (matrix) {
		if (!json_object_is_type(matrix, json_type_object)) {
			sb_adds(why, "'matrix' must be an object of values");
			goto out;
		}
		json_object_object_foreach(matrix, key, val)
		{
			struct strbuf t = STRBUF_INIT;
			if (matrix_text(val, &t) < 0) {
				sb_release(&t);
				sb_addf(why, "matrix '%s': expected a string, a number or a boolean", key);
				goto out;
			}
			sv_push(&keys, key);
			sv_push_nocopy(&vals, sb_detach(&t));
		}
	}
	for (size_t k = 0; k < d->n && i < 0; k++) {
		const struct dag_step *s = &d->steps[k];
		const char *at = strchr(s->name, '@');
		sweep |= !strcmp(s->base, name) && at;
		if (!matrix ? !strcmp(s->name, name)
			    : !strcmp(s->base, name) && at && matrix_matches(at + 1, &keys, &vals))
			i = (long)k;
	}
	*code = 404;
	if (i < 0 && !sweep)
		sb_addf(why, "unknown step '%s'", name);
	else if (i < 0 && matrix)
		sb_addf(why, "no expansion of step '%s' has that matrix", name);
	else if (i < 0)
		sb_addf(why, "step '%s' is a sweep: name one expansion ('%s@KEY=VALUE,...') or give its 'matrix'",
			name, name);
	else {
		*out = &d->steps[i];
		rc = 0;
	}
out:
	sv_release(&keys);
	sv_release(&vals);
	return rc;
}

/* Reads the body into j: a step, or (--allow-exec) an argv with its
 * inputs, outputs, env names and timeout. */
static int parse_job(struct submit *sm, json_object *j, struct submit_job *jb, unsigned *code, struct strbuf *why)
{
	json_object *step = NULL, *matrix = NULL, *argv = NULL;
	*code = 400;
	json_object_object_foreach(j, key, val)
	{
		if (!strcmp(key, "step"))
			step = val;
		else if (!strcmp(key, "matrix"))
			matrix = val;
		else if (!strcmp(key, "argv"))
			argv = val;
		else if (!strcmp(key, "inputs") || !strcmp(key, "outputs") || !strcmp(key, "env")) {
			struct strvec *to = key[0] == 'i' ? &jb->inputs : key[0] == 'o' ? &jb->outputs : &jb->envs;
			if (string_array(val, key, to, why) < 0)
				return -1;
		} else if (!strcmp(key, "timeout")) {
			const char *t = plain_string(val);
			if (!t || !*t) {
				sb_adds(why, "'timeout' must be a duration such as \"10m\"");
				return -1;
			}
			free(jb->timeout);
			jb->timeout = xstrdup(t);
		} else {
			sb_addf(why, "unknown key '%s' (expected step and matrix, or argv, inputs, outputs, env and "
				     "timeout)", key);
			return -1;
		}
	}
	if (!step == !argv) {
		sb_adds(why, "expected either 'step' (a pipeline step) or 'argv' (a command)");
		return -1;
	}
	if (argv) {
		if (matrix) {
			sb_adds(why, "'matrix' goes with 'step', not with 'argv'");
			return -1;
		}
		if (!sm->allow_exec) {
			*code = 403;
			sb_adds(why, "running a command is disabled: start the server with --allow-exec");
			return -1;
		}
		if (string_array(argv, "argv", &jb->argv, why) < 0)
			return -1;
		if (!jb->argv.n) {
			sb_adds(why, "'argv' is empty");
			return -1;
		}
		char cwd[PATH_MAX];
		if (!getcwd(cwd, sizeof(cwd))) {
			*code = 500;
			sb_adds(why, "cannot get the server's working directory");
			return -1;
		}
		sb_adds(&jb->wd, cwd);
		return 0;
	}
	if (jb->inputs.n || jb->outputs.n || jb->envs.n || jb->timeout) {
		sb_adds(why, "a step's inputs, outputs, env and timeout are the pipeline file's");
		return -1;
	}
	const char *name = plain_string(step);
	if (!name || !*name) {
		sb_adds(why, "'step' must be a step name");
		return -1;
	}
	if (!sm->dag) {
		*code = 404;
		sb_adds(why, "no pipeline: start the server with --pipeline FILE");
		return -1;
	}
	if (find_step(sm->dag, name, matrix, &jb->step, code, why) < 0)
		return -1;
	pipeline_step_workdir(sm->dag, jb->step, &jb->wd);
	return 0;
}

/* The inputs that are not there (globs may match nothing: not checked). A
 * step's inputs made by other steps must have been made already: this runs
 * one step, never what it needs. */
static void missing_inputs(const struct submit_job *jb, struct strvec *missing)
{
	const struct strvec *in = jb->step ? &jb->step->inputs : &jb->inputs;
	struct strbuf p = STRBUF_INIT;
	struct stat sb;
	for (size_t i = 0; i < in->n; i++) {
		if (strpbrk(in->v[i], "*?["))
			continue;
		sb_reset(&p);
		if (in->v[i][0] != '/')
			sb_addf(&p, "%s/", jb->wd.buf);
		sb_adds(&p, in->v[i]);
		if (stat(p.buf, &sb) < 0)
			sv_push(missing, in->v[i]);
	}
	sb_release(&p);
}

/* --- running ----------------------------------------------------------- */

static void exec_argv(const struct submit *sm, const struct submit_job *jb, struct strvec *av)
{
	if (jb->step) {
		pipeline_step_argv(jb->step, sm->self, sm->store, "exec", 0, av);
		return;
	}
	sv_push(av, sm->self);
	sv_push(av, "exec");
	sv_push(av, "--no-stdin");
	sv_push(av, "--store");
	sv_push(av, sm->store);
	sv_push(av, "-v");
	for (size_t k = 0; k < jb->inputs.n; k++) {
		sv_push(av, "-i");
		sv_push(av, jb->inputs.v[k]);
	}
	for (size_t k = 0; k < jb->outputs.n; k++) {
		sv_push(av, "-o");
		sv_push(av, jb->outputs.v[k]);
	}
	for (size_t k = 0; k < jb->envs.n; k++) {
		sv_push(av, "-e");
		sv_push(av, jb->envs.v[k]);
	}
	if (jb->timeout) {
		sv_push(av, "--timeout");
		sv_push(av, jb->timeout);
	}
	sv_push(av, "--");
	for (size_t k = 0; k < jb->argv.n; k++)
		sv_push(av, jb->argv.v[k]);
}

/* The server's environment with the step's env table set over it. */
static void child_env(const struct submit_job *jb, struct strvec *env)
{
	const struct strvec *set = jb->step ? &jb->step->env_set : NULL;
	for (char **e = environ; *e; e++) {
		const char *eq = strchr(*e, '=');
		size_t n = eq ? (size_t)(eq - *e) : strlen(*e);
		int replaced = 0;
		for (size_t k = 0; set && k < set->n && !replaced; k++)
			replaced = !strncmp(set->v[k], *e, n) && set->v[k][n] == '=';
		if (!replaced)
			sv_push(env, *e);
	}
	for (size_t k = 0; set && k < set->n; k++)
		sv_push(env, set->v[k]);
}

/* Starts the child: stdin and stdout /dev/null, stderr to errfd, in wd,
 * with the signal mask and dispositions a fresh process has (the server
 * blocks INT and TERM in every thread and ignores PIPE). */
static pid_t spawn(const struct strvec *av, const struct strvec *env, const char *wd, int errfd)
{
	static const char chdir_failed[] = "cashet: cannot enter the step's working directory\n";
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null < 0)
		return -1;
	pid_t pid = fork();
	if (pid == 0) {
		sigset_t none;
		struct sigaction dfl;
		memset(&dfl, 0, sizeof(dfl));
		dfl.sa_handler = SIG_DFL;
		sigaction(SIGPIPE, &dfl, NULL);
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		if (dup2(null, 0) < 0 || dup2(null, 1) < 0 || dup2(errfd, 2) < 0)
			_exit(125);
		if (chdir(wd) < 0) {
			ssize_t w = write(2, chdir_failed, sizeof(chdir_failed) - 1);
			(void)w;
			_exit(125);
		}
		execve(av->v[0], av->v, env->v);
		_exit(125);
	}
	close(null);
	return pid;
}

/* exec -v's own lines: they say what happened, not what went wrong. */
static int verbose_line(const char *l)
{
	static const char *const pre[] = { "hit ", "miss ", "forced ", "no-cache ", "waited for ", "why: ",
					   "stored ", "exit ", NULL };
	for (size_t i = 0; pre[i]; i++)
		if (!strncmp(l, pre[i], strlen(pre[i])))
			return 1;
	return 0;
}

/* Reads the child's -v lines from its stderr: the last one that names a
 * run wins (a step's own output, replayed or live, comes before), as in
 * cmd-pipeline.c. Sets prefix to the run's short hash, *hit if replayed,
 * and last to the last "cashet: " line, for an error without a run. */
static void read_verdict(int fd, struct strbuf *prefix, int *hit, struct strbuf *last)
{
	static const char *const marks[] = { "cashet: hit ", "cashet: waited for ", "cashet: stored " };
	char *l = NULL;
	size_t cap = 0;
	ssize_t n;
	FILE *f;
	if (lseek(fd, 0, SEEK_SET) < 0 || !(f = fdopen(dup(fd), "r")))
		return;
	while ((n = getline(&l, &cap, f)) >= 0) {
		if (n && l[n - 1] == '\n')
			l[n - 1] = 0;
		const char *c = strstr(l, "cashet: ");
		if (c && !verbose_line(c + 8)) {
			sb_reset(last);
			sb_adds(last, c + 8);
		}
		for (size_t m = 0; m < sizeof(marks) / sizeof(*marks); m++) {
			const char *at = strstr(l, marks[m]);
			if (!at)
				continue;
			at += strlen(marks[m]);
			size_t hx = strspn(at, "0123456789abcdef");
			if (hx < 4)
				continue;
			sb_reset(prefix);
			sb_add(prefix, at, hx);
			*hit = m < 2;
		}
	}
	free(l);
	fclose(f);
}

/* A free slot, or -1: SUBMIT_MAX run already, or -2: the server is stopping. */
static int take_slot(struct submit *sm)
{
	int slot = -1;
	pthread_mutex_lock(sm->lock);
	for (int i = 0; i < SUBMIT_MAX && slot < 0; i++)
		if (!sm->running[i]) {
			sm->running[i] = -1; /* taken; the pid follows */
			slot = i;
		}
	if (sm->stopping && slot >= 0) {
		sm->running[slot] = 0;
		slot = -2;
	}
	pthread_mutex_unlock(sm->lock);
	return slot;
}

/* Records the child of a slot (0: frees it). A child started after
 * submit_stop is stopped at once. */
static void set_slot(struct submit *sm, int slot, pid_t pid)
{
	pthread_mutex_lock(sm->lock);
	sm->running[slot] = pid;
	if (pid > 0 && sm->stopping)
		kill(pid, SIGTERM);
	pthread_mutex_unlock(sm->lock);
}

void submit_free(struct submit *sm, struct submit_job *jb)
{
	if (!jb)
		return;
	if (jb->slot >= 0)
		set_slot(sm, jb->slot, 0);
	sv_release(&jb->argv);
	sv_release(&jb->inputs);
	sv_release(&jb->outputs);
	sv_release(&jb->envs);
	free(jb->timeout);
	sb_release(&jb->wd);
	free(jb);
}

void submit_run(struct submit *sm, struct submit_job *jb, unsigned *status, struct strbuf *out)
{
	struct strvec av = STRVEC_INIT, env = STRVEC_INIT;
	struct strbuf tmp = STRBUF_INIT, prefix = STRBUF_INIT, last = STRBUF_INIT;
	char hash[OID_HEX];
	int fd = -1, wst = 0, hit = 0, resolved = 0;
	pid_t pid;
	sb_reset(out);
	exec_argv(sm, jb, &av);
	child_env(jb, &env);
	/* the child's stderr: an unlinked file, read back once it exits */
	sb_addf(&tmp, "%s/submit-XXXXXX", store_tmpdir(sm->st));
	fd = mkostemp(tmp.buf, O_CLOEXEC);
	if (fd >= 0)
		unlink(tmp.buf);
	pid = fd < 0 ? -1 : spawn(&av, &env, jb->wd.buf, fd);
	if (pid < 0) {
		set_error(status, out, 500, "cannot start cashet exec");
		goto out;
	}
	set_slot(sm, jb->slot, pid);
	while (waitpid(pid, &wst, 0) < 0 && errno == EINTR)
		;
	set_slot(sm, jb->slot, 0);
	jb->slot = -1;
	int code = WIFEXITED(wst) ? WEXITSTATUS(wst) : 128 + WTERMSIG(wst);
	read_verdict(fd, &prefix, &hit, &last);
	if (prefix.len) {
		pthread_mutex_lock(sm->lock);
		resolved = store_resolve(sm->st, prefix.buf, hash) == 0;
		pthread_mutex_unlock(sm->lock);
	}
	*status = 200;
	sb_addc(out, '{');
	if (jb->step) {
		sb_adds(out, "\"step\":");
		json_str(out, jb->step->name);
		sb_addc(out, ',');
	}
	sb_addf(out, "\"status\":\"%s\",\"exit\":%d,\"run\":", code ? "failed" : hit ? "hit" : "ran", code);
	if (resolved)
		sb_addf(out, "\"%s\"", hash);
	else
		sb_adds(out, "null");
	if (code && !resolved && last.len) {
		/* exec's own error: nothing ran, or what ran was not stored */
		sb_adds(out, ",\"error\":");
		json_str(out, last.buf);
	}
	sb_addc(out, '}');
out:
	if (fd >= 0)
		close(fd);
	submit_free(sm, jb);
	sv_release(&av);
	sv_release(&env);
	sb_release(&tmp);
	sb_release(&prefix);
	sb_release(&last);
}

struct submit_job *submit_prepare(struct submit *sm, const char *body, size_t len, unsigned *status,
				  struct strbuf *out)
{
	struct json_tokener *tok = json_tokener_new();
	json_object *j = json_tokener_parse_ex(tok, body ? body : "", (int)len);
	struct submit_job *jb = xcalloc(1, sizeof(*jb));
	struct strbuf why = STRBUF_INIT;
	struct strvec missing = STRVEC_INIT;
	unsigned code;
	jb->slot = -1;
	sb_reset(out);
	size_t end = j ? json_tokener_get_parse_end(tok) : 0;
	while (end < len && body[end] && strchr(" \t\r\n", body[end]))
		end++;
	if (!j || json_tokener_get_error(tok) != json_tokener_success || !json_object_is_type(j, json_type_object) ||
	    end != len) {
		set_error(status, out, 400, "the body is not a JSON object");
		goto fail;
	}
	if (parse_job(sm, j, jb, &code, &why) < 0) {
		set_error(status, out, code, why.buf);
		goto fail;
	}
	missing_inputs(jb, &missing);
	if (missing.n) {
		sb_adds(&why, "missing inputs: ");
		for (size_t i = 0; i < missing.n; i++)
			sb_addf(&why, "%s%s", i ? ", " : "", missing.v[i]);
		if (jb->step)
			sb_adds(&why, " (run the steps that make them first)");
		set_error(status, out, 409, why.buf);
		/* and the list itself, for a program */
		sb_setlen(out, out->len - 1);
		sb_adds(out, ",\"missing\":[");
		for (size_t i = 0; i < missing.n; i++) {
			if (i)
				sb_addc(out, ',');
			json_str(out, missing.v[i]);
		}
		sb_adds(out, "]}");
		goto fail;
	}
	jb->slot = take_slot(sm);
	if (jb->slot < 0) {
		set_error(status, out, 503, jb->slot == -2 ? "the server is stopping"
							   : "busy: other submits are running; try again later");
		jb->slot = -1;
		goto fail;
	}
	goto out;
fail:
	submit_free(sm, jb);
	jb = NULL;
out:
	json_object_put(j);
	json_tokener_free(tok);
	sb_release(&why);
	sv_release(&missing);
	return jb;
}
