/* cashet gc: evict expired, old or least recently used runs and repack so
 * the space is really returned. Also the automatic size bound that exec
 * applies after storing (cashet config max-size). */
#include "cli/cli.h"
#include "exec/claim.h"
#include "store/gitmod.h"

void cli_print_gc(const struct gc_report *r, int dry_run)
{
	char a[32], b[32];
	fmt_size((uint64_t)r->bytes_before, a, sizeof(a));
	fmt_size((uint64_t)r->bytes_after, b, sizeof(b));
	printf("%s %lld expired, %lld evicted, %lld kept", dry_run ? "would remove" : "removed", (long long)r->expired,
	       (long long)r->evicted, (long long)r->kept);
	if (r->busy)
		printf(" (%lld in use)", (long long)r->busy);
	if (r->reindexed)
		printf(" (%lld re-indexed from their refs)", (long long)r->reindexed);
	if (dry_run)
		printf("; objects %s\n", a);
	else
		printf("; objects %s -> %s\n", a, b);
}

#define OPTS struct gc_opts
static const struct opt gc_rows[] = {
	OPT_DURATION("older-than", 0, older_than_ms, "remove the runs unused for DURATION (7d, 12h)"),
	OPT_SIZE("max-size", 0, max_size, "remove the least recently used runs beyond SIZE (500M, 2G)"),
	OPT_BOOL("dry-run", 'n', dry_run, "say what would be removed, remove nothing"),
	OPT_END,
};

static const struct gc_opts gc_defaults = { .busy = claim_busy };

const struct opt_table cmd_gc_options = {
	OPT_ROWS(gc_rows),
	.defaults = &gc_defaults,
	.help = "Removes expired runs and those the options name, then repacks the store.\n",
};
#undef OPTS

int cmd_gc(struct cli *cli, void *opts, int argc, char **argv)
{
	const struct gc_opts *o = opts;
	struct gc_report r;
	if (store_gc(cli->st, o, &r) < 0)
		return cli_fail(1);
	cli_print_gc(&r, o->dry_run);
	return 0;
}
