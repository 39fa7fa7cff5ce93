/* cashet exec / why: the options become an exec_request for the engine
 * (exec/engine.c), and the result becomes what the user sees: the exit
 * code, -v lines on stderr, and with --report-fd N one JSON line on fd N.
 * Exit codes: the command's own; 124 timeout; 125 cashet itself failed;
 * 126/127 the command could not be started. */
#include "cli/cli.h"
#include "exec/engine.h"
#include "exec/spawn.h"
#include "util/json.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern char **environ;

static int check_tag(void *opts, const char *arg)
{
	return !*arg || *arg == '=' ? err_set("invalid tag '%s' (expected KEY=VALUE or KEY)", arg) : 0;
}

static int take_report_fd(void *opts, const char *arg)
{
	struct exec_opts *o = opts;
	return opt_fd("report-fd", arg, &o->report_fd);
}

#define OPTS struct exec_opts
static const struct opt exec_rows[] = {
	OPT_LIST("input", 'i', spec.inputs, "PATH", "hash a file, directory or glob as an input (repeatable)"),
	OPT_LIST("output", 'o', spec.outputs, "PATH", "store and restore an output file or directory (repeatable)"),
	OPT_LIST("env", 'e', spec.envs, "NAME", "hash an environment variable or pattern (repeatable)"),
	OPT_LIST("param", 'p', spec.params, "FILE:KEY",
		 "hash one value of a TOML or JSON parameters file (repeatable)"),
	OPT_LIST("env-file", 0, env_files, "FILE",
		 "NAME=VALUE lines are set and hashed, NAME lines hashed (repeatable)"),
	OPT_LIST("dep", 0, spec.deps, "PATH", "hash another source file or glob, following its imports (repeatable)"),
	OPT_BOOL("raw-sources", 0, spec.raw_sources, "hash scripts byte for byte (no canonicalization)"),
	OPT_LIST_CHECK("tag", 't', tags, "K=V", check_tag, "tag the run (repeatable; not part of the key)"),
	OPT_STRING("name", 'n', name, "NAME", "name the run"),
	OPT_LIST("metrics", 0, metrics, "FILE",
		 "an output read as the run's metrics: JSON, TOML or CSV (repeatable; see exp show)"),
	OPT_DURATION("ttl", 0, ttl_ms, "do not replay the run after DURATION (e.g. 12h)"),
	OPT_DURATION("stale", 0, stale_ms,
		     "replay a run older than DURATION at once, and refresh it in the background"),
	OPT_BOOL("warm", 0, warm, "refresh the run in the background and print nothing"),
	OPT_DURATION("timeout", 0, timeout_ms, "kill the command's process group after DURATION (exit 124)"),
	OPT_DURATION("kill-after", 0, grace_ms, "after a timeout, SIGKILL this long after SIGTERM (default 5s)"),
	OPT_INT("retries", 0, retries, "N", 0, 100, "retry a failing command up to N times, backing off"),
	OPT_BOOL("cache-failures", 0, cache_failures, "replay failed runs too"),
	OPT_BOOL("force", 'f', force, "run even if cached; the new run is replayed from then on"),
	OPT_BOOL("no-cache", 0, no_cache, "always run, store nothing"),
	OPT_BOOL("no-stdin", 0, no_stdin, "do not read or hash stdin; the command gets /dev/null"),
	OPT_STRING(
		"remote", 0, remote, "URL",
		"share runs through redis://host:port/db, a cashet serve http://host:port or cache+http://host/prefix"),
	OPT_CHOICE("remote-mode", 0, remote_mode, "read|read-write",
		   "read: fetch from the remote, never write to it (default read-write)"),
	OPT_BOOL("verbose", 'v', verbose, "say hit or miss (and why) and the run hash on stderr"),
	OPT_BOOL("explain", 0, explain, "do not run: say whether it would hit, and if not, what changed"),
	OPT_BOOL("json", 0, json, "with --explain: print JSON"),
	OPT_CALLBACK("report-fd", 0, take_report_fd, "N", "write the verdict as one JSON line to file descriptor N"),
	OPT_CHOICE("trace", 0, trace, "on|off",
		   "observe the files the command reads (default on; off: declared key only)"),
	OPT_LIST("ignore", 0, ignore, "PATTERN", "never take matching paths as observed inputs (repeatable)"),
	OPT_BIT("auto-outputs", 0, observe, EXEC_AUTO_OUTPUTS, "store and restore the files it writes in the project"),
	OPT_BIT("strict", 0, observe, EXEC_STRICT, "fail (125) if it reads a project file it does not declare"),
	OPT_CHOICE("env-mode", 0, env_mode, "strict|all",
		   "strict: only -e variables and PATH, HOME, USER, TMPDIR, LANG, LC_*, TERM"),
	OPT_END,
};

