/* cli: what the subcommands share: the command table entry type, opening
 * the store for reading, and formatting. Only this layer prints or exits. */
#ifndef CASHET_CLI_H
#define CASHET_CLI_H

#include <stdio.h>

#include "store/store.h"

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
/* For `history -- CMD`: parses exec's options (argv[0] names the caller),
 * opens the store and fingerprints the command without running it. Returns
 * 0 (*st and r filled: caller closes and frees) or an exit code, already
 * printed: 2 usage, 1 error, 0 with *st NULL after --help. */
int exec_cli_fingerprint(struct cli *cli, int argc, char **argv, struct store **st, struct run_record *r,
			 int *cache_failures);
int cmd_diff(struct cli *cli, int argc, char **argv);
int cmd_history(struct cli *cli, int argc, char **argv);
int cmd_log(struct cli *cli, int argc, char **argv);
int cmd_show(struct cli *cli, int argc, char **argv);
int cmd_get(struct cli *cli, int argc, char **argv);
int cmd_rm(struct cli *cli, int argc, char **argv);
int cmd_stats(struct cli *cli, int argc, char **argv);
int cmd_reindex(struct cli *cli, int argc, char **argv);
int cmd_export(struct cli *cli, int argc, char **argv);
int cmd_import(struct cli *cli, int argc, char **argv);
int cmd_gc(struct cli *cli, int argc, char **argv);
int cmd_clear(struct cli *cli, int argc, char **argv);
int cmd_invalidate(struct cli *cli, int argc, char **argv);
int cmd_config(struct cli *cli, int argc, char **argv);
int cmd_fsck(struct cli *cli, int argc, char **argv);
int cmd_pipeline(struct cli *cli, int argc, char **argv);
int cmd_remote(struct cli *cli, int argc, char **argv);
int cmd_push(struct cli *cli, int argc, char **argv);
int cmd_pull(struct cli *cli, int argc, char **argv);
int cmd_serve(struct cli *cli, int argc, char **argv);

/* gc's report, shared by gc and clear */
void cli_print_gc(const struct gc_report *r, int dry_run);

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

#endif
