/* Unit tests for the file-access tracer (src/trace): real commands run
 * under it in a temporary directory, and what it recorded of them. Every
 * test skips, with the reason, when this system cannot trace (no seccomp
 * user notification, as in some containers). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "trace/preload.h"
#include "trace/trace.h"
#include "util/util.h"

extern char **environ;

struct tdir {
	char *dir; /* realpath()ed: the tracer reports the kernel's names of the cwd */
};

static int tdir_setup(void **state)
{
	char tmpl[] = "/tmp/cashet-test-trace.XXXXXX";
	if (!mkdtemp(tmpl))
		return -1;
	struct tdir *d = xcalloc(1, sizeof(*d));
	d->dir = realpath(tmpl, NULL);
	*state = d;
	return d->dir ? 0 : -1;
}

static int tdir_teardown(void **state)
{
	struct tdir *d = *state;
	if (d) {
		rm_rf(d->dir);
		free(d->dir);
		free(d);
	}
	return 0;
}

static void skip_unless_available(void)
{
	if (!trace_available()) {
		print_message("# skipped: %s\n", err_msg());
		skip();
	}
}

/* dir/rel, made with content (parents too); mode 0755 makes a script. */
static void put(const struct tdir *d, const char *rel, const char *content, unsigned mode)
{
	struct strbuf p = STRBUF_INIT;
	sb_addf(&p, "%s/%s", d->dir, rel);
	char *slash = strrchr(p.buf, '/');
	*slash = '\0';
	assert_int_equal(mkdirs(p.buf, 0755), 0);
	*slash = '/';
	assert_int_equal(write_file_atomic(p.buf, content, strlen(content), mode), 0);
	sb_release(&p);
}

/* How run_env sets up the child's environment. */
enum preload_mode {
	PRELOAD_NONE, /* this process's environment, unchanged: every call stops */
	PRELOAD_ON,   /* trace_environ with this tree's cashet-trace.so */
	PRELOAD_OFF,  /* trace_environ with no library ($CASHET_TRACE_PRELOAD empty) */
};

/* Forks; the child goes to cwd, sends its output to /dev/null, installs
 * the tracer and runs fn(arg) (which execs or _exits) in the environment
 * mode says; the parent serves, reaps the child and finishes the trace.
 * cookie (if not NULL) gets the run's cookie, 0 without the library. */
static struct trace *run_env(const char *cwd, enum preload_mode mode, void (*fn)(void *), void *arg, int *status,
			     uint64_t *cookie)
{
	struct trace *t = NULL;
	if (mode != PRELOAD_NONE)
		setenv("CASHET_TRACE_PRELOAD", mode == PRELOAD_ON ? CASHET_TEST_TRACE_PRELOAD : "", 1);
	if (trace_new(&t) < 0)
		fail_msg("trace_new: %s", err_msg());
	unsetenv("CASHET_TRACE_PRELOAD");
	struct strvec env = STRVEC_INIT;
	if (mode != PRELOAD_NONE)
		trace_environ(t, NULL, &env);
	if (cookie) {
		*cookie = 0;
		for (size_t i = 0; i < env.n; i++) {
			const char *c = strncmp(env.v[i], "CASHET_TRACE_LOG=", 17) ? NULL : strrchr(env.v[i], ':');
			if (c)
				*cookie = strtoull(c + 1, NULL, 16);
		}
	}
	int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
	assert_true(null >= 0);
	if (trace_listen(t) < 0)
		fail_msg("trace_listen: %s", err_msg());
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		if (cwd && chdir(cwd) < 0)
			_exit(125);
		dup2(null, STDOUT_FILENO);
		if (env.v)
			environ = env.v;
		trace_child_install(t);
		fn(arg);
		_exit(127);
	}
	close(null);
	sv_release(&env);
	if (trace_parent_attach(t) < 0)
		fail_msg("trace_parent_attach: %s", err_msg());
	int st = 0;
	while (waitpid(pid, &st, 0) < 0)
		assert_int_equal(errno, EINTR);
	trace_finish(t);
	*status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	return t;
}

static struct trace *run_fn(const char *cwd, void (*fn)(void *), void *arg, int *status)
{
	return run_env(cwd, PRELOAD_NONE, fn, arg, status, NULL);
}

