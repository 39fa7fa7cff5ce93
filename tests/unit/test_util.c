/* Unit tests for util: the string buffer and vector every module builds on,
 * the duration and size parsers behind --ttl, --timeout and --max-size,
 * and the file helpers (paths, atomic writes, mkdir -p, rm -rf). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

/* --- durations and sizes ------------------------------------------------ */

static void test_duration_units(void **state)
{
	static const struct {
		const char *s;
		int64_t ms;
	} ok[] = {
		{ "0", 0 },
		{ "90", 90000 },
		{ "250ms", 250 },
		{ "1.5s", 1500 },
		{ "0.0004s", 0 },
		{ "0.0005s", 1 },
		{ "10m", 600000 },
		{ "12h", 43200000 },
		{ "7d", 604800000 },
		{ "2w", 1209600000 },
		{ "36525d", 3155760000000 },
	};
	for (size_t i = 0; i < sizeof(ok) / sizeof(*ok); i++) {
		int64_t ms = -7;
		assert_int_equal(parse_duration_ms(ok[i].s, &ms), 0);
		assert_int_equal(ms, ok[i].ms);
	}
}

static void test_duration_syntax_errors(void **state)
{
	static const char *const bad[] = { "", "s", "7x", "7 d", "7dd", "-1s", "1e", "d7", "7D" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		int64_t ms = -7;
		struct strbuf want = STRBUF_INIT;
		assert_int_equal(parse_duration_ms(bad[i], &ms), -1);
		assert_int_equal(ms, -7);
		sb_addf(&want, "invalid duration '%s' (expected e.g. 30s, 10m, 12h, 7d)", bad[i]);
		assert_string_equal(err_msg(), want.buf);
		sb_release(&want);
	}
}

static void test_size_units(void **state)
{
	static const struct {
		const char *s;
		uint64_t n;
	} ok[] = {
		{ "0", 0 },
		{ "500", 500 },
		{ "1.5k", 1536 },
		{ "500M", 500ULL << 20 },
		{ "500m", 500ULL << 20 },
		{ "2G", 2ULL << 30 },
		{ "2GB", 2ULL << 30 },
		{ "2gib", 2ULL << 30 },
		{ "1T", 1ULL << 40 },
		{ "0.5K", 512 },
	};
	for (size_t i = 0; i < sizeof(ok) / sizeof(*ok); i++) {
		uint64_t n = 7;
		assert_int_equal(parse_size(ok[i].s, &n), 0);
		assert_int_equal(n, ok[i].n);
	}
}

static void test_size_syntax_errors(void **state)
{
	static const char *const bad[] = { "", "M", "5Q", "5MM", "5MiBs", "5 M", "-1", "5Bi", "5P" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		uint64_t n = 7;
		struct strbuf want = STRBUF_INIT;
		assert_int_equal(parse_size(bad[i], &n), -1);
		assert_int_equal(n, 7);
		sb_addf(&want, "invalid size '%s' (expected e.g. 500M, 2G)", bad[i]);
		assert_string_equal(err_msg(), want.buf);
		sb_release(&want);
	}
}

/* strtod reads "nan", "inf" and "1e300" as numbers, and the conversion of
 * such a double to an integer is undefined: "--ttl inf" or "older_than=nan"
 * gave arbitrary values, "--ttl 106751991167d" a negative one. Durations
 * are capped at 100 years, so that a timestamp plus one never overflows;
 * sizes at what 64 bits hold. */
static void test_duration_out_of_range(void **state)
{
	static const char *const nonnum[] = { "nan", "NaN", "nans", "inf", "-inf", "infinity", "infd" };
	static const char *const huge[] = { "1e300", "1e300d", "106751991167d", "36526d", "5219w", "3155760000001ms" };
	int64_t ms = -7;
	for (size_t i = 0; i < sizeof(nonnum) / sizeof(*nonnum); i++) {
		struct strbuf want = STRBUF_INIT;
		assert_int_equal(parse_duration_ms(nonnum[i], &ms), -1);
		sb_addf(&want, "invalid duration '%s' (expected e.g. 30s, 10m, 12h, 7d)", nonnum[i]);
		assert_string_equal(err_msg(), want.buf);
		sb_release(&want);
	}
	for (size_t i = 0; i < sizeof(huge) / sizeof(*huge); i++) {
		struct strbuf want = STRBUF_INIT;
		assert_int_equal(parse_duration_ms(huge[i], &ms), -1);
		sb_addf(&want, "duration '%s' is too long (at most 100 years, 36525d)", huge[i]);
		assert_string_equal(err_msg(), want.buf);
		sb_release(&want);
	}
	assert_int_equal(ms, -7);
	assert_int_equal(parse_duration_ms("3155760000000ms", &ms), 0);
	assert_int_equal(ms, 3155760000000);
}

