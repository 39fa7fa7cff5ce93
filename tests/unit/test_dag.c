/* Unit tests for the pipeline graph: parsing, sweep expansion, ${...}
 * substitution, edges, topological order and the exact "file:line:" text of
 * every validation error. Each test writes dag.toml in a fresh temp dir. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pipeline/dag.h"
#include "util/util.h"

static char tmpdir[] = "/tmp/cashet-test-dag.XXXXXX";

static int setup(void **state)
{
	char *d = mkdtemp(tmpdir);
	if (!d || chdir(d) < 0)
		return -1;
	return 0;
}

static int teardown(void **state)
{
	unlink("dag.toml");
	unlink("data.csv");
	if (chdir("/") < 0)
		return -1;
	rmdir(tmpdir);
	strcpy(tmpdir, "/tmp/cashet-test-dag.XXXXXX");
	return 0;
}

static void write_dag(const char *text)
{
	assert_int_equal(write_file_atomic("dag.toml", text, strlen(text), 0644), 0);
}

static struct dag *load_ok(const char *text)
{
	struct dag *d = NULL;
	write_dag(text);
	int rc = dag_load("dag.toml", &d);
	if (rc != 0)
		print_error("unexpected error: %s\n", err_msg());
	assert_int_equal(rc, 0);
	assert_non_null(d);
	return d;
}

static void expect_err(const char *text, const char *want)
{
	struct dag *d = (struct dag *)1;
	write_dag(text);
	assert_int_equal(dag_load("dag.toml", &d), -1);
	assert_null(d);
	assert_string_equal(err_msg(), want);
}

/* The names of the steps in topological order, space separated. */
static char *order(const struct dag *d)
{
	struct strbuf sb = STRBUF_INIT;
	for (size_t k = 0; k < d->n; k++)
		sb_addf(&sb, "%s%s", k ? " " : "", d->steps[d->order[k]].name);
	return sb_detach(&sb);
}

static void test_basic(void **state)
{
	struct dag *d = load_ok("[vars]\n"
				"data = \"raw.csv\"\n"
				"n = 3\n"
				"[steps.report]\n"
				"cmd = \"cat ${steps.clean.outputs[0]} > report.txt # ${HOME} is the shell's\"\n"
				"inputs = [\"out/clean.csv\"]\n"
				"outputs = [\"report.txt\"]\n"
				"[steps.clean]\n"
				"cmd = [\"python3\", \"clean.py\", \"${vars.data}\", \"${vars.n}\"]\n"
				"outputs = [\"out\"]\n"
				"env = { MODE = \"fast-${vars.n}\" }\n"
				"timeout = \"10m\"\n"
				"retries = 2\n"
				"cache = false\n"
				"tags = { owner = \"me\" }\n");
	assert_int_equal(d->n, 2);
	char *o = order(d);
	assert_string_equal(o, "clean report");
	free(o);
	const struct dag_step *r = &d->steps[0], *c = &d->steps[1];
	assert_true(r->shell);
	assert_string_equal(r->argv.v[0], "cat out > report.txt # ${HOME} is the shell's");
	assert_int_equal(r->npreds, 1);
	assert_int_equal(r->preds[0], 1);
	assert_false(c->shell);
	assert_int_equal(c->argv.n, 4);
	assert_string_equal(c->argv.v[2], "raw.csv");
	assert_string_equal(c->argv.v[3], "3");
	assert_string_equal(c->envs.v[0], "MODE");
	assert_string_equal(c->env_set.v[0], "MODE=fast-3");
	assert_string_equal(c->timeout, "10m");
	assert_int_equal(c->retries, 2);
	assert_int_equal(c->cache, 0);
	assert_int_equal(r->cache, 1);
	assert_int_equal(r->retries, -1);
	assert_string_equal(c->tags.v[0], "owner=me");
	assert_string_equal(c->workdir, ".");
	assert_true(dag_depends(d, 0, 1));
	assert_false(dag_depends(d, 1, 0));
	dag_free(d);
}

