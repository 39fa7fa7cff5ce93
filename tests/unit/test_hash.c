/* Unit tests for the canonical encoding the fingerprint is built from, the
 * meta text round trip, and the small parsers in util and json. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/gitmod.h"
#include "util/hash.h"
#include "util/json.h"
#include "util/util.h"

static void fields_digest(const char *const *f, size_t n, struct digest *d)
{
	struct hasher h;
	hasher_init(&h);
	hasher_u64(&h, n);
	for (size_t i = 0; i < n; i++)
		hasher_str(&h, f[i]);
	hasher_final(&h, d);
}

static void test_length_prefix_no_collision(void **state)
{
	const char *a[] = { "S" }, *b[] = { "", "" }, *c[] = { "ab", "c" }, *d[] = { "a", "bc" };
	struct digest da, db, dc, dd;
	fields_digest(a, 1, &da);
	fields_digest(b, 2, &db);
	fields_digest(c, 2, &dc);
	fields_digest(d, 2, &dd);
	assert_false(digest_eq(&da, &db));
	assert_false(digest_eq(&dc, &dd));
}

static void test_field_is_not_raw(void **state)
{
	struct hasher h;
	struct digest x, y;
	hasher_init(&h);
	hasher_str(&h, "ab");
	hasher_final(&h, &x);
	digest_of("ab", 2, &y);
	assert_false(digest_eq(&x, &y));
}

static void test_stable_known_value(void **state)
{
	/* XXH3-128 of "" is fixed by the spec; if this changes, every store breaks. */
	struct digest d;
	char hx[DIGEST_HEX];
	digest_of("", 0, &d);
	digest_hex(&d, hx);
	assert_string_equal(hx, "99aa06d3014798d86001c324468d497f");
}

static void test_hex_roundtrip(void **state)
{
	struct digest d, e;
	char hx[DIGEST_HEX];
	digest_of("cashet", 6, &d);
	digest_hex(&d, hx);
	assert_int_equal(strlen(hx), 32);
	assert_int_equal(digest_parse(hx, &e), 0);
	assert_true(digest_eq(&d, &e));
	assert_int_equal(digest_parse("zz", &e), -1);
	assert_int_equal(digest_parse("99aa06d3014798d86001c324468d497f00", &e), -1);
}

static void test_meta_roundtrip(void **state)
{
	struct run_record r = { 0 }, back = { 0 };
	struct strbuf text = STRBUF_INIT;
	struct digest d;
	digest_of("x", 1, &d);
	sv_push(&r.argv, "sh");
	sv_push(&r.argv, "-c");
	sv_push(&r.argv, "echo 'a\\b'\nprintf \"\\t\"");
	sv_push(&r.argv, "");
	r.cwd = xstrdup("sub dir");
	r.name = xstrdup("train\x01");
	r.ok = 1;
	r.exit_code = 0;
	r.created_ms = 1700000000123;
	r.duration_ms = 42;
	r.expires_ms = 1700000100000;
	r.fp = d;
	sv_push(&r.tags, "lr=0.1");
	sv_push(&r.tags, "flag");
	run_add_part(&r, "file", "data/a b.csv", &d);
	struct run_file *f = run_add_file(&r, FILE_OUTPUT, "files/out\\x.txt");
	f->size = 7;
	f->xxh = d;
	meta_encode(&r, &text);
	assert_null(strchr(strchr(text.buf, '\n') + 1, '\t'));
	assert_int_equal(meta_decode(text.buf, &back), 0);
	assert_int_equal(back.argv.n, 4);
	assert_string_equal(back.argv.v[2], r.argv.v[2]);
	assert_string_equal(back.argv.v[3], "");
	assert_string_equal(back.cwd, "sub dir");
	assert_string_equal(back.name, "train\x01");
	assert_int_equal(back.created_ms, r.created_ms);
	assert_int_equal(back.expires_ms, r.expires_ms);
	assert_int_equal(back.tags.n, 2);
	assert_string_equal(back.tags.v[1], "flag");
	assert_int_equal(back.nparts, 1);
	assert_string_equal(back.parts[0].name, "data/a b.csv");
	assert_int_equal(back.nfiles, 1);
	assert_string_equal(back.files[0].path, "files/out\\x.txt");
	assert_int_equal(back.files[0].size, 7);
	assert_true(digest_eq(&back.fp, &d));
	run_record_free(&r);
	run_record_free(&back);
	sb_release(&text);
}

