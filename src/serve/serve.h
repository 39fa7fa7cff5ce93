/* serve module: `cashet serve`, built as cashet-serve.so with libmicrohttpd
 * and loaded with dlopen() by that command alone, so that no other command
 * (above all not a cache hit) pays for loading libmicrohttpd and the GnuTLS
 * libraries it pulls in. The module calls back into cashet (store, runjson,
 * cli helpers), which the binary exports. */
#ifndef CASHET_SERVE_H
#define CASHET_SERVE_H

#include "cli/cli.h"

#define SERVE_DEFAULT_LISTEN "127.0.0.1:8000"
#define SERVE_DEFAULT_MAX_BODY (1ULL << 30) /* 1G */

/* The command line, parsed by cmd-serve.c from its option table. */
struct serve_opts {
	const char *listen;     /* "ADDR:PORT", "[IPv6]:PORT" or ":PORT" */
	const char *token;      /* --token, or NULL */
	const char *token_file; /* --token-file (the later of the two wins), or NULL */
	uint64_t max_body;
	const char *pipeline; /* --pipeline FILE: POST /submit runs its steps */
	int allow_exec;       /* POST /submit runs commands too */
};

/* The entry point; the version is in the name, so a stale module is
 * refused rather than called with the wrong arguments. */
#define SERVE_ENTRY "cashet_serve_v2"
int cashet_serve_v2(struct cli *cli, const struct serve_opts *o);

#endif
