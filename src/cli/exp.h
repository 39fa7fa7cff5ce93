/* exp: what `exp show`, `metrics diff`, `params diff` and the pipeline
 * report read from a run besides its metrics: its parameters and its
 * label. */
#ifndef CASHET_EXP_H
#define CASHET_EXP_H

#include "store/store.h"

/* A run's parameters as "key=value" (appended to out): a sweep point's
 * matrix values (from its step name, "train@lr=0.1": lr), each --param
 * value (its KEY: "train.lr"), each -e variable ("env.SEED"). */
void exp_run_params(const struct run_record *r, struct strvec *out);
/* The run's name without "pipeline/"; "" if it has none. */
const char *exp_run_label(const struct run_record *r);
/* 1 if s is a whole finite number (*d set), 0 if not. */
int exp_number(const char *s, double *d);

/* The report's experiments of pipeline (a dag.toml): the table as HTML
 * (appended to table) and an SVG plot of metric (NULL: the first) against
 * the sweep's parameter or the runs' order (appended to plot). 0 or -1. */
int exp_html(struct store *st, const char *pipeline, const char *metric, struct strbuf *table, struct strbuf *plot);
/* Appends s with <, >, & and " escaped. */
void exp_html_text(struct strbuf *sb, const char *s);

#endif
