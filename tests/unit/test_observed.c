/* Unit tests for key/observed.c: turning trace events into observed inputs
 * (what counts, what never does) and checking them against the file
 * system, with the index's compact form of the inputs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fixture.h"
#include "key/observed.h"

static int64_t realtime_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static const struct run_input *find(const struct run_record *r, const char *path)
{
	for (size_t i = 0; i < r->ninputs; i++)
		if (!strcmp(r->inputs[i].path, path))
			return &r->inputs[i];
	return NULL;
}

/* Collects events (paths relative to the fixture) with the given
 * accesses; started_ns 0 means "now, before any of these files". */
static void collect(struct fixture *fx, const char *const *paths, const unsigned *access, size_t n,
		    const struct strvec *outputs, const struct strvec *ignore, int64_t started_ns, struct run_record *r,
		    struct obs_outcome *oc)
{
	struct trace_event ev[16];
	struct strvec abs = STRVEC_INIT;
	for (size_t i = 0; i < n; i++) {
		struct strbuf p = STRBUF_INIT;
		if (paths[i][0] == '/')
			sb_adds(&p, paths[i]);
		else
			sb_addf(&p, "%s/%s", fx->dir, paths[i]);
		sv_push(&abs, p.buf);
		sb_release(&p);
	}
	for (size_t i = 0; i < n; i++)
		ev[i] = (struct trace_event){ abs.v[i], access[i], access[i] };
	struct obs_spec spec = { .cwd = fx->dir,
				 .outputs = outputs,
				 .ignore = ignore,
				 .started_ns = started_ns ? started_ns : realtime_ns() };
	assert_int_equal(obs_collect(fx->st, &spec, ev, n, r, oc), 0);
	sv_release(&abs);
}

static void test_collect_what_counts(void **state)
{
	struct fixture *fx = *state;
	struct run_record r = { 0 };
	struct obs_outcome oc = OBS_OUTCOME_INIT;
	struct strvec outputs = STRVEC_INIT, ignore = STRVEC_INIT;
	free(fixture_write(fx, "a.txt", "a\n", 0644));
	free(fixture_write(fx, "lib.py", "x = 1  # c\n", 0644));
	free(fixture_write(fx, "d/one", "1", 0644));
	free(fixture_write(fx, "out.txt", "o", 0644));
	free(fixture_write(fx, "decl.txt", "o", 0644));
	free(fixture_write(fx, "cache/x", "c", 0644));
	free(fixture_write(fx, "__pycache__/lib.pyc", "c", 0644));
	sv_push(&outputs, "decl.txt");
	sv_push(&ignore, "cache");
	static const char *const paths[] = { "a.txt",
					     "lib.py",
					     "missing.txt",
					     "d",
					     "out.txt",
					     "decl.txt",
					     "cache/x",
					     "__pycache__/lib.pyc",
					     "/proc/self/status",
					     "." };
	static const unsigned acc[] = { TRACE_READ, TRACE_READ, TRACE_STAT, TRACE_LIST, TRACE_WRITE | TRACE_READ,
					TRACE_READ, TRACE_READ, TRACE_READ, TRACE_READ, TRACE_STAT };
	collect(fx, paths, acc, 10, &outputs, &ignore, 0, &r, &oc);

	assert_int_equal(r.observed, OBSERVED_TRACED);
	assert_int_equal(r.ninputs, 5);
	/* sorted by path */
	assert_string_equal(r.inputs[0].path, ".");
	assert_int_equal(r.inputs[0].kind, INPUT_DIR);
	assert_int_equal(find(&r, "a.txt")->kind, INPUT_FILE);
	assert_int_equal(find(&r, "lib.py")->kind, INPUT_SOURCE);
	assert_int_equal(find(&r, "missing.txt")->kind, INPUT_ABSENT);
	assert_int_equal(find(&r, "d")->kind, INPUT_LISTED);
	/* written, a declared output, ignored, a default ignore, noise: none */
	assert_null(find(&r, "out.txt"));
	assert_null(find(&r, "decl.txt"));
	assert_null(find(&r, "cache/x"));
	assert_null(find(&r, "__pycache__/lib.pyc"));
	assert_int_equal(oc.written.n, 1);
	assert_string_equal(oc.written.v[0], "out.txt");
	/* read but not declared: a.txt and lib.py (no parts were declared) */
	assert_int_equal(oc.undeclared.n, 2);
	assert_int_equal(oc.changed.n, 0);
	obs_outcome_release(&oc);
	run_record_free(&r);
	sv_release(&outputs);
	sv_release(&ignore);
}