static void test_size_out_of_range(void **state)
{
	static const char *const nonnum[] = { "nan", "inf", "infK", "-nan" };
	static const char *const huge[] = { "1e300", "16777216T", "18446744073709551616", "1e20" };
	uint64_t n = 7;
	for (size_t i = 0; i < sizeof(nonnum) / sizeof(*nonnum); i++) {
		struct strbuf want = STRBUF_INIT;
		assert_int_equal(parse_size(nonnum[i], &n), -1);
		sb_addf(&want, "invalid size '%s' (expected e.g. 500M, 2G)", nonnum[i]);
		assert_string_equal(err_msg(), want.buf);
		sb_release(&want);
	}
	for (size_t i = 0; i < sizeof(huge) / sizeof(*huge); i++) {
		struct strbuf want = STRBUF_INIT;
		assert_int_equal(parse_size(huge[i], &n), -1);
		sb_addf(&want, "size '%s' is too large (at most 16 EiB)", huge[i]);
		assert_string_equal(err_msg(), want.buf);
		sb_release(&want);
	}
	assert_int_equal(n, 7);
	assert_int_equal(parse_size("16777215T", &n), 0);
	assert_int_equal(n, 16777215ULL << 40);
}

/* --- strvec ------------------------------------------------------------- */

static void test_strvec(void **state)
{
	struct strvec sv = STRVEC_INIT;
	char name[16];
	for (int i = 99; i >= 0; i--) {
		snprintf(name, sizeof(name), "n%02d", i);
		sv_push(&sv, name);
		/* always NULL-terminated, for execv */
		assert_null(sv.v[sv.n]);
	}
	sv_push_nocopy(&sv, xstrdup("a"));
	assert_int_equal(sv.n, 101);
	assert_string_equal(sv.v[0], "n99");
	sv_sort(&sv);
	assert_string_equal(sv.v[0], "a");
	assert_string_equal(sv.v[1], "n00");
	assert_string_equal(sv.v[100], "n99");
	assert_null(sv.v[101]);
	assert_true(sv_sorted_has(&sv, "a"));
	assert_true(sv_sorted_has(&sv, "n57"));
	assert_true(sv_sorted_has(&sv, "n99"));
	assert_false(sv_sorted_has(&sv, "n100"));
	assert_false(sv_sorted_has(&sv, ""));
	assert_false(sv_sorted_has(&sv, "z"));
	sv_release(&sv);
	assert_null(sv.v);
	assert_int_equal(sv.n, 0);
	assert_false(sv_sorted_has(&sv, "a"));
	sv_sort(&sv);
}

/* --- paths and files ---------------------------------------------------- */

static void test_path_absolute(void **state)
{
	static const struct {
		const char *cwd, *path, *want;
	} cases[] = {
		{ "/a/b", "c", "/a/b/c" },
		{ "/a/b", "./c/", "/a/b/c" },
		{ "/a/b", "../c", "/a/c" },
		{ "/a/b", "../../../c", "/c" },
		{ "/a/b", "..", "/a" },
		{ "/a/b", ".", "/a/b" },
		{ "/a/b", "/x//y/./z/..", "/x/y" },
		{ "/", "..", "/" },
		{ "/", "", "/" },
		{ "/a//b/", "c//d", "/a/b/c/d" },
		{ "/a", "...", "/a/..." },
		{ "/a", "b/.hidden/../c", "/a/b/c" },
		{ "/", "/x/y/", "/x/y" },
		{ "/", "/x/.", "/x" },
		{ "/", "/x/..", "/" },
		{ "/", "/x/.y/..z", "/x/.y/..z" },
		{ "/", "/", "/" },
		{ "/", "//", "/" },
	};
	struct strbuf out = STRBUF_INIT;
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		sb_adds(&out, "junk");
		path_absolute(cases[i].cwd, cases[i].path, &out);
		assert_string_equal(out.buf, cases[i].want);
		/* normal: what it gives, and only that */
		assert_int_equal(path_is_normal(cases[i].path), !strcmp(cases[i].path, cases[i].want));
		assert_true(path_is_normal(out.buf));
	}
	sb_release(&out);
}

