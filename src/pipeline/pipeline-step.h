/* pipeline-step: how one step of a pipeline file becomes a child `cashet
 * exec`, shared by `cashet pipeline` and the server's POST /submit, so that
 * a step has one fingerprint however it is started: the same command line,
 * in the same working directory. */
#ifndef CASHET_PIPELINE_STEP_H
#define CASHET_PIPELINE_STEP_H

#include "pipeline/dag.h"

/* Appends to av the command line of the child for step s:
 * `SELF MODE --no-stdin --store STORE [-v] -i ... -o ... -- CMD`. mode is
 * "exec" (which also gets -v, and --force if force) or "why". */
void pipeline_step_argv(const struct dag_step *s, const char *self, const char *store, const char *mode, int force,
			struct strvec *av);

/* Sets wd to the directory step s runs in: its workdir, relative to the
 * pipeline file's directory unless absolute. */
void pipeline_step_workdir(const struct dag *d, const struct dag_step *s, struct strbuf *wd);

#endif
