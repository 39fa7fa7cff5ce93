/* gitmod loader: finds a module (cashet-git.so, cashet-serve.so) next to
 * the binary (the build tree), then in the install directory, and
 * dlopen()s it on first use. */
#include "store/gitmod.h"

#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
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

void *module_open(const char *file, const char *env, struct strbuf *errs)
{
	struct strbuf path = STRBUF_INIT;
	void *h = NULL;
	const char *override = env ? getenv(env) : NULL;
	if (override && *override) {
		h = try_open(override, errs);
	} else {
		char exe[PATH_MAX];
		ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
		if (n > 0) {
			exe[n] = '\0';
			char *slash = strrchr(exe, '/');
			if (slash) {
				sb_add(&path, exe, (size_t)(slash - exe));
				sb_addf(&path, "/%s", file);
				if (access(path.buf, R_OK) == 0)
					h = try_open(path.buf, errs);
			}
		}
		if (!h) {
			sb_reset(&path);
			sb_addf(&path, "%s/%s", CASHET_LIBDIR, file);
			h = try_open(path.buf, errs);
		}
	}
	sb_release(&path);
	return h;
}

const struct gitmod *gitmod_get(void)
{
	/* once, whichever thread asks first: the early packing thread
	 * (exec/early.c) may while the engine's does */
	static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
	const struct gitmod *g = __atomic_load_n(&loaded, __ATOMIC_ACQUIRE);
	if (g)
		return g;
	pthread_mutex_lock(&mu);
	struct strbuf errs = STRBUF_INIT;
	void *h = loaded ? NULL : module_open("cashet-git.so", "CASHET_GIT_MODULE", &errs);
	if (h) {
		const struct gitmod *(*entry)(void) = (const struct gitmod *(*)(void))dlsym(h, "cashet_gitmod");
		if (entry && entry()->abi == GITMOD_ABI)
			__atomic_store_n(&loaded, entry(), __ATOMIC_RELEASE);
		else
			sb_addf(&errs, "%scashet-git.so has the wrong version", errs.len ? "; " : "");
	}
	g = loaded;
	pthread_mutex_unlock(&mu);
	if (!g)
		err_set("cannot load the git module: %s", sb_str(&errs));
	sb_release(&errs);
	return g;
}
