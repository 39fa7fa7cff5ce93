/* cashet serve: loads cashet-serve.so (next to the binary, as in the build
 * tree, else from the install directory) and hands it the command line.
 * The server and everything it links live there; see src/serve/serve.h. */
#include "cli.h"
#include "serve/serve.h"

#include <dlfcn.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>

#ifndef CASHET_LIBDIR
#define CASHET_LIBDIR "/usr/local/lib/cashet"
#endif

static void *open_module(struct strbuf *errs)
{
	struct strbuf path = STRBUF_INIT;
	char exe[PATH_MAX];
	void *h = NULL;
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n > 0) {
		exe[n] = '\0';
		char *slash = strrchr(exe, '/');
		if (slash) {
			sb_add(&path, exe, (size_t)(slash - exe));
			sb_adds(&path, "/cashet-serve.so");
		}
	}
	if (path.len && access(path.buf, R_OK) == 0 && !(h = dlopen(path.buf, RTLD_NOW | RTLD_LOCAL)))
		sb_addf(errs, "%s; ", dlerror());
	if (!h && !(h = dlopen(CASHET_LIBDIR "/cashet-serve.so", RTLD_NOW | RTLD_LOCAL)))
		sb_adds(errs, dlerror());
	sb_release(&path);
	return h;
}

int cmd_serve(struct cli *cli, int argc, char **argv)
{
	struct strbuf errs = STRBUF_INIT;
	void *h = open_module(&errs);
	int (*entry)(struct cli *, int, char **) = NULL;
	if (h)
		*(void **)&entry = dlsym(h, SERVE_ENTRY);
	if (!entry) {
		int rc = cli_error(1, "cannot load the serve module: %s", h ? "cashet-serve.so has the wrong version"
									      : errs.buf);
		sb_release(&errs);
		return rc;
	}
	sb_release(&errs);
	/* the module stays loaded: the server runs until the process ends */
	return entry(cli, argc, argv);
}
