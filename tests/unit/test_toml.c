/* Unit tests for the TOML parser: the API, value lines, insertion order and
 * the exact text of error messages (file:line:col), which users rely on to
 * find mistakes in their config. The conformance suite is toml-test. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/toml.h"
#include "util/util.h"

static struct toml_value *parse_ok(const char *text)
{
	struct toml_value *root = NULL;
	int rc = toml_parse(text, strlen(text), "t.toml", &root);
	if (rc != 0)
		print_error("unexpected parse error: %s\n", err_msg());
	assert_int_equal(rc, 0);
	assert_non_null(root);
	return root;
}

/* Parses text, which must fail with exactly the message want. */
static void expect_err(const char *text, const char *want)
{
	struct toml_value *root = (struct toml_value *)1;
	assert_int_equal(toml_parse(text, strlen(text), "t.toml", &root), -1);
	assert_null(root);
	assert_string_equal(err_msg(), want);
}

static void test_keys(void **state)
{
	struct toml_value *r = parse_ok("\"\" = 1\n"
					"'quoted key' = 2\n"
					"a . \"b.c\" . d = 3\n"
					"\"n\\u0000ul\" = 4\n"
					"1234 = 5\n");
	size_t len;

	assert_int_equal(toml_int(toml_table_get(r, "")), 1);
	assert_int_equal(toml_int(toml_table_get(r, "quoted key")), 2);
	assert_int_equal(toml_int(toml_table_get(toml_table_get(toml_table_get(r, "a"), "b.c"), "d")), 3);
	assert_int_equal(toml_int(toml_table_getn(r, "n\0ul", 4)), 4);
	assert_memory_equal(toml_table_key(r, 3, &len), "n\0ul", 4);
	assert_int_equal(len, 4);
	assert_int_equal(toml_int(toml_table_get(r, "1234")), 5);
	toml_free(r);
}

static void test_types(void **state)
{
	struct toml_value *r = parse_ok("s = 'lit'\n"
					"i = 1_000\n"
					"h = 0xdead_BEEF\n"
					"o = 0o755\n"
					"b = 0b1010\n"
					"f = 6.25e-1\n"
					"inf = -inf\n"
					"nan = nan\n"
					"t = true\n"
					"odt = 1979-05-27 07:32:00.5z\n"
					"ldt = 1979-05-27t07:32:00\n"
					"ld = 2000-02-29\n"
					"lt = 23:59:60\n"
					"min = -9223372036854775808\n"
					"max = 9223372036854775807\n");
	size_t len;

	assert_int_equal(toml_type(r), TOML_TABLE);
	assert_string_equal(toml_string(toml_table_get(r, "s"), &len), "lit");
	assert_int_equal(len, 3);
	assert_int_equal(toml_int(toml_table_get(r, "i")), 1000);
	assert_int_equal(toml_int(toml_table_get(r, "h")), 0xdeadbeef);
	assert_int_equal(toml_int(toml_table_get(r, "o")), 0755);
	assert_int_equal(toml_int(toml_table_get(r, "b")), 10);
	assert_true(toml_float(toml_table_get(r, "f")) == 0.625);
	assert_true(isinf(toml_float(toml_table_get(r, "inf"))));
	assert_true(toml_float(toml_table_get(r, "inf")) < 0);
	assert_true(isnan(toml_float(toml_table_get(r, "nan"))));
	assert_int_equal(toml_bool(toml_table_get(r, "t")), 1);
	assert_int_equal(toml_type(toml_table_get(r, "odt")), TOML_DATETIME);
	assert_string_equal(toml_datetime(toml_table_get(r, "odt")), "1979-05-27T07:32:00.5Z");
	assert_int_equal(toml_type(toml_table_get(r, "ldt")), TOML_DATETIME_LOCAL);
	assert_string_equal(toml_datetime(toml_table_get(r, "ldt")), "1979-05-27T07:32:00");
	assert_int_equal(toml_type(toml_table_get(r, "ld")), TOML_DATE_LOCAL);
	assert_int_equal(toml_type(toml_table_get(r, "lt")), TOML_TIME_LOCAL);
	assert_true(toml_int(toml_table_get(r, "min")) == INT64_MIN);
	assert_true(toml_int(toml_table_get(r, "max")) == INT64_MAX);

	/* Wrong-type accessors return neutral values, not garbage. */
	assert_null(toml_string(toml_table_get(r, "i"), NULL));
	assert_int_equal(toml_int(toml_table_get(r, "s")), 0);
	assert_null(toml_table_get(r, "missing"));
	assert_null(toml_table_get(toml_table_get(r, "s"), "x"));
	assert_string_equal(toml_type_name(TOML_DATETIME_LOCAL), "datetime-local");
	toml_free(r);
}

