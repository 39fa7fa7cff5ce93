/* Unit tests for the metrics reader (exec/metrics.c) and the pipeline's
 * last-run record (pipeline/runlog.c): each format flattened as tables
 * show it, and a message naming the file and line for each malformed one. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "exec/metrics.h"
#include "pipeline/runlog.h"

static char dir[] = "/tmp/cashet-test-metrics-XXXXXX";

/* Writes text to dir/name and reads it as metrics ("k=v" lines joined with
 * spaces in got, or the error). Returns what metrics_read returned. */
static int read_as(const char *name, const char *text, struct strbuf *got)
{
	struct strbuf path = STRBUF_INIT;
	struct strvec v = STRVEC_INIT;
	sb_addf(&path, "%s/%s", dir, name);
	assert_int_equal(write_file_atomic(path.buf, text, strlen(text), 0644), 0);
	err_clear();
	sb_reset(got);
	int rc = metrics_read(path.buf, name, &v);
	if (rc < 0)
		sb_adds(got, err_msg());
	for (size_t i = 0; i < v.n; i++)
		sb_addf(got, "%s%s", i ? " " : "", v.v[i]);
	sv_release(&v);
	sb_release(&path);
	return rc;
}

static void test_formats(void **state)
{
	struct strbuf got = STRBUF_INIT;
	assert_int_equal(read_as("m.json",
				 "{\"val\": {\"acc\": 0.910, \"f1\": 1e-3}, \"n\": 3, \"ok\": true,"
				 " \"name\": \"a\", \"skip\": [1], \"none\": null}",
				 &got),
			 0);
	/* numbers as written */
	assert_string_equal(got.buf, "val.acc=0.910 val.f1=1e-3 n=3 ok=true name=a");
	assert_int_equal(read_as("m.toml", "loss = 0.25\n[train]\nsteps = 100\nlr = 1e-3\n", &got), 0);
	assert_string_equal(got.buf, "loss=0.25 train.steps=100 train.lr=0.001");
	assert_int_equal(read_as("log.csv", "epoch, loss\n1,0.9\n2, 0.5\n\n", &got), 0);
	assert_string_equal(got.buf, "epoch=2 loss=0.5");
	assert_int_equal(read_as("log.tsv", "a\tb\n\"x,y\"\t2\n", &got), 0);
	assert_string_equal(got.buf, "a=x,y b=2");
	/* no extension: by the first byte */
	assert_int_equal(read_as("plain", "  {\"a\": 1}", &got), 0);
	assert_string_equal(got.buf, "a=1");
	assert_int_equal(read_as("plain2", "a = 1\n", &got), 0);
	assert_string_equal(got.buf, "a=1");
	assert_int_equal(read_as("plain3", "a,b\n1,2\n", &got), 0);
	assert_string_equal(got.buf, "a=1 b=2");
	/* a key with '=' cannot be split again: skipped */
	assert_int_equal(read_as("eq.json", "{\"a=b\": 1, \"c\": 2}", &got), 0);
	assert_string_equal(got.buf, "c=2");
	sb_release(&got);
}

static void test_errors(void **state)
{
	struct strbuf got = STRBUF_INIT;
	assert_int_equal(read_as("bad.json", "{\"a\": 1,\n\"b\": }\n", &got), -1);
	assert_string_equal(got.buf, "bad.json:2: unexpected character");
	assert_int_equal(read_as("arr.json", "[1, 2]", &got), -1);
	assert_string_equal(got.buf, "arr.json: expected a JSON object");
	assert_int_equal(read_as("bad.csv", "a,b\n1,2\n3\n", &got), -1);
	assert_string_equal(got.buf, "bad.csv:3: 1 values, but the header names 2");
	assert_int_equal(read_as("head.csv", "a,b\n", &got), -1);
	assert_string_equal(got.buf, "head.csv: expected a header line and a row of values");
	assert_int_equal(read_as("bad.toml", "a = \n", &got), -1);
	assert_true(!strncmp(got.buf, "bad.toml:1:", 11));
	err_clear();
	struct strvec v = STRVEC_INIT;
	assert_int_equal(metrics_read("/nonexistent/m.json", "m.json", &v), -1);
	assert_true(!strncmp(err_msg(), "metrics file m.json: ", 21));
	sb_release(&got);
}

static void test_set_get(void **state)
{
	struct strvec v = STRVEC_INIT;
	metrics_set(&v, "a", "1");
	metrics_set(&v, "ab", "2");
	metrics_set(&v, "a", "3");
	assert_int_equal(v.n, 2);
	assert_string_equal(metrics_get(&v, "a"), "3");
	assert_string_equal(metrics_get(&v, "ab"), "2");
	assert_null(metrics_get(&v, "b"));
	sv_release(&v);
}

static void test_runlog(void **state)
{
	struct strbuf path = STRBUF_INIT;
	struct runlog l = { .start_ms = 10, .end_ms = 90 }, back;
	runlog_path(dir, "/proj/dag.toml", &path);
	assert_int_equal(runlog_read(path.buf, &back), 0); /* none yet */
	runlog_add(&l, "prep", "ran", 10, 20);
	runlog_add(&l, "train@lr=0.1,b=2", "hit", 20, 21);
	assert_int_equal(runlog_write(path.buf, &l), 0);
	assert_int_equal(runlog_read(path.buf, &back), 1);
	assert_int_equal(back.start_ms, 10);
	assert_int_equal(back.end_ms, 90);
	assert_int_equal(back.n, 2);
	assert_string_equal(back.steps[1].name, "train@lr=0.1,b=2");
	assert_string_equal(back.steps[1].state, "hit");
	assert_int_equal(back.steps[1].end_ms, 21);
	runlog_free(&back);
	runlog_free(&l);
	assert_int_equal(write_file_atomic(path.buf, "cashet-pipeline-run 1\nstep ran x\n", 33, 0644), 0);
	assert_int_equal(runlog_read(path.buf, &back), -1);
	assert_true(strstr(err_msg(), ":2: malformed line") != NULL);
	sb_release(&path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_formats),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_set_get),
		cmocka_unit_test(test_runlog),
	};
	assert_non_null(mkdtemp(dir));
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	rm_rf(dir);
	return rc;
}
