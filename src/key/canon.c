/* canon: language detection and dispatch to the tokenizers (canon-python.c,
 * canon-sh.c). Detection errs towards raw: a script we cannot be sure about
 * is fingerprinted byte for byte. */
#include "key/canon.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

void canon_lines_add(struct canon_lines *cl, uint32_t line)
{
	if (cl->n == cl->alloc) {
		cl->alloc = cl->alloc ? cl->alloc * 2 : 64;
		cl->v = xrealloc(cl->v, cl->alloc * sizeof(*cl->v));
	}
	cl->v[cl->n++] = line;
}

void canon_emit(struct strbuf *out, struct canon_lines *map, uint32_t *out_src, const char *d, size_t n,
		uint32_t src_line)
{
	if (map) {
		for (size_t i = 0; i < n; i++) {
			if (!*out_src)
				*out_src = src_line;
			if (d[i] == '\n') {
				canon_lines_add(map, *out_src);
				*out_src = 0;
				src_line++;
			}
		}
	}
	sb_add(out, d, n);
}

void canon_lines_release(struct canon_lines *cl)
{
	free(cl->v);
	cl->v = NULL;
	cl->n = cl->alloc = 0;
}

const char *canon_lang_name(enum canon_lang lang)
{
	switch (lang) {
	case CANON_PYTHON:
		return "python";
	case CANON_SH:
		return "sh";
	case CANON_RAW:
		break;
	}
	return "raw";
}

static int word_is(const char *w, size_t n, const char *lit)
{
	return strlen(lit) == n && memcmp(w, lit, n) == 0;
}

/* Interpreter basename -> language. python2 is left raw: its tokenizer is
 * close to ours but not the same (ur"" prefixes, no f-strings). zsh and ksh
 * differ from sh in quoting and globbing, so they stay raw too. */
static enum canon_lang lang_of_interp(const char *w, size_t n)
{
	if (word_is(w, n, "sh") || word_is(w, n, "bash") || word_is(w, n, "dash"))
		return CANON_SH;
	if (word_is(w, n, "python") || word_is(w, n, "python3") || word_is(w, n, "pypy3"))
		return CANON_PYTHON;
	if (n > 8 && memcmp(w, "python3.", 8) == 0) {
		for (size_t i = 8; i < n; i++)
			if (w[i] < '0' || w[i] > '9')
				return CANON_RAW;
		return CANON_PYTHON;
	}
	return CANON_RAW;
}

/* -1 when there is no "#!" line, else the language it names. */
static int lang_of_shebang(const char *data, size_t len)
{
	if (!data || len < 2 || data[0] != '#' || data[1] != '!')
		return -1;
	const char *end = memchr(data, '\n', len);
	if (!end)
		end = data + len;
	const char *p = data + 2;
	int after_env = 0;

	for (;;) {
		while (p < end && (*p == ' ' || *p == '\t' || *p == '\r'))
			p++;
		if (p == end)
			return CANON_RAW;
		const char *w = p;
		while (p < end && *p != ' ' && *p != '\t' && *p != '\r')
			p++;
		size_t n = (size_t)(p - w);
		if (after_env) {
			/* env options (-S, -i) and VAR=value come before the program;
			 * an option taking an argument (-u NAME) makes the next word
			 * look like an interpreter we do not know: raw, which is safe. */
			if (w[0] == '-' || memchr(w, '=', n))
				continue;
		}
		const char *base = w;
		for (const char *q = w; q < w + n; q++)
			if (*q == '/')
				base = q + 1;
		size_t bn = (size_t)(w + n - base);
		if (!after_env && word_is(base, bn, "env")) {
			after_env = 1;
			continue;
		}
		return lang_of_interp(base, bn);
	}
}

static int lang_of_ext(const char *path)
{
	if (!path)
		return -1;
	const char *slash = strrchr(path, '/');
	const char *base = slash ? slash + 1 : path;
	const char *dot = strrchr(base, '.');
	if (!dot || dot == base)
		return -1;
	dot++;
	if (!strcmp(dot, "py") || !strcmp(dot, "pyw"))
		return CANON_PYTHON;
	if (!strcmp(dot, "sh") || !strcmp(dot, "bash"))
		return CANON_SH;
	if (!strcmp(dot, "zsh") || !strcmp(dot, "ksh"))
		return CANON_RAW;
	return -1;
}

