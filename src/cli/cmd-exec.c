/* cashet exec: fingerprint, look up, replay on a hit; on a miss claim the
 * fingerprint, run (teeing streams live), store, release. Exit codes: the
 * command's own; 124 timeout; 125 cashet itself failed; 126/127 exec failed. */
#include "cli/cli.h"
#include "exec/claim.h"
#include "remote/select.h" /* Redis remote (issue 6) */
#include "key/explain.h"
#include "util/json.h"
#include "key/fp.h"
#include "store/outputs.h"
#include "exec/spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define EXIT_CASHET 125

struct exec_opts {
	struct fp_spec spec;
	struct strvec tags;
	struct strvec env_files;
	const char *name, *store;
	const char *remote; /* --remote URL (Redis, see exec-remote.c) */
	int cache_failures, force, no_cache, verbose, no_stdin, retries, explain, json;
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
	"      --json             with --explain: print JSON\n";

enum { OPT_TTL = 256, OPT_TIMEOUT, OPT_RETRIES, OPT_CACHE_FAILURES, OPT_NO_CACHE, OPT_NO_STDIN, OPT_STORE,
       OPT_GRACE, OPT_EXPLAIN, OPT_JSON, OPT_DEP, OPT_RAW_SOURCES, OPT_ENV_FILE, OPT_REMOTE };

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

/* An env file: "NAME=VALUE" sets the variable for the command, "NAME" (or a
 * pattern) only declares it; both are hashed. Comments and blank lines are
 * skipped; a value may be wrapped in matching quotes. */
static int load_env_file(const char *path, struct strvec *envs)
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
		if (!*line || strspn(line, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_*?[]") != strlen(line)) {
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
			setenv(line, v, 1);
		}
		sv_push(envs, line);
	}
	rc = 0;
out:
	sb_release(&data);
	return rc;
}

/* Stdin is part of the input when it is a pipe or a file. A pipe is spooled
 * to an unlinked temp file so it can be hashed and still given to the child. */
static int prepare_stdin(struct store *st, const struct exec_opts *o, int *fd_out)
{
	struct stat sb;
	*fd_out = -1;
	if (o->no_stdin) {
		*fd_out = open("/dev/null", O_RDONLY | O_CLOEXEC);
		return *fd_out < 0 ? err_sys("/dev/null") : 0;
	}
	if (fstat(STDIN_FILENO, &sb) < 0 || isatty(STDIN_FILENO))
		return 0;
	if (S_ISREG(sb.st_mode)) {
		*fd_out = STDIN_FILENO;
		return 0;
	}
	if (!S_ISFIFO(sb.st_mode) && !S_ISSOCK(sb.st_mode))
		return 0; /* /dev/null and other devices: nothing to hash */
	int fd = open(store_tmpdir(st), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd < 0)
		return err_sys("cannot spool stdin in %s", store_tmpdir(st));
	char buf[65536];
	for (;;) {
		ssize_t n = read(STDIN_FILENO, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			close(fd);
			return err_sys("cannot read stdin");
		}
		if (n == 0)
			break;
		if (write_all(fd, buf, (size_t)n) < 0) {
			close(fd);
			return err_sys("cannot spool stdin");
		}
	}
	lseek(fd, 0, SEEK_SET);
	*fd_out = fd;
	return 0;
}

static int verbose_env(void)
{
	const char *v = getenv("CASHET_LOG");
	return v && *v && strcmp(v, "0");
}

/* Replays a stored run, its streams to out_fd and err_fd (-1: read and
 * verified, not written). Everything is read and verified before the first
 * byte is written, so a corrupt object degrades to a miss, not to garbage.
 * Returns 0 replayed (*write_failed if a stream could not be written), -1
 * if the run cannot be replayed (corrupt/missing). */