/* A fresh directory for the file tests, removed by the teardown. */
static int tmp_setup(void **state)
{
	char *dir = xstrdup("/tmp/cashet-test-util.XXXXXX");
	if (!mkdtemp(dir)) {
		free(dir);
		return -1;
	}
	*state = dir;
	return 0;
}

static int tmp_teardown(void **state)
{
	rm_rf(*state);
	free(*state);
	return 0;
}

static void test_write_file_atomic(void **state)
{
	const char *dir = *state;
	struct strbuf path = STRBUF_INIT, back = STRBUF_INIT;
	struct stat sb;
	sb_addf(&path, "%s/f.bin", dir);
	assert_int_equal(write_file_atomic(path.buf, "a\0b", 3, 0751), 0);
	assert_int_equal(read_file_sb(path.buf, &back), 0);
	assert_int_equal(back.len, 3);
	assert_memory_equal(back.buf, "a\0b", 3);
	assert_int_equal(stat(path.buf, &sb), 0);
	assert_int_equal(sb.st_mode & 07777, 0751);
	/* replaced whole, never appended to; no temporary file left behind */
	assert_int_equal(write_file_atomic(path.buf, "xy", 2, 0644), 0);
	sb_reset(&back);
	assert_int_equal(read_file_sb(path.buf, &back), 0);
	assert_string_equal(back.buf, "xy");
	DIR *d = opendir(dir);
	struct dirent *e;
	int entries = 0;
	while ((e = readdir(d)))
		entries += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
	closedir(d);
	assert_int_equal(entries, 1);
	/* a missing directory is an error with the temporary file's name */
	sb_reset(&path);
	sb_addf(&path, "%s/no/such/f", dir);
	assert_int_equal(write_file_atomic(path.buf, "x", 1, 0644), -1);
	assert_non_null(strstr(err_msg(), "cannot create "));
	assert_non_null(strstr(err_msg(), "No such file or directory"));
	assert_int_equal(err_code(), E_NOTFOUND);
	sb_release(&path);
	sb_release(&back);
}

/* diropen: files of two directories in turn, a link not followed, a
 * missing directory and file, a directory replaced between passes. */
static void test_env_delay_ms(void **state)
{
	(void)state;
	static const struct {
		const char *v; /* NULL: unset */
		int64_t want;
	} cases[] = { { NULL, 7 },   { "", 7 },   { "0", 0 },    { "250", 250 },
		      { "off", -1 }, { "-5", 7 }, { "12ms", 7 }, { "x", 7 } };
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (cases[i].v)
			setenv("CASHET_TEST_DELAY", cases[i].v, 1);
		else
			unsetenv("CASHET_TEST_DELAY");
		assert_int_equal(env_delay_ms("CASHET_TEST_DELAY", 7), cases[i].want);
	}
	unsetenv("CASHET_TEST_DELAY");
}

