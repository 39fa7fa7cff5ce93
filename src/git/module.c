/* module: the table cashet-git.so exports; the binary finds it with dlsym. */
#include "git/gitint.h"

static const struct gitmod module = {
	.abi = GITMOD_ABI,
	.init = gs_init,
	.save_run = gs_save_run,
	.early_begin = gs_early_begin,
	.early_add = gs_early_add,
	.early_end = gs_early_end,
	.read_blob = gs_read_blob,
	.list_runs = gs_list_runs,
	.load_run = gs_load_run,
	.commit_signature = gs_commit_signature,
	.delete_run = gs_delete_run,
	.diff_text = gs_diff_text,
	.repack = gs_repack,
	.config = gs_config,
	.fsck = gs_fsck,
	.remote_config = gs_remote_config,
	.push = gs_push,
	.fetch = gs_fetch,
	.write_pack = gx_write_pack,
	.stage_pack = gx_stage_pack,
	.check_run = gx_check_run,
	.publish_pack = gx_publish_pack,
	.create_ref = gx_create_ref,
	.delete_ref = gx_delete_ref,
	.shallow_update = gx_shallow_update,
	.autopack = gs_autopack,
	.pack_indexes = gs_pack_indexes,
};

MODULE_ENTRY const struct gitmod *cashet_gitmod(void);
const struct gitmod *cashet_gitmod(void)
{
	return &module;
}
