/* options: the declarative option tables of the command line and their one
 * parser, in the manner of git's parse-options. A command lists each option
 * once, as a row of its table; parsing, `--help` and the docs drift test
 * (`cashet __options`) all read that row, so adding a flag is one line. The
 * parser never prints: a usage error comes back with its message in err_msg(). */
#ifndef CASHET_OPTIONS_H
#define CASHET_OPTIONS_H

#include <stddef.h>
#include <stdio.h>

#include "util/util.h"

enum opt_kind {
	OPT_FLAG,     /* int: set to .value (OPT_BOOL: 1) */
	OPT_BITS,     /* unsigned: .value or-ed in (a flag that is one bit of a set) */
	OPT_INT,      /* int from .min to .max */
	OPT_STRING,   /* const char *, borrowed from argv; with .choices, one of them */
	OPT_LIST,     /* struct strvec: every value appended (repeatable); .cb, if set, checks it first */
	OPT_DURATION, /* int64_t milliseconds, as parse_duration_ms reads them ("12h") */
	OPT_SIZE,     /* uint64_t bytes, as parse_size reads them ("500M") */
	OPT_CALLBACK, /* .cb checks the value and stores it (allocating nothing: nothing would free it) */
};

enum opt_flags {
	/* OPT_LIST: the value may be left out: "--force", "--force=STEP",
	 * and "--force STEP" when .takes(STEP) says the next word is the value. */
	OPT_OPTIONAL_VALUE = 1 << 0,
};

struct opt {
	const char *name; /* the long name, without "--"; NULL ends a table */
	char short_name;  /* 0 for none */
	enum opt_kind kind;
	size_t offset;       /* of the destination in the command's options struct */
	const char *arg;     /* the value's name in --help ("FILE"); NULL for a flag */
	const char *help;    /* one line */
	int value;           /* OPT_FLAG: what is stored; OPT_BITS: the bits set */
	int min, max;        /* OPT_INT: the range */
	const char *choices; /* OPT_STRING: the values allowed, "dot|mermaid"; NULL for any */
	/* OPT_CALLBACK: stores arg in opts, the whole options struct. OPT_LIST:
	 * checks arg before it is appended; arg is NULL when an optional value
	 * is left out. 0, or -1 and err_set() for a usage error. */
	int (*cb)(void *opts, const char *arg);
	int (*takes)(const char *word); /* OPT_OPTIONAL_VALUE: whether word is the value */
	unsigned flags;                 /* enum opt_flags */
};

/* The rows, a macro each (one a line, hence no clang-format here). A table
 * first names its options struct, `#define OPTS struct log_opts`, and
 * #undefs it after its struct opt_table: a field whose type does not fit
 * the kind does not compile, and OPT_ROWS takes the struct's size from it. */
/* clang-format off */
#define OPT_FIELD(field, type) _Generic(((OPTS *)0)->field, type: offsetof(OPTS, field))
#define OPT_ROW(l, s, k, off, a, h) \
	.name = (l), .short_name = (s), .kind = (k), .offset = (off), .arg = (a), .help = (h)
#define OPT_BOOL(l, s, field, help) { OPT_ROW(l, s, OPT_FLAG, OPT_FIELD(field, int), NULL, help), .value = 1 }
#define OPT_SET(l, s, field, v, help) { OPT_ROW(l, s, OPT_FLAG, OPT_FIELD(field, int), NULL, help), .value = (v) }
#define OPT_BIT(l, s, field, bit, help) \
	{ OPT_ROW(l, s, OPT_BITS, OPT_FIELD(field, unsigned), NULL, help), .value = (int)(bit) }
#define OPT_INT(l, s, field, arg, lo, hi, help) \
	{ OPT_ROW(l, s, OPT_INT, OPT_FIELD(field, int), arg, help), .min = (lo), .max = (hi) }
#define OPT_STRING(l, s, field, arg, help) { OPT_ROW(l, s, OPT_STRING, OPT_FIELD(field, const char *), arg, help) }
#define OPT_CHOICE(l, s, field, values, help) \
	{ OPT_ROW(l, s, OPT_STRING, OPT_FIELD(field, const char *), values, help), .choices = (values) }
