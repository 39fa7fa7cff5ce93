/* engine: the exec flow every front end calls in process: fingerprint,
 * look up, read through a remote, claim or wait, run with retries, store,
 * publish. The CLI (`exec`, `why`), the pipeline scheduler and `serve`
 * differ only in the request they build and in what they print from the
 * result; none of them changes its own directory or environment for a
 * command: the request carries both. */
#ifndef CASHET_ENGINE_H
#define CASHET_ENGINE_H

#include "key/fp.h"
#include "key/explain.h"

#include <signal.h>

/* Exit code when cashet itself failed (the command's own codes pass through). */
#define EXEC_EXIT_CASHET 125

enum exec_flags {
	EXEC_FORCE = 1 << 0,          /* run even if cached; the new run replaces it */
	EXEC_NO_CACHE = 1 << 1,       /* run, store nothing */
	EXEC_CACHE_FAILURES = 1 << 2, /* replay failed runs too */
	EXEC_LOOKUP_ONLY = 1 << 3,    /* replay a hit, else return EXEC_MISS without running */
	EXEC_WANT_REASONS = 1 << 4,   /* on a miss, fill result.reasons before running */
	EXEC_QUIET = 1 << 5,          /* capture without teeing (out_fd/err_fd get the streams on replay only) */
	EXEC_NO_TRACE = 1 << 6,       /* --trace=off: the declared key only, nothing observed */
	EXEC_STRICT = 1 << 7,         /* a project file read but not declared fails the run (125) */
	EXEC_AUTO_OUTPUTS = 1 << 8,   /* files written in the project are outputs too */
	EXEC_ENV_STRICT = 1 << 9,     /* the command gets only the declared variables and a base set */
	EXEC_TRACE = 1 << 10,         /* --trace=on: observe even if `config trace off` */
};

struct exec_result;

enum exec_verdict {
	EXEC_MISS,       /* EXEC_LOOKUP_ONLY: not cached, nothing ran */
	EXEC_HIT,        /* replayed a stored run */
	EXEC_WAITED,     /* waited for another process running it, then replayed its run */
	EXEC_RAN,        /* ran and stored */
	EXEC_NOT_STORED, /* ran (or failed to start), nothing stored: no-cache, exec failure, interrupted, store error */
};

struct exec_request {
	struct fp_spec spec; /* argv, cwd, env and the declared inputs and outputs */
	int stdin_fd;        /* -1: /dev/null; a pipe is spooled and hashed, a file hashed, a tty passed through */
	int out_fd, err_fd;  /* where the command's (or the replay's) stdout and stderr go; -1: nowhere */
	unsigned flags;      /* enum exec_flags */
	/* The front end's own descriptor (--report-fd), which the command
	 * inherits but is not its input; 0 or -1: none */
	int report_fd;
	const struct strvec *tags;
	/* Declared outputs (relative to spec.cwd) read after the run as its
	 * metrics (exec/metrics.h) and stored with it; NULL: none. */
	const struct strvec *metrics;
	const struct strvec *ignore; /* paths never taken as observed inputs (--ignore, config) */
	const char *name;
	const char *remote; /* --remote URL, or NULL: $CASHET_REMOTE or the store's setting */
	/* "read" (never write to the remote: no lock, nothing sent) or
	 * "read-write"; NULL: $CASHET_REMOTE_MODE or the store's remote-mode */
	const char *remote_mode;
	int verbose; /* also the remote's notes of what it fetched and sent */
	int retries;
	int64_t ttl_ms, timeout_ms, grace_ms;
	/* A hit on a run that started more than stale_ms ago sets result.stale
	 * (0: never): the front end replays it and has it refreshed. */
	int64_t stale_ms;
	/* Only runs created at or after this (ms) are replayed (0: any): a
	 * refresh runs the command unless, once it holds the claim, a run
	 * made since says another refresh did it already. */
	int64_t fresh_since;
	/* Set by another thread (a stopping server): the command is stopped
	 * as if interrupted, and nothing is stored. */
	const volatile sig_atomic_t *cancel;
	/* Called once on a miss, just before the command starts (the
	 * result holds fp and, with EXEC_WANT_REASONS, the reasons). */
	void (*on_miss)(void *ctx, const struct exec_result *res);
	/* Called before each retry. */
	void (*on_retry)(void *ctx, int status, int attempt, int retries);
	/* What the engine has to say besides the result (the remote's
	 * warnings and notes), one line without the "cashet: " prefix, e.g.
	 * "warning: remote URL: ...; working locally". NULL: dropped. */
	void (*on_notice)(void *ctx, const char *msg);
	void *ctx;
};

struct exec_result {
	enum exec_verdict verdict;
	int exit_code;       /* what the front end exits with */
	int signal;          /* an interrupt received (INT/TERM/HUP), else 0 */
	char run[OID_HEX];   /* the run replayed or stored, "" if none */
	int64_t duration_ms; /* the run's (saved time on a hit) */
	int64_t created_ms;  /* a hit: when the replayed run started */
	int64_t expires_ms;  /* a hit: when the replayed run expires (0: never) */
	int stale;           /* a hit older than request.stale_ms */
	struct digest fp;
	struct strvec reasons; /* EXEC_WANT_REASONS on a miss: what changed */
	char *note;            /* NOT_STORED: why (exec failure, store error); owned */
	/* a traced miss: the input files read to hash them, while the
	 * command ran (exec/prehash.h) and after it exited */
	size_t hashed_during, hashed_after;
};

/* The whole flow on the open store st. Returns 0 with *res filled (any
 * verdict, the command's exit code in res->exit_code), or -1 with
 * err_msg() when cashet itself failed before the command could run
 * (res->exit_code is then EXEC_EXIT_CASHET). Free res with exec_result_free. */
int exec_run(struct store *st, const struct exec_request *req, struct exec_result *res);

/* The warning (a format taking the reason) of a command run uncached
 * because the store cannot be written or opened: one, whichever front end. */
#define EXEC_UNCACHED_WARNING "warning: %s; running the command without caching it"

/* The command alone, for a store that cannot be opened: its streams go
 * straight through (nothing keyed, traced, captured or stored), with the
 * request's environment, stdin, timeout and retries. Returns as exec_run,
 * res->verdict NOT_STORED. */
int exec_run_unstored(const struct exec_request *req, struct exec_result *res);

/* `why`: fingerprints the request and compares it with the store without
 * running anything. Returns 0 with *e filled (explain_free), or -1. */
int exec_explain(struct store *st, const struct exec_request *req, struct explain *e);

/* `history -- CMD`: the record a run of req would have (argv, cwd, parts,
 * fp, line). Returns 0 (caller frees r) or -1. */
int exec_fingerprint(struct store *st, const struct exec_request *req, struct run_record *r);

void exec_result_free(struct exec_result *res);
const char *exec_verdict_name(enum exec_verdict v);
/* The result as one JSON line, for --report-fd and the pipeline's workers. */
void exec_result_json(const struct exec_result *res, struct strbuf *out);

#endif
