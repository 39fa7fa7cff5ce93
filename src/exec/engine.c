/* engine: the exec flow, top to bottom in exec_run(): fingerprint, look up
 * and replay; read through a remote; claim the fingerprint or wait for the
 * process that holds it; run with retries; store; publish; bound the store's
 * size. It prints nothing: what a front end shows comes from the result and
 * the request's hooks. The command runs in req->spec.cwd with
 * req->spec.env, so callers never change their own directory or environment. */
#include "exec/engine.h"
#include "exec/claim.h"
#include "exec/spawn.h"
#include "remote/select.h"
#include "store/gitmod.h"
#include "store/outputs.h"
#include "util/json.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

const char *exec_verdict_name(enum exec_verdict v)
{
	switch (v) {
	case EXEC_MISS:
		return "miss";
	case EXEC_HIT:
		return "hit";
	case EXEC_WAITED:
		return "waited";
	case EXEC_RAN:
		return "ran";
	case EXEC_NOT_STORED:
		return "not-stored";
	}
	return "?";
}

void exec_result_free(struct exec_result *res)
{
	sv_release(&res->reasons);
	free(res->note);
	res->note = NULL;
}

void exec_result_json(const struct exec_result *res, struct strbuf *out)
{
	char fp[DIGEST_HEX];
	digest_hex(&res->fp, fp);
	sb_addf(out, "{\"verdict\":\"%s\",\"exit\":%d,\"run\":", exec_verdict_name(res->verdict), res->exit_code);
	json_str_or_null(out, res->run[0] ? res->run : NULL);
	sb_addf(out, ",\"fp\":\"%s\",\"duration_ms\":%lld,\"signal\":%d,\"note\":", fp, (long long)res->duration_ms,
		res->signal);
	json_str_or_null(out, res->note);
	sb_adds(out, ",\"reasons\":");
	json_str_array(out, &res->reasons);
	sb_adds(out, "}\n");
}

/* Stdin is part of the input when it is a pipe or a file. A pipe is spooled
 * to an unlinked temp file so it can be hashed and still given to the child.
 * *hashed is the fd to hash (-1: none), *child what the command gets (-1:
 * inherit, which keeps a terminal's foreground handling); *spooled an fd
 * the caller closes. */
static int prepare_stdin(struct store *st, int fd, int *hashed, int *child, int *spooled)
{
	struct stat sb;
	*hashed = *child = *spooled = -1;
	if (fd < 0) {
		*child = *spooled = open("/dev/null", O_RDONLY | O_CLOEXEC);
		return *child < 0 ? err_sys("/dev/null") : 0;
	}
	if (fstat(fd, &sb) < 0 || isatty(fd) ||
	    (!S_ISREG(sb.st_mode) && !S_ISFIFO(sb.st_mode) && !S_ISSOCK(sb.st_mode))) {
		/* a terminal, /dev/null, other devices: nothing to hash */
		*child = fd == STDIN_FILENO ? -1 : fd;
		return 0;
	}
	if (S_ISREG(sb.st_mode)) {
		*hashed = *child = fd;
		return 0;
	}
	int tmp = open(store_tmpdir(st), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (tmp < 0)
		return err_sys("cannot spool stdin in %s", store_tmpdir(st));
	char buf[65536];
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 || (n > 0 && write_all(tmp, buf, (size_t)n) < 0)) {
			close(tmp);
			return err_sys(n < 0 ? "cannot read stdin" : "cannot spool stdin");
		}
		if (n == 0)
			break;
	}
	lseek(tmp, 0, SEEK_SET);
	*hashed = *child = *spooled = tmp;
	return 0;
}

/* An empty environment (a NULL vector, as an empty strvec has). */
static char *const no_env[] = { NULL };

/* The fingerprint: what every front end's key must agree on. */
static int fingerprint(struct store *st, const struct exec_request *req, int stdin_hashed, struct run_record *r)
{
	struct fp_spec spec = req->spec;
	spec.stdin_fd = stdin_hashed;
	if (!spec.env)
		spec.env = no_env;
	if (!spec.cwd || spec.cwd[0] != '/')
		return err_set("internal: a request needs an absolute working directory");
	if (fp_compute(st, &spec, r) < 0 || store_flush_statcache(st) < 0)
		return -1;
	return 0;
}

int exec_fingerprint(struct store *st, const struct exec_request *req, struct run_record *r)
{
	int hashed, child, spooled, rc = -1;
	if (prepare_stdin(st, req->stdin_fd, &hashed, &child, &spooled) < 0)
		return -1;
	rc = fingerprint(st, req, hashed, r);
	if (spooled >= 0)
		close(spooled);
	return rc;
}

