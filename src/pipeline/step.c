/* step: a pipeline step as an exec request (see step.h). The command line
 * of a string cmd is `sh -c CMD`; the workdir is relative to the pipeline
 * file's directory; the run is named pipeline/<step>. */
#include "pipeline/step.h"

#include <stdlib.h>
#include <string.h>

int step_request_init(struct step_request *sr, const struct dag *d, const struct dag_step *s, char *const *base_env,
		      unsigned flags, int out_fd, int err_fd)
{
	struct exec_request *req = &sr->req;
	memset(sr, 0, sizeof(*sr));
	if (s->shell) {
		sv_push(&sr->argv, "sh");
		sv_push(&sr->argv, "-c");
	}
	for (size_t k = 0; k < s->argv.n; k++)
		sv_push(&sr->argv, s->argv.v[k]);
	env_merge(base_env, &s->env_set, &sr->env);
	path_absolute(d->dir, s->workdir, &sr->cwd);
	sb_addf(&sr->name, "pipeline/%s", s->name);

	req->spec.argv = sr->argv.v;
	req->spec.cwd = sr->cwd.buf;
	req->spec.env = sr->env.v;
	/* shallow copies: the step owns them */
	req->spec.inputs = s->inputs;
	req->spec.outputs = s->outputs;
	req->spec.envs = s->envs;
	req->spec.params = s->params;
	req->stdin_fd = -1;
	req->out_fd = out_fd;
	req->err_fd = err_fd;
	req->flags = flags | (s->cache ? 0 : EXEC_NO_CACHE) | (s->trace ? 0 : EXEC_NO_TRACE) |
		     (s->auto_outputs ? EXEC_AUTO_OUTPUTS : 0) | (s->strict ? EXEC_STRICT : 0);
	req->ignore = &s->ignore;
	req->tags = &s->tags;
	req->metrics = &s->metrics;
	req->name = sr->name.buf;
	req->retries = s->retries > 0 ? s->retries : 0;
	req->grace_ms = 5000;
	if (s->timeout && parse_duration_ms(s->timeout, &req->timeout_ms) < 0)
		return err_set("step %s: timeout: %s", s->name, err_msg());
	return 0;
}

void step_request_release(struct step_request *sr)
{
	sv_release(&sr->argv);
	sv_release(&sr->env);
	sb_release(&sr->cwd);
	sb_release(&sr->name);
}
