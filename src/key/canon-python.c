/* canon-python: canonical form of Python 3 source. A tokenizer that knows
 * every string form (prefixes, triple quotes, f-strings with nested fields),
 * brackets and continuations decides what is a comment, a blank line or a
 * trailing blank; those go, every other byte is copied as written, so
 * indentation and token text stay exactly as they were. Docstrings stay:
 * code anywhere, the standard library's included (unittest -v, cmd's help,
 * argparse), may print them. */
#include "key/canon.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_NEST 200         /* brackets, as CPython's MAXLEVEL */
#define MAX_INDENT 100       /* as CPython's MAXINDENT */
#define MAX_FSTRING_LEVEL 32 /* f-strings inside f-strings */

enum tok_type { T_NAME, T_NUMBER, T_STRING, T_OP };

#define S_RAW 1u
#define S_BYTES 2u
#define S_FMT 4u /* f-string or t-string: has replacement fields */

struct tok {
	enum tok_type type;
	size_t start, len;
	int depth;      /* bracket depth before the token */
	unsigned flags; /* S_* for strings */
};

struct py {
	const char *s;
	size_t len, pos;
	uint32_t line; /* source line of pos */

	struct canon_out o;

	struct strvec *imports;
	int keep_lines; /* line numbers may show: keep line count */

	char brackets[MAX_NEST];
	int depth;
	size_t ind_start[MAX_INDENT], ind_len[MAX_INDENT];
	int nind;       /* levels above column 0 */
	int want_block; /* last logical line ended with ':' */

	struct tok *toks;
	size_t ntoks, atoks;
};

static int is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\f';
}

static int is_name_start(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c >= 0x80;
}

static int is_name_char(unsigned char c)
{
	return is_name_start(c) || (c >= '0' && c <= '9');
}

static int is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* All output goes through here so the line map follows it. */
static void put(struct py *p, const char *d, size_t n, uint32_t src_line)
{
	canon_put(&p->o, d, n, src_line);
}

static void put_nl(struct py *p)
{
	canon_put_nl(&p->o, p->line);
}

static void trim(struct py *p)
{
	canon_trim(&p->o, " \t\f");
}

static size_t count_nl(const char *s, size_t n)
{
	size_t c = 0;
	for (size_t i = 0; i < n; i++)
		c += s[i] == '\n';
	return c;
}

/* The prefix letters allowed before a quote; 0 if w is not a prefix. */
static int string_prefix(const char *w, size_t n, unsigned *flags)
{
	unsigned f = 0;
	int u = 0;

	if (n == 0 || n > 2)
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned bit;
		switch (w[i]) {
		case 'r':
		case 'R':
			bit = S_RAW;
			break;
		case 'b':
		case 'B':
			bit = S_BYTES;
			break;
		case 'f':
		case 'F':
		case 't':
		case 'T':
			bit = S_FMT;
			break;
		case 'u':
		case 'U':
			bit = 0;
			u = 1;
			break;
		default:
			return 0;
		}
		if (bit & f)
			return 0;
		f |= bit;
	}
	/* u stands alone; bytes cannot be formatted */
	if ((u && n > 1) || ((f & S_BYTES) && (f & S_FMT)))
		return 0;
	*flags = f;
	return 1;
}

static int scan_string(const char *s, size_t len, size_t *pos, unsigned flags, int level);

static int push_bracket(char *stack, int *depth, char c)
{
	if (*depth >= MAX_NEST)
		return err_set("too many nested brackets");
	stack[(*depth)++] = c;
	return 0;
}

static int pop_bracket(char *stack, int *depth, char c)
{
	char open = c == ')' ? '(' : c == ']' ? '[' : '{';
	if (*depth == 0 || stack[*depth - 1] != open)
		return err_set("unbalanced '%c'", c);
	(*depth)--;
	return 0;
}

static int scan_field(const char *s, size_t len, size_t *pos, char q, int triple, int level);

/* The format spec after ':' in a replacement field: literal text with nested
 * fields, up to the '}' that closes the field. */
