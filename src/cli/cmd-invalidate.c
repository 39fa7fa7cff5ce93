/* cashet invalidate --tag K=V|K...: remove the runs carrying all the given tags. */
#include "cli/cli.h"

static int collect(const struct run_record *r, void *ctx)
{
	sv_push(ctx, r->hash);
	return 0;
}

#define OPTS struct log_filter
static const struct opt invalidate_rows[] = {
	OPT_LIST("tag", 't', tags, "K=V|K", "the runs with this tag (repeatable: with all of them)"),
	OPT_STRING("name", 0, name, "NAME", "the runs named NAME"),
	OPT_END,
};

static int check_invalidate(const void *opts, int argc, char **argv, int dashdash)
{
	const struct log_filter *f = opts;
	return !f->tags.n && !f->name ? err_set("give at least one --tag or --name") : 0;
}

const struct opt_table cmd_invalidate_options = {
	OPT_ROWS(invalidate_rows),
	.help = "Removes the runs that carry every given tag (and the name).\n",
	.check = check_invalidate,
};
#undef OPTS

int cmd_invalidate(struct cli *cli, void *opts, int argc, char **argv)
{
	struct strvec hashes = STRVEC_INIT;
	int rc = 0;
	if (store_list(cli->st, opts, collect, &hashes) < 0 || (hashes.n && store_remove_many(cli->st, &hashes) < 0))
		rc = cli_fail(1);
	else
		printf("invalidated %zu run%s\n", hashes.n, hashes.n == 1 ? "" : "s");
	sv_release(&hashes);
	return rc;
}
