/* Unit tests for the option parser (src/cli/options.c): every spelling of
 * an option and its value, the two modes (operands anywhere, or a command
 * line after the first operand), "--", and the exact text of each usage
 * error. The tables here are small stand-ins for the commands' own. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "cli/options.h"

struct t_opts {
	int verbose, force, kind, jobs;
	const char *name, *format;
	struct strvec inputs, steps;
	int64_t ttl_ms;
	uint64_t max_size;
	int all_steps;
	unsigned bits;
};

static int check_input(void *opts, const char *arg)
{
	return !strcmp(arg, "bad") ? err_set("input '%s' is bad", arg) : 0;
}

static int every_step(void *opts, const char *step)
{
	((struct t_opts *)opts)->all_steps |= !step;
	return 0;
}

static int not_toml(const char *word)
{
	return !strstr(word, ".toml");
}

#define OPTS struct t_opts
static const struct opt table[] = {
	OPT_BOOL("verbose", 'v', verbose, "say more"),
	OPT_BOOL("force", 'f', force, "force"),
	OPT_SET("stderr", 0, kind, 2, "stderr"),
	OPT_SET("stdout", 0, kind, 0, "stdout"),
	OPT_INT("jobs", 'j', jobs, "N", 1, 64, "jobs"),
	OPT_STRING("name", 'n', name, "NAME", "name"),
	OPT_CHOICE("format", 0, format, "dot|mermaid", "format"),
	OPT_LIST_CHECK("input", 'i', inputs, "PATH", check_input, "input"),
	OPT_LIST_OPTIONAL("step", 's', steps, "STEP", every_step, not_toml, "step"),
	OPT_DURATION("ttl", 0, ttl_ms, "ttl"),
	OPT_SIZE("max-size", 0, max_size, "size"),
	OPT_BIT("strict", 0, bits, 1u << 2, "a bit"),
	OPT_BIT("loose", 0, bits, 1u << 0, "another bit"),
	OPT_BOOL("no-cache", 0, verbose, "prefix tests"),
	OPT_BOOL("no-stdin", 0, force, "prefix tests"),
	OPT_END,
};
#undef OPTS

/* Parses words (argv[0] is "cmd") into *o; returns the status. */
static enum opt_status parse(struct t_opts *o, enum opt_mode mode, struct opt_args *args, char **argv)
{
	struct opt_set set = { table, o };
	int argc = 0;
	memset(o, 0, sizeof(*o));
	while (argv[argc])
		argc++;
	return opt_parse(&set, 1, mode, argc, argv, args);
}

static void release(struct t_opts *o)
{
	struct opt_set set = { table, o };
	opt_release(&set, 1);
}

static void expect_error(const char *want, char **argv)
{
	struct t_opts o;
	struct opt_args args;
	assert_int_equal(parse(&o, OPT_PERMUTE, &args, argv), OPT_ERROR);
	assert_string_equal(err_msg(), want);
	release(&o);
}

static void test_spellings(void **state)
{
	char *argv[] = { "cmd", "-v", "--name=alpha", "-j4", "-i", "a", "--input", "b", "-ic", "--ttl", "12h", NULL };
	struct t_opts o;
	struct opt_args args;
	assert_int_equal(parse(&o, OPT_PERMUTE, &args, argv), OPT_OK);
	assert_int_equal(o.verbose, 1);
	assert_string_equal(o.name, "alpha");
	assert_int_equal(o.jobs, 4);
	assert_int_equal(o.inputs.n, 3);
	assert_string_equal(o.inputs.v[2], "c");
	assert_int_equal(o.ttl_ms, 12 * 3600 * 1000LL);
	assert_int_equal(args.argc, 0);
	assert_null(args.argv[0]);
	release(&o);
}

static void test_bundles(void **state)
{
	char *argv[] = { "cmd", "-vfj", "8", "-fn", "x", NULL };
	struct t_opts o;
	struct opt_args args;
	assert_int_equal(parse(&o, OPT_PERMUTE, &args, argv), OPT_OK);
	assert_int_equal(o.verbose, 1);
	assert_int_equal(o.force, 1);
	assert_int_equal(o.jobs, 8);
	assert_string_equal(o.name, "x");
	release(&o);
}

static void test_permute(void **state)
{
	char *argv[] = { "cmd", "a", "-v", "b", "--", "-f", "c", NULL };
	struct t_opts o;
	struct opt_args args;
	assert_int_equal(parse(&o, OPT_PERMUTE, &args, argv), OPT_OK);
	assert_int_equal(o.verbose, 1);
	assert_int_equal(o.force, 0);
	assert_int_equal(args.argc, 4);
	assert_int_equal(args.dashdash, 2);
	assert_string_equal(args.argv[0], "a");
	assert_string_equal(args.argv[1], "b");
	assert_string_equal(args.argv[2], "-f");
	assert_string_equal(args.argv[3], "c");
	assert_null(args.argv[4]);
	release(&o);
}

static void test_stop_at_operand(void **state)
{
	char *argv[] = { "cmd", "-v", "echo", "-f", "--", "x", NULL };
	struct t_opts o;
	struct opt_args args;
	assert_int_equal(parse(&o, OPT_STOP_AT_OPERAND, &args, argv), OPT_OK);
	assert_int_equal(o.verbose, 1);
	assert_int_equal(o.force, 0);
	assert_int_equal(args.dashdash, -1);
	assert_int_equal(args.argc, 4);
	assert_string_equal(args.argv[0], "echo");
	assert_string_equal(args.argv[2], "--");

	/* "--" ends the options; a second "--" is the command's */
	char *argv2[] = { "cmd", "-f", "--", "sh", "--", "-v", NULL };
	assert_int_equal(parse(&o, OPT_STOP_AT_OPERAND, &args, argv2), OPT_OK);
	assert_int_equal(o.force, 1);
	assert_int_equal(o.verbose, 0);
	assert_int_equal(args.dashdash, 0);
	assert_int_equal(args.argc, 3);
	assert_string_equal(args.argv[1], "--");

	/* "-" alone is an operand (stdin), not an option */
	char *argv3[] = { "cmd", "-", "-v", NULL };
	assert_int_equal(parse(&o, OPT_STOP_AT_OPERAND, &args, argv3), OPT_OK);
	assert_int_equal(args.argc, 2);
	assert_int_equal(o.verbose, 0);
}

