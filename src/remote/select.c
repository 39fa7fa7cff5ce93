/* exec-remote: the remote (Redis or HTTP) as `cashet exec` uses it. The
 * remote only ever saves runs: whatever goes wrong with it, the command
 * runs and is stored locally, after a single warning naming the remote. */
#include "exec/claim.h"
#include "remote/select.h"
#include "store/gitmod.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One warning, then the remote is off for the rest of the command. */
static void turn_off(struct exec_remote *er)
{
	fprintf(stderr, "cashet: warning: remote %s: %s; working locally\n", remote_url(er->rm), err_msg());
	err_clear();
	remote_close(er->rm);
	er->rm = NULL;
	er->locked = 0;
}

int exec_remote_open(struct exec_remote *er, struct store *st, const char *opt, const struct digest *fp)
{
	struct strbuf url = STRBUF_INIT;
	const struct gitmod *g;
	if (er->rm)
		return 1;
	er->fp = *fp;
	if (opt && *opt) {
		sb_adds(&url, opt);
	} else if (getenv("CASHET_REMOTE") && *getenv("CASHET_REMOTE")) {
		sb_adds(&url, getenv("CASHET_REMOTE"));
	} else if (!(g = gitmod_get()) || g->config(store_dir(st), "remote", NULL, 0, &url) != 0) {
		err_clear(); /* unset (1), or unreadable: no remote */
		sb_release(&url);
		return 0;
	}
	if (remote_open(url.buf, &er->rm) < 0) {
		struct strbuf shown = STRBUF_INIT;
		remote_redact(url.buf, &shown);
		fprintf(stderr, "cashet: warning: remote %s: %s; working locally\n", shown.buf, err_msg());
		sb_release(&shown);
		err_clear();
		sb_release(&url);
		return 0;
	}
	struct claim_owner me;
	claim_self(&me);
	snprintf(er->owner, sizeof(er->owner), "%s:%lld:%lld:%lld", me.host, (long long)me.pid, (long long)me.start,
		 (long long)now_ns());
	sb_release(&url);
	return 1;
}

/* Fetches the run hash into st: 1 fetched, 0 not. */
static int fetch(struct exec_remote *er, struct store *st, const char *hash, int verbose)
{
	int too_big = 0;
	int f = remote_fetch(er->rm, st, &er->fp, hash, &too_big);
	/* tried once: waiting for the lock, only another run counts */
	memcpy(er->seen, hash, OID_HEX);
	if (f < 0) {
		turn_off(er);
		return 0;
	}
	if (too_big)
		fprintf(stderr, "cashet: note: run %.12s on %s is over the size limit; not fetched\n", hash,
			remote_url(er->rm));
	if (f == 1 && verbose)
		fprintf(stderr, "cashet: fetched %.12s from %s\n", hash, remote_url(er->rm));
	return f;
}

int exec_remote_fetch(struct exec_remote *er, struct store *st, int verbose)
{
	char hash[OID_HEX];
	if (!er->rm)
		return 0;
	int h = remote_get_fp(er->rm, &er->fp, hash);
	if (h < 0) {
		turn_off(er);
		return 0;
	}
	return h ? fetch(er, st, hash, verbose) : 0;
}

int exec_remote_lock(struct exec_remote *er, struct store *st, int (*cancelled)(void), int verbose)
{
	char hash[OID_HEX];
	if (!er->rm)
		return 0;
	int l = remote_lock(er->rm, &er->fp, er->owner, er->seen[0] ? er->seen : NULL, cancelled, hash);
	if (l < 0) {
		turn_off(er);
		return 0;
	}
	if (l == 2)
		return 2;
	er->locked = l == 0;
	return l == 1 ? fetch(er, st, hash, verbose) : 0;
}

void exec_remote_heartbeat(struct exec_remote *er)
{
	if (er && er->rm && er->locked && remote_lock_refresh(er->rm, &er->fp, er->owner) < 0)
		turn_off(er);
}

void exec_remote_publish(struct exec_remote *er, struct store *st, const struct run_record *r, int verbose)
{
	uint64_t size = 0;
	if (!er->rm)
		return;
	int p = remote_publish(er->rm, st, r, &size);
	if (p < 0) {
		turn_off(er);
		return;
	}
	if (p == 1) {
		fprintf(stderr, "cashet: note: run %.12s not sent to %s: %s\n", r->hash, remote_url(er->rm), err_msg());
		err_clear();
	} else if (verbose) {
		char sz[32];
		fmt_size(size, sz, sizeof(sz));
		fprintf(stderr, "cashet: sent %.12s to %s (%s)\n", r->hash, remote_url(er->rm), sz);
	}
}

void exec_remote_close(struct exec_remote *er)
{
	if (!er->rm)
		return;
	if (er->locked && remote_unlock(er->rm, &er->fp, er->owner) < 0)
		err_clear(); /* it expires by itself */
	remote_close(er->rm);
	er->rm = NULL;
	er->locked = 0;
}