int canon_is_code_name(const char *path)
{
	static const char *const raw[] = { "pl", "pm", "rb", "js", "mjs", "cjs", "R", "r", NULL };
	if (lang_of_ext(path) >= 0)
		return 1;
	const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	const char *dot = strrchr(base, '.');
	for (const char *const *e = raw; dot && dot != base && *e; e++)
		if (!strcmp(dot + 1, *e))
			return 1;
	return 0;
}

enum canon_lang canon_detect(const char *path, const char *data, size_t len)
{
	return canon_detect_run(path, data, len, -1);
}

enum canon_lang canon_detect_run(const char *path, const char *data, size_t len, int runner)
{
	int by_ext = lang_of_ext(path);
	int by_bang = lang_of_shebang(data, len);
	int lang = -1;
	const int said[] = { by_ext, by_bang, runner };

	/* every signal there is must agree: a file run by bash whose
	 * extension says Python could be read either way */
	for (size_t i = 0; i < sizeof(said) / sizeof(*said); i++) {
		if (said[i] < 0)
			continue;
		if (lang >= 0 && lang != said[i])
			return CANON_RAW;
		lang = said[i];
	}
	return lang < 0 ? CANON_RAW : (enum canon_lang)lang;
}

int canon_lang_of_exe(const char *exe)
{
	const char *slash = strrchr(exe, '/');
	const char *base = slash ? slash + 1 : exe;
	return lang_of_interp(base, strlen(base));
}

static void copy_raw(const char *src, size_t len, struct strbuf *out, struct canon_lines *lines)
{
	sb_add(out, src, len);
	if (!lines)
		return;
	uint32_t line = 1;
	int open = 0;
	for (size_t i = 0; i < len; i++) {
		open = 1;
		if (src[i] == '\n') {
			canon_lines_add(lines, line++);
			open = 0;
		}
	}
	if (open)
		canon_lines_add(lines, line);
}

int canon_source_lines(enum canon_lang lang, const char *src, size_t len, struct strbuf *out, struct strvec *deps,
		       struct canon_lines *lines)
{
	int ret = -1;

	switch (lang) {
	case CANON_PYTHON:
		ret = canon_python_lines(src, len, out, deps, lines);
		break;
	case CANON_SH:
		ret = canon_sh_lines(src, len, out, deps, lines);
		break;
	case CANON_RAW:
		copy_raw(src, len, out, lines);
		return 0;
	}
	if (ret == 0)
		return 0;
	/* The tokenizer left everything as it was; hash what is there. */
	copy_raw(src, len, out, lines);
	return 1;
}

int canon_source(enum canon_lang lang, const char *src, size_t len, struct strbuf *out, struct strvec *deps)
{
	return canon_source_lines(lang, src, len, out, deps, NULL);
}

void canon_out_start(struct canon_out *o, struct strbuf *out, struct canon_lines *map)
{
	o->out = out;
	o->map = map;
	o->out_src = 0;
	o->keep = o->line_out = out->len;
}

void canon_out_end(struct canon_out *o)
{
	if (o->out_src && o->map)
		canon_lines_add(o->map, o->out_src);
}

void canon_put(struct canon_out *o, const char *d, size_t n, uint32_t src_line)
{
	canon_emit(o->out, o->map, &o->out_src, d, n, src_line);
}

void canon_put_nl(struct canon_out *o, uint32_t src_line)
{
	canon_put(o, "\n", 1, src_line);
	o->keep = o->line_out = o->out->len;
}

void canon_trim(struct canon_out *o, const char *blanks)
{
	size_t floor = o->keep > o->line_out ? o->keep : o->line_out;
	size_t n = o->out->len;
	while (n > floor && strchr(blanks, o->out->buf[n - 1]) && o->out->buf[n - 1])
		n--;
	sb_setlen(o->out, n);
	if (n == o->line_out)
		o->out_src = 0;
}

