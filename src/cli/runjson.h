/* runjson: the JSON that describes runs and the store, shared by the
 * commands that print it (log, show, stats --json) and by serve, so the
 * command line and the HTTP API never disagree on a field. */
#ifndef CASHET_RUNJSON_H
#define CASHET_RUNJSON_H

#include "cli/options.h"
#include "store/store.h"

/* The lone --json of show and stats. */
struct json_opts {
	int json;
};
extern const struct opt_table runjson_options;

/* "stdout", "stderr", "order", "output", "dir" or "source": a run file's kind (enum file_kind) as JSON and show name it. */
const char *runjson_kind_name(int kind);
/* One `cashet log --json` entry: hash, created, status, exit, duration_ms, name, cmd, tags. */
void runjson_log(struct strbuf *sb, const struct run_record *r);
/* `cashet show --json`: everything recorded about a fully loaded run. */
void runjson_show(struct strbuf *sb, const struct run_record *r);
/* `cashet stats --json` for the store at dir. */
void runjson_stats(struct strbuf *sb, const char *dir, const struct store_stats *s);

#endif