/* Enough plain files that they are hashed on several threads: each
 * input's digest is its own file's, whatever thread took it. */
static void test_collect_many_files(void **state)
{
	enum { N = 300 };
	struct fixture *fx = *state;
	struct run_record r = { 0 };
	struct obs_outcome oc = OBS_OUTCOME_INIT;
	struct trace_event ev[N];
	char *abs[N], rel[32], body[32];
	for (size_t i = 0; i < N; i++) {
		snprintf(rel, sizeof(rel), "data/f%03zu.csv", i);
		snprintf(body, sizeof(body), "row %zu\n", i * 7);
		abs[i] = fixture_write(fx, rel, body, 0644);
		ev[i] = (struct trace_event){ abs[i], TRACE_READ, TRACE_READ };
	}
	struct obs_spec spec = { .cwd = fx->dir, .started_ns = realtime_ns() };
	assert_int_equal(obs_collect(fx->st, &spec, ev, N, &r, &oc), 0);
	assert_int_equal(r.ninputs, N);
	for (size_t i = 0; i < N; i++) {
		struct digest want;
		snprintf(rel, sizeof(rel), "data/f%03zu.csv", i);
		snprintf(body, sizeof(body), "row %zu\n", i * 7);
		digest_of(body, strlen(body), &want);
		const struct run_input *in = find(&r, rel);
		assert_non_null(in);
		assert_int_equal(in->kind, INPUT_FILE);
		assert_true(digest_eq(&in->d, &want));
		free(abs[i]);
	}
	obs_outcome_release(&oc);
	run_record_free(&r);
}

static void test_collect_changed_while_running(void **state)
{
	struct fixture *fx = *state;
	struct run_record r = { 0 };
	struct obs_outcome oc = OBS_OUTCOME_INIT;
	int64_t started = realtime_ns() - 1000000000LL; /* the command "started" a second ago */
	free(fixture_write(fx, "a.txt", "a\n", 0644));
	static const char *const paths[] = { "a.txt" };
	static const unsigned acc[] = { TRACE_READ };
	collect(fx, paths, acc, 1, NULL, NULL, started, &r, &oc);
	assert_int_equal(oc.changed.n, 1);
	assert_string_equal(oc.changed.v[0], "a.txt");
	obs_outcome_release(&oc);
	run_record_free(&r);
}

static void test_check_names_what_differs(void **state)
{
	struct fixture *fx = *state;
	struct run_record r = { 0 };
	struct obs_outcome oc = OBS_OUTCOME_INIT;
	struct strbuf why = STRBUF_INIT;
	char *a = fixture_write(fx, "a.txt", "a\n", 0644);
	free(fixture_write(fx, "d/one", "1", 0644));
	static const char *const paths[] = { "a.txt", "missing.txt", "d" };
	static const unsigned acc[] = { TRACE_READ, TRACE_STAT, TRACE_LIST };
	collect(fx, paths, acc, 3, NULL, NULL, 0, &r, &oc);
	assert_int_equal(obs_check(fx->st, &r, NULL, &why), 1);

	free(fixture_write(fx, "a.txt", "A\n", 0644));
	assert_int_equal(obs_check(fx->st, &r, NULL, &why), 0);
	assert_string_equal(why.buf, "a.txt, read by the command, changed");
	free(fixture_write(fx, "a.txt", "a\n", 0644));
	assert_int_equal(obs_check(fx->st, &r, NULL, &why), 1);

	free(fixture_write(fx, "missing.txt", "", 0644));
	assert_int_equal(obs_check(fx->st, &r, NULL, &why), 0);
	assert_string_equal(why.buf, "missing.txt now exists where the command looked for it");
	struct strbuf p = STRBUF_INIT;
	sb_addf(&p, "%s/missing.txt", fx->dir);
	unlink(p.buf);

	free(fixture_write(fx, "d/two", "2", 0644));
	assert_int_equal(obs_check(fx->st, &r, NULL, &why), 0);
	assert_string_equal(why.buf, "d, listed by the command, has other entries");

	unlink(a);
	sb_reset(&p);
	sb_addf(&p, "%s/d/two", fx->dir);
	unlink(p.buf);
	assert_int_equal(obs_check(fx->st, &r, NULL, &why), 0);
	assert_string_equal(why.buf, "a.txt no longer exists");
	free(a);
	sb_release(&p);
	sb_release(&why);
	obs_outcome_release(&oc);
	run_record_free(&r);
}

