/* cashet invalidate --tag K=V|K...: remove the runs carrying all the given tags. */
#include "cli/cli.h"

#include <getopt.h>
#include <string.h>

static int collect(const struct run_record *r, void *ctx)
{
	sv_push(ctx, r->hash);
	return 0;
}

int cmd_invalidate(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "tag", required_argument, NULL, 't' },
		{ "name", required_argument, NULL, 'N' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct log_filter f = { 0 };
	struct strvec hashes = STRVEC_INIT;
	struct store *st = NULL;
	int c, rc = 1;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":t:h", opts, NULL)) != -1) {
		switch (c) {
		case 't':
			sv_push(&f.tags, optarg);
			break;
		case 'N':
			f.name = optarg;
			break;
		case 'h':
			puts("usage: cashet invalidate (--tag K=V|K)... [--name NAME]\n"
			     "  removes the runs that carry every given tag (and the name)");
			rc = 0;
			goto out;
		case ':':
			rc = cli_usage("invalidate", "option '%s' needs a value", argv[optind - 1]);
			goto out;
		default:
			rc = cli_usage("invalidate", "unknown option '%s'", argv[optind - 1]);
			goto out;
		}
	}
	if (optind < argc || (!f.tags.n && !f.name)) {
		rc = cli_usage("invalidate",
			       optind < argc ? "unexpected argument" : "give at least one --tag or --name");
		goto out;
	}
	if (cli_open_store(cli, &st) < 0 || store_list(st, &f, collect, &hashes) < 0 ||
	    (hashes.n && store_remove_many(st, &hashes) < 0)) {
		rc = cli_fail(1);
		goto out;
	}
	printf("invalidated %zu run%s\n", hashes.n, hashes.n == 1 ? "" : "s");
	rc = 0;
out:
	store_close(st);
	sv_release(&f.tags);
	sv_release(&hashes);
	return rc;
}