static const struct exec_opts exec_defaults = EXEC_OPTS_INIT;

const struct opt_table cmd_exec_options = {
	OPT_ROWS(exec_rows),
	.defaults = &exec_defaults,
	.help = "Exit status: the command's own; 124 timeout; 125 cashet itself failed;\n"
		"126/127 the command could not be started.\n",
};

const struct opt_table cmd_why_options = {
	OPT_ROWS(exec_rows),
	.defaults = &exec_defaults,
	.help = "why is exec --explain: nothing runs. Exit 0: it would replay; 1: it would run.\n",
};
#undef OPTS

/* An env file: "NAME=VALUE" sets the variable in the command's environment
 * (appended to sets), "NAME" (or a pattern) only declares it; both are hashed. Comments and blank lines are
 * skipped; a value may be wrapped in matching quotes. */
static int load_env_file(const char *path, struct strvec *envs, struct strvec *sets)
{
	struct strbuf data = STRBUF_INIT;
	int rc = -1, lineno = 0;
	if (read_file_sb(path, &data) < 0) {
		err_set("--env-file: %s", err_msg());
		goto out;
	}
	for (char *line = data.buf, *next; line && *line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		lineno++;
		line += strspn(line, " \t");
		size_t n = strlen(line);
		while (n && (line[n - 1] == ' ' || line[n - 1] == '\t' || line[n - 1] == '\r'))
			line[--n] = '\0';
		if (!n || line[0] == '#')
			continue;
		if (!strncmp(line, "export ", 7))
			line += 7;
		char *eq = strchr(line, '=');
		if (eq)
			*eq = '\0';
		if (!*line || strspn(line, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_*?[]") !=
				      strlen(line)) {
			err_set("%s:%d: expected NAME=VALUE or NAME", path, lineno);
			goto out;
		}
		if (eq) {
			char *v = eq + 1;
			size_t vl = strlen(v);
			if (vl >= 2 && (v[0] == '"' || v[0] == '\'') && v[vl - 1] == v[0]) {
				v[vl - 1] = '\0';
				v++;
			}
			struct strbuf set = STRBUF_INIT;
			sb_addf(&set, "%s=%s", line, v);
			sv_push_nocopy(sets, sb_detach(&set));
		}
		sv_push(envs, line);
	}
	rc = 0;
out:
	sb_release(&data);
	return rc;
}

/* Prints the explanation; returns 0 if it would hit, 1 if it would run. */
static int print_explain(const struct explain *e, int json)
{
	if (json) {
		struct strbuf sb = STRBUF_INIT;
		sb_addf(&sb, "{\"hit\":%s,\"run\":", e->hit ? "true" : "false");
		json_str_or_null(&sb, e->hash[0] ? e->hash : NULL);
		sb_adds(&sb, ",\"reasons\":");
		json_str_array(&sb, &e->reasons);
		sb_addc(&sb, '}');
		puts(sb.buf);
		sb_release(&sb);
	} else if (e->hit) {
		char when[32];
		fmt_time(e->created_ms, when, sizeof(when));
		printf("hit: would replay %.12s (%s)\n", e->hash, when);
	} else {
		if (e->hash[0]) {
			char when[32];
			fmt_time(e->created_ms, when, sizeof(when));
			printf("run: changed since %.12s (%s):\n", e->hash, when);
		} else {
			printf("run:\n");
		}
		for (size_t i = 0; i < e->reasons.n; i++)
			printf("  %s\n", e->reasons.v[i]);
	}
	return e->hit ? 0 : 1;
}

static int verbose_env(void)
{
	const char *v = getenv("CASHET_LOG");
	return v && *v && strcmp(v, "0");
}

int exec_opts_given(const struct exec_opts *o)
{
	/* the options struct starts as a copy of a static EXEC_OPTS_INIT
	 * (padding zeroed) and parsing writes only fields: bytes compare */
	return memcmp(o, &exec_defaults, sizeof(*o)) != 0;
}

/* Frees what build_request added to o; the parser frees the rest. */
static void request_release(struct exec_opts *o)
{
	sv_release(&o->env);
	free((char *)o->spec.cwd);
	o->spec.cwd = NULL;
}

/* The request the options describe, run in this directory with this
 * environment (plus --env-file settings). o keeps what it points to. */
static int build_request(struct exec_opts *o, struct exec_request *req)
{
	/* NULL when the directory was removed under us: the command can
	 * still run in it, uncached (exec_main) */
	char *cwd = getcwd(NULL, 0);
	if (!cwd)
		err_sys("cannot read the working directory");
	struct strvec sets = STRVEC_INIT;
	int rc = 0;
	o->spec.cwd = cwd;
	/* a metrics file is an output first: stored, restored, and named in the key */
	for (size_t i = 0; i < o->metrics.n; i++) {
		int declared = 0;
		for (size_t k = 0; k < o->spec.outputs.n && !declared; k++)
			declared = !strcmp(o->spec.outputs.v[k], o->metrics.v[i]);
		if (!declared)
			sv_push(&o->spec.outputs, o->metrics.v[i]);
	}
	for (size_t i = 0; rc == 0 && i < o->env_files.n; i++)
		rc = load_env_file(o->env_files.v[i], &o->spec.envs, &sets);
	env_merge(environ, &sets, &o->env);
	sv_release(&sets);
	if (rc < 0)
		return -1;
	o->spec.env = o->env.v; /* NULL when empty: the engine reads that as no variables */
	memset(req, 0, sizeof(*req));
	req->spec = o->spec;
	req->stdin_fd = o->no_stdin ? -1 : STDIN_FILENO;
	req->out_fd = STDOUT_FILENO;
	req->err_fd = STDERR_FILENO;
	req->report_fd = o->report_fd;
	req->flags = (o->force ? EXEC_FORCE : 0) | (o->no_cache ? EXEC_NO_CACHE : 0) |
		     (o->cache_failures ? EXEC_CACHE_FAILURES : 0) | (o->verbose ? EXEC_WANT_REASONS : 0) | o->observe;
	if (o->trace)
		req->flags |= !strcmp(o->trace, "on") ? EXEC_TRACE : EXEC_NO_TRACE;
	if (o->env_mode && !strcmp(o->env_mode, "strict"))
		req->flags |= EXEC_ENV_STRICT;
	req->tags = &o->tags;
	req->metrics = &o->metrics;
	req->ignore = &o->ignore;
	req->name = o->name;
	req->remote = o->remote;
	req->remote_mode = o->remote_mode;
	req->verbose = o->verbose;
	req->retries = o->retries;
	req->ttl_ms = o->ttl_ms;
	req->timeout_ms = o->timeout_ms;
	req->grace_ms = o->grace_ms;
	return 0;
}

/* Opens the store exec would use (creating it when asked, and saying so). */
static int open_store(struct cli *cli, int create, struct store **st)
{
	int created = 0;
	if (cli_open_store(cli, create ? STORE_CREATE : 0, st, &created) < 0)
		return -1;
	if (created)
		fprintf(stderr, "cashet: created a new store in %s\n", store_dir(*st));
	return 0;
}

static void on_miss(void *ctx, const struct exec_result *res)
{
	const struct exec_opts *o = ctx;
	if (res->note)
		fprintf(stderr, "cashet: %s\n", res->note);
	if (!o->verbose)
		return;
	char hx[DIGEST_HEX];
	digest_hex(&res->fp, hx);
	fprintf(stderr, "cashet: %s %s\n", o->no_cache ? "no-cache" : o->force ? "forced" : "miss", hx);
	for (size_t i = 0; i < res->reasons.n; i++)
		fprintf(stderr, "cashet: why: %s\n", res->reasons.v[i]);
}

static void on_retry(void *ctx, int status, int attempt, int retries)
{
	const struct exec_opts *o = ctx;
	if (o->verbose)
		fprintf(stderr, "cashet: exit %d, retrying (%d of %d)\n", status, attempt, retries);
}

static void on_notice(void *ctx, const char *msg)
{
	(void)ctx;
	fprintf(stderr, "cashet: %s\n", msg);
}

/* What the user sees of a result besides the streams. */
static void print_result(const struct exec_opts *o, const struct exec_result *res)
{
	char d[32];
	switch (res->verdict) {
	case EXEC_HIT:
	case EXEC_WAITED:
		if (!o->verbose)
			break;
		fmt_duration(res->duration_ms, d, sizeof(d));
		fprintf(stderr, "cashet: %s %.12s (exit %d, saved %s)\n",
			res->verdict == EXEC_HIT ? "hit" : "waited for", res->run, res->exit_code, d);
		break;
	case EXEC_RAN:
		if (o->verbose)
			fprintf(stderr, "cashet: stored %.12s (exit %d)\n", res->run, res->exit_code);
		break;
	case EXEC_NOT_STORED:
	case EXEC_MISS:
		if (res->note)
			fprintf(stderr, "cashet: %s\n", res->note);
		break;
	}
}

static void report(const struct exec_opts *o, const struct exec_result *res)
{
	if (o->report_fd < 0)
		return;
	struct strbuf sb = STRBUF_INIT;
	exec_result_json(res, &sb);
	if (write_all(o->report_fd, sb.buf, sb.len) < 0)
		fprintf(stderr, "cashet: warning: cannot write the report to fd %d: %s\n", o->report_fd,
			strerror(errno));
	sb_release(&sb);
}

/* The environment variable that makes an exec the background refresh of
 * another (--stale, --warm): the time (ms) after which a run counts as
 * fresh. cashet sets it for the process it starts, never a user. */
#define REFRESH_ENV "CASHET_REFRESH_SINCE"

/* Runs this same cashet command line again in a detached process (a new
 * session, its streams on /dev/null) as a refresh: it runs the command
 * unless a run created at or after since exists once it holds the
 * fingerprint's claim (exec_request.fresh_since), so concurrent refreshes
 * run it once. A new process image, not a fork that keeps running: a
 * process that outlives this one must not use SQLite state it inherited
 * (see cmd-pipeline.c's workers). */
static void spawn_refresh(struct cli *cli, const struct exec_opts *o, int64_t since)
{
	char v[32];
	int status;
	snprintf(v, sizeof(v), "%lld", (long long)since);
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		setsid();
		pid_t g = fork();
		if (g != 0)
			_exit(g < 0 ? 1 : 0);
		int null = open("/dev/null", O_RDWR);
		if (null >= 0) {
			dup2(null, STDIN_FILENO);
			dup2(null, STDOUT_FILENO);
			dup2(null, STDERR_FILENO);
		}
		/* nothing of the caller's stays open (a pipe its reader waits
		 * on); --report-fd names one, so that one is /dev/null */
		close_range(STDERR_FILENO + 1, ~0U, 0);
		if (o->report_fd > STDERR_FILENO)
			dup2(STDIN_FILENO, o->report_fd);
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		setenv(REFRESH_ENV, v, 1);
		execv("/proc/self/exe", cli->argv);
		_exit(127);
	}
	if (pid < 0) {
		fprintf(stderr, "cashet: warning: cannot start the background refresh: %s\n", strerror(errno));
		return;
	}
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
}