static int scan_spec(const char *s, size_t len, size_t *pos, char q, int triple, int level)
{
	size_t i = *pos;

	for (;;) {
		if (i >= len)
			return err_set("unterminated f-string");
		char c = s[i];
		if (c == '}') {
			*pos = i + 1;
			return 0;
		}
		if (c == '{') {
			/* "{{" in a spec reads differently across versions */
			if (i + 1 < len && s[i + 1] == '{')
				return err_set("'{{' in an f-string format spec");
			i++;
			if (scan_field(s, len, &i, q, triple, level + 1) < 0)
				return -1;
			continue;
		}
		if (c == '\\' || c == q || (c == '\n' && !triple))
			return err_set("unsupported f-string format spec");
		i++;
	}
}

/* A replacement field, from just after its '{' to just after its '}'.
 * Expressions are tokenized like code (strings may nest, 3.12-style), but
 * anything that reads differently across Python versions fails. */
static int scan_field(const char *s, size_t len, size_t *pos, char q, int triple, int level)
{
	char stack[MAX_NEST];
	int depth = 0;
	size_t i = *pos;

	if (level > MAX_FSTRING_LEVEL)
		return err_set("f-strings nested too deeply");
	for (;;) {
		if (i >= len)
			return err_set("unterminated f-string");
		char c = s[i];
		if (c == '\n' && !triple)
			return err_set("newline in a single-quoted f-string");
		if (c == '#')
			return err_set("comment in an f-string");
		if (c == '\\')
			return err_set("backslash in an f-string expression");
		if (c == '\'' || c == '"' || is_name_start((unsigned char)c)) {
			unsigned f = 0;
			size_t w = i;
			while (i < len && is_name_char((unsigned char)s[i]))
				i++;
			if (i < len && (s[i] == '\'' || s[i] == '"') && (i == w || string_prefix(s + w, i - w, &f))) {
				size_t st = i;
				if (scan_string(s, len, &i, f, level + 1) < 0)
					return -1;
				if (!triple && memchr(s + st, '\n', i - st))
					return err_set("newline in a single-quoted f-string");
			}
			continue;
		}
		if (is_digit(c)) {
			while (i < len && (is_name_char((unsigned char)s[i]) || s[i] == '.'))
				i++;
			continue;
		}
		if (c == '(' || c == '[' || c == '{') {
			if (push_bracket(stack, &depth, c) < 0)
				return -1;
			i++;
			continue;
		}
		if (c == ')' || c == ']' || c == '}') {
			if (depth == 0 && c == '}') {
				*pos = i + 1;
				return 0;
			}
			if (pop_bracket(stack, &depth, c) < 0)
				return -1;
			i++;
			continue;
		}
		if (depth == 0 && c == '!' && !(i + 1 < len && s[i + 1] == '=')) {
			i++;
			while (i < len && is_name_char((unsigned char)s[i]))
				i++;
			if (i < len && s[i] == '}') {
				*pos = i + 1;
				return 0;
			}
			if (i < len && s[i] == ':') {
				i++;
				if (scan_spec(s, len, &i, q, triple, level) < 0)
					return -1;
				*pos = i;
				return 0;
			}
			return err_set("bad f-string conversion");
		}
		if (depth == 0 && c == ':') {
			i++;
			if (scan_spec(s, len, &i, q, triple, level) < 0)
				return -1;
			*pos = i;
			return 0;
		}
		i++;
	}
}

/* s[*pos] is the opening quote; on success *pos is just past the closing one.
 * Raw or not, a backslash always keeps the next character from ending the
 * string, so only f-strings need the flags. */
