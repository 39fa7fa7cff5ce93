/* serve: one store over HTTP (libmicrohttpd), the body of `cashet serve`
 * (see serve.h for why it is a module). Reads are open to whoever can
 * reach the address; writes (gc, archive upload, submit) need the bearer token and
 * are refused when none is configured. The store is opened once and its
 * SQLite connection is not thread-safe, so all store work of a request
 * holds one mutex; only socket I/O runs in parallel, and POST /submit
 * (submit.c), whose command runs without the mutex. */
#include "serve/serve.h"
#include "serve/request.h"
#include "exec/claim.h"
#include "cli/runjson.h"
#include "util/json.h"
#include "serve/submit.h"

#include <fcntl.h>
#include <json-c/json.h>
#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

struct server {
	struct store *st;
	pthread_mutex_t lock; /* held for every use of st */
	char *token;          /* NULL: every write is refused */
	uint64_t max_body;
	unsigned long spools;     /* names temporary files; under lock */
	struct submit submit;     /* POST /submit: --pipeline, --allow-exec */
	int jobs;                 /* submits started and not completed; under lock */
	int streams;              /* blobs being streamed to clients; under lock */
	pthread_cond_t jobs_done; /* signalled as jobs or streams end */
};

/* Blobs larger than this are streamed through a pipe rather than read
 * into memory, and at most MAX_STREAMS at a time: a client that never
 * reads holds a pipe's worth of memory and a thread until the connection
 * times out, not the whole blob. */
#define STREAM_OVER (1 << 20)
#define MAX_STREAMS 16

enum { SUBMIT_RUNNING = 1, SUBMIT_ANSWERED };

/* Per request (MHD's con_cls): the route, the body received so far (in
 * memory for gc, spooled to a file for an archive) and, once the request is
 * refused, the answer to send. */
struct request {
	enum route route;
	char *arg;  /* hash, fingerprint or stored path, owned */
	char *arg2; /* the file path of R_FILE, owned */
	uint64_t received;
	struct strbuf body;
	int fd;
	struct strbuf spool;
	unsigned status; /* != 0: refused, send error */
	char *error;
	/* POST /submit, run by submit_thread while the connection is suspended */
	int submit;       /* 0, SUBMIT_RUNNING, SUBMIT_ANSWERED */
	pthread_t thread; /* submit_thread, while submit != 0; on_completed joins it */
	struct submit_job *job;
	struct server *sv;
	struct MHD_Connection *conn;
	unsigned answer_status;
	struct strbuf answer;
};

/* --- responses --------------------------------------------------------- */

