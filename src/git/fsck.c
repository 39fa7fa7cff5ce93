/* fsck: read every object of the store back, so libgit2 recomputes its
 * SHA-1 (strict hash verification is on by default) and inflates it. */
#include "git/gitint.h"

#include <string.h>

static int collect_oid(const git_oid *id, void *payload)
{
	sv_push(payload, git_oid_tostr_s(id));
	return 0;
}

int gs_check_objects(const char *dir, int64_t *count, struct strvec *problems)
{
	git_odb *odb = NULL;
	struct strvec ids = STRVEC_INIT;
	struct strbuf line = STRBUF_INIT;
	int rc = -1;
	if (open_repo(dir) < 0)
		return -1;
	git_libgit2_opts(GIT_OPT_ENABLE_STRICT_HASH_VERIFICATION, 1);
	if (git_repository_odb(&odb, repo) < 0 || git_odb_foreach(odb, collect_oid, &ids) < 0) {
		git_fail("cannot list objects");
		goto out;
	}
	*count = (int64_t)ids.n;
	for (size_t i = 0; i < ids.n; i++) {
		git_oid oid;
		git_odb_object *o = NULL;
		if (git_oid_fromstr(&oid, ids.v[i]) == 0 && git_odb_read(&o, odb, &oid) == 0) {
			git_odb_object_free(o);
			continue;
		}
		const git_error *e = git_error_last();
		sb_reset(&line);
		sb_addf(&line, "object %s: %s", ids.v[i], e && e->message ? e->message : "unreadable");
		sv_push(problems, line.buf);
	}
	rc = 0;
out:
	git_odb_free(odb);
	sv_release(&ids);
	sb_release(&line);
	return rc;
}