static int scan_string(const char *s, size_t len, size_t *pos, unsigned flags, int level)
{
	size_t i = *pos;
	char q = s[i];
	int triple = i + 2 < len && s[i + 1] == q && s[i + 2] == q;

	if (level > MAX_FSTRING_LEVEL)
		return err_set("f-strings nested too deeply");
	i += triple ? 3 : 1;
	for (;;) {
		if (i >= len)
			return err_set("unterminated string");
		char c = s[i];
		if (c == q && (!triple || (i + 2 < len && s[i + 1] == q && s[i + 2] == q))) {
			*pos = i + (triple ? 3 : 1);
			return 0;
		}
		if (c == '\n' && !triple)
			return err_set("unterminated string");
		if (c == '\\') {
			if (i + 1 >= len)
				return err_set("unterminated string");
			char n = s[i + 1];
			if ((flags & S_FMT) && (n == '{' || n == '}')) {
				/* "\{" does not escape the brace */
				i++;
				continue;
			}
			if ((flags & S_FMT) && !(flags & S_RAW) && n == 'N' && i + 2 < len && s[i + 2] == '{') {
				/* \N{NAME} is an escape, not a field */
				i += 3;
				while (i < len && s[i] != '}') {
					if (s[i] == '\n' || s[i] == q)
						return err_set("bad \\N{} escape");
					i++;
				}
				if (i >= len)
					return err_set("unterminated string");
				i++;
				continue;
			}
			if (n == '\r' && i + 2 < len && s[i + 2] == '\n')
				i++;
			i += 2;
			continue;
		}
		if (flags & S_FMT) {
			if (c == '{') {
				if (i + 1 < len && s[i + 1] == '{') {
					i += 2;
					continue;
				}
				i++;
				if (scan_field(s, len, &i, q, triple, level + 1) < 0)
					return -1;
				continue;
			}
			if (c == '}') {
				if (i + 1 < len && s[i + 1] == '}') {
					i += 2;
					continue;
				}
				return err_set("single '}' in an f-string");
			}
		}
		i++;
	}
}

static void add_tok(struct py *p, enum tok_type type, size_t start, size_t n, unsigned flags)
{
	if (p->ntoks == p->atoks) {
		p->atoks = p->atoks ? p->atoks * 2 : 64;
		p->toks = xrealloc(p->toks, p->atoks * sizeof(*p->toks));
	}
	struct tok *t = &p->toks[p->ntoks++];
	t->type = type;
	t->start = start;
	t->len = n;
	t->depth = p->depth;
	t->flags = flags;
}

static int tok_is(const struct py *p, size_t i, const char *text)
{
	if (i >= p->ntoks)
		return 0;
	const struct tok *t = &p->toks[i];
	return strlen(text) == t->len && memcmp(p->s + t->start, text, t->len) == 0;
}

static int tok_name(const struct py *p, size_t i)
{
	return i < p->ntoks && p->toks[i].type == T_NAME;
}

/* NAME ('.' NAME)* into sb; returns the index after it, or 0 if none. */
static size_t dotted_name(const struct py *p, size_t i, struct strbuf *sb)
{
	if (!tok_name(p, i))
		return 0;
	for (;;) {
		sb_add(sb, p->s + p->toks[i].start, p->toks[i].len);
		i++;
		if (!tok_is(p, i, ".") || !tok_name(p, i + 1))
			return i;
		sb_addc(sb, '.');
		i++;
	}
}

/* import a.b.c [as x], d [as y] */
static void parse_import(struct py *p, size_t i)
{
	struct strbuf name = STRBUF_INIT;

	for (;;) {
		sb_reset(&name);
		size_t j = dotted_name(p, i, &name);
		if (!j)
			break;
		i = j;
		if (tok_is(p, i, "as")) {
			if (!tok_name(p, i + 1))
				break;
			i += 2;
		}
		sv_push(p->imports, name.buf);
		if (!tok_is(p, i, ","))
			break;
		i++;
	}
	sb_release(&name);
}

/* from [.]* [a.b] import (x [as y], ... | *) */
static void parse_from(struct py *p, size_t i)
{
	struct strbuf mod = STRBUF_INIT, sub = STRBUF_INIT;

	while (tok_is(p, i, ".")) {
		sb_addc(&mod, '.');
		i++;
	}
	size_t j = tok_is(p, i, "import") ? 0 : dotted_name(p, i, &mod);
	if (j)
		i = j;
	if (mod.len == 0 || !tok_is(p, i, "import"))
		goto out;
	i++;
	sv_push(p->imports, mod.buf);
	if (tok_is(p, i, "*"))
		goto out;
	if (tok_is(p, i, "("))
		i++;
	while (tok_name(p, i)) {
		sb_reset(&sub);
		sb_add(&sub, mod.buf, mod.len);
		if (mod.buf[mod.len - 1] != '.')
			sb_addc(&sub, '.');
		sb_add(&sub, p->s + p->toks[i].start, p->toks[i].len);
		sv_push(p->imports, sub.buf);
		i++;
		if (tok_is(p, i, "as") && tok_name(p, i + 1))
			i += 2;
		if (!tok_is(p, i, ","))
			break;
		i++;
	}
out:
	sb_release(&mod);
	sb_release(&sub);
}

