/* pipeline-step: a pipeline step as the command line of a child `cashet
 * exec` (see pipeline-step.h). The order of the options does not matter to
 * the fingerprint; the values do, so nothing here may depend on who asks. */
#include "pipeline/pipeline-step.h"

#include <string.h>

void pipeline_step_argv(const struct dag_step *s, const char *self, const char *store, const char *mode, int force,
			struct strvec *av)
{
	struct strbuf sb = STRBUF_INIT;
	sv_push(av, self);
	sv_push(av, mode);
	sv_push(av, "--no-stdin");
	sv_push(av, "--store");
	sv_push(av, store);
	if (!strcmp(mode, "exec"))
		sv_push(av, "-v");
	for (size_t k = 0; k < s->inputs.n; k++) {
		sv_push(av, "-i");
		sv_push(av, s->inputs.v[k]);
	}
	for (size_t k = 0; k < s->outputs.n; k++) {
		sv_push(av, "-o");
		sv_push(av, s->outputs.v[k]);
	}
	for (size_t k = 0; k < s->envs.n; k++) {
		sv_push(av, "-e");
		sv_push(av, s->envs.v[k]);
	}
	for (size_t k = 0; k < s->params.n; k++) {
		sv_push(av, "-p");
		sv_push(av, s->params.v[k]);
	}
	if (s->timeout) {
		sv_push(av, "--timeout");
		sv_push(av, s->timeout);
	}
	if (s->retries >= 0) {
		sb_addf(&sb, "%d", s->retries);
		sv_push(av, "--retries");
		sv_push(av, sb.buf);
	}
	for (size_t k = 0; k < s->tags.n; k++) {
		sv_push(av, "-t");
		sv_push(av, s->tags.v[k]);
	}
	sb_reset(&sb);
	sb_addf(&sb, "pipeline/%s", s->name);
	sv_push(av, "--name");
	sv_push(av, sb.buf);
	if (!strcmp(mode, "exec") && !s->cache)
		sv_push(av, "--no-cache");
	if (!strcmp(mode, "exec") && force)
		sv_push(av, "--force");
	sv_push(av, "--");
	if (s->shell) {
		sv_push(av, "sh");
		sv_push(av, "-c");
	}
	for (size_t k = 0; k < s->argv.n; k++)
		sv_push(av, s->argv.v[k]);
	sb_release(&sb);
}

void pipeline_step_workdir(const struct dag *d, const struct dag_step *s, struct strbuf *wd)
{
	sb_reset(wd);
	if (s->workdir[0] != '/')
		sb_addf(wd, "%s/", d->dir);
	sb_adds(wd, s->workdir);
}
