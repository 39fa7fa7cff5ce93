/* submit: POST /submit (see submit.h). A step becomes the very request
 * `cashet pipeline run` gives the engine (pipeline/step.c), so it has the
 * same fingerprint: a step the pipeline ran is a hit here, and the other
 * way round. The engine runs in the request's thread, on a store handle of
 * its own (the server's is shared under its mutex); the verdict comes back
 * as a typed result. */
#include "serve/submit.h"
#include "exec/engine.h"
#include "pipeline/step.h"
#include "util/json.h"

#include <errno.h>
#include <json-c/json.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

extern char **environ;

/* What one request asks for, validated. */
struct submit_job {
	const struct dag_step *step; /* a step, or NULL for an argv */
	struct strvec argv, inputs, outputs, envs;
	int64_t timeout_ms; /* argv only */
	int has_timeout;
	struct strbuf wd; /* where the child runs */
	int slot;         /* its index in running[], -1 none yet */
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
	sm->store = xstrdup(store_dir(st));
	sm->cancel = 0;
	sm->st = st;
	sm->lock = lock;
	memset(sm->running, 0, sizeof(sm->running));
	return 0;
}

void submit_release(struct submit *sm)
{
	free(sm->store);
	sm->store = NULL;
}

void submit_stop(struct submit *sm)
{
	pthread_mutex_lock(sm->lock);
	sm->stopping = 1;
	sm->cancel = 1; /* every running command is stopped, nothing stored */
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
		sb_addf(why, "step '%s' is a sweep: name one expansion ('%s@KEY=VALUE,...') or give its 'matrix'", name,
			name);
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
			if (!t || !*t || parse_duration_ms(t, &jb->timeout_ms) < 0) {
				err_clear();
				sb_adds(why, "'timeout' must be a duration such as \"10m\"");
				return -1;
			}
			jb->has_timeout = 1;
		} else {
			sb_addf(why,
				"unknown key '%s' (expected step and matrix, or argv, inputs, outputs, env and "
				"timeout)",
				key);
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
	if (jb->inputs.n || jb->outputs.n || jb->envs.n || jb->has_timeout) {
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
	path_absolute(sm->dag->dir, jb->step->workdir, &jb->wd);
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

/* A free slot, or -1: SUBMIT_MAX run already, or -2: the server is stopping. */
static int take_slot(struct submit *sm)
{
	int slot = -1;
	pthread_mutex_lock(sm->lock);
	for (int i = 0; i < SUBMIT_MAX && slot < 0; i++)
		if (!sm->running[i]) {
			sm->running[i] = 1;
			slot = i;
		}
	if (sm->stopping && slot >= 0) {
		sm->running[slot] = 0;
		slot = -2;
	}
	pthread_mutex_unlock(sm->lock);
	return slot;
}

void submit_free(struct submit *sm, struct submit_job *jb)
{
	if (!jb)
		return;
	if (jb->slot >= 0) {
		pthread_mutex_lock(sm->lock);
		sm->running[jb->slot] = 0;
		pthread_mutex_unlock(sm->lock);
	}
	sv_release(&jb->argv);
	sv_release(&jb->inputs);
	sv_release(&jb->outputs);
	sv_release(&jb->envs);
	sb_release(&jb->wd);
	free(jb);
}

/* The request for an argv job: run in the server's directory and environment. */
static int argv_request(const struct submit_job *jb, struct exec_request *req)
{
	memset(req, 0, sizeof(*req));
	req->spec.argv = jb->argv.v;
	req->spec.cwd = jb->wd.buf;
	req->spec.env = environ;
	req->spec.inputs = jb->inputs;
	req->spec.outputs = jb->outputs;
	req->spec.envs = jb->envs;
	req->stdin_fd = req->out_fd = req->err_fd = -1;
	req->timeout_ms = jb->timeout_ms;
	req->grace_ms = 5000;
	return 0;
}

void submit_run(struct submit *sm, struct submit_job *jb, unsigned *status, struct strbuf *out)
{
	struct step_request sr;
	struct exec_request *req = &sr.req;
	struct exec_result res;
	struct store *st = NULL;
	int er = -1;
	memset(&sr, 0, sizeof(sr));
	memset(&res, 0, sizeof(res));
	sb_reset(out);
	if (jb->step)
		er = step_request_init(&sr, sm->dag, jb->step, environ, 0, -1, -1);
	else
		er = argv_request(jb, req);
	req->flags |= EXEC_QUIET;
	req->cancel = &sm->cancel;
	/* the remote's warnings and notes are dropped: the client gets the
	 * verdict, and the remote's failure changes nothing in it */
	req->on_notice = NULL;
	if (er == 0)
		er = store_open(sm->store, 0, &st, NULL);
	if (er == 0)
		er = exec_run(st, req, &res);
	if (er < 0) {
		set_error(status, out, 500, err_msg());
		err_clear();
		goto out;
	}
	int code = res.exit_code, replayed = res.verdict == EXEC_HIT || res.verdict == EXEC_WAITED;
	*status = 200;
	sb_addc(out, '{');
	if (jb->step) {
		sb_adds(out, "\"step\":");
		json_str(out, jb->step->name);
		sb_addc(out, ',');
	}
	sb_addf(out, "\"status\":\"%s\",\"exit\":%d,\"run\":", code ? "failed" : replayed ? "hit" : "ran", code);
	json_str_or_null(out, res.run[0] ? res.run : NULL);
	if (code && !res.run[0] && res.note) {
		/* the engine's own error: nothing ran, or what ran was not stored */
		sb_adds(out, ",\"error\":");
		json_str(out, res.note);
	}
	sb_addc(out, '}');
out:
	exec_result_free(&res);
	store_close(st);
	step_request_release(&sr);
	submit_free(sm, jb);
}

struct submit_job *submit_prepare(struct submit *sm, const char *body, size_t len, unsigned *status, struct strbuf *out)
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
		sb_adds(out, ",\"missing\":");
		json_str_array(out, &missing);
		sb_addc(out, '}');
		goto fail;
	}
	jb->slot = take_slot(sm);
	if (jb->slot < 0) {
		set_error(status, out, 503,
			  jb->slot == -2 ? "the server is stopping"
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