static enum MHD_Result send_buf(struct MHD_Connection *c, unsigned status, const char *type, struct strbuf *sb)
{
	size_t len = sb->len;
	char *buf = sb_detach(sb);
	struct MHD_Response *resp = MHD_create_response_from_buffer_with_free_callback(len, buf, free);
	if (!resp) {
		free(buf);
		return MHD_NO;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	if (status == MHD_HTTP_UNAUTHORIZED)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
	enum MHD_Result ret = MHD_queue_response(c, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static enum MHD_Result send_json(struct MHD_Connection *c, unsigned status, struct strbuf *sb)
{
	sb_addc(sb, '\n');
	return send_buf(c, status, "application/json", sb);
}

static enum MHD_Result send_error(struct MHD_Connection *c, unsigned status, const char *msg)
{
	struct strbuf sb = STRBUF_INIT;
	sb_adds(&sb, "{\"error\":");
	json_str(&sb, msg);
	sb_addc(&sb, '}');
	return send_json(c, status, &sb);
}

static enum MHD_Result send_405(struct MHD_Connection *c, const char *allow)
{
	struct strbuf sb = STRBUF_INIT;
	sb_adds(&sb, "{\"error\":\"method not allowed\"}\n");
	size_t len = sb.len;
	char *buf = sb_detach(&sb);
	struct MHD_Response *resp = MHD_create_response_from_buffer_with_free_callback(len, buf, free);
	if (!resp) {
		free(buf);
		return MHD_NO;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
	enum MHD_Result ret = MHD_queue_response(c, MHD_HTTP_METHOD_NOT_ALLOWED, resp);
	MHD_destroy_response(resp);
	return ret;
}

/* Refuses the request now if possible, else once its body has arrived. */
static void refuse(struct request *rq, unsigned status, const char *msg)
{
	if (rq->status)
		return;
	rq->status = status;
	rq->error = xstrdup(msg);
}

/* --- routing (the parsing is in request.c) ----------------------------- */

/* 0 if the request may write, else the status to refuse it with. */
static unsigned check_token(struct server *sv, struct MHD_Connection *c)
{
	return serve_auth(sv->token, MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION));
}

/* --- handlers (called with sv->lock held) ------------------------------ */

/* Resolves rq->arg to a run and loads it; on failure sends the error. */
static int load_run(struct server *sv, struct MHD_Connection *c, const char *prefix, struct run_record *r,
		    enum MHD_Result *ret)
{
	char hash[OID_HEX];
	if (store_resolve(sv->st, prefix, hash) < 0) {
		const char *m = err_msg();
		unsigned status = !strncmp(m, "no run", 6)      ? MHD_HTTP_NOT_FOUND
				  : !strncmp(m, "ambiguous", 9) ? MHD_HTTP_BAD_REQUEST
								: MHD_HTTP_INTERNAL_SERVER_ERROR;
		*ret = send_error(c, status, m);
		return -1;
	}
	int rc = store_load(sv->st, hash, r);
	if (rc <= 0) {
		*ret = rc < 0 ? send_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, err_msg())
			      : send_error(c, MHD_HTTP_NOT_FOUND, "no such run");
		return -1;
	}
	return 0;
}

struct log_query {
	struct log_filter f;
	const char *bad;
	struct strbuf out;
	int count;
};

static enum MHD_Result log_arg(void *ctx, enum MHD_ValueKind kind, const char *key, const char *value)
{
	struct log_query *q = ctx;
	q->bad = serve_log_param(&q->f, key, value);
	return q->bad ? MHD_NO : MHD_YES;
}

static int log_entry(const struct run_record *r, void *ctx)
{
	struct log_query *q = ctx;
	if (q->count++)
		sb_addc(&q->out, ',');
	runjson_log(&q->out, r);
	return 0;
}

static enum MHD_Result h_log(struct server *sv, struct MHD_Connection *c)
{
	struct log_query q = { .out = STRBUF_INIT };
	enum MHD_Result ret;
	MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, log_arg, &q);
	sb_addc(&q.out, '[');
	if (q.bad)
		ret = send_error(c, MHD_HTTP_BAD_REQUEST, q.bad);
	else if (store_list(sv->st, &q.f, log_entry, &q) < 0)
		ret = send_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, err_msg());
	else {
		sb_addc(&q.out, ']');
		ret = send_json(c, MHD_HTTP_OK, &q.out);
	}
	sb_release(&q.out);
	sv_release(&q.f.tags);
	return ret;
}

static enum MHD_Result h_stats(struct server *sv, struct MHD_Connection *c)
{
	struct store_stats s;
	struct strbuf sb = STRBUF_INIT;
	if (store_stats(sv->st, &s) < 0)
		return send_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, err_msg());
	runjson_stats(&sb, store_dir(sv->st), &s);
	return send_json(c, MHD_HTTP_OK, &sb);
}

struct gc_query {
	struct gc_opts *o;
	struct strbuf *why;
	int bad;
};

static enum MHD_Result gc_arg(void *ctx, enum MHD_ValueKind kind, const char *key, const char *value)
{
	struct gc_query *q = ctx;
	if (serve_gc_setting(q->o, key, value ? value : "", 0, 0, q->why) < 0)
		q->bad = 1;
	return q->bad ? MHD_NO : MHD_YES;
}

