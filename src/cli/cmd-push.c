/* cashet push [REMOTE] [--tag K=V|K]... [--name NAME] [--since DURATION]:
 * send runs (all, or those matching the filters) to a git remote. */
#include "cli/cli.h"

#include <getopt.h>
#include <string.h>

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

int cmd_push(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "tag", required_argument, NULL, 't' },
		{ "name", required_argument, NULL, 'N' },
		{ "since", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct log_filter f = { 0 };
	struct pick p = { STRVEC_INIT, 0 };
	struct store *st = NULL;
	struct strvec skipped = STRVEC_INIT;
	int64_t ms;
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
		case 's':
			if (parse_duration_ms(optarg, &ms) < 0) {
				rc = cli_usage("push", "--since: %s", err_msg());
				goto out;
			}
			p.since = now_ms() - ms;
			break;
		case 'h':
			puts("usage: cashet push [REMOTE] [--tag K=V|K]... [--name NAME] [--since DURATION]\n"
			     "  sends runs (default: all) to REMOTE (default: origin)");
			rc = 0;
			goto out;
		case ':':
			rc = cli_usage("push", "option '%s' needs a value", argv[optind - 1]);
			goto out;
		default:
			rc = cli_usage("push", "unknown option '%s'", argv[optind - 1]);
			goto out;
		}
	}
	if (argc - optind > 1) {
		rc = cli_usage("push", "unexpected argument '%s'", argv[optind + 1]);
		goto out;
	}
	const char *remote = optind < argc ? argv[optind] : "origin";
	if (cli_open_store(cli, &st) < 0 || store_list(st, &f, pick, &p) < 0 ||
	    store_push(st, remote, &p.hashes, &skipped) < 0) {
		rc = cli_fail(1);
		goto out;
	}
	for (size_t i = 0; i < skipped.n; i++)
		fprintf(stderr, "cashet: warning: %s\n", skipped.v[i]);
	size_t pushed = p.hashes.n - skipped.n;
	printf("pushed %zu run%s to %s\n", pushed, pushed == 1 ? "" : "s", remote);
	rc = 0;
out:
	store_close(st);
	sv_release(&f.tags);
	sv_release(&p.hashes);
	sv_release(&skipped);
	return rc;
}