/* Variables a shell sets itself (what the environment says of them does
 * not reach the script, or, PWD, is the working directory, hashed apart),
 * those a job's executor sets on the node (Slurm's: a key computed before
 * the job is submitted cannot hold them) or cashet itself, and PATH, which
 * scripts extend everywhere and which matters by what it selects: the
 * executables a run starts are hashed (argv[0], and every one observed). */
static int not_from_env(const char *name, size_t n)
{
	static const char *const own[] = { "RANDOM",  "SECONDS",  "LINENO",     "PPID",     "UID",
					   "EUID",    "IFS",      "OPTIND",     "OPTARG",   "REPLY",
					   "BASHPID", "FUNCNAME", "PIPESTATUS", "HOSTNAME", "PWD",
					   "OLDPWD",  "SHLVL",    "_",          "PATH",     NULL };
	for (const char *const *o = own; *o; o++)
		if (strlen(*o) == n && !memcmp(*o, name, n))
			return 1;
	return (n >= 4 && !memcmp(name, "BASH", 4)) || (n >= 6 && !memcmp(name, "SLURM_", 6)) ||
	       (n >= 7 && !memcmp(name, "CASHET_", 7));
}

int canon_env_ambient(const char *name)
{
	static const char *const session[] = {
		"HOME",    "USER",   "LOGNAME", "SHELL", "TERM", "COLORTERM", "TERMINFO",
		"COLUMNS", "LINES",  "TMPDIR",  "TMP",   "TEMP", "DISPLAY",   "WAYLAND_DISPLAY",
		"EDITOR",  "VISUAL", "PAGER",   "LANG",  "TZ",   NULL
	};
	static const char *const prefixes[] = { "XDG_", "SSH_", "DBUS_", "LC_", NULL };
	size_t n = strlen(name);
	if (not_from_env(name, n))
		return 1;
	for (const char *const *o = session; *o; o++)
		if (!strcmp(*o, name))
			return 1;
	for (const char *const *o = prefixes; *o; o++)
		if (!strncmp(*o, name, strlen(*o)))
			return 1;
	return 0;
}

static size_t name_len(const char *s, const char *end)
{
	size_t n = 0;
	if (s < end && (isalpha((unsigned char)*s) || *s == '_'))
		while (s + n < end && (isalnum((unsigned char)s[n]) || s[n] == '_'))
			n++;
	return n;
}

static int has_lower(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (islower((unsigned char)s[i]))
			return 1;
	return 0;
}

static int name_in(const struct strvec *names, const char *s, size_t n)
{
	for (size_t i = 0; i < names->n; i++)
		if (strlen(names->v[i]) == n && !memcmp(names->v[i], s, n))
			return 1;
	return 0;
}

static void push_name(struct strvec *names, const char *s, size_t n)
{
	if (!name_in(names, s, n))
		sv_push_nocopy(names, xstrndup(s, n));
}

/* How a language names a variable: the text before the name, and
 * whether a quote must come first (QUOTED), may (MAYBE), or the name
 * follows bare (BARE). */
enum quoting { BARE, QUOTED, MAYBE };
struct env_call {
	const char *text;
	enum quoting q;
};

/* a script in a language cashet does not tokenize (its comments count
 * too): Node's process.env.X and ["X"], Ruby's ENV["X"] and fetch,
 * Perl's $ENV{X}, R's Sys.getenv("X"), C's and PHP's getenv("X") */
static const struct env_call raw_calls[] = {
	{ "process.env.", BARE }, { "process.env[", QUOTED }, { "ENV[", QUOTED }, { "ENV.fetch(", QUOTED },
	{ "$ENV{", MAYBE },       { "getenv(", QUOTED },      { NULL, BARE }
};

static void scan_calls(const char *s, const char *end, const struct env_call *calls, struct strvec *names)
{
	for (const struct env_call *c = calls; c->text; c++) {
		size_t cl = strlen(c->text);
		for (const char *p = s; (p = memmem(p, (size_t)(end - p), c->text, cl)); p += cl) {
			const char *q = p + cl;
			while (c->q != BARE && q < end && (*q == ' ' || *q == '\t'))
				q++;
			char quote = q < end && (*q == '"' || *q == '\'') ? *q : 0;
			if ((c->q == QUOTED && !quote) || (c->q == BARE && quote))
				continue;
			const char *name = quote ? q + 1 : q;
			size_t n = name_len(name, end);
			if (n && (!quote || (name + n < end && name[n] == quote)))
				push_name(names, name, n);
		}
	}
}