static enum MHD_Result h_gc(struct server *sv, struct MHD_Connection *c, struct request *rq)
{
	struct gc_opts o = { .busy = claim_busy };
	struct gc_report r;
	struct strbuf why = STRBUF_INIT, sb = STRBUF_INIT;
	struct gc_query q = { &o, &why, 0 };
	enum MHD_Result ret;
	MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, gc_arg, &q);
	if (q.bad || (rq->body.len && serve_gc_body(&o, &rq->body, &why) < 0)) {
		ret = send_error(c, MHD_HTTP_BAD_REQUEST, why.buf);
	} else if (store_gc(sv->st, &o, &r) < 0) {
		ret = send_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, err_msg());
	} else {
		sb_addf(&sb,
			"{\"dry_run\":%s,\"expired\":%lld,\"evicted\":%lld,\"kept\":%lld,\"busy\":%lld,"
			"\"bytes_before\":%lld,\"bytes_after\":%lld}",
			o.dry_run ? "true" : "false", (long long)r.expired, (long long)r.evicted, (long long)r.kept,
			(long long)r.busy, (long long)r.bytes_before, (long long)r.bytes_after);
		ret = send_json(c, MHD_HTTP_OK, &sb);
	}
	sb_release(&why);
	sb_release(&sb);
	return ret;
}

/* One blob on its way to a client: a thread inflates it into a pipe that
 * MHD reads as the client takes it. */
struct blob_stream {
	struct server *sv;
	struct run_file f; /* a copy: the run is freed when the handler returns */
	struct blob_hold held;
	int fd; /* the pipe's write end */
};

static void *stream_thread(void *arg)
{
	struct blob_stream *bs = arg;
	/* EPIPE when the client went away (or timed out): nothing to report */
	if (store_blob_send(bs->sv->st, &bs->f, &bs->held, bs->fd) < 0)
		err_clear();
	close(bs->fd);
	store_blob_release(&bs->held);
	free(bs->f.path);
	pthread_mutex_lock(&bs->sv->lock);
	bs->sv->streams--;
	pthread_cond_signal(&bs->sv->jobs_done);
	pthread_mutex_unlock(&bs->sv->lock);
	free(bs);
	return NULL;
}

/* Sends stored blob f: small ones (and deltas, which are read whole
 * anyway) from memory, others streamed. Called with sv->lock held. */
static enum MHD_Result send_blob(struct server *sv, struct MHD_Connection *c, const struct run_file *f)
{
	struct strbuf mem = STRBUF_INIT;
	struct blob_hold held = { .fd = -1 };
	int p[2] = { -1, -1 };
	if (f->size > STREAM_OVER && sv->streams >= MAX_STREAMS)
		return send_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, "too many downloads in progress; try again");
	if (store_blob_check(sv->st, f, &mem, &held) < 0)
		return send_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, err_msg());
	if (held.fd < 0)
		return send_buf(c, MHD_HTTP_OK, "application/octet-stream", &mem);
	struct blob_stream *bs = xcalloc(1, sizeof(*bs));
	pthread_t t;
	struct MHD_Response *resp = NULL;
	if (pipe2(p, O_CLOEXEC) < 0 || !(resp = MHD_create_response_from_pipe(p[0]))) {
		store_blob_release(&held);
		free(bs);
		if (p[0] >= 0)
			close(p[0]);
		if (p[1] >= 0)
			close(p[1]);
		return MHD_NO;
	}
	bs->sv = sv;
	bs->f = *f;
	bs->f.path = xstrdup(f->path);
	bs->f.src = NULL;
	memset(&bs->f.held, 0, sizeof(bs->f.held));
	bs->f.data = NULL;
	bs->held = held;
	bs->fd = p[1];
	sv->streams++;
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&t, &attr, stream_thread, bs) != 0) {
		sv->streams--;
		close(p[1]); /* the client gets a short body, MHD closes p[0] */
		store_blob_release(&bs->held);
		free(bs->f.path);
		free(bs);
	}
	pthread_attr_destroy(&attr);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/octet-stream");
	enum MHD_Result ret = MHD_queue_response(c, MHD_HTTP_OK, resp);
	MHD_destroy_response(resp);
	return ret;
}

