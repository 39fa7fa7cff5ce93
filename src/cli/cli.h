/* cli: what the subcommands share: the command table entry type, opening
 * the store for reading, and formatting. Only this layer prints or exits. */
#ifndef CASHET_CLI_H
#define CASHET_CLI_H

#include <stdio.h>

#include "store.h"

struct cli {
	const char *store_opt; /* global --store */
};

struct command {
	const char *name;
	int (*fn)(struct cli *cli, int argc, char **argv);
	const char *summary;
};

extern const struct command commands[];

int cmd_init(struct cli *cli, int argc, char **argv);
int cmd_exec(struct cli *cli, int argc, char **argv);
int cmd_why(struct cli *cli, int argc, char **argv);
/* exec and why share options; why = exec --explain. */
int exec_main(struct cli *cli, int argc, char **argv, int why);
int cmd_log(struct cli *cli, int argc, char **argv);
int cmd_show(struct cli *cli, int argc, char **argv);
int cmd_get(struct cli *cli, int argc, char **argv);
int cmd_rm(struct cli *cli, int argc, char **argv);
int cmd_stats(struct cli *cli, int argc, char **argv);
int cmd_reindex(struct cli *cli, int argc, char **argv);

/* Prints "cashet: <last error>" and returns code. */
int cli_fail(int code);
/* Prints "cashet: <msg>" and returns code. */
int cli_error(int code, const char *fmt, ...) PRINTF_LIKE(2, 3);
/* Usage error for a subcommand: message plus a hint; returns 2. */
int cli_usage(const char *cmd, const char *fmt, ...) PRINTF_LIKE(2, 3);
/* Opens an existing store (never creates one). */
int cli_open_store(struct cli *cli, struct store **st);
/* Resolves a user-given hash or prefix and loads the run. Returns 0, or prints and returns an exit code. */
int cli_load_run(struct store *st, const char *prefix, struct run_record *r);

void fmt_time(int64_t ms, char *buf, size_t len);     /* local "YYYY-MM-DD HH:MM:SS" */
void fmt_iso_time(int64_t ms, char *buf, size_t len); /* UTC ISO 8601 */
void fmt_size(uint64_t bytes, char *buf, size_t len); /* 1.2K, 3.4M */
void fmt_duration(int64_t ms, char *buf, size_t len); /* 12ms, 1.5s, 2m03s */

#endif
