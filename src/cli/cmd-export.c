/* cashet export FILE [--name NAME] [--tag K=V|K]... [HASH...]: write runs to
 * an archive another store can import (see store-xfer.c for the format).
 * Filters select like `cashet log`; HASH arguments narrow to those runs. */
#include "cli/cli.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

static int collect(const struct run_record *r, void *ctx)
{
	sv_push(ctx, r->hash);
	return 0;
}

static int has(const struct strvec *sv, const char *s)
{
	for (size_t i = 0; i < sv->n; i++)
		if (!strcmp(sv->v[i], s))
			return 1;
	return 0;
}

int cmd_export(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "name", required_argument, NULL, 'N' },
		{ "tag", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct log_filter f = { 0 };
	struct strvec matched = STRVEC_INIT, picked = STRVEC_INIT;
	struct store *st = NULL;
	const char *file;
	uint64_t size = 0;
	char sz[32];
	int c, rc = 1;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":t:h", opts, NULL)) != -1) {
		switch (c) {
		case 'N':
			f.name = optarg;
			break;
		case 't':
			sv_push(&f.tags, optarg);
			break;
		case 'h':
			puts("usage: cashet export FILE [--name NAME] [-t|--tag K=V|K]... [HASH...]\n"
			     "  writes the runs that match every filter (all runs by default; with HASH\n"
			     "  arguments only those) to the archive FILE, for 'cashet import'");
			rc = 0;
			goto out;
		default:
			rc = cli_usage("export", "unknown option or missing value: '%s'", argv[optind - 1]);
			goto out;
		}
	}
	if (optind >= argc) {
		rc = cli_usage("export", "no archive file given (usage: cashet export FILE [HASH...])");
		goto out;
	}
	file = argv[optind++];
	if (cli_open_store(cli, &st) < 0 || store_list(st, &f, collect, &matched) < 0) {
		rc = cli_fail(1);
		goto out;
	}
	if (optind < argc) {
		for (int i = optind; i < argc; i++) {
			char hash[OID_HEX];
			if (store_resolve(st, argv[i], hash) < 0) {
				rc = cli_fail(1);
				goto out;
			}
			if (!has(&matched, hash)) {
				rc = cli_error(1, "run %.12s does not match the --name/--tag filters", hash);
				goto out;
			}
			if (!has(&picked, hash))
				sv_push(&picked, hash);
		}
	} else {
		/* oldest first, so the archive lists runs in the order they were made */
		for (size_t i = matched.n; i-- > 0;)
			sv_push(&picked, matched.v[i]);
	}
	if (!picked.n) {
		rc = cli_error(1, "no runs to export%s", f.name || f.tags.n ? " (none matches the filters)" : "");
		goto out;
	}
	if (store_export(st, &picked, file, &size) < 0) {
		rc = cli_fail(1);
		goto out;
	}
	fmt_size(size, sz, sizeof(sz));
	printf("exported %zu run%s (%s) to %s\n", picked.n, picked.n == 1 ? "" : "s", sz, file);
	rc = 0;
out:
	store_close(st);
	sv_release(&f.tags);
	sv_release(&matched);
	sv_release(&picked);
	return rc;
}