static enum MHD_Result h_run(struct server *sv, struct MHD_Connection *c, struct request *rq)
{
	struct run_record r = { 0 };
	struct strbuf sb = STRBUF_INIT;
	const struct run_file *f = NULL;
	enum MHD_Result ret;
	if (load_run(sv, c, rq->arg, &r, &ret) < 0)
		goto out;
	if (rq->route == R_RUN) {
		runjson_show(&sb, &r);
		ret = send_json(c, MHD_HTTP_OK, &sb);
		goto out;
	}
	if (rq->route == R_FILE) {
		f = serve_find_output(&r, rq->arg2);
	} else {
		int kind = rq->route == R_STDOUT ? FILE_STDOUT : FILE_STDERR;
		for (size_t i = 0; !f && i < r.nfiles; i++)
			if (r.files[i].kind == kind)
				f = &r.files[i];
	}
	if (!f)
		ret = send_error(c, MHD_HTTP_NOT_FOUND,
				 rq->route == R_FILE ? "the run has no such output file"
						     : "the run has no such stream");
	else
		ret = send_blob(sv, c, f);
out:
	sb_release(&sb);
	run_record_free(&r);
	return ret;
}

static enum MHD_Result h_fp(struct server *sv, struct MHD_Connection *c, struct request *rq)
{
	struct digest d;
	struct run_record r = { 0 };
	struct strbuf sb = STRBUF_INIT;
	enum MHD_Result ret;
	int rc;
	if (digest_parse(rq->arg, &d) < 0)
		return send_error(c, MHD_HTTP_BAD_REQUEST, err_msg());
	/* the newest run: the client checks its observed inputs itself */
	struct store_lookup_opts lo = { .now = now_ms() };
	rc = store_lookup(sv->st, &d, &lo, &r);
	if (rc < 0) {
		ret = send_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, err_msg());
	} else if (rc == 0) {
		ret = send_error(c, MHD_HTTP_NOT_FOUND, "no run for this fingerprint");
	} else {
		sb_addf(&sb, "{\"run\":\"%s\"}", r.hash);
		ret = send_json(c, MHD_HTTP_OK, &sb);
	}
	run_record_free(&r);
	return ret;
}

/* Temporary files are named like import staging ("import-PID-...") so
 * that a store sweep removes them if the server dies. */
static void spool_name(struct server *sv, const char *what, struct strbuf *sb)
{
	sb_addf(sb, "%s/import-%ld-serve-%s-%lu", store_tmpdir(sv->st), (long)getpid(), what, ++sv->spools);
}

/* An archive spooled to an unlinked file, sent as the client reads it; it
 * holds one of the MAX_STREAMS slots (and its disk space) until MHD frees
 * the response: sent, or the connection gone or timed out. */
struct spooled {
	struct server *sv;
	int fd;
};

static ssize_t spooled_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct spooled *sp = cls;
	ssize_t n = pread(sp->fd, buf, max, (off_t)pos);
	return n > 0 ? n : n == 0 ? MHD_CONTENT_READER_END_OF_STREAM : MHD_CONTENT_READER_END_WITH_ERROR;
}

static void spooled_free(void *cls)
{
	struct spooled *sp = cls;
	close(sp->fd);
	pthread_mutex_lock(&sp->sv->lock);
	sp->sv->streams--;
	pthread_cond_signal(&sp->sv->jobs_done);
	pthread_mutex_unlock(&sp->sv->lock);
	free(sp);
}