static void exec_argv(void *arg)
{
	char **argv = arg;
	execvp(argv[0], argv);
}

static struct trace *run(const struct tdir *d, char **argv, int *status)
{
	return run_fn(d->dir, exec_argv, argv, status);
}

/* The access bits recorded for dir/rel (rel NULL: dir), 0 if none. */
static unsigned access_of(const struct trace *t, const struct tdir *d, const char *rel)
{
	struct strbuf p = STRBUF_INIT;
	if (rel)
		sb_addf(&p, "%s/%s", d->dir, rel);
	else
		sb_adds(&p, d->dir);
	size_t n;
	const struct trace_event *ev = trace_events(t, &n);
	unsigned a = 0;
	for (size_t i = 0; i < n; i++)
		if (!strcmp(ev[i].path, p.buf))
			a = ev[i].access;
	sb_release(&p);
	return a;
}

/* Its index in the record, or -1. */
static long index_of(const struct trace *t, const struct tdir *d, const char *rel)
{
	char p[PATH_MAX];
	snprintf(p, sizeof(p), "%s/%s", d->dir, rel);
	size_t n;
	const struct trace_event *ev = trace_events(t, &n);
	for (size_t i = 0; i < n; i++)
		if (!strcmp(ev[i].path, p))
			return (long)i;
	return -1;
}

#define assert_access(t, d, rel, bits)                                                                                 \
	do {                                                                                                           \
		unsigned got_ = access_of(t, d, rel);                                                                  \
		if ((got_ & (bits)) != (bits))                                                                         \
			fail_msg("%s: access 0x%x, expected 0x%x among them", rel ? rel : ".", got_,                   \
				 (unsigned)(bits));                                                                    \
	} while (0)

static int have_python(void)
{
	return system("python3 -c pass > /dev/null 2>&1") == 0;
}

static void test_cat_reads(void **state)
{
	skip_unless_available();
	struct tdir *d = *state;
	put(d, "a", "A\n", 0644);
	put(d, "b", "B\n", 0644);
	int status;
	struct trace *t = run(d, (char *[]){ "cat", "b", "a", NULL }, &status);
	assert_int_equal(status, 0);
	assert_access(t, d, "a", TRACE_READ);
	assert_access(t, d, "b", TRACE_READ);
	assert_false(access_of(t, d, "a") & TRACE_WRITE);
	/* first-access order */
	assert_true(index_of(t, d, "b") < index_of(t, d, "a"));
	assert_null(trace_blind(t));
	trace_free(t);
}

static void test_redirect_writes(void **state)
{
	skip_unless_available();
	struct tdir *d = *state;
	int status;
	struct trace *t = run(d, (char *[]){ "sh", "-c", "echo x > out", NULL }, &status);
	assert_int_equal(status, 0);
	assert_access(t, d, "out", TRACE_WRITE);
	assert_false(access_of(t, d, "out") & TRACE_READ);
	trace_free(t);
}

static void test_ls_lists(void **state)
{
	skip_unless_available();
	struct tdir *d = *state;
	put(d, "sub/x", "", 0644);
	int status;
	struct trace *t = run(d, (char *[]){ "ls", "sub", NULL }, &status);
	assert_int_equal(status, 0);
	assert_access(t, d, "sub", TRACE_LIST);
	trace_free(t);
}

static void test_missing_is_stat(void **state)
{
	skip_unless_available();
	struct tdir *d = *state;
	int status;
	struct trace *t = run(d, (char *[]){ "sh", "-c", "[ -e missing ]", NULL }, &status);
	assert_int_equal(status, 1);
	assert_access(t, d, "missing", TRACE_STAT);
	trace_free(t);
}

/* execvp tries each PATH entry: the candidates that are not there are
 * inputs too (one appearing there would change what runs). */
static void test_path_search_exec(void **state)
{
	skip_unless_available();
	struct tdir *d = *state;
	put(d, "first/.keep", "", 0644);
	put(d, "second/tool", "#!/bin/sh\nexit 3\n", 0755);
	struct strbuf path = STRBUF_INIT;
	sb_addf(&path, "PATH=%s/first:%s/second", d->dir, d->dir);
	int status;
	struct trace *t = run(d, (char *[]){ "env", path.buf, "tool", NULL }, &status);
	assert_int_equal(status, 3);
	assert_access(t, d, "first/tool", TRACE_EXEC);
	assert_access(t, d, "second/tool", TRACE_EXEC);
	sb_release(&path);
	trace_free(t);
}

