/* gitmod loader: finds cashet-git.so next to the binary (the build tree),
 * then in the install directory, and dlopen()s it on first use. */
#include "gitmod.h"

#include <dlfcn.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef CASHET_LIBDIR
#define CASHET_LIBDIR "/usr/local/lib/cashet"
#endif

static const struct gitmod *loaded;

static void *try_open(const char *path, struct strbuf *errs)
{
	void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!h)
		sb_addf(errs, "%s%s", errs->len ? "; " : "", dlerror());
	return h;
}

const struct gitmod *gitmod_get(void)
{
	if (loaded)
		return loaded;
	struct strbuf errs = STRBUF_INIT, path = STRBUF_INIT;
	void *h = NULL;
	const char *env = getenv("CASHET_GIT_MODULE");
	if (env && *env) {
		h = try_open(env, &errs);
	} else {
		char exe[PATH_MAX];
		ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
		if (n > 0) {
			exe[n] = '\0';
			char *slash = strrchr(exe, '/');
			if (slash) {
				sb_add(&path, exe, (size_t)(slash - exe));
				sb_adds(&path, "/cashet-git.so");
				if (access(path.buf, R_OK) == 0)
					h = try_open(path.buf, &errs);
			}
		}
		if (!h)
			h = try_open(CASHET_LIBDIR "/cashet-git.so", &errs);
	}
	if (h) {
		const struct gitmod *(*entry)(void) = (const struct gitmod *(*)(void))dlsym(h, "cashet_gitmod");
		if (entry && entry()->abi == GITMOD_ABI)
			loaded = entry();
		else
			sb_addf(&errs, "%scashet-git.so has the wrong version", errs.len ? "; " : "");
	}
	if (!loaded)
		err_set("cannot load the git module: %s", sb_str(&errs));
	sb_release(&errs);
	sb_release(&path);
	return loaded;
}
