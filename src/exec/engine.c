/* engine: the exec flow, top to bottom in exec_run(): fingerprint, look up
 * and replay; read through a remote; claim the fingerprint or wait for the
 * process that holds it; run with retries; store; publish; bound the store's
 * size. It prints nothing: what a front end shows comes from the result and
 * the request's hooks. The command runs in req->spec.cwd with
 * req->spec.env, so callers never change their own directory or environment. */
#include "exec/engine.h"
#include "exec/claim.h"
#include "exec/early.h"
#include "exec/prehash.h"
#include "exec/fds.h"
#include "exec/feed.h"
#include "exec/spawn.h"
#include "key/observed.h"
#include "key/script.h"
#include "remote/select.h"
#include "store/gitmod.h"
#include "exec/metrics.h"
#include "store/outputs.h"
#include "util/json.h"

#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
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
	sb_addf(out, ",\"inputs_hashed\":{\"during\":%zu,\"after\":%zu}}\n", res->hashed_during, res->hashed_after);
}

/* An empty environment (a NULL vector, as an empty strvec has). */
static char *const no_env[] = { NULL };

/* --env-mode strict: what a command gets besides its declared variables
 * (documented in cashet(1)). */
static const char *const strict_env_base[] = { "PATH", "HOME", "USER", "TMPDIR", "LANG", "LC_*", "TERM", NULL };

static int env_kept(const struct exec_request *req, const char *entry)
{
	const char *eq = strchr(entry, '=');
	if (!eq)
		return 0;
	char *name = xstrndup(entry, (size_t)(eq - entry));
	int keep = 0;
	for (const char *const *b = strict_env_base; !keep && *b; b++)
		keep = fnmatch(*b, name, 0) == 0;
	for (size_t i = 0; !keep && i < req->spec.envs.n; i++)
		keep = fnmatch(req->spec.envs.v[i], name, 0) == 0;
	free(name);
	return keep;
}

/* The environment the command gets, the one its key hashes: the request's,
 * or with EXEC_ENV_STRICT only what it declares (kept in *strict). */
static char *const *command_env(const struct exec_request *req, struct strvec *strict)
{
	char *const *env = req->spec.env ? req->spec.env : no_env;
	if (!(req->flags & EXEC_ENV_STRICT))
		return env;
	sv_release(strict);
	for (; *env; env++)
		if (env_kept(req, *env))
			sv_push(strict, *env);
	return strict->n ? strict->v : no_env;
}

/* The fingerprint: what every front end's key must agree on. */
/* The key's view of a request (strict keeps --env-mode strict's vector). */
static void request_spec(const struct exec_request *req, struct strvec *strict, struct fp_spec *spec)
{
	*spec = req->spec;
	spec->env = command_env(req, strict);
	spec->trace = !(req->flags & EXEC_NO_TRACE);
	spec->auto_outputs = !!(req->flags & EXEC_AUTO_OUTPUTS);
	spec->env_strict = !!(req->flags & EXEC_ENV_STRICT);
	spec->ignore = req->ignore;
}

static int fingerprint(struct store *st, const struct exec_request *req, const struct feed *f, const struct fds *fds,
		       struct run_record *r)
{
	/* a streamed stdin's digest is known after the run (stdin_known) */
	static const struct digest pending;
	struct fp_spec spec;
	struct strvec strict = STRVEC_INIT;
	int rc = -1;
	request_spec(req, &strict, &spec);
	spec.stdin_fd = f->hashed;
	spec.stdin_digest = f->mode == FEED_STREAM ? &pending : NULL;
	spec.fds = fds->files;
	spec.nfds = fds->nfiles;
	if (!spec.cwd || spec.cwd[0] != '/')
		err_set("internal: a request needs an absolute working directory");
	else {
		/* one read transaction: a lock and an unlock per stat cache
		 * lookup was most of a large directory input's hit */
		int began = store_read_begin(st);
		int fr = fp_compute(st, &spec, r);
		store_read_end(st, began);
		if (fr == 0 && store_flush_statcache(st) == 0)
			rc = 0;
	}
	sv_release(&strict);
	return rc;
}

/* The request with the store's settings applied (config trace,
 * auto-outputs, ignore), which every front end gets alike. */
struct settled {
	struct exec_request req;
	struct strvec ignore;
};

static int setting_on(const char *v)
{
	return !strcasecmp(v, "on") || !strcasecmp(v, "true") || !strcasecmp(v, "yes") || !strcmp(v, "1");
}

static const struct exec_request *settle(struct store *st, const struct exec_request *req, struct settled *s)
{
	struct strbuf v = STRBUF_INIT;
	s->req = *req;
	memset(&s->ignore, 0, sizeof(s->ignore));
	if (!(req->flags & (EXEC_TRACE | EXEC_NO_TRACE)) && store_setting(st, "trace", &v) && !setting_on(v.buf))
		s->req.flags |= EXEC_NO_TRACE;
	if (store_setting(st, "auto-outputs", &v) && setting_on(v.buf))
		s->req.flags |= EXEC_AUTO_OUTPUTS;
	/* the store's patterns, comma-separated, then the request's */
	char *save = NULL;
	if (store_setting(st, "ignore", &v))
		for (char *p = strtok_r(v.buf, ",", &save); p; p = strtok_r(NULL, ",", &save)) {
			p += strspn(p, " \t");
			size_t n = strlen(p);
			while (n && (p[n - 1] == ' ' || p[n - 1] == '\t'))
				p[--n] = 0;
			if (n)
				sv_push(&s->ignore, p);
		}
	for (size_t i = 0; req->ignore && i < req->ignore->n; i++)
		sv_push(&s->ignore, req->ignore->v[i]);
	s->req.ignore = &s->ignore;
	sb_release(&v);
	return &s->req;
}