static void test_matrix(void **state)
{
	struct dag *d = load_ok("[steps.train]\n"
				"cmd = \"train --lr ${matrix.lr} --dropout ${matrix.dropout}\"\n"
				"outputs = [\"models/${matrix.lr}-${matrix.dropout}.bin\"]\n"
				"matrix = { lr = [0.1, 0.01], dropout = [0.2, 0.5] }\n"
				"[steps.eval]\n"
				"cmd = [\"eval\", \"${steps.train.outputs}\"]\n"
				"inputs = [\"models/*.bin\"]\n"
				"[steps.pick]\n"
				"cmd = \"pick ${steps.train.outputs}\"\n"
				"deps = [\"train@lr=0.01,dropout=0.5\"]\n");
	assert_int_equal(d->n, 6);
	assert_string_equal(d->steps[0].name, "train@lr=0.1,dropout=0.2");
	assert_string_equal(d->steps[1].name, "train@lr=0.1,dropout=0.5");
	assert_string_equal(d->steps[2].name, "train@lr=0.01,dropout=0.2");
	assert_string_equal(d->steps[3].name, "train@lr=0.01,dropout=0.5");
	assert_string_equal(d->steps[3].base, "train");
	assert_string_equal(d->steps[3].argv.v[0], "train --lr 0.01 --dropout 0.5");
	assert_string_equal(d->steps[3].outputs.v[0], "models/0.01-0.5.bin");
	/* the whole-element reference fans in: one argument per output */
	const struct dag_step *e = &d->steps[4];
	assert_int_equal(e->argv.n, 5);
	assert_string_equal(e->argv.v[1], "models/0.1-0.2.bin");
	assert_string_equal(e->argv.v[4], "models/0.01-0.5.bin");
	assert_int_equal(e->npreds, 4);
	assert_string_equal(d->steps[5].argv.v[0],
			    "pick models/0.1-0.2.bin models/0.1-0.5.bin models/0.01-0.2.bin models/0.01-0.5.bin");
	assert_int_equal(d->steps[5].npreds, 4);

	unsigned char want[6];
	char *t[] = { "train" };
	assert_int_equal(dag_select(d, t, 1, want), 0);
	assert_memory_equal(want, "\1\1\1\1\0\0", 6);
	char *t2[] = { "train@lr=0.1,dropout=0.5", "nope" };
	assert_int_equal(dag_select(d, t2, 1, want), 0);
	assert_memory_equal(want, "\0\1\0\0\0\0", 6);
	assert_int_equal(dag_select(d, t2, 2, want), -1);
	assert_string_equal(err_msg(), "unknown step 'nope' in dag.toml");
	assert_int_equal(dag_find(d, "eval"), 4);
	assert_int_equal(dag_find(d, "train"), -1);
	dag_free(d);
}

static void test_paths(void **state)
{
	/* an input inside an output directory, through workdirs */
	struct dag *d = load_ok("[steps.use]\n"
				"cmd = \"x\"\n"
				"workdir = \"sub\"\n"
				"inputs = [\"../data/part/x.csv\"]\n"
				"[steps.make]\n"
				"cmd = \"x\"\n"
				"outputs = [\"./data//part\"]\n");
	assert_string_equal(d->steps[0].workdir, "sub");
	assert_int_equal(d->steps[0].npreds, 1);
	char *o = order(d);
	assert_string_equal(o, "make use");
	free(o);
	dag_free(d);
}