static int is_compound_kw(const struct py *p, size_t i)
{
	static const char *const kw[] = { "if",   "elif", "else",  "while", "for",   "try",  "except", "finally",
					  "with", "def",  "class", "async", "match", "case", NULL };
	for (int k = 0; kw[k]; k++)
		if (tok_is(p, i, kw[k]))
			return 1;
	return 0;
}

/* Import statements start a logical line, follow a ';', or follow the ':'
 * of a compound header on the same line ("try: import x"). */
static void collect_imports(struct py *p)
{
	int stmt_start = 1;
	int compound = is_compound_kw(p, 0);

	for (size_t i = 0; i < p->ntoks; i++) {
		const struct tok *t = &p->toks[i];
		if (stmt_start && tok_is(p, i, "import"))
			parse_import(p, i + 1);
		else if (stmt_start && tok_is(p, i, "from"))
			parse_from(p, i + 1);
		stmt_start = t->type == T_OP && t->depth == 0 && (tok_is(p, i, ";") || (compound && tok_is(p, i, ":")));
	}
}

/* Indentation is syntax: follow the levels like CPython does (a stricter,
 * byte-wise version) so that bad dedents fail and bodies are known. */
static int indent(struct py *p, size_t start, size_t n, int *deeper)
{
	size_t top_len = p->nind ? p->ind_len[p->nind - 1] : 0;
	const char *top = p->nind ? p->s + p->ind_start[p->nind - 1] : "";

	*deeper = 0;
	if (n == top_len && memcmp(p->s + start, top, n) == 0) {
		if (p->want_block)
			return err_set("line %u: expected an indented block", p->line);
		return 0;
	}
	if (n > top_len && memcmp(p->s + start, top, top_len) == 0) {
		if (!p->want_block)
			return err_set("line %u: unexpected indent", p->line);
		if (p->nind >= MAX_INDENT)
			return err_set("too many indentation levels");
		p->ind_start[p->nind] = start;
		p->ind_len[p->nind] = n;
		p->nind++;
		*deeper = 1;
		return 0;
	}
	if (p->want_block)
		return err_set("line %u: expected an indented block", p->line);
	while (p->nind > 0) {
		p->nind--;
		top_len = p->nind ? p->ind_len[p->nind - 1] : 0;
		top = p->nind ? p->s + p->ind_start[p->nind - 1] : "";
		if (n == top_len && memcmp(p->s + start, top, n) == 0)
			return 0;
	}
	return err_set("line %u: unindent does not match any outer level", p->line);
}

/* Comment lines that are not cosmetic: "#!" picks the interpreter and a
 * coding cookie on line 1 or 2 changes what the bytes mean. */
static int comment_matters(const struct py *p, size_t hash, size_t eol)
{
	if (p->line == 1 && hash + 1 < eol && p->s[hash + 1] == '!')
		return 1;
	if (p->line > 2)
		return 0;
	for (size_t i = hash; i + 7 <= eol; i++)
		if (!memcmp(p->s + i, "coding", 6) && (p->s[i + 6] == ':' || p->s[i + 6] == '='))
			return 1;
	return 0;
}

static size_t end_of_line(const struct py *p, size_t i)
{
	const char *nl = memchr(p->s + i, '\n', p->len - i);
	return nl ? (size_t)(nl - p->s) : p->len;
}

/* Past a newline at i ("\n" or "\r\n"); i may be len. */
static void skip_newline(struct py *p)
{
	if (p->pos < p->len && p->s[p->pos] == '\r')
		p->pos++;
	if (p->pos < p->len && p->s[p->pos] == '\n') {
		p->pos++;
		p->line++;
	}
}

/* Whether the physical line at i holds nothing but blanks and a comment. */
static int line_is_empty(const struct py *p, size_t i)
{
	while (i < p->len && is_blank(p->s[i]))
		i++;
	return i == p->len || p->s[i] == '\n' || p->s[i] == '#' ||
	       (p->s[i] == '\r' && i + 1 < p->len && p->s[i + 1] == '\n');
}

/* Prefix the pending error with the line it happened on. */
static int fail_at(const struct py *p)
{
	char *msg = xstrdup(err_msg());
	err_set("line %u: %s", p->line, msg);
	free(msg);
	return -1;
}

