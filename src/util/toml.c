/* toml: TOML 1.0.0 parser (see toml.h).
 * A hand-written recursive-descent parser over a buffer that is checked for
 * valid UTF-8 first. The spec's rules about which tables may be defined or
 * extended, and how, are enforced with one tag per table recording how it
 * came to exist; that tag is all the state those rules need. */
#include "util/toml.h"
#include "util/util.h"

#include <errno.h>
#include <locale.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* How a table came to exist, which decides what may be done to it later. */
enum table_kind {
	TK_IMPLICIT, /* parent in a [a.b] header: may still get its own [a] once */
	TK_HEADER,   /* defined by [header], [[header]] (or the root) */
	TK_DOTTED,   /* created by a dotted key: a.b = 1; extendable only that way */
	TK_INLINE,   /* { ... }: closed for good */
};

struct toml_kv {
	char *key;
	size_t keylen;
	struct toml_value *val;
};

struct toml_value {
	enum toml_type type;
	int line;
	int depth;
	union {
		struct {
			struct toml_kv *kv;
			size_t n, alloc;
			/* Open-addressing index into kv (slot holds i + 1), built
			 * once a table is big enough for linear search to hurt:
			 * generated or fuzzed files can have huge tables. */
			uint32_t *index;
			size_t index_cap;
			enum table_kind kind;
		} tab;
		struct {
			struct toml_value **v;
			size_t n, alloc;
			bool aot; /* made by [[header]], so [[header]] may append */
		} arr;
		struct {
			char *s;
			size_t len;
		} str; /* strings, and the text of date/times */
		int64_t i;
		double f;
		bool b;
	} u;
};

struct keypart {
	char *s;
	size_t len;
	size_t pos; /* offset in the input, for error messages */
};

struct keypath {
	struct keypart *v;
	size_t n, alloc;
};

struct parser {
	const char *s;
	size_t len;
	size_t pos;
	const char *file;
	/* line_of() cache: values are created in input order, so counting
	 * newlines incrementally from the last answer keeps it linear. */
	size_t lc_pos;
	int lc_line;
	struct toml_value *root;
	struct toml_value *cur; /* table named by the last [header] */
	/* Full name of the table keys are being added to ("a.b", "x[2].y"),
	 * so that messages name keys the way the user would look them up. */
	struct strbuf path;
};

#define INDEX_MIN 16

/* ---- errors and positions ---------------------------------------------- */

static int line_of(struct parser *p, size_t pos)
{
	if (pos > p->len)
		pos = p->len;
	if (pos < p->lc_pos) {
		p->lc_pos = 0;
		p->lc_line = 1;
	}
	for (size_t i = p->lc_pos; i < pos; i++)
		if (p->s[i] == '\n')
			p->lc_line++;
	p->lc_pos = pos;
	return p->lc_line;
}

/* Columns count characters, not bytes, as an editor would show them. */
static int col_of(struct parser *p, size_t pos)
{
	size_t start = pos;
	int col = 1;

	if (pos > p->len)
		pos = start = p->len;
	while (start > 0 && p->s[start - 1] != '\n')
		start--;
	for (size_t i = start; i < pos; i++)
		if (((unsigned char)p->s[i] & 0xC0) != 0x80)
			col++;
	return col;
}

static int perr(struct parser *p, size_t pos, const char *fmt, ...) PRINTF_LIKE(3, 4);
static int perr(struct parser *p, size_t pos, const char *fmt, ...)
{
	struct strbuf sb = STRBUF_INIT;
	va_list ap;

	va_start(ap, fmt);
	sb_vaddf(&sb, fmt, ap);
	va_end(ap);
	err_set("%s:%d:%d: %s", p->file, line_of(p, pos), col_of(p, pos), sb_str(&sb));
	sb_release(&sb);
	return -1;
}

/* A human description of the character at pos, for "found X" messages. */
static const char *char_desc(const struct parser *p, size_t pos, char buf[32])
{
	unsigned char c;

	if (pos >= p->len)
		return "end of file";
	c = (unsigned char)p->s[pos];
	if (c == '\n')
		return "newline";
	if (c == '\r')
		return "carriage return";
	if (c < 0x20 || c == 0x7f) {
		snprintf(buf, 32, "control character U+%04X", c);
	} else if (c < 0x80) {
		snprintf(buf, 32, "'%c'", c);
	} else {
		size_t n = 1;
		while (pos + n < p->len && n < 4 && ((unsigned char)p->s[pos + n] & 0xC0) == 0x80)
			n++;
		snprintf(buf, 32, "'%.*s'", (int)n, p->s + pos);
	}
	return buf;
}

/* Keys in messages: printable as-is, quoted and escaped when not bare. */
static void add_key(struct strbuf *sb, const char *s, size_t len)
{
	bool bare = len > 0;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
		      c == '-'))
			bare = false;
	}
	if (bare) {
		sb_add(sb, s, len);
		return;
	}
	sb_addc(sb, '"');
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '"' || c == '\\')
			sb_addf(sb, "\\%c", c);
		else if (c < 0x20 || c == 0x7f)
			sb_addf(sb, "\\u%04X", c);
		else
			sb_addc(sb, (char)c);
	}
	sb_addc(sb, '"');
}

/* A bad token for a message: shortened, control characters escaped. */
static const char *token_str(struct strbuf *sb, const char *t, size_t n)
{
	size_t max = n > 40 ? 40 : n;

	/* Do not cut a UTF-8 sequence in half. */
	while (max < n && max > 0 && ((unsigned char)t[max] & 0xC0) == 0x80)
		max--;
	sb_reset(sb);
	for (size_t i = 0; i < max; i++) {
		unsigned char c = (unsigned char)t[i];
		if (c < 0x20 || c == 0x7f)
			sb_addf(sb, "\\u%04X", c);
		else
			sb_addc(sb, (char)c);
	}
	if (max < n)
		sb_adds(sb, "...");
	return sb_str(sb);
}

/* "a.b.c" for the first n parts of a key, after prefix (if not empty);
 * the result lives in sb. */
static const char *key_name(struct strbuf *sb, const char *prefix, const struct keypath *kp, size_t n)
{
	sb_reset(sb);
	sb_adds(sb, prefix);
	for (size_t i = 0; i < n; i++) {
		if (i || sb->len)
			sb_addc(sb, '.');
		add_key(sb, kp->v[i].s, kp->v[i].len);
	}
	return sb_str(sb);
}