#define OPT_LIST(l, s, field, arg, help) { OPT_ROW(l, s, OPT_LIST, OPT_FIELD(field, struct strvec), arg, help) }
#define OPT_DURATION(l, s, field, help) { OPT_ROW(l, s, OPT_DURATION, OPT_FIELD(field, int64_t), "DURATION", help) }
#define OPT_SIZE(l, s, field, help) { OPT_ROW(l, s, OPT_SIZE, OPT_FIELD(field, uint64_t), "SIZE", help) }
#define OPT_CALLBACK(l, s, fn, arg, help) { OPT_ROW(l, s, OPT_CALLBACK, 0, arg, help), .cb = (fn) }
#define OPT_LIST_CHECK(l, s, field, arg, fn, help) \
	{ OPT_ROW(l, s, OPT_LIST, OPT_FIELD(field, struct strvec), arg, help), .cb = (fn) }
#define OPT_LIST_OPTIONAL(l, s, field, arg, fn, takes_, help) \
	{ OPT_ROW(l, s, OPT_LIST, OPT_FIELD(field, struct strvec), arg, help), .cb = (fn), .takes = (takes_), \
	  .flags = OPT_OPTIONAL_VALUE }
#define OPT_END { .name = NULL }
/* clang-format on */
/* In a struct opt_table: the rows, and the size of the OPTS they fill. */
#define OPT_ROWS(rows) .opts = (rows), .size = sizeof(OPTS)

/* A command's options: the rows, the struct they fill, and the prose that
 * --help prints after the option lines. */
struct opt_table {
	const struct opt *opts; /* NULL: none */
	size_t size;            /* of the options struct */
	const void *defaults;   /* its values before parsing; NULL for zeroes */
	const char *help;       /* or NULL */
	/* Optional: checks options and operands together (dashdash: how many
	 * operands came before a "--", -1 for none). 0, or -1 and err_set()
	 * for a usage error. */
	int (*check)(const void *opts, int argc, char **argv, int dashdash);
	/* Another table taken too (history takes exec's, which give a
	 * command's fingerprint), filling the struct at shared_at in this one. */
	const struct opt_table *shared;
	size_t shared_at;
};

/* One table and the options struct its rows write to. */
struct opt_set {
	const struct opt *opts;
	void *base;
};

enum opt_mode {
	OPT_PERMUTE,         /* options and operands in any order, as getopt does */
	OPT_STOP_AT_OPERAND, /* the first operand and all after it are operands: a command line */
};

enum opt_status {
	OPT_ERROR = -1, /* a usage error, said in err_msg() */
	OPT_OK = 0,
	OPT_HELP = 1, /* -h or --help: nothing after it was read */
};

/* The operands, in order, NULL-terminated; argv points into the parsed argv. */
struct opt_args {
	int argc;
	char **argv;
	int dashdash; /* how many operands came before a "--"; -1 when there was none */
};

/* Parses argv[1..argc) (argv[0] names the command) into the sets' structs;
 * of two sets that know an option, the first gets it. Short options bundle
 * (-fv, -ifile), long ones take "--name VALUE" or "--name=VALUE" and may be
 * shortened to a unique prefix; "--" ends the options. The operands are
 * moved to argv[1..] (out). */
enum opt_status opt_parse(const struct opt_set *sets, size_t nsets, enum opt_mode mode, int argc, char **argv,
			  struct opt_args *out);

/* An open file descriptor's number (the value of option name), or -1
 * with "--NAME: 'ARG' is not an open file descriptor". */
int opt_fd(const char *name, const char *arg, int *fd);

/* Frees what parsing allocated in the sets' structs (the lists). */
void opt_release(const struct opt_set *sets, size_t nsets);

/* The option lines of --help, for the tables of sets. */
void opt_help(FILE *f, const struct opt_set *sets, size_t nsets);

#endif