static void test_errors(void **state)
{
	expect_err("[steps.a]\ncmd = \"x\"\ndeps = [\"b\"]\n[steps.b]\ncmd = \"x\"\ndeps = [\"a\"]\n",
		   "dag.toml:1: cycle: a -> b -> a");
	expect_err("[steps.a]\ncmd = \"x\"\ndeps = [\"a\"]\n", "dag.toml:3: step 'a' depends on itself");
	expect_err("[steps.a]\ncmd = \"x\"\n\n[steps.b]\ncmd = \"x\"\ndeps = [\"zz\"]\n",
		   "dag.toml:6: unknown step 'zz' in deps of step 'b'");
	expect_err("[steps.a]\ncmd = \"x\"\noutputs = [\"o\"]\n[steps.b]\ncmd = \"x\"\noutputs = [\"o/p\"]\n",
		   "dag.toml:6: steps 'a' and 'b' both write 'o/p'");
	expect_err("[steps.a]\ncmd = \"x\"\ninputs = [\"data.csv\"]\n",
		   "dag.toml:3: input 'data.csv' of step 'a' does not exist and no step produces it");
	expect_err("[steps.train]\ncmd = \"x\"\n\nimputs = [1]\n", "dag.toml:4: unknown key 'imputs' in step 'train'");
	expect_err("[steps.a]\ncmd = \"${vars.x}\"\n", "dag.toml:2: unknown variable 'vars.x' in step 'a'");
	expect_err("[steps.a]\ncmd = \"${matrix.lr}\"\n", "dag.toml:2: unknown variable 'matrix.lr' in step 'a'");
	expect_err("[steps.a]\ncmd = \"x\"\noutputs = [\"${steps.b.outputs}\"]\n[steps.b]\ncmd = \"x\"\n",
		   "dag.toml:3: step 'a': outputs cannot refer to other steps ('${steps.b.outputs}')");
	expect_err("[steps.a]\ncmd = \"x\"\noutputs = [\"o\"]\n[steps.b]\ncmd = \"${steps.a.outputs[3]}\"\n",
		   "dag.toml:5: '${steps.a.outputs[3]}' of step 'b': step 'a' has 1 outputs");
	expect_err("[steps.a]\ntimeout = \"soon\"\ncmd = \"x\"\n",
		   "dag.toml:2: step 'a': timeout: invalid duration 'soon' (expected e.g. 30s, 10m, 12h, 7d)");
	expect_err("[steps.a]\n", "dag.toml:1: step 'a' has no 'cmd'");
	expect_err("[step.a]\ncmd = \"x\"\n",
		   "dag.toml:1: unknown key 'step' (expected executor, [vars], [defaults] or [steps.NAME])");
	expect_err("[steps.a]\ncmd = 3\n",
		   "dag.toml:2: step 'a': 'cmd' must be a string or a non-empty array of strings");
	expect_err("[steps.a]\ncmd = \"x\"\nmatrix = { k = [] }\n",
		   "dag.toml:3: step 'a': matrix 'k' must be a non-empty array");
	expect_err("[steps.a]\ncmd = \"x\n", "dag.toml:2:9: newline in a single-line string (missing closing quote?)");
}

static void test_missing_input_exists(void **state)
{
	assert_int_equal(write_file_atomic("data.csv", "x\n", 2, 0644), 0);
	struct dag *d = load_ok("[steps.a]\ncmd = \"x\"\ninputs = [\"data.csv\", \"nothing/*.csv\"]\n");
	assert_int_equal(d->steps[0].npreds, 0);
	dag_free(d);
}

/* A large pipeline: edges found by search, not by comparing every pair
 * (a matrix of n * n and its scans took minutes at 100,000 steps), with
 * the same edges, order and errors. */
static void test_large(void **state)
{
	enum { N = 20000 };
	struct strbuf sb = STRBUF_INIT;
	for (int i = 0; i < N; i++) {
		sb_addf(&sb, "[steps.s%d]\ncmd = \"x\"\noutputs = [\"out/s%d.txt\"]\n", i, i);
		if (i % 10)
			sb_addf(&sb, "inputs = [\"out/s%d.txt\"]\n", i - 1);
	}
	/* a glob fans in every output; a directory output feeds a file inside it */
	sb_adds(&sb, "[steps.all]\ncmd = \"x\"\ninputs = [\"out/*.txt\"]\n"
		     "[steps.dir]\ncmd = \"x\"\noutputs = [\"./d\"]\n"
		     "[steps.use]\ncmd = \"x\"\ninputs = [\"d/x/y\", \"d\"]\n");
	struct dag *d = load_ok(sb.buf);
	assert_int_equal(d->n, N + 3);
	assert_int_equal(d->steps[0].npreds, 0);
	assert_int_equal(d->steps[7].npreds, 1);
	assert_int_equal(d->steps[7].preds[0], 6);
	assert_int_equal(d->steps[N].npreds, N);
	for (size_t p = 0; p < N; p++)
		assert_int_equal(d->steps[N].preds[p], p);
	assert_int_equal(d->steps[N + 2].npreds, 1);
	assert_int_equal(d->steps[N + 2].preds[0], N + 1);
	for (size_t k = 0; k < N; k++)
		assert_int_equal(d->order[k], k);
	assert_int_equal(d->order[N], N);
	dag_free(d);

	/* a clash at the end of a large file names the steps as before */
	sb_reset(&sb);
	for (int i = 0; i < N; i++)
		sb_addf(&sb, "[steps.s%d]\ncmd = \"x\"\noutputs = [\"out/s%d.txt\"]\n", i, i);
	sb_adds(&sb, "[steps.late]\ncmd = \"x\"\noutputs = [\"out/s5.txt\"]\n");
	struct strbuf want = STRBUF_INIT;
	sb_addf(&want, "dag.toml:%d: steps 's5' and 'late' both write 'out/s5.txt'", 3 * N + 3);
	expect_err(sb.buf, want.buf);
	/* and a cycle through a long chain */
	sb_reset(&sb);
	for (int i = 0; i < N; i++)
		sb_addf(&sb, "[steps.s%d]\ncmd = \"x\"\ndeps = [\"s%d\"]\n", i, (i + 1) % N);
	struct dag *d2 = (struct dag *)1;
	write_dag(sb.buf);
	assert_int_equal(dag_load("dag.toml", &d2), -1);
	assert_null(d2);
	assert_true(!strncmp(err_msg(), "dag.toml:1: cycle: s0 -> s19999 -> s19998 -> ", 45));
	assert_true(strstr(err_msg(), " -> s1 -> s0") != NULL);
	sb_release(&want);
	sb_release(&sb);
}

