/* libFuzzer target for the canon tokenizers: any input must either fail
 * cleanly (and leave the buffers as they were) or produce output, never
 * crash or read out of bounds. `make fuzz-canon` (seeds in
 * tests/fuzz/corpus/canon: Python and sh scripts, good and broken). */
#include <stdlib.h>

#include "key/canon.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct strbuf out = STRBUF_INIT;
	struct strvec deps = STRVEC_INIT;
	struct canon_lines lines = CANON_LINES_INIT;
	const char *src = (const char *)data;

	if (canon_python_lines(src, size, &out, &deps, &lines) < 0 &&
	    (out.len || deps.n || lines.n))
		abort();
	sb_reset(&out);
	if (canon_sh_lines(src, size, &out, &deps, &lines) < 0 && out.len)
		abort();
	sb_reset(&out);
	canon_source(canon_detect("x", src, size), src, size, &out, NULL);
	sb_release(&out);
	sv_release(&deps);
	canon_lines_release(&lines);
	return 0;
}