static void test_relative_to_cd(void **state)
{
	skip_unless_available();
	struct tdir *d = *state;
	put(d, "sub/f", "F\n", 0644);
	put(d, "f", "not this one\n", 0644);
	int status;
	struct trace *t = run(d, (char *[]){ "sh", "-c", "cd sub && cat f ./f .//f ../f", NULL }, &status);
	assert_int_equal(status, 0);
	assert_access(t, d, "sub/f", TRACE_READ);
	/* ".." stays: only the file system knows where it leads */
	assert_access(t, d, "sub/../f", TRACE_READ);
	trace_free(t);
}

static void test_threads(void **state)
{
	skip_unless_available();
	if (!have_python()) {
		print_message("# skipped: no python3\n");
		skip();
	}
	struct tdir *d = *state;
	put(d, "in-thread", "T\n", 0644);
	int status;
	struct trace *t = run(d,
			      (char *[]){ "python3", "-c",
					  "import threading\n"
					  "th = threading.Thread(target=lambda: open('in-thread').read())\n"
					  "th.start(); th.join()\n",
					  NULL },
			      &status);
	assert_int_equal(status, 0);
	assert_access(t, d, "in-thread", TRACE_READ);
	trace_free(t);
}

static void test_fork_children(void **state)
{
	skip_unless_available();
	struct tdir *d = *state;
	put(d, "a", "A\n", 0644);
	put(d, "b", "B\n", 0644);
	int status;
	struct trace *t = run(d, (char *[]){ "sh", "-c", "cat a & cat b; wait", NULL }, &status);
	assert_int_equal(status, 0);
	assert_access(t, d, "a", TRACE_READ);
	assert_access(t, d, "b", TRACE_READ);
	trace_free(t);
}

static void test_mv_removes_and_writes(void **state)
{
	skip_unless_available();
	struct tdir *d = *state;
	put(d, "a", "A\n", 0644);
	int status;
	struct trace *t = run(d, (char *[]){ "mv", "a", "b", NULL }, &status);
	assert_int_equal(status, 0);
	assert_access(t, d, "a", TRACE_REMOVE);
	assert_access(t, d, "b", TRACE_WRITE);
	trace_free(t);
}

static void test_mkdir_rm(void **state)
{
	skip_unless_available();
	struct tdir *d = *state;
	put(d, "gone", "", 0644);
	int status;
	struct trace *t =
		run(d, (char *[]){ "sh", "-c", "mkdir made && rm gone && rmdir made && ln -s x lnk", NULL }, &status);
	assert_int_equal(status, 0);
	assert_access(t, d, "made", TRACE_WRITE | TRACE_REMOVE);
	assert_access(t, d, "gone", TRACE_REMOVE);
	assert_access(t, d, "lnk", TRACE_WRITE);
	assert_int_equal(access_of(t, d, "x"), 0); /* a symlink's target is a string, not a lookup */
	trace_free(t);
}

static int count_threads(void)
{
	int n = 0;
	DIR *dir = opendir("/proc/self/task");
	if (!dir)
		return -1;
	struct dirent *e;
	while ((e = readdir(dir)))
		n += e->d_name[0] != '.';
	closedir(dir);
	return n;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

/* A process the command leaves running keeps its file syscalls working
 * after trace_finish (closing the listener would fail them with ENOSYS),
 * is not recorded any more, and the thread serving it goes away with it.
 * This process becomes the subreaper, so that it can reap the orphan and
 * none is left behind. */
static void test_background_survives(void **state)
{
	skip_unless_available();
	struct tdir *d = *state;
	put(d, "f", "content\n", 0644);
	int threads = count_threads();
	assert_int_equal(prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), 0);
	int status;
	struct trace *t = run(d, (char *[]){ "sh", "-c", "(sleep 0.5; [ -e f ] && cat f > bg-out) &", NULL }, &status);
	assert_int_equal(status, 0);
	trace_free(t); /* must be safe while the orphan is still served */
	/* reap the orphan (and what it started), 20 s at most */
	int left = 1;
	for (int i = 0; i < 2000 && left; i++) {
		pid_t p = waitpid(-1, NULL, WNOHANG);
		if (p < 0 && errno == ECHILD)
			left = 0;
		else if (p <= 0)
			sleep_ms(10);
	}
	prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0);
	assert_false(left);
	struct strbuf out = STRBUF_INIT, p = STRBUF_INIT;
	sb_addf(&p, "%s/bg-out", d->dir);
	assert_int_equal(read_file_sb(p.buf, &out), 0);
	assert_string_equal(out.buf, "content\n");
	sb_release(&out);
	sb_release(&p);
	/* the serving thread ends once no process has the filter */
	for (int i = 0; i < 500 && count_threads() > threads; i++)
		sleep_ms(10);
	assert_int_equal(count_threads(), threads);
}

