/* metrics: a run's --metrics files as flat "key=value" pairs (see
 * metrics.h). Values keep the text the file gave where the parser keeps it
 * (JSON numbers, CSV cells), so a table shows what the program wrote. */
#include "exec/metrics.h"
#include "util/toml.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void metrics_set(struct strvec *v, const char *key, const char *value)
{
	struct strbuf kv = STRBUF_INIT;
	size_t klen = strlen(key);
	sb_addf(&kv, "%s=%s", key, value);
	for (size_t i = 0; i < v->n; i++)
		if (!strncmp(v->v[i], key, klen) && v->v[i][klen] == '=') {
			free(v->v[i]);
			v->v[i] = sb_detach(&kv);
			return;
		}
	sv_push_nocopy(v, sb_detach(&kv));
}

const char *metrics_get(const struct strvec *v, const char *key)
{
	size_t klen = strlen(key);
	for (size_t i = 0; i < v->n; i++)
		if (!strncmp(v->v[i], key, klen) && v->v[i][klen] == '=')
			return v->v[i] + klen + 1;
	return NULL;
}

/* "prefix.key", or "key" at the top. */
static void child_key(struct strbuf *sb, const char *prefix, const char *key, size_t len)
{
	sb_reset(sb);
	if (*prefix)
		sb_addf(sb, "%s.", prefix);
	sb_add(sb, key, len);
}

static void set_checked(struct strvec *out, const char *key, const char *value)
{
	/* a key with '=' could not be split again; a value is one line */
	if (*key && !strchr(key, '=') && !strchr(value, '\n'))
		metrics_set(out, key, value);
}

static void from_json(json_object *j, const char *prefix, struct strvec *out)
{
	switch (json_object_get_type(j)) {
	case json_type_object: {
		struct strbuf k = STRBUF_INIT;
		json_object_object_foreach(j, key, val)
		{
			child_key(&k, prefix, key, strlen(key));
			from_json(val, k.buf, out);
		}
		sb_release(&k);
		break;
	}
	case json_type_int:
	case json_type_double:
	case json_type_boolean:
	case json_type_string:
		/* numbers as the file wrote them (json-c keeps a parsed double's text) */
		set_checked(out, prefix, json_object_get_string(j));
		break;
	default:
		break;
	}
}

static void shortest_double(double d, struct strbuf *sb)
{
	char buf[64];
	for (int prec = 6; prec <= 17; prec++) {
		snprintf(buf, sizeof(buf), "%.*g", prec, d);
		if (strtod(buf, NULL) == d)
			break;
	}
	sb_adds(sb, buf);
}

static void from_toml(const struct toml_value *t, const char *prefix, struct strvec *out)
{
	struct strbuf v = STRBUF_INIT;
	switch (toml_type(t)) {
	case TOML_TABLE: {
		struct strbuf k = STRBUF_INIT;
		for (size_t i = 0; i < toml_table_count(t); i++) {
			size_t len;
			const char *key = toml_table_key(t, i, &len);
			child_key(&k, prefix, key, len);
			from_toml(toml_table_value(t, i), k.buf, out);
		}
		sb_release(&k);
		break;
	}
	case TOML_ARRAY:
		break;
	case TOML_STRING:
		set_checked(out, prefix, toml_string(t, NULL));
		break;
	case TOML_INTEGER:
		sb_addf(&v, "%lld", (long long)toml_int(t));
		break;
	case TOML_FLOAT:
		shortest_double(toml_float(t), &v);
		break;
	case TOML_BOOL:
		sb_adds(&v, toml_bool(t) ? "true" : "false");
		break;
	default:
		sb_adds(&v, toml_datetime(t));
		break;
	}
	if (v.len)
		set_checked(out, prefix, v.buf);
	sb_release(&v);
}

