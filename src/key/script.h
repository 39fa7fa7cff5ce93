/* script: finds the script a command runs (after an interpreter and its
 * options, or a shebang executable) and every local source it pulls in
 * (Python imports, shell `source`), and fingerprints each by its canonical
 * form, so a comment edit is a hit and a real change anywhere is a miss. */
#ifndef CASHET_SCRIPT_H
#define CASHET_SCRIPT_H

#include "store/store.h"
#include "trace/trace.h"

struct script_spec {
	char *const *argv;         /* the command */
	const char *cwd;           /* absolute: where it runs */
	char *const *env;          /* its environment */
	const char *exe;           /* argv[0] resolved, or NULL if not found */
	int raw;                   /* --raw-sources: hash bytes, still follow imports */
	const struct strvec *deps; /* --dep paths or globs */
	/* 0: the script and --dep files alone, not what they import: a traced
	 * run observes that itself (and a key of thousands of modules would
	 * stat each twice on every hit) */
	int follow;
};

struct script_found {
	int script_arg;    /* argv index of the script, -1 if none (or argv[0]) */
	int exe_is_script; /* argv[0] is a shebang script: its part replaces "exe" */
};

/* Adds parts "script" (the main script), "source" (local files it loads),
 * "dep" (--dep) and "interp" (a shebang's interpreter). */
int script_parts(struct store *st, const struct script_spec *spec, struct run_record *r, struct script_found *found);

/* The digest a source file gets as a part: its canonical form (raw bytes
 * with SCRIPT_RAW, or when its language is not known), through the stat
 * cache. env (may be NULL) gets the environment variables its code names. */
enum { SCRIPT_RAW = 1 };
int script_source_digest(struct store *st, const char *abs, const struct stat *sb, unsigned flags, struct digest *d,
			 struct strvec *env);

/* For the tracer: each program the command starts that is a shell or
 * Python, its inline code (`sh -c CODE`, `python3 -c CODE`) read for the
 * environment variables it names, as the command's own is. A shell that
 * a script starts expands `$NAME` without a getenv the preload library
 * would see. */
extern const struct trace_exec_hook script_exec_hook;

#endif
