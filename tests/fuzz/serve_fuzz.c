/* libFuzzer target for what `cashet serve` parses of a request before it
 * touches the store: the path (serve_route), the Authorization header,
 * the query strings of GET /log and POST /gc, the gc body, the body of
 * POST /submit (submit_prepare, against a small pipeline) and the output
 * a /file/ path names. The first line
 * of an input names the part, the rest is its payload:
 *   route\nMETHOD\nPATH   auth\nTOKEN\nHEADER   log\nQUERY   gcquery\nQUERY
 *   gc\nJSON   submit\nJSON   submit-exec\nJSON (--allow-exec)   file\nPATH
 * `make fuzz-serve`. Nothing here runs a command: submit_prepare only
 * checks a body and reserves a slot, which is given back at once. */
#include <pthread.h>
#include <strings.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "serve/request.h"
#include "serve/submit.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct dag *dag;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static const char pipeline[] =
	"[steps.prep]\n"
	"cmd = \"echo prep > clean.txt\"\n"
	"outputs = [\"clean.txt\"]\n"
	"[steps.train]\n"
	"cmd = [\"sh\", \"-c\", \"echo ${matrix.lr} ${matrix.opt} > model-${matrix.lr}-${matrix.opt}.txt\"]\n"
	"inputs = [\"clean.txt\"]\n"
	"outputs = [\"model-${matrix.lr}-${matrix.opt}.txt\"]\n"
	"matrix = { lr = [0.1, 0.01, 3], opt = [\"adam\", \"sgd\"], on = [true] }\n"
	"[steps.plain]\n"
	"cmd = \"true\"\n"
	"inputs = [\"*.csv\", \"/\"]\n";

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char dir[] = "/tmp/cashet-fuzz-serve.XXXXXX";
	struct strbuf path = STRBUF_INIT;
	if (!mkdtemp(dir))
		abort();
	sb_addf(&path, "%s/dag.toml", dir);
	if (write_file_atomic(path.buf, pipeline, sizeof(pipeline) - 1, 0644) < 0 || dag_load(path.buf, &dag) < 0) {
		fprintf(stderr, "serve_fuzz: %s\n", err_msg());
		abort();
	}
	unlink(path.buf);
	rmdir(dir);
	sb_release(&path);
	return 0;
}

/* The next line of *p (without its newline) as a new string; *p moves past it. */
static char *next_line(const char **p, const char *end)
{
	const char *nl = memchr(*p, '\n', (size_t)(end - *p));
	const char *e = nl ? nl : end;
	char *s = xstrndup(*p, (size_t)(e - *p));
	*p = nl ? nl + 1 : end;
	return s;
}

static int is_hex(const char *s, size_t min, size_t max)
{
	size_t n = strlen(s);
	return n >= min && n <= max && strspn(s, "0123456789abcdef") == n;
}

static void fuzz_route(const char *p, const char *end)
{
	char *method = next_line(&p, end), *url = xstrndup(p, (size_t)(end - p));
	char *arg = NULL, *arg2 = NULL;
	const char *bad = (const char *)1;
	enum route route = R_SUBMIT;
	const char *allow = serve_route(url, method, &route, &arg, &arg2, &bad);
	if (!allow && route != R_NONE)
		abort();
	if (allow && strcmp(allow, "GET, HEAD") && strcmp(allow, "POST") && strcmp(allow, "PUT"))
		abort();
	if (bad == (const char *)1)
		abort();
	/* an argument that passed is what the handlers expect */
	if (!bad && arg && (route == R_RUN || route == R_ARCHIVE_GET) && !is_hex(arg, 4, 40))
		abort();
	if (!bad && arg && route == R_FP && !is_hex(arg, 32, 32))
		abort();
	if (!bad && route == R_FILE) {
		for (const char *c = arg2;;) {
			size_t n = strcspn(c, "/");
			if (!n || (n == 1 && c[0] == '.') || (n == 2 && !strncmp(c, "..", 2)))
				abort();
			if (!c[n])
				break;
			c += n + 1;
		}
	}
	free(arg);
	free(arg2);
	free(method);
	free(url);
}

static void fuzz_auth(const char *p, const char *end)
{
	char *token = next_line(&p, end), *header = xstrndup(p, (size_t)(end - p));
	unsigned st = serve_auth(token[0] ? token : NULL, header[0] ? header : NULL);
	int want = token[0] && !strncasecmp(header, "bearer ", 7) && !strcmp(header + 7, token);
	if (!token[0] ? st != 403 : want ? st != 0 : st != 401)
		abort();
	free(token);
	free(header);
}

