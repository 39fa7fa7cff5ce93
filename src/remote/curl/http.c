/* http: GET and PUT with libcurl for the http(s):// remote (see http.h for
 * why this is a module). One easy handle lives as long as the process, so
 * a lookup and the archive that follows it share a connection. Redirects
 * are not followed and only http and https are spoken: the remote URL
 * names the server, and nothing it answers sends the token elsewhere. */
#include "remote/curl/http.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Only the start of an error answer is kept: it is for a message. */
#define ERROR_BODY_MAX (64 * 1024)

static CURL *handle;

/* Where the body of the answer goes: a 2xx body to fd (or body when
 * fd < 0), anything else to body, for the error message. */
struct sink {
	CURL *c;
	int fd;
	struct strbuf *body;
	uint64_t max, got;
	int too_big;
	int write_errno;
};

static size_t on_data(char *data, size_t size, size_t n, void *ctx)
{
	struct sink *s = ctx;
	size_t len = size * n;
	long code = 0;
	curl_easy_getinfo(s->c, CURLINFO_RESPONSE_CODE, &code);
	if (code / 100 != 2) {
		if (s->body && s->body->len < ERROR_BODY_MAX)
			sb_add(s->body, data,
			       len < ERROR_BODY_MAX - s->body->len ? len : ERROR_BODY_MAX - s->body->len);
		return len;
	}
	s->got += len;
	if (s->max && s->got > s->max) {
		s->too_big = 1;
		return 0; /* fewer bytes than given: libcurl stops */
	}
	if (s->fd >= 0) {
		if (write_all(s->fd, data, len) < 0) {
			s->write_errno = errno;
			return 0;
		}
	} else if (s->body) {
		sb_add(s->body, data, len);
	}
	return len;
}

/* Runs the request set up on handle. 0 answered, 1 over max, <0 error. */
static int perform(const char *url, const struct http_opts *o, struct sink *s, struct curl_slist *hdrs, long *status)
{
	char errbuf[CURL_ERROR_SIZE] = "";
	struct strbuf auth = STRBUF_INIT;
	CURL *c = handle;
	CURLcode rc;
	int ret = -1;
	*status = 0;
	s->c = c;
	curl_easy_setopt(c, CURLOPT_URL, url);
#if LIBCURL_VERSION_NUM >= 0x075500
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
#else
	curl_easy_setopt(c, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "cashet/" CASHET_VERSION);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, o->timeout_ms);
	/* "no data for timeout_ms": under 1 byte/s for that long */
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, (o->timeout_ms + 999) / 1000);
	if (o->total_ms)
		curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, o->total_ms);
	if (o->max_bytes)
		curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)o->max_bytes);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, s);
	if (o->token) {
		sb_addf(&auth, "Authorization: Bearer %s", o->token);
		hdrs = curl_slist_append(hdrs, auth.buf);
	}
	if (o->userpwd) {
		curl_easy_setopt(c, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
		curl_easy_setopt(c, CURLOPT_USERPWD, o->userpwd);
	}
	if (o->netrc) {
		const char *file = getenv("NETRC");
		curl_easy_setopt(c, CURLOPT_NETRC, (long)CURL_NETRC_OPTIONAL);
		if (file && *file)
			curl_easy_setopt(c, CURLOPT_NETRC_FILE, file);
	}
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	rc = curl_easy_perform(c);
	if (rc == CURLE_FILESIZE_EXCEEDED || s->too_big) {
		ret = 1;
	} else if (rc == CURLE_OPERATION_TIMEDOUT) {
		err_set("timed out after %ld ms", o->total_ms ? o->total_ms : o->timeout_ms);
	} else if (rc == CURLE_WRITE_ERROR && s->write_errno) {
		err_set("cannot write the answer: %s", strerror(s->write_errno));
	} else if (rc != CURLE_OK) {
		size_t n = strlen(errbuf);
		while (n && errbuf[n - 1] == '\n')
			errbuf[--n] = '\0';
		err_set("%s", n ? errbuf : curl_easy_strerror(rc));
	} else {
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
		ret = 0;
	}
	/* the handle keeps its connection, not this request's settings */
	curl_easy_reset(c);
	curl_slist_free_all(hdrs);
	sb_release(&auth);
	return ret;
}

static int start(void)
{
	if (!handle && !(handle = curl_easy_init()))
		return err_set("cannot start libcurl");
	return 0;
}

static int http_get(const char *url, const struct http_opts *o, const char *path, struct strbuf *body, long *status)
{
	struct sink s = { .fd = -1, .body = body, .max = o->max_bytes };
	int rc;
	*status = 0;
	if (start() < 0)
		return -1;
	if (path && (s.fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) < 0)
		return err_sys("cannot create %s", path);
	rc = perform(url, o, &s, NULL, status);
	if (s.fd >= 0 && close(s.fd) < 0 && rc == 0)
		rc = err_sys("cannot write %s", path);
	return rc;
}

static int http_put(const char *url, const struct http_opts *o, const char *path, struct strbuf *body, long *status)
{
	struct sink s = { .fd = -1, .body = body };
	struct curl_slist *hdrs = NULL;
	struct stat sb;
	FILE *f;
	int rc;
	*status = 0;
	if (start() < 0)
		return -1;
	if (!(f = fopen(path, "rbe")))
		return err_sys("cannot open %s", path);
	if (fstat(fileno(f), &sb) < 0) {
		rc = err_sys("cannot read %s", path);
		fclose(f);
		return rc;
	}
	hdrs = curl_slist_append(hdrs, "Content-Type: application/octet-stream");
	curl_easy_setopt(handle, CURLOPT_UPLOAD, 1L);
	curl_easy_setopt(handle, CURLOPT_READDATA, f);
	curl_easy_setopt(handle, CURLOPT_INFILESIZE_LARGE, (curl_off_t)sb.st_size);
	rc = perform(url, o, &s, hdrs, status);
	fclose(f);
	return rc < 0 ? -1 : 0;
}

static int http_head(const char *url, const struct http_opts *o, long *status)
{
	struct sink s = { .fd = -1 };
	*status = 0;
	if (start() < 0)
		return -1;
	curl_easy_setopt(handle, CURLOPT_NOBODY, 1L);
	return perform(url, o, &s, NULL, status) < 0 ? -1 : 0;
}

MODULE_ENTRY const struct httpmod *cashet_httpmod_v2(void)
{
	static const struct httpmod table = { http_get, http_put, http_head };
	static int ready;
	if (!ready) {
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
			return NULL;
		ready = 1;
	}
	return &table;
}
