/* spawn: running a command (the process side; a "run" is a stored result)
 * with its streams teed to the caller's fds and captured to files, in the
 * directory and environment it is given, timeouts that kill the whole
 * process group, and forwarding of INT/TERM/HUP. */
#ifndef CASHET_SPAWN_H
#define CASHET_SPAWN_H

#include <signal.h>

#include "util/hash.h"
#include "util/util.h"

struct capture {
	char *path;        /* temp file holding the bytes, NULL when there were none
			  * or they are in mem; unlinked by spawn_result_free */
	struct strbuf mem; /* the bytes, while they fit in SPAWN_MEM_MAX */
	struct digest d;
	uint64_t size;
	int error; /* errno of a capture write that failed (a full disk): the
		    * stream still reached the caller, but the file is gone */
};

/* Chunks of the streams' order kept; past them, a replay writes the rest
 * of stdout, then of stderr. */
#define SPAWN_ORDER_MAX 100000

/* A stream of up to this many bytes is kept in memory, not in a file: a
 * capture file created and deleted costs more than a small run on a file
 * system that scans its recently deleted inodes to allocate one (ext4
 * without a journal). As large as the index inlines (store-int.h). */
#define SPAWN_MEM_MAX (64 * 1024)

/* Work for a command that runs a while (fn NULL: none): a command that
 * ends sooner never pays for it. */
struct spawn_later {
	void (*fn)(void *ctx);
	void *ctx;
	int64_t after_ms;
};
#define SPAWN_LATER 2

struct spawn_spec {
	char *const *argv;
	const char *exe;                     /* what argv[0] resolves to (fp_which), or NULL: a PATH search */
	const char *cwd;                     /* NULL: this process's */
	char *const *env;                    /* NULL: this process's */
	int stdin_fd;                        /* -1: inherit */
	int out_fd, err_fd;                  /* where the streams are teed (-1: nowhere) */
	int64_t timeout_ms;                  /* 0: none */
	int64_t grace_ms;                    /* TERM -> KILL delay after a timeout */
	const char *capdir;                  /* where capture files go; NULL: nothing is captured */
	const volatile sig_atomic_t *cancel; /* set: stop as if interrupted by TERM (checked each second) */
	void (*tick)(void *ctx);             /* called about once a second while running */
	void *tick_ctx;
	struct spawn_later later[SPAWN_LATER]; /* each called once if the command still runs after_ms in */
	struct trace *trace;                   /* observe the process tree's file accesses (trace/trace.h), or NULL */
};

struct spawn_result {
	int status;   /* exit code; 128+N if killed by signal N; 124 timeout; 126/127 exec failure */
	int signaled; /* died by a signal */
	int timed_out;
	int interrupted; /* the signal we got and forwarded (INT/TERM/HUP/QUIT), or 0 */
	int64_t duration_ms;
	struct capture out, err;
	/* the order in which out's and err's bytes came (store.h, FILE_STREAMS),
	 * captured when both have some: path NULL otherwise */
	struct capture order;
	char *untraced; /* spec.trace given but the child ran untraced: why (owned) */
};

int spawn_command(const struct spawn_spec *spec, struct spawn_result *o);
void spawn_result_free(struct spawn_result *o);

/* Installs the forwarding handlers; call once before spawn_command. */
void spawn_signals_init(void);
/* The signal received while no child ran (0 if none). */
int spawn_pending_signal(void);

#endif
