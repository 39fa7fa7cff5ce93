/* cashet push [REMOTE] [--tag K=V|K]... [--name NAME] [--since DURATION]:
 * send runs (all, or those matching the filters) to a git remote. */
#include "cli/cli.h"

struct pick {
	struct strvec hashes;
	int64_t since;
};

static int pick(const struct run_record *r, void *ctx)
{
	struct pick *p = ctx;
	if (!p->since || r->created_ms >= p->since)
		sv_push(&p->hashes, r->hash);
	return 0;
}

struct push_opts {
	struct log_filter f;
	int64_t since_ms; /* -1: any age */
};

#define OPTS struct push_opts
static const struct opt push_rows[] = {
	OPT_LIST("tag", 't', f.tags, "K=V|K", "only the runs with this tag (repeatable: with all of them)"),
	OPT_STRING("name", 0, f.name, "NAME", "only the runs named NAME"),
	OPT_DURATION("since", 0, since_ms, "only the runs made in the last DURATION"),
	OPT_END,
};

static const struct push_opts push_defaults = { .since_ms = -1 };

const struct opt_table cmd_push_options = {
	OPT_ROWS(push_rows),
	.defaults = &push_defaults,
	.help = "Sends runs (default: all) to REMOTE (default: origin).\n",
};
#undef OPTS

int cmd_push(struct cli *cli, void *opts, int argc, char **argv)
{
	const struct push_opts *o = opts;
	const char *remote = argc ? argv[0] : "origin";
	struct pick p = { STRVEC_INIT, o->since_ms >= 0 ? now_ms() - o->since_ms : 0 };
	struct log_filter f = o->f;
	struct strvec skipped = STRVEC_INIT;
	int rc = 1;
	f.rows_only = 1; /* the hash and the time are in the row */
	if (store_list(cli->st, &f, pick, &p) < 0 || store_push(cli->st, remote, &p.hashes, &skipped) < 0) {
		rc = cli_fail(1);
		goto out;
	}
	for (size_t i = 0; i < skipped.n; i++)
		fprintf(stderr, "cashet: warning: %s\n", skipped.v[i]);
	size_t pushed = p.hashes.n - skipped.n;
	printf("pushed %zu run%s to %s\n", pushed, pushed == 1 ? "" : "s", remote);
	rc = 0;
out:
	sv_release(&p.hashes);
	sv_release(&skipped);
	return rc;
}
