/* Unit tests for the archive manifest parser (store/manifest.c): what an
 * archive's head must look like, the message for each way it can be
 * wrong, and the "read more" answer the reader relies on. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "store/manifest.h"

#define H1 "0123456789abcdef0123456789abcdef01234567"
#define H2 "fedcba9876543210fedcba9876543210fedcba98"

static int parse_all(const char *text, size_t len, struct strvec *ids, uint64_t *off, uint64_t *size)
{
	err_clear();
	return manifest_parse(text, len, len, "a.cashet", ids, off, size);
}

static void test_parses_export_head(void **state)
{
	static const char a[] = "cashet-archive 1\nrun " H2 "\nrun " H1 "\npack 00000000000000000005\nPACK!";
	struct strvec ids = STRVEC_INIT;
	uint64_t off = 0, size = 0;
	assert_int_equal(parse_all(a, sizeof(a) - 1, &ids, &off, &size), 0);
	assert_int_equal(ids.n, 2);
	/* sorted, whatever the file's order */
	assert_string_equal(ids.v[0], H1);
	assert_string_equal(ids.v[1], H2);
	assert_int_equal(off, sizeof(a) - 1 - 5);
	assert_int_equal(size, 5);
	assert_memory_equal(a + off, "PACK!", 5);
	sv_release(&ids);
}

static void test_refusals(void **state)
{
	static const struct {
		const char *text, *msg;
	} bad[] = {
		{ "", "a.cashet: not a cashet archive" },
		{ "hello\n", "a.cashet: not a cashet archive" },
		{ "cashet-archive 1", "a.cashet: not a cashet archive" },
		{ "cashet-archive 1 \npack 0\n", "a.cashet: not a cashet archive" },
		{ "cashet-archive 2\npack 0\n",
		  "a.cashet: archive format 2 is not supported (this cashet reads format 1)" },
		{ "cashet-archive 1\n", "a.cashet: the archive is truncated (no pack)" },
		{ "cashet-archive 1\nrun " H1 "\n", "a.cashet: the archive is truncated (no pack)" },
		{ "cashet-archive 1\nrun " H1, "a.cashet: the archive is truncated or damaged (line 2)" },
		{ "cashet-archive 1\nrun " H1 "0\npack 0\n", "a.cashet: line 2 of the manifest is damaged" },
		{ "cashet-archive 1\nRUN " H1 "\npack 0\n", "a.cashet: line 2 of the manifest is damaged" },
		{ "cashet-archive 1\npack \n", "a.cashet: line 2 of the manifest is damaged" },
		{ "cashet-archive 1\npack -1\n", "a.cashet: line 2 of the manifest is damaged" },
		{ "cashet-archive 1\npack 10\n12345", "a.cashet: the archive is truncated (5 of 10 pack bytes)" },
		{ "cashet-archive 1\npack 1\n12", "a.cashet: unexpected data after the pack" },
		{ "cashet-archive 1\nrun " H2 "\nrun " H2 "\npack 0\n", "a.cashet: run fedcba987654 is listed twice" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		struct strvec ids = STRVEC_INIT;
		uint64_t off, size;
		assert_int_equal(parse_all(bad[i].text, strlen(bad[i].text), &ids, &off, &size), -1);
		assert_string_equal(err_msg(), bad[i].msg);
		assert_int_equal(ids.n, 0);
	}
}

static void test_line_length_limit(void **state)
{
	struct strbuf a = STRBUF_INIT;
	struct strvec ids = STRVEC_INIT;
	uint64_t off, size;
	/* 200 bytes with the newline is the longest line allowed */
	sb_adds(&a, "cashet-archive 1\npack ");
	while (a.len < 17 + 199)
		sb_addc(&a, '0');
	sb_addc(&a, '\n');
	assert_int_equal(parse_all(a.buf, a.len, &ids, &off, &size), 0);
	assert_int_equal(size, 0);
	sb_setlen(&a, a.len - 1);
	sb_adds(&a, "0\n");
	assert_int_equal(parse_all(a.buf, a.len, &ids, &off, &size), -1);
	assert_string_equal(err_msg(), "a.cashet: the archive is truncated or damaged (line 2)");
	sb_release(&a);
}

/* The reader hands over what it has read so far: a prefix that ends
 * inside the manifest asks for more and leaves ids alone, a prefix that
 * holds the whole manifest answers as the whole file would. */
static void test_prefixes(void **state)
{
	static const char a[] = "cashet-archive 1\nrun " H1 "\npack 3\nabc";
	struct strvec ids = STRVEC_INIT;
	uint64_t off, size;
	size_t head = sizeof(a) - 1 - 3;
	for (size_t len = 0; len < head; len++) {
		assert_int_equal(manifest_parse(a, len, sizeof(a) - 1, "a", &ids, &off, &size), 1);
		assert_int_equal(ids.n, 0);
	}
	for (size_t len = head; len <= sizeof(a) - 1; len++) {
		assert_int_equal(manifest_parse(a, len, sizeof(a) - 1, "a", &ids, &off, &size), 0);
		assert_int_equal(off, head);
		assert_int_equal(size, 3);
		assert_int_equal(ids.n, 1);
		sv_release(&ids);
	}
	/* a line longer than allowed is refused without reading to its end */
	struct strbuf big = STRBUF_INIT;
	sb_adds(&big, "cashet-archive 1\nrun ");
	while (big.len < 300)
		sb_addc(&big, 'a');
	assert_int_equal(manifest_parse(big.buf, big.len, 1ULL << 40, "a", &ids, &off, &size), -1);
	assert_string_equal(err_msg(), "a: the archive is truncated or damaged (line 2)");
	sb_release(&big);
}

/* A pack size near 2^64 wrapped offset + size around, so an archive far
 * too short for its pack was called "unexpected data after the pack"; a
 * size past 2^64 was taken as 2^64 - 1. */
static void test_huge_pack_size(void **state)
{
	struct strvec ids = STRVEC_INIT;
	uint64_t off, size;
	static const char max[] = "cashet-archive 1\npack 18446744073709551615\nXY";
	static const char wrap[] = "cashet-archive 1\npack 18446744073709551600\nXY";
	static const char over[] = "cashet-archive 1\npack 18446744073709551616\nXY";
	assert_int_equal(parse_all(max, sizeof(max) - 1, &ids, &off, &size), -1);
	assert_string_equal(err_msg(), "a.cashet: the archive is truncated (2 of 18446744073709551615 pack bytes)");
	assert_int_equal(parse_all(wrap, sizeof(wrap) - 1, &ids, &off, &size), -1);
	assert_string_equal(err_msg(), "a.cashet: the archive is truncated (2 of 18446744073709551600 pack bytes)");
	assert_int_equal(parse_all(over, sizeof(over) - 1, &ids, &off, &size), -1);
	assert_string_equal(err_msg(), "a.cashet: line 2 of the manifest is damaged");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parses_export_head), cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_line_length_limit),  cmocka_unit_test(test_prefixes),
		cmocka_unit_test(test_huge_pack_size),
	};
	return cmocka_run_group_tests_name("manifest", tests, NULL, NULL);
}
