/* packidx: a pack's index (.idx) checked against the checksums it ends
 * with, and rebuilt from its pack. An index is derived data: the pack
 * alone holds the objects, so a damaged index is never a reason to drop
 * a run (fsck --prune did, its objects looking missing) or to merge its
 * pack (auto-pack copied entries under the wrong ids). */
#include "git/gitint.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Where the index is rebuilt: one at a time (the caller holds the store
 * lock exclusively), so a fixed name, and whatever a killed rebuild left
 * there is removed before the next. */
#define REINDEX_DIR "objects/tmp_reindex"

int gs_idx_check(const char *stem, const char **why)
{
	struct strbuf p = STRBUF_INIT, idx = STRBUF_INIT;
	unsigned char md[EVP_MAX_MD_SIZE], trailer[GIT_OID_RAWSZ];
	unsigned mdlen = 0;
	struct stat sb;
	int rc = -1, fd = -1;
	sb_addf(&p, "%s.idx", stem);
	if (read_file_sb(p.buf, &idx) < 0)
		goto out;
	sb_reset(&p);
	sb_addf(&p, "%s.pack", stem);
	if ((fd = open(p.buf, O_RDONLY | O_CLOEXEC)) < 0 || fstat(fd, &sb) < 0) {
		err_sys("cannot read %s", p.buf);
		goto out;
	}
	rc = 1;
	/* both versions end with the pack's checksum, then their own */
	if (idx.len < 256 * 4 + 2 * GIT_OID_RAWSZ) {
		*why = idx.len ? "cut short" : "empty";
		goto out;
	}
	const unsigned char *m = (const unsigned char *)idx.buf;
	if (!EVP_Digest(m, idx.len - GIT_OID_RAWSZ, md, &mdlen, EVP_sha1(), NULL) || mdlen != GIT_OID_RAWSZ ||
	    memcmp(md, m + idx.len - GIT_OID_RAWSZ, GIT_OID_RAWSZ)) {
		*why = "its checksum does not match its bytes";
		goto out;
	}
	if (sb.st_size < 32 || pread(fd, trailer, sizeof(trailer), sb.st_size - GIT_OID_RAWSZ) != GIT_OID_RAWSZ ||
	    memcmp(trailer, m + idx.len - 2 * GIT_OID_RAWSZ, GIT_OID_RAWSZ)) {
		/* an index intact as written, for other bytes than these (or
		 * the pack's end is damaged: indexing it again will tell) */
		*why = "it does not match its pack";
		goto out;
	}
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	sb_release(&p);
	sb_release(&idx);
	return rc;
}

int gs_index_pack(const char *packdir, const char *file, uint64_t offset, uint64_t size, git_indexer **out)
{
	git_indexer_options opts;
	git_indexer_progress stats;
	enum { CHUNK = 1 << 16 };
	char *buf = xmalloc(CHUNK);
	int fd = open(file, O_RDONLY | O_CLOEXEC), rc = -1;
	*out = NULL;
	if (fd < 0 || lseek(fd, (off_t)offset, SEEK_SET) < 0) {
		err_sys("cannot read %s", file);
		goto out;
	}
	git_indexer_options_init(&opts, GIT_INDEXER_OPTIONS_VERSION);
	/* no odb: the store's packs and an archive's are never thin */
	if (git_indexer_new(out, packdir, 0, NULL, &opts) < 0) {
		git_fail("indexer");
		goto out;
	}
	memset(&stats, 0, sizeof(stats));
	while (size) {
		ssize_t n = read(fd, buf, size < CHUNK ? (size_t)size : CHUNK);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			err_sys("cannot read %s", file);
			goto out;
		}
		if (n == 0) {
			rc = size == UINT64_MAX ? 0 : GS_INDEX_SHORT;
			break;
		}
		if (git_indexer_append(*out, buf, (size_t)n, &stats) < 0) {
			rc = GS_INDEX_DAMAGED;
			goto out;
		}
		if (size != UINT64_MAX)
			size -= (uint64_t)n;
	}
	if (rc == GS_INDEX_SHORT)
		goto out;
	/* commit checks the pack's trailing checksum and resolves every delta */
	rc = git_indexer_commit(*out, &stats) < 0 ? GS_INDEX_DAMAGED : 0;