static enum MHD_Result h_archive_get(struct server *sv, struct MHD_Connection *c, struct request *rq)
{
	struct run_record r = { 0 };
	struct strvec hashes = STRVEC_INIT;
	struct strbuf file = STRBUF_INIT;
	struct stat sb;
	uint64_t size;
	enum MHD_Result ret;
	int fd = -1;
	if (load_run(sv, c, rq->arg, &r, &ret) < 0)
		goto out;
	if (sv->streams >= MAX_STREAMS) {
		ret = send_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, "too many downloads in progress; try again");
		goto out;
	}
	sv_push(&hashes, r.hash);
	spool_name(sv, "export", &file);
	if (store_export(sv->st, &hashes, file.buf, &size) < 0) {
		ret = send_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, err_msg());
		goto out;
	}
	/* unlinked at once: the open descriptor keeps the bytes until sent */
	fd = open(file.buf, O_RDONLY | O_CLOEXEC);
	unlink(file.buf);
	if (fd < 0 || fstat(fd, &sb) < 0) {
		ret = send_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "cannot read the archive");
		goto out;
	}
	struct spooled *sp = xmalloc(sizeof(*sp));
	*sp = (struct spooled){ sv, fd };
	struct MHD_Response *resp =
		MHD_create_response_from_callback((uint64_t)sb.st_size, 65536, spooled_read, sp, spooled_free);
	if (!resp) {
		free(sp);
		ret = MHD_NO;
		goto out;
	}
	fd = -1; /* the response owns it */
	sv->streams++;
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/octet-stream");
	ret = MHD_queue_response(c, MHD_HTTP_OK, resp);
	MHD_destroy_response(resp);
out:
	if (fd >= 0)
		close(fd);
	sv_release(&hashes);
	sb_release(&file);
	run_record_free(&r);
	return ret;
}

static enum MHD_Result h_archive_put(struct server *sv, struct MHD_Connection *c, struct request *rq)
{
	struct strbuf sb = STRBUF_INIT;
	size_t imported = 0, present = 0;
	int cr = close(rq->fd);
	rq->fd = -1;
	if (cr < 0)
		return send_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "cannot write the upload");
	if (!rq->received)
		return send_error(c, MHD_HTTP_BAD_REQUEST, "empty body: expected an archive made by 'cashet export'");
	/* import verifies everything (format, pack, every run's paths, and
	 * its signer when the store has a trust policy) before adding
	 * anything, so a bad upload is the client's error; a run signed by
	 * nobody the policy allows is refused whoever holds the token */
	if (store_import(sv->st, rq->spool.buf, 0, &imported, &present) < 0) {
		int untrusted = err_code() == E_UNTRUSTED;
		/* the spool's name means nothing to the client */
		const char *m = err_msg();
		if (!strncmp(m, rq->spool.buf, rq->spool.len))
			sb_addf(&sb, "archive%s", m + rq->spool.len);
		else
			sb_adds(&sb, m);
		enum MHD_Result ret = send_error(c, untrusted ? MHD_HTTP_FORBIDDEN : MHD_HTTP_BAD_REQUEST, sb.buf);
		sb_release(&sb);
		return ret;
	}
	sb_addf(&sb, "{\"imported\":%zu,\"present\":%zu}", imported, present);
	return send_json(c, MHD_HTTP_OK, &sb);
}

/* The thread of one submit: runs it, then resumes the connection, whose
 * next call to on_request sends the answer. rq is not freed before the
 * thread ends: on_completed joins it first. */
static void *submit_thread(void *arg)
{
	struct request *rq = arg;
	struct server *sv = rq->sv;
	submit_run(&sv->submit, rq->job, &rq->answer_status, &rq->answer);
	rq->job = NULL;
	rq->submit = SUBMIT_ANSWERED;
	MHD_resume_connection(rq->conn);
	return NULL;
}

/* A submit runs for as long as its command does, on a thread of its own
 * with the connection suspended (a suspended connection does not time
 * out): MHD's threads keep serving everything else meanwhile. */
static enum MHD_Result h_submit(struct server *sv, struct MHD_Connection *c, struct request *rq)
{
	struct strbuf sb = STRBUF_INIT;
	unsigned status;
	int rc;
	if (rq->submit == SUBMIT_ANSWERED)
		return send_json(c, rq->answer_status, &rq->answer);
	if (rq->submit == SUBMIT_RUNNING)
		return MHD_YES;
	rq->job = submit_prepare(&sv->submit, rq->body.buf, rq->body.len, &status, &sb);
	if (!rq->job)
		return send_json(c, status, &sb);
	rq->sv = sv;
	rq->conn = c;
	rq->submit = SUBMIT_RUNNING;
	pthread_mutex_lock(&sv->lock);
	sv->jobs++;
	pthread_mutex_unlock(&sv->lock);
	MHD_suspend_connection(c);
	rc = pthread_create(&rq->thread, NULL, submit_thread, rq);
	if (rc == 0)
		return MHD_YES;
	MHD_resume_connection(c);
	submit_free(&sv->submit, rq->job);
	rq->job = NULL;
	rq->submit = 0;
	pthread_mutex_lock(&sv->lock);
	sv->jobs--;
	pthread_mutex_unlock(&sv->lock);
	return send_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "cannot start a thread for the submit");
}

