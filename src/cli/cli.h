/* cli: what the subcommands share: the command table's row type, each
 * command's handler and option table, exec's options, and printing errors.
 * main parses a command's options from its table and opens its store, so a
 * handler starts with both ready. Only this layer prints or exits. */
#ifndef CASHET_CLI_H
#define CASHET_CLI_H

#include <stdio.h>

#include "cli/options.h"
#include "key/fp.h"
#include "store/store.h"

struct cli {
	const char *store_opt; /* --store, before or after the command name */
	int version;           /* --version, before the command name */
	struct store *st;      /* opened by main for CMD_STORE commands (main closes it), else NULL */
	const char *name;      /* the command as typed for messages: "log", "pipeline run" */
	int dashdash;          /* how many operands came before a "--"; -1 when there was none */
	char **argv;           /* cashet's own command line, as main got it (exec --stale runs it again) */
};

/* What main does before the handler runs, and how it reads the command line. */
enum cmd_flags {
	CMD_STORE = 1 << 0,        /* open the store (never create one) */
	CMD_STORE_CREATE = 1 << 1, /* open the store, creating it when there is none */
	CMD_STOP = 1 << 2,         /* the options end at the first operand: the rest is a command line */
	CMD_DEFAULT = 1 << 3,      /* the subcommand run when none is named */
	CMD_EXIT_2 = 1 << 4,       /* errors exit 2, not 1 (diff, as diff(1)) */
	CMD_ANY_CONFIG = 1 << 5,   /* the store opens whatever its settings say (config, which mends them) */
};

/* Who signed run hash, for log --signatures and show: appends "signed by
 * ci@example.com" (or "unsigned", ...) to text and, when json is not
 * NULL, ',"signature":"allowed","signer":"ci@example.com"' to it. A check
 * that cannot be made is said in text, not an error. */
void cli_signature(struct store *st, const char *hash, struct strbuf *text, struct strbuf *json);

/* A row of the command table (main.c), or of a command's subcommands. */
struct command {
	const char *name;
	/* opts is the options struct its table describes, filled from the
	 * command line; argv[0..argc) the operands, NULL-terminated. Returns
	 * the exit code, having printed any error. */
	int (*fn)(struct cli *cli, void *opts, int argc, char **argv);
	const struct opt_table *options; /* NULL: none but the global ones */
	unsigned flags;                  /* enum cmd_flags */
	/* The usage line after "[options]", a line per form (the form with a
	 * "--" is for operands after one). It also says how many operands
	 * there may be: WORD one more needed, [WORD] one more allowed, "..."
	 * any number. */
	const char *operands;
	const char *summary;        /* one line: `cashet --help` and under the usage line */
	const struct command *subs; /* `cashet NAME SUB ...` (fn is NULL); a NULL name ends them */
};

/* In the order `cashet --help` lists them; a NULL name ends them. */
extern const struct command commands[];

/* Each command's handler and options, in its cmd-<name>.c. */
int cmd_init(struct cli *cli, void *opts, int argc, char **argv);
int cmd_exec(struct cli *cli, void *opts, int argc, char **argv);
int cmd_why(struct cli *cli, void *opts, int argc, char **argv);
int cmd_log(struct cli *cli, void *opts, int argc, char **argv);
int cmd_show(struct cli *cli, void *opts, int argc, char **argv);
int cmd_diff(struct cli *cli, void *opts, int argc, char **argv);
int cmd_history(struct cli *cli, void *opts, int argc, char **argv);
int cmd_get(struct cli *cli, void *opts, int argc, char **argv);
int cmd_rm(struct cli *cli, void *opts, int argc, char **argv);
int cmd_stats(struct cli *cli, void *opts, int argc, char **argv);
int cmd_reindex(struct cli *cli, void *opts, int argc, char **argv);
int cmd_export(struct cli *cli, void *opts, int argc, char **argv);
int cmd_import(struct cli *cli, void *opts, int argc, char **argv);
int cmd_gc(struct cli *cli, void *opts, int argc, char **argv);
int cmd_clear(struct cli *cli, void *opts, int argc, char **argv);
int cmd_invalidate(struct cli *cli, void *opts, int argc, char **argv);
int cmd_config(struct cli *cli, void *opts, int argc, char **argv);
int cmd_fsck(struct cli *cli, void *opts, int argc, char **argv);
int cmd_push(struct cli *cli, void *opts, int argc, char **argv);
int cmd_pull(struct cli *cli, void *opts, int argc, char **argv);
int cmd_serve(struct cli *cli, void *opts, int argc, char **argv);
extern const struct opt_table cmd_init_options, cmd_exec_options, cmd_why_options, cmd_log_options, cmd_diff_options,
	cmd_history_options, cmd_get_options, cmd_export_options, cmd_import_options, cmd_gc_options, cmd_clear_options,
	cmd_invalidate_options, cmd_config_options, cmd_fsck_options, cmd_pipeline_options, cmd_rm_options,
	cmd_push_options, cmd_pull_options, cmd_serve_options;