/* Tokens of one logical line, from just after its indentation. */
static int scan_logical(struct py *p)
{
	const char *s = p->s;

	for (;;) {
		if (p->pos >= p->len) {
			if (p->depth)
				return err_set("unexpected end of file inside brackets");
			trim(p);
			put_nl(p);
			return 0;
		}
		size_t st = p->pos;
		char c = s[st];

		if (is_blank(c)) {
			while (p->pos < p->len && is_blank(s[p->pos]))
				p->pos++;
			put(p, s + st, p->pos - st, p->line);
			continue;
		}
		if (c == '#') {
			p->pos = end_of_line(p, st);
			if (p->pos > st && s[p->pos - 1] == '\r' && p->pos < p->len)
				p->pos--;
			continue;
		}
		if (c == '\n' || (c == '\r' && st + 1 < p->len && s[st + 1] == '\n')) {
			trim(p);
			skip_newline(p);
			if (!p->depth) {
				put_nl(p);
				return 0;
			}
			/* inside brackets a line with nothing left is dropped */
			if (p->o.out->len != p->o.line_out || p->keep_lines)
				put_nl(p);
			continue;
		}
		if (c == '\\') {
			size_t n = st + 1;
			if (n < p->len && s[n] == '\r')
				n++;
			if (n >= p->len || s[n] != '\n')
				return err_set("line %u: unexpected character after line continuation", p->line);
			/* a blank or comment line after "\" ends the statement in
			 * CPython; dropping it would join two lines */
			if (line_is_empty(p, n + 1))
				return err_set("line %u: empty line after line continuation", p->line);
			put(p, "\\\n", 2, p->line);
			p->pos = n + 1;
			p->line++;
			p->o.keep = p->o.line_out = p->o.out->len;
			continue;
		}
		if (is_name_start((unsigned char)c) || c == '\'' || c == '"') {
			unsigned f = 0;
			while (p->pos < p->len && is_name_char((unsigned char)s[p->pos]))
				p->pos++;
			size_t q = p->pos;
			if (q < p->len && (s[q] == '\'' || s[q] == '"') &&
			    (q == st || string_prefix(s + st, q - st, &f))) {
				if (scan_string(s, p->len, &p->pos, f, 0) < 0)
					return fail_at(p);
				add_tok(p, T_STRING, st, p->pos - st, f);
			} else {
				add_tok(p, T_NAME, st, p->pos - st, 0);
			}
		} else if (is_digit(c) || (c == '.' && st + 1 < p->len && is_digit(s[st + 1]))) {
			p->pos++;
			while (p->pos < p->len && (is_name_char((unsigned char)s[p->pos]) || s[p->pos] == '.'))
				p->pos++;
			add_tok(p, T_NUMBER, st, p->pos - st, 0);
		} else {
			add_tok(p, T_OP, st, 1, 0);
			p->pos++;
			if ((c == '(' || c == '[' || c == '{') && push_bracket(p->brackets, &p->depth, c) < 0)
				return -1;
			if ((c == ')' || c == ']' || c == '}') && pop_bracket(p->brackets, &p->depth, c) < 0)
				return fail_at(p);
		}
		uint32_t line = p->line;
		p->line += (uint32_t)count_nl(s + st, p->pos - st);
		put(p, s + st, p->pos - st, line);
		p->o.keep = p->o.out->len;
	}
}

static int run(struct py *p)
{
	const char *s = p->s;

	if (p->len >= 3 && !memcmp(s, "\xef\xbb\xbf", 3)) {
		put(p, s, 3, 1);
		p->pos = 3;
	}
	p->o.keep = p->o.line_out = p->o.out->len;
	while (p->pos < p->len) {
		size_t ls = p->pos, i = ls;
		while (i < p->len && is_blank(s[i]))
			i++;
		if (line_is_empty(p, ls)) {
			size_t eol = end_of_line(p, i);
			if (i < p->len && s[i] == '#' && comment_matters(p, i, eol)) {
				put(p, s + ls, eol - ls, p->line);
				put_nl(p);
			} else if (p->keep_lines && eol < p->len) {
				put_nl(p);
			}
			p->pos = eol;
			skip_newline(p);
			continue;
		}

		/* a logical line */
		int deeper;

		if (indent(p, ls, i - ls, &deeper) < 0)
			return -1;
		put(p, s + ls, i - ls, p->line);
		p->o.keep = p->o.out->len;
		p->pos = i;
		p->ntoks = 0;
		if (scan_logical(p) < 0)
			return -1;

		if (p->imports)
			collect_imports(p);
		p->want_block = p->ntoks && tok_is(p, p->ntoks - 1, ":");
	}
	return 0;
}

