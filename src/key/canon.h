/* canon: canonical form of script sources, so that cosmetic edits (comments,
 * blank lines, trailing blanks) keep the fingerprint while any real change
 * alters it. Real tokenizers find what is cosmetic; everything else is
 * copied byte for byte. When a tokenizer is unsure it fails and the caller
 * hashes the raw bytes: a spurious miss is cheap, a spurious hit is not. */
#ifndef CASHET_CANON_H
#define CASHET_CANON_H

#include <stddef.h>
#include <stdint.h>

#include "util/util.h"

enum canon_lang { CANON_RAW, CANON_PYTHON, CANON_SH };

/* Where each canonical line came from, for "explain": v[i] is the 1-based
 * source line on which output line i+1 starts. A zeroed struct is empty. */
struct canon_lines {
	uint32_t *v;
	size_t n;
	size_t alloc;
};
#define CANON_LINES_INIT                                                                                               \
	{                                                                                                              \
		NULL, 0, 0                                                                                             \
	}
void canon_lines_add(struct canon_lines *cl, uint32_t line);
void canon_lines_release(struct canon_lines *cl);
/* For the tokenizers: appends n bytes to out and, with a map, records for
 * each completed output line the source line it started on (*out_src
 * carries a started line across calls; 0 when none is open). */
void canon_emit(struct strbuf *out, struct canon_lines *map, uint32_t *out_src, const char *d, size_t n,
		uint32_t src_line);

/* The output side the tokenizers share: the canonical text, its line map,
 * and how far back trailing blanks may be trimmed. */
struct canon_out {
	struct strbuf *out;
	struct canon_lines *map;
	uint32_t out_src; /* source line of the open output line, 0: none */
	size_t keep;      /* trailing-blank trimming stops here */
	size_t line_out;  /* where the current output line starts */
};
/* Starts writing after what out already holds (which is never trimmed);
 * canon_out_end records the last open line in the map. */
void canon_out_start(struct canon_out *o, struct strbuf *out, struct canon_lines *map);
void canon_out_end(struct canon_out *o);
void canon_put(struct canon_out *o, const char *d, size_t n, uint32_t src_line);
void canon_put_nl(struct canon_out *o, uint32_t src_line);
/* Drops the characters of blanks written since the last token. */
void canon_trim(struct canon_out *o, const char *blanks);

/* By extension (.py/.pyw: Python; .sh/.bash: sh; .zsh/.ksh and the rest:
 * raw) and by the "#!" line (env and its options are looked through). When
 * both speak and disagree the file is raw: which interpreter runs it depends
 * on how it is called. path and data may be NULL. */
enum canon_lang canon_detect(const char *path, const char *data, size_t len);
/* Whether a file's extension says it is code of a language whose
 * environment reads canon_env_refs knows: those above, and Perl, Ruby,
 * Node (.js, .mjs, .cjs) and R. */
int canon_is_code_name(const char *path);
/* canon_detect with what runs the file as one more witness: runner is the
 * language of the interpreter given the file (bash build, python3 tool) or
 * of the script that sources it, -1 when not known. A file with neither
 * an extension nor a "#!" line is in the runner's language; when the
 * witnesses disagree the file is raw. */
enum canon_lang canon_detect_run(const char *path, const char *data, size_t len, int runner);
/* The language of an interpreter by its path's basename (sh, bash, dash:
 * sh; python, python3, python3.N, pypy3: Python; anything else: raw). */
int canon_lang_of_exe(const char *exe);
const char *canon_lang_name(enum canon_lang lang);

/* All canon functions append to out and push to the vector (either may
 * already hold data; the vector may be NULL). On failure they return -1 with
 * err_set() and leave out, the vector and lines as they found them. */

/* Python 3: imports gets every module an import statement may load ("a.b",
 * "x.y" and "x.y.z" for "from x.y import z", ".z" and "." for relative ones). */
int canon_python(const char *src, size_t len, struct strbuf *out, struct strvec *imports);
/* POSIX sh / bash: sources gets the literal paths of "source F" and ". F". */
int canon_sh(const char *src, size_t len, struct strbuf *out, struct strvec *sources);

/* The environment variables code of lang names literally (sh "$NAME",
 * "${NAME...}"; Python os.environ["NAME"], .get, .setdefault, .pop,
 * os.getenv("NAME"); for CANON_RAW, the forms of Node, Ruby, Perl, R and
 * C: process.env.NAME, ENV["NAME"], $ENV{NAME}, getenv("NAME")), each
 * pushed once: what a script reads of its environment, to be hashed with
 * it. One computed at run time is not seen. */
void canon_env_refs(enum canon_lang lang, const char *src, size_t len, struct strvec *names);
/* The Python part of it, on tokens: blanks, line breaks and comments
 * between them do not matter (os.environ.get(\n"X")). */
void canon_python_env_refs(const char *src, size_t len, struct strvec *names);
/* Whether a variable a program reads with getenv (traced, not named in a
 * source) is left out of the key: those a shell sets itself, PATH and
 * CASHET_* (as canon_env_refs leaves them out), and the session's own,
 * which programs read for their housekeeping: where the user's files are
 * (what is read there is traced as a file), the terminal, the temporary
 * directory, the display, XDG_*, SSH_*; LANG, LC_* and TZ are in every key
 * already. */
int canon_env_ambient(const char *name);

/* Dispatch on lang. CANON_RAW copies the bytes. If the tokenizer fails the
 * raw bytes are copied instead and 1 is returned, so callers that mix the
 * output with other data can tell the two kinds apart. Never fails. */
int canon_source(enum canon_lang lang, const char *src, size_t len, struct strbuf *out, struct strvec *deps);

/* The same three, also filling lines (may be NULL) for every output line. */
int canon_python_lines(const char *src, size_t len, struct strbuf *out, struct strvec *imports,
		       struct canon_lines *lines);
int canon_sh_lines(const char *src, size_t len, struct strbuf *out, struct strvec *sources, struct canon_lines *lines);
int canon_source_lines(enum canon_lang lang, const char *src, size_t len, struct strbuf *out, struct strvec *deps,
		       struct canon_lines *lines);

#endif