extern const struct command cmd_pipeline_subs[], cmd_remote_subs[], cmd_exp_subs[], cmd_metrics_subs[],
	cmd_params_subs[];
/* `pipeline job`, what a Slurm job runs (cmd-pipeline-job.c) */
int cmd_pipeline_job(struct cli *cli, void *opts, int argc, char **argv);
extern const struct opt_table cmd_pipeline_job_options;

/* exec's options; why's and history's too (`history -- CMD`). */
struct exec_opts {
	struct fp_spec spec;     /* -i, -o, -e, -p, --dep, --raw-sources; argv, cwd and env come later */
	struct strvec tags;      /* -t K=V */
	struct strvec metrics;   /* --metrics: outputs read as the run's metrics */
	struct strvec env_files; /* --env-file */
	const char *name;        /* -n */
	const char *remote;      /* --remote URL */
	const char *remote_mode; /* --remote-mode read|read-write */
	int force, no_cache, cache_failures, no_stdin, retries;
	int verbose, explain, json;
	int report_fd; /* --report-fd; -1 for none */
	/* observed inputs: --trace, --env-mode (choices); --auto-outputs,
	 * --strict (EXEC_* bits); --ignore */
	const char *trace, *env_mode;
	unsigned observe;
	struct strvec ignore;
	int64_t ttl_ms, timeout_ms, grace_ms;
	int64_t stale_ms;  /* --stale: replay a run older than this, and refresh it in the background */
	int warm;          /* --warm: refresh in the background, print nothing */
	struct strvec env; /* not an option: the command's environment, ours plus --env-file settings */
};
#define EXEC_OPTS_INIT                                                                                                 \
	{                                                                                                              \
		.report_fd = -1, .grace_ms = 5000                                                                      \
	}

/* exec and why: why is exec --explain. Runs argv[0..argc) as o says. */
int exec_main(struct cli *cli, struct exec_opts *o, int argc, char **argv, int why);
/* Whether any exec option was given (o differs from EXEC_OPTS_INIT). */
int exec_opts_given(const struct exec_opts *o);
/* For `history -- CMD`: the fingerprint the command line cmd would have
 * now, in st, without running it. 0 (r filled: the caller frees it), or -1
 * with err_msg(). */
int exec_cli_fingerprint(struct exec_opts *o, char **cmd, struct store *st, struct run_record *r);

/* gc's report, shared by gc and clear */
void cli_print_gc(const struct gc_report *r, int dry_run);

/* Prints "cashet: <last error>" and returns code. */
int cli_fail(int code);
/* Prints "cashet: <msg>" and returns code. */
int cli_error(int code, const char *fmt, ...) PRINTF_LIKE(2, 3);
/* Usage error for a subcommand: message plus a hint; returns 2. */
int cli_usage(const char *cmd, const char *fmt, ...) PRINTF_LIKE(2, 3);
/* Opens the store --store or the search names (store_find); flags as for
 * store_open: without STORE_CREATE, no store is an error. */
int cli_open_store(struct cli *cli, unsigned flags, struct store **st, int *created);
/* Resolves a user-given hash or prefix and loads the run. Returns 0, or prints and returns an exit code. */
int cli_load_run(struct store *st, const char *prefix, struct run_record *r);

#endif