static void test_diropen(void **state)
{
	const char *dir = *state;
	struct strbuf a = STRBUF_INIT, b = STRBUF_INIT, p = STRBUF_INIT, data = STRBUF_INIT;
	struct diropen d = { 0 };
	struct stat sb;
	sb_addf(&a, "%s/a", dir);
	sb_addf(&b, "%s/b", dir);
	assert_int_equal(mkdirs(a.buf, 0755), 0);
	assert_int_equal(mkdirs(b.buf, 0755), 0);
	const char *names[] = { "a/1", "a/2", "b/1", "a/1" };
	for (int i = 0; i < 3; i++) {
		sb_reset(&p);
		sb_addf(&p, "%s/%s", dir, names[i]);
		assert_int_equal(write_file_atomic(p.buf, names[i], 3, 0644), 0);
	}
	for (int i = 0; i < 4; i++) {
		sb_reset(&p);
		sb_addf(&p, "%s/%s", dir, names[i]);
		int fd = diropen_open(&d, p.buf, O_RDONLY | O_CLOEXEC);
		assert_true(fd >= 0);
		sb_reset(&data);
		assert_int_equal(read_fd_sb(fd, p.buf, &data), 0);
		close(fd);
		assert_string_equal(data.buf, names[i]);
	}
	sb_reset(&p);
	sb_addf(&p, "%s/a/link", dir);
	assert_int_equal(symlink("1", p.buf), 0);
	assert_int_equal(diropen_lstat(&d, p.buf, &sb), 0);
	assert_true(S_ISLNK(sb.st_mode));
	sb_reset(&p);
	sb_addf(&p, "%s/a/none", dir);
	assert_int_equal(diropen_lstat(&d, p.buf, &sb), -1);
	assert_int_equal(errno, ENOENT);
	sb_reset(&p);
	sb_addf(&p, "%s/c/none", dir);
	assert_int_equal(diropen_open(&d, p.buf, O_RDONLY | O_CLOEXEC), -1);
	assert_int_equal(errno, ENOENT);
	diropen_close(&d);
	/* a new pass sees a directory put in the place of another */
	sb_reset(&p);
	sb_addf(&p, "%s/a/1", dir);
	assert_int_equal(diropen_lstat(&d, p.buf, &sb), 0);
	rm_rf(a.buf);
	assert_int_equal(rename(b.buf, a.buf), 0);
	diropen_close(&d);
	int fd = diropen_open(&d, p.buf, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	sb_reset(&data);
	assert_int_equal(read_fd_sb(fd, p.buf, &data), 0);
	close(fd);
	assert_string_equal(data.buf, "b/1");
	diropen_close(&d);
	sb_release(&a);
	sb_release(&b);
	sb_release(&p);
	sb_release(&data);
}

static void test_mkdirs_and_rm_rf(void **state)
{
	const char *dir = *state;
	struct strbuf p = STRBUF_INIT, q = STRBUF_INIT;
	struct stat sb;
	sb_addf(&p, "%s/a/b/c/", dir);
	assert_int_equal(mkdirs(p.buf, 0755), 0);
	assert_int_equal(stat(p.buf, &sb), 0);
	assert_true(S_ISDIR(sb.st_mode));
	/* existing directories are fine */
	assert_int_equal(mkdirs(p.buf, 0755), 0);
	sb_addf(&q, "%s/a/b/file", dir);
	assert_int_equal(write_file_atomic(q.buf, "x", 1, 0644), 0);
	/* a file in the way is an error naming it */
	sb_reset(&p);
	sb_addf(&p, "%s/a/b/file/d", dir);
	assert_int_equal(mkdirs(p.buf, 0755), -1);
	sb_reset(&p);
	sb_addf(&p, "cannot create directory %s/a/b/file/d: Not a directory", dir);
	assert_string_equal(err_msg(), p.buf);
	/* rm -rf takes files, directories and dangling symlinks, not their targets */
	sb_reset(&p);
	sb_addf(&p, "%s/keep", dir);
	assert_int_equal(write_file_atomic(p.buf, "k", 1, 0644), 0);
	sb_reset(&q);
	sb_addf(&q, "%s/a/link", dir);
	assert_int_equal(symlink(p.buf, q.buf), 0);
	sb_reset(&q);
	sb_addf(&q, "%s/a/dangling", dir);
	assert_int_equal(symlink("/nonexistent/x", q.buf), 0);
	sb_reset(&q);
	sb_addf(&q, "%s/a", dir);
	rm_rf(q.buf);
	assert_int_equal(lstat(q.buf, &sb), -1);
	assert_int_equal(stat(p.buf, &sb), 0);
	rm_rf(q.buf); /* already gone: nothing happens */
	sb_release(&p);
	sb_release(&q);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sb_empty_is_string),
		cmocka_unit_test(test_sb_grown_then_detached_is_empty),
		cmocka_unit_test(test_sb_add_and_format),
		cmocka_unit_test(test_sb_growth_keeps_content),
		cmocka_unit_test(test_duration_units),
		cmocka_unit_test(test_duration_syntax_errors),
		cmocka_unit_test(test_size_units),
		cmocka_unit_test(test_size_syntax_errors),
		cmocka_unit_test(test_duration_out_of_range),
		cmocka_unit_test(test_size_out_of_range),
		cmocka_unit_test(test_strvec),
		cmocka_unit_test(test_path_absolute),
		cmocka_unit_test_setup_teardown(test_write_file_atomic, tmp_setup, tmp_teardown),
		cmocka_unit_test_setup_teardown(test_mkdirs_and_rm_rf, tmp_setup, tmp_teardown),
		cmocka_unit_test(test_env_delay_ms),
		cmocka_unit_test_setup_teardown(test_diropen, tmp_setup, tmp_teardown),
	};
	return cmocka_run_group_tests_name("util", tests, NULL, NULL);
}
