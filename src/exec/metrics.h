/* metrics: the numbers a run reports about itself, read from its --metrics
 * files once it has run (JSON, TOML, or the last row of a CSV), nested keys
 * flattened to "train.loss". They describe a result and never select one:
 * no metric is part of a fingerprint. */
#ifndef CASHET_METRICS_H
#define CASHET_METRICS_H

#include "util/util.h"

/* Reads the scalars of the metrics file at path (shown names it in
 * messages) and sets each in out as "key=value" (a key already there gets
 * the new value). The format is the file's extension (.json, .toml, .csv,
 * .tsv), else what its first byte suggests ('{' JSON, else TOML if a line
 * has '=', else CSV). Arrays and null are skipped; a key holding '=' too.
 * Returns 0, or -1 with err_msg() naming the file (and line). */
int metrics_read(const char *path, const char *shown, struct strvec *out);

/* Sets key=value in v ("key=value" strings), replacing an earlier value. */
void metrics_set(struct strvec *v, const char *key, const char *value);

/* The value of key in v, or NULL. */
const char *metrics_get(const struct strvec *v, const char *key);

#endif
