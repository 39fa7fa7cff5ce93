/* cashet export FILE [--name NAME] [--tag K=V|K]... [HASH...]: write runs to
 * an archive another store can import (see store-xfer.c for the format).
 * Filters select like `cashet log`; HASH arguments narrow to those runs. */
#include "cli/cli.h"

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

#define OPTS struct log_filter
static const struct opt export_rows[] = {
	OPT_STRING("name", 0, name, "NAME", "only the runs named NAME"),
	OPT_LIST("tag", 't', tags, "K=V|K", "only the runs with this tag (repeatable: with all of them)"),
	OPT_END,
};

const struct opt_table cmd_export_options = {
	OPT_ROWS(export_rows),
	.help = "Writes the runs that match every filter (all runs by default; with HASH\n"
		"arguments only those) to the archive FILE, for 'cashet import'.\n",
};
#undef OPTS

int cmd_export(struct cli *cli, void *opts, int argc, char **argv)
{
	const struct log_filter *f = opts;
	struct strvec matched = STRVEC_INIT, picked = STRVEC_INIT;
	const char *file = argv[0];
	uint64_t size = 0;
	char sz[32];
	int rc = 1;
	if (store_list(cli->st, f, collect, &matched) < 0) {
		rc = cli_fail(1);
		goto out;
	}
	for (int i = 1; i < argc; i++) {
		char hash[OID_HEX];
		if (store_resolve(cli->st, argv[i], hash) < 0) {
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
	/* no HASH: every match, oldest first, so the archive lists runs in the order they were made */
	for (size_t i = matched.n; argc == 1 && i-- > 0;)
		sv_push(&picked, matched.v[i]);
	if (!picked.n) {
		rc = cli_error(1, "no runs to export%s", f->name || f->tags.n ? " (none matches the filters)" : "");
		goto out;
	}
	if (store_export(cli->st, &picked, file, &size) < 0) {
		rc = cli_fail(1);
		goto out;
	}
	fmt_size(size, sz, sizeof(sz));
	printf("exported %zu run%s (%s) to %s\n", picked.n, picked.n == 1 ? "" : "s", sz, file);
	rc = 0;
out:
	sv_release(&matched);
	sv_release(&picked);
	return rc;
}