static void test_meta_rejects_garbage(void **state)
{
	struct run_record r = { 0 };
	assert_int_equal(meta_decode("hello world\n", &r), -1);
	run_record_free(&r);
	assert_int_equal(meta_decode("nospace\n", &r), -1);
	run_record_free(&r);
}

static void test_durations(void **state)
{
	int64_t ms;
	assert_int_equal(parse_duration_ms("90", &ms), 0);
	assert_int_equal(ms, 90000);
	assert_int_equal(parse_duration_ms("250ms", &ms), 0);
	assert_int_equal(ms, 250);
	assert_int_equal(parse_duration_ms("1.5s", &ms), 0);
	assert_int_equal(ms, 1500);
	assert_int_equal(parse_duration_ms("12h", &ms), 0);
	assert_int_equal(ms, 12 * 3600000LL);
	assert_int_equal(parse_duration_ms("7d", &ms), 0);
	assert_int_equal(ms, 7 * 86400000LL);
	assert_int_equal(parse_duration_ms("7x", &ms), -1);
	assert_int_equal(parse_duration_ms("", &ms), -1);
	assert_int_equal(parse_duration_ms("-1s", &ms), -1);
}

static void test_sizes(void **state)
{
	uint64_t n;
	assert_int_equal(parse_size("500", &n), 0);
	assert_int_equal(n, 500);
	assert_int_equal(parse_size("500M", &n), 0);
	assert_int_equal(n, 500ULL << 20);
	assert_int_equal(parse_size("2G", &n), 0);
	assert_int_equal(n, 2ULL << 30);
	assert_int_equal(parse_size("2GiB", &n), 0);
	assert_int_equal(n, 2ULL << 30);
	assert_int_equal(parse_size("1.5k", &n), 0);
	assert_int_equal(n, 1536);
	assert_int_equal(parse_size("5Q", &n), -1);
	assert_int_equal(parse_size("M", &n), -1);
}

static void test_json_escape(void **state)
{
	struct strbuf sb = STRBUF_INIT;
	json_str(&sb, "a\"b\\c\n\x01\xc3\xa9\xff");
	assert_string_equal(sb.buf, "\"a\\\"b\\\\c\\n\\u0001\xc3\xa9\\ufffd\"");
	sb_release(&sb);
}

static void test_json_null_and_array(void **state)
{
	struct strbuf sb = STRBUF_INIT;
	struct strvec v = STRVEC_INIT;
	json_str_or_null(&sb, NULL);
	json_str_or_null(&sb, "x");
	json_str_array(&sb, &v);
	sv_push(&v, "a");
	sv_push(&v, "b\"");
	json_str_array(&sb, &v);
	assert_string_equal(sb.buf, "null\"x\"[][\"a\",\"b\\\"\"]");
	sv_release(&v);
	sb_release(&sb);
}

static void test_strbuf(void **state)
{
	struct strbuf sb = STRBUF_INIT;
	assert_string_equal(sb_str(&sb), "");
	for (int i = 0; i < 1000; i++)
		sb_addf(&sb, "%d,", i);
	assert_int_equal(sb.len, strlen(sb.buf));
	sb_setlen(&sb, 2);
	assert_string_equal(sb.buf, "0,");
	char *p = sb_detach(&sb);
	assert_string_equal(p, "0,");
	assert_null(sb.buf);
	free(p);
}

/* A buffer grown but never written to is the empty string, not whatever
 * the allocator left there (meta_decode() reads empty values this way). */
static void test_strbuf_grown_empty(void **state)
{
	struct strbuf sb = STRBUF_INIT;
	sb_grow(&sb, 100);
	assert_int_equal(sb.len, 0);
	assert_string_equal(sb.buf, "");
	char *p = sb_detach(&sb);
	assert_string_equal(p, "");
	free(p);
}