/* Same, for keys in headers, which are absolute. */
static const char *key_str(struct strbuf *sb, const struct keypath *kp, size_t n)
{
	sb_reset(sb);
	for (size_t i = 0; i < n; i++) {
		if (i)
			sb_addc(sb, '.');
		add_key(sb, kp->v[i].s, kp->v[i].len);
	}
	return sb_str(sb);
}

/* ---- values --------------------------------------------------------------- */

static struct toml_value *new_value(enum toml_type type, int line, int depth)
{
	struct toml_value *v = xcalloc(1, sizeof(*v));
	v->type = type;
	v->line = line;
	v->depth = depth;
	return v;
}

void toml_free(struct toml_value *v)
{
	if (!v)
		return;
	switch (v->type) {
	case TOML_TABLE:
		for (size_t i = 0; i < v->u.tab.n; i++) {
			free(v->u.tab.kv[i].key);
			toml_free(v->u.tab.kv[i].val);
		}
		free(v->u.tab.kv);
		free(v->u.tab.index);
		break;
	case TOML_ARRAY:
		for (size_t i = 0; i < v->u.arr.n; i++)
			toml_free(v->u.arr.v[i]);
		free(v->u.arr.v);
		break;
	case TOML_STRING:
	case TOML_DATETIME:
	case TOML_DATETIME_LOCAL:
	case TOML_DATE_LOCAL:
	case TOML_TIME_LOCAL:
		free(v->u.str.s);
		break;
	default:
		break;
	}
	free(v);
}

static uint32_t hash_key(const char *s, size_t len)
{
	uint32_t h = 2166136261u; /* FNV-1a */
	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)s[i];
		h *= 16777619u;
	}
	return h;
}

static void index_put(struct toml_value *t, size_t i)
{
	size_t mask = t->u.tab.index_cap - 1;
	size_t h = hash_key(t->u.tab.kv[i].key, t->u.tab.kv[i].keylen) & mask;

	while (t->u.tab.index[h])
		h = (h + 1) & mask;
	t->u.tab.index[h] = (uint32_t)(i + 1);
}

static struct toml_value *table_find(const struct toml_value *t, const char *key, size_t len)
{
	const struct toml_kv *kv = t->u.tab.kv;

	if (t->u.tab.index) {
		size_t mask = t->u.tab.index_cap - 1;
		size_t h = hash_key(key, len) & mask;
		uint32_t slot;
		while ((slot = t->u.tab.index[h])) {
			const struct toml_kv *e = &kv[slot - 1];
			if (e->keylen == len && !memcmp(e->key, key, len))
				return e->val;
			h = (h + 1) & mask;
		}
		return NULL;
	}
	for (size_t i = 0; i < t->u.tab.n; i++)
		if (kv[i].keylen == len && !memcmp(kv[i].key, key, len))
			return kv[i].val;
	return NULL;
}

/* The caller has checked that key is not in t yet. */
static void table_add(struct toml_value *t, const char *key, size_t len, struct toml_value *v)
{
	struct toml_kv *e;

	if (t->u.tab.n == t->u.tab.alloc) {
		t->u.tab.alloc = t->u.tab.alloc ? t->u.tab.alloc * 2 : 4;
		t->u.tab.kv = xrealloc(t->u.tab.kv, t->u.tab.alloc * sizeof(*t->u.tab.kv));
	}
	e = &t->u.tab.kv[t->u.tab.n++];
	e->key = xmalloc(len + 1);
	memcpy(e->key, key, len);
	e->key[len] = '\0';
	e->keylen = len;
	e->val = v;

	if (t->u.tab.n < INDEX_MIN)
		return;
	if (t->u.tab.n * 2 > t->u.tab.index_cap) {
		/* Keep the load factor under one half; rebuild from scratch. */
		free(t->u.tab.index);
		t->u.tab.index_cap = t->u.tab.index_cap ? t->u.tab.index_cap * 2 : INDEX_MIN * 4;
		t->u.tab.index = xcalloc(t->u.tab.index_cap, sizeof(uint32_t));
		for (size_t i = 0; i < t->u.tab.n; i++)
			index_put(t, i);
	} else {
		index_put(t, t->u.tab.n - 1);
	}
}

static void array_add(struct toml_value *a, struct toml_value *v)
{
	if (a->u.arr.n == a->u.arr.alloc) {
		a->u.arr.alloc = a->u.arr.alloc ? a->u.arr.alloc * 2 : 4;
		a->u.arr.v = xrealloc(a->u.arr.v, a->u.arr.alloc * sizeof(*a->u.arr.v));
	}
	a->u.arr.v[a->u.arr.n++] = v;
}

static int check_depth(struct parser *p, size_t pos, int depth)
{
	if (depth > TOML_MAX_DEPTH)
		return perr(p, pos, "nesting too deep (more than %d levels)", TOML_MAX_DEPTH);
	return 0;
}

/* Create and insert an empty table t[key]. */
static int add_table(struct parser *p, struct toml_value *t, const struct keypart *k, enum table_kind kind, int line,
		     struct toml_value **out)
{
	if (check_depth(p, k->pos, t->depth + 1) < 0)
		return -1;
	*out = new_value(TOML_TABLE, line, t->depth + 1);
	(*out)->u.tab.kind = kind;
	table_add(t, k->s, k->len, *out);
	return 0;
}

static const char *what_is(const struct toml_value *v)
{
	if (v->type == TOML_TABLE)
		return v->u.tab.kind == TK_INLINE ? "an inline table" : "a table";
	if (v->type == TOML_ARRAY)
		return v->u.arr.aot ? "an array of tables" : "an array";
	if (v->type == TOML_INTEGER)
		return "an integer";
	return v->type == TOML_STRING  ? "a string"
	       : v->type == TOML_FLOAT ? "a float"
	       : v->type == TOML_BOOL  ? "a boolean"
				       : "a date/time";
}

/* ---- lexical helpers ------------------------------------------------------- */

static int peek(const struct parser *p)
{
	return p->pos < p->len ? (unsigned char)p->s[p->pos] : -1;
}

static int peek_at(const struct parser *p, size_t off)
{
	return p->pos + off < p->len ? (unsigned char)p->s[p->pos + off] : -1;
}

static bool is_digit(int c)
{
	return c >= '0' && c <= '9';
}

static bool is_bare(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) || c == '_' || c == '-';
}

static bool is_ctrl(int c)
{
	return (c >= 0 && c < 0x20 && c != '\t') || c == 0x7f;
}