/* Words that suggest line numbers reach the output (tracebacks, warnings,
 * logging's %(lineno)d): then dropped lines are kept as empty ones. */
static int mentions_lines(const char *s, size_t len)
{
	static const char *const words[] = { "lineno",    "traceback", "getframe", "currentframe",
					     "frameinfo", "warnings",  NULL };
	for (int k = 0; words[k]; k++) {
		size_t n = strlen(words[k]);
		for (size_t i = 0; i + n <= len; i++)
			if (!strncasecmp(s + i, words[k], n))
				return 1;
	}
	return 0;
}

static void sv_truncate(struct strvec *sv, size_t n)
{
	if (!sv)
		return;
	while (sv->n > n)
		free(sv->v[--sv->n]);
}

int canon_python_lines(const char *src, size_t len, struct strbuf *out, struct strvec *imports,
		       struct canon_lines *lines)
{
	size_t out0 = out->len, dep0 = imports ? imports->n : 0;
	size_t lines0 = lines ? lines->n : 0;
	struct py p;
	int ret;

	memset(&p, 0, sizeof(p));
	if (len && memchr(src, '\0', len)) {
		ret = err_set("NUL byte in Python source");
		goto out;
	}
	for (size_t i = 0; i < len; i++) {
		if (src[i] == '\r' && (i + 1 == len || src[i + 1] != '\n')) {
			ret = err_set("bare carriage return in Python source");
			goto out;
		}
	}
	p.s = src;
	p.len = len;
	p.line = 1;
	canon_out_start(&p.o, out, lines);
	p.imports = imports;
	p.keep_lines = mentions_lines(src, len);
	ret = run(&p);
	if (ret == 0)
		canon_out_end(&p.o);
out:
	free(p.toks);
	if (ret < 0) {
		sb_setlen(out, out0);
		sv_truncate(imports, dep0);
		if (lines)
			lines->n = lines0;
	}
	return ret;
}

int canon_python(const char *src, size_t len, struct strbuf *out, struct strvec *imports)
{
	return canon_python_lines(src, len, out, imports, NULL);
}

/* ---- the environment variables code names ---- */

/* A token of the environment scan: comments, blanks and line breaks are
 * gone, so a call split over lines reads as on one. val is a string
 * literal's text when it is plain (no escape, no field), else NULL. */
struct etok {
	enum tok_type type;
	const char *s, *val;
	size_t len, vlen;
};

struct escan {
	struct etok *t;
	size_t n, alloc;
	struct strvec objs; /* names bound to the environment (env = os.environ) */
	struct strvec gets; /* names bound to a getter (g = os.getenv) */
};

static void etok_add(struct escan *e, enum tok_type type, const char *s, size_t len, const char *val, size_t vlen)
{
	if (e->n == e->alloc) {
		e->alloc = e->alloc ? e->alloc * 2 : 256;
		e->t = xrealloc(e->t, e->alloc * sizeof(*e->t));
	}
	e->t[e->n++] = (struct etok){ type, s, val, len, vlen };
}

/* A string's text between its quotes when nothing in it is decoded. */
static void plain_value(const char *s, size_t q, size_t end, unsigned flags, const char **val, size_t *vlen)
{
	size_t nq = end - q >= 6 && s[q + 1] == s[q] && s[q + 2] == s[q] ? 3 : 1;
	const char *v = s + q + nq;
	size_t n = end - q - 2 * nq;
	*val = NULL;
	if ((flags & S_FMT) || memchr(v, '\\', n))
		return;
	*val = v;
	*vlen = n;
}

