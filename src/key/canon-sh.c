/* canon-sh: canonical form of POSIX sh and bash scripts. A lexer that knows
 * quotes, $'...', ${...}, $(...), $((...)), backquotes and here-documents
 * finds the comments, blank lines and trailing blanks and drops them; quoted
 * text and here-document bodies are copied untouched. Where bash and dash
 * could read the same bytes differently, it fails (the caller hashes raw). */
#include "key/canon.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_LEVEL 64   /* nesting of quotes and substitutions */
#define MAX_HEREDOC 16 /* pending on one line */

struct heredoc {
	char *delim;
	size_t dlen;
	int strip_tabs; /* <<- */
	int quoted;     /* body is literal: no line joining */
};

struct sh {
	const char *s;
	size_t len, pos;
	uint32_t line;

	struct canon_out o;
	int keep_lines;
	char prev; /* last character that decides if '#' starts a comment */

	struct heredoc hd[MAX_HEREDOC];
	int nhd;
	int hd_paren; /* ( minus ) since the first pending heredoc */

	/* finding "source FILE" / ". FILE" */
	struct strvec *sources;
	struct strbuf word;
	int in_word, word_literal, cmd_pos, want_arg, skip_word;
};

/* After these a new token starts, so '#' begins a comment (checked against
 * bash and dash, "(#" and ">#" included). After ')' they disagree between
 * "(cmd)#x" and "$(cmd)#x", so the caller fails there. */
static int word_start(char prev)
{
	return prev == ' ' || prev == '\t' || prev == '\n' || prev == ';' || prev == '&' || prev == '|' ||
	       prev == '(' || prev == '<' || prev == '>';
}

static int is_special(char c)
{
	return strchr(" \t\n#\\'\"`$()|&;<>", c) != NULL;
}

static int scan_dq(const char *s, size_t len, size_t *pos, int level);
static int scan_dollar(const char *s, size_t len, size_t *pos, int in_dq, int level);

static int scan_sq(const char *s, size_t len, size_t *pos)
{
	const char *e = memchr(s + *pos + 1, '\'', len - *pos - 1);
	if (!e)
		return err_set("unterminated single quote");
	*pos = (size_t)(e - s) + 1;
	return 0;
}

/* $'...' from its quote. dash has no $'...' and ends it at "\'", so that
 * form is refused rather than guessed. */
static int scan_ansi(const char *s, size_t len, size_t *pos)
{
	size_t i = *pos + 1;
	while (i < len) {
		if (s[i] == '\\') {
			if (i + 1 < len && s[i + 1] == '\'')
				return err_set("\\' inside $'...'");
			i += 2;
			continue;
		}
		if (s[i] == '\'') {
			*pos = i + 1;
			return 0;
		}
		i++;
	}
	return err_set("unterminated $'...'");
}

/* Within backquotes POSIX leaves unbalanced quotes undefined: refuse them. */
static int check_quotes(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '\\') {
			i++;
		} else if (s[i] == '\'' || s[i] == '"') {
			char q = s[i];
			for (i++; i < len && s[i] != q; i++)
				if (q == '"' && s[i] == '\\')
					i++;
			if (i >= len)
				return err_set("unbalanced quote inside backquotes");
		}
	}
	return 0;
}

static int scan_bq(const char *s, size_t len, size_t *pos)
{
	size_t st = *pos, i = st + 1;
	while (i < len && s[i] != '`') {
		if (s[i] == '\\')
			i++;
		i++;
	}
	if (i >= len)
		return err_set("unterminated backquote");
	if (check_quotes(s + st + 1, i - st - 1) < 0)
		return -1;
	*pos = i + 1;
	return 0;
}

/* ${...} from its '{'. */
static int scan_brace(const char *s, size_t len, size_t *pos, int in_dq, int level)
{
	size_t i = *pos + 1;
	for (;;) {
		if (i >= len)
			return err_set("unterminated ${");
		char c = s[i];
		int r = 0;
		if (c == '}') {
			*pos = i + 1;
			return 0;
		}
		if (c == '{')
			return err_set("'{' inside ${...}");
		if (c == '\\') {
			i += 2;
			continue;
		}
		if (c == '\'') {
			/* quote removal inside "${...}" differs by operator */
			if (in_dq)
				return err_set("single quote inside \"${...}\"");
			r = scan_sq(s, len, &i);
		} else if (c == '"') {
			r = scan_dq(s, len, &i, level + 1);
		} else if (c == '`') {
			r = scan_bq(s, len, &i);
		} else if (c == '$') {
			r = scan_dollar(s, len, &i, in_dq, level + 1);
		} else {
			i++;
		}
		if (r < 0)
			return -1;
	}
}

