/* cashet stats: how big the store is and what it holds. */
#include "cli/cli.h"
#include "cli/runjson.h"

int cmd_stats(struct cli *cli, void *opts, int argc, char **argv)
{
	const struct json_opts *o = opts;
	struct store_stats s;
	if (store_stats(cli->st, &s) < 0)
		return cli_fail(1);
	if (o->json) {
		struct strbuf sb = STRBUF_INIT;
		runjson_stats(&sb, store_dir(cli->st), &s);
		puts(sb.buf);
		sb_release(&sb);
		return 0;
	}
	char a[32], b[32], c[32];
	fmt_size((uint64_t)s.object_bytes, a, sizeof(a));
	fmt_size((uint64_t)s.index_bytes, b, sizeof(b));
	fmt_size((uint64_t)s.stored_bytes, c, sizeof(c));
	printf("store         %s\n", store_dir(cli->st));
	printf("runs          %lld\n", (long long)s.runs);
	printf("completed     %lld\n", (long long)s.ok);
	printf("failed        %lld\n", (long long)s.failed);
	printf("objects       %lld (%s on disk)\n", (long long)s.objects, a);
	printf("index         %s\n", b);
	printf("captured      %s\n", c);
	return 0;
}