int exec_main(struct cli *cli, struct exec_opts *o, int argc, char **argv, int why)
{
	struct exec_request req;
	struct exec_result res;
	struct store *st = NULL;
	int rc = EXEC_EXIT_CASHET;

	memset(&res, 0, sizeof(res));
	o->spec.argv = argv;
	o->explain |= why;
	o->verbose |= verbose_env();
	/* a refresh runs in the background: stdin is not its caller's, so
	 * neither is it for the runs it refreshes */
	if (o->stale_ms || o->warm)
		o->no_stdin = 1;
	const char *env = getenv(REFRESH_ENV);
	int refresh = env != NULL;
	int64_t fresh_since = env ? strtoll(env, NULL, 10) : 0;
	unsetenv(REFRESH_ENV); /* not the command's */
	if (o->warm && !refresh && !o->explain) {
		spawn_refresh(cli, o, now_ms());
		return 0;
	}
	spawn_signals_init();
	if (build_request(o, &req) < 0)
		goto fail;
	req.stale_ms = o->stale_ms;
	if (refresh) {
		req.fresh_since = fresh_since > 0 ? fresh_since : 1;
		req.out_fd = req.err_fd = -1;
		req.flags |= EXEC_QUIET;
	}
	if (o->explain) {
		struct explain e;
		if (!req.spec.cwd)
			goto fail; /* the error build_request set */
		struct strbuf dir = STRBUF_INIT;
		int found = store_find(cli->store_opt, &dir);
		sb_release(&dir);
		if (found == 1) {
			/* explaining never creates a store */
			puts(o->json ? "{\"hit\":false,\"run\":null,\"reasons\":[\"never run before (no store)\"]}"
				     : "run:\n  never run before (no store)");
			rc = 1;
			goto done;
		}
		if (found < 0 || open_store(cli, 0, &st) < 0 || exec_explain(st, &req, &e) < 0)
			goto fail;
		rc = print_explain(&e, o->json);
		explain_free(&e);
		goto done;
	}
	req.on_miss = on_miss;
	req.on_retry = on_retry;
	req.on_notice = on_notice;
	req.ctx = o;
	int er;
	if (!req.spec.cwd) {
		/* no path names the directory: neither the store nor the
		 * inputs can be found from it, but the command runs there */
		fprintf(stderr, "cashet: " EXEC_UNCACHED_WARNING "\n", err_msg());
		err_clear();
		er = exec_run_unstored(&req, &res);
	} else if (open_store(cli, 1, &st) == 0) {
		er = exec_run(st, &req, &res);
	} else {
		/* A store that cannot be opened (a full disk, an I/O error, an
		 * index from a newer cashet) costs the cache, never the command:
		 * one warning, and the command runs as it would without cashet. */
		fprintf(stderr, "cashet: " EXEC_UNCACHED_WARNING "\n", err_msg());
		err_clear();
		er = exec_run_unstored(&req, &res);
	}
	report(o, &res);
	if (er < 0)
		goto fail;
	print_result(o, &res);
	rc = res.exit_code;
	/* the caller got the stale result at once; the next one gets the new */
	if (res.stale && !refresh)
		spawn_refresh(cli, o, res.created_ms + 1);
	goto done;
fail:
	fprintf(stderr, "cashet: %s\n", err_msg());
	rc = EXEC_EXIT_CASHET;
done:
	exec_result_free(&res);
	store_close(st);
	request_release(o);
	return rc;
}

int cmd_exec(struct cli *cli, void *opts, int argc, char **argv)
{
	return exec_main(cli, opts, argc, argv, 0);
}

int exec_cli_fingerprint(struct exec_opts *o, char **cmd, struct store *st, struct run_record *r)
{
	struct exec_request req;
	int rc;
	o->spec.argv = cmd;
	rc = build_request(o, &req) < 0 || !req.spec.cwd || exec_fingerprint(st, &req, r) < 0 ? -1 : 0;
	request_release(o);
	return rc;
}