static void test_strings(void **state)
{
	struct toml_value *r = parse_ok("nul = \"a\\u0000b\"\n"
					"ml = \"\"\"\n"
					"one \\\n"
					"     two\r\n"
					"three\"\"\"\"\"\n"
					"lit = '''\n"
					"x\\y''''\n"
					"u = \"\\U0001F600\"\n");
	size_t len;
	const char *s = toml_string(toml_table_get(r, "nul"), &len);

	assert_int_equal(len, 3);
	assert_memory_equal(s, "a\0b", 3);
	/* Line-ending backslash trims; CRLF becomes LF; two closing quotes
	 * before the delimiter belong to the content. */
	assert_string_equal(toml_string(toml_table_get(r, "ml"), NULL), "one two\nthree\"\"");
	assert_string_equal(toml_string(toml_table_get(r, "lit"), NULL), "x\\y'");
	assert_string_equal(toml_string(toml_table_get(r, "u"), NULL), "\xF0\x9F\x98\x80");
	toml_free(r);
}

static void test_order_and_lines(void **state)
{
	struct toml_value *r = parse_ok("zeta = 1\n"    /* 1 */
					"alpha = 2\n"   /* 2 */
					"\n"            /* 3 */
					"[mid]\n"       /* 4 */
					"k = [\n"       /* 5 */
					"  1,\n"        /* 6 */
					"  2,\n"        /* 7 */
					"]\n"           /* 8 */
					"[[jobs]]\n"    /* 9 */
					"name = 'a'\n"  /* 10 */
					"[[jobs]]\n"    /* 11 */
					"name = 'b'\n"  /* 12 */
					"x.y.z = 3\n"); /* 13 */
	struct toml_value *mid, *jobs, *k;
	size_t len;

	assert_int_equal(toml_table_count(r), 4);
	assert_string_equal(toml_table_key(r, 0, &len), "zeta");
	assert_int_equal(len, 4);
	assert_string_equal(toml_table_key(r, 1, NULL), "alpha");
	assert_string_equal(toml_table_key(r, 2, NULL), "mid");
	assert_string_equal(toml_table_key(r, 3, NULL), "jobs");
	assert_null(toml_table_key(r, 4, NULL));
	assert_int_equal(toml_line(toml_table_value(r, 1)), 2);

	mid = toml_table_get(r, "mid");
	assert_int_equal(toml_line(mid), 4);
	k = toml_table_get(mid, "k");
	assert_int_equal(toml_line(k), 5);
	assert_int_equal(toml_array_len(k), 2);
	assert_int_equal(toml_line(toml_array_get(k, 1)), 7);
	assert_null(toml_array_get(k, 2));

	jobs = toml_table_get(r, "jobs");
	assert_int_equal(toml_type(jobs), TOML_ARRAY);
	assert_int_equal(toml_array_len(jobs), 2);
	assert_int_equal(toml_line(toml_array_get(jobs, 1)), 11);
	assert_string_equal(toml_string(toml_table_get(toml_array_get(jobs, 1), "name"), NULL), "b");
	k = toml_table_get(toml_array_get(jobs, 1), "x");
	assert_int_equal(toml_line(k), 13);
	assert_int_equal(toml_int(toml_table_get(toml_table_get(k, "y"), "z")), 3);
	toml_free(r);
}

/* Enough keys to switch a table to its hash index; order must survive. */
static void test_big_table(void **state)
{
	struct strbuf sb = STRBUF_INIT;
	struct toml_value *r;
	char key[32];

	for (int i = 0; i < 500; i++)
		sb_addf(&sb, "k%d = %d\n", (i * 7919) % 500, i);
	r = parse_ok(sb.buf);
	assert_int_equal(toml_table_count(r), 500);
	for (int i = 0; i < 500; i++) {
		snprintf(key, sizeof(key), "k%d", (i * 7919) % 500);
		assert_string_equal(toml_table_key(r, (size_t)i, NULL), key);
		assert_int_equal(toml_int(toml_table_get(r, key)), i);
	}
	sb_addf(&sb, "k42 = 0\n");
	expect_err(sb.buf, "t.toml:501:1: duplicate key 'k42' (first defined at line 19)");
	toml_free(r);
	sb_release(&sb);
}

