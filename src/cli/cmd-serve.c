/* cashet serve: loads cashet-serve.so (next to the binary, as in the build
 * tree, else from the install directory) and hands it the command line.
 * The server and everything it links live there; see src/serve/serve.h. */
#include "cli/cli.h"
#include "store/gitmod.h"
#include "serve/serve.h"

#include <dlfcn.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>

int cmd_serve(struct cli *cli, int argc, char **argv)
{
	struct strbuf errs = STRBUF_INIT;
	void *h = module_open("cashet-serve.so", NULL, &errs);
	int (*entry)(struct cli *, int, char **) = NULL;
	if (h)
		*(void **)&entry = dlsym(h, SERVE_ENTRY);
	if (!entry) {
		int rc = cli_error(1, "cannot load the serve module: %s",
				   h ? "cashet-serve.so has the wrong version" : errs.buf);
		sb_release(&errs);
		return rc;
	}
	sb_release(&errs);
	/* the module stays loaded: the server runs until the process ends */
	return entry(cli, argc, argv);
}