static void escan_tokens(struct escan *e, const char *s, size_t len)
{
	size_t i = 0;
	while (i < len) {
		unsigned char c = (unsigned char)s[i];
		size_t st = i;
		if (c == '#') {
			while (i < len && s[i] != '\n')
				i++;
			continue;
		}
		if (c == ' ' || c == '\t' || c == '\f' || c == '\r' || c == '\n' || c == '\\') {
			i++;
			continue;
		}
		if (is_name_start(c) || c == '\'' || c == '"') {
			unsigned f = 0;
			while (i < len && is_name_char((unsigned char)s[i]))
				i++;
			if (i < len && (s[i] == '\'' || s[i] == '"') &&
			    (i == st || string_prefix(s + st, i - st, &f))) {
				size_t q = i;
				if (scan_string(s, len, &i, f, 0) < 0) {
					err_clear();
					i = q + 1; /* not a string we know: go on after its quote */
					continue;
				}
				const char *val;
				size_t vlen = 0;
				plain_value(s, q, i, f, &val, &vlen);
				etok_add(e, T_STRING, s + st, i - st, val, vlen);
			} else {
				etok_add(e, T_NAME, s + st, i - st, NULL, 0);
			}
			continue;
		}
		if (is_digit((char)c)) {
			while (i < len && (is_name_char((unsigned char)s[i]) || s[i] == '.'))
				i++;
			etok_add(e, T_NUMBER, s + st, i - st, NULL, 0);
			continue;
		}
		etok_add(e, T_OP, s + st, 1, NULL, 0);
		i++;
	}
}

static int et_is(const struct escan *e, size_t i, const char *text)
{
	return i < e->n && e->t[i].len == strlen(text) && !memcmp(e->t[i].s, text, e->t[i].len);
}

static int et_in(const struct escan *e, size_t i, const struct strvec *names)
{
	for (size_t k = 0; i < e->n && e->t[i].type == T_NAME && k < names->n; k++)
		if (et_is(e, i, names->v[k]))
			return 1;
	return 0;
}

static size_t env_getter(const struct escan *e, size_t i);
static size_t env_obj(const struct escan *e, size_t i);

/* Past a module path (os., a.b.) to the environment or getter after it. */
static size_t skip_path(const struct escan *e, size_t i)
{
	size_t j = i;
	while (j + 2 < e->n && !env_obj(e, j) && !env_getter(e, j) && e->t[j].type == T_NAME && et_is(e, j + 1, "."))
		j += 2;
	return env_obj(e, j) || env_getter(e, j) ? j : i;
}

/* The environment itself at i (os.environ, environ, an alias, dict() of
 * one, .copy() of one): the index after it, 0 if none. */
static size_t env_obj(const struct escan *e, size_t i)
{
	size_t j = 0;
	if (et_is(e, i, "environ") || et_is(e, i, "environb") || et_in(e, i, &e->objs))
		j = i + 1;
	else if (et_is(e, i, "dict") && et_is(e, i + 1, "(") && (j = env_obj(e, skip_path(e, i + 2))) &&
		 et_is(e, j, ")"))
		j++;
	else
		return 0;
	while (et_is(e, j, ".") && et_is(e, j + 1, "copy") && et_is(e, j + 2, "(") && et_is(e, j + 3, ")"))
		j += 4;
	return j;
}

/* A getter at i (os.getenv, getenvb, an alias): the index after it. */
static size_t env_getter(const struct escan *e, size_t i)
{
	return et_is(e, i, "getenv") || et_is(e, i, "getenvb") || et_in(e, i, &e->gets) ? i + 1 : 0;
}

/* Adjacent literals from i ("A" "B" is "AB") as one name: 1 if plain. */
static int literal_at(const struct escan *e, size_t i, size_t *after, struct strbuf *name)
{
	sb_reset(name);
	size_t j = i;
	for (; j < e->n && e->t[j].type == T_STRING; j++) {
		if (!e->t[j].val)
			return 0;
		sb_add(name, e->t[j].val, e->t[j].vlen);
	}
	*after = j;
	return j > i;
}

static void push_env_name(struct strvec *names, const struct strbuf *name)
{
	if (!name->len)
		return;
	for (size_t i = 0; i < name->len; i++) {
		char c = name->buf[i];
		if (!is_name_char((unsigned char)c) && c != '-' && c != '.')
			return;
	}
	for (size_t i = 0; i < names->n; i++)
		if (!strcmp(names->v[i], name->buf))
			return;
	sv_push(names, name->buf);
}

/* A call's first argument, positional or key=: the literal name. */
static int call_arg(const struct escan *e, size_t i, struct strbuf *name)
{
	size_t after;
	if (!et_is(e, i, "("))
		return 0;
	i++;
	if (i < e->n && e->t[i].type == T_NAME && et_is(e, i + 1, "=") && !et_is(e, i + 2, "="))
		i += 2;
	return i < e->n && literal_at(e, i, &after, name);
}