static int replay(struct store *st, const struct run_record *r, int out_fd, int err_fd, int *write_failed)
{
	struct strbuf streams[2] = { STRBUF_INIT, STRBUF_INIT };
	int fds[2] = { out_fd, err_fd }, rc = -1;
	*write_failed = 0;
	for (size_t i = 0; i < r->nfiles; i++) {
		const struct run_file *f = &r->files[i];
		if ((f->kind == FILE_STDOUT || f->kind == FILE_STDERR) && store_blob_read(st, f, &streams[f->kind]) < 0)
			goto out;
	}
	if (outputs_restore(st, r) < 0)
		goto out;
	/* Whether a closed stdout (| head) matters is the caller's call. */
	for (int k = 0; k < 2; k++)
		if (fds[k] >= 0 && streams[k].len && write_all(fds[k], streams[k].buf, streams[k].len) < 0)
			*write_failed = 1;
	rc = 0;
out:
	sb_release(&streams[0]);
	sb_release(&streams[1]);
	return rc;
}

/* Hit: replays and returns the recorded exit code, or -1 to fall through to a run. */
static int try_replay(struct store *st, const struct exec_opts *o, struct run_record *r, const char *why)
{
	int write_failed;
	/* A closed stdout (| head) is not cashet's failure. */
	if (replay(st, r, STDOUT_FILENO, STDERR_FILENO, &write_failed) < 0) {
		fprintf(stderr, "cashet: warning: %s; running the command instead\n", err_msg());
		return -1;
	}
	if (o->verbose) {
		char d[32];
		fmt_duration(r->duration_ms, d, sizeof(d));
		fprintf(stderr, "cashet: %s %.12s (exit %d, saved %s)\n", why, r->hash, r->exit_code, d);
	}
	if (store_touch(st, r, now_ms()) < 0)
		err_clear(); /* LRU bookkeeping must never fail a hit */
	return r->exit_code;
}

struct beat {
	struct store *st;
	struct digest fp;
	struct claim_owner *me;
	int64_t last;
	struct exec_remote *er; /* Redis remote: its lock is refreshed with the claim */
};

static void heartbeat(void *ctx)
{
	struct beat *b = ctx;
	int64_t now = now_ms();
	if (now - b->last < CLAIM_HEARTBEAT_MS)
		return;
	b->last = now;
	if (store_claim_heartbeat(b->st, &b->fp, b->me, now) < 0)
		err_clear();
	exec_remote_heartbeat(b->er); /* Redis remote hook */
}

static int backoff_sleep(int attempt)
{
	const char *base_env = getenv("CASHET_RETRY_BASE_MS");
	int64_t ms = base_env ? atoll(base_env) : 500;
	for (int i = 0; i < attempt && ms < 60000; i++)
		ms *= 2;
	struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		if (run_pending_signal())
			return -1;
	return 0;
}

/* Runs with retries; returns the final outcome in out. */
static int run_with_retries(struct store *st, const struct exec_opts *o, int stdin_fd, struct beat *beat,
			    struct run_outcome *out)
{
	struct run_spec spec = {
		.argv = o->spec.argv,
		.stdin_fd = stdin_fd,
		.timeout_ms = o->timeout_ms,
		.grace_ms = o->grace_ms,
		.capdir = store_tmpdir(st),
		.tick = beat ? heartbeat : NULL,
		.tick_ctx = beat,
	};
	for (int attempt = 0;; attempt++) {
		if (stdin_fd >= 0 && stdin_fd != STDIN_FILENO)
			lseek(stdin_fd, 0, SEEK_SET);
		int rc = run_spawn(&spec, out);
		if (rc != 0)
			return rc;
		if (out->interrupted || out->status == 0 || attempt >= o->retries)
			return 0;
		if (o->verbose)
			fprintf(stderr, "cashet: exit %d, retrying (%d of %d)\n", out->status, attempt + 1, o->retries);
		run_outcome_free(out);
		if (backoff_sleep(attempt) < 0) {
			out->interrupted = run_pending_signal();
			return 0;
		}
	}
}