static enum MHD_Result dispatch(struct server *sv, struct MHD_Connection *c, struct request *rq)
{
	enum MHD_Result ret;
	if (rq->route == R_SUBMIT)
		return h_submit(sv, c, rq); /* takes the lock only for lookups */
	pthread_mutex_lock(&sv->lock);
	err_clear();
	switch (rq->route) {
	case R_LOG:
		ret = h_log(sv, c);
		break;
	case R_STATS:
		ret = h_stats(sv, c);
		break;
	case R_GC:
		ret = h_gc(sv, c, rq);
		break;
	case R_RUN:
	case R_STDOUT:
	case R_STDERR:
	case R_FILE:
		ret = h_run(sv, c, rq);
		break;
	case R_FP:
		ret = h_fp(sv, c, rq);
		break;
	case R_ARCHIVE_GET:
		ret = h_archive_get(sv, c, rq);
		break;
	case R_ARCHIVE_PUT:
		ret = h_archive_put(sv, c, rq);
		break;
	default:
		ret = send_error(c, MHD_HTTP_NOT_FOUND, "not found");
		break;
	}
	pthread_mutex_unlock(&sv->lock);
	return ret;
}

/* --- the MHD callbacks -------------------------------------------------- */

static uint64_t body_limit(const struct server *sv, const struct request *rq)
{
	return rq->route == R_SUBMIT && sv->max_body > SUBMIT_MAX_BODY ? SUBMIT_MAX_BODY : sv->max_body;
}

