/* options: the one parser of the option tables (see options.h), and the
 * option lines of --help. It reads the rows and nothing else: what a
 * command accepts is exactly what its table says. */
#include "cli/options.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* Every command's, in no table: it only stops the parse. A table of its
 * own, ended as every table is, so that lookups walk it like the others. */
static const struct opt help_rows[] = {
	{ OPT_ROW("help", 'h', OPT_FLAG, 0, NULL, "show this help") },
	OPT_END,
};

/* The help column: option names longer than this put their help on the next line. */
#define HELP_COLUMN 30

struct found {
	const struct opt *o;
	void *base;
};

/* The row named name[0..len): an exact name, else the one name it begins
 * (as getopt_long allows). */
static int find_long(const struct opt_set *sets, size_t nsets, const char *name, size_t len, struct found *f)
{
	struct strbuf candidates = STRBUF_INIT;
	int rc = -1;
	f->o = NULL;
	for (int exact = 1; exact >= 0 && !f->o; exact--) {
		for (size_t s = 0; s <= nsets; s++) {
			const struct opt *o = s < nsets ? sets[s].opts : help_rows;
			for (; o && o->name; o++) {
				if (strncmp(o->name, name, len) || (exact && o->name[len]))
					continue;
				if (exact) {
					f->o = o;
					f->base = s < nsets ? sets[s].base : NULL;
					break;
				}
				/* one name in two tables (history's --json and exec's) is one option: the first */
				if (!f->o) {
					f->o = o;
					f->base = s < nsets ? sets[s].base : NULL;
				} else if (strcmp(f->o->name, o->name)) {
					sb_addf(&candidates, "%s--%s", candidates.len ? ", " : "", o->name);
				}
			}
			if (exact && f->o)
				break;
		}
	}
	if (!f->o)
		err_set("unknown option '--%.*s'", (int)len, name);
	else if (candidates.len)
		err_set("option '--%.*s' is ambiguous (--%s, %s)", (int)len, name, f->o->name, candidates.buf);
	else
		rc = 0;
	sb_release(&candidates);
	return rc;
}

static int find_short(const struct opt_set *sets, size_t nsets, char c, struct found *f)
{
	for (size_t s = 0; s < nsets; s++)
		for (const struct opt *o = sets[s].opts; o && o->name; o++)
			if (o->short_name == c) {
				f->o = o;
				f->base = sets[s].base;
				return 0;
			}
	if (c == help_rows[0].short_name) {
		f->o = help_rows;
		f->base = NULL;
		return 0;
	}
	return err_set("unknown option '-%c'", c);
}

/* "'a', 'b' or 'c'" for "a|b|c". */
static void choices_text(const char *choices, struct strbuf *out)
{
	for (const char *p = choices; *p;) {
		size_t n = strcspn(p, "|");
		if (p != choices)
			sb_adds(out, p[n] ? ", " : " or ");
		sb_addf(out, "'%.*s'", (int)n, p);
		p += n + (p[n] == '|');
	}
}

static int is_choice(const char *choices, const char *val)
{
	size_t len = strlen(val);
	for (const char *p = choices; *p;) {
		size_t n = strcspn(p, "|");
		if (n == len && !strncmp(p, val, n))
			return 1;
		p += n + (p[n] == '|');
	}
	return 0;
}

static int takes_no_value(const struct opt *o)
{
	return o->kind == OPT_FLAG || o->kind == OPT_BITS;
}

/* Stores val (NULL for a flag) as row o says; typed is the option as the
 * user spelled it, for messages. */
static int store(const struct opt *o, void *base, const char *typed, const char *val)
{
	char *field = (char *)base + o->offset;
	switch (o->kind) {
	case OPT_FLAG:
		*(int *)field = o->value;
		return 0;
	case OPT_BITS:
		*(unsigned *)field |= (unsigned)o->value;
		return 0;
	case OPT_INT: {
		char *end;
		errno = 0;
		long n = strtol(val, &end, 10);
		if (!*val || *end || errno || n < o->min || n > o->max) {
			if (o->max == INT_MAX)
				return err_set("%s: expected a number of %d or more, got '%s'", typed, o->min, val);
			return err_set("%s: expected a number from %d to %d, got '%s'", typed, o->min, o->max, val);
		}
		*(int *)field = (int)n;
		return 0;
	}
	case OPT_STRING:
		if (o->choices && !is_choice(o->choices, val)) {
			struct strbuf want = STRBUF_INIT;
			choices_text(o->choices, &want);
			err_set("%s: expected %s, got '%s'", typed, want.buf, val);
			sb_release(&want);
			return -1;
		}
		*(const char **)field = val;
		return 0;
	case OPT_LIST:
		if (o->cb && o->cb(base, val) < 0)
			return -1;
		if (val)
			sv_push((struct strvec *)field, val);
		return 0;
	case OPT_DURATION:
		return parse_duration_ms(val, (int64_t *)field) < 0 ? err_set("%s: %s", typed, err_msg()) : 0;
	case OPT_SIZE:
		return parse_size(val, (uint64_t *)field) < 0 ? err_set("%s: %s", typed, err_msg()) : 0;
	case OPT_CALLBACK:
		return o->cb(base, val) < 0 ? -1 : 0;
	}
	return err_set("%s: bad option table", typed);
}

/* The value of row o when the word it was in holds none (attached is NULL):
 * the next word, unless the value is optional and that word is not it. */
