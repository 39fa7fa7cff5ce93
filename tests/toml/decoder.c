/* toml-decoder: the decoder side of toml-test for src/toml.c.
 * Reads TOML from argv[1] or stdin and prints toml-test's tagged JSON
 * ({"k": {"type": "integer", "value": "42"}}); on a parse error prints the
 * message to stderr and exits 1. */
#include "util/toml.h"
#include "util/util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void json_string(struct strbuf *out, const char *s, size_t len)
{
	sb_addc(out, '"');
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '"' || c == '\\')
			sb_addf(out, "\\%c", c);
		else if (c == '\n')
			sb_adds(out, "\\n");
		else if (c == '\t')
			sb_adds(out, "\\t");
		else if (c < 0x20 || c == 0x7f)
			sb_addf(out, "\\u%04x", c);
		else
			sb_addc(out, (char)c);	/* UTF-8 passes through */
	}
	sb_addc(out, '"');
}

/* Shortest text that reads back as the same double. */
static void format_float(struct strbuf *out, double f)
{
	char buf[64];

	if (isnan(f)) {
		sb_adds(out, "nan");
		return;
	}
	if (isinf(f)) {
		sb_adds(out, f < 0 ? "-inf" : "inf");
		return;
	}
	for (int prec = 1; prec <= 17; prec++) {
		snprintf(buf, sizeof(buf), "%.*g", prec, f);
		if (strtod(buf, NULL) == f)
			break;
	}
	sb_adds(out, buf);
}

static void emit(struct strbuf *out, const struct toml_value *v)
{
	enum toml_type t = toml_type(v);
	struct strbuf val = STRBUF_INIT;
	const char *s;
	size_t len;

	switch (t) {
	case TOML_TABLE:
		sb_addc(out, '{');
		for (size_t i = 0; i < toml_table_count(v); i++) {
			if (i)
				sb_addc(out, ',');
			s = toml_table_key(v, i, &len);
			json_string(out, s, len);
			sb_addc(out, ':');
			emit(out, toml_table_value(v, i));
		}
		sb_addc(out, '}');
		return;
	case TOML_ARRAY:
		sb_addc(out, '[');
		for (size_t i = 0; i < toml_array_len(v); i++) {
			if (i)
				sb_addc(out, ',');
			emit(out, toml_array_get(v, i));
		}
		sb_addc(out, ']');
		return;
	case TOML_STRING:
		s = toml_string(v, &len);
		sb_add(&val, s, len);
		break;
	case TOML_INTEGER:
		sb_addf(&val, "%lld", (long long)toml_int(v));
		break;
	case TOML_FLOAT:
		format_float(&val, toml_float(v));
		break;
	case TOML_BOOL:
		sb_adds(&val, toml_bool(v) ? "true" : "false");
		break;
	default:
		sb_adds(&val, toml_datetime(v));
		break;
	}
	sb_adds(out, "{\"type\":\"");
	sb_adds(out, toml_type_name(t));
	sb_adds(out, "\",\"value\":");
	json_string(out, val.buf ? val.buf : "", val.len);
	sb_addc(out, '}');
	sb_release(&val);
}

int main(int argc, char **argv)
{
	struct strbuf in = STRBUF_INIT, out = STRBUF_INIT;
	struct toml_value *root = NULL;
	const char *name = argc > 1 ? argv[1] : "/dev/stdin";
	int rc = 1;

	if (read_file_sb(name, &in) < 0 ||
	    toml_parse(sb_str(&in), in.len, argc > 1 ? argv[1] : "<stdin>", &root) < 0) {
		fprintf(stderr, "%s\n", err_msg());
		goto out;
	}
	emit(&out, root);
	sb_addc(&out, '\n');
	if (fwrite(out.buf, 1, out.len, stdout) != out.len || fflush(stdout)) {
		perror("toml-decoder: write");
		goto out;
	}
	rc = 0;
out:
	toml_free(root);
	sb_release(&in);
	sb_release(&out);
	err_clear();
	return rc;
}