out:
	if (fd >= 0)
		close(fd);
	free(buf);
	return rc;
}

/* Indexes stem.pack again (each object inflated and hashed, the pack's
 * trailer checked) and puts the new index in place of stem.idx. */
static int reindex(const char *dir, const char *stem)
{
	git_indexer *ix = NULL;
	struct strbuf tmp = STRBUF_INIT, p = STRBUF_INIT;
	int rc = -1;
	sb_addf(&tmp, "%s/" REINDEX_DIR, dir);
	rm_rf(tmp.buf);
	if (mkdir(tmp.buf, 0777) < 0) {
		err_sys("cannot create %s", tmp.buf);
		goto out;
	}
	sb_addf(&p, "%s.pack", stem);
	int r = gs_index_pack(tmp.buf, p.buf, 0, UINT64_MAX, &ix);
	if (r == GS_INDEX_DAMAGED)
		git_fail("the pack is damaged too");
	if (r < 0)
		goto out;
	/* the index written for the same bytes, so for the pack's name */
	sb_reset(&p);
	sb_addf(&p, "%s/pack-%s.idx", tmp.buf, git_indexer_name(ix));
	int ifd = open(p.buf, O_RDONLY | O_CLOEXEC);
	int synced = ifd >= 0 && fsync(ifd) == 0;
	if (ifd >= 0)
		close(ifd);
	struct strbuf dest = STRBUF_INIT;
	sb_addf(&dest, "%s.idx", stem);
	if (!synced || rename(p.buf, dest.buf) < 0)
		err_sys("cannot write %s", dest.buf);
	else
		rc = 0;
	sb_release(&dest);
out:
	git_indexer_free(ix);
	rm_rf(tmp.buf);
	sb_release(&tmp);
	sb_release(&p);
	return rc;
}

int gs_pack_indexes(const char *dir, int repair, struct strvec *lines)
{
	struct strbuf p = STRBUF_INIT, stem = STRBUF_INIT, line = STRBUF_INIT;
	struct strvec names = STRVEC_INIT;
	int rc = -1;
	if (open_repo(dir) < 0)
		return -1;
	sb_addf(&p, "%s/objects/pack", dir);
	DIR *d = opendir(p.buf);
	struct dirent *e;
	while (d && (e = readdir(d))) {
		size_t len = strlen(e->d_name);
		if (!strncmp(e->d_name, "pack-", 5) && len > 9 && !strcmp(e->d_name + len - 4, ".idx"))
			sv_push(&names, e->d_name);
	}
	if (d)
		closedir(d);
	sv_sort(&names);
	for (size_t i = 0; i < names.n; i++) {
		const char *why = NULL;
		struct stat sb;
		sb_reset(&stem);
		sb_addf(&stem, "%s/%.*s", p.buf, (int)(strlen(names.v[i]) - 4), names.v[i]);
		sb_reset(&line);
		sb_addf(&line, "%s.pack", stem.buf);
		if (stat(line.buf, &sb) < 0)
			continue; /* an index without its pack is passed over, as libgit2 does */
		int c = gs_idx_check(stem.buf, &why);
		if (c < 0)
			goto out;
		if (c == 0)
			continue;
		if (!repair) {
			err_setc(E_CORRUPT, "%s.idx is damaged (%s); `cashet fsck` rebuilds it from its pack", stem.buf,
				 why);
			goto out;
		}
		if (reindex(dir, stem.buf) < 0) {
			/* its objects cannot be told apart from missing ones:
			 * nothing is judged (or pruned) while it is there */
			char *how = xstrdup(err_msg());
			err_setc(E_CORRUPT,
				 "%s.idx is damaged (%s) and its pack cannot be indexed again (%s); move both out of "
				 "objects/pack to check the rest",
				 stem.buf, why, how);
			free(how);
			goto out;
		}
		sb_reset(&line);
		sb_addf(&line, "pack: %s.idx was damaged (%s): rebuilt from its pack", stem.buf, why);
		sv_push(lines, line.buf);
	}
	rc = 0;
out:
	sv_release(&names);
	sb_release(&p);
	sb_release(&stem);
	sb_release(&line);
	return rc;
}