static void skip_ws(struct parser *p)
{
	while (peek(p) == ' ' || peek(p) == '\t')
		p->pos++;
}

/* Consume LF or CRLF; returns whether one was there. */
static bool eat_newline(struct parser *p)
{
	if (peek(p) == '\n') {
		p->pos++;
		return true;
	}
	if (peek(p) == '\r' && peek_at(p, 1) == '\n') {
		p->pos += 2;
		return true;
	}
	return false;
}

static int bare_cr(struct parser *p)
{
	return perr(p, p->pos, "carriage return not followed by a newline");
}

/* At '#': skip to the end of the line, which is left unconsumed. */
static int skip_comment(struct parser *p)
{
	char buf[32];

	p->pos++;
	for (;;) {
		int c = peek(p);
		if (c < 0 || c == '\n')
			return 0;
		if (c == '\r') {
			if (peek_at(p, 1) == '\n')
				return 0;
			return bare_cr(p);
		}
		if (is_ctrl(c))
			return perr(p, p->pos, "%s is not allowed in a comment", char_desc(p, p->pos, buf));
		p->pos++;
	}
}

/* Whitespace, comments and newlines, as allowed between array elements. */
static int skip_ws_nl(struct parser *p)
{
	for (;;) {
		skip_ws(p);
		if (peek(p) == '#') {
			if (skip_comment(p) < 0)
				return -1;
		} else if (peek(p) == '\r' && peek_at(p, 1) != '\n') {
			return bare_cr(p);
		} else if (!eat_newline(p)) {
			return 0;
		}
	}
}

/* After a header or key/value: optional comment, then newline or EOF. */
static int end_of_line(struct parser *p, const char *after)
{
	char buf[32];

	skip_ws(p);
	if (peek(p) == '#' && skip_comment(p) < 0)
		return -1;
	if (peek(p) < 0 || eat_newline(p))
		return 0;
	if (peek(p) == '\r')
		return bare_cr(p);
	return perr(p, p->pos, "expected end of line after %s, found %s", after, char_desc(p, p->pos, buf));
}

static int check_utf8(struct parser *p)
{
	const unsigned char *s = (const unsigned char *)p->s;
	size_t i = 0;

	while (i < p->len) {
		uint32_t cp, min;
		size_t n;

		if (s[i] < 0x80) {
			i++;
			continue;
		}
		if ((s[i] & 0xE0) == 0xC0) {
			n = 1, cp = s[i] & 0x1F, min = 0x80;
		} else if ((s[i] & 0xF0) == 0xE0) {
			n = 2, cp = s[i] & 0x0F, min = 0x800;
		} else if ((s[i] & 0xF8) == 0xF0) {
			n = 3, cp = s[i] & 0x07, min = 0x10000;
		} else {
			return perr(p, i, "invalid UTF-8 byte 0x%02X", s[i]);
		}
		for (size_t k = 1; k <= n; k++) {
			if (i + k >= p->len || (s[i + k] & 0xC0) != 0x80)
				return perr(p, i, "truncated UTF-8 sequence");
			cp = (cp << 6) | (s[i + k] & 0x3F);
		}
		if (cp < min)
			return perr(p, i, "overlong UTF-8 sequence");
		if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
			return perr(p, i, "invalid code point U+%04X in UTF-8", cp);
		i += n + 1;
	}
	return 0;
}