/* The sbatch options of step i, joined by spaces. */
static void expect_args(const struct dag *d, size_t i, const char *want)
{
	struct strvec args = STRVEC_INIT;
	struct strbuf sb = STRBUF_INIT;
	dag_sbatch_args(&d->steps[i], &args);
	for (size_t k = 0; k < args.n; k++)
		sb_addf(&sb, "%s%s", k ? " " : "", args.v[k]);
	assert_string_equal(sb_str(&sb), want);
	sv_release(&args);
	sb_release(&sb);
}

static void test_slurm(void **state)
{
	/* [defaults] first, the step's own keys over them; matrix values
	 * substituted; durations in whole minutes, Slurm's forms kept */
	struct dag *d = load_ok("[defaults]\nexecutor = \"slurm\"\nmem = \"1G\"\ntime = \"90s\"\n"
				"slurm_args = [\"--qos=low\"]\n"
				"[steps.a]\ncmd = \"x\"\nmatrix = { n = [1, 4] }\ncpus = \"${matrix.n}\"\n"
				"[steps.b]\ncmd = \"y\"\nexecutor = \"local\"\nmem = 500\ntime = \"1-02:00:00\"\n"
				"gpus = \"a100:2\"\npartition = \"gpu\"\naccount = \"lab\"\nslurm_args = []\n");
	assert_int_equal(d->executor, DAG_EXEC_SLURM);
	assert_int_equal(d->steps[0].executor, DAG_EXEC_UNSET);
	assert_int_equal(d->steps[2].executor, DAG_EXEC_LOCAL);
	expect_args(d, 0, "--cpus-per-task=1 --mem=1G --time=2 --qos=low");
	expect_args(d, 1, "--cpus-per-task=4 --mem=1G --time=2 --qos=low");
	expect_args(d, 2, "--partition=gpu --account=lab --mem=500 --gpus=a100:2 --time=1-02:00:00");
	dag_free(d);
	d = load_ok("executor = \"local\"\n[steps.a]\ncmd = \"x\"\ngpus = 0\n");
	assert_int_equal(d->executor, DAG_EXEC_LOCAL);
	expect_args(d, 0, "");
	dag_free(d);
	expect_err("[steps.a]\ncmd = \"x\"\ngpus = \"many\"\n",
		   "dag.toml:3: step 'a': 'gpus' must be a count or TYPE:COUNT, not 'many'");
	expect_err("[steps.a]\ncmd = \"x\"\npartition = \"a b\"\n",
		   "dag.toml:3: step 'a': 'partition' must be a non-empty word, not 'a b'");
	expect_err("[steps.a]\ncmd = \"x\"\ntime = 10\n", "dag.toml:3: step 'a': 'time' must be a string");
	expect_err("executor = 1\n[steps.a]\ncmd = \"x\"\n", "dag.toml:1: 'executor' must be \"local\" or \"slurm\"");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_basic, setup, teardown),
		cmocka_unit_test_setup_teardown(test_matrix, setup, teardown),
		cmocka_unit_test_setup_teardown(test_paths, setup, teardown),
		cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_missing_input_exists, setup, teardown),
		cmocka_unit_test_setup_teardown(test_large, setup, teardown),
		cmocka_unit_test_setup_teardown(test_slurm, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
