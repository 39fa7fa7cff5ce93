/* cashet stats: how big the store is and what it holds. */
#include "cli/cli.h"
#include "cli/runjson.h"

#include <string.h>

int cmd_stats(struct cli *cli, int argc, char **argv)
{
	struct store *st = NULL;
	struct store_stats s;
	int json = 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			json = 1;
		else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			puts("usage: cashet stats [--json]");
			return 0;
		} else
			return cli_usage("stats", "unexpected argument '%s'", argv[i]);
	}
	if (cli_open_store(cli, &st) < 0)
		return cli_fail(1);
	int rc = store_stats(st, &s);
	if (rc == 0 && json) {
		struct strbuf sb = STRBUF_INIT;
		runjson_stats(&sb, store_dir(st), &s);
		puts(sb.buf);
		sb_release(&sb);
	} else if (rc == 0) {
		char a[32], b[32], c[32];
		fmt_size((uint64_t)s.object_bytes, a, sizeof(a));
		fmt_size((uint64_t)s.index_bytes, b, sizeof(b));
		fmt_size((uint64_t)s.stored_bytes, c, sizeof(c));
		printf("store         %s\n", store_dir(st));
		printf("runs          %lld\n", (long long)s.runs);
		printf("completed     %lld\n", (long long)s.ok);
		printf("failed        %lld\n", (long long)s.failed);
		printf("objects       %lld (%s on disk)\n", (long long)s.objects, a);
		printf("index         %s\n", b);
		printf("captured      %s\n", c);
	}
	store_close(st);
	return rc < 0 ? cli_fail(1) : 0;
}
