/* fixture: a fresh temporary directory and a store in it, for the unit
 * tests that need one. The store loads cashet-git.so as the binary does:
 * $CASHET_GIT_MODULE if set, else the module of this build tree, whose
 * path the Makefile compiles in (the test binaries export the core's
 * symbols with -rdynamic for it). Included by one test file each. */
#ifndef CASHET_TEST_FIXTURE_H
#define CASHET_TEST_FIXTURE_H

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "store/store.h"
#include "util/util.h"

#ifndef CASHET_TEST_GIT_MODULE
#define CASHET_TEST_GIT_MODULE "cashet-git.so"
#endif

struct fixture {
	char *dir;           /* the project root: a temporary directory */
	struct strbuf store; /* dir/.cashet */
	struct store *st;
};

/* mkdtemp + a new store; NULL on failure (cmocka reports a failed setup). */
static inline struct fixture *fixture_new(void)
{
	struct fixture *fx = xcalloc(1, sizeof(*fx));
	int created = 0;
	setenv("CASHET_GIT_MODULE", CASHET_TEST_GIT_MODULE, 0);
	fx->dir = xstrdup("/tmp/cashet-test.XXXXXX");
	if (!mkdtemp(fx->dir)) {
		err_sys("cannot create %s", fx->dir);
		goto fail;
	}
	sb_addf(&fx->store, "%s/" STORE_DIRNAME, fx->dir);
	if (store_open(fx->store.buf, STORE_CREATE, &fx->st, &created) < 0 || !created) {
		rm_rf(fx->dir);
		goto fail;
	}
	return fx;
fail:
	print_error("fixture: %s\n", err_msg());
	free(fx->dir);
	sb_release(&fx->store);
	free(fx);
	return NULL;
}

static inline void fixture_free(struct fixture *fx)
{
	if (!fx)
		return;
	store_close(fx->st);
	rm_rf(fx->dir);
	free(fx->dir);
	sb_release(&fx->store);
	free(fx);
}

static inline int fixture_setup(void **state)
{
	*state = fixture_new();
	return *state ? 0 : -1;
}

static inline int fixture_teardown(void **state)
{
	fixture_free(*state);
	return 0;
}

/* Writes dir/rel (parents made) with content; returns the absolute path (caller frees). */
static inline char *fixture_write(const struct fixture *fx, const char *rel, const char *content, unsigned mode)
{
	struct strbuf p = STRBUF_INIT;
	sb_addf(&p, "%s/%s", fx->dir, rel);
	char *slash = strrchr(p.buf, '/');
	*slash = '\0';
	if (mkdirs(p.buf, 0755) < 0)
		fail_msg("%s", err_msg());
	*slash = '/';
	if (write_file_atomic(p.buf, content, strlen(content), mode) < 0)
		fail_msg("%s", err_msg());
	return sb_detach(&p);
}

/* store_lookup with the options spelled as arguments (any candidate). */
static inline int fixture_lookup(struct fixture *fx, const struct digest *fp, int allow_failed, int64_t min_created,
				 int64_t now, struct run_record *r)
{
	struct store_lookup_opts o = { .allow_failed = allow_failed, .min_created = min_created, .now = now };
	return store_lookup(fx->st, fp, &o, r);
}

#endif
