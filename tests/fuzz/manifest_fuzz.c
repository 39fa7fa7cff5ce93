/* libFuzzer target for the archive manifest parser (store/manifest.c), the
 * first thing `cashet import` and PUT /archive read of a file from
 * elsewhere. The input is a whole archive file. What parses must describe
 * a pack that ends exactly at the end of the file, with distinct, sorted
 * 40-hex run ids; and the parser must give the same answer when fed
 * growing prefixes, as store-xfer.c does. `make fuzz-manifest`. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store/manifest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct answer {
	int rc;
	struct strvec ids;
	uint64_t offset, size;
	char *msg;
};

static void parse(const uint8_t *data, size_t len, size_t file_size, struct answer *a)
{
	memset(a, 0, sizeof(*a));
	err_clear();
	a->rc = manifest_parse((const char *)data, len, file_size, "fuzz.cashet", &a->ids, &a->offset, &a->size);
	a->msg = xstrdup(a->rc < 0 ? err_msg() : "");
}

static void answer_free(struct answer *a)
{
	sv_release(&a->ids);
	free(a->msg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct answer whole, part;
	size_t cuts[] = { 0, 1, size / 3, size / 2, size > 0 ? size - 1 : 0, data && size ? data[0] : 0 };

	parse(data, size, size, &whole);
	if (whole.rc == 1 || (whole.rc < 0 && !whole.msg[0]) || (whole.rc != 0 && whole.ids.n))
		abort();
	if (whole.rc == 0) {
		if (whole.offset > size || whole.size != size - whole.offset)
			abort();
		for (size_t i = 0; i < whole.ids.n; i++)
			if (strlen(whole.ids.v[i]) != 40 || strspn(whole.ids.v[i], "0123456789abcdef") != 40 ||
			    (i && strcmp(whole.ids.v[i - 1], whole.ids.v[i]) >= 0))
				abort();
	}
	for (size_t c = 0; c < sizeof(cuts) / sizeof(*cuts); c++) {
		if (cuts[c] >= size)
			continue;
		parse(data, cuts[c], size, &part);
		if (part.rc != 1 &&
		    (part.rc != whole.rc || strcmp(part.msg, whole.msg) || part.ids.n != whole.ids.n ||
		     (part.rc == 0 && (part.offset != whole.offset || part.size != whole.size))))
			abort();
		if (part.rc == 1 && part.ids.n)
			abort();
		answer_free(&part);
	}
	answer_free(&whole);
	err_clear();
	return 0;
}