/* Names bound to the environment or a getter: "env = os.environ",
 * "from os import getenv as g". Returns how many were new. */
static int find_aliases(struct escan *e)
{
	int added = 0;
	for (size_t i = 0; i + 2 < e->n; i++) {
		const struct etok *t = &e->t[i];
		size_t j = i + 2;
		if (t->type != T_NAME || !et_is(e, i + 1, "=") || et_is(e, i + 2, "=") || (i && et_is(e, i - 1, ".")))
			continue;
		/* a module path before the object: os.environ, a.b.getenv */
		j = skip_path(e, j);
		size_t end = env_obj(e, j);
		struct strvec *to = &e->objs;
		if (!end) {
			end = env_getter(e, j);
			to = &e->gets;
		}
		/* os.environ.get(...) is a value, not the environment */
		if (!end || et_is(e, end, ".") || et_is(e, end, "[") || et_is(e, end, "("))
			continue;
		char *n = xstrndup(t->s, t->len);
		if (!et_in(e, i, to)) {
			sv_push(to, n);
			added++;
		}
		free(n);
	}
	for (size_t i = 0; i + 2 < e->n; i++) {
		if (!et_is(e, i + 1, "as") || e->t[i + 2].type != T_NAME || et_is(e, i + 2, "as"))
			continue;
		struct strvec *to = env_obj(e, i) ? &e->objs : env_getter(e, i) ? &e->gets : NULL;
		if (!to || et_in(e, i + 2, to))
			continue;
		char *n = xstrndup(e->t[i + 2].s, e->t[i + 2].len);
		sv_push(to, n);
		free(n);
		added++;
	}
	return added;
}

void canon_python_env_refs(const char *src, size_t len, struct strvec *names)
{
	static const char *const reads[] = { "get", "setdefault", "pop", "__getitem__", "__contains__", NULL };
	static const char *const every[] = { "items", "keys", "values", NULL };
	struct escan e = { 0 };
	struct strbuf name = STRBUF_INIT;
	size_t after;

	/* a read whose name is not written here (os.environ.get(key), a
	 * helper's getenv(name), a loop over os.environ) may be of any
	 * variable: as a shell's bare env, every one counts */
	int dynamic = 0;
	escan_tokens(&e, src, len);
	for (int pass = 0; pass < 4 && find_aliases(&e); pass++)
		;
	for (size_t i = 0; i < e.n; i++) {
		size_t j = env_obj(&e, i);
		if (j) {
			/* os.environ["X"], os.environ.get("X"), .pop, ... */
			if (et_is(&e, j, "[")) {
				if (literal_at(&e, j + 1, &after, &name) && et_is(&e, after, "]"))
					push_env_name(names, &name);
				else
					dynamic = 1;
			}
			for (int k = 0; reads[k]; k++)
				if (et_is(&e, j, ".") && et_is(&e, j + 1, reads[k])) {
					if (call_arg(&e, j + 2, &name))
						push_env_name(names, &name);
					else
						dynamic = 1;
				}
			for (int k = 0; every[k]; k++)
				dynamic |= et_is(&e, j, ".") && et_is(&e, j + 1, every[k]);
		}
		/* "X" in os.environ, "X" not in os.environ; for k in os.environ */
		if (et_is(&e, i, "in") && env_obj(&e, skip_path(&e, i + 1))) {
			size_t k = i && et_is(&e, i - 1, "not") ? i - 1 : i;
			size_t first = k;
			while (first && e.t[first - 1].type == T_STRING)
				first--;
			if (first < k && literal_at(&e, first, &after, &name) && after == k)
				push_env_name(names, &name);
			else
				dynamic = 1;
		}
		j = env_getter(&e, i);
		if (j && call_arg(&e, j, &name))
			push_env_name(names, &name);
		else if (j && et_is(&e, j, "("))
			dynamic = 1; /* getenv(name) */
	}
	for (size_t i = 0; dynamic && i < names->n; i++)
		dynamic = strcmp(names->v[i], "*") != 0;
	if (dynamic)
		sv_push(names, "*");
	free(e.t);
	sv_release(&e.objs);
	sv_release(&e.gets);
	sb_release(&name);
}