/* Splits a query string as MHD does ("k=v&k" -> ("k","v"), ("k",NULL)),
 * without the percent-decoding, and gives each pair to one parser. */
static void fuzz_query(const char *p, const char *end, int gc)
{
	char *q = xstrndup(p, (size_t)(end - p)), *save = NULL;
	struct log_filter f = { 0 };
	struct gc_opts o = { 0 };
	struct strbuf why = STRBUF_INIT;
	int bad = 0;
	for (char *kv = strtok_r(q, "&", &save); kv && !bad; kv = strtok_r(NULL, "&", &save)) {
		char *eq = strchr(kv, '=');
		if (eq)
			*eq = '\0';
		if (gc)
			bad = serve_gc_setting(&o, kv, eq ? eq + 1 : "", 0, 0, &why) < 0;
		else
			bad = serve_log_param(&f, kv, eq ? eq + 1 : NULL) != NULL;
	}
	if (!bad && (f.limit < 0 || f.limit > 1000000 || (f.status && strcmp(f.status, "ok") && strcmp(f.status, "failed"))))
		abort();
	if (!bad && o.older_than_ms < 0)
		abort();
	if (bad && gc && !why.len)
		abort();
	sv_release(&f.tags);
	sb_release(&why);
	free(q);
	err_clear();
}

static void fuzz_gc_body(const char *p, const char *end)
{
	struct gc_opts o = { 0 };
	struct strbuf body = STRBUF_INIT, why = STRBUF_INIT;
	sb_add(&body, p, (size_t)(end - p));
	if (serve_gc_body(&o, &body, &why) == 0 ? o.older_than_ms < 0 || why.len : !why.len)
		abort();
	sb_release(&body);
	sb_release(&why);
	err_clear();
}

static void fuzz_submit(const char *p, const char *end, int allow_exec)
{
	struct submit sm;
	struct strbuf out = STRBUF_INIT;
	unsigned status = 0;
	memset(&sm, 0, sizeof(sm));
	sm.dag = dag;
	sm.allow_exec = allow_exec;
	sm.lock = &lock;
	struct submit_job *jb = submit_prepare(&sm, p, (size_t)(end - p), &status, &out);
	if (jb) {
		/* a job holds a slot until it is freed */
		if (!sm.running[0] || sm.running[1])
			abort();
		submit_free(&sm, jb);
		if (sm.running[0])
			abort();
	} else {
		if (status != 400 && status != 403 && status != 404 && status != 409 && status != 500)
			abort();
		if (strncmp(out.buf, "{\"error\":\"", 10) || out.buf[out.len - 1] != '}')
			abort();
	}
	sb_release(&out);
	err_clear();
}

static void fuzz_file(const char *p, const char *end)
{
	static const struct {
		int kind;
		const char *path;
	} files[] = { { FILE_STDOUT, "stdout" },	  { FILE_OUTPUT, "files/out.txt" }, { FILE_OUTPUT, "files/d/a.bin" },
		      { FILE_OUTPUT, "abs/etc/x" },	  { FILE_SOURCE, "sources/s.py" },  { FILE_OUTPUT, "files/files/y" } };
	struct run_record r = { 0 };
	char *path = xstrndup(p, (size_t)(end - p));
	for (size_t i = 0; i < sizeof(files) / sizeof(*files); i++)
		run_add_file(&r, files[i].kind, files[i].path);
	const struct run_file *f = serve_find_output(&r, path);
	/* only outputs, named by their stored path or the path under files/ */
	if (f && (f->kind != FILE_OUTPUT ||
		  (strcmp(f->path, path) && (strncmp(f->path, "files/", 6) || strcmp(f->path + 6, path)))))
		abort();
	run_record_free(&r);
	free(path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data, *end = p + size;
	char *mode = next_line(&p, end);
	if (!strcmp(mode, "route"))
		fuzz_route(p, end);
	else if (!strcmp(mode, "auth"))
		fuzz_auth(p, end);
	else if (!strcmp(mode, "log"))
		fuzz_query(p, end, 0);
	else if (!strcmp(mode, "gcquery"))
		fuzz_query(p, end, 1);
	else if (!strcmp(mode, "gc"))
		fuzz_gc_body(p, end);
	else if (!strcmp(mode, "submit"))
		fuzz_submit(p, end, 0);
	else if (!strcmp(mode, "submit-exec"))
		fuzz_submit(p, end, 1);
	else if (!strcmp(mode, "file"))
		fuzz_file(p, end);
	free(mode);
	return 0;
}