/* `config stdin-limit`: the most of a pipe spooled to its end. */
static uint64_t stdin_limit(struct store *st)
{
	struct strbuf v = STRBUF_INIT;
	uint64_t limit = FEED_DEFAULT_LIMIT;
	if (store_setting(st, "stdin-limit", &v) == 1 && parse_size(v.buf, &limit) < 0) {
		limit = FEED_DEFAULT_LIMIT; /* `config` checked it when it was set */
		err_clear();
	}
	sb_release(&v);
	return limit;
}

/* The stdin part's digest, known at last; the fingerprint follows. */
static void stdin_known(struct run_record *r, const struct digest *d)
{
	for (size_t i = 0; i < r->nparts; i++)
		if (!strcmp(r->parts[i].kind, "stdin"))
			r->parts[i].hash = *d;
	fp_seal(r);
}

/* Whether the newest run of this command line was given a piped stdin: a
 * hit is then likely enough to wait for a long input's end. */
static int line_had_stdin(struct store *st, const struct run_record *r)
{
	struct run_record prev = { 0 };
	int had = 0;
	if (store_latest_of_line(st, &r->line, &prev) == 1)
		for (size_t i = 0; i < prev.nparts && !had; i++)
			had = !strcmp(prev.parts[i].kind, "stdin");
	err_clear(); /* only a guess */
	run_record_free(&prev);
	return had;
}

/* The descriptors the command inherits besides its streams (exec/fds.h),
 * the front end's own left out. */
static void inherited(const struct exec_request *req, struct fds *fds)
{
	const int own[] = { req->stdin_fd, req->out_fd, req->err_fd, req->report_fd };
	fds_scan(req->spec.argv, own, sizeof(own) / sizeof(*own), fds);
}

/* 1. the key, with f the command's stdin and fds what else it inherits
 * (fds->piped: a pipe it names, which makes the run uncacheable; the
 * caller says so). A pipe still flowing after the look-ahead is read to
 * its end (up to stdin-limit) when wait is set (`why`) or the command line
 * was cached with a piped stdin before; otherwise it is streamed to the
 * command (FEED_STREAM), the run keyed after it. Returns 0, 1 when the
 * pipe is longer than the limit (FEED_STREAM: never cached), -1. */
static int key(struct store *st, const struct exec_request *req, int wait, struct feed *f, struct fds *fds,
	       struct run_record *r)
{
	struct digest d;
	inherited(req, fds);
	if (feed_open(st, req->stdin_fd, f) < 0 || fingerprint(st, req, f, fds, r) < 0)
		return -1;
	if (f->mode != FEED_STREAM || !(wait || line_had_stdin(st, r)))
		return 0;
	int ended = feed_spool_rest(st, f, stdin_limit(st));
	if (ended <= 0)
		return ended < 0 ? -1 : 1;
	if (digest_fd(f->hashed, &d, NULL) < 0)
		return -1;
	lseek(f->hashed, 0, SEEK_SET);
	stdin_known(r, &d);
	return 0;
}

int exec_fingerprint(struct store *st, const struct exec_request *request, struct run_record *r)
{
	struct settled s;
	struct feed f;
	struct fds fds;
	int rc = key(st, settle(st, request, &s), 1, &f, &fds, r);
	if (rc == 1)
		rc = err_set("stdin is longer than stdin-limit: such a run is never cached");
	else if (rc == 0 && fds.piped >= 0)
		rc = err_set("the command line names fd %d, a pipe: such a run is never cached", fds.piped);
	fds_release(&fds);
	feed_close(&f);
	sv_release(&s.ignore);
	return rc;
}

int exec_explain(struct store *st, const struct exec_request *req, struct explain *e)
{
	struct run_record r = { 0 };
	int rc = exec_fingerprint(st, req, &r);
	if (rc == 0)
		rc = explain_run(st, &r, req->spec.env, !!(req->flags & EXEC_CACHE_FAILURES), now_ms(), e);
	run_record_free(&r);
	return rc;
}

/* Writes the two streams in the order the run wrote them (store.h,
 * FILE_STREAMS); what the order does not cover follows, stdout first.
 * Returns 0, -1 when a write failed (a closed pipe). */
