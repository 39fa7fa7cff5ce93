/* json: writing JSON for --json outputs (cashet never needs to parse it). */
#ifndef CASHET_JSON_H
#define CASHET_JSON_H

#include "util/util.h"

/* Appends s as a quoted JSON string; invalid UTF-8 bytes become U+FFFD. */
void json_str(struct strbuf *sb, const char *s);
/* Appends s as json_str does, or null when s is NULL. */
void json_str_or_null(struct strbuf *sb, const char *s);
/* Appends the strings of v as a JSON array. */
void json_str_array(struct strbuf *sb, const struct strvec *v);

#endif
