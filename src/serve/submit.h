/* submit: POST /submit of `cashet serve`, running one step of the pipeline
 * file the server was started with (or, with --allow-exec, a given argv)
 * through the exec engine, exactly as `cashet pipeline run` would. Knows no
 * HTTP: it turns a request body into a status and a JSON answer. */
#ifndef CASHET_SUBMIT_H
#define CASHET_SUBMIT_H

#include <pthread.h>
#include <signal.h>
#include <sys/types.h>

#include "pipeline/dag.h"
#include "store/store.h"

/* At most this many submits run at once; more are answered 503, so that
 * the server's other threads stay free for reads. */
#define SUBMIT_MAX 2
/* A submit body is a small JSON object, whatever --max-body says. */
#define SUBMIT_MAX_BODY (1024 * 1024)

struct submit {
	struct dag *dag;              /* --pipeline, or NULL: steps are refused (404) */
	int allow_exec;               /* --allow-exec: an argv may be run too */
	char *store;                  /* the store directory each submit opens for itself; owned */
	struct store *st;             /* the server's store */
	pthread_mutex_t *lock;        /* the server's store mutex, held only to take a slot */
	volatile sig_atomic_t cancel; /* submit_stop: running commands stop */
	/* under *lock: */
	int running[SUBMIT_MAX]; /* 1 taken, 0 free */
	int stopping;            /* submit_stop was called: refuse (503) */
};

struct submit_job;

/* Fills sm for the server's store st and lock; dag and allow_exec are
 * set by the caller. Returns 0, or -1 with err_msg(). */
int submit_init(struct submit *sm, struct store *st, pthread_mutex_t *lock);
void submit_release(struct submit *sm);

/* Reads and checks one POST /submit body. Returns the job to run, which
 * holds one of the SUBMIT_MAX slots until given to submit_run or
 * submit_free; or NULL, with *status (400, 403, 404, 409, 503) and out the
 * JSON answer. Takes the lock only to take a slot. */
struct submit_job *submit_prepare(struct submit *sm, const char *body, size_t len, unsigned *status,
				  struct strbuf *out);

/* Runs the job through the engine, waits for it, and frees the job:
 * *status is 200 (whatever the command's exit) or 500, out the JSON answer.
 * Called without the lock. */
void submit_run(struct submit *sm, struct submit_job *jb, unsigned *status, struct strbuf *out);
void submit_free(struct submit *sm, struct submit_job *jb);

/* The server is stopping: later submits are refused and every running
 * command gets TERM (within a second) and stores nothing. */
void submit_stop(struct submit *sm);

#endif