static void *fail_in_thread(void *arg)
{
	err_set("failed in a thread: %s", (const char *)arg);
	return NULL;
}

/* The last error is per thread, and a thread's message goes when the
 * thread does (the sanitizer build checks for leaks at exit). */
static void test_err_per_thread(void **state)
{
	pthread_t t;
	err_set("failed in main");
	assert_int_equal(pthread_create(&t, NULL, fail_in_thread, "x"), 0);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_string_equal(err_msg(), "failed in main");
	err_clear();
	assert_string_equal(err_msg(), "unknown error");
}

/* A file's digest is its bytes' digest whichever way it is read: whole
 * (under 1 MiB), mapped (from 1 MiB), streamed (a pipe), or after a stat
 * that no longer tells its size. */
static void test_digest_file_sizes(void **state)
{
	static const size_t sizes[] = { 0, 1, 4095, 4096, (1 << 20) - 1, 1 << 20, (3 << 20) + 7 };
	char dir[] = "/tmp/cashet-hash-XXXXXX", path[64];
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/f", dir);
	size_t max = sizes[sizeof(sizes) / sizeof(*sizes) - 1];
	unsigned char *bytes = xmalloc(max);
	for (size_t i = 0; i < max; i++)
		bytes[i] = (unsigned char)(i * 2654435761u >> 13);
	for (size_t k = 0; k < sizeof(sizes) / sizeof(*sizes); k++) {
		struct digest want, got;
		uint64_t size = 99;
		assert_int_equal(write_file_atomic(path, bytes, sizes[k], 0644), 0);
		digest_of(bytes, sizes[k], &want);
		assert_int_equal(digest_file(path, &got, &size), 0);
		assert_true(digest_eq(&want, &got));
		assert_int_equal(size, sizes[k]);
	}
	/* a stat taken before the file grew, or shrank: its bytes all the same */
	struct stat small, big;
	struct digest want, got;
	assert_int_equal(write_file_atomic(path, bytes, 10, 0644), 0);
	assert_int_equal(stat(path, &small), 0);
	assert_int_equal(write_file_atomic(path, bytes, 4096, 0644), 0);
	assert_int_equal(stat(path, &big), 0);
	assert_int_equal(write_file_atomic(path, bytes, max, 0644), 0);
	digest_of(bytes, max, &want);
	assert_int_equal(digest_file_stat(path, &small, &got), 0);
	assert_true(digest_eq(&want, &got));
	assert_int_equal(write_file_atomic(path, bytes, 7, 0644), 0);
	digest_of(bytes, 7, &want);
	assert_int_equal(digest_file_stat(path, &big, &got), 0);
	assert_true(digest_eq(&want, &got));
	int fds[2];
	assert_int_equal(pipe(fds), 0);
	assert_int_equal(write(fds[1], bytes, 4096), 4096);
	close(fds[1]);
	digest_of(bytes, 4096, &want);
	assert_int_equal(digest_fd(fds[0], &got, NULL), 0);
	close(fds[0]);
	assert_true(digest_eq(&want, &got));
	free(bytes);
	unlink(path);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_length_prefix_no_collision),
		cmocka_unit_test(test_field_is_not_raw),
		cmocka_unit_test(test_stable_known_value),
		cmocka_unit_test(test_hex_roundtrip),
		cmocka_unit_test(test_meta_roundtrip),
		cmocka_unit_test(test_meta_rejects_garbage),
		cmocka_unit_test(test_durations),
		cmocka_unit_test(test_sizes),
		cmocka_unit_test(test_json_escape),
		cmocka_unit_test(test_json_null_and_array),
		cmocka_unit_test(test_strbuf),
		cmocka_unit_test(test_strbuf_grown_empty),
		cmocka_unit_test(test_err_per_thread),
		cmocka_unit_test(test_digest_file_sizes),
	};
	return cmocka_run_group_tests_name("hash", tests, NULL, NULL);
}