int exec_explain(struct store *st, const struct exec_request *req, struct explain *e)
{
	struct run_record r = { 0 };
	int rc = exec_fingerprint(st, req, &r);
	if (rc == 0)
		rc = explain_run(st, &r, !!(req->flags & EXEC_CACHE_FAILURES), now_ms(), e);
	run_record_free(&r);
	return rc;
}

/* Replays a stored run, its streams to out_fd and err_fd (-1: read and
 * verified, not written). Everything is read and verified before the first
 * byte is written, so a corrupt object degrades to a miss, not to garbage.
 * Returns 0 replayed, -1 if the run cannot be replayed (corrupt/missing).
 * A stream that cannot be written (a closed pipe: `| head`) is not
 * cashet's failure. */
static int replay(struct store *st, const struct run_record *r, int out_fd, int err_fd)
{
	struct strbuf streams[2] = { STRBUF_INIT, STRBUF_INIT };
	int fds[2] = { out_fd, err_fd }, rc = -1;
	for (size_t i = 0; i < r->nfiles; i++) {
		const struct run_file *f = &r->files[i];
		if ((f->kind == FILE_STDOUT || f->kind == FILE_STDERR) && store_blob_read(st, f, &streams[f->kind]) < 0)
			goto out;
	}
	if (outputs_restore(st, r) < 0)
		goto out;
	for (int k = 0; k < 2; k++)
		if (fds[k] >= 0 && streams[k].len && write_all(fds[k], streams[k].buf, streams[k].len) < 0)
			break;
	if (store_touch(st, r, now_ms()) < 0)
		err_clear(); /* LRU bookkeeping must never fail a hit */
	rc = 0;
out:
	sb_release(&streams[0]);
	sb_release(&streams[1]);
	return rc;
}

static void set_note(struct exec_result *res, const char *fmt, ...) PRINTF_LIKE(2, 3);
static void set_note(struct exec_result *res, const char *fmt, ...)
{
	struct strbuf sb = STRBUF_INIT;
	va_list ap;
	va_start(ap, fmt);
	sb_vaddf(&sb, fmt, ap);
	va_end(ap);
	free(res->note);
	res->note = sb_detach(&sb);
	err_clear();
}

/* Looks fp up and replays it. since > 0: only a run stored since then
 * (another process's, whatever its exit), else the cached run as the
 * request's flags allow. Returns 1 replayed (res filled), 0 nothing to
 * replay, -1 error. A run that cannot be replayed is a miss, with a note. */
static int lookup_replay(struct store *st, const struct exec_request *req, const struct digest *fp, int64_t since,
			 enum exec_verdict verdict, struct exec_result *res)
{
	struct run_record hit = { 0 };
	int failures = since > 0 || (req->flags & EXEC_CACHE_FAILURES);
	int h = store_lookup(st, fp, failures, since, now_ms(), &hit);
	if (h == 1 && replay(st, &hit, req->out_fd, req->err_fd) < 0) {
		set_note(res, "warning: %s; running the command instead", err_msg());
		h = 0;
	}
	if (h == 1) {
		res->verdict = verdict;
		res->exit_code = hit.exit_code;
		res->duration_ms = hit.duration_ms;
		memcpy(res->run, hit.hash, OID_HEX);
	}
	run_record_free(&hit);
	return h;
}

struct beat {
	struct store *st;
	struct digest fp;
	struct claim_owner *me;
	int64_t last;
	struct exec_remote *er; /* its lock is refreshed with the claim */
};

static void heartbeat(void *ctx)
{
	struct beat *b = ctx;
	int64_t now = now_ms();
	if (now - b->last < CLAIM_HEARTBEAT_MS)
		return;
	b->last = now;
	if (store_claim_heartbeat(b->st, &b->fp, b->me, now) < 0)
		err_clear();
	exec_remote_heartbeat(b->er);
}

static int backoff_sleep(int attempt)
{
	const char *base_env = getenv("CASHET_RETRY_BASE_MS");
	int64_t ms = base_env ? atoll(base_env) : 500;
	for (int i = 0; i < attempt && ms < 60000; i++)
		ms *= 2;
	struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		if (spawn_pending_signal())
			return -1;
	return 0;
}

/* Runs with retries; the final attempt's outcome is in out. Returns
 * spawn_command's code: 0 ran, 1 could not start (err_msg), -1 error. */