/* Arithmetic, from just after "((" to just after "))". No comments here:
 * '#' is only the base in 16#ff. Kept to one line so that a mistaken
 * "((" (two subshells) cannot swallow here-documents or comments. */
static int scan_arith(const char *s, size_t len, size_t *pos, int level)
{
	size_t st = *pos, i = st;
	int depth = 0;
	for (;;) {
		if (i >= len)
			return err_set("unterminated ((");
		char c = s[i];
		int r = 0;
		if (c == '\n')
			return err_set("newline inside ((...))");
		if (c == '(') {
			depth++;
			i++;
		} else if (c == ')') {
			if (depth == 0) {
				if (i + 1 < len && s[i + 1] == ')') {
					*pos = i + 2;
					return 0;
				}
				return err_set("unbalanced ')' inside ((...))");
			}
			depth--;
			i++;
		} else if (c == '#') {
			char b = i > st ? s[i - 1] : ' ';
			if (!((b >= '0' && b <= '9') || (b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z') || b == '_' ||
			      b == '}'))
				return err_set("'#' inside ((...))");
			i++;
		} else if (c == '\\') {
			i += 2;
		} else if (c == '\'') {
			r = scan_sq(s, len, &i);
		} else if (c == '"') {
			r = scan_dq(s, len, &i, level + 1);
		} else if (c == '`') {
			r = scan_bq(s, len, &i);
		} else if (c == '$') {
			r = scan_dollar(s, len, &i, 0, level + 1);
		} else {
			i++;
		}
		if (r < 0)
			return -1;
	}
}

/* $(...) inside quotes or ${...}, from just after "$(" to just after its ')'.
 * Its text is kept as is; what matters is finding the right ')'. case
 * patterns have unbalanced ')' and here-documents would need the outer
 * line structure, so both are refused here. */
static int scan_cmdsub(const char *s, size_t len, size_t *pos, int level)
{
	size_t i = *pos;
	int depth = 0;
	char prev = '(';

	for (;;) {
		if (i >= len)
			return err_set("unterminated $(");
		char c = s[i];
		int r = 0;
		switch (c) {
		case '\n':
		case ' ':
		case '\t':
			prev = c;
			i++;
			break;
		case '#':
			if (word_start(prev)) {
				const char *nl = memchr(s + i, '\n', len - i);
				i = nl ? (size_t)(nl - s) : len;
				break;
			}
			if (prev == ')')
				return err_set("'#' right after ')'");
			prev = 'a';
			i++;
			break;
		case '\\':
			i += 2;
			prev = 'a';
			break;
		case '\'':
			r = scan_sq(s, len, &i);
			prev = 'a';
			break;
		case '"':
			r = scan_dq(s, len, &i, level + 1);
			prev = 'a';
			break;
		case '`':
			r = scan_bq(s, len, &i);
			prev = 'a';
			break;
		case '$':
			r = scan_dollar(s, len, &i, 0, level + 1);
			prev = 'a';
			break;
		case '(':
			if (i + 1 < len && s[i + 1] == '(' && word_start(prev)) {
				i += 2;
				r = scan_arith(s, len, &i, level + 1);
				prev = ')';
				break;
			}
			depth++;
			i++;
			prev = '(';
			break;
		case ')':
			if (depth == 0) {
				*pos = i + 1;
				return 0;
			}
			depth--;
			i++;
			prev = ')';
			break;
		case '<':
			if (i + 1 < len && s[i + 1] == '<') {
				if (!(i + 2 < len && s[i + 2] == '<'))
					return err_set("here-document inside quoted $(...)");
				i += 2;
			}
			i++;
			prev = '<';
			break;
		case ';':
		case '&':
		case '|':
		case '>':
			prev = c;
			i++;
			break;
		default: {
			size_t j = i;
			while (j < len && !is_special(s[j]))
				j++;
			if (word_start(prev) && j - i == 4 && !memcmp(s + i, "case", 4))
				return err_set("case inside quoted $(...)");
			prev = 'a';
			i = j;
		}
		}
		if (r < 0)
			return -1;
	}
}

static int scan_dollar(const char *s, size_t len, size_t *pos, int in_dq, int level)
{
	size_t n = *pos + 1;

	if (level > MAX_LEVEL)
		return err_set("quotes and substitutions nested too deeply");
	if (n < len && s[n] == '{') {
		*pos = n;
		return scan_brace(s, len, pos, in_dq, level);
	}
	if (n + 1 < len && s[n] == '(' && s[n + 1] == '(') {
		*pos = n + 2;
		return scan_arith(s, len, pos, level);
	}
	if (n < len && s[n] == '(') {
		*pos = n + 1;
		return scan_cmdsub(s, len, pos, level);
	}
	if (n < len && s[n] == '[')
		return err_set("$[...] is not supported");
	if (!in_dq && n < len && s[n] == '\'') {
		*pos = n;
		return scan_ansi(s, len, pos);
	}
	/* $#, $?, $$...: the second character is the parameter, not syntax */
	if (n < len && strchr("#?$!@*-", s[n]))
		n++;
	*pos = n;
	return 0;
}

static int scan_dq(const char *s, size_t len, size_t *pos, int level)
{
	size_t i = *pos + 1;

	if (level > MAX_LEVEL)
		return err_set("quotes and substitutions nested too deeply");
	for (;;) {
		if (i >= len)
			return err_set("unterminated double quote");
		char c = s[i];
		int r = 0;
		if (c == '"') {
			*pos = i + 1;
			return 0;
		}
		if (c == '\\')
			i += 2;
		else if (c == '`')
			r = scan_bq(s, len, &i);
		else if (c == '$')
			r = scan_dollar(s, len, &i, 1, level + 1);
		else
			i++;
		if (r < 0)
			return -1;
	}
}

/* ---- output ---- */

static void put(struct sh *p, const char *d, size_t n, uint32_t src_line)
{
	canon_put(&p->o, d, n, src_line);
}

/* Copy source bytes [st, pos) and follow the line count. */
static void put_src(struct sh *p, size_t st)
{
	uint32_t line = p->line;
	for (size_t i = st; i < p->pos; i++)
		p->line += p->s[i] == '\n';
	put(p, p->s + st, p->pos - st, line);
	p->o.keep = p->o.out->len;
	if (p->pos > st && p->s[p->pos - 1] == '\n')
		p->o.line_out = p->o.out->len;
}

static void put_nl(struct sh *p)
{
	canon_put_nl(&p->o, p->line);
}

static void trim(struct sh *p)
{
	canon_trim(&p->o, " \t");
}

/* ---- source / . ---- */

static void word_add(struct sh *p, const char *d, size_t n, int literal)
{
	p->in_word = 1;
	if (!literal)
		p->word_literal = 0;
	sb_add(&p->word, d, n);
}

static int is_reserved(const char *w)
{
	static const char *const kw[] = {
		"if", "then", "else", "elif", "do", "while", "until", "!", "{", "time", NULL
	};
	for (int k = 0; kw[k]; k++)
		if (!strcmp(w, kw[k]))
			return 1;
	return 0;
}

static int is_assignment(const char *w)
{
	size_t i = 0;
	if (!((w[0] >= 'a' && w[0] <= 'z') || (w[0] >= 'A' && w[0] <= 'Z') || w[0] == '_'))
		return 0;
	while ((w[i] >= 'a' && w[i] <= 'z') || (w[i] >= 'A' && w[i] <= 'Z') || (w[i] >= '0' && w[i] <= '9') ||
	       w[i] == '_')
		i++;
	return w[i] == '=';
}

static void end_word(struct sh *p)
{
	if (!p->in_word)
		return;
	const char *w = sb_str(&p->word);
	if (p->skip_word) {
		p->skip_word = 0;
	} else if (p->want_arg) {
		p->want_arg = 0;
		if (p->word_literal && w[0] && w[0] != '-' && p->sources)
			sv_push(p->sources, w);
	} else if (p->cmd_pos) {
		if (p->word_literal && (!strcmp(w, "source") || !strcmp(w, ".")))
			p->want_arg = 1;
		if (!is_reserved(w) && !(p->word_literal && is_assignment(w)))
			p->cmd_pos = 0;
	}
	sb_reset(&p->word);
	p->in_word = 0;
	p->word_literal = 1;
}

/* A separator: the next word starts a command. */
static void end_command(struct sh *p)
{
	end_word(p);
	p->cmd_pos = 1;
	p->want_arg = 0;
	p->skip_word = 0;
}

/* ---- here-documents ---- */

static int parse_heredoc_op(struct sh *p)
{
	const char *s = p->s;
	size_t st = p->pos, i = st + 2;
	struct strbuf d = STRBUF_INIT;
	int strip = 0, quoted = 0, ret = -1;

	if (i < p->len && s[i] == '-') {
		strip = 1;
		i++;
	}
	while (i < p->len && (s[i] == ' ' || s[i] == '\t'))
		i++;
	while (i < p->len && !strchr(" \t\n;&|<>()", s[i])) {
		char c = s[i];
		if (c == '\'') {
			const char *e = memchr(s + i + 1, '\'', p->len - i - 1);
			if (!e || memchr(s + i + 1, '\n', (size_t)(e - s) - i - 1)) {
				err_set("bad here-document delimiter");
				goto out;
			}
			sb_add(&d, s + i + 1, (size_t)(e - s) - i - 1);
			i = (size_t)(e - s) + 1;
			quoted = 1;
		} else if (c == '"') {
			size_t j = i + 1;
			while (j < p->len && s[j] != '"' && !strchr("\\$`\n", s[j]))
				j++;
			if (j >= p->len || s[j] != '"') {
				err_set("bad here-document delimiter");
				goto out;
			}
			sb_add(&d, s + i + 1, j - i - 1);
			i = j + 1;
			quoted = 1;
		} else if (c == '\\') {
			if (i + 1 >= p->len || s[i + 1] == '\n') {
				err_set("bad here-document delimiter");
				goto out;
			}
			sb_addc(&d, s[i + 1]);
			i += 2;
			quoted = 1;
		} else if (c == '$' || c == '`') {
			err_set("here-document delimiter with an expansion");
			goto out;
		} else {
			sb_addc(&d, c);
			i++;
		}
	}
	if (d.len == 0) {
		err_set("missing here-document delimiter");
		goto out;
	}
	if (p->nhd == MAX_HEREDOC) {
		err_set("too many here-documents on one line");
		goto out;
	}
	if (p->nhd == 0)
		p->hd_paren = 0;
	p->hd[p->nhd].dlen = d.len;
	p->hd[p->nhd].delim = sb_detach(&d);
	p->hd[p->nhd].strip_tabs = strip;
	p->hd[p->nhd].quoted = quoted;
	p->nhd++;
	p->pos = i;
	put_src(p, st);
	p->prev = 'a';
	ret = 0;
out:
	sb_release(&d);
	return ret;
}

/* One body, copied verbatim up to and including its delimiter line. For an
 * unquoted body bash joins "\"-newline lines before looking for the
 * delimiter and dash does not: fail wherever that could matter. */
static int read_heredoc(struct sh *p, const struct heredoc *h)
{
	const char *s = p->s;
	struct strbuf joined = STRBUF_INIT;
	int prev_cont = 0, ret = -1;

	for (;;) {
		if (p->pos >= p->len) {
			err_set("here-document '%s' is not terminated", h->delim);
			goto out;
		}
		size_t a = p->pos, cmp = a;
		const char *nl = memchr(s + a, '\n', p->len - a);
		size_t b = nl ? (size_t)(nl - s) : p->len;
		if (h->strip_tabs)
			while (cmp < b && s[cmp] == '\t')
				cmp++;
		int is_delim = b - cmp == h->dlen && !memcmp(s + cmp, h->delim, h->dlen);

		if (!h->quoted) {
			size_t nbs = 0;
			if (is_delim && prev_cont) {
				err_set("here-document delimiter after a line continuation");
				goto out;
			}
			if (!prev_cont)
				sb_reset(&joined);
			sb_add(&joined, s + (prev_cont ? a : cmp), b - (prev_cont ? a : cmp));
			if (prev_cont && joined.len == h->dlen && !memcmp(joined.buf, h->delim, h->dlen)) {
				err_set("here-document delimiter split by a line continuation");
				goto out;
			}
			while (nbs < b - a && s[b - 1 - nbs] == '\\')
				nbs++;
			prev_cont = nbs % 2 == 1;
			if (prev_cont && h->strip_tabs) {
				err_set("line continuation in a <<- here-document");
				goto out;
			}
			if (prev_cont)
				sb_setlen(&joined, joined.len - 1);
		}
		p->pos = nl ? b + 1 : b;
		put_src(p, a);
		if (is_delim)
			break;
	}
	p->o.keep = p->o.line_out = p->o.out->len;
	ret = 0;
out:
	sb_release(&joined);
	return ret;
}

static void free_heredocs(struct sh *p)
{
	for (int k = 0; k < p->nhd; k++)
		free(p->hd[k].delim);
	p->nhd = 0;
}

static int read_heredocs(struct sh *p)
{
	int ret = 0;
	if (p->hd_paren) {
		free_heredocs(p);
		return err_set("line %u: here-document inside an unclosed '('", p->line);
	}
	for (int k = 0; k < p->nhd && ret == 0; k++)
		ret = read_heredoc(p, &p->hd[k]);
	free_heredocs(p);
	return ret;
}

/* ---- the command level ---- */

/* A nested construct at pos was scanned up to end: copy it; it may not
 * hold a newline while here-documents wait for the end of the line. */
static int put_token(struct sh *p, size_t st, size_t end)
{
	if (p->nhd && memchr(p->s + st, '\n', end - st))
		return err_set("line %u: multi-line token after a here-document", p->line);
	p->pos = end;
	put_src(p, st);
	p->prev = 'a';
	return 0;
}

static int fail_at(const struct sh *p)
{
	char *msg = xstrdup(err_msg());
	err_set("line %u: %s", p->line, msg);
	free(msg);
	return -1;
}

/* The rest of one physical line (and what its tokens carry along). Sets
 * *continued when it ends in a "\"-newline. */
static int scan_line(struct sh *p, int *continued)
{
	const char *s = p->s;

	for (;;) {
		if (p->pos >= p->len) {
			end_command(p);
			if (p->nhd)
				return err_set("here-document '%s' is not terminated", p->hd[0].delim);
			trim(p);
			put_nl(p);
			return 0;
		}
		size_t st = p->pos, i = st;
		char c = s[st];
		char n = st + 1 < p->len ? s[st + 1] : '\0';

		switch (c) {
		case ' ':
		case '\t':
			end_word(p);
			while (p->pos < p->len && (s[p->pos] == ' ' || s[p->pos] == '\t'))
				p->pos++;
			put(p, s + st, p->pos - st, p->line);
			p->prev = ' ';
			continue;
		case '\n':
			end_command(p);
			trim(p);
			put_nl(p);
			p->pos++;
			p->line++;
			p->prev = '\n';
			return p->nhd ? read_heredocs(p) : 0;
		case '#':
			if (word_start(p->prev)) {
				const char *nl = memchr(s + st, '\n', p->len - st);
				p->pos = nl ? (size_t)(nl - s) : p->len;
				continue;
			}
			if (p->prev == ')')
				return err_set("line %u: '#' right after ')'", p->line);
			word_add(p, "#", 1, 1);
			p->pos++;
			put_src(p, st);
			p->prev = 'a';
			continue;
		case '\\':
			if (n == '\n') {
				if (p->nhd)
					return err_set("line %u: line continuation after a here-document", p->line);
				/* '#' after it still sees what came before the "\" */
				p->pos += 2;
				put_src(p, st);
				p->o.keep = p->o.line_out = p->o.out->len;
				*continued = 1;
				return 0;
			}
			p->pos = st + 1 < p->len ? st + 2 : st + 1;
			word_add(p, s + st + 1, p->pos - st - 1, 1);
			put_src(p, st);
			p->prev = 'a';
			continue;
		case '\'':
			if (scan_sq(s, p->len, &i) < 0)
				return fail_at(p);
			word_add(p, s + st + 1, i - st - 2, 1);
			if (put_token(p, st, i) < 0)
				return -1;
			continue;
		case '"':
			if (scan_dq(s, p->len, &i, 0) < 0)
				return fail_at(p);
			word_add(p, s + st + 1, i - st - 2,
				 !memchr(s + st + 1, '$', i - st - 2) && !memchr(s + st + 1, '`', i - st - 2) &&
					 !memchr(s + st + 1, '\\', i - st - 2));
			if (put_token(p, st, i) < 0)
				return -1;
			continue;
		case '`':
			if (scan_bq(s, p->len, &i) < 0)
				return fail_at(p);
			word_add(p, "", 0, 0);
			if (put_token(p, st, i) < 0)
				return -1;
			continue;
		case '$':
			word_add(p, "", 0, 0);
			if (n == '(' && !(st + 2 < p->len && s[st + 2] == '(')) {
				/* $(...) outside quotes reads like the command level
				 * around it, comments and here-documents included */
				p->pos += 2;
				put_src(p, st);
				end_command(p);
				p->prev = '(';
				if (p->nhd)
					p->hd_paren++;
				continue;
			}
			if (n == '"')
				i = st + 1;
			if (n == '"' ? scan_dq(s, p->len, &i, 0) < 0 : scan_dollar(s, p->len, &i, 0, 0) < 0)
				return fail_at(p);
			if (put_token(p, st, i) < 0)
				return -1;
			continue;
		case '(':
			if (n == '(' && word_start(p->prev)) {
				end_word(p);
				i = st + 2;
				if (scan_arith(s, p->len, &i, 0) < 0)
					return fail_at(p);
				if (put_token(p, st, i) < 0)
					return -1;
				p->prev = ')';
				continue;
			}
			end_command(p);
			p->pos++;
			put_src(p, st);
			p->prev = '(';
			if (p->nhd)
				p->hd_paren++;
			continue;
		case ')':
		case ';':
		case '&':
		case '|':
			end_command(p);
			p->pos++;
			put_src(p, st);
			p->prev = c;
			if (c == ')' && p->nhd)
				p->hd_paren--;
			continue;
		case '<':
		case '>':
			end_word(p);
			if (c == '<' && n == '<' && !(st + 2 < p->len && s[st + 2] == '<')) {
				if (parse_heredoc_op(p) < 0)
					return fail_at(p);
				continue;
			}
			while (p->pos < p->len &&
			       (s[p->pos] == '<' || s[p->pos] == '>' || s[p->pos] == '&' || s[p->pos] == '|'))
				p->pos++;
			put_src(p, st);
			p->prev = '>';
			/* the word after a redirection is its target */
			if (p->pos < p->len && s[p->pos] != '(')
				p->skip_word = 1;
			continue;
		default:
			while (i < p->len && !is_special(s[i])) {
				char w = s[i];
				if (strchr("*?[{", w) || (w == '~' && !p->in_word && i == st))
					p->word_literal = 0;
				i++;
			}
			word_add(p, s + st, i - st, 1);
			p->pos = i;
			put_src(p, st);
			p->prev = 'a';
			continue;
		}
	}
}

static int run(struct sh *p)
{
	const char *s = p->s;
	int continued = 0;

	p->prev = '\n';
	p->cmd_pos = 1;
	p->word_literal = 1;
	while (p->pos < p->len) {
		size_t ls = p->pos, i = ls;
		while (!continued && i < p->len && (s[i] == ' ' || s[i] == '\t'))
			i++;
		if (!continued && (i == p->len || s[i] == '\n' || s[i] == '#')) {
			const char *nl = memchr(s + i, '\n', p->len - i);
			size_t eol = nl ? (size_t)(nl - s) : p->len;
			if (ls == 0 && p->len > 1 && s[0] == '#' && s[1] == '!') {
				/* "#!" picks the interpreter */
				p->pos = eol;
				put_src(p, ls);
				put_nl(p);
			} else if (p->keep_lines && nl) {
				put_nl(p);
			}
			p->pos = nl ? eol + 1 : eol;
			if (nl)
				p->line++;
			continue;
		}
		if (!continued)
			p->prev = '\n';
		continued = 0;
		if (scan_line(p, &continued) < 0)
			return -1;
	}
	return 0;
}

/* Line numbers can reach the output ($LINENO, caller): keep line count. */
static int mentions_lines(const char *s, size_t len)
{
	for (size_t i = 0; i + 6 <= len; i++)
		if (!strncasecmp(s + i, "lineno", 6) || !strncmp(s + i, "caller", 6))
			return 1;
	return 0;
}

int canon_sh_lines(const char *src, size_t len, struct strbuf *out, struct strvec *sources, struct canon_lines *lines)
{
	struct sh p;
	size_t out0 = out->len, dep0 = sources ? sources->n : 0;
	size_t lines0 = lines ? lines->n : 0;
	int ret;

	memset(&p, 0, sizeof(p));
	p.s = src;
	p.len = len;
	p.line = 1;
	canon_out_start(&p.o, out, lines);
	p.sources = sources;
	p.keep_lines = mentions_lines(src, len);
	if (len && memchr(src, '\0', len))
		ret = err_set("NUL byte in shell script");
	else
		ret = run(&p);
	if (ret == 0)
		canon_out_end(&p.o);
	free_heredocs(&p);
	sb_release(&p.word);
	if (ret < 0) {
		sb_setlen(out, out0);
		if (sources)
			while (sources->n > dep0)
				free(sources->v[--sources->n]);
		if (lines)
			lines->n = lines0;
	}
	return ret;
}

int canon_sh(const char *src, size_t len, struct strbuf *out, struct strvec *sources)
{
	return canon_sh_lines(src, len, out, sources, NULL);
}
