/* cashet gc: evict expired, old or least recently used runs and repack so
 * the space is really returned. Also the automatic size bound that exec
 * applies after storing (cashet config max-size). */
#include "cli/cli.h"
#include "exec/claim.h"
#include "store/gitmod.h"

#include <getopt.h>
#include <string.h>

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

int cmd_gc(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "older-than", required_argument, NULL, 'o' },
		{ "max-size", required_argument, NULL, 's' },
		{ "dry-run", no_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct gc_opts o = { .busy = claim_busy };
	struct gc_report r;
	struct store *st = NULL;
	int c;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":nh", opts, NULL)) != -1) {
		switch (c) {
		case 'o':
			if (parse_duration_ms(optarg, &o.older_than_ms) < 0)
				return cli_usage("gc", "--older-than: %s", err_msg());
			break;
		case 's':
			if (parse_size(optarg, &o.max_size) < 0)
				return cli_usage("gc", "--max-size: %s", err_msg());
			break;
		case 'n':
			o.dry_run = 1;
			break;
		case 'h':
			puts("usage: cashet gc [--older-than DURATION] [--max-size SIZE] [-n|--dry-run]\n"
			     "  removes expired runs, runs unused for DURATION (7d, 12h) and the least\n"
			     "  recently used runs beyond SIZE (500M, 2G), then repacks the store");
			return 0;
		case ':':
			return cli_usage("gc", "option '%s' needs a value", argv[optind - 1]);
		default:
			return cli_usage("gc", "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return cli_usage("gc", "unexpected argument '%s'", argv[optind]);
	if (cli_open_store(cli, &st) < 0)
		return cli_fail(1);
	int rc = store_gc(st, &o, &r);
	if (rc == 0)
		cli_print_gc(&r, o.dry_run);
	store_close(st);
	return rc < 0 ? cli_fail(1) : 0;
}