static int store_outcome(struct store *st, const struct exec_opts *o, struct run_record *r,
			 const struct run_outcome *out, int64_t started)
{
	r->ok = out->status == 0 && !out->timed_out;
	r->exit_code = out->status;
	r->created_ms = started;
	r->last_used_ms = now_ms();
	r->duration_ms = out->duration_ms;
	r->expires_ms = o->ttl_ms ? started + o->ttl_ms : 0;
	r->name = o->name ? xstrdup(o->name) : NULL;
	for (size_t i = 0; i < o->tags.n; i++)
		sv_push(&r->tags, o->tags.v[i]);
	const struct capture *caps[] = { &out->out, &out->err };
	for (int k = 0; k < 2; k++) {
		struct run_file *f = run_add_file(r, k, k ? "stderr" : "stdout");
		f->src = xstrdup(caps[k]->path);
		f->xxh = caps[k]->d;
		f->size = caps[k]->size;
	}
	if (r->ok && outputs_collect(st, &o->spec.outputs, r) < 0)
		return -2;
	if (outputs_add_sources(st, r) < 0 || store_save(st, r) < 0)
		return -1;
	return 0;
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

static void verbose_reasons(struct store *st, const struct run_record *r, const struct exec_opts *o)
{
	struct explain e;
	if (explain_run(st, r, o->cache_failures, now_ms(), &e) < 0) {
		err_clear();
		return;
	}
	for (size_t i = 0; i < e.reasons.n; i++)
		fprintf(stderr, "cashet: why: %s\n", e.reasons.v[i]);
	explain_free(&e);
}

int cmd_exec(struct cli *cli, int argc, char **argv)
{
	return exec_main(cli, argc, argv, 0);
}

static void exec_opts_release(struct exec_opts *o)
{
	sv_release(&o->spec.inputs);
	sv_release(&o->spec.outputs);
	sv_release(&o->spec.envs);
	sv_release(&o->spec.deps);
	sv_release(&o->spec.params);
	sv_release(&o->tags);
	sv_release(&o->env_files);
}

/* Opens the store found at dir (creating it when asked) and computes the
 * fingerprint of the command as o describes it: exec, why and history all
 * key runs the same way. *stdin_fd is the spooled stdin (caller closes). */
static int fingerprint(struct exec_opts *o, const char *dir, int create, struct store **st, struct run_record *r,
		       int *stdin_fd)
{
	int created = 0;
	if (store_open(dir, create ? STORE_CREATE : 0, st, &created) < 0)
		return -1;
	if (created)
		fprintf(stderr, "cashet: created a new store in %s\n", dir);
	for (size_t i = 0; i < o->env_files.n; i++)
		if (load_env_file(o->env_files.v[i], &o->spec.envs) < 0)
			return -1;
	if (prepare_stdin(*st, o, stdin_fd) < 0)
		return -1;
	o->spec.stdin_fd = o->no_stdin ? -1 : *stdin_fd;
	if (fp_compute(*st, &o->spec, r) < 0 || store_flush_statcache(*st) < 0)
		return -1;
	return 0;
}

int exec_main(struct cli *cli, int argc, char **argv, int why)
{
	struct exec_opts o;
	struct store *st = NULL;
	struct strbuf dir = STRBUF_INIT;
	struct run_record r = { 0 }, hit = { 0 };
	struct run_outcome out;
	struct claim_owner me;
	struct exec_remote er = { 0 }; /* Redis remote (issue 6) */
	int rc, stdin_fd = -1, claimed = 0, have_out = 0;

	memset(&o, 0, sizeof(o));
	memset(&out, 0, sizeof(out));
	rc = parse_opts(why ? "why" : "exec", argc, argv, &o);
	if (rc >= 0)
		goto done;
	o.explain |= why;
	o.verbose |= verbose_env();
	int64_t t0 = now_ms();
	o.spec.stdin_fd = -1;
	rc = EXIT_CASHET;
	run_signals_init();

	int found = store_find(o.store ? o.store : cli->store_opt, &dir);
	if (found < 0)
		goto fail;
	if (found == 1 && o.explain) {
		/* explaining never creates a store */
		puts(o.json ? "{\"hit\":false,\"run\":null,\"reasons\":[\"never run before (no store)\"]}"
			    : "run:\n  never run before (no store)");
		rc = 1;
		goto done;
	}
	if (fingerprint(&o, dir.buf, !o.explain, &st, &r, &stdin_fd) < 0)
		goto fail;

	if (o.explain) {
		struct explain e;
		if (explain_run(st, &r, o.cache_failures, now_ms(), &e) < 0)
			goto fail;
		rc = print_explain(&e, o.json);
		explain_free(&e);
		goto done;
	}
	if (!o.force && !o.no_cache) {
		int h = store_lookup(st, &r.fp, o.cache_failures, 0, now_ms(), &hit);
		if (h < 0)
			goto fail;
		if (h == 1 && (rc = try_replay(st, &o, &hit, "hit")) >= 0)
			goto done;
		run_record_free(&hit);
	}
	/* Redis remote hook: connect on a local miss only (a hit never does),
	 * and read through: a run fetched from Redis is replayed like a local one. */
	if (!o.no_cache && exec_remote_open(&er, st, o.remote, &r.fp) && !o.force &&
	    exec_remote_fetch(&er, st, o.verbose) == 1) {
		if (store_lookup(st, &r.fp, o.cache_failures, 0, now_ms(), &hit) == 1 &&
		    (rc = try_replay(st, &o, &hit, "hit")) >= 0)
			goto done;
		err_clear();
		run_record_free(&hit);
	}
	if (o.verbose) {
		char hx[DIGEST_HEX];
		digest_hex(&r.fp, hx);
		fprintf(stderr, "cashet: %s %s\n", o.no_cache ? "no-cache" : o.force ? "forced" : "miss", hx);
		if (!o.force && !o.no_cache)
			verbose_reasons(st, &r, &o);
	}

	claim_self(&me);
	struct beat beat = { st, r.fp, &me, now_ms(), &er };
	if (!o.no_cache) {
		/* Another process may be running the same thing: wait for it and
		 * replay its result rather than running it twice. Whatever it
		 * stored since we started counts, even a failure, and is checked
		 * again once we hold the claim: it may have finished between our
		 * lookup and our claim. A run is dated by its start, which can be
		 * before ours, so a completed one counts whenever it started. */
		for (;;) {
			int c = claim_acquire(st, &r.fp, &me, run_pending_signal);
			if (c == 2) {
				rc = 128 + run_pending_signal();
				goto done;
			}
			if (c < 0)
				goto fail;
			claimed = c == 0;
			int h = store_lookup(st, &r.fp, 1, t0, now_ms(), &hit);
			if (h == 0 && !o.force)
				h = store_lookup(st, &r.fp, o.cache_failures, 0, now_ms(), &hit);
			if (h < 0)
				goto fail;
			if (h == 1 && (rc = try_replay(st, &o, &hit, claimed ? "hit" : "waited for")) >= 0)
				goto done;
			run_record_free(&hit);
			if (claimed)
				break;
			if (run_pending_signal()) {
				rc = 128 + run_pending_signal();
				goto done;
			}
		}
		/* Redis remote hook: claim across machines too; while another
		 * machine runs the command, wait and replay what it stored. */
		int l = o.force ? 0 : exec_remote_lock(&er, st, run_pending_signal, o.verbose);
		if (l == 2) {
			rc = 128 + run_pending_signal();
			goto done;
		}
		if (l == 1) {
			int h = store_lookup(st, &r.fp, 1, t0, now_ms(), &hit);
			if (h == 0)
				h = store_lookup(st, &r.fp, o.cache_failures, 0, now_ms(), &hit);
			if (h == 1 && (rc = try_replay(st, &o, &hit, "waited for")) >= 0)
				goto done;
			err_clear();
			run_record_free(&hit);
		}
	}

	store_sweep_tmp(st);
	if (run_pending_signal()) {
		/* interrupted while hashing or waiting: nothing ran, nothing to store */
		rc = 128 + run_pending_signal();
		goto done;
	}
	int64_t started = now_ms();
	int sr = run_with_retries(st, &o, stdin_fd, claimed ? &beat : NULL, &out);
	have_out = sr >= 0;
	if (sr < 0)
		goto fail;
	if (sr == 1) {
		/* exec failed: not a result of the command, nothing to store */
		fprintf(stderr, "cashet: %s\n", err_msg());
		rc = out.status;
		goto done;
	}
	if (out.interrupted) {
		rc = 128 + out.interrupted;
		goto done;
	}
	rc = out.status;
	if (o.no_cache)
		goto done;
	int so = store_outcome(st, &o, &r, &out, started);
	if (so == -2) {
		/* the command did not do what was declared: an error, not a result */
		fprintf(stderr, "cashet: %s\n", err_msg());
		rc = out.status ? out.status : 1;
		goto done;
	}
	if (so < 0) {
		fprintf(stderr, "cashet: warning: result not stored: %s\n", err_msg());
		goto done;
	}
	claimed = 0;
	if (o.verbose)
		fprintf(stderr, "cashet: stored %.12s (exit %d)\n", r.hash, r.exit_code);
	/* Redis remote hook: write-through (the lock is released at done) */
	if (r.ok || o.cache_failures)
		exec_remote_publish(&er, st, &r, o.verbose);
	cli_auto_gc(st);
	goto done;
fail:
	fprintf(stderr, "cashet: %s\n", err_msg());
	rc = EXIT_CASHET;
done:
	exec_remote_close(&er); /* Redis remote hook: releases its lock */
	if (claimed && st)
		store_claim_release(st, &r.fp, &me);
	if (have_out)
		run_outcome_free(&out);
	if (stdin_fd > STDIN_FILENO)
		close(stdin_fd);
	run_record_free(&r);
	run_record_free(&hit);
	store_close(st);
	exec_opts_release(&o);
	sb_release(&dir);
	return rc;
}

int exec_fingerprint(struct cli *cli, int argc, char **argv, struct store **st, struct run_record *r,
		     int *cache_failures)
{
	struct exec_opts o;
	struct strbuf dir = STRBUF_INIT;
	int rc, stdin_fd = -1;
	memset(&o, 0, sizeof(o));
	*st = NULL;
	rc = parse_opts(argv[0], argc, argv, &o);
	if (rc >= 0)
		goto done; /* usage error, or --help printed */
	rc = 1;
	o.spec.stdin_fd = -1;
	int found = store_find(o.store ? o.store : cli->store_opt, &dir);
	if (found == 1)
		err_set("no cashet store found (looked for %s in this directory and its parents; "
			"run 'cashet init' or set CASHET_DIR)", STORE_DIRNAME);
	if (found != 0 || fingerprint(&o, dir.buf, 0, st, r, &stdin_fd) < 0) {
		fprintf(stderr, "cashet: %s\n", err_msg());
		store_close(*st);
		*st = NULL;
		goto done;
	}
	*cache_failures = o.cache_failures;
	rc = 0;
done:
	if (stdin_fd > STDIN_FILENO)
		close(stdin_fd);
	exec_opts_release(&o);
	sb_release(&dir);
	return rc;
}

int exec_replay_cached(struct cli *cli, struct store *st, int argc, char **argv, int out_fd, int err_fd)
{
	struct exec_opts o;
	struct strbuf dir = STRBUF_INIT;
	struct run_record r = { 0 }, hit = { 0 };
	int rc = 1;
	memset(&o, 0, sizeof(o));
	if (parse_opts(argv[0], argc, argv, &o) >= 0)
		goto done; /* exec itself will say what is wrong */
	/* anything but a plain lookup (stdin to hash, env files to load,
	 * failures to replay, no lookup at all) is left to exec */
	if (o.explain || o.force || o.no_cache || o.cache_failures || !o.no_stdin || o.env_files.n)
		goto done;
	/* the same store exec would find, or the fingerprint would not be its */
	if (store_find(o.store ? o.store : cli->store_opt, &dir) != 0 || strcmp(dir.buf, store_dir(st))) {
		err_clear();
		goto done;
	}
	/* as fingerprint() computes it with --no-stdin */
	o.spec.stdin_fd = -1;
	rc = -1;
	if (fp_compute(st, &o.spec, &r) < 0 || store_flush_statcache(st) < 0)
		goto done;
	int h = store_lookup(st, &r.fp, 0, 0, now_ms(), &hit);
	if (h < 0)
		goto done;
	rc = 1;
	/* only ok runs are looked up: exec's replay would exit 0 */
	int write_failed;
	if (h == 1 && hit.ok && hit.exit_code == 0 && replay(st, &hit, out_fd, err_fd, &write_failed) == 0 &&
	    !write_failed) {
		if (store_touch(st, &hit, now_ms()) < 0)
			err_clear(); /* as in try_replay */
		rc = 0;
	}
done:
	run_record_free(&r);
	run_record_free(&hit);
	exec_opts_release(&o);
	sb_release(&dir);
	return rc;
}
