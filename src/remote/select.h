/* exec-remote: what `cashet exec` does with a remote, Redis or a `cashet
 * serve` server over HTTP (--remote, CASHET_REMOTE, or `cashet config
 * remote`): read-through on a local miss, a cross-machine lock around the
 * run (Redis only), write-through after a store. Any remote failure prints
 * one warning and turns the remote off: the command still runs and is
 * stored locally. */
#ifndef CASHET_EXEC_REMOTE_H
#define CASHET_EXEC_REMOTE_H

#include "remote/remote.h"

struct exec_remote {
	struct remote *rm;     /* NULL: no remote, or turned off after an error */
	struct digest fp;
	char owner[320];       /* host:pid:start:nonce, the lock's value */
	char seen[OID_HEX];    /* a run fetched that could not be replayed */
	int locked;
};

/* Connects to the remote named by opt, else $CASHET_REMOTE, else the store's
 * `remote` setting. Returns 1 if a remote is in use, 0 if not. */
int exec_remote_open(struct exec_remote *er, struct store *st, const char *opt, const struct digest *fp);
/* Read-through: 1 if the fingerprint's run was fetched into st (look it up
 * again), 0 if not. */
int exec_remote_fetch(struct exec_remote *er, struct store *st, int verbose);
/* Takes the cross-machine lock, waiting while another machine runs the
 * command. Returns 0 (run the command: locked, or no remote), 1 if another
 * machine's run was fetched into st (look it up again), 2 if cancelled. */
int exec_remote_lock(struct exec_remote *er, struct store *st, int (*cancelled)(void), int verbose);
/* Called from the run's heartbeat: keeps our lock alive. */
void exec_remote_heartbeat(struct exec_remote *er);
/* Write-through of a stored run (notes on stderr when skipped). */
void exec_remote_publish(struct exec_remote *er, struct store *st, const struct run_record *r, int verbose);
/* Releases the lock if held and disconnects. */
void exec_remote_close(struct exec_remote *er);

#endif