/* Splits a CSV line at sep into cells (quotes removed, "" kept as "). */
static void csv_cells(const char *line, size_t len, char sep, struct strvec *cells)
{
	struct strbuf c = STRBUF_INIT;
	int quoted = 0;
	for (size_t i = 0; i <= len; i++) {
		char ch = i < len ? line[i] : sep;
		if (quoted && ch == '"' && i + 1 < len && line[i + 1] == '"') {
			sb_addc(&c, '"');
			i++;
		} else if (ch == '"' && (quoted || !c.len)) {
			quoted = !quoted;
		} else if (ch == sep && !quoted) {
			size_t a = 0, b = c.len;
			while (a < b && (c.buf[a] == ' ' || c.buf[a] == '\t'))
				a++;
			while (b > a && (c.buf[b - 1] == ' ' || c.buf[b - 1] == '\t' || c.buf[b - 1] == '\r'))
				b--;
			struct strbuf t = STRBUF_INIT;
			sb_add(&t, c.buf ? c.buf + a : "", b - a);
			sv_push_nocopy(cells, sb_detach(&t));
			sb_reset(&c);
		} else {
			sb_addc(&c, ch);
		}
	}
	sb_release(&c);
}

/* The header and the last non-empty row: one metric per column. */
static int from_csv(const char *data, size_t len, const char *shown, char sep, struct strvec *out)
{
	struct strvec head = STRVEC_INIT, row = STRVEC_INIT;
	const char *p = data, *end = data + len, *first = NULL, *last = NULL;
	size_t first_len = 0, last_len = 0;
	int line = 0, last_line = 0, rc = -1;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
		line++;
		if (n && !(n == 1 && p[0] == '\r')) {
			if (!first) {
				first = p;
				first_len = n;
			} else {
				last = p;
				last_len = n;
				last_line = line;
			}
		}
		p += n + 1;
	}
	if (!last) {
		err_set("%s: expected a header line and a row of values", shown);
		goto out;
	}
	csv_cells(first, first_len, sep, &head);
	csv_cells(last, last_len, sep, &row);
	if (head.n != row.n) {
		err_set("%s:%d: %zu values, but the header names %zu", shown, last_line, row.n, head.n);
		goto out;
	}
	for (size_t i = 0; i < head.n; i++)
		set_checked(out, head.v[i], row.v[i]);
	rc = 0;
out:
	sv_release(&head);
	sv_release(&row);
	return rc;
}

static int ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	return n >= m && !strcmp(s + n - m, suffix);
}

static int from_json_text(const struct strbuf *data, const char *shown, struct strvec *out)
{
	struct json_tokener *tok = json_tokener_new();
	json_object *j = json_tokener_parse_ex(tok, data->buf ? data->buf : "", (int)data->len);
	int rc = -1;
	if (!j || json_tokener_get_error(tok) != json_tokener_success) {
		size_t at = json_tokener_get_parse_end(tok);
		int line = 1;
		for (size_t i = 0; i < at && i < data->len; i++)
			line += data->buf[i] == '\n';
		err_set("%s:%d: %s", shown, line,
			j ? "unexpected text after the JSON value"
			  : json_tokener_error_desc(json_tokener_get_error(tok)));
	} else if (!json_object_is_type(j, json_type_object)) {
		err_set("%s: expected a JSON object", shown);
	} else {
		from_json(j, "", out);
		rc = 0;
	}
	json_object_put(j);
	json_tokener_free(tok);
	return rc;
}

int metrics_read(const char *path, const char *shown, struct strvec *out)
{
	struct strbuf data = STRBUF_INIT;
	struct toml_value *t = NULL;
	int rc = -1;
	if (read_file_sb(path, &data) < 0) {
		err_set("metrics file %s: %s", shown, err_msg());
		goto out;
	}
	const char *s = data.buf ? data.buf : "";
	s += strspn(s, " \t\r\n");
	int json = ends_with(path, ".json"), csv = ends_with(path, ".csv"), tsv = ends_with(path, ".tsv");
	int toml = ends_with(path, ".toml");
	if (!json && !csv && !tsv && !toml) {
		json = *s == '{';
		toml = !json && strchr(s, '=') != NULL;
		csv = !json && !toml;
	}
	if (json)
		rc = from_json_text(&data, shown, out);
	else if (toml && (rc = toml_parse(data.buf ? data.buf : "", data.len, shown, &t)) == 0)
		from_toml(t, "", out);
	else if (csv || tsv)
		rc = from_csv(data.buf ? data.buf : "", data.len, shown, tsv ? '\t' : ',', out);
out:
	toml_free(t);
	sb_release(&data);
	return rc;
}
