/* Unit tests for fds: which inherited descriptors are part of a command's
 * key, and which pipes its command line names (a named pipe makes the run
 * uncacheable; an unnamed one, make's jobserver, must not). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "exec/fds.h"

static void test_named_forms(void **state)
{
	assert_true(fds_named((char *[]){ "cat", "/dev/fd/5", NULL }, 5));
	assert_true(fds_named((char *[]){ "cat", "/proc/self/fd/5", NULL }, 5));
	assert_true(fds_named((char *[]){ "cat", "/proc/thread-self/fd/5", NULL }, 5));
	assert_true(fds_named((char *[]){ "tool", "--in=/dev/fd/63", NULL }, 63));
	assert_true(fds_named((char *[]){ "sh", "-c", "cat <&5", NULL }, 5));
	assert_true(fds_named((char *[]){ "sh", "-c", "echo x >&7; cat /dev/fd/5", NULL }, 7));
}

static void test_not_named(void **state)
{
	/* another number, a prefix of one, or no number at all */
	assert_false(fds_named((char *[]){ "cat", "/dev/fd/55", NULL }, 5));
	assert_false(fds_named((char *[]){ "cat", "/dev/fd/5", NULL }, 55));
	assert_false(fds_named((char *[]){ "cat", "fd5", "5", NULL }, 5));
	assert_false(fds_named((char *[]){ "sh", "-c", "exec 5<&-", NULL }, 5));
	/* make's jobserver is named in MAKEFLAGS, not on the command line */
	assert_false(fds_named((char *[]){ "cc", "-c", "x.c", NULL }, 3));
	assert_false(fds_named((char *[]){ NULL }, 3));
}

/* A readable file is listed, a write-only one only when named, a
 * close-on-exec one (cashet's own) and a skipped one never; a pipe is
 * reported only when named. */
static void test_scan(void **state)
{
	char path[] = "/tmp/cashet-test-fds.XXXXXX";
	int file = mkstemp(path);
	assert_true(file >= 0);
	int wonly = open(path, O_WRONLY | O_APPEND);
	int own = open(path, O_RDONLY | O_CLOEXEC);
	int skipped = open(path, O_RDONLY);
	int p[2];
	assert_int_equal(pipe(p), 0);
	assert_true(wonly >= 0 && own >= 0 && skipped >= 0);

	struct fds f;
	struct strbuf named = STRBUF_INIT;
	sb_addf(&named, "/dev/fd/%d", p[0]);
	char *argv[] = { "cat", named.buf, NULL };
	fds_scan(argv, &skipped, 1, &f);
	int saw_file = 0, saw_other = 0;
	for (size_t i = 0; i < f.nfiles; i++) {
		if (f.files[i].fd == file) {
			saw_file = 1;
			assert_string_equal(f.files[i].path, path);
		} else if (f.files[i].fd == wonly || f.files[i].fd == own || f.files[i].fd == skipped)
			saw_other = 1;
	}
	assert_true(saw_file);
	assert_false(saw_other);
	assert_int_equal(f.piped, p[0]);
	fds_release(&f);

	char *plain[] = { "cat", NULL };
	fds_scan(plain, NULL, 0, &f);
	assert_int_equal(f.piped, -1);
	fds_release(&f);

	sb_release(&named);
	close(p[0]);
	close(p[1]);
	close(skipped);
	close(own);
	close(wonly);
	close(file);
	unlink(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_named_forms),
		cmocka_unit_test(test_not_named),
		cmocka_unit_test(test_scan),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
