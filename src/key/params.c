/* params: values are hashed in a canonical text form (type-tagged, table
 * keys sorted), so reformatting the file or reordering keys is not a change
 * but 1 vs 1.0 vs "1" is. */
#include "key/params.h"
#include "util/fsrec.h"
#include "util/toml.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cmp_keys(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Shortest text that reads back as the same double; always marked as a float. */
static void add_double(struct strbuf *out, double d)
{
	char buf[64];
	for (int prec = 15; prec <= 17; prec++) {
		snprintf(buf, sizeof(buf), "%.*g", prec, d);
		if (strtod(buf, NULL) == d)
			break;
	}
	sb_adds(out, buf);
	if (!strpbrk(buf, ".eEni"))
		sb_adds(out, ".0");
}

static void toml_canon(const struct toml_value *v, struct strbuf *out)
{
	switch (toml_type(v)) {
	case TOML_TABLE: {
		size_t n = toml_table_count(v);
		const char **keys = xcalloc(n, sizeof(*keys));
		for (size_t i = 0; i < n; i++)
			keys[i] = toml_table_key(v, i, NULL);
		qsort(keys, n, sizeof(*keys), cmp_keys);
		sb_addc(out, '{');
		for (size_t i = 0; i < n; i++) {
			sb_addf(out, "%s%zu:%s=", i ? "," : "", strlen(keys[i]), keys[i]);
			toml_canon(toml_table_get(v, keys[i]), out);
		}
		sb_addc(out, '}');
		free(keys);
		break;
	}
	case TOML_ARRAY:
		sb_addc(out, '[');
		for (size_t i = 0; i < toml_array_len(v); i++) {
			if (i)
				sb_addc(out, ',');
			toml_canon(toml_array_get(v, i), out);
		}
		sb_addc(out, ']');
		break;
	case TOML_STRING: {
		size_t len;
		const char *s = toml_string(v, &len);
		sb_addf(out, "s%zu:", len);
		sb_add(out, s, len);
		break;
	}
	case TOML_INTEGER:
		sb_addf(out, "%lld", (long long)toml_int(v));
		break;
	case TOML_FLOAT:
		add_double(out, toml_float(v));
		break;
	case TOML_BOOL:
		sb_adds(out, toml_bool(v) ? "true" : "false");
		break;
	default:
		sb_addf(out, "%s:%s", toml_type_name(toml_type(v)), toml_datetime(v));
		break;
	}
}

static void json_canon(struct json_object *v, struct strbuf *out)
{
	switch (json_object_get_type(v)) {
	case json_type_object: {
		size_t n = (size_t)json_object_object_length(v), i = 0;
		const char **keys = xcalloc(n, sizeof(*keys));
		json_object_object_foreach(v, k, val)
		{
			(void)val;
			keys[i++] = k;
		}
		qsort(keys, n, sizeof(*keys), cmp_keys);
		sb_addc(out, '{');
		for (i = 0; i < n; i++) {
			sb_addf(out, "%s%zu:%s=", i ? "," : "", strlen(keys[i]), keys[i]);
			json_canon(json_object_object_get(v, keys[i]), out);
		}
		sb_addc(out, '}');
		free(keys);
		break;
	}
	case json_type_array:
		sb_addc(out, '[');
		for (size_t j = 0; j < (size_t)json_object_array_length(v); j++) {
			if (j)
				sb_addc(out, ',');
			json_canon(json_object_array_get_idx(v, j), out);
		}
		sb_addc(out, ']');
		break;
	case json_type_string:
		sb_addf(out, "s%d:", json_object_get_string_len(v));
		sb_add(out, json_object_get_string(v), (size_t)json_object_get_string_len(v));
		break;
	case json_type_int:
		sb_addf(out, "%lld", (long long)json_object_get_int64(v));
		break;
	case json_type_double:
		add_double(out, json_object_get_double(v));
		break;
	case json_type_boolean:
		sb_adds(out, json_object_get_boolean(v) ? "true" : "false");
		break;
	case json_type_null:
		sb_adds(out, "null");
		break;
	}
}

static int is_json(const char *file)
{
	size_t n = strlen(file);
	return n >= 5 && !strcmp(file + n - 5, ".json");
}

/* Walks a dotted key of the file at path (named file in messages);
 * returns the canonical text of the value in out. */
static int lookup_value(const char *path, const char *file, const char *key, struct strbuf *out)
{
	struct strbuf part = STRBUF_INIT;
	int rc = -1;
	if (fsrec_on()) { /* the content is vouched for by the stat */
		struct stat sb;
		fsrec_do_stat(path, &sb);
	}
	if (is_json(file)) {
		struct json_object *root = json_object_from_file(path), *v = root;
		if (!root) {
			err_set("--param %s: %s", file, json_util_get_last_err());
			goto out;
		}
		for (const char *p = key; *p && v;) {
			const char *e = strchrnul(p, '.');
			sb_reset(&part);
			sb_add(&part, p, (size_t)(e - p));
			struct json_object *next = NULL;
			if (!json_object_is_type(v, json_type_object) || !json_object_object_get_ex(v, part.buf, &next))
				v = NULL;
			else
				v = next;
			p = *e ? e + 1 : e;
		}
		if (v)
			json_canon(v, out);
		json_object_put(root);
		rc = v ? 0 : err_set("--param %s: no key '%s'", file, key);
	} else {
		struct toml_value *root = NULL, *v;
		struct strbuf text = STRBUF_INIT;
		int pr = read_file_sb(path, &text);
		if (pr < 0)
			err_set("%s: %s", file, strerror(errno));
		else
			pr = toml_parse(text.buf ? text.buf : "", text.len, file, &root);
		sb_release(&text);
		if (pr < 0) {
			err_set("--param: %s", err_msg());
			goto out;
		}
		v = root;
		for (const char *p = key; *p && v;) {
			const char *e = strchrnul(p, '.');
			sb_reset(&part);
			sb_add(&part, p, (size_t)(e - p));
			v = toml_type(v) == TOML_TABLE ? toml_table_get(v, part.buf) : NULL;
			p = *e ? e + 1 : e;
		}
		if (v)
			toml_canon(v, out);
		toml_free(root);
		rc = v ? 0 : err_set("--param %s: no key '%s'", file, key);
	}
out:
	sb_release(&part);
	return rc;
}

int params_add(struct store *st, const char *cwd, struct run_record *r, const char *spec)
{
	const char *colon = strrchr(spec, ':');
	struct strbuf file = STRBUF_INIT, value = STRBUF_INIT;
	int rc = -1;
	if (!colon || colon == spec) {
		err_set("--param '%s': expected FILE:KEY (e.g. params.toml:train.lr)", spec);
		goto out;
	}
	sb_add(&file, spec, (size_t)(colon - spec));
	if (file.buf[0] != '/') {
		/* messages keep naming the file as the user wrote it */
		struct strbuf abs = STRBUF_INIT;
		path_absolute(cwd, file.buf, &abs);
		rc = lookup_value(abs.buf, file.buf, colon + 1, &value);
		sb_release(&abs);
	} else {
		rc = lookup_value(file.buf, file.buf, colon + 1, &value);
	}
	if (rc < 0)
		goto out;
	rc = -1;
	struct digest d;
	digest_of(value.buf ? value.buf : "", value.len, &d);
	struct run_part *p = run_add_part(r, "param", spec, &d);
	if (value.len <= 200)
		p->detail = xstrdup(sb_str(&value));
	rc = 0;
out:
	sb_release(&file);
	sb_release(&value);
	return rc;
}