static void test_values(void **state)
{
	char *argv[] = { "cmd", "--stderr", "--format", "mermaid", "--max-size=2G", "--jobs", "64", NULL };
	struct t_opts o;
	struct opt_args args;
	assert_int_equal(parse(&o, OPT_PERMUTE, &args, argv), OPT_OK);
	assert_int_equal(o.kind, 2);
	assert_string_equal(o.format, "mermaid");
	assert_int_equal(o.max_size, 2ULL << 30);
	assert_int_equal(o.jobs, 64);
	/* a flag may store 0: the later one wins */
	char *argv2[] = { "cmd", "--stderr", "--stdout", NULL };
	assert_int_equal(parse(&o, OPT_PERMUTE, &args, argv2), OPT_OK);
	assert_int_equal(o.kind, 0);
	/* bits add up */
	char *bits[] = { "cmd", "--strict", "--loose", NULL };
	assert_int_equal(parse(&o, OPT_PERMUTE, &args, bits), OPT_OK);
	assert_int_equal(o.bits, 5);
	/* a value that looks like an option is still the value */
	char *argv3[] = { "cmd", "--name", "-v", NULL };
	assert_int_equal(parse(&o, OPT_PERMUTE, &args, argv3), OPT_OK);
	assert_string_equal(o.name, "-v");
	assert_int_equal(o.verbose, 0);
}

static void test_optional_value(void **state)
{
	char *argv[] = { "cmd", "--step", "train", "-s", "dag.toml", "--step=eval", "-s", "-v", NULL };
	struct t_opts o;
	struct opt_args args;
	assert_int_equal(parse(&o, OPT_PERMUTE, &args, argv), OPT_OK);
	assert_int_equal(o.steps.n, 2);
	assert_string_equal(o.steps.v[0], "train");
	assert_string_equal(o.steps.v[1], "eval");
	assert_int_equal(o.all_steps, 1);
	assert_int_equal(o.verbose, 1);
	assert_int_equal(args.argc, 1);
	assert_string_equal(args.argv[0], "dag.toml");
	release(&o);
}

static void test_prefixes(void **state)
{
	char *argv[] = { "cmd", "--verb", "--form=dot", NULL };
	struct t_opts o;
	struct opt_args args;
	assert_int_equal(parse(&o, OPT_PERMUTE, &args, argv), OPT_OK);
	assert_int_equal(o.verbose, 1);
	assert_string_equal(o.format, "dot");
	expect_error("option '--no' is ambiguous (--no-cache, --no-stdin)", (char *[]){ "cmd", "--no", NULL });
}

static void test_help(void **state)
{
	struct t_opts o;
	struct opt_args args;
	assert_int_equal(parse(&o, OPT_PERMUTE, &args, (char *[]){ "cmd", "-v", "--help", "--bogus", NULL }), OPT_HELP);
	assert_int_equal(parse(&o, OPT_PERMUTE, &args, (char *[]){ "cmd", "-vh", NULL }), OPT_HELP);
	/* after "--" it is an operand */
	assert_int_equal(parse(&o, OPT_PERMUTE, &args, (char *[]){ "cmd", "--", "-h", NULL }), OPT_OK);
}

static void test_errors(void **state)
{
	expect_error("unknown option '--bogus'", (char *[]){ "cmd", "--bogus", NULL });
	expect_error("unknown option '--bogus'", (char *[]){ "cmd", "--bogus=1", NULL });
	expect_error("unknown option '-x'", (char *[]){ "cmd", "-vx", NULL });
	expect_error("option '--name' needs a value", (char *[]){ "cmd", "--name", NULL });
	expect_error("option '-i' needs a value", (char *[]){ "cmd", "-i", NULL });
	expect_error("option '--verbose' takes no value", (char *[]){ "cmd", "--verbose=1", NULL });
	expect_error("option '--strict' takes no value", (char *[]){ "cmd", "--strict=yes", NULL });
	expect_error("--jobs: expected a number from 1 to 64, got '0'", (char *[]){ "cmd", "--jobs", "0", NULL });
	expect_error("-j: expected a number from 1 to 64, got 'x'", (char *[]){ "cmd", "-jx", NULL });
	expect_error("--format: expected 'dot' or 'mermaid', got 'svg'", (char *[]){ "cmd", "--format=svg", NULL });
	expect_error("--ttl: invalid duration 'soon' (expected e.g. 30s, 10m, 12h, 7d)",
		     (char *[]){ "cmd", "--ttl", "soon", NULL });
	expect_error("input 'bad' is bad", (char *[]){ "cmd", "-i", "good", "-i", "bad", NULL });
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_spellings), cmocka_unit_test(test_bundles),
		cmocka_unit_test(test_permute),   cmocka_unit_test(test_stop_at_operand),
		cmocka_unit_test(test_values),    cmocka_unit_test(test_optional_value),
		cmocka_unit_test(test_prefixes),  cmocka_unit_test(test_help),
		cmocka_unit_test(test_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