static int run_with_retries(struct store *st, const struct exec_request *req, int stdin_fd, struct beat *beat,
			    struct spawn_result *out)
{
	int quiet = !!(req->flags & EXEC_QUIET);
	struct spawn_spec spec = {
		.argv = req->spec.argv,
		.cwd = req->spec.cwd,
		.env = req->spec.env ? req->spec.env : no_env,
		.stdin_fd = stdin_fd,
		.out_fd = quiet ? -1 : req->out_fd,
		.err_fd = quiet ? -1 : req->err_fd,
		.timeout_ms = req->timeout_ms,
		.grace_ms = req->grace_ms,
		.capdir = store_tmpdir(st),
		.cancel = req->cancel,
		.tick = beat ? heartbeat : NULL,
		.tick_ctx = beat,
	};
	for (int attempt = 0;; attempt++) {
		if (stdin_fd >= 0 && stdin_fd != STDIN_FILENO)
			lseek(stdin_fd, 0, SEEK_SET);
		int rc = spawn_command(&spec, out);
		if (rc != 0)
			return rc;
		if (out->interrupted || out->status == 0 || attempt >= req->retries)
			return 0;
		if (req->on_retry)
			req->on_retry(req->ctx, out->status, attempt + 1, req->retries);
		spawn_result_free(out);
		if (backoff_sleep(attempt) < 0) {
			out->interrupted = spawn_pending_signal();
			return 0;
		}
	}
}

/* Fills r from the outcome and saves it. Returns 0, -2 when the command
 * did not produce what was declared (an error, not a result), -1 when the
 * store failed. */
static int store_outcome(struct store *st, const struct exec_request *req, struct run_record *r,
			 const struct spawn_result *out, int64_t started)
{
	r->ok = out->status == 0 && !out->timed_out;
	r->exit_code = out->status;
	r->created_ms = started;
	r->last_used_ms = now_ms();
	r->duration_ms = out->duration_ms;
	r->expires_ms = req->ttl_ms ? started + req->ttl_ms : 0;
	r->name = req->name ? xstrdup(req->name) : NULL;
	for (size_t i = 0; req->tags && i < req->tags->n; i++)
		sv_push(&r->tags, req->tags->v[i]);
	const struct capture *caps[] = { &out->out, &out->err };
	for (int k = 0; k < 2; k++) {
		struct run_file *f = run_add_file(r, k, k ? "stderr" : "stdout");
		f->src = xstrdup(caps[k]->path);
		f->xxh = caps[k]->d;
		f->size = caps[k]->size;
	}
	if (r->ok && outputs_collect(st, req->spec.cwd, &req->spec.outputs, r) < 0)
		return -2;
	if (outputs_add_sources(st, r) < 0 || store_save(st, r) < 0)
		return -1;
	return 0;
}

/* `config max-size`, applied after every store: down to 90%, like ccache,
 * so the next runs do not each trigger a gc. Never the command's failure. */
static void auto_gc(struct store *st)
{
	const struct gitmod *g = gitmod_get();
	struct strbuf v = STRBUF_INIT;
	uint64_t max;
	int64_t total;
	/* cheap: one config read and one row; gc itself only past the bound */
	if (g && g->config(store_dir(st), "max-size", NULL, 0, &v) == 0 && parse_size(v.buf, &max) == 0 && max &&
	    store_total_bytes(st, &total) == 0 && (uint64_t)total > max) {
		struct gc_opts o = { .max_size = max / 10 * 9, .busy = claim_busy };
		struct gc_report rep;
		store_gc(st, &o, &rep);
	}
	err_clear();
	sb_release(&v);
}