static int next_value(const struct opt *o, const char *typed, int argc, char **argv, int *i, const char **val)
{
	const char *next = *i + 1 < argc ? argv[*i + 1] : NULL;
	*val = NULL;
	if (o->flags & OPT_OPTIONAL_VALUE) {
		if (next && next[0] != '-' && (!o->takes || o->takes(next)))
			*val = argv[++*i];
		return 0;
	}
	if (!next)
		return err_set("option '%s' needs a value", typed);
	*val = argv[++*i];
	return 0;
}

/* argv[*i] is "--name" or "--name=value". */
static enum opt_status take_long(const struct opt_set *sets, size_t nsets, int argc, char **argv, int *i)
{
	const char *name = argv[*i] + 2, *eq = strchr(name, '=');
	const char *val = eq ? eq + 1 : NULL;
	struct strbuf typed = STRBUF_INIT;
	struct found f = { NULL, NULL };
	enum opt_status rc = OPT_ERROR;
	if (find_long(sets, nsets, name, eq ? (size_t)(eq - name) : strlen(name), &f) < 0)
		goto out;
	if (f.o == help_rows) {
		rc = OPT_HELP;
		goto out;
	}
	sb_addf(&typed, "--%s", f.o->name);
	if (takes_no_value(f.o) && val) {
		err_set("option '%s' takes no value", typed.buf);
		goto out;
	}
	if (!takes_no_value(f.o) && !val && next_value(f.o, typed.buf, argc, argv, i, &val) < 0)
		goto out;
	if (store(f.o, f.base, typed.buf, val) < 0)
		goto out;
	rc = OPT_OK;
out:
	sb_release(&typed);
	return rc;
}

/* argv[*i] is "-x", a bundle "-xyz", or "-xVALUE". */
static enum opt_status take_short(const struct opt_set *sets, size_t nsets, int argc, char **argv, int *i)
{
	const char *a = argv[*i];
	for (size_t k = 1; a[k]; k++) {
		char typed[3] = { '-', a[k], '\0' };
		const char *val = NULL;
		struct found f = { NULL, NULL };
		if (find_short(sets, nsets, a[k], &f) < 0)
			return OPT_ERROR;
		if (f.o == help_rows)
			return OPT_HELP;
		if (takes_no_value(f.o)) {
			if (store(f.o, f.base, typed, NULL) < 0)
				return OPT_ERROR;
			continue;
		}
		/* a value ends the bundle: the rest of the word, or the next word */
		if (a[k + 1])
			val = a + k + 1;
		else if (next_value(f.o, typed, argc, argv, i, &val) < 0)
			return OPT_ERROR;
		return store(f.o, f.base, typed, val) < 0 ? OPT_ERROR : OPT_OK;
	}
	return OPT_OK;
}

enum opt_status opt_parse(const struct opt_set *sets, size_t nsets, enum opt_mode mode, int argc, char **argv,
			  struct opt_args *out)
{
	int n = 0, i; /* the operands so far, moved to argv[1..n] */
	out->dashdash = -1;
	for (i = 1; i < argc; i++) {
		char *a = argv[i];
		enum opt_status rc;
		if (!strcmp(a, "--")) {
			out->dashdash = n;
			i++;
			break;
		}
		if (a[0] != '-' || !a[1]) {
			if (mode == OPT_STOP_AT_OPERAND)
				break;
			argv[1 + n++] = a;
			continue;
		}
		rc = a[1] == '-' ? take_long(sets, nsets, argc, argv, &i) : take_short(sets, nsets, argc, argv, &i);
		if (rc != OPT_OK)
			return rc;
	}
	while (i < argc)
		argv[1 + n++] = argv[i++];
	argv[1 + n] = NULL;
	out->argc = n;
	out->argv = argv + 1;
	return OPT_OK;
}

void opt_release(const struct opt_set *sets, size_t nsets)
{
	for (size_t s = 0; s < nsets; s++)
		for (const struct opt *o = sets[s].opts; o && o->name; o++)
			if (o->kind == OPT_LIST)
				sv_release((struct strvec *)((char *)sets[s].base + o->offset));
}

/* "  -i, --input PATH" */
static void help_left(const struct opt *o, struct strbuf *sb)
{
	sb_reset(sb);
	if (o->short_name)
		sb_addf(sb, "  -%c, --%s", o->short_name, o->name);
	else
		sb_addf(sb, "      --%s", o->name);
	if (o->arg)
		sb_addf(sb, o->flags & OPT_OPTIONAL_VALUE ? " [%s]" : " %s", o->arg);
}

void opt_help(FILE *f, const struct opt_set *sets, size_t nsets)
{
	struct strbuf left = STRBUF_INIT;
	int width = 0;
	for (size_t s = 0; s < nsets; s++)
		for (const struct opt *o = sets[s].opts; o && o->name; o++) {
			help_left(o, &left);
			if ((int)left.len > width)
				width = (int)left.len;
		}
	if (width > HELP_COLUMN)
		width = HELP_COLUMN;
	for (size_t s = 0; s < nsets; s++)
		for (const struct opt *o = sets[s].opts; o && o->name; o++) {
			help_left(o, &left);
			if ((int)left.len > width)
				fprintf(f, "%s\n%*s  %s\n", left.buf, width, "", o->help);
			else
				fprintf(f, "%-*s  %s\n", width, left.buf, o->help);
		}
	sb_release(&left);
}

int opt_fd(const char *name, const char *arg, int *fd)
{
	char *end;
	long n = strtol(arg, &end, 10);
	if (*end || !*arg || n < 0 || n > INT_MAX || fcntl((int)n, F_GETFD) < 0)
		return err_set("--%s: '%s' is not an open file descriptor", name, arg);
	*fd = (int)n;
	return 0;
}
