/* json: writing JSON for --json outputs (cashet never needs to parse it). */
#ifndef CASHET_JSON_H
#define CASHET_JSON_H

#include "util/util.h"

/* Appends s as a quoted JSON string; invalid UTF-8 bytes become U+FFFD. */
void json_str(struct strbuf *sb, const char *s);

#endif