/* The first call of a request (headers only) routes and authorizes it and
 * may answer at once; later calls bring the body, counted against
 * --max-body as it arrives (Content-Length is checked first, but chunked
 * uploads have none); the last call (no data) answers. */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
				  const char *version, const char *data, size_t *datalen, void **con_cls)
{
	struct server *sv = cls;
	struct request *rq = *con_cls;
	if (!rq) {
		const char *allow, *bad, *cl;
		rq = xcalloc(1, sizeof(*rq));
		rq->fd = -1;
		*con_cls = rq;
		allow = serve_route(url, method, &rq->route, &rq->arg, &rq->arg2, &bad);
		if (!allow)
			return send_error(c, MHD_HTTP_NOT_FOUND, "not found");
		if (rq->route == R_NONE)
			return send_405(c, allow);
		if (bad)
			return send_error(c, MHD_HTTP_BAD_REQUEST, bad);
		if (rq->route == R_GC || rq->route == R_ARCHIVE_PUT || rq->route == R_SUBMIT) {
			unsigned st = check_token(sv, c);
			if (st)
				return send_error(c, st,
						  st == MHD_HTTP_FORBIDDEN
							  ? "writes are disabled: the server has no token"
							  : "a valid 'Authorization: Bearer TOKEN' header is required");
		}
		cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
		if (cl && strtoull(cl, NULL, 10) > body_limit(sv, rq))
			return send_error(c, MHD_HTTP_CONTENT_TOO_LARGE, "request body too large");
		if (rq->route == R_ARCHIVE_PUT) {
			pthread_mutex_lock(&sv->lock);
			spool_name(sv, "upload", &rq->spool);
			pthread_mutex_unlock(&sv->lock);
			rq->fd = open(rq->spool.buf, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
			if (rq->fd < 0) {
				sb_reset(&rq->spool);
				return send_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "cannot store the upload");
			}
		}
		return MHD_YES;
	}
	if (*datalen) {
		size_t n = *datalen;
		*datalen = 0;
		if (rq->status)
			return MHD_YES;
		rq->received += n;
		if (rq->received > body_limit(sv, rq)) {
			refuse(rq, MHD_HTTP_CONTENT_TOO_LARGE, "request body too large");
			if (rq->fd >= 0) {
				close(rq->fd);
				rq->fd = -1;
				unlink(rq->spool.buf);
				sb_reset(&rq->spool);
			}
			sb_release(&rq->body);
			/* answer now instead of reading the rest: a suspended
			 * connection may be given its response at any time */
			MHD_suspend_connection(c);
			send_error(c, rq->status, rq->error);
			MHD_resume_connection(c);
			return MHD_YES;
		}
		if (rq->route == R_ARCHIVE_PUT) {
			if (write_all(rq->fd, data, n) < 0)
				refuse(rq, MHD_HTTP_INTERNAL_SERVER_ERROR, "cannot store the upload");
		} else if (rq->route == R_GC || rq->route == R_SUBMIT) {
			sb_add(&rq->body, data, n);
		}
		return MHD_YES;
	}
	if (rq->status)
		return send_error(c, rq->status, rq->error);
	return dispatch(sv, c, rq);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe)
{
	struct server *sv = cls;
	struct request *rq = *con_cls;
	if (!rq)
		return;
	if (rq->submit) {
		/* The thread is past submit_run(), but MHD_resume_connection()
		 * still uses the daemon after the answer can be sent, and the
		 * thread's libraries free their state at its exit: the server
		 * may stop only once it is gone. */
		pthread_join(rq->thread, NULL);
		/* its answer is sent (or the client is gone): the server may stop */
		pthread_mutex_lock(&sv->lock);
		sv->jobs--;
		pthread_cond_signal(&sv->jobs_done);
		pthread_mutex_unlock(&sv->lock);
	}
	if (rq->fd >= 0)
		close(rq->fd);
	if (rq->spool.len)
		unlink(rq->spool.buf);
	sb_release(&rq->spool);
	sb_release(&rq->body);
	sb_release(&rq->answer);
	free(rq->arg);
	free(rq->arg2);
	free(rq->error);
	free(rq);
	*con_cls = NULL;
}

/* Percent-decodes like MHD, except that a path or argument holding %00
 * is left encoded: decoded, it would be cut short at the NUL and name
 * something else than what the client asked for. */
static size_t unescape(void *cls, struct MHD_Connection *c, char *s)
{
	if (strstr(s, "%00"))
		return strlen(s);
	return MHD_http_unescape(s);
}

/* --- the command -------------------------------------------------------- */

/* "ADDR:PORT", "[IPv6]:PORT" or ":PORT" (127.0.0.1). */
static int parse_listen(const char *s, struct sockaddr_storage *ss)
{
	struct addrinfo hints = { .ai_flags = AI_NUMERICSERV, .ai_socktype = SOCK_STREAM }, *ai = NULL;
	const char *colon = strrchr(s, ':');
	char *host;
	int rc;
	if (!colon || !colon[1] || strspn(colon + 1, "0123456789") != strlen(colon + 1) || strlen(colon + 1) > 5 ||
	    atoi(colon + 1) > 65535)
		return err_set("--listen: expected ADDR:PORT, got '%s'", s);
	if (s[0] == '[' && colon > s + 1 && colon[-1] == ']')
		host = xstrndup(s + 1, (size_t)(colon - s - 2));
	else
		host = colon == s ? xstrdup("127.0.0.1") : xstrndup(s, (size_t)(colon - s));
	rc = getaddrinfo(host, colon + 1, &hints, &ai);
	if (rc != 0 || !ai) {
		err_set("--listen: cannot resolve '%s': %s", host, gai_strerror(rc));
		free(host);
		return -1;
	}
	memcpy(ss, ai->ai_addr, ai->ai_addrlen);
	freeaddrinfo(ai);
	free(host);
	return 0;
}

