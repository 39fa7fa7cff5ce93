/* fp: the fingerprint of a command: everything that can change its result.
 * Each ingredient becomes a named part (kind, name, XXH3-128 of content);
 * the fingerprint is the hash of the versioned, length-prefixed part list,
 * so `show` and `why` can say exactly which ingredient differs. */
#ifndef CASHET_FP_H
#define CASHET_FP_H

#include "store/store.h"

/* Bump when the encoding or the set of hashed things changes, observed
 * inputs included: old runs then simply stop matching (a miss, never a
 * false hit from a run whose observed list lacks what is found now).
 * 2: variables named by the scripts a command starts (inline, by path, by
 * #!), by library modules outside the project and by project code read
 * some other way; every variable for a Python read of a name not written. */
#define FP_VERSION 2

/* Adds the part of environment variable name (its value, or unset), once. */
void fp_add_env(struct run_record *r, char *const *env, const char *name);
/* Whether r has a part of that kind and name. */
int fp_has_part(const struct run_record *r, const char *kind, const char *name);
/* The digest of that value (unset and empty differ). */
void fp_env_digest(char *const *env, const char *name, struct digest *d);

/* A regular file the command inherits as descriptor fd (above 2): read
 * through it (`cat <&5`) or through /dev/fd/N, its content matters as an
 * input's does. exec/fds.h finds them. */
struct fp_fd {
	int fd;
	char *path; /* where it is, as /proc/self/fd/N links to it; NULL: unknown */
};

struct fp_spec {
	char *const *argv;     /* NULL-terminated */
	const char *cwd;       /* absolute: where the command runs; relative paths are relative to it */
	char *const *env;      /* the command's environment, NULL-terminated */
	struct strvec inputs;  /* -i: files, directories, globs */
	struct strvec envs;    /* -e: names or patterns (CUDA_*) */
	struct strvec outputs; /* -o: declared outputs */
	int stdin_fd;          /* hashed from its current offset when >= 0 */
	/* Or its digest, taken elsewhere (stdin streamed to the command as it
	 * is hashed: exec/feed.h); NULL: none */
	const struct digest *stdin_digest;
	/* Inherited files besides stdin, by descriptor: each hashed from
	 * offset 0 with its offset (where a reader starts) */
	const struct fp_fd *fds;
	size_t nfds;
	struct strvec params; /* --param FILE:KEY */
	struct strvec deps;   /* --dep: more source files (canonicalized, followed) */
	int raw_sources;      /* --raw-sources: scripts hashed byte for byte */
	/* How the run's inputs are found (each a "setting" part: a run made one
	 * way never answers a request made another way). */
	int trace;                   /* observe what the command reads (key/observed.h) */
	int auto_outputs;            /* files it writes in the project are outputs */
	int env_strict;              /* env holds only the declared variables and a base set */
	const struct strvec *ignore; /* paths never taken as observed inputs */
};

/* Fills r->argv, r->cwd, r->parts, r->fp and r->line. */
int fp_compute(struct store *st, const struct fp_spec *spec, struct run_record *r);
/* Recomputes r->fp from r->parts: after a part's digest became known
 * later (a streamed stdin's, once it ended). */
void fp_seal(struct run_record *r);
/* The fallback where tracing is impossible: the sources the command's
 * script loads, found by reading it (imports, `source`), added to
 * r->inputs, so the run is checked against them as a traced run is
 * against what it read. */
int fp_script_inputs(struct store *st, const struct fp_spec *spec, struct run_record *r);

/* Resolves argv0 like execvp in cwd with env's PATH: PATH search unless it
 * has a slash. Returns 0 and the absolute path, or -1 if not found. */
int fp_which(const char *argv0, const char *cwd, char *const *env, struct strbuf *out);

/* A path as the store names it: relative to the store's root when inside
 * it (so two checkouts share keys), otherwise absolute. path is relative to
 * cwd (NULL: this process's directory). Lexical: "." and ".." are folded,
 * symlinks are not resolved. */
void fp_store_path(const struct store *st, const char *cwd, const char *path, struct strbuf *out);

/* A file's content digest d as its part has it: with the executable bit
 * folded in. */
void fp_mode_digest(struct digest *d, mode_t mode);

/* The value of name in env (NULL-terminated "NAME=VALUE" strings), or NULL. */
const char *fp_getenv(char *const *env, const char *name);

#endif
