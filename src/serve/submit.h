/* submit: POST /submit of `cashet serve`, running one step of the pipeline
 * file the server was started with (or, with --allow-exec, a given argv) as
 * a child `cashet exec`, exactly as `cashet pipeline run` would. Knows no
 * HTTP: it turns a request body into a status and a JSON answer. */
#ifndef CASHET_SUBMIT_H
#define CASHET_SUBMIT_H

#include <pthread.h>
#include <sys/types.h>

#include "pipeline/dag.h"
#include "store/store.h"

/* At most this many submits run at once; more are answered 503, so that
 * the server's other threads stay free for reads. */
#define SUBMIT_MAX 2
/* A submit body is a small JSON object, whatever --max-body says. */
#define SUBMIT_MAX_BODY (1024 * 1024)

struct submit {
	struct dag *dag;	/* --pipeline, or NULL: steps are refused (404) */
	int allow_exec;		/* --allow-exec: an argv may be run too */
	char *self;		/* this binary, run as `cashet exec`; owned */
	char *store;		/* the store directory passed to every child; owned */
	struct store *st;	/* the server's store: only for resolving run hashes */
	pthread_mutex_t *lock;	/* the server's store mutex, held only for that */
	/* under *lock: */
	pid_t running[SUBMIT_MAX]; /* a child's pid, -1 taken but not started, 0 free */
	int stopping;		/* submit_stop was called: refuse (503) and kill */
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

/* Runs the job as a child `cashet exec`, waits for it, and frees the job:
 * *status is 200 (whatever the command's exit) or 500, out the JSON answer.
 * Called without the lock, which it takes only to resolve the run's hash. */
void submit_run(struct submit *sm, struct submit_job *jb, unsigned *status, struct strbuf *out);
void submit_free(struct submit *sm, struct submit_job *jb);

/* The server is stopping: later submits are refused and every running
 * child gets TERM (`cashet exec` passes it on and stores nothing). */
void submit_stop(struct submit *sm);

#endif
