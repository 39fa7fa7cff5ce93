/* toml: a validating TOML 1.0.0 parser producing an immutable value tree.
 * Every value remembers the line it was defined on so that callers can report
 * "file:line" for semantic errors; parse errors are reported through err_set()
 * as "file:line:col: message". */
#ifndef CASHET_TOML_H
#define CASHET_TOML_H

#include <stddef.h>
#include <stdint.h>

enum toml_type {
	TOML_TABLE,
	TOML_ARRAY,
	TOML_STRING,
	TOML_INTEGER,
	TOML_FLOAT,
	TOML_BOOL,
	TOML_DATETIME,       /* offset date-time: 1979-05-27T07:32:00Z */
	TOML_DATETIME_LOCAL, /* 1979-05-27T07:32:00 */
	TOML_DATE_LOCAL,     /* 1979-05-27 */
	TOML_TIME_LOCAL,     /* 07:32:00 */
};

/* Opaque; owned by the root returned from toml_parse(). */
struct toml_value;

/* Nesting deeper than this (tables, arrays, inline tables) is rejected. */
#define TOML_MAX_DEPTH 1000

/* Parse len bytes of data. filename is only used in error messages (NULL
 * means "<input>"). On success *out is the root table; free with toml_free().
 * On failure returns -1, *out is NULL and err_msg() says
 * "filename:line:col: what is wrong" (1-based, col counts characters). */
int toml_parse(const char *data, size_t len, const char *filename, struct toml_value **out);
/* Read and parse a file; errors as above or "cannot open PATH: reason". */
int toml_parse_file(const char *path, struct toml_value **out);
void toml_free(struct toml_value *v);

enum toml_type toml_type(const struct toml_value *v);
/* "table", "array", "string", "integer", "float", "bool", "datetime",
 * "datetime-local", "date-local", "time-local" (the toml-test names). */
const char *toml_type_name(enum toml_type t);
/* 1-based line where the value (or, for a table, its header/first key) is. */
int toml_line(const struct toml_value *v);

/* Tables keep insertion order. Keys may contain NUL bytes (via "\u0000"):
 * toml_table_key() gives the length; toml_table_get() matches the C string. */
size_t toml_table_count(const struct toml_value *t);
const char *toml_table_key(const struct toml_value *t, size_t i, size_t *len);
struct toml_value *toml_table_value(const struct toml_value *t, size_t i);
struct toml_value *toml_table_get(const struct toml_value *t, const char *key);
struct toml_value *toml_table_getn(const struct toml_value *t, const char *key, size_t len);

size_t toml_array_len(const struct toml_value *a);
struct toml_value *toml_array_get(const struct toml_value *a, size_t i);

/* Scalar accessors return NULL/0 when v has another type. Strings are
 * NUL-terminated but may also contain NULs; *len (if non-NULL) is exact. */
const char *toml_string(const struct toml_value *v, size_t *len);
int64_t toml_int(const struct toml_value *v);
double toml_float(const struct toml_value *v);
int toml_bool(const struct toml_value *v);
/* Date/time text as written, normalized: 'T' separator, upper-case 'T' and
 * 'Z'; fractional seconds are kept as written. */
const char *toml_datetime(const struct toml_value *v);

#endif