static void add_utf8(struct strbuf *sb, uint32_t cp)
{
	char b[4];
	size_t n;

	if (cp < 0x80) {
		b[0] = (char)cp;
		n = 1;
	} else if (cp < 0x800) {
		b[0] = (char)(0xC0 | (cp >> 6));
		b[1] = (char)(0x80 | (cp & 0x3F));
		n = 2;
	} else if (cp < 0x10000) {
		b[0] = (char)(0xE0 | (cp >> 12));
		b[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
		b[2] = (char)(0x80 | (cp & 0x3F));
		n = 3;
	} else {
		b[0] = (char)(0xF0 | (cp >> 18));
		b[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
		b[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
		b[3] = (char)(0x80 | (cp & 0x3F));
		n = 4;
	}
	sb_add(sb, b, n);
}

/* ---- strings ------------------------------------------------------------- */

/* At the backslash of an escape in a basic string. */
static int parse_escape(struct parser *p, struct strbuf *sb)
{
	size_t start = p->pos;
	int c = peek_at(p, 1);
	int ndig = 0;
	uint32_t cp = 0;
	char buf[32];

	switch (c) {
	case 'b':
		sb_addc(sb, '\b');
		break;
	case 't':
		sb_addc(sb, '\t');
		break;
	case 'n':
		sb_addc(sb, '\n');
		break;
	case 'f':
		sb_addc(sb, '\f');
		break;
	case 'r':
		sb_addc(sb, '\r');
		break;
	case '"':
		sb_addc(sb, '"');
		break;
	case '\\':
		sb_addc(sb, '\\');
		break;
	case 'u':
		ndig = 4;
		break;
	case 'U':
		ndig = 8;
		break;
	default:
		if (c > 0x20 && c < 0x7f)
			return perr(p, start, "invalid escape sequence '\\%c'", c);
		return perr(p, start, "invalid escape sequence: '\\' followed by %s", char_desc(p, start + 1, buf));
	}
	p->pos += 2;
	if (!ndig)
		return 0;
	for (int i = 0; i < ndig; i++) {
		int d = peek(p);
		if (is_digit(d))
			d -= '0';
		else if (d >= 'a' && d <= 'f')
			d -= 'a' - 10;
		else if (d >= 'A' && d <= 'F')
			d -= 'A' - 10;
		else
			return perr(p, start,
				    "invalid escape sequence '\\%c': "
				    "expected %d hex digits",
				    c, ndig);
		cp = cp << 4 | (uint32_t)d;
		p->pos++;
	}
	if (cp > 0x10FFFF)
		return perr(p, start,
			    "invalid escape '\\%c%.*s': U+%X is beyond "
			    "U+10FFFF",
			    c, ndig, p->s + start + 2, cp);
	if (cp >= 0xD800 && cp <= 0xDFFF)
		return perr(p, start,
			    "invalid escape '\\%c%.*s': surrogate code "
			    "points are not characters",
			    c, ndig, p->s + start + 2);
	add_utf8(sb, cp);
	return 0;
}

/* Checks one character of string content other than quotes and escapes;
 * copies it (CRLF becomes LF) or reports why it is not allowed. */
static int string_char(struct parser *p, struct strbuf *sb, bool multi, size_t open)
{
	char buf[32];
	int c = peek(p);

	if (c < 0)
		return perr(p, open, "unterminated string");
	if (c == '\n' || c == '\r') {
		if (!multi)
			return perr(p, p->pos,
				    "newline in a single-line string "
				    "(missing closing quote?)");
		if (!eat_newline(p))
			return bare_cr(p);
		sb_addc(sb, '\n');
		return 0;
	}
	if (is_ctrl(c))
		return perr(p, p->pos, "%s must be escaped in a string", char_desc(p, p->pos, buf));
	sb_addc(sb, (char)c);
	p->pos++;
	return 0;
}

/* In a multi-line basic string, at a backslash that may end a line:
 * "\", optional whitespace, newline, then all whitespace is trimmed.
 * Returns 1 if it was one, 0 if it is an ordinary escape. */
static int line_ending_backslash(struct parser *p)
{
	size_t i = p->pos + 1;

	while (i < p->len && (p->s[i] == ' ' || p->s[i] == '\t'))
		i++;
	if (i < p->len && (p->s[i] == '\n' || (p->s[i] == '\r' && i + 1 < p->len && p->s[i + 1] == '\n'))) {
		p->pos = i;
		for (;;) {
			skip_ws(p);
			if (peek(p) == '\r' && peek_at(p, 1) != '\n')
				return bare_cr(p);
			if (!eat_newline(p))
				return 1;
		}
	}
	if (i > p->pos + 1)
		return perr(p, p->pos,
			    "invalid escape: '\\' followed by whitespace "
			    "must end the line");
	return 0;
}

/* At an opening quote (' or "): parses any of the four string kinds. */
static int parse_string(struct parser *p, struct strbuf *sb, bool allow_multi)
{
	size_t open = p->pos;
	char q = p->s[p->pos];
	bool multi = peek_at(p, 1) == q && peek_at(p, 2) == q;
	int rc;

	if (multi && !allow_multi)
		return perr(p, open, "multi-line strings cannot be used as keys");
	p->pos += multi ? 3 : 1;
	/* A newline right after the opening delimiter is not content. */
	if (multi)
		eat_newline(p);
	for (;;) {
		int c = peek(p);
		if (c == q) {
			size_t n = 0;
			if (!multi) {
				p->pos++;
				return 0;
			}
			while (peek_at(p, n) == q)
				n++;
			if (n < 3) {
				sb_add(sb, p->s + p->pos, n);
				p->pos += n;
				continue;
			}
			/* Up to two quotes may precede the closing three. */
			if (n > 5)
				return perr(p, p->pos + 5,
					    "too many quotes at the end "
					    "of a multi-line string");
			sb_add(sb, p->s + p->pos, n - 3);
			p->pos += n;
			return 0;
		}
		if (c == '\\' && q == '"') {
			if (multi) {
				rc = line_ending_backslash(p);
				if (rc < 0)
					return -1;
				if (rc > 0)
					continue;
			}
			if (parse_escape(p, sb) < 0)
				return -1;
			continue;
		}
		if (string_char(p, sb, multi, open) < 0)
			return -1;
	}
}

/* ---- keys ----------------------------------------------------------------- */

static void keypath_free(struct keypath *kp)
{
	for (size_t i = 0; i < kp->n; i++)
		free(kp->v[i].s);
	free(kp->v);
	kp->v = NULL;
	kp->n = kp->alloc = 0;
}

/* key = simple-key *( ws "." ws simple-key ); stops after trailing ws. */
static int parse_key(struct parser *p, struct keypath *kp)
{
	struct strbuf sb = STRBUF_INIT;
	char buf[32];
	int rc = -1;

	for (;;) {
		size_t start;
		int c;

		skip_ws(p);
		start = p->pos;
		c = peek(p);
		sb_reset(&sb);
		if (c == '"' || c == '\'') {
			if (parse_string(p, &sb, false) < 0)
				goto out;
		} else if (is_bare(c)) {
			while (is_bare(peek(p)))
				p->pos++;
			sb_add(&sb, p->s + start, p->pos - start);
		} else {
			perr(p, start, "expected a key, found %s", char_desc(p, start, buf));
			goto out;
		}
		if (kp->n == kp->alloc) {
			kp->alloc = kp->alloc ? kp->alloc * 2 : 4;
			kp->v = xrealloc(kp->v, kp->alloc * sizeof(*kp->v));
		}
		kp->v[kp->n].len = sb.len;
		kp->v[kp->n].pos = start;
		kp->v[kp->n].s = sb_detach(&sb);
		kp->n++;
		skip_ws(p);
		if (peek(p) != '.')
			break;
		p->pos++;
	}
	rc = 0;
out:
	sb_release(&sb);
	return rc;
}

/* ---- numbers, booleans, dates --------------------------------------------- */

/* Digits of the given base with single underscores between digits.
 * Returns how many characters were consumed (0: no digit at *i). */
static size_t scan_digits(const char *t, size_t n, size_t i, int base)
{
	size_t start = i;

	for (;;) {
		int c = i < n ? (unsigned char)t[i] : -1;
		bool ok = base == 16 ? (is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))
				     : (c >= '0' && c < '0' + base);
		if (ok) {
			i++;
		} else if (c == '_' && i > start && i + 1 < n) {
			int d = (unsigned char)t[i + 1];
			bool next = base == 16 ? (is_digit(d) || (d >= 'a' && d <= 'f') || (d >= 'A' && d <= 'F'))
					       : (d >= '0' && d < '0' + base);
			if (!next)
				break;
			i++;
		} else {
			break;
		}
	}
	return i - start;
}

static bool is_delim(int c)
{
	return c < 0 || c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == ',' || c == ']' || c == '}' || c == '#';
}

/* Number token t[0..n) at input offset start, validated by the ABNF. */
static int parse_number(struct parser *p, size_t start, const char *t, size_t n, struct toml_value *v)
{
	struct strbuf clean = STRBUF_INIT;
	size_t i = 0, d;
	bool neg = false, sign = false, is_float = false;
	int base = 10;
	int rc = -1;

	if (t[0] == '+' || t[0] == '-') {
		neg = t[0] == '-';
		sign = true;
		i = 1;
	}
	if (n - i == 3 && (!memcmp(t + i, "inf", 3) || !memcmp(t + i, "nan", 3))) {
		v->type = TOML_FLOAT;
		v->u.f = t[i] == 'i' ? (neg ? -INFINITY : INFINITY) : (neg ? -NAN : NAN);
		return 0;
	}
	if (n - i >= 2 && t[i] == '0' && (t[i + 1] == 'x' || t[i + 1] == 'o' || t[i + 1] == 'b')) {
		if (sign) {
			perr(p, start,
			     "a sign is not allowed on hexadecimal, octal "
			     "or binary integers");
			goto out;
		}
		base = t[i + 1] == 'x' ? 16 : t[i + 1] == 'o' ? 8 : 2;
		i += 2;
		d = scan_digits(t, n, i, base);
		if (!d) {
			perr(p, start + i, "expected %s digits after '0%c'",
			     base == 16  ? "hexadecimal"
			     : base == 8 ? "octal"
					 : "binary",
			     t[1]);
			goto out;
		}
		i += d;
	} else {
		d = scan_digits(t, n, i, 10);
		if (!d && i < n && t[i] == '_') {
			perr(p, start + i,
			     "underscores in numbers must be between "
			     "digits");
			goto out;
		}
		if (!d) {
			perr(p, start, "invalid value '%s' (strings must be quoted)", token_str(&clean, t, n));
			goto out;
		}
		if (t[i] == '0' && d > 1) {
			perr(p, start + i, "leading zeros are not allowed in numbers");
			goto out;
		}
		i += d;
		if (i < n && t[i] == '.') {
			is_float = true;
			d = scan_digits(t, n, ++i, 10);
			if (!d) {
				perr(p, start + i, "expected digits after the decimal point");
				goto out;
			}
			i += d;
		}
		if (i < n && (t[i] == 'e' || t[i] == 'E')) {
			is_float = true;
			i++;
			if (i < n && (t[i] == '+' || t[i] == '-'))
				i++;
			d = scan_digits(t, n, i, 10);
			if (!d) {
				perr(p, start + i, "expected digits in the exponent");
				goto out;
			}
			i += d;
		}
	}
	if (i < n) {
		char buf[32];
		if (t[i] == '_')
			perr(p, start + i,
			     "underscores in numbers must be "
			     "between digits");
		else
			perr(p, start + i, "invalid character %s in number", char_desc(p, start + i, buf));
		goto out;
	}

	for (size_t k = 0; k < n; k++)
		if (t[k] != '_')
			sb_addc(&clean, t[k]);
	if (is_float) {
		/* strtod follows LC_NUMERIC; TOML always uses '.'. */
		const char *dp = localeconv()->decimal_point;
		char *end, *dot = strchr(clean.buf, '.');
		double f;

		if (dot && dp && dp[0] && dp[0] != '.' && !dp[1])
			*dot = dp[0];
		errno = 0;
		f = strtod(clean.buf, &end);
		if (errno == ERANGE && isinf(f)) {
			perr(p, start, "float %.*s is out of range", (int)n, t);
			goto out;
		}
		v->type = TOML_FLOAT;
		v->u.f = f;
	} else {
		/* Accumulate as the magnitude; INT64_MIN is one past INT64_MAX. */
		uint64_t max = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
		uint64_t acc = 0;
		size_t k = sign ? 1 : 0;

		if (base != 10)
			k += 2;
		for (; k < clean.len; k++) {
			int c = clean.buf[k];
			uint64_t dv = is_digit(c) ? (uint64_t)(c - '0') : (uint64_t)((c | 0x20) - 'a' + 10);
			if (acc > (max - dv) / (uint64_t)base) {
				perr(p, start, "integer %.*s does not fit in 64 bits", (int)n, t);
				goto out;
			}
			acc = acc * (uint64_t)base + dv;
		}
		v->type = TOML_INTEGER;
		if (neg)
			v->u.i = acc == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)acc;
		else
			v->u.i = (int64_t)acc;
	}
	rc = 0;
out:
	sb_release(&clean);
	return rc;
}

/* n digits at p->pos + off into *val. */
static bool fixed_digits(const struct parser *p, size_t off, int n, int *val)
{
	*val = 0;
	for (int i = 0; i < n; i++) {
		int c = peek_at(p, off + (size_t)i);
		if (!is_digit(c))
			return false;
		*val = *val * 10 + (c - '0');
	}
	return true;
}

static bool is_leap(int y)
{
	return y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
}

/* HH:MM:SS[.frac] at p->pos, appended to sb. */
static int parse_time(struct parser *p, struct strbuf *sb)
{
	size_t start = p->pos;
	int h, m, s;
	char buf[32];

	if (!fixed_digits(p, 0, 2, &h) || peek_at(p, 2) != ':' || !fixed_digits(p, 3, 2, &m) || peek_at(p, 5) != ':' ||
	    !fixed_digits(p, 6, 2, &s))
		return perr(p, start, "invalid time: expected HH:MM:SS");
	if (h > 23)
		return perr(p, start, "invalid time: hour %02d is out of range", h);
	if (m > 59)
		return perr(p, start + 3, "invalid time: minute %02d is out of range", m);
	/* 60 is a leap second, which RFC 3339 allows. */
	if (s > 60)
		return perr(p, start + 6, "invalid time: second %02d is out of range", s);
	p->pos += 8;
	if (peek(p) == '.') {
		p->pos++;
		if (!is_digit(peek(p)))
			return perr(p, p->pos,
				    "invalid time: expected digits after "
				    "'.', found %s",
				    char_desc(p, p->pos, buf));
		while (is_digit(peek(p)))
			p->pos++;
	}
	sb_add(sb, p->s + start, p->pos - start);
	return 0;
}

/* At a value starting "DDDD-" (date) or "DD:" (time). */
static int parse_datetime(struct parser *p, struct toml_value *v)
{
	static const int mdays[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	struct strbuf sb = STRBUF_INIT;
	size_t start = p->pos;
	char buf[32];
	int y, mo, d, rc = -1;

	if (peek_at(p, 2) == ':') {
		if (parse_time(p, &sb) < 0)
			goto out;
		v->type = TOML_TIME_LOCAL;
		goto done;
	}
	if (!fixed_digits(p, 0, 4, &y) || peek_at(p, 4) != '-' || !fixed_digits(p, 5, 2, &mo) || peek_at(p, 7) != '-' ||
	    !fixed_digits(p, 8, 2, &d)) {
		perr(p, start, "invalid date: expected YYYY-MM-DD");
		goto out;
	}
	if (mo < 1 || mo > 12) {
		perr(p, start + 5, "invalid date: month %02d is out of range", mo);
		goto out;
	}
	if (d < 1 || d > mdays[mo - 1] + (mo == 2 && is_leap(y))) {
		perr(p, start + 8, "invalid date: %.10s does not exist", p->s + start);
		goto out;
	}
	sb_add(&sb, p->s + start, 10);
	p->pos += 10;
	v->type = TOML_DATE_LOCAL;
	/* A space separates date and time only if a time follows; otherwise
	 * it is just whitespace after a local date. */
	if (peek(p) == 'T' || peek(p) == 't' ||
	    (peek(p) == ' ' && is_digit(peek_at(p, 1)) && is_digit(peek_at(p, 2)) && peek_at(p, 3) == ':')) {
		p->pos++;
		sb_addc(&sb, 'T');
		if (parse_time(p, &sb) < 0)
			goto out;
		v->type = TOML_DATETIME_LOCAL;
		if (peek(p) == 'Z' || peek(p) == 'z') {
			p->pos++;
			sb_addc(&sb, 'Z');
			v->type = TOML_DATETIME;
		} else if (peek(p) == '+' || peek(p) == '-') {
			int oh, om;
			if (!fixed_digits(p, 1, 2, &oh) || peek_at(p, 3) != ':' || !fixed_digits(p, 4, 2, &om)) {
				perr(p, p->pos,
				     "invalid time offset: expected "
				     "+HH:MM or -HH:MM");
				goto out;
			}
			if (oh > 23 || om > 59) {
				perr(p, p->pos, "invalid time offset %.6s: out of range", p->s + p->pos);
				goto out;
			}
			sb_add(&sb, p->s + p->pos, 6);
			p->pos += 6;
			v->type = TOML_DATETIME;
		}
	}
done:
	if (!is_delim(peek(p))) {
		perr(p, p->pos, "invalid date/time: unexpected %s", char_desc(p, p->pos, buf));
		goto out;
	}
	v->u.str.len = sb.len;
	v->u.str.s = sb_detach(&sb);
	rc = 0;
out:
	sb_release(&sb);
	return rc;
}

/* ---- values ---------------------------------------------------------------- */

static int parse_value(struct parser *p, int depth, struct toml_value **out);
static int parse_keyval(struct parser *p, struct toml_value *t);

static int parse_array(struct parser *p, int depth, struct toml_value *a)
{
	size_t open = p->pos, base;
	char buf[32];
	int rc;

	p->pos++;
	for (;;) {
		struct toml_value *v;

		if (skip_ws_nl(p) < 0)
			return -1;
		if (peek(p) == ']')
			break;
		if (peek(p) < 0)
			return perr(p, open, "unterminated array");
		base = p->path.len;
		sb_addf(&p->path, "[%zu]", a->u.arr.n);
		rc = parse_value(p, depth + 1, &v);
		sb_setlen(&p->path, base);
		if (rc < 0)
			return -1;
		array_add(a, v);
		if (skip_ws_nl(p) < 0)
			return -1;
		if (peek(p) == ',') {
			p->pos++;
			continue;
		}
		if (peek(p) == ']')
			break;
		if (peek(p) < 0)
			return perr(p, open, "unterminated array");
		return perr(p, p->pos, "expected ',' or ']' in array, found %s", char_desc(p, p->pos, buf));
	}
	p->pos++;
	return 0;
}

static int parse_inline_table(struct parser *p, struct toml_value *t)
{
	size_t open = p->pos;
	char buf[32];

	p->pos++;
	skip_ws(p);
	if (peek(p) == '}') {
		p->pos++;
		return 0;
	}
	for (;;) {
		int c;

		skip_ws(p);
		c = peek(p);
		if (c == '\n' || c == '\r')
			return perr(p, p->pos, "newlines are not allowed in inline tables");
		if (c < 0)
			return perr(p, open, "unterminated inline table");
		if (parse_keyval(p, t) < 0)
			return -1;
		skip_ws(p);
		c = peek(p);
		if (c == ',') {
			p->pos++;
			skip_ws(p);
			if (peek(p) == '}')
				return perr(p, p->pos - 1,
					    "trailing comma is not "
					    "allowed in inline tables");
			continue;
		}
		if (c == '}')
			break;
		if (c == '\n' || c == '\r')
			return perr(p, p->pos, "newlines are not allowed in inline tables");
		if (c < 0)
			return perr(p, open, "unterminated inline table");
		return perr(p, p->pos, "expected ',' or '}' in inline table, found %s", char_desc(p, p->pos, buf));
	}
	p->pos++;
	return 0;
}

/* Parses the value at p->pos; depth is the depth it will have in the tree. */
static int parse_value(struct parser *p, int depth, struct toml_value **out)
{
	size_t start = p->pos, end;
	struct toml_value *v;
	struct strbuf sb = STRBUF_INIT;
	char buf[32];
	int c = peek(p);
	int rc = -1;

	v = new_value(TOML_STRING, line_of(p, start), depth);
	if (c == '"' || c == '\'') {
		if (parse_string(p, &sb, true) < 0)
			goto out;
		v->u.str.len = sb.len;
		v->u.str.s = sb_detach(&sb);
	} else if (c == '[' || c == '{') {
		if (check_depth(p, start, depth) < 0)
			goto out;
		if (c == '[') {
			v->type = TOML_ARRAY;
			if (parse_array(p, depth, v) < 0)
				goto out;
		} else {
			v->type = TOML_TABLE;
			v->u.tab.kind = TK_INLINE;
			if (parse_inline_table(p, v) < 0)
				goto out;
		}
	} else if (is_digit(c) && is_digit(peek_at(p, 1)) &&
		   ((peek_at(p, 2) == ':') ||
		    (is_digit(peek_at(p, 2)) && is_digit(peek_at(p, 3)) && peek_at(p, 4) == '-'))) {
		if (parse_datetime(p, v) < 0)
			goto out;
	} else if (is_delim(c) || c == '=') {
		perr(p, start, "expected a value, found %s", char_desc(p, start, buf));
		goto out;
	} else {
		/* Everything else is one token up to a delimiter. */
		end = start;
		while (!is_delim(end < p->len ? (unsigned char)p->s[end] : -1))
			end++;
		p->pos = end;
		if (end - start == 4 && !memcmp(p->s + start, "true", 4)) {
			v->type = TOML_BOOL;
			v->u.b = true;
		} else if (end - start == 5 && !memcmp(p->s + start, "false", 5)) {
			v->type = TOML_BOOL;
			v->u.b = false;
		} else if (!(is_digit(c) || c == '+' || c == '-' || c == 'i' || c == 'n')) {
			if (is_ctrl(c))
				perr(p, start, "unexpected %s", char_desc(p, start, buf));
			else
				perr(p, start,
				     "invalid value '%s' (strings must "
				     "be quoted)",
				     token_str(&sb, p->s + start, end - start));
			goto out;
		} else if (parse_number(p, start, p->s + start, end - start, v) < 0) {
			goto out;
		}
	}
	*out = v;
	v = NULL;
	rc = 0;
out:
	sb_release(&sb);
	toml_free(v);
	return rc;
}

/* key = value, into table t (the current section or an inline table). */
static int parse_keyval(struct parser *p, struct toml_value *t)
{
	struct keypath kp = { NULL, 0, 0 };
	struct strbuf ks = STRBUF_INIT;
	struct toml_value *v;
	size_t base;
	char buf[32];
	int rc = -1;

	if (parse_key(p, &kp) < 0)
		goto out;
	if (peek(p) != '=') {
		perr(p, p->pos, "expected '=' after key '%s', found %s", key_str(&ks, &kp, kp.n),
		     char_desc(p, p->pos, buf));
		goto out;
	}
	p->pos++;
	skip_ws(p);
	/* Dotted keys may only walk through tables that dotted keys made:
	 * a table defined by a header or inline is closed to them. */
	for (size_t i = 0; i + 1 < kp.n; i++) {
		struct keypart *k = &kp.v[i];
		v = table_find(t, k->s, k->len);
		if (!v) {
			if (add_table(p, t, k, TK_DOTTED, line_of(p, k->pos), &v) < 0)
				goto out;
		} else if (v->type != TOML_TABLE) {
			perr(p, k->pos,
			     "cannot use key '%s' as a table: it is %s "
			     "(defined at line %d)",
			     key_name(&ks, sb_str(&p->path), &kp, i + 1), what_is(v), v->line);
			goto out;
		} else if (v->u.tab.kind == TK_INLINE) {
			perr(p, k->pos,
			     "cannot add keys to inline table '%s' "
			     "(defined at line %d)",
			     key_name(&ks, sb_str(&p->path), &kp, i + 1), v->line);
			goto out;
		} else if (v->u.tab.kind != TK_DOTTED) {
			perr(p, k->pos,
			     "cannot add keys to table [%s] with dotted "
			     "keys: it was defined at line %d",
			     key_name(&ks, sb_str(&p->path), &kp, i + 1), v->line);
			goto out;
		}
		t = v;
	}
	v = table_find(t, kp.v[kp.n - 1].s, kp.v[kp.n - 1].len);
	if (v) {
		perr(p, kp.v[kp.n - 1].pos,
		     "duplicate key '%s' (first defined "
		     "at line %d)",
		     key_name(&ks, sb_str(&p->path), &kp, kp.n), v->line);
		goto out;
	}
	/* While parsing the value, the path names it. Appending, not
	 * rebuilding, keeps this linear in the size of the input. */
	base = p->path.len;
	for (size_t i = 0; i < kp.n; i++) {
		if (p->path.len)
			sb_addc(&p->path, '.');
		add_key(&p->path, kp.v[i].s, kp.v[i].len);
	}
	rc = parse_value(p, t->depth + 1, &v);
	sb_setlen(&p->path, base);
	if (rc == 0)
		table_add(t, kp.v[kp.n - 1].s, kp.v[kp.n - 1].len, v);
out:
	keypath_free(&kp);
	sb_release(&ks);
	return rc;
}

/* [a.b.c] or [[a.b.c]]: makes p->cur the named table. */
static int parse_header(struct parser *p)
{
	struct keypath kp = { NULL, 0, 0 };
	struct strbuf ks = STRBUF_INIT;
	size_t start = p->pos;
	bool aot = peek_at(p, 1) == '[';
	int line = line_of(p, start);
	struct toml_value *t = p->root, *v;
	struct keypart *last;
	char buf[32];
	int rc = -1;

	p->pos += aot ? 2 : 1;
	if (parse_key(p, &kp) < 0)
		goto out;
	if (peek(p) != ']' || (aot && peek_at(p, 1) != ']')) {
		size_t at = p->pos + (peek(p) == ']');
		perr(p, at, "expected '%s' to close the %s header, found %s", aot ? "]]" : "]",
		     aot ? "array-of-tables" : "table", char_desc(p, at, buf));
		goto out;
	}
	p->pos += aot ? 2 : 1;

	/* Headers may walk through any table except inline ones; through
	 * an array of tables they go to its last element. */
	for (size_t i = 0; i + 1 < kp.n; i++) {
		struct keypart *k = &kp.v[i];
		v = table_find(t, k->s, k->len);
		if (!v) {
			if (add_table(p, t, k, TK_IMPLICIT, line, &v) < 0)
				goto out;
		} else if (v->type == TOML_ARRAY && v->u.arr.aot) {
			v = v->u.arr.v[v->u.arr.n - 1];
		} else if (v->type != TOML_TABLE) {
			perr(p, k->pos,
			     "cannot use key '%s' as a table: it is %s "
			     "(defined at line %d)",
			     key_str(&ks, &kp, i + 1), what_is(v), v->line);
			goto out;
		} else if (v->u.tab.kind == TK_INLINE) {
			perr(p, k->pos,
			     "cannot add to inline table '%s' (defined "
			     "at line %d)",
			     key_str(&ks, &kp, i + 1), v->line);
			goto out;
		}
		t = v;
	}

	last = &kp.v[kp.n - 1];
	v = table_find(t, last->s, last->len);
	if (aot) {
		struct toml_value *elem;
		if (!v) {
			if (check_depth(p, last->pos, t->depth + 1) < 0)
				goto out;
			v = new_value(TOML_ARRAY, line, t->depth + 1);
			v->u.arr.aot = true;
			table_add(t, last->s, last->len, v);
		} else if (v->type != TOML_ARRAY || !v->u.arr.aot) {
			perr(p, last->pos,
			     "cannot define [[%s]]: it is already %s "
			     "(defined at line %d)",
			     key_str(&ks, &kp, kp.n), what_is(v), v->line);
			goto out;
		}
		if (check_depth(p, last->pos, v->depth + 1) < 0)
			goto out;
		elem = new_value(TOML_TABLE, line, v->depth + 1);
		elem->u.tab.kind = TK_HEADER;
		array_add(v, elem);
		p->cur = elem;
		sb_reset(&p->path);
		sb_addf(&p->path, "%s[%zu]", key_str(&ks, &kp, kp.n), v->u.arr.n - 1);
	} else {
		if (!v) {
			if (add_table(p, t, last, TK_HEADER, line, &v) < 0)
				goto out;
		} else if (v->type == TOML_TABLE && v->u.tab.kind == TK_IMPLICIT) {
			v->u.tab.kind = TK_HEADER;
			v->line = line;
		} else if (v->type == TOML_TABLE && v->u.tab.kind == TK_HEADER) {
			perr(p, last->pos,
			     "table [%s] is defined twice (first at "
			     "line %d)",
			     key_str(&ks, &kp, kp.n), v->line);
			goto out;
		} else if (v->type == TOML_TABLE && v->u.tab.kind == TK_DOTTED) {
			perr(p, last->pos,
			     "cannot define table [%s]: it was already "
			     "created by dotted keys at line %d",
			     key_str(&ks, &kp, kp.n), v->line);
			goto out;
		} else {
			perr(p, last->pos,
			     "cannot define table [%s]: it is already "
			     "%s (defined at line %d)",
			     key_str(&ks, &kp, kp.n), what_is(v), v->line);
			goto out;
		}
		p->cur = v;
		sb_reset(&p->path);
		sb_adds(&p->path, key_str(&ks, &kp, kp.n));
	}
	rc = 0;
out:
	keypath_free(&kp);
	sb_release(&ks);
	return rc;
}

static int parse_document(struct parser *p)
{
	/* A UTF-8 byte order mark is tolerated at the very start only. */
	if (p->len >= 3 && !memcmp(p->s, "\xEF\xBB\xBF", 3))
		p->pos = 3;
	for (;;) {
		int c;

		skip_ws(p);
		c = peek(p);
		if (c < 0)
			return 0;
		if (c == '[') {
			if (parse_header(p) < 0)
				return -1;
			if (end_of_line(p, "table header") < 0)
				return -1;
		} else if (c == '#' || c == '\n' || c == '\r') {
			if (end_of_line(p, "comment") < 0)
				return -1;
		} else {
			if (parse_keyval(p, p->cur) < 0)
				return -1;
			if (end_of_line(p, "value") < 0)
				return -1;
		}
	}
}

int toml_parse(const char *data, size_t len, const char *filename, struct toml_value **out)
{
	struct parser p;
	int rc = -1;

	memset(&p, 0, sizeof(p));
	p.s = data;
	p.len = len;
	p.file = filename ? filename : "<input>";
	p.lc_line = 1;
	p.root = new_value(TOML_TABLE, 1, 0);
	p.root->u.tab.kind = TK_HEADER;
	p.cur = p.root;
	*out = NULL;
	if (check_utf8(&p) < 0 || parse_document(&p) < 0)
		goto out;
	*out = p.root;
	p.root = NULL;
	rc = 0;
out:
	toml_free(p.root);
	sb_release(&p.path);
	return rc;
}

int toml_parse_file(const char *path, struct toml_value **out)
{
	struct strbuf sb = STRBUF_INIT;
	int rc;

	*out = NULL;
	rc = read_file_sb(path, &sb);
	if (rc == 0)
		rc = toml_parse(sb.buf, sb.len, path, out);
	sb_release(&sb);
	return rc;
}

/* ---- accessors ------------------------------------------------------------- */

enum toml_type toml_type(const struct toml_value *v)
{
	return v->type;
}

const char *toml_type_name(enum toml_type t)
{
	switch (t) {
	case TOML_TABLE:
		return "table";
	case TOML_ARRAY:
		return "array";
	case TOML_STRING:
		return "string";
	case TOML_INTEGER:
		return "integer";
	case TOML_FLOAT:
		return "float";
	case TOML_BOOL:
		return "bool";
	case TOML_DATETIME:
		return "datetime";
	case TOML_DATETIME_LOCAL:
		return "datetime-local";
	case TOML_DATE_LOCAL:
		return "date-local";
	case TOML_TIME_LOCAL:
		return "time-local";
	}
	return "unknown";
}

int toml_line(const struct toml_value *v)
{
	return v ? v->line : 0;
}

size_t toml_table_count(const struct toml_value *t)
{
	return t && t->type == TOML_TABLE ? t->u.tab.n : 0;
}

const char *toml_table_key(const struct toml_value *t, size_t i, size_t *len)
{
	if (!t || t->type != TOML_TABLE || i >= t->u.tab.n)
		return NULL;
	if (len)
		*len = t->u.tab.kv[i].keylen;
	return t->u.tab.kv[i].key;
}

struct toml_value *toml_table_value(const struct toml_value *t, size_t i)
{
	if (!t || t->type != TOML_TABLE || i >= t->u.tab.n)
		return NULL;
	return t->u.tab.kv[i].val;
}

struct toml_value *toml_table_getn(const struct toml_value *t, const char *key, size_t len)
{
	if (!t || t->type != TOML_TABLE)
		return NULL;
	return table_find(t, key, len);
}

struct toml_value *toml_table_get(const struct toml_value *t, const char *key)
{
	return toml_table_getn(t, key, strlen(key));
}

size_t toml_array_len(const struct toml_value *a)
{
	return a && a->type == TOML_ARRAY ? a->u.arr.n : 0;
}

struct toml_value *toml_array_get(const struct toml_value *a, size_t i)
{
	if (!a || a->type != TOML_ARRAY || i >= a->u.arr.n)
		return NULL;
	return a->u.arr.v[i];
}

const char *toml_string(const struct toml_value *v, size_t *len)
{
	if (!v || v->type != TOML_STRING)
		return NULL;
	if (len)
		*len = v->u.str.len;
	return v->u.str.s;
}

int64_t toml_int(const struct toml_value *v)
{
	return v && v->type == TOML_INTEGER ? v->u.i : 0;
}

double toml_float(const struct toml_value *v)
{
	return v && v->type == TOML_FLOAT ? v->u.f : 0.0;
}

int toml_bool(const struct toml_value *v)
{
	return v && v->type == TOML_BOOL ? v->u.b : 0;
}

const char *toml_datetime(const struct toml_value *v)
{
	if (!v || (v->type != TOML_DATETIME && v->type != TOML_DATETIME_LOCAL && v->type != TOML_DATE_LOCAL &&
		   v->type != TOML_TIME_LOCAL))
		return NULL;
	return v->u.str.s;
}