/* A child that is not exec'd: a path that ends right before a page it
 * cannot read, and one that spans two pages, must both be read whole.
 * (Linux 6.x returns a partial read up to the fault; the man page only
 * promises partial reads per iovec element, which the tracer allows for.) */
struct page_args {
	const char *near_fault; /* ends at the end of a page followed by PROT_NONE */
	const char *spanning;   /* longer than a page's rest */
};

static void access_paths(void *arg)
{
	struct page_args *a = arg;
	syscall(SYS_faccessat, AT_FDCWD, a->near_fault, F_OK);
	syscall(SYS_faccessat, AT_FDCWD, a->spanning, F_OK);
	_exit(0);
}

static void test_page_boundaries(void **state)
{
	skip_unless_available();
	struct tdir *d = *state;
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	char *m = mmap(NULL, 4 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(m != MAP_FAILED);
	assert_int_equal(mprotect(m + page, page, PROT_NONE), 0);
	/* "DIR/near-fault" with its NUL as the last byte of the first page */
	char near[PATH_MAX];
	int len = snprintf(near, sizeof(near), "%s/near-fault", d->dir);
	char *near_at = m + page - (size_t)len - 1;
	memcpy(near_at, near, (size_t)len + 1);
	/* "DIR/././.../spanning", some 3000 bytes, starting 100 bytes before the end of page 3 */
	struct strbuf span = STRBUF_INIT;
	sb_adds(&span, d->dir);
	for (int i = 0; i < 1400; i++)
		sb_adds(&span, "/.");
	sb_adds(&span, "/spanning");
	assert_true(span.len < PATH_MAX);
	char *span_at = m + 3 * page - 100;
	assert_true(span_at + span.len + 1 <= m + 4 * page);
	memcpy(span_at, span.buf, span.len + 1);
	struct page_args a = { near_at, span_at };
	int status;
	struct trace *t = run_fn(d->dir, access_paths, &a, &status);
	assert_int_equal(status, 0);
	assert_access(t, d, "near-fault", TRACE_STAT);
	assert_access(t, d, "spanning", TRACE_STAT);
	trace_free(t);
	sb_release(&span);
	munmap(m, 4 * page);
}

/* io_uring does file work the filter never sees: the trace says so. */
static void test_io_uring_blind(void **state)
{
	skip_unless_available();
	if (!have_python()) {
		print_message("# skipped: no python3\n");
		skip();
	}
	struct tdir *d = *state;
	char code[200];
	snprintf(code, sizeof(code), "import ctypes; ctypes.CDLL(None).syscall(%d, 1, None)", (int)SYS_io_uring_setup);
	int status;
	struct trace *t = run(d, (char *[]){ "python3", "-c", code, NULL }, &status);
	assert_int_equal(status, 0);
	assert_non_null(trace_blind(t));
	assert_non_null(strstr(trace_blind(t), "io_uring"));
	trace_free(t);
}

static void exit_at_once(void *arg)
{
	_exit(0);
}

/* A child that dies before installing the filter: attach says so. */
static void test_child_dies_before_install(void **state)
{
	skip_unless_available();
	struct trace *t = NULL;
	assert_int_equal(trace_new(&t), 0);
	assert_int_equal(trace_listen(t), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		exit_at_once(NULL);
	assert_int_equal(trace_parent_attach(t), -1);
	assert_non_null(strstr(err_msg(), "before"));
	waitpid(pid, NULL, 0);
	trace_finish(t);
	size_t n;
	trace_events(t, &n);
	assert_int_equal(n, 0);
	trace_free(t);
}

/* In a traced child, a second tracer: the kernel refuses a second
 * listener in one process's filter chain; the inner one must say so (in
 * trace_new's probe, or in attach when the probe ran before the fork). */
static void trace_nested(void *arg)
{
	struct trace *t = NULL;
	if (trace_new(&t) < 0)
		_exit(strstr(err_msg(), "one listener") ? 0 : 2);
	if (trace_listen(t) < 0)
		_exit(4);
	pid_t pid = fork();
	if (pid == 0) {
		trace_child_install(t);
		_exit(0);
	}
	int rc = trace_parent_attach(t);
	waitpid(pid, NULL, 0);
	_exit(rc < 0 && strstr(err_msg(), "one listener") ? 0 : 3);
}

static void test_nested_is_refused(void **state)
{
	skip_unless_available();
	struct tdir *d = *state;
	int status;
	struct trace *t = run_fn(d->dir, trace_nested, NULL, &status);
	assert_int_equal(status, 0);
	trace_free(t);
}

/* --- the preload library (cashet-trace.so) ---------------------------- */

/* The record as sorted "access path" lines, to compare two runs. */
static char *event_set(const struct trace *t)
{
	size_t n;
	const struct trace_event *ev = trace_events(t, &n);
	struct strvec lines = STRVEC_INIT;
	for (size_t i = 0; i < n; i++) {
		char *line = NULL;
		if (ev[i].access & TRACE_ENV)
			continue; /* no stop sees a getenv: only the library records it */
		if (asprintf(&line, "%02x %s", ev[i].access, ev[i].path) < 0)
			fail_msg("asprintf");
		sv_push_nocopy(&lines, line);
	}
	sv_sort(&lines);
	struct strbuf b = STRBUF_INIT;
	for (size_t i = 0; i < lines.n; i++)
		sb_addf(&b, "%s\n", lines.v[i]);
	sv_release(&lines);
	return sb_detach(&b);
}

/* The files every comparison run starts from (some runs move or remove
 * them). */
static void preload_fixture(const struct tdir *d)
{
	put(d, "a", "A\n", 0644);
	put(d, "b", "B\n", 0644);
	put(d, "sub/x", "X\n", 0644);
	put(d, "first/.keep", "", 0644);
	put(d, "second/tool", "#!/bin/sh\ncat a > /dev/null\n", 0755);
	const char *made[] = { "c", "out", "sub/y" };
	for (size_t i = 0; i < sizeof(made) / sizeof(*made); i++) {
		char *p = NULL;
		if (asprintf(&p, "%s/%s", d->dir, made[i]) < 0)
			fail_msg("asprintf");
		unlink(p);
		free(p);
	}
}

/* Runs argv with the library and without; both records must be the same
 * set (the library's records are merged after the stopped ones, so the
 * order may differ). */
static void assert_same_with_preload(const struct tdir *d, char **argv)
{
	char *sets[2];
	int st[2];
	for (int on = 0; on < 2; on++) {
		preload_fixture(d);
		struct trace *t = run_env(d->dir, on ? PRELOAD_ON : PRELOAD_OFF, exec_argv, argv, &st[on], NULL);
		assert_null(trace_blind(t));
		sets[on] = event_set(t);
		trace_free(t);
	}
	if (st[0] != st[1] || strcmp(sets[0], sets[1])) {
		fprintf(stderr, "# without the library:\n%s# with it:\n%s", sets[0], sets[1]);
		fail_msg("%s %s %s: status %d/%d, the records differ", argv[0], argv[1] ? argv[1] : "",
			 argv[1] && argv[2] ? argv[2] : "", st[0], st[1]);
	}
	free(sets[0]);
	free(sets[1]);
}

static void test_preload_same_events(void **state)
{
	skip_unless_available();
	struct tdir *d = *state;
	/* the library is loaded when asked for */
	int status;
	struct trace *t =
		run_env(d->dir, PRELOAD_ON, exec_argv,
			(char *[]){ "sh", "-c", "grep -q cashet-trace.so /proc/self/maps", NULL }, &status, NULL);
	assert_int_equal(status, 0);
	trace_free(t);

	char path_env[PATH_MAX + 64];
	snprintf(path_env, sizeof(path_env), "PATH=%s/first:%s/second:/usr/bin:/bin", d->dir, d->dir);
	char *cmds[][8] = {
		{ "cat", "b", "a", NULL },
		{ "sh", "-c", "echo x > out; echo y >> out; [ -e missing ]; ls sub; mkdir -p n/m; rm -r n", NULL },
		{ "sh", "-c", "mv a c; cat a b 2>/dev/null; cd sub && cat x ../b && ln -sf x y && readlink y", NULL },
		{ "env", path_env, "tool", NULL },
		{ "sh", "-c", "cat a & cat b; wait", NULL },
		/* fopen: sort reads and writes through stdio */
		{ "sort", "-o", "out", "b", "a", NULL },
		/* no LD_PRELOAD, no log: every call stops */
		{ "env", "-i", "/bin/cat", "a", NULL },
	};
	for (size_t i = 0; i < sizeof(cmds) / sizeof(*cmds); i++)
		assert_same_with_preload(d, cmds[i]);
	if (!have_python()) {
		print_message("# python3 parts skipped: no python3\n");
		return;
	}
	/* threads, stat, listdir, writes; a child whose fds were closed
	 * (subprocess's close_fds) finds no log and stops */
	char *py[] = { "python3", "-c",
		       "import os, subprocess, threading\n"
		       "def work():\n"
		       "    open('a').read(); os.stat('sub/x'); os.listdir('sub')\n"
		       "    with open('w', 'w') as f: f.write('w')\n"
		       "    os.path.exists('nope'); os.rename('w', 'w2'); os.unlink('w2')\n"
		       "th = threading.Thread(target=work); th.start(); th.join()\n"
		       "subprocess.run(['cat', 'b'], check=True, stdout=subprocess.DEVNULL)\n"
		       "subprocess.run(['cat', 'sub/x'], check=True, close_fds=False, stdout=subprocess.DEVNULL)\n",
		       NULL };
	assert_same_with_preload(d, py);
	/* records read while the command runs (every 200 ms) and at the end,
	 * a record split across two pages of the log among them */
	char *slow[] = { "python3", "-c",
			 "import os, time\n"
			 "for i in range(300): os.path.exists('m' * (i % 200 + 1))\n"
			 "time.sleep(0.5); os.stat('a')\n"
			 "for i in range(300): os.path.exists('n' * (i % 200 + 1))\n",
			 NULL };
	assert_same_with_preload(d, slow);
}

/* Runs the shell command build in d (a compiler's), skipping the test
 * with why when it fails. */
static void build_or_skip(const struct tdir *d, const char *build, const char *why)
{
	char *cmd = NULL;
	if (asprintf(&cmd, "cd '%s' && %s > /dev/null 2>&1", d->dir, build) < 0)
		fail_msg("asprintf");
	int rc = system(cmd);
	free(cmd);
	if (rc != 0) {
		print_message("# skipped: %s\n", why);
		skip();
	}
}

/* A static binary ignores LD_PRELOAD: every call stops, as before. */
static void test_preload_static_binary(void **state)
{
	skip_unless_available();
	struct tdir *d = *state;
	put(d, "st.c",
	    "#include <fcntl.h>\n#include <sys/stat.h>\n#include <unistd.h>\n"
	    "int main(void) { struct stat st; int fd = open(\"a\", O_RDONLY); stat(\"missing\", &st);\n"
	    "  return fd < 0; }\n",
	    0644);
	build_or_skip(d, "cc -static -o st st.c", "cannot build a static binary here (cc -static: no libc.a?)");
	assert_same_with_preload(d, (char *[]){ "./st", NULL });
	preload_fixture(d);
	int status;
	struct trace *t = run_env(d->dir, PRELOAD_ON, exec_argv, (char *[]){ "./st", NULL }, &status, NULL);
	assert_int_equal(status, 0);
	assert_access(t, d, "a", TRACE_READ);
	assert_access(t, d, "missing", TRACE_STAT);
	trace_free(t);
}

/* A ring smaller than a command's records: it fills, wraps around (a
 * filler before its end) and is read while the command runs; the calls
 * that found it full stop instead. The records are the same. */
static void test_preload_ring_full(void **state)
{
	skip_unless_available();
	struct tdir *d = *state;
	size_t saved = trace_log_ring;
	trace_log_ring = 3 * (sizeof(struct trace_rec) + 2 * PATH_MAX) + 4;
	assert_same_with_preload(d, (char *[]){ "sh", "-c",
						"i=0; while [ $i -lt 3000 ]; do [ -e m$i ]; i=$((i + 1)); done; cat a",
						NULL });
	trace_log_ring = saved;
}

/* The access recorded for a variable ("$NAME"), 0 when none. */
static unsigned env_access(const struct trace *t, const char *name)
{
	size_t n;
	const struct trace_event *ev = trace_events(t, &n);
	for (size_t i = 0; i < n; i++)
		if (ev[i].path[0] == '$' && !strcmp(ev[i].path + 1, name))
			return ev[i].access;
	return 0;
}

/* getenv and secure_getenv, which no syscall shows, are recorded by the
 * library as "$NAME"; without it, not at all. A getenv that finds the
 * ring full cannot stop instead: the trace says it is not whole. */
static void test_preload_getenv(void **state)
{
	skip_unless_available();
	struct tdir *d = *state;
	put(d, "ge.c",
	    "#include <stdio.h>\n#include <stdlib.h>\n"
	    "int main(int argc, char **argv) {\n"
	    "  const char *v = getenv(\"BATCH_SIZE\"); char n[32];\n"
	    "  if (secure_getenv(\"SEED\") || getenv(\"\")) return 2;\n"
	    "  for (int i = 0; i < (argc > 1 ? atoi(argv[1]) : 0); i++) { snprintf(n, sizeof n, \"V%d\", i); getenv(n); }\n"
	    "  return v && !strcmp(v, \"7\") ? 0 : 1; }\n",
	    0644);
	build_or_skip(d, "cc -include string.h -o ge ge.c", "no C compiler");
	setenv("BATCH_SIZE", "7", 1);
	unsetenv("SEED");
	int status;
	struct trace *t = run_env(d->dir, PRELOAD_ON, exec_argv, (char *[]){ "./ge", NULL }, &status, NULL);
	assert_int_equal(status, 0); /* the values are libc's */
	assert_null(trace_blind(t));
	assert_int_equal(env_access(t, "BATCH_SIZE"), TRACE_ENV);
	assert_int_equal(env_access(t, "SEED"), TRACE_ENV);
	assert_int_equal(env_access(t, ""), 0);
	trace_free(t);
	t = run_env(d->dir, PRELOAD_OFF, exec_argv, (char *[]){ "./ge", NULL }, &status, NULL);
	assert_int_equal(status, 0);
	assert_int_equal(env_access(t, "BATCH_SIZE"), 0);
	trace_free(t);
	size_t saved = trace_log_ring;
	trace_log_ring = 3 * (sizeof(struct trace_rec) + 2 * PATH_MAX) + 4;
	t = run_env(d->dir, PRELOAD_ON, exec_argv, (char *[]){ "./ge", "20000", NULL }, &status, NULL);
	trace_log_ring = saved;
	assert_int_equal(status, 0);
	assert_non_null(trace_blind(t));
	assert_non_null(strstr(trace_blind(t), "environment variable"));
	trace_free(t);
	unsetenv("BATCH_SIZE");
}

/* The log mapped in a child of run_env (its fd from CASHET_TRACE_LOG). */
static unsigned char *map_log(void)
{
	const char *env = getenv("CASHET_TRACE_LOG");
	struct stat st;
	int fd = env ? atoi(env) : -1;
	if (fd < 0 || fstat(fd, &st) < 0)
		_exit(2);
	unsigned char *m = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED)
		_exit(3);
	return m;
}

/* A record whose bytes were taken and never finished (its process killed
 * as it wrote it): what the command read is not known. */
static void reserve_unfinished(void *arg)
{
	unsigned char *m = map_log();
	__atomic_fetch_add(&((struct trace_log_head *)m)->tail, 16, __ATOMIC_ACQ_REL);
	_exit(0);
}

/* A record reserved by the command, finished 5 ms after it exited by a
 * process it left running: the last read waits for it. */
static void finish_late(void *arg)
{
	const char *path = arg;
	unsigned char *m = map_log();
	size_t len = strlen(path),
	       need = (sizeof(struct trace_rec) + len + TRACE_REC_ALIGN - 1) & ~(size_t)(TRACE_REC_ALIGN - 1);
	uint64_t at = __atomic_fetch_add(&((struct trace_log_head *)m)->tail, need, __ATOMIC_ACQ_REL);
	if (fork() == 0) {
		struct timespec ts = { 0, 5000000 };
		nanosleep(&ts, NULL);
		struct trace_rec *r = (struct trace_rec *)(m + TRACE_LOG_DATA + at);
		r->len = (uint16_t)len;
		r->kind = TRACE_REC_ACCESS;
		r->bits = TRACE_REC_STAT;
		memcpy(r + 1, path, len);
		__atomic_store_n(&r->magic, TRACE_REC_MAGIC, __ATOMIC_RELEASE);
		_exit(0);
	}
	_exit(0);
}

static void test_preload_record_finished_late(void **state)
{
	skip_unless_available();
	struct tdir *d = *state;
	char *path = NULL;
	if (asprintf(&path, "%s/late", d->dir) < 0)
		fail_msg("asprintf");
	int status;
	struct trace *t = run_env(d->dir, PRELOAD_ON, finish_late, path, &status, NULL);
	assert_int_equal(status, 0);
	assert_null(trace_blind(t));
	assert_access(t, d, "late", TRACE_STAT);
	trace_free(t);
	free(path);
}

static void test_preload_unfinished_record(void **state)
{
	skip_unless_available();
	struct tdir *d = *state;
	int status;
	struct trace *t = run_env(d->dir, PRELOAD_ON, reserve_unfinished, NULL, &status, NULL);
	assert_int_equal(status, 0);
	assert_non_null(trace_blind(t));
	assert_non_null(strstr(trace_blind(t), "was not finished"));
	trace_free(t);
}

struct cookie_arg {
	uint64_t cookie;
};

/* openat with the run's cookie, and with each half of it wrong, in the
 * 6th argument */
static void cookie_opens(void *arg)
{
	const struct cookie_arg *c = arg;
	syscall(SYS_openat, AT_FDCWD, "right", O_RDONLY, 0, 0, c->cookie);
	syscall(SYS_openat, AT_FDCWD, "wrong-low", O_RDONLY, 0, 0, c->cookie ^ 1);
	syscall(SYS_openat, AT_FDCWD, "wrong-high", O_RDONLY, 0, 0, c->cookie ^ (1ULL << 63));
	syscall(SYS_openat, AT_FDCWD, "none", O_RDONLY, 0);
	_exit(0);
}

static void test_preload_cookie(void **state)
{
	skip_unless_available();
	struct tdir *d = *state;
	struct cookie_arg c = { 0 };
	int status;
	/* run_env sets c.cookie before fork: the child has it in its copy of
	 * the memory (a command gets it in CASHET_TRACE_LOG) */
	struct trace *t = run_env(d->dir, PRELOAD_ON, cookie_opens, &c, &status, &c.cookie);
	assert_int_equal(status, 0);
	assert_true(c.cookie != 0);
	/* recorded by the library or by nobody: the filter let it through */
	assert_int_equal(access_of(t, d, "right"), 0);
	assert_access(t, d, "wrong-low", TRACE_READ);
	assert_access(t, d, "wrong-high", TRACE_READ);
	assert_access(t, d, "none", TRACE_READ);
	trace_free(t);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, tdir_setup, tdir_teardown)
	const struct CMUnitTest tests[] = {
		T(test_cat_reads),
		T(test_redirect_writes),
		T(test_ls_lists),
		T(test_missing_is_stat),
		T(test_path_search_exec),
		T(test_relative_to_cd),
		T(test_threads),
		T(test_fork_children),
		T(test_mv_removes_and_writes),
		T(test_mkdir_rm),
		T(test_background_survives),
		T(test_page_boundaries),
		T(test_io_uring_blind),
		T(test_child_dies_before_install),
		T(test_nested_is_refused),
		T(test_preload_same_events),
		T(test_preload_static_binary),
		T(test_preload_cookie),
		T(test_preload_ring_full),
		T(test_preload_getenv),
		T(test_preload_unfinished_record),
		T(test_preload_record_finished_late),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