static void test_errors(void **state)
{
	expect_err("a = 1\nb 2\n", "t.toml:2:3: expected '=' after key 'b', found '2'");
	expect_err("x = 1\n\n[t]\nx = 1\ny = 2\nx = 3\n", "t.toml:6:1: duplicate key 't.x' (first defined at line 4)");
	expect_err("[a]\n[b]\n[a]\n", "t.toml:3:2: table [a] is defined twice (first at line 1)");
	expect_err("s = \"\\q\"\n", "t.toml:1:6: invalid escape sequence '\\q'");
	expect_err("s = \"\\uD800\"\n",
		   "t.toml:1:6: invalid escape '\\uD800': surrogate code points are not characters");
	expect_err("s = \"abc\n", "t.toml:1:9: newline in a single-line string (missing closing quote?)");
	expect_err("i = 9223372036854775808\n", "t.toml:1:5: integer 9223372036854775808 does not fit in 64 bits");
	expect_err("i = 012\n", "t.toml:1:5: leading zeros are not allowed in numbers");
	expect_err("i = 1__2\n", "t.toml:1:6: underscores in numbers must be between digits");
	expect_err("i = -0x1\n", "t.toml:1:5: a sign is not allowed on hexadecimal, octal or binary integers");
	expect_err("f = 1.\n", "t.toml:1:7: expected digits after the decimal point");
	expect_err("d = 2023-02-29\n", "t.toml:1:13: invalid date: 2023-02-29 does not exist");
	expect_err("d = 2024-01-01T25:00:00\n", "t.toml:1:16: invalid time: hour 25 is out of range");
	expect_err("v = yes\n", "t.toml:1:5: invalid value 'yes' (strings must be quoted)");
	expect_err("t = {a = 1,}\n", "t.toml:1:11: trailing comma is not allowed in inline tables");
	expect_err("t = {a = 1,\nb = 2}\n", "t.toml:1:12: newlines are not allowed in inline tables");
	expect_err("t = {a = 1}\n[t]\n",
		   "t.toml:2:2: cannot define table [t]: it is already an inline table (defined at line 1)");
	expect_err("a = [1, 2\n", "t.toml:1:5: unterminated array");
	expect_err("[a]\nb.c = 1\n[a.b]\n",
		   "t.toml:3:4: cannot define table [a.b]: it was already created by dotted keys at line 2");
	expect_err("a = []\n[[a]]\n", "t.toml:2:3: cannot define [[a]]: it is already an array (defined at line 1)");
	/* Columns count characters, not bytes. */
	expect_err("k = \"\xC3\xA9\xC3\xA9\" x\n", "t.toml:1:10: expected end of line after value, found 'x'");
	expect_err("k = 1\r\n\rx = 2\n", "t.toml:2:1: carriage return not followed by a newline");
	expect_err("k = \"\xC3\x28\"\n", "t.toml:1:6: truncated UTF-8 sequence");
	expect_err("# \x7f\n", "t.toml:1:3: control character U+007F is not allowed in a comment");
	expect_err("[a", "t.toml:1:3: expected ']' to close the table header, found end of file");
}

static void test_null_filename(void **state)
{
	struct toml_value *r;
	assert_int_equal(toml_parse("=", 1, NULL, &r), -1);
	assert_string_equal(err_msg(), "<input>:1:1: expected a key, found '='");
}

/* Deep nesting must fail with a message, not by overflowing the stack. */
static void test_deep_nesting(void **state)
{
	struct strbuf sb = STRBUF_INIT;
	struct toml_value *r;
	int depth = 100000;

	sb_adds(&sb, "a = ");
	for (int i = 0; i < depth; i++)
		sb_addc(&sb, '[');
	expect_err(sb.buf, "t.toml:1:1005: nesting too deep (more than 1000 levels)");

	sb_reset(&sb);
	sb_adds(&sb, "a = ");
	for (int i = 0; i < depth; i++)
		sb_adds(&sb, "{b = ");
	expect_err(sb.buf, "t.toml:1:5005: nesting too deep (more than 1000 levels)");

	/* Dotted keys nest without recursion in the parser, but the tree
	 * would still be too deep for anything that walks it. */
	sb_reset(&sb);
	for (int i = 0; i < depth; i++)
		sb_adds(&sb, "a.");
	sb_adds(&sb, "a = 1\n");
	expect_err(sb.buf, "t.toml:1:2001: nesting too deep (more than 1000 levels)");

	/* Just within the limit is fine. */
	sb_reset(&sb);
	sb_adds(&sb, "a = ");
	for (int i = 0; i < 999; i++)
		sb_addc(&sb, '[');
	for (int i = 0; i < 999; i++)
		sb_addc(&sb, ']');
	r = parse_ok(sb.buf);
	toml_free(r);
	sb_release(&sb);
}

static void test_parse_file(void **state)
{
	char path[] = "/tmp/test_toml_XXXXXX";
	struct toml_value *r;
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	assert_int_equal(write_all(fd, "[x]\ny = 'z'\nw = \n", 17), 0);
	close(fd);
	assert_int_equal(toml_parse_file(path, &r), -1);
	assert_null(r);
	assert_true(strstr(err_msg(), ":3:5: expected a value, found newline") != NULL);
	assert_true(strncmp(err_msg(), path, strlen(path)) == 0);

	fd = open(path, O_WRONLY | O_TRUNC);
	assert_true(fd >= 0);
	assert_int_equal(write_all(fd, "[x]\ny = 'z'\n", 12), 0);
	close(fd);
	assert_int_equal(toml_parse_file(path, &r), 0);
	assert_string_equal(toml_string(toml_table_get(toml_table_get(r, "x"), "y"), NULL), "z");
	toml_free(r);
	unlink(path);

	assert_int_equal(toml_parse_file("/nonexistent/x.toml", &r), -1);
	assert_string_equal(err_msg(), "cannot open /nonexistent/x.toml: No such file or directory");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_keys),          cmocka_unit_test(test_types),
		cmocka_unit_test(test_strings),       cmocka_unit_test(test_order_and_lines),
		cmocka_unit_test(test_big_table),     cmocka_unit_test(test_errors),
		cmocka_unit_test(test_null_filename), cmocka_unit_test(test_deep_nesting),
		cmocka_unit_test(test_parse_file),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
