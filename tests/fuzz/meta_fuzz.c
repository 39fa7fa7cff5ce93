/* libFuzzer target for the run meta decoder (store/record.c), which reads
 * the "meta" file of every run's tree, also of runs pulled or imported from
 * elsewhere. Any text must decode or fail with a message; what decodes must
 * encode to a text that decodes again, and that second encoding must be the
 * same bytes (encode after decode is a fixed point). `make fuzz-meta`. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store/gitmod.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* the decoder takes a C string, as store_load_git gives it */
	char *text = xstrndup((const char *)data, size);
	struct run_record r = { 0 }, back = { 0 };
	struct strbuf once = STRBUF_INIT, twice = STRBUF_INIT;

	if (meta_decode(text, &r) == 0) {
		free(run_cmdline(&r));
		meta_encode(&r, &once);
		if (meta_decode(once.buf, &back) != 0)
			abort();
		meta_encode(&back, &twice);
		if (once.len != twice.len || memcmp(once.buf, twice.buf, once.len))
			abort();
		if (back.argv.n != r.argv.n || back.nparts != r.nparts || back.nfiles != r.nfiles ||
		    back.tags.n != r.tags.n)
			abort();
	} else if (!strlen(err_msg())) {
		abort();
	}
	run_record_free(&r);
	run_record_free(&back);
	sb_release(&once);
	sb_release(&twice);
	free(text);
	err_clear();
	return 0;
}