static int write_in_order(const struct strbuf *order, const struct strbuf mem[2], const int fds[2])
{
	size_t off[2] = { 0, 0 };
	const char *p = order->buf ? order->buf : "";
	while ((*p == 'o' || *p == 'e') && p[1] == ' ') {
		int k = *p == 'e';
		char *end;
		unsigned long long n = strtoull(p + 2, &end, 10);
		if (end == p + 2 || *end != '\n')
			break;
		if (n > mem[k].len - off[k])
			n = mem[k].len - off[k];
		if (n && write_all(fds[k], mem[k].buf + off[k], n) < 0)
			return -1;
		off[k] += n;
		p = end + 1;
	}
	for (int k = 0; k < 2; k++)
		if (off[k] < mem[k].len && write_all(fds[k], mem[k].buf + off[k], mem[k].len - off[k]) < 0)
			return -1;
	return 0;
}

/* Replays a stored run, its streams to out_fd and err_fd (-1: checked,
 * not written). Every stream is checked whole before the first byte is
 * written, so a corrupt object degrades to a miss, not to garbage; a
 * large one is not held in memory for that, but checked as it inflates
 * and inflated again from the same file as it is written. Returns 0
 * replayed, -1 if the run cannot be replayed (corrupt/missing). A stream
 * that cannot be written (a closed pipe: `| head`) is not cashet's failure. */
