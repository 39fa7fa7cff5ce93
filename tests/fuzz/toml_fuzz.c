/* libFuzzer entry point for the TOML parser: any input must either parse
 * or fail with a message, without crashes, leaks or undefined behaviour.
 * Successful parses are walked so the accessors get exercised too. */
#include <stddef.h>
#include <stdint.h>

#include "util/toml.h"
#include "util/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t walk(const struct toml_value *v)
{
	size_t n = 1, len;

	switch (toml_type(v)) {
	case TOML_TABLE:
		for (size_t i = 0; i < toml_table_count(v); i++) {
			const char *k = toml_table_key(v, i, &len);
			/* The index must find every key it was built from. */
			if (toml_table_getn(v, k, len) != toml_table_value(v, i))
				__builtin_trap();
			n += walk(toml_table_value(v, i));
		}
		break;
	case TOML_ARRAY:
		for (size_t i = 0; i < toml_array_len(v); i++)
			n += walk(toml_array_get(v, i));
		break;
	case TOML_STRING:
		n += toml_string(v, &len)[len] == '\0';
		break;
	default:
		n += (size_t)toml_line(v);
		break;
	}
	return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct toml_value *root = NULL;

	if (toml_parse((const char *)data, size, "fuzz.toml", &root) == 0)
		walk(root);
	toml_free(root);
	err_clear();
	return 0;
}