/* A file recorded too soon after its last change has no signature and is
 * compared by content; a file whose signature moved but whose content did
 * not (a fresh clone, a touch) gets the new signature back, so the next
 * check is a stat() again. */
/* A project source naming a variable records it (its value); the standard
 * library's names do not count. */
static void test_env_named_by_sources(void **state)
{
	struct fixture *fx = *state;
	struct run_record r = { 0 };
	struct obs_outcome oc = OBS_OUTCOME_INIT;
	struct strbuf why = STRBUF_INIT;
	free(fixture_write(fx, "conf.py", "import os\nLR = os.environ.get('LR')  # not HOME\n", 0644));
	char *one[] = { "LR=1", NULL }, *two[] = { "LR=2", NULL }, *unset[] = { NULL };
	struct obs_spec spec = { .cwd = fx->dir, .env = one, .started_ns = realtime_ns() };
	struct strbuf p = STRBUF_INIT, pyc = STRBUF_INIT;
	sb_addf(&p, "%s/conf.py", fx->dir);
	/* imported: the import system looked for its bytecode */
	sb_addf(&pyc, "%s/__pycache__/conf.cpython-311.pyc", fx->dir);
	struct trace_event ev[] = { { p.buf, TRACE_READ, TRACE_READ }, { pyc.buf, TRACE_READ, TRACE_READ } };
	assert_int_equal(obs_collect(fx->st, &spec, ev, 2, &r, &oc), 0);
	assert_int_equal(r.ninputs, 2);
	assert_string_equal(r.inputs[0].path, "$LR");
	assert_int_equal(r.inputs[0].kind, INPUT_ENV);
	assert_int_equal(obs_check(fx->st, &r, one, &why), 1);
	assert_int_equal(obs_check(fx->st, &r, two, &why), 0);
	assert_string_equal(why.buf, "env LR, read by the command, changed");
	assert_int_equal(obs_check(fx->st, &r, unset, &why), 0);
	sb_release(&p);
	sb_release(&pyc);
	sb_release(&why);
	obs_outcome_release(&oc);
	run_record_free(&r);
}

static void test_check_refreshes_signatures(void **state)
{
	struct fixture *fx = *state;
	struct run_record r = { 0 };
	struct obs_outcome oc = OBS_OUTCOME_INIT;
	free(fixture_write(fx, "a.txt", "a\n", 0644));
	/* an old file that does not change: the shell (itself, not a link to it) */
	char *shell = realpath("/bin/sh", NULL);
	const char *const paths[] = { "a.txt", shell };
	static const unsigned acc[] = { TRACE_READ, TRACE_EXEC };
	collect(fx, paths, acc, 2, NULL, NULL, 0, &r, &oc);
	assert_int_equal(find(&r, "a.txt")->ctime_ns, 0); /* racy: no signature */
	struct run_input *sh = (struct run_input *)find(&r, shell);
	free(shell);
	uint64_t ino = sh->ino;
	assert_true(sh->ctime_ns != 0);
	assert_int_equal(obs_check(fx->st, &r, NULL, NULL), 1);
	assert_int_equal(r.inputs_refreshed, 0);
	sh->ino = ino + 1; /* as another checkout would have it */
	assert_int_equal(obs_check(fx->st, &r, NULL, NULL), 1);
	assert_int_equal(r.inputs_refreshed, 1);
	assert_int_equal(sh->ino, ino);
	obs_outcome_release(&oc);
	run_record_free(&r);
}

/* A symbolic link is an input of its own (its target's text), and so is
 * the file it names; "sub/../f" is the file beside sub's target. */
