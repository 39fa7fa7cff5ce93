/* module: the table cashet-git.so exports; the binary finds it with dlsym. */
#include "git/gitint.h"

static const struct gitmod module = {
	.abi = GITMOD_ABI,
	.init = gs_init,
	.save_run = gs_save_run,
	.read_blob = gs_read_blob,
	.list_runs = gs_list_runs,
	.load_run = gs_load_run,
	.delete_run = gs_delete_run,
	.diff_text = gs_diff_text,
};

const struct gitmod *cashet_gitmod(void);
const struct gitmod *cashet_gitmod(void)
{
	return &module;
}
