/* remote: what the Redis and HTTP backends share: the temp file an archive
 * is fetched into, and importing it as exactly the one run asked for. */
#include "remote/remote.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

void remote_tmp_name(struct store *st, const char *backend, const char *what, struct strbuf *path)
{
	/* the cap-<pid>- prefix lets store_sweep_tmp() remove it if we die first */
	sb_reset(path);
	sb_addf(path, "%s/cap-%ld-%s-%s.cashet", store_tmpdir(st), (long)getpid(), backend, what);
}

int remote_check_local(struct store *st, const struct digest *fp, const char *hash)
{
	struct run_record r = { 0 };
	int found = store_load(st, hash, &r);
	if (found == 1 && !digest_eq(&r.fp, fp))
		found = err_set("run %.12s has another fingerprint than the lookup that named it", hash);
	run_record_free(&r);
	return found;
}

/* One run, the one the lookup named: an archive carrying others would add
 * runs nobody asked for. */
static int check_head(const char *path, const char *hash)
{
	struct strbuf head = STRBUF_INIT;
	char buf[128];
	ssize_t n = -1;
	int fd = open(path, O_RDONLY | O_CLOEXEC), rc = 0;
	sb_addf(&head, "cashet-archive 1\nrun %s\npack ", hash);
	if (fd >= 0) {
		n = read(fd, buf, head.len);
		close(fd);
	}
	if (n != (ssize_t)head.len || memcmp(buf, head.buf, head.len))
		rc = err_set("not an archive of run %.12s alone", hash);
	sb_release(&head);
	return rc;
}

int remote_import_run(struct store *st, const struct digest *fp, const char *hash, const char *path)
{
	size_t imported = 0, present = 0;
	if (check_head(path, hash) < 0 || store_import(st, path, 0, &imported, &present) < 0)
		return -1;
	int rc = remote_check_local(st, fp, hash);
	if (rc < 0 && imported) {
		/* not what the fingerprint named: take it back out */
		char msg[512];
		snprintf(msg, sizeof(msg), "%s", err_msg());
		store_remove(st, hash);
		err_set("%s", msg);
	} else if (rc == 0) {
		rc = err_set("run %.12s is not in the store after its import", hash);
	}
	return rc;
}
