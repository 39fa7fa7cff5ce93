/* serve module: `cashet serve`, built as cashet-serve.so with libmicrohttpd
 * and loaded with dlopen() by that command alone, so that no other command
 * (above all not a cache hit) pays for loading libmicrohttpd and the GnuTLS
 * libraries it pulls in. The module calls back into cashet (store, runjson,
 * cli helpers), which the binary exports. */
#ifndef CASHET_SERVE_H
#define CASHET_SERVE_H

#include "cli/cli.h"

/* The entry point; the version is in the name, so a stale module is
 * refused rather than called with the wrong arguments. */
#define SERVE_ENTRY "cashet_serve_v1"
int cashet_serve_v1(struct cli *cli, int argc, char **argv);

#endif
