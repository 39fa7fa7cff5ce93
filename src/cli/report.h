/* report: `pipeline report`'s page, made by cmd-report.c for cmd-pipeline.c. */
#ifndef CASHET_REPORT_H
#define CASHET_REPORT_H

#include "pipeline/dag.h"
#include "store/store.h"

/* Appends the HTML page about d (the steps want marks) to page: st (NULL:
 * no store yet) gives each step's state and the experiments, store_dir the
 * last run's record. metric: the plotted one (NULL: the first). 0 or -1. */
int report_write(const struct dag *d, struct store *st, const char *store_dir, const unsigned char *want,
		 const char *metric, struct strbuf *page);

#endif
