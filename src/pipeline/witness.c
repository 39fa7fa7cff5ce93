/* witness: the up-to-date record of a pipeline run (see witness.h). Text:
 * "cashet-witness 1", "key HEX EPOCH GEN", "questions N" and N lines as
 * util/fsrec.h writes them, then a line per step, "S RUN EXPIRES NAME".
 * A question asked by many steps (the shell, the C library) is stored and
 * asked again once. */
#include "pipeline/witness.h"
#include "pipeline/runlog.h"
#include "util/fsrec.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void witness_path(const char *store_dir, const char *abs_file, struct strbuf *out)
{
	runlog_path(store_dir, abs_file, out); /* next to the run log */
	sb_adds(out, ".witness");
}

static void hash_stat(struct hasher *h, const char *path)
{
	struct stat sb;
	if (stat(path, &sb) < 0) {
		hasher_u64(h, 0);
		return;
	}
	hasher_u64(h, (uint64_t)sb.st_dev);
	hasher_u64(h, (uint64_t)sb.st_ino);
	hasher_u64(h, (uint64_t)sb.st_size);
	hasher_u64(h, (uint64_t)sb.st_mtim.tv_sec * 1000000000 + (uint64_t)sb.st_mtim.tv_nsec);
	hasher_u64(h, (uint64_t)sb.st_ctim.tv_sec * 1000000000 + (uint64_t)sb.st_ctim.tv_nsec);
}

int witness_key(const char *abs_file, const char *store_dir, const char *options, struct digest *out)
{
	struct strbuf text = STRBUF_INIT, path = STRBUF_INIT;
	struct hasher h;
	int rc = -1;
	gid_t groups[256];
	int ng = getgroups(256, groups);
	char *cwd = getcwd(NULL, 0);
	mode_t mask = umask(022);
	umask(mask);
	if (read_file_sb(abs_file, &text) < 0)
		goto out;
	hasher_init(&h);
	hasher_str(&h, "cashet-witness 1 " CASHET_VERSION);
	/* this very cashet: another build may key or replay otherwise */
	hash_stat(&h, "/proc/self/exe");
	hasher_str(&h, abs_file);
	hasher_u64(&h, text.len);
	hasher_bytes(&h, text.buf ? text.buf : "", text.len);
	hasher_str(&h, cwd ? cwd : "");
	hasher_str(&h, options);
	hasher_u64(&h, (uint64_t)mask);
	/* who asks: access() answers by these */
	hasher_u64(&h, (uint64_t)geteuid());
	hasher_u64(&h, (uint64_t)getegid());
	for (int i = 0; i < ng; i++)
		hasher_u64(&h, (uint64_t)groups[i]);
	hasher_str(&h, store_dir);
	sb_addf(&path, "%s/config", store_dir);
	sb_reset(&text);
	if (read_file_sb(path.buf, &text) < 0)
		err_clear(); /* no settings */
	hasher_u64(&h, text.len);
	hasher_bytes(&h, text.buf ? text.buf : "", text.len);
	hasher_final(&h, out);
	rc = 0;
out:
	free(cwd);
	sb_release(&text);
	sb_release(&path);
	return rc;
}

static size_t line_hash(const char *s, size_t n)
{
	size_t h = 1469598103934665603u;
	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)s[i]) * 1099511628211u;
	return h;
}

/* The index of question q (len n), added if new. */
static size_t intern(struct witness_builder *b, const char *q, size_t n)
{
	if (b->lines.n * 2 >= b->cap) {
		size_t cap = b->cap ? 2 * b->cap : 4096;
		free(b->slot);
		b->slot = xcalloc(cap, sizeof(*b->slot));
		b->cap = cap;
		for (size_t i = 0; i < b->lines.n; i++) {
			size_t k = line_hash(b->lines.v[i], strlen(b->lines.v[i])) & (cap - 1);
			while (b->slot[k])
				k = (k + 1) & (cap - 1);
			b->slot[k] = i + 1;
		}
	}
	size_t k = line_hash(q, n) & (b->cap - 1);
	for (; b->slot[k]; k = (k + 1) & (b->cap - 1)) {
		const char *l = b->lines.v[b->slot[k] - 1];
		if (!strncmp(l, q, n) && !l[n])
			return b->slot[k] - 1;
	}
	sv_push_nocopy(&b->lines, xstrndup(q, n));
	b->slot[k] = b->lines.n;
	return b->lines.n - 1;
}

