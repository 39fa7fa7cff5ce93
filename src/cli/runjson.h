/* runjson: the JSON that describes runs and the store, shared by the
 * commands that print it (log, show, stats --json) and by serve, so the
 * command line and the HTTP API never disagree on a field. */
#ifndef CASHET_RUNJSON_H
#define CASHET_RUNJSON_H

#include "store/store.h"

/* One `cashet log --json` entry: hash, created, status, exit, duration_ms, name, cmd, tags. */
void runjson_log(struct strbuf *sb, const struct run_record *r);
/* `cashet show --json`: everything recorded about a fully loaded run. */
void runjson_show(struct strbuf *sb, const struct run_record *r);
/* `cashet stats --json` for the store at dir. */
void runjson_stats(struct strbuf *sb, const char *dir, const struct store_stats *s);

#endif
