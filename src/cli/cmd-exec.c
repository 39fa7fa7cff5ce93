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
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern char **environ;

struct exec_opts {
	struct fp_spec spec;
	struct strvec tags;
	struct strvec env_files;
	struct strvec env; /* the command's environment: ours plus --env-file settings */
	const char *name, *store;
	const char *remote;
	int cache_failures, force, no_cache, verbose, no_stdin, retries, explain, json, report_fd;
	unsigned observe; /* EXEC_NO_TRACE, EXEC_TRACE, EXEC_STRICT, EXEC_AUTO_OUTPUTS, EXEC_ENV_STRICT */
	struct strvec ignore;
	int64_t ttl_ms, timeout_ms, grace_ms;
};

static const char exec_usage[] =
	"usage: cashet exec [options] -- COMMAND [ARGS...]\n"
	"       cashet why [options] -- COMMAND [ARGS...]   (exec --explain: nothing runs)\n"
	"  -i, --input PATH       hash a file, directory or glob as an input (repeatable)\n"
	"  -o, --output PATH      store and restore an output file or directory (repeatable)\n"
	"  -e, --env NAME         hash an environment variable or pattern (repeatable)\n"
	"  -p, --param FILE:KEY   hash one value of a TOML or JSON parameters file (repeatable)\n"
	"      --env-file FILE    NAME=VALUE lines are set and hashed, NAME lines hashed (repeatable)\n"
	"      --dep PATH         hash another source file or glob, following its imports (repeatable)\n"
	"      --raw-sources      hash scripts byte for byte (no canonicalization)\n"
	"  -t, --tag K=V          tag the run (repeatable; not part of the key)\n"
	"  -n, --name NAME        name the run\n"
	"      --ttl DURATION     do not replay the run after DURATION (e.g. 12h)\n"
	"      --timeout DURATION kill the command's process group after DURATION (exit 124)\n"
	"      --kill-after DURATION  after a timeout, SIGKILL this long after SIGTERM (default 5s)\n"
	"      --retries N        retry a failing command up to N times, backing off\n"
	"      --cache-failures   replay failed runs too\n"
	"  -f, --force            run even if cached; the new run is replayed from then on\n"
	"      --no-cache         always run, store nothing\n"
	"      --no-stdin         do not read or hash stdin; the command gets /dev/null\n"
	"      --store DIR        use the store at DIR\n"
	"      --remote URL       share runs through redis://host:port/db or a cashet serve http://host:port\n"
	"  -v, --verbose          say hit or miss (and why) and the run hash on stderr\n"
	"      --explain          do not run: say whether it would hit, and if not, what changed\n"
	"      --json             with --explain: print JSON\n"
	"      --report-fd N      write the verdict as one JSON line to file descriptor N\n"
	"      --trace on|off     observe the files the command reads (default on; off: declared key only)\n"
	"      --ignore PATTERN   never take matching paths as observed inputs (repeatable)\n"
	"      --auto-outputs     store and restore the files the command writes in the project\n"
	"      --strict           fail (125) if it reads a project file it does not declare\n"
	"      --env-mode strict  give the command only -e variables and PATH, HOME, USER, TMPDIR, LANG, LC_*, TERM\n";

enum {
	OPT_TTL = 256,
	OPT_TRACE,
	OPT_STRICT,
	OPT_AUTO_OUTPUTS,
	OPT_IGNORE,
	OPT_ENV_MODE,
	OPT_TIMEOUT,
	OPT_RETRIES,
	OPT_CACHE_FAILURES,
	OPT_NO_CACHE,
	OPT_NO_STDIN,
	OPT_STORE,
	OPT_GRACE,
	OPT_EXPLAIN,
	OPT_JSON,
	OPT_DEP,
	OPT_RAW_SOURCES,
	OPT_ENV_FILE,
	OPT_REMOTE,
	OPT_REPORT_FD
};

