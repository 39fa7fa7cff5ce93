/* trace-run: runs a command under the file-access tracer (src/trace) and
 * prints what it did, one line per path: six letters (R read, X exec,
 * S stat, L list, W write, D removed; "-" when not) and the path. Exits
 * with the command's status (128+N when killed by signal N), as the
 * benchmark (bench/trace-overhead) and people trying the tracer need.
 *
 *   trace-run [--quiet] -- CMD [ARG...]
 *
 * --quiet prints nothing but the reason when the trace is blind or
 * tracing is not possible. The preload library (cashet-trace.so) is the
 * one of the build tree; CASHET_TRACE_PRELOAD= (empty) runs without it. */
#include "trace/trace.h"
#include "util/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static int usage(void)
{
	fprintf(stderr, "usage: trace-run [--quiet] -- CMD [ARG...]\n");
	return 2;
}

int main(int argc, char **argv)
{
	int quiet = 0, i = 1;
	for (; i < argc && strcmp(argv[i], "--"); i++) {
		if (!strcmp(argv[i], "--quiet") || !strcmp(argv[i], "-q"))
			quiet = 1;
		else
			return usage();
	}
	if (i + 1 >= argc)
		return usage();
	char **cmd = argv + i + 1;

#ifdef CASHET_TEST_TRACE_PRELOAD
	/* this tree's preload library, unless told otherwise */
	setenv("CASHET_TRACE_PRELOAD", CASHET_TEST_TRACE_PRELOAD, 0);
#endif
	struct trace *t = NULL;
	if (trace_new(&t) < 0) {
		fprintf(stderr, "trace-run: %s\n", err_msg());
		return 125;
	}
	struct strvec env = STRVEC_INIT;
	trace_environ(t, NULL, &env);
	fflush(NULL);
	if (trace_listen(t) < 0) {
		fprintf(stderr, "trace-run: %s\n", err_msg());
		trace_free(t);
		return 125;
	}
	pid_t pid = fork();
	if (pid < 0) {
		fprintf(stderr, "trace-run: fork: %s\n", strerror(errno));
		trace_free(t);
		return 125;
	}
	if (pid == 0) {
		environ = env.v;
		trace_child_install(t);
		execvp(cmd[0], cmd);
		int e = errno;
		dprintf(STDERR_FILENO, "trace-run: %s: %s\n", cmd[0], strerror(e));
		_exit(e == ENOENT ? 127 : 126);
	}
	if (trace_parent_attach(t) < 0)
		fprintf(stderr, "trace-run: running untraced: %s\n", err_msg());
	int status = 0;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	trace_finish(t);
	if (!quiet) {
		static const char letters[] = "RXSLWDE";
		size_t n;
		const struct trace_event *ev = trace_events(t, &n);
		for (size_t k = 0; k < n; k++) {
			char flags[sizeof(letters)];
			for (int b = 0; b < 7; b++)
				flags[b] = ev[k].access & (1u << b) ? letters[b] : '-';
			flags[7] = '\0';
			printf("%s %s\n", flags, ev[k].path);
		}
	}
	if (trace_blind(t))
		fprintf(stderr, "trace-run: blind: %s\n", trace_blind(t));
	trace_free(t);
	sv_release(&env);
	fflush(stdout);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