static void sh_ref(struct strvec *names, const struct strvec *locals, const char *q, size_t n)
{
	if (n && !not_from_env(q, n) && !name_in(locals, q, n))
		push_name(names, q, n);
}

/* Every identifier in an arithmetic text (an index, $((...)), let):
 * there a bare name is a variable. Numbers (0x1f, 16#ff) are skipped. */
static void arith_refs(const char *p, const char *e, struct strvec *names, const struct strvec *locals)
{
	while (p < e) {
		if (isdigit((unsigned char)*p)) {
			while (p < e && (isalnum((unsigned char)*p) || *p == '#' || *p == '_'))
				p++;
			continue;
		}
		size_t n = name_len(p, e);
		if (n) {
			sh_ref(names, locals, p, n);
			p += n;
		} else {
			p++;
		}
	}
}

static const char *end_of_command(const char *p, const char *end)
{
	while (p < end && !strchr(";\n&|)", *p))
		p++;
	return p;
}

static int word_at(const char *p, const char *end, const char *w)
{
	size_t n = strlen(w);
	return (size_t)(end - p) >= n && !memcmp(p, w, n) && (p + n == end || strchr(" \t\n;&|)<>", p[n]));
}

/* A command at p that reads variables by name, not with $: printenv,
 * env, let, declare -i / -p, typeset, [[ -v N ]], test -v. */
static void command_refs(const char *p, const char *end, struct strvec *names, const struct strvec *locals)
{
	const char *e = end_of_command(p, end);
	int printenv = word_at(p, e, "printenv"), env = word_at(p, e, "env");
	if (printenv || env) {
		/* names as words; none at all dumps the whole environment (an
		 * env with arguments runs a command) */
		const char *q = p + (printenv ? 8 : 3);
		int args = 0;
		while (q < e) {
			while (q < e && (*q == ' ' || *q == '\t'))
				q++;
			if (q >= e || *q == '>' || *q == '<' ||
			    (isdigit((unsigned char)*q) && q + 1 < e && q[1] == '>'))
				break;
			const char *w = q;
			while (q < e && !strchr(" \t", *q))
				q++;
			size_t n = name_len(w, q);
			args = 1;
			if (strpbrk(w, "$`(\"'") && (size_t)(strpbrk(w, "$`(\"'") - w) < (size_t)(q - w))
				break; /* a word built at run time: what follows is its own */
			if (printenv && n == (size_t)(q - w))
				sh_ref(names, locals, w, n);
		}
		if (!args)
			push_name(names, "*", 1);
		return;
	}
	if (word_at(p, e, "let")) {
		arith_refs(p + 3, e, names, locals);
		return;
	}
	if (word_at(p, e, "declare") || word_at(p, e, "typeset") || word_at(p, e, "local")) {
		int arith = 0, print = 0;
		for (const char *q = p; q < e;) {
			while (q < e && (*q == ' ' || *q == '\t'))
				q++;
			const char *w = q;
			while (q < e && !strchr(" \t", *q))
				q++;
			if (*w == '-') {
				arith |= memchr(w, 'i', (size_t)(q - w)) != NULL;
				print |= memchr(w, 'p', (size_t)(q - w)) != NULL;
				continue;
			}
			const char *eq = memchr(w, '=', (size_t)(q - w));
			if (arith && eq)
				arith_refs(eq + 1, q, names, locals);
			size_t n = name_len(w, q);
			if (print && n == (size_t)(q - w))
				sh_ref(names, locals, w, n);
		}
	}
}

/* $NAME and ${NAME...} in shell code, and the names it reads otherwise:
 * ${#N}, ${!N}, ${a[N]}, arithmetic, [[ -v N ]], printenv N, ~ (HOME). ${!P_*}
 * and a bare env or printenv read many at once: the pattern ("P_*",
 * "*") is pushed, as -e takes one. */
