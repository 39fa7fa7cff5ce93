/* exec-remote: what `cashet exec` does with a remote (--remote,
 * CASHET_REMOTE, or `cashet config remote`): read-through on a local miss,
 * a cross-machine lock around the run where the backend has one,
 * write-through after a store. Any remote failure gives one warning and
 * turns the remote off, so a command never waits for it twice: the command
 * still runs and is stored locally. Nothing here prints: warnings and notes
 * go to the caller's notice hook. */
#ifndef CASHET_EXEC_REMOTE_H
#define CASHET_EXEC_REMOTE_H

#include "remote/remote.h"

struct exec_remote {
	/* set by the caller before exec_remote_open */
	void (*notice)(void *ctx, const char *msg); /* a line without "cashet: "; NULL: dropped */
	void *ctx;
	int verbose;        /* also say what was fetched and sent */
	int cache_failures; /* failed runs are sent too */
	int read_only;      /* set by exec_remote_open from the remote mode: no lock, nothing sent */

	struct remote *rm; /* NULL: no remote, or turned off after an error */
	struct digest fp;
	char owner[320];    /* host:pid:start:nonce, the lock's value */
	char seen[OID_HEX]; /* a run fetched that could not be replayed */
	int locked;
};

/* Connects to the remote named by opt, else $CASHET_REMOTE, else the store's
 * `remote` setting, in the mode mode names ("read" or "read-write"), else
 * $CASHET_REMOTE_MODE, else the store's `remote-mode` (default read-write).
 * Returns 1 if a remote is in use, 0 if not. */
int exec_remote_open(struct exec_remote *er, struct store *st, const char *opt, const char *mode,
		     const struct digest *fp);
/* Read-through: 1 if the fingerprint's run was fetched into st (look it up
 * again), 0 if not. */
int exec_remote_fetch(struct exec_remote *er, struct store *st);
/* Takes the cross-machine lock, waiting while another machine runs the
 * command. Returns 0 (run the command: locked, or no lock), 1 if another
 * machine's run was fetched into st (look it up again), 2 if cancelled. */
int exec_remote_lock(struct exec_remote *er, struct store *st, int (*cancelled)(void));
/* Called from the run's heartbeat: keeps our lock alive. */
void exec_remote_heartbeat(struct exec_remote *er);
/* Write-through of the stored run r, if it is ok or failures are cached
 * (a note when it cannot be sent). */
void exec_remote_publish(struct exec_remote *er, struct store *st, const struct run_record *r);
/* Releases the lock if held and disconnects. */
void exec_remote_close(struct exec_remote *er);

#endif
