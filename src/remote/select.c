/* exec-remote: the remote as `cashet exec` uses it, whatever its backend.
 * The remote only ever saves runs: whatever goes wrong with it, the command
 * runs and is stored locally, after a single warning naming the remote.
 * Warnings and notes go to er->notice: this layer does not print. */
#include "exec/claim.h"
#include "remote/select.h"
#include "store/gitmod.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void notice(const struct exec_remote *er, const char *fmt, ...) PRINTF_LIKE(2, 3);
static void notice(const struct exec_remote *er, const char *fmt, ...)
{
	struct strbuf msg = STRBUF_INIT;
	va_list ap;
	if (!er->notice)
		return;
	va_start(ap, fmt);
	sb_vaddf(&msg, fmt, ap);
	va_end(ap);
	er->notice(er->ctx, msg.buf);
	sb_release(&msg);
}

/* One warning, then the remote is off for the rest of the command. */
static void turn_off(struct exec_remote *er)
{
	notice(er, "warning: remote %s: %s; working locally", remote_url(er->rm), err_msg());
	err_clear();
	remote_close(er->rm);
	er->rm = NULL;
	er->locked = 0;
}

/* Whether the remote is only read from: the option, else the environment,
 * else the store's setting. A pull request's job sets read, so that what
 * it runs never reaches the cache the main branch's jobs replay. */
static int read_only_mode(struct store *st, const char *opt)
{
	struct strbuf v = STRBUF_INIT;
	const char *env = getenv("CASHET_REMOTE_MODE");
	int ro;
	if (opt && *opt)
		ro = !strcmp(opt, "read");
	else if (env && *env)
		ro = !strcmp(env, "read");
	else
		ro = store_setting(st, "remote-mode", &v) && !strcmp(v.buf, "read");
	sb_release(&v);
	return ro;
}

int exec_remote_open(struct exec_remote *er, struct store *st, const char *opt, const char *mode,
		     const struct digest *fp)
{
	struct strbuf url = STRBUF_INIT;
	if (er->rm)
		return 1;
	er->fp = *fp;
	er->read_only = read_only_mode(st, mode);
	if (opt && *opt) {
		sb_adds(&url, opt);
	} else if (getenv("CASHET_REMOTE") && *getenv("CASHET_REMOTE")) {
		sb_adds(&url, getenv("CASHET_REMOTE"));
	} else if (!store_setting_user(st, "remote", &url)) {
		/* read from the config files: a miss without a remote never loads libgit2 */
		sb_release(&url);
		return 0;
	}
	if (remote_open(url.buf, &er->rm) < 0) {
		struct strbuf shown = STRBUF_INIT;
		remote_redact(url.buf, &shown);
		notice(er, "warning: remote %s: %s; working locally", shown.buf, err_msg());
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
static int fetch(struct exec_remote *er, struct store *st, const char *hash)
{
	int too_big = 0;
	int f = remote_fetch(er->rm, st, &er->fp, hash, &too_big);
	/* tried once: waiting for the lock, only another run counts */
	memcpy(er->seen, hash, OID_HEX);
	if (f < 0 && err_code() == E_UNTRUSTED) {
		/* the remote works; this run is not replayed, never indexed */
		notice(er, "note: %s on %s; not replayed", err_msg(), remote_url(er->rm));
		err_clear();
		return 0;
	}
	if (f < 0) {
		turn_off(er);
		return 0;
	}
	if (too_big)
		notice(er, "note: run %.12s on %s is over the size limit; not fetched", hash, remote_url(er->rm));
	if (f == 1 && er->verbose)
		notice(er, "fetched %.12s from %s", hash, remote_url(er->rm));
	return f;
}

int exec_remote_fetch(struct exec_remote *er, struct store *st)
{
	struct strvec hashes = STRVEC_INIT;
	int got = 0;
	if (!er->rm)
		return 0;
	if (remote_get_fps(er->rm, &er->fp, &hashes) < 0) {
		turn_off(er);
		goto out;
	}
	/* every candidate: the local lookup then replays the one whose
	 * observed inputs are unchanged here (each is checked on import) */
	for (size_t i = 0; i < hashes.n && er->rm; i++)
		got |= fetch(er, st, hashes.v[i]);
out:
	sv_release(&hashes);
	return got;
}

int exec_remote_lock(struct exec_remote *er, struct store *st, int (*cancelled)(void))
{
	char hash[OID_HEX];
	/* read-only: a lock is a write; two readers that miss both run */
	if (!er->rm || er->read_only)
		return 0;
	int l = remote_lock(er->rm, &er->fp, er->owner, er->seen[0] ? er->seen : NULL, cancelled, hash);
	if (l < 0) {
		turn_off(er);
		return 0;
	}
	if (l == 2)
		return 2;
	er->locked = l == 0;
	return l == 1 ? fetch(er, st, hash) : 0;
}

void exec_remote_heartbeat(struct exec_remote *er)
{
	if (er && er->rm && er->locked && remote_lock_refresh(er->rm, &er->fp, er->owner) < 0)
		turn_off(er);
}

void exec_remote_publish(struct exec_remote *er, struct store *st, const struct run_record *r)
{
	uint64_t size = 0;
	/* a failure is shared only when failures are replayed, as locally */
	if (!er->rm || !(r->ok || er->cache_failures))
		return;
	if (er->read_only) {
		if (er->verbose)
			notice(er, "run %.12s not sent to %s: remote-mode is read", r->hash, remote_url(er->rm));
		return;
	}
	int p = remote_publish(er->rm, st, r, &size);
	if (p < 0) {
		turn_off(er);
		return;
	}
	if (p == 1) {
		notice(er, "note: run %.12s not sent to %s: %s", r->hash, remote_url(er->rm), err_msg());
		err_clear();
	} else if (er->verbose) {
		char sz[32];
		fmt_size(size, sz, sizeof(sz));
		notice(er, "sent %.12s to %s (%s)", r->hash, remote_url(er->rm), sz);
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