static void sh_refs(const char *s, const char *end, struct strvec *names)
{
	/* a lower-case name the code assigns ("lr=0.1", "for f in")
	 * before it reads it is the script's own variable: from the end
	 * of that command on, its reads are not the environment's (an
	 * upper-case one is hashed all the same: the assignment may be
	 * conditional, and such names are the environment's by custom) */
	struct strvec locals = STRVEC_INIT, pending = STRVEC_INIT;
	int word_start = 1;
	for (const char *p = s; p < end; p++) {
		if (*p == ';' || *p == '\n' || *p == '&' || *p == '|') {
			for (size_t i = 0; i < pending.n; i++)
				sv_push(&locals, pending.v[i]);
			sv_release(&pending);
		}
		if (word_start && *p != '$') {
			const char *w = end - p > 4 && !memcmp(p, "for ", 4) ? p + 4 : p;
			while (w < end && *w == ' ')
				w++;
			size_t n = name_len(w, end);
			if (n && has_lower(w, n) && (w != p || (w + n < end && w[n] == '=')) && !name_in(names, w, n))
				sv_push_nocopy(&pending, xstrndup(w, n));
			command_refs(p, end, names, &locals);
		}
		if (word_start && end - p > 4 && !memcmp(p, "-v ", 3)) {
			/* [[ -v N ]], test -v N: the word after it is a name */
			const char *b = p;
			while (b > s && (b[-1] == ' ' || b[-1] == '\t'))
				b--;
			if ((b - s >= 2 && !memcmp(b - 2, "[[", 2)) || (b - s >= 1 && (b[-1] == '[' || b[-1] == '!')) ||
			    (b - s >= 4 && !memcmp(b - 4, "test", 4)))
				sh_ref(names, &locals, p + 3, name_len(p + 3, end));
		}
		if (*p == '~' && (word_start || (p > s && (p[-1] == '=' || p[-1] == ':'))) &&
		    (p + 1 == end || strchr("/ \t\n;&|)", p[1])))
			sh_ref(names, &locals, "HOME", 4); /* ~ and ~/x (an assignment's =~, :~ too) are $HOME */
		if (*p == '(' && end - p > 1 && p[1] == '(') {
			/* ((...)) and $((...)): arithmetic up to the "))" */
			const char *e = p + 2;
			while (e + 1 < end && !(e[0] == ')' && e[1] == ')') && *e != '\n')
				e++;
			arith_refs(p + 2, e, names, &locals);
		}
		word_start = strchr(" \t\n;&|({", *p) != NULL;
		if (*p != '$')
			continue;
		const char *q = p + 1 < end && p[1] == '{' ? p + 2 : p + 1;
		if (q == p + 2 && q + 1 < end && (*q == '#' || *q == '!') && name_len(q + 1, end))
			q++; /* ${#N}: its length; ${!N}: N holds the name read */
		size_t n = name_len(q, end);
		if (q[-1] == '!' && q + n + 1 < end && (q[n] == '*' || q[n] == '@') && q[n + 1] == '}') {
			/* ${!P_*}: every variable named so */
			char *pat = xstrndup(q, n + 1);
			pat[n] = '*';
			if (!name_in(names, pat, n + 1))
				sv_push_nocopy(names, pat);
			else
				free(pat);
			continue;
		}
		sh_ref(names, &locals, q, n);
		if (q != p + 1 && q + n < end && q[n] == '[') {
			/* ${a[N]}: an index is arithmetic */
			const char *e = memchr(q + n, ']', (size_t)(end - q - n));
			if (e)
				arith_refs(q + n + 1, e, names, &locals);
		}
	}
	sv_release(&locals);
	sv_release(&pending);
}

void canon_env_refs(enum canon_lang lang, const char *s, size_t len, struct strvec *names)
{
	const char *end = s + len;
	switch (lang) {
	case CANON_SH:
		sh_refs(s, end, names);
		break;
	case CANON_PYTHON:
		canon_python_env_refs(s, len, names);
		break;
	case CANON_RAW:
		/* a zsh or ksh script, or one whose language is not known, may
		 * be shell: its $NAME count too (in another language they are
		 * rarely the name of a variable that is set) */
		scan_calls(s, end, raw_calls, names);
		sh_refs(s, end, names);
		break;
	}
}
