/* run: spawning a command with its streams teed to the terminal and
 * captured to files, timeouts that kill the whole process group, and
 * forwarding of INT/TERM/HUP. Also replaying stored streams. */
#ifndef CASHET_RUN_H
#define CASHET_RUN_H

#include "util/hash.h"

struct capture {
	char *path;        /* temp file holding the bytes; unlinked by run_outcome_free */
	struct digest d;
	uint64_t size;
};

struct run_spec {
	char *const *argv;
	int stdin_fd;            /* -1: inherit */
	int64_t timeout_ms;      /* 0: none */
	int64_t grace_ms;        /* TERM -> KILL delay after a timeout */
	const char *capdir;      /* where capture files go */
	int quiet;               /* capture without teeing (replay later) */
	void (*tick)(void *ctx); /* called about once a second while running */
	void *tick_ctx;
};

struct run_outcome {
	int status;        /* exit code; 128+N if killed by signal N; 124 timeout; 126/127 exec failure */
	int signaled;      /* died by a signal */
	int timed_out;
	int interrupted;   /* the signal we got and forwarded (INT/TERM/HUP/QUIT), or 0 */
	int64_t duration_ms;
	struct capture out, err;
};

int run_spawn(const struct run_spec *spec, struct run_outcome *o);
void run_outcome_free(struct run_outcome *o);

/* Installs the forwarding handlers; call once before run_spawn. */
void run_signals_init(void);
/* The signal received while no child ran (0 if none). */
int run_pending_signal(void);

#endif