static void test_links_and_dotdot(void **state)
{
	struct fixture *fx = *state;
	struct run_record r = { 0 };
	struct obs_outcome oc = OBS_OUTCOME_INIT;
	struct strbuf why = STRBUF_INIT, a = STRBUF_INIT, b = STRBUF_INIT, l = STRBUF_INIT;
	free(fixture_write(fx, "a", "same\n", 0644));
	free(fixture_write(fx, "b", "same\n", 0644));
	free(fixture_write(fx, "f", "here\n", 0644));
	free(fixture_write(fx, "ext/f", "there\n", 0644));
	free(fixture_write(fx, "ext/inner/x", "x", 0644));
	sb_addf(&l, "%s/L", fx->dir);
	sb_addf(&a, "%s/sub", fx->dir);
	sb_addf(&b, "%s/ext/inner", fx->dir);
	assert_int_equal(symlink("a", l.buf), 0);
	assert_int_equal(symlink(b.buf, a.buf), 0);
	static const char *const paths[] = { "L", "sub/../f" };
	static const unsigned acc[] = { TRACE_STAT, TRACE_READ };
	collect(fx, paths, acc, 2, NULL, NULL, 0, &r, &oc);
	assert_int_equal(find(&r, "L")->kind, INPUT_LINK);
	assert_int_equal(find(&r, "a")->kind, INPUT_FILE);
	assert_int_equal(find(&r, "sub")->kind, INPUT_LINK);
	assert_int_equal(find(&r, "ext/f")->kind, INPUT_FILE);
	assert_null(find(&r, "f"));
	assert_int_equal(obs_check(fx->st, &r, NULL, &why), 1);
	/* to an equal file: every content is the same, readlink says otherwise */
	unlink(l.buf);
	assert_int_equal(symlink("b", l.buf), 0);
	assert_int_equal(obs_check(fx->st, &r, NULL, &why), 0);
	assert_string_equal(why.buf, "L, a symbolic link the command looked at, points elsewhere or is gone");
	sb_release(&why);
	sb_release(&a);
	sb_release(&b);
	sb_release(&l);
	obs_outcome_release(&oc);
	run_record_free(&r);
}

/* The executable bit of a file looked at counts ([ -x hook ]); a Python
 * or shell file read as data counts byte for byte. */
static void test_modes_and_data_sources(void **state)
{
	struct fixture *fx = *state;
	struct run_record r = { 0 };
	struct obs_outcome oc = OBS_OUTCOME_INIT;
	struct strbuf why = STRBUF_INIT;
	char *hook = fixture_write(fx, "hook", "echo hi\n", 0644);
	free(fixture_write(fx, "s.sh", "echo hi\n", 0644));
	static const char *const paths[] = { "hook", "s.sh" };
	static const unsigned acc[] = { TRACE_STAT, TRACE_READ };
	collect(fx, paths, acc, 2, NULL, NULL, 0, &r, &oc);
	assert_int_equal(find(&r, "s.sh")->kind, INPUT_FILE);
	assert_int_equal(obs_check(fx->st, &r, NULL, &why), 1);
	assert_int_equal(chmod(hook, 0755), 0);
	assert_int_equal(obs_check(fx->st, &r, NULL, &why), 0);
	assert_string_equal(why.buf, "hook, read by the command, changed");
	assert_int_equal(chmod(hook, 0644), 0);
	free(fixture_write(fx, "s.sh", "echo hi # a comment\n", 0644));
	assert_int_equal(obs_check(fx->st, &r, NULL, &why), 0);
	assert_string_equal(why.buf, "s.sh, read by the command, changed");
	free(hook);
	sb_release(&why);
	obs_outcome_release(&oc);
	run_record_free(&r);
}

/* HOME, TMPDIR, XDG_*: an input once the run touched something under
 * them, by the place they name (TMPDIR unset is /tmp). */
