/* step: a pipeline step as an exec request, the one translation shared by
 * `pipeline run` and `serve`'s POST /submit, so a step has the same
 * fingerprint whoever runs it. Nothing here depends on who asks. */
#ifndef CASHET_STEP_H
#define CASHET_STEP_H

#include "exec/engine.h"
#include "pipeline/dag.h"

struct step_request {
	struct exec_request req; /* points into the fields below and into the step */
	struct strvec argv;      /* what runs: the step's argv, or sh -c CMD */
	struct strvec env;       /* the base environment with the step's env table set over it */
	struct strbuf cwd, name;
};

/* Fills sr for step s of d: run in its workdir, with base_env (NULL-
 * terminated) plus its env table, stdin /dev/null, streams to out_fd and
 * err_fd. flags are added to the step's own (cache = false: EXEC_NO_CACHE).
 * Returns 0, or -1 (a bad timeout) with err_msg(). Release with
 * step_request_release, also after a failure. */
int step_request_init(struct step_request *sr, const struct dag *d, const struct dag_step *s, char *const *base_env,
		      unsigned flags, int out_fd, int err_fd);
void step_request_release(struct step_request *sr);

#endif