int exec_run(struct store *st, const struct exec_request *req, struct exec_result *res)
{
	struct run_record r = { 0 };
	struct spawn_result out;
	struct claim_owner me;
	struct exec_remote er = { .notice = req->on_notice,
				  .ctx = req->ctx,
				  .verbose = req->verbose,
				  .cache_failures = !!(req->flags & EXEC_CACHE_FAILURES) };
	int hashed, child_stdin, spooled = -1, claimed = 0, have_out = 0, rc = -1, h;
	int cache = !(req->flags & EXEC_NO_CACHE), force = !!(req->flags & EXEC_FORCE);
	int64_t t0 = now_ms();

	memset(res, 0, sizeof(*res));
	memset(&out, 0, sizeof(out));
	res->exit_code = EXEC_EXIT_CASHET;
	res->verdict = EXEC_NOT_STORED;

	/* 1. the key */
	if (prepare_stdin(st, req->stdin_fd, &hashed, &child_stdin, &spooled) < 0 ||
	    fingerprint(st, req, hashed, &r) < 0)
		goto out;
	res->fp = r.fp;

	/* 2. a local hit */
	if (cache && !force && (h = lookup_replay(st, req, &r.fp, 0, EXEC_HIT, res)) != 0)
		goto found;

	/* 3. read through the remote: a run fetched is replayed like a local
	 * one (connecting only on a local miss: a hit never does) */
	if (cache && exec_remote_open(&er, st, req->remote, &r.fp) && !force && exec_remote_fetch(&er, st) == 1 &&
	    (h = lookup_replay(st, req, &r.fp, 0, EXEC_HIT, res)) != 0)
		goto found;
	if (req->flags & EXEC_LOOKUP_ONLY) {
		res->verdict = EXEC_MISS;
		res->exit_code = 0;
		rc = 0;
		goto out;
	}
	if ((req->flags & EXEC_WANT_REASONS) && cache && !force) {
		struct explain e;
		if (explain_run(st, &r, !!(req->flags & EXEC_CACHE_FAILURES), now_ms(), &e) == 0) {
			res->reasons = e.reasons;
			memset(&e.reasons, 0, sizeof(e.reasons));
			explain_free(&e);
		}
		err_clear();
	}
	if (req->on_miss)
		req->on_miss(req->ctx, res);

	/* 4. exactly once: another process may be running the same thing. Wait
	 * for it and replay its result rather than running it twice. Whatever
	 * it stored since we started counts, even a failure, and is checked
	 * again once we hold the claim: it may have finished between our
	 * lookup and our claim. A run is dated by its start, which can be
	 * before ours, so a completed one counts whenever it started. */
	claim_self(&me);
	struct beat beat = { st, r.fp, &me, now_ms(), &er };
	if (cache) {
		for (;;) {
			int c = claim_acquire(st, &r.fp, &me, spawn_pending_signal);
			if (c == 2)
				goto interrupted;
			if (c < 0)
				goto out;
			claimed = c == 0;
			enum exec_verdict v = claimed ? EXEC_HIT : EXEC_WAITED;
			if ((h = lookup_replay(st, req, &r.fp, t0, v, res)) == 0 && !force)
				h = lookup_replay(st, req, &r.fp, 0, v, res);
			if (h != 0)
				goto found;
			if (claimed)
				break;
			if (spawn_pending_signal())
				goto interrupted;
		}
		/* across machines too: while another machine runs the command,
		 * wait and replay what it stored */
		int l = force ? 0 : exec_remote_lock(&er, st, spawn_pending_signal);
		if (l == 2)
			goto interrupted;
		if (l == 1) {
			if ((h = lookup_replay(st, req, &r.fp, t0, EXEC_WAITED, res)) == 0)
				h = lookup_replay(st, req, &r.fp, 0, EXEC_WAITED, res);
			if (h == 1)
				goto found;
			err_clear();
		}
	}

	/* 5. run */
	store_sweep_tmp(st);
	if (spawn_pending_signal())
		goto interrupted; /* while hashing or waiting: nothing ran, nothing to store */
	int64_t started = now_ms();
	int sr = run_with_retries(st, req, child_stdin, claimed ? &beat : NULL, &out);
	have_out = sr >= 0;
	if (sr < 0)
		goto out;
	rc = 0;
	res->exit_code = out.status;
	res->duration_ms = out.duration_ms;
	if (sr == 1) {
		set_note(res, "%s", err_msg()); /* could not start: not a result of the command */
		goto out;
	}
	if (out.interrupted) {
		res->signal = out.interrupted;
		res->exit_code = 128 + out.interrupted;
		goto out;
	}
	if (!cache)
		goto out;

	/* 6. store, publish, bound the store */
	int so = store_outcome(st, req, &r, &out, started);
	if (so == -2) {
		/* the command did not do what was declared: an error, not a result */
		set_note(res, "%s", err_msg());
		res->exit_code = out.status ? out.status : 1;
		goto out;
	}
	if (so < 0) {
		set_note(res, "warning: result not stored: %s", err_msg());
		goto out;
	}
	claimed = 0;
	res->verdict = EXEC_RAN;
	memcpy(res->run, r.hash, OID_HEX);
	exec_remote_publish(&er, st, &r);
	auto_gc(st);
	goto out;

found:
	rc = h < 0 ? -1 : 0;
	goto out;
interrupted:
	rc = 0;
	res->signal = spawn_pending_signal();
	res->exit_code = 128 + res->signal;
out:
	exec_remote_close(&er); /* releases its lock */
	if (claimed)
		store_claim_release(st, &r.fp, &me);
	if (have_out)
		spawn_result_free(&out);
	if (spooled >= 0)
		close(spooled);
	run_record_free(&r);
	if (rc < 0)
		res->exit_code = EXEC_EXIT_CASHET;
	return rc;
}
