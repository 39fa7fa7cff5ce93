/* Unit tests for tree (store/tree.c): git's tree order and the paths git
 * refuses, the number of trees a set of paths makes (a run's pack
 * announces it), and trees written with the ids git gives them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <nettle/sha1.h>
#include <stdio.h>
#include <string.h>

#include "store/tree.h"
#include "util/util.h"

/* e69de29b...: the empty blob */
static const unsigned char empty_blob[TREE_OID_RAW] = { 0xe6, 0x9d, 0xe2, 0x9b, 0xb2, 0xd1, 0xd6, 0x43, 0x4b, 0x8b,
							0x29, 0xae, 0x77, 0x5a, 0xd8, 0xc2, 0xe4, 0x8c, 0x53, 0x91 };

static void hex(const unsigned char oid[TREE_OID_RAW], char out[41])
{
	for (int i = 0; i < TREE_OID_RAW; i++)
		snprintf(out + 2 * i, 3, "%02x", oid[i]);
}

/* A writer that only hashes, as git would name each tree, and counts. */
static int put_hash(void *ctx, const void *data, size_t len, unsigned char oid[TREE_OID_RAW])
{
	struct sha1_ctx c;
	char hdr[32];
	int n = snprintf(hdr, sizeof(hdr), "tree %zu", len) + 1;
	sha1_init(&c);
	sha1_update(&c, (size_t)n, (const uint8_t *)hdr);
	sha1_update(&c, len, data);
	sha1_digest(&c, TREE_OID_RAW, oid);
	(*(int *)ctx)++;
	return 0;
}

static void test_order_and_refusals(void **state)
{
	(void)state;
	struct tree_entry e[] = { { "z", 0100755, { 0 } }, { "a/c", 0100644, { 0 } }, { "a-b", 0100644, { 0 } } };
	assert_int_equal(tree_sort_check(e, 3), 0);
	/* a directory sorts as its name and '/': "a-b" before "a/" */
	assert_string_equal(e[0].path, "a-b");
	assert_string_equal(e[1].path, "a/c");
	assert_string_equal(e[2].path, "z");
	assert_non_null(tree_find(e, 3, "a/c"));
	assert_null(tree_find(e, 3, "a"));
	static const char *const bad[][2] = { { "x/.git/y", "a" }, { "x/../y", "a" }, { "x//y", "a" }, { "./x", "a" },
					      { "a", "a" },        { "a", "a/b" },    { ".GIT", "a" } };
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		struct tree_entry b[] = { { bad[i][0], 0100644, { 0 } }, { bad[i][1], 0100644, { 0 } } };
		assert_int_equal(tree_sort_check(b, 2), 1);
	}
}

static void test_count(void **state)
{
	(void)state;
	struct tree_entry one[] = { { "meta", 0100644, { 0 } } };
	assert_int_equal(tree_count(one, 1), 1);
	/* /, a, a/b, a/bc, a/bc/d, e */
	struct tree_entry e[] = { { "a/b/x", 0100644, { 0 } },    { "a/b/y", 0100644, { 0 } },
				  { "a/bc/d/z", 0100644, { 0 } }, { "a/q", 0100644, { 0 } },
				  { "e/f", 0100644, { 0 } },      { "meta", 0100644, { 0 } } };
	assert_int_equal(tree_sort_check(e, 6), 0);
	assert_int_equal(tree_count(e, 6), 6);
}

static void test_write_ids(void **state)
{
	(void)state;
	struct tree_entry e[] = { { "z", 0100755, { 0 } }, { "a/c", 0100644, { 0 } }, { "a-b", 0100644, { 0 } } };
	for (size_t i = 0; i < 3; i++)
		memcpy(e[i].oid, empty_blob, TREE_OID_RAW);
	assert_int_equal(tree_sort_check(e, 3), 0);
	unsigned char root[TREE_OID_RAW];
	char h[41];
	int puts = 0;
	assert_int_equal(tree_write(e, 3, put_hash, &puts, root), 0);
	assert_int_equal(puts, (int)tree_count(e, 3));
	hex(root, h);
	/* as `git mktree` names it: a-b, a/ (holding c), z (executable) */
	assert_string_equal(h, "9f4a1f70370baf276b3b579cf9f33685581d397b");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_order_and_refusals),
		cmocka_unit_test(test_count),
		cmocka_unit_test(test_write_ids),
	};
	return cmocka_run_group_tests_name("tree", tests, NULL, NULL);
}