static void test_locations(void **state)
{
	struct fixture *fx = *state;
	struct run_record r = { 0 };
	struct obs_outcome oc = OBS_OUTCOME_INIT;
	struct strbuf why = STRBUF_INIT;
	char *there[] = { "TMPDIR=/nonexistent/t", "HOME=/nonexistent/h", NULL },
	     *slash[] = { "TMPDIR=/nonexistent/t/", "HOME=/elsewhere", NULL },
	     *unset[] = { "HOME=/nonexistent/h", NULL };
	struct obs_spec spec = { .cwd = fx->dir, .env = there, .started_ns = realtime_ns() };
	struct trace_event ev[] = { { "/nonexistent/t/x", TRACE_STAT, TRACE_STAT },
				    { "/nonexistent", TRACE_STAT, TRACE_STAT } };
	assert_int_equal(obs_collect(fx->st, &spec, ev, 2, &r, &oc), 0);
	assert_int_equal(find(&r, "$TMPDIR")->kind, INPUT_ENV);
	assert_null(find(&r, "$HOME"));
	assert_int_equal(obs_check(fx->st, &r, slash, &why), 1);
	assert_int_equal(obs_check(fx->st, &r, unset, &why), 0);
	assert_string_equal(why.buf, "env TMPDIR, where the command read files, changed");
	sb_release(&why);
	obs_outcome_release(&oc);
	run_record_free(&r);
}

static void test_inputs_index_form_roundtrip(void **state)
{
	(void)state;
	struct run_record r = { 0 }, back = { 0 };
	struct strbuf shared = STRBUF_INIT, own = STRBUF_INIT;
	r.observed = OBSERVED_TRACED;
	/* in path order, as obs_collect leaves them: "." sorts before "/" */
	run_add_input(&r, INPUT_FILE, ".env");
	run_add_input(&r, INPUT_ABSENT, "/usr/lib/python3/helper.py");
	struct run_input *in = run_add_input(&r, INPUT_FILE, "data/a.csv");
	in->size = 12;
	in->mtime_ns = 34;
	in->ctime_ns = 56;
	in->ino = 78;
	in->d.b[0] = 0xab;
	run_inputs_encode(&r, &shared, &own);
	assert_int_equal(run_inputs_decode(shared.buf, shared.len, own.buf, own.len, &back), 0);
	assert_int_equal(back.observed, OBSERVED_TRACED);
	assert_int_equal(back.ninputs, 3);
	assert_string_equal(back.inputs[0].path, ".env");
	assert_string_equal(back.inputs[1].path, "/usr/lib/python3/helper.py");
	assert_int_equal(back.inputs[1].kind, INPUT_ABSENT);
	assert_string_equal(back.inputs[2].path, "data/a.csv");
	assert_int_equal(back.inputs[2].kind, INPUT_FILE);
	assert_int_equal(back.inputs[2].size, 12);
	assert_int_equal(back.inputs[2].mtime_ns, 34);
	assert_int_equal(back.inputs[2].ctime_ns, 56);
	assert_int_equal(back.inputs[2].ino, 78);
	assert_int_equal(back.inputs[2].d.b[0], 0xab);
	run_record_free(&back);
	/* cut inside the own part's first entry: an error, not a shorter list */
	for (size_t cut = 3; cut < 2 + 1 + DIGEST_LEN + 34 + strlen(".env"); cut++) {
		struct run_record t = { 0 };
		assert_true(run_inputs_decode(shared.buf, shared.len, own.buf, cut, &t) < 0);
		run_record_free(&t);
	}
	run_record_free(&r);
	sb_release(&shared);
	sb_release(&own);
}

static void test_ignore_patterns(void **state)
{
	(void)state;
	struct strvec p = STRVEC_INIT;
	sv_push(&p, "build");
	sv_push(&p, "*.log");
	assert_true(obs_ignored(&p, "build"));
	assert_true(obs_ignored(&p, "build/x/y.o"));
	assert_false(obs_ignored(&p, "buildx/y"));
	assert_true(obs_ignored(&p, "a/b/run.log")); /* "*" crosses "/" */
	assert_true(obs_ignored(&p, "pkg/__pycache__/m.pyc"));
	assert_false(obs_ignored(&p, "pkg/m.py"));
	sv_release(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_collect_what_counts, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_collect_many_files, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_collect_changed_while_running, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_check_names_what_differs, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_check_refreshes_signatures, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_env_named_by_sources, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_links_and_dotdot, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_modes_and_data_sources, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_locations, fixture_setup, fixture_teardown),
		cmocka_unit_test(test_inputs_index_form_roundtrip),
		cmocka_unit_test(test_ignore_patterns),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