static const struct option long_opts[] = {
	{ "input", required_argument, NULL, 'i' },
	{ "output", required_argument, NULL, 'o' },
	{ "env", required_argument, NULL, 'e' },
	{ "tag", required_argument, NULL, 't' },
	{ "name", required_argument, NULL, 'n' },
	{ "ttl", required_argument, NULL, OPT_TTL },
	{ "timeout", required_argument, NULL, OPT_TIMEOUT },
	{ "kill-after", required_argument, NULL, OPT_GRACE },
	{ "retries", required_argument, NULL, OPT_RETRIES },
	{ "cache-failures", no_argument, NULL, OPT_CACHE_FAILURES },
	{ "force", no_argument, NULL, 'f' },
	{ "no-cache", no_argument, NULL, OPT_NO_CACHE },
	{ "no-stdin", no_argument, NULL, OPT_NO_STDIN },
	{ "store", required_argument, NULL, OPT_STORE },
	{ "remote", required_argument, NULL, OPT_REMOTE },
	{ "verbose", no_argument, NULL, 'v' },
	{ "explain", no_argument, NULL, OPT_EXPLAIN },
	{ "dep", required_argument, NULL, OPT_DEP },
	{ "param", required_argument, NULL, 'p' },
	{ "env-file", required_argument, NULL, OPT_ENV_FILE },
	{ "raw-sources", no_argument, NULL, OPT_RAW_SOURCES },
	{ "json", no_argument, NULL, OPT_JSON },
	{ "report-fd", required_argument, NULL, OPT_REPORT_FD },
	{ "trace", required_argument, NULL, OPT_TRACE },
	{ "strict", no_argument, NULL, OPT_STRICT },
	{ "auto-outputs", no_argument, NULL, OPT_AUTO_OUTPUTS },
	{ "ignore", required_argument, NULL, OPT_IGNORE },
	{ "env-mode", required_argument, NULL, OPT_ENV_MODE },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

static int valid_tag(const char *t)
{
	return *t && *t != '=';
}

static int parse_opts(const char *cmd, int argc, char **argv, struct exec_opts *o)
{
	int c;
	o->grace_ms = 5000;
	o->report_fd = -1;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:i:o:e:p:t:n:fvh", long_opts, NULL)) != -1) {
		switch (c) {
		case 'i':
			sv_push(&o->spec.inputs, optarg);
			break;
		case 'o':
			sv_push(&o->spec.outputs, optarg);
			break;
		case 'e':
			sv_push(&o->spec.envs, optarg);
			break;
		case 't':
			if (!valid_tag(optarg))
				return cli_usage(cmd, "invalid tag '%s' (expected KEY=VALUE or KEY)", optarg);
			sv_push(&o->tags, optarg);
			break;
		case 'n':
			o->name = optarg;
			break;
		case OPT_TTL:
			if (parse_duration_ms(optarg, &o->ttl_ms) < 0)
				return cli_usage(cmd, "--ttl: %s", err_msg());
			break;
		case OPT_TIMEOUT:
			if (parse_duration_ms(optarg, &o->timeout_ms) < 0)
				return cli_usage(cmd, "--timeout: %s", err_msg());
			break;
		case OPT_GRACE:
			if (parse_duration_ms(optarg, &o->grace_ms) < 0)
				return cli_usage(cmd, "--kill-after: %s", err_msg());
			break;
		case OPT_RETRIES: {
			char *end;
			long n = strtol(optarg, &end, 10);
			if (*end || n < 0 || n > 100)
				return cli_usage(cmd, "--retries: expected a number from 0 to 100, got '%s'", optarg);
			o->retries = (int)n;
			break;
		}
		case OPT_CACHE_FAILURES:
			o->cache_failures = 1;
			break;
		case 'f':
			o->force = 1;
			break;
		case OPT_NO_CACHE:
			o->no_cache = 1;
			break;
		case OPT_NO_STDIN:
			o->no_stdin = 1;
			break;
		case OPT_STORE:
			o->store = optarg;
			break;
		case OPT_REMOTE:
			o->remote = optarg;
			break;
		case 'v':
			o->verbose = 1;
			break;
		case 'p':
			sv_push(&o->spec.params, optarg);
			break;
		case OPT_ENV_FILE:
			sv_push(&o->env_files, optarg);
			break;
		case OPT_DEP:
			sv_push(&o->spec.deps, optarg);
			break;
		case OPT_RAW_SOURCES:
			o->spec.raw_sources = 1;
			break;
		case OPT_EXPLAIN:
			o->explain = 1;
			break;
		case OPT_JSON:
			o->json = 1;
			break;
		case OPT_REPORT_FD: {
			char *end;
			long n = strtol(optarg, &end, 10);
			if (*end || !*optarg || n < 0 || n > INT_MAX || fcntl((int)n, F_GETFD) < 0)
				return cli_usage(cmd, "--report-fd: '%s' is not an open file descriptor", optarg);
			o->report_fd = (int)n;
			break;
		}
		case OPT_TRACE:
			if (strcmp(optarg, "on") && strcmp(optarg, "off"))
				return cli_usage(cmd, "--trace: expected on or off, got '%s'", optarg);
			o->observe |= !strcmp(optarg, "on") ? EXEC_TRACE : EXEC_NO_TRACE;
			break;
		case OPT_STRICT:
			o->observe |= EXEC_STRICT;
			break;
		case OPT_AUTO_OUTPUTS:
			o->observe |= EXEC_AUTO_OUTPUTS;
			break;
		case OPT_IGNORE:
			sv_push(&o->ignore, optarg);
			break;
		case OPT_ENV_MODE:
			if (strcmp(optarg, "strict") && strcmp(optarg, "all"))
				return cli_usage(cmd, "--env-mode: expected strict or all, got '%s'", optarg);
			if (!strcmp(optarg, "strict"))
				o->observe |= EXEC_ENV_STRICT;
			break;
		case 'h':
			fputs(exec_usage, stdout);
			return 0;
		case ':':
			return cli_usage(cmd, "option '%s' needs a value", argv[optind - 1]);
		default:
			return cli_usage(cmd, "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind >= argc)
		return cli_usage(cmd, "no command given (usage: cashet exec [options] -- COMMAND [ARGS...])");
	o->spec.argv = argv + optind;
	return -1; /* go on */
}

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
		if (e->hash[0])
			sb_addf(&sb, "\"%s\"", e->hash);
		else
			sb_adds(&sb, "null");
		sb_adds(&sb, ",\"reasons\":[");
		for (size_t i = 0; i < e->reasons.n; i++) {
			if (i)
				sb_addc(&sb, ',');
			json_str(&sb, e->reasons.v[i]);
		}
		sb_adds(&sb, "]}");
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

static void exec_opts_release(struct exec_opts *o)
{
	sv_release(&o->spec.inputs);
	sv_release(&o->spec.outputs);
	sv_release(&o->spec.envs);
	sv_release(&o->spec.deps);
	sv_release(&o->spec.params);
	sv_release(&o->tags);
	sv_release(&o->ignore);
	sv_release(&o->env_files);
	sv_release(&o->env);
	free((char *)o->spec.cwd);
}

/* The request the options describe, run in this directory with this
 * environment (plus --env-file settings). o keeps what it points to. */
static int build_request(struct exec_opts *o, struct exec_request *req)
{
	char *cwd = getcwd(NULL, 0);
	if (!cwd)
		return err_sys("cannot read the working directory");
	struct strvec sets = STRVEC_INIT;
	int rc = 0;
	o->spec.cwd = cwd;
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
	req->flags = (o->force ? EXEC_FORCE : 0) | (o->no_cache ? EXEC_NO_CACHE : 0) |
		     (o->cache_failures ? EXEC_CACHE_FAILURES : 0) | (o->verbose ? EXEC_WANT_REASONS : 0) | o->observe;
	req->tags = &o->tags;
	req->ignore = &o->ignore;
	req->name = o->name;
	req->remote = o->remote;
	req->verbose = o->verbose;
	req->retries = o->retries;
	req->ttl_ms = o->ttl_ms;
	req->timeout_ms = o->timeout_ms;
	req->grace_ms = o->grace_ms;
	return 0;
}

/* Opens the store exec would use (creating it when asked). */
static int open_store(struct cli *cli, const struct exec_opts *o, int create, struct store **st)
{
	struct strbuf dir = STRBUF_INIT;
	int created = 0, rc = store_find(o->store ? o->store : cli->store_opt, &dir);
	if (rc == 1 && !create)
		err_set("no cashet store found (looked for %s in this directory and its parents; "
			"run 'cashet init' or set CASHET_DIR)",
			STORE_DIRNAME);
	if (rc == 0 || (rc == 1 && create))
		rc = store_open(dir.buf, create ? STORE_CREATE : 0, st, &created);
	if (rc == 0 && created)
		fprintf(stderr, "cashet: created a new store in %s\n", dir.buf);
	sb_release(&dir);
	return rc == 0 ? 0 : -1;
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

int exec_main(struct cli *cli, int argc, char **argv, int why)
{
	struct exec_opts o;
	struct exec_request req;
	struct exec_result res;
	struct store *st = NULL;
	int rc;

	memset(&o, 0, sizeof(o));
	memset(&res, 0, sizeof(res));
	rc = parse_opts(why ? "why" : "exec", argc, argv, &o);
	if (rc >= 0)
		goto done;
	o.explain |= why;
	o.verbose |= verbose_env();
	rc = EXEC_EXIT_CASHET;
	spawn_signals_init();
	if (build_request(&o, &req) < 0)
		goto fail;
	if (o.explain) {
		struct explain e;
		struct strbuf dir = STRBUF_INIT;
		int found = store_find(o.store ? o.store : cli->store_opt, &dir);
		sb_release(&dir);
		if (found == 1) {
			/* explaining never creates a store */
			puts(o.json ? "{\"hit\":false,\"run\":null,\"reasons\":[\"never run before (no store)\"]}"
				    : "run:\n  never run before (no store)");
			rc = 1;
			goto done;
		}
		if (found < 0 || open_store(cli, &o, 0, &st) < 0 || exec_explain(st, &req, &e) < 0)
			goto fail;
		rc = print_explain(&e, o.json);
		explain_free(&e);
		goto done;
	}
	if (open_store(cli, &o, 1, &st) < 0)
		goto fail;
	req.on_miss = on_miss;
	req.on_retry = on_retry;
	req.on_notice = on_notice;
	req.ctx = &o;
	int er = exec_run(st, &req, &res);
	report(&o, &res);
	if (er < 0)
		goto fail;
	print_result(&o, &res);
	rc = res.exit_code;
	goto done;
fail:
	fprintf(stderr, "cashet: %s\n", err_msg());
	rc = EXEC_EXIT_CASHET;
done:
	exec_result_free(&res);
	store_close(st);
	exec_opts_release(&o);
	return rc;
}

int cmd_exec(struct cli *cli, int argc, char **argv)
{
	return exec_main(cli, argc, argv, 0);
}

int exec_cli_fingerprint(struct cli *cli, int argc, char **argv, struct store **st, struct run_record *r,
			 int *cache_failures)
{
	struct exec_opts o;
	struct exec_request req;
	int rc;
	memset(&o, 0, sizeof(o));
	*st = NULL;
	rc = parse_opts(argv[0], argc, argv, &o);
	if (rc >= 0)
		goto done; /* usage error, or --help printed */
	rc = 1;
	if (build_request(&o, &req) < 0 || open_store(cli, &o, 0, st) < 0 || exec_fingerprint(*st, &req, r) < 0) {
		fprintf(stderr, "cashet: %s\n", err_msg());
		store_close(*st);
		*st = NULL;
		goto done;
	}
	*cache_failures = o.cache_failures;
	rc = 0;
done:
	exec_opts_release(&o);
	return rc;
}