void witness_add(struct witness_builder *b, const char *name, const char *run, int64_t expires_ms, const char *q,
		 size_t qlen)
{
	if (strchr(name, '\n') || !*run) {
		b->broken = 1;
		return;
	}
	sb_addf(&b->steps, "S %s %" PRId64 " %s\n", run, expires_ms, name);
	for (const char *p = q, *end = q + qlen; p < end;) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
		intern(b, p, n);
		p += n + 1;
	}
}

int witness_write(const char *path, struct witness_builder *b, const struct digest *key, int64_t epoch, int64_t gen)
{
	struct strbuf sb = STRBUF_INIT, dir = STRBUF_INIT;
	char hx[DIGEST_HEX];
	int rc;
	if (b->broken) {
		unlink(path); /* the last one no longer says what this run saw */
		return 0;
	}
	digest_hex(key, hx);
	sb_addf(&sb, "cashet-witness 1\nkey %s %" PRId64 " %" PRId64 "\nquestions %zu\n", hx, epoch, gen, b->lines.n);
	for (size_t i = 0; i < b->lines.n; i++)
		sb_addf(&sb, "%s\n", b->lines.v[i]);
	sb_add(&sb, b->steps.buf ? b->steps.buf : "", b->steps.len);
	sb_add(&dir, path, (size_t)(strrchr(path, '/') - path));
	rc = mkdirs(dir.buf, 0777) < 0 ? -1 : write_file_atomic(path, sb.buf, sb.len, 0644);
	sb_release(&sb);
	sb_release(&dir);
	return rc;
}

void witness_builder_free(struct witness_builder *b)
{
	sb_release(&b->steps);
	sv_release(&b->lines);
	free(b->slot);
	memset(b, 0, sizeof(*b));
}

int witness_holds(const char *path, const struct digest *key, int64_t epoch, int64_t gen, int64_t now,
		  struct strvec *names, struct strvec *runs)
{
	struct strbuf sb = STRBUF_INIT;
	char hx[DIGEST_HEX], want[128];
	int ok = 0;
	size_t nq = 0;
	if (read_file_sb(path, &sb) < 0) {
		err_clear();
		goto out;
	}
	digest_hex(key, hx);
	snprintf(want, sizeof(want), "cashet-witness 1\nkey %s %" PRId64 " %" PRId64 "\nquestions ", hx, epoch, gen);
	size_t wl = strlen(want);
	if (sb.len < wl || memcmp(sb.buf, want, wl))
		goto out;
	char *p = sb.buf + wl, *end;
	nq = strtoull(p, &end, 10);
	if (*end != '\n' || nq > sb.len)
		goto out;
	p = end + 1;
	/* every question is asked (the steps between them write nothing) */
	for (size_t i = 0; i < nq; i++) {
		char *nl = strchr(p, '\n');
		if (!nl || !fsrec_holds(p, (size_t)(nl - p)))
			goto out;
		p = nl + 1;
	}
	while (*p) {
		char *nl = strchr(p, '\n'), run[OID_HEX];
		int64_t expires;
		int n = 0;
		if (!nl)
			goto out;
		*nl = 0;
		if (sscanf(p, "S %40s %" SCNd64 " %n", run, &expires, &n) < 2 || !n || !p[n])
			goto out;
		if (expires && expires <= now)
			goto out;
		sv_push(names, p + n);
		sv_push(runs, run);
		p = nl + 1;
	}
	ok = 1;
out:
	if (!ok) {
		sv_release(names);
		sv_release(runs);
	}
	sb_release(&sb);
	return ok;
}
