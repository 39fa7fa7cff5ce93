/* Unit tests for spawn_command (src/exec/spawn.c) that need no store: how much
 * the parent itself costs while a command runs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

#include "exec/spawn.h"
#include "util/util.h"

static int64_t self_cpu_ms(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (int64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000 +
	       (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1000;
}

/* Without a tick callback the loop once stopped advancing its 1 s tick: past
 * the first second every poll() timed out at once and the parent spun. */
static void test_no_busy_wait_without_tick(void **state)
{
	char dir[] = "/tmp/cashet-test-spawn.XXXXXX";
	assert_non_null(mkdtemp(dir));
	int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
	struct spawn_spec spec = {
		.argv = (char *[]){ "sleep", "1.6", NULL }, .stdin_fd = null, .capdir = dir, .out_fd = -1, .err_fd = -1
	};
	struct spawn_result o;
	int64_t cpu = self_cpu_ms();
	assert_int_equal(spawn_command(&spec, &o), 0);
	cpu = self_cpu_ms() - cpu;
	assert_int_equal(o.status, 0);
	spawn_result_free(&o);
	close(null);
	rmdir(dir);
	if (cpu > 100)
		fail_msg("the parent used %lld ms of CPU while the command slept 1.6 s", (long long)cpu);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_no_busy_wait_without_tick),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