static int read_token_file(const char *path, char **token)
{
	struct strbuf sb = STRBUF_INIT;
	if (read_file_sb(path, &sb) < 0) {
		sb_release(&sb);
		return -1;
	}
	while (sb.len && (sb.buf[sb.len - 1] == '\n' || sb.buf[sb.len - 1] == '\r' || sb.buf[sb.len - 1] == ' '))
		sb_setlen(&sb, sb.len - 1);
	*token = sb_detach(&sb);
	return 0;
}

MODULE_ENTRY int cashet_serve_v2(struct cli *cli, const struct serve_opts *o)
{
	struct server sv = { .lock = PTHREAD_MUTEX_INITIALIZER, .jobs_done = PTHREAD_COND_INITIALIZER };
	struct sockaddr_storage addr;
	const char *listen = o->listen;
	struct MHD_Daemon *d = NULL;
	sigset_t sigs;
	int sig, rc = 1;
	sv.max_body = o->max_body;
	sv.submit.allow_exec = o->allow_exec;
	if (o->token_file && read_token_file(o->token_file, &sv.token) < 0) {
		rc = cli_fail(1);
		goto out;
	}
	if (o->token)
		sv.token = xstrdup(o->token);
	if (sv.token && !sv.token[0]) {
		rc = cli_usage("serve", "the token is empty");
		goto out;
	}
	if (sv.submit.allow_exec && !sv.token) {
		rc = cli_usage("serve", "--allow-exec needs a token (--token or --token-file)");
		goto out;
	}
	if (o->pipeline && dag_load(o->pipeline, &sv.submit.dag) < 0) {
		rc = cli_fail(2);
		goto out;
	}
	if (parse_listen(listen, &addr) < 0) {
		rc = cli_usage("serve", "%s", err_msg());
		goto out;
	}
	if (cli_open_store(cli, 0, &sv.st, NULL) < 0 || submit_init(&sv.submit, sv.st, &sv.lock) < 0) {
		rc = cli_fail(1);
		goto out;
	}
	/* the MHD threads inherit this mask: only this thread takes INT and TERM */
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	d = MHD_start_daemon(MHD_USE_AUTO_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME |
				     (addr.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0),
			     0, NULL, NULL, on_request, &sv, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
			     MHD_OPTION_THREAD_POOL_SIZE, 4u, MHD_OPTION_CONNECTION_LIMIT, 256u,
			     MHD_OPTION_CONNECTION_TIMEOUT, 60u, MHD_OPTION_NOTIFY_COMPLETED, on_completed, &sv,
			     MHD_OPTION_UNESCAPE_CALLBACK, unescape, NULL, MHD_OPTION_END);
	if (!d) {
		rc = cli_error(1, "cannot listen on %s (address in use or not available)", listen);
		goto out;
	}
	const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
	fprintf(stderr, "cashet: serving %s on http://%s (port %u); writes %s\n", store_dir(sv.st), listen,
		info ? (unsigned)info->port : 0u, sv.token ? "need the token" : "are disabled (no token)");
	if (sv.submit.dag)
		fprintf(stderr, "cashet: POST /submit runs the steps of %s%s\n", sv.submit.dag->file,
			sv.submit.allow_exec ? " and commands" : "");
	else if (sv.submit.allow_exec)
		fputs("cashet: POST /submit runs commands\n", stderr);
	while (sigwait(&sigs, &sig) != 0)
		;
	rc = 0;
out:
	if (d) {
		/* MHD must not stop with a connection suspended: running submits
		 * end their commands and send their answers first */
		submit_stop(&sv.submit);
		pthread_mutex_lock(&sv.lock);
		while (sv.jobs)
			pthread_cond_wait(&sv.jobs_done, &sv.lock);
		pthread_mutex_unlock(&sv.lock);
		MHD_stop_daemon(d);
		/* closing the connections closed the pipes: the streams end */
		pthread_mutex_lock(&sv.lock);
		while (sv.streams)
			pthread_cond_wait(&sv.jobs_done, &sv.lock);
		pthread_mutex_unlock(&sv.lock);
	}
	submit_release(&sv.submit);
	dag_free(sv.submit.dag);
	store_close(sv.st);
	free(sv.token);
	return rc;
}
