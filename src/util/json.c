/* json: string escaping. Output must stay valid JSON whatever bytes a
 * command line or path holds, so malformed UTF-8 is replaced, not copied. */
#include "util/json.h"

static size_t utf8_len(const unsigned char *s)
{
	unsigned char c = s[0];
	size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
	if (n < 2)
		return n;
	if (c == 0xc0 || c == 0xc1 || c > 0xf4)
		return 0;
	for (size_t i = 1; i < n; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	return n;
}

void json_str(struct strbuf *sb, const char *str)
{
	const unsigned char *s = (const unsigned char *)str;
	sb_addc(sb, '"');
	while (*s) {
		unsigned char c = *s;
		if (c == '"' || c == '\\') {
			sb_addc(sb, '\\');
			sb_addc(sb, (char)c);
		} else if (c == '\n') {
			sb_adds(sb, "\\n");
		} else if (c == '\t') {
			sb_adds(sb, "\\t");
		} else if (c == '\r') {
			sb_adds(sb, "\\r");
		} else if (c < 0x20 || c == 0x7f) {
			sb_addf(sb, "\\u%04x", c);
		} else if (c >= 0x80) {
			size_t n = utf8_len(s);
			if (!n) {
				sb_adds(sb, "\\ufffd");
				s++;
				continue;
			}
			sb_add(sb, s, n);
			s += n;
			continue;
		} else {
			sb_addc(sb, (char)c);
		}
		s++;
	}
	sb_addc(sb, '"');
}

void json_str_or_null(struct strbuf *sb, const char *s)
{
	if (s)
		json_str(sb, s);
	else
		sb_adds(sb, "null");
}

void json_str_array(struct strbuf *sb, const struct strvec *v)
{
	sb_addc(sb, '[');
	for (size_t i = 0; i < v->n; i++) {
		if (i)
			sb_addc(sb, ',');
		json_str(sb, v->v[i]);
	}
	sb_addc(sb, ']');
}