static int replay(struct store *st, const struct run_record *r, int out_fd, int err_fd)
{
	/* stdout, stderr and their order (FILE_STREAMS), by kind */
	struct strbuf mem[3] = { STRBUF_INIT, STRBUF_INIT, STRBUF_INIT };
	const struct run_file *stream[3] = { NULL, NULL, NULL };
	struct blob_hold held[3] = { { .fd = -1 }, { .fd = -1 }, { .fd = -1 } };
	int fds[2] = { out_fd, err_fd }, rc = -1;
	for (size_t i = 0; i < r->nfiles; i++) {
		const struct run_file *f = &r->files[i];
		/* outputs are outputs_restore's (FILE_OUTPUT is 2 as well: read
		 * here, every output was read a second time, into memory, and
		 * taken for the streams' order) */
		int k = f->kind == FILE_STREAMS ? 2 : f->kind == FILE_STDOUT || f->kind == FILE_STDERR ? f->kind : -1;
		if (k < 0 || (k == 2 && (out_fd < 0 || err_fd < 0)))
			continue;
		stream[k] = f;
		if (store_blob_check(st, f, &mem[k], &held[k]) < 0)
			goto out;
	}
	if (outputs_restore(st, r) < 0)
		goto out;
	/* interleaved where the streams are in memory (up to 8 MiB each);
	 * larger ones go whole, stdout first */
	if (stream[2] && held[0].fd < 0 && held[1].fd < 0 && held[2].fd < 0) {
		write_in_order(&mem[2], mem, fds);
		goto done;
	}
	for (int k = 0; k < 2; k++) {
		if (fds[k] < 0 || !stream[k])
			continue;
		if (held[k].fd >= 0 ? store_blob_send(st, stream[k], &held[k], fds[k]) < 0
				    : mem[k].len && write_all(fds[k], mem[k].buf, mem[k].len) < 0)
			break;
	}
done:
	err_clear();
	if (store_touch(st, r, now_ms()) < 0)
		err_clear(); /* LRU bookkeeping must never fail a hit */
	rc = 0;
out:
	for (int k = 0; k < 3; k++) {
		store_blob_release(&held[k]);
		sb_release(&mem[k]);
	}
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
 * request's flags allow; either way none created before
 * req->fresh_since. Returns 1 replayed (res filled), 0 nothing to
 * replay, -1 error. A run that cannot be replayed is a miss, with a note. */
static int lookup_replay(struct store *st, const struct exec_request *req, const struct digest *fp, int64_t since,
			 enum exec_verdict verdict, struct exec_result *res)
{
	struct run_record hit = { 0 };
	int failures = since > 0 || (req->flags & EXEC_CACHE_FAILURES);
	/* each candidate's observed inputs must still be as they were */
	struct obs_match m = { .st = st, .env = req->spec.env, .why = STRBUF_INIT };
	struct store_lookup_opts lo = { .allow_failed = failures,
					.min_created = since > req->fresh_since ? since : req->fresh_since,
					.now = now_ms(),
					.accept = obs_accept,
					.ctx = &m };
	int h = store_lookup(st, fp, &lo, &hit);
	sb_release(&m.why);
	if (store_flush_statcache(st) < 0) /* what checking the inputs hashed */
		err_clear();
	if (h == 1 && replay(st, &hit, req->out_fd, req->err_fd) < 0) {
		set_note(res, "warning: %s; running the command instead", err_msg());
		h = 0;
	}
	if (h == 1) {
		res->verdict = verdict;
		res->exit_code = hit.exit_code;
		res->duration_ms = hit.duration_ms;
		res->created_ms = hit.created_ms;
		res->expires_ms = hit.expires_ms;
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

/* What was watched of the final attempt: its trace (NULL when not
 * traced) and when it started, for inputs that change while it runs. */
struct watch {
	int wanted;
	struct trace *trace;
	int64_t newest_ns;           /* the newest ctime of its declared and inherited files */
	int64_t started_ns;          /* fs_clock_ns(), on a tick after newest_ns */
	int64_t observed_ns;         /* now_ns() then: for what the trace saw read */
	struct strvec found_outputs; /* declared output files there at the start */
	struct prehash *prehash;     /* what it reads, hashed while it runs, or NULL */
};

/* A tracer for the next attempt; when none can be made the command runs
 * untraced and out->untraced says why (set after spawn_command). */
static void watch_next(struct store *st, const struct exec_request *req, struct watch *w, char **untraced)
{
	trace_free(w->trace);
	w->trace = NULL;
	free(*untraced);
	*untraced = NULL;
	if (w->wanted && trace_new(&w->trace) < 0) {
		*untraced = xstrdup(err_msg());
		err_clear();
	}
	if (w->trace) {
		trace_set_exec_hook(w->trace, &script_exec_hook);
		if (w->prehash)
			trace_set_read_hook(w->trace, prehash_offer, w->prehash);
	}
	sv_release(&w->found_outputs);
	for (size_t i = 0; w->trace && i < req->spec.outputs.n; i++) {
		struct strbuf name = STRBUF_INIT, abs = STRBUF_INIT;
		struct stat sb;
		fp_store_path(st, req->spec.cwd, req->spec.outputs.v[i], &name);
		path_absolute(req->spec.cwd, req->spec.outputs.v[i], &abs);
		if (lstat(abs.buf, &sb) == 0 && S_ISREG(sb.st_mode))
			sv_push(&w->found_outputs, name.buf);
		sb_release(&name);
		sb_release(&abs);
	}
	sv_sort(&w->found_outputs);
	w->started_ns = fs_clock_after(w->newest_ns);
	w->observed_ns = now_ns();
}

/* Runs with retries; the final attempt's outcome is in out, its streams
 * captured when capture is set. Returns spawn_command's code: 0 ran, 1
 * could not start (err_msg), -1 error. */
static int run_with_retries(struct store *st, const struct exec_request *req, const struct feed *f, int capture,
			    struct beat *beat, struct watch *w, struct early *early, struct spawn_result *out)
{
	int stdin_fd = f->child;
	int quiet = !!(req->flags & EXEC_QUIET);
	struct strvec strict = STRVEC_INIT;
	struct spawn_spec spec = {
		.argv = req->spec.argv,
		.cwd = req->spec.cwd,
		.env = command_env(req, &strict),
		.stdin_fd = stdin_fd,
		.out_fd = quiet ? -1 : req->out_fd,
		.err_fd = quiet ? -1 : req->err_fd,
		.timeout_ms = req->timeout_ms,
		.grace_ms = req->grace_ms,
		.capdir = capture ? store_tmpdir(st) : NULL,
		.cancel = req->cancel,
		.tick = beat ? heartbeat : NULL,
		.tick_ctx = beat,
		.later = { { early ? early_start : NULL, early, early_after_ms(early) },
			   { NULL, w->prehash, prehash_after_ms(w->prehash) } },
	};
	struct strbuf exe = STRBUF_INIT;
	/* without a cwd (removed under us) a relative path names nothing
	 * fp_which could find: execvp resolves it as the shell would */
	if (req->spec.cwd && fp_which(req->spec.argv[0], req->spec.cwd, spec.env, &exe) == 0)
		spec.exe = exe.buf;
	int rc;
	for (int attempt = 0;; attempt++) {
		char *untraced = NULL;
		if (stdin_fd >= 0 && stdin_fd != STDIN_FILENO)
			lseek(stdin_fd, 0, SEEK_SET);
		watch_next(st, req, w, &untraced);
		spec.trace = w->trace;
		/* nothing to hash without a trace to name the files */
		spec.later[1].fn = w->trace && w->prehash ? prehash_start : NULL;
		rc = spawn_command(&spec, out);
		if (rc == 0 && untraced && !out->untraced) {
			out->untraced = untraced;
			untraced = NULL;
		}
		free(untraced);
		/* a streamed stdin cannot be given twice */
		if (rc != 0 || out->interrupted || out->status == 0 || attempt >= req->retries ||
		    f->mode == FEED_STREAM)
			break;
		if (req->on_retry)
			req->on_retry(req->ctx, out->status, attempt + 1, req->retries);
		spawn_result_free(out);
		if (backoff_sleep(attempt) < 0) {
			out->interrupted = spawn_pending_signal();
			break;
		}
	}
	sv_release(&strict);
	sb_release(&exe);
	return rc;
}

/* A list of paths for a message: the first few, then how many more. */
static void name_some(struct strbuf *sb, const struct strvec *paths)
{
	enum { SHOWN = 5 };
	for (size_t i = 0; i < paths->n && i < SHOWN; i++)
		sb_addf(sb, "%s%s", i ? ", " : "", paths->v[i]);
	if (paths->n > SHOWN)
		sb_addf(sb, " and %zu more", paths->n - SHOWN);
}

static void notice(const struct exec_request *req, const char *fmt, ...) PRINTF_LIKE(2, 3);
static void notice(const struct exec_request *req, const char *fmt, ...)
{
	struct strbuf sb = STRBUF_INIT;
	va_list ap;
	va_start(ap, fmt);
	sb_vaddf(&sb, fmt, ap);
	va_end(ap);
	if (req->on_notice)
		req->on_notice(req->ctx, sb.buf);
	sb_release(&sb);
}

/* The note when inputs changed while the command ran; returns -3. */
static int changed_while_running(struct exec_result *res, const struct strvec *changed)
{
	struct strbuf sb = STRBUF_INIT;
	name_some(&sb, changed);
	set_note(res, "warning: result not stored: changed while the command ran: %s", sb.buf);
	sb_release(&sb);
	return -3;
}

/* Records what the run was observed to depend on (r->inputs) and adds the
 * files it wrote in the project as outputs with EXEC_AUTO_OUTPUTS.
 * Returns 0 (storable), -3 not storable (res->note says why: an input
 * changed while it ran, it did what cannot be traced), -4 --strict refused
 * it, -1 error. */
static int observe(struct store *st, const struct exec_request *req, const struct watch *w,
		   const struct spawn_result *out, struct run_record *r, struct strvec *auto_outputs,
		   struct exec_result *res)
{
	static int said_untraced; /* "say so once" per process */
	struct obs_outcome oc = OBS_OUTCOME_INIT;
	struct strbuf sb = STRBUF_INIT;
	int rc = -1;
	if (!w->wanted)
		return 0;
	if (!w->trace || out->untraced) {
		if (!said_untraced++)
			notice(req,
			       "warning: cannot observe what the command reads (%s); only its declared inputs and "
			       "the sources its scripts load are checked",
			       out->untraced ? out->untraced : "tracing unavailable");
		/* checked like a traced run's inputs, where tracing is
		 * impossible too: what reading the scripts finds */
		struct fp_spec spec;
		struct strvec strict = STRVEC_INIT;
		request_spec(req, &strict, &spec);
		r->observed = OBSERVED_BLIND;
		rc = fp_script_inputs(st, &spec, r);
		sv_release(&strict);
		if (rc < 0)
			set_note(res, "warning: result not stored: %s", err_msg());
		return rc < 0 ? -3 : 0;
	}
	if (trace_blind(w->trace)) {
		set_note(res, "warning: result not stored: %s, so what it read is not known", trace_blind(w->trace));
		return -3;
	}
	size_t n;
	const struct trace_event *ev = trace_events(w->trace, &n);
	struct run_record prev = { 0 };
	if (store_newest_inputs(st, &r->fp, &prev) < 0)
		err_clear(); /* only an optimization */
	struct obs_spec os = { .cwd = req->spec.cwd,
			       .env = req->spec.env,
			       .outputs = &req->spec.outputs,
			       .ignore = req->ignore,
			       .raw_sources = req->spec.raw_sources,
			       .started_ns = w->observed_ns,
			       .found_outputs = &w->found_outputs,
			       .prev = &prev,
			       .known = prehash_digest,
			       .known_ctx = w->prehash };
	/* one read transaction: a lock and an unlock per input's stat-cache
	 * lookup (20,000 inputs for a `cp -r`) otherwise */
	int began = store_read_begin(st);
	int collected = obs_collect(st, &os, ev, n, r, &oc);
	store_read_end(st, began);
	run_record_free(&prev);
	if (collected < 0)
		goto out;
	res->hashed_during = oc.hashed_during;
	res->hashed_after = oc.hashed_after;
	/* the digests it took (a Python start-up's stdlib sources are
	 * canonicalized once, not on every miss) */
	if (store_flush_statcache(st) < 0)
		err_clear();
	if (oc.changed.n) {
		rc = changed_while_running(res, &oc.changed);
		goto out;
	}
	if (oc.read_outputs.n) {
		/* sed -i: replayed, it would overwrite an edit with the
		 * result of the old content, as -i FILE -o FILE never does */
		name_some(&sb, &oc.read_outputs);
		set_note(res,
			 "warning: result not stored: it read %s, a declared output it found in place, before it "
			 "wrote it",
			 sb.buf);
		rc = -3;
		goto out;
	}
	if ((req->flags & EXEC_STRICT) && oc.undeclared.n) {
		name_some(&sb, &oc.undeclared);
		set_note(res, "--strict: the command read files it does not declare (-i or --dep): %s", sb.buf);
		rc = -4;
		goto out;
	}
	if (oc.written.n && (req->flags & EXEC_AUTO_OUTPUTS)) {
		for (size_t i = 0; i < oc.written.n; i++)
			sv_push(auto_outputs, oc.written.v[i]);
	} else if (oc.written.n) {
		name_some(&sb, &oc.written);
		notice(req, "wrote %s, not declared with -o: %s not be restored on a hit (--auto-outputs stores them)",
		       sb.buf, oc.written.n > 1 ? "they will" : "it will");
	}
	rc = 0;
out:
	obs_outcome_release(&oc);
	sb_release(&sb);
	return rc;
}

/* The run's metrics files into r->metrics. A file that cannot be read
 * costs its metrics, never the run: the command did what it declared (a
 * failed run may not have written them at all: nothing to say then). */
static void read_metrics(const struct exec_request *req, struct run_record *r)
{
	struct strbuf p = STRBUF_INIT;
	for (size_t i = 0; req->metrics && i < req->metrics->n; i++) {
		const char *m = req->metrics->v[i];
		sb_reset(&p);
		path_absolute(req->spec.cwd, m, &p);
		if (!r->ok && access(p.buf, F_OK) < 0)
			continue;
		if (metrics_read(p.buf, m, &r->metrics) < 0)
			notice(req, "warning: %s; its metrics are not stored", err_msg());
		err_clear();
	}
	sb_release(&p);
}

/* The inherited files (fds) changed since the command started, as
 * "fd N (path)", into changed. By descriptor: a deleted file has no path
 * to stat, and the one its path names now may be another. */
static void fds_changed(const struct fds *fds, int64_t started_ns, struct strvec *changed)
{
	struct strbuf sb = STRBUF_INIT;
	for (size_t i = 0; i < fds->nfiles; i++) {
		const struct fp_fd *f = &fds->files[i];
		struct stat st;
		if (fstat(f->fd, &st) == 0 && !fs_changed_since(&st, started_ns))
			continue;
		sb_reset(&sb);
		sb_addf(&sb, "fd %d", f->fd);
		if (f->path)
			sb_addf(&sb, " (%s)", f->path);
		sv_push(changed, sb.buf);
	}
	sb_release(&sb);
}

/* The newest ctime among the files it inherits and those declared. */
static int64_t inputs_newest(const struct store *st, const struct run_record *r, const struct fds *fds)
{
	int64_t newest = obs_declared_newest(st, r);
	for (size_t i = 0; i < fds->nfiles; i++) {
		struct stat sb;
		if (fstat(fds->files[i].fd, &sb) == 0 && ts_ns(&sb.st_ctim) > newest)
			newest = ts_ns(&sb.st_ctim);
	}
	return newest;
}

/* Fills r from the outcome and saves it. Returns 0, -2 when the command
 * did not produce what was declared (an error, not a result), -3/-4 as
 * observe() says, -1 when the store failed. */
static int store_outcome(struct store *st, const struct exec_request *req, const struct fds *fds, struct run_record *r,
			 const struct watch *w, struct early *early, const struct spawn_result *out, int64_t started,
			 struct exec_result *res)
{
	struct strvec auto_outputs = STRVEC_INIT, changed = STRVEC_INIT;
	/* the declared inputs too, traced or not: a result computed from a
	 * half-edited file must not be stored under the old content's key;
	 * so the files it inherited */
	obs_declared_changed(st, r, w->started_ns, &changed);
	fds_changed(fds, w->started_ns, &changed);
	int unsafe = changed.n ? changed_while_running(res, &changed) : 0;
	sv_release(&changed);
	if (unsafe)
		return unsafe;
	r->ok = out->status == 0 && !out->timed_out;
	r->exit_code = out->status;
	r->timed_out = out->timed_out;
	r->created_ms = started;
	r->last_used_ms = now_ms();
	r->duration_ms = out->duration_ms;
	r->expires_ms = req->ttl_ms ? started + req->ttl_ms : 0;
	r->name = req->name ? xstrdup(req->name) : NULL;
	for (size_t i = 0; req->tags && i < req->tags->n; i++)
		sv_push(&r->tags, req->tags->v[i]);
	const struct capture *caps[] = { &out->out, &out->err, &out->order };
	static const char *const names[] = { "stdout", "stderr", "streams" };
	static const int kinds[] = { FILE_STDOUT, FILE_STDERR, FILE_STREAMS };
	for (int k = 0; k < 3; k++) {
		if (k == 2 && !caps[k]->path && !caps[k]->mem.len)
			continue; /* no order: not both streams had bytes */
		struct run_file *f = run_add_file(r, kinds[k], names[k]);
		/* neither: a stream without a byte */
		f->src = caps[k]->path ? xstrdup(caps[k]->path) : NULL;
		if (caps[k]->mem.len)
			sb_add(&f->held, caps[k]->mem.buf, caps[k]->mem.len);
		f->xxh = caps[k]->d;
		f->size = caps[k]->size;
	}
	/* the outputs walked while the trace is read and the inputs hashed:
	 * a directory of 20,000 files takes as long as either; a quick
	 * command's outputs are few, and a thread would cost more than them */
	struct outputs_job *walk = outputs_collect_start(st, req->spec.cwd, &req->spec.outputs, !r->ok,
							 out->duration_ms >= EARLY_AFTER_MS);
	int rc = observe(st, req, w, out, r, &auto_outputs, res);
	/* a failed run keeps what it left, so that a replayed failure
	 * (--cache-failures) leaves the tree as running it again would */
	if (rc == 0 && auto_outputs.n && outputs_collect(st, store_root(st), &auto_outputs, !r->ok, r) < 0)
		rc = -2;
	sv_release(&auto_outputs);
	if (outputs_collect_finish(walk, rc < 0 ? NULL : r) < 0)
		return -2;
	if (rc < 0)
		return rc;
	early_apply(early, r);
	read_metrics(req, r);
	if (outputs_add_sources(st, r) < 0 || store_save(st, r) < 0)
		return -1;
	return 0;
}

/* `config max-size`, applied after every store: down to 90%, like ccache,
 * so the next runs do not each trigger a gc; then `config auto-pack`.
 * Never the command's failure. */
static void auto_gc(struct store *st)
{
	struct strbuf v = STRBUF_INIT;
	uint64_t max;
	int64_t total;
	/* cheap: the config already read and one row; gc itself only past the
	 * bound (a small miss never loads libgit2); not while a batch holds
	 * the store lock that gc would wait for */
	if (!store_batch_runs(st) && store_setting_user(st, "max-size", &v) && parse_size(v.buf, &max) == 0 && max &&
	    store_total_bytes(st, &total) == 0 && (uint64_t)total > max) {
		struct gc_opts o = { .max_size = max / 10 * 9, .busy = claim_busy };
		struct gc_report rep;
		store_gc(st, &o, &rep);
	}
	int packed;
	store_autopack(st, 0, &packed);
	err_clear();
	sb_release(&v);
}

static int run(struct store *st, const struct exec_request *req, struct exec_result *res);

int exec_run(struct store *st, const struct exec_request *request, struct exec_result *res)
{
	struct settled s;
	int rc = run(st, settle(st, request, &s), res);
	sv_release(&s.ignore);
	return rc;
}

/* The command's exit in res, from run_with_retries' sr and out: 1 when
 * that is not a result of the command (it could not start, or was
 * interrupted), else 0. */
static int ran(struct exec_result *res, int sr, const struct spawn_result *out)
{
	res->exit_code = out->status;
	res->duration_ms = out->duration_ms;
	if (sr == 1) {
		set_note(res, "%s", err_msg());
		return 1;
	}
	if (out->interrupted) {
		res->signal = out->interrupted;
		res->exit_code = 128 + out->interrupted;
		return 1;
	}
	return 0;
}

int exec_run_unstored(const struct exec_request *req, struct exec_result *res)
{
	struct feed f;
	struct watch w = { 0 };
	struct spawn_result out;
	memset(res, 0, sizeof(*res));
	res->exit_code = EXEC_EXIT_CASHET;
	res->verdict = EXEC_NOT_STORED;
	if (feed_pass(req->stdin_fd, &f) < 0)
		return -1;
	int sr = run_with_retries(NULL, req, &f, 0, NULL, &w, NULL, &out);
	feed_close(&f);
	if (sr < 0)
		return -1;
	ran(res, sr, &out);
	spawn_result_free(&out);
	return 0;
}

/* The flow itself, on the settled request. */
static int run(struct store *st, const struct exec_request *req, struct exec_result *res)
{
	struct run_record r = { 0 };
	struct spawn_result out;
	struct claim_owner me;
	struct watch w = { 0 };
	struct early *early = NULL;
	struct exec_remote er = { .notice = req->on_notice,
				  .ctx = req->ctx,
				  .verbose = req->verbose,
				  .cache_failures = !!(req->flags & EXEC_CACHE_FAILURES) };
	struct feed f;
	struct fds fds;
	struct digest stdin_d;
	int claimed = 0, have_out = 0, rc = -1, h, piped = -1;
	int cache = !(req->flags & EXEC_NO_CACHE), force = !!(req->flags & EXEC_FORCE);
	int64_t t0 = now_ms();
	char *unclaimed = NULL; /* why the claim failed */

	memset(res, 0, sizeof(*res));
	memset(&out, 0, sizeof(out));
	res->exit_code = EXEC_EXIT_CASHET;
	res->verdict = EXEC_NOT_STORED;

	/* 1. the key; a streamed stdin's part is known only after the run, so
	 * such a run is never looked up, claimed or waited for */
	int k = key(st, req, 0, &f, &fds, &r);
	if (k < 0)
		goto out;
	res->fp = r.fp;
	/* a run of this process's batch is published first: it holds the claim */
	if (store_batch_has(st, &r.fp) && store_batch_flush(st) < 0)
		goto out;
	int stream = f.mode == FEED_STREAM;
	if (k == 1 && cache) {
		notice(req, "warning: stdin is longer than stdin-limit; running the command without caching it");
		cache = 0;
	}
	/* like a streamed stdin, but its end is never seen: the pipe is the
	 * command's to read, cashet cannot read it first (`cat <(cmd)`) */
	if (fds.piped >= 0 && cache) {
		piped = fds.piped;
		cache = 0;
	}

	/* 2. a local hit */
	if (cache && !force && !stream && (h = lookup_replay(st, req, &r.fp, 0, EXEC_HIT, res)) != 0)
		goto found;

	/* 3. read through the remote: a run fetched is replayed like a local
	 * one (connecting only on a local miss: a hit never does) */
	if (cache && !stream && exec_remote_open(&er, st, req->remote, req->remote_mode, &r.fp) && !force &&
	    exec_remote_fetch(&er, st) == 1 && (h = lookup_replay(st, req, &r.fp, 0, EXEC_HIT, res)) != 0)
		goto found;
	if (req->flags & EXEC_LOOKUP_ONLY) {
		res->verdict = EXEC_MISS;
		res->exit_code = 0;
		rc = 0;
		goto out;
	}
	if ((req->flags & EXEC_WANT_REASONS) && cache && !force) {
		struct explain e;
		if (explain_run(st, &r, req->spec.env, !!(req->flags & EXEC_CACHE_FAILURES), now_ms(), &e) == 0) {
			res->reasons = e.reasons;
			memset(&e.reasons, 0, sizeof(e.reasons));
			explain_free(&e);
		}
		err_clear();
	}
	if (req->on_miss)
		req->on_miss(req->ctx, res);

	/* A store that cannot be written (read-only, another user's) costs
	 * the cache, never the command: it runs uncached, as ccache falls
	 * back to the compiler, with one warning. */
	if (cache && !store_writable(st)) {
		notice(req, EXEC_UNCACHED_WARNING, err_msg());
		err_clear();
		cache = 0;
	}

	/* 4. exactly once: another process may be running the same thing. Wait
	 * for it and replay its result rather than running it twice. Whatever
	 * it stored since we started counts, even a failure, and is checked
	 * again once we hold the claim: it may have finished between our
	 * lookup and our claim. A run is dated by its start, which can be
	 * before ours, so a completed one counts whenever it started. */
	claim_self(&me);
	struct beat beat = { st, r.fp, &me, now_ms(), &er };
	if (cache && !stream) {
		for (;;) {
			int c = claim_acquire(st, &r.fp, &me, spawn_pending_signal);
			if (c == 2)
				goto interrupted;
			if (c < 0) {
				/* the index busy for long (another process's big
				 * write) or failing: the claim is not worth the
				 * command; its result is still stored if it can be,
				 * unless the index cannot be written (a full disk):
				 * then nothing is, and one warning says so */
				if (err_code() == E_UNWRITABLE) {
					notice(req, EXEC_UNCACHED_WARNING, err_msg());
					cache = 0;
				} else {
					/* said once the run is over: if the index is
					 * still held then, the result is not stored,
					 * and that one line says so and why */
					unclaimed = xstrdup(err_msg());
				}
				err_clear();
				break;
			}
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
	w.wanted = cache && !(req->flags & EXEC_NO_TRACE);
	if (stream && feed_start(&f) < 0)
		goto out;
	if (cache) {
		early = early_new(st, req->spec.cwd, &req->spec.outputs);
		w.prehash = w.wanted ? prehash_new(st) : NULL;
		w.newest_ns = inputs_newest(st, &r, &fds);
	}
	int sr = run_with_retries(st, req, &f, cache, claimed ? &beat : NULL, &w, early, &out);
	size_t nev = 0;
	const struct trace_event *ev =
		sr >= 0 && w.trace && !out.untraced && !trace_blind(w.trace) ? trace_events(w.trace, &nev) : NULL;
	prehash_ended(w.prehash);
	early_ended(early, ev, nev, &fds);
	have_out = sr >= 0;
	if (sr < 0)
		goto out;
	rc = 0;
	if (ran(res, sr, &out))
		goto out;
	if (!cache) {
		if (piped >= 0)
			set_note(res,
				 "note: result not stored: the command line names fd %d, a pipe, which cannot be "
				 "hashed without consuming it",
				 piped);
		goto out;
	}
	if (out.out.error || out.err.error) {
		errno = out.out.error ? out.out.error : out.err.error;
		set_note(res, "warning: result not stored: cannot capture the command's output in %s: %s",
			 store_tmpdir(st), strerror(errno));
		goto out;
	}
	if (stream) {
		if (!feed_finish(&f, &stdin_d)) {
			set_note(res, "note: result not stored: the command finished before its stdin did");
			goto out;
		}
		stdin_known(&r, &stdin_d);
		res->fp = r.fp;
	}

	/* 6. store, publish, bound the store */
	int so = store_outcome(st, req, &fds, &r, &w, early, &out, started, res);
	/* its store lock held until the run is saved, and no longer: auto_gc
	 * below may take that lock exclusively */
	early_free(early);
	early = NULL;
	if (so == -3) /* not storable: the command's own exit, res->note says why */
		goto out;
	if (so == -4) { /* --strict */
		res->exit_code = EXEC_EXIT_CASHET;
		goto out;
	}
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
	res->stale = h == 1 && req->stale_ms > 0 && now_ms() - res->created_ms > req->stale_ms;
	goto out;
interrupted:
	rc = 0;
	res->signal = spawn_pending_signal();
	res->exit_code = 128 + res->signal;
out:
	if (unclaimed && have_out && (res->verdict == EXEC_RAN || !res->note))
		notice(req, "warning: cannot claim this run (%s); the command ran unclaimed", unclaimed);
	free(unclaimed);
	exec_remote_close(&er); /* releases its lock */
	if (claimed)
		store_claim_release(st, &r.fp, &me);
	if (have_out)
		spawn_result_free(&out);
	trace_free(w.trace);
	prehash_free(w.prehash); /* the trace's thread, which offers it paths, is gone */
	sv_release(&w.found_outputs);
	early_free(early);
	feed_close(&f);
	fds_release(&fds);
	run_record_free(&r);
	if (rc < 0)
		res->exit_code = EXEC_EXIT_CASHET;
	return rc;
}
