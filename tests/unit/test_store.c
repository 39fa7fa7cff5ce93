/* Unit tests for the store: finding and creating .cashet, saving runs and
 * finding them again (by fingerprint, hash, prefix, filters), reading
 * blobs inline and loose with their digest checked, claims, the stat
 * cache, removal and rebuilding the index from git. Each test gets a
 * fresh store in a temporary directory (fixture.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "fixture.h"
#include "store/gitmod.h"

static int is_oid(const char *s)
{
	return strlen(s) == 40 && strspn(s, "0123456789abcdef") == 40;
}

/* A finished run of argv[0] = cmd with its stdout captured in a file. */
static void make_run(struct fixture *fx, struct run_record *r, const char *cmd, const char *out, int ok,
		     int64_t created)
{
	struct strbuf cap = STRBUF_INIT;
	memset(r, 0, sizeof(*r));
	digest_of(cmd, strlen(cmd), &r->fp);
	digest_of("line", 4, &r->line);
	sv_push(&r->argv, cmd);
	sv_push(&r->argv, "arg with space");
	r->cwd = xstrdup(".");
	r->ok = ok;
	r->exit_code = ok ? 0 : 3;
	r->created_ms = created;
	r->duration_ms = 12;
	sv_push(&r->tags, "team=ml");
	struct digest d;
	digest_of("x", 1, &d);
	run_add_part(r, "argv", cmd, &d);
	sb_addf(&cap, "cap-%s-%lld", cmd, (long long)created);
	char *path = fixture_write(fx, cap.buf, out, 0644);
	struct run_file *f = run_add_file(r, FILE_STDOUT, "stdout");
	f->src = path;
	f->size = strlen(out);
	digest_of(out, strlen(out), &f->xxh);
	sb_release(&cap);
}

static void test_find_walks_up(void **state)
{
	struct fixture *fx = *state;
	struct strbuf dir = STRBUF_INIT, sub = STRBUF_INIT;
	unsetenv("CASHET_DIR");
	sb_addf(&sub, "%s/a/b", fx->dir);
	assert_int_equal(mkdirs(sub.buf, 0755), 0);
	assert_int_equal(store_find_from(NULL, sub.buf, &dir), 0);
	assert_string_equal(dir.buf, fx->store.buf);
	/* an explicit directory is taken as is: 1 when it does not exist yet */
	sb_adds(&sub, "/c/");
	assert_int_equal(store_find_from(sub.buf, "/", &dir), 1);
	sb_setlen(&sub, sub.len - 1);
	assert_string_equal(dir.buf, sub.buf);
	assert_int_equal(store_find_from(fx->store.buf, "/", &dir), 0);
	assert_string_equal(dir.buf, fx->store.buf);
	/* none found: where one would be created (unless this machine has a
	 * store in /tmp or / that the walk would find) */
	if (access("/tmp/.cashet", F_OK) < 0 && access("/.cashet", F_OK) < 0) {
		assert_int_equal(store_find_from(NULL, "/tmp", &dir), 1);
		assert_string_equal(dir.buf, "/tmp/.cashet");
	}
	sb_release(&dir);
	sb_release(&sub);
}

static void test_open_and_create(void **state)
{
	struct fixture *fx = *state;
	struct store *st = NULL;
	struct strbuf p = STRBUF_INIT;
	int created = 7;
	assert_string_equal(store_dir(fx->st), fx->store.buf);
	assert_string_equal(store_root(fx->st), fx->dir);
	sb_addf(&p, "%s/HEAD", fx->store.buf);
	assert_int_equal(access(p.buf, F_OK), 0);
	sb_reset(&p);
	sb_addf(&p, "%s/index.db", fx->store.buf);
	assert_int_equal(access(p.buf, F_OK), 0);
	/* a second open finds it */
	assert_int_equal(store_open(fx->store.buf, STORE_CREATE, &st, &created), 0);
	assert_int_equal(created, 0);
	store_close(st);
	/* without STORE_CREATE a missing store is an error */
	sb_reset(&p);
	sb_addf(&p, "%s/other/.cashet", fx->dir);
	st = NULL;
	assert_int_equal(store_open(p.buf, 0, &st, &created), -1);
	assert_null(st);
	assert_int_equal(created, 0);
	sb_addf(&p, " (run 'cashet init' or 'cashet exec' first)");
	assert_non_null(strstr(err_msg(), p.buf));
	assert_int_equal(strncmp(err_msg(), "no cashet store at ", 19), 0);
	sb_release(&p);
}

static void test_save_lookup_load(void **state)
{
	struct fixture *fx = *state;
	struct run_record r, hit = { 0 }, full = { 0 }, second;
	struct strbuf blob = STRBUF_INIT;
	int64_t t0 = 1700000000000;
	make_run(fx, &r, "cmd-a", "hello\n", 1, t0);
	r.name = xstrdup("first");
	assert_int_equal(store_save(fx->st, &r), 0);
	assert_true(is_oid(r.hash));
	assert_string_equal(r.parent, "");
	assert_true(is_oid(r.files[0].oid));

	assert_int_equal(fixture_lookup(fx, &r.fp, 0, 0, t0, &hit), 1);
	assert_string_equal(hit.hash, r.hash);
	assert_string_equal(hit.name, "first");
	assert_int_equal(hit.argv.n, 2);
	assert_string_equal(hit.argv.v[1], "arg with space");
	assert_int_equal(hit.created_ms, t0);
	assert_int_equal(hit.duration_ms, 12);
	assert_int_equal(hit.nfiles, 1);
	assert_string_equal(hit.files[0].path, "stdout");
	assert_int_equal(hit.files[0].size, 6);
	/* small blobs are inline: read without git */
	assert_non_null(hit.files[0].data);
	assert_int_equal(store_blob_read(fx->st, &hit.files[0], &blob), 0);
	assert_string_equal(blob.buf, "hello\n");

	/* the same command line again: a new run whose parent is the first */
	make_run(fx, &second, "cmd-a", "bye\n", 1, t0 + 10);
	assert_int_equal(store_save(fx->st, &second), 0);
	assert_string_equal(second.parent, r.hash);
	run_record_free(&hit);
	assert_int_equal(fixture_lookup(fx, &r.fp, 0, 0, t0 + 20, &hit), 1);
	assert_string_equal(hit.hash, second.hash);
	run_record_free(&hit);
	/* min_created newer than both: nothing */
	assert_int_equal(fixture_lookup(fx, &r.fp, 0, t0 + 11, t0 + 20, &hit), 0);

	assert_int_equal(store_load(fx->st, r.hash, &full), 1);
	assert_string_equal(full.hash, r.hash);
	assert_int_equal(full.nparts, 1);
	assert_string_equal(full.parts[0].kind, "argv");
	assert_int_equal(full.tags.n, 1);
	assert_string_equal(full.tags.v[0], "team=ml");
	run_record_free(&full);
	assert_int_equal(store_load(fx->st, "0000000000000000000000000000000000000000", &full), 0);

	struct store_stats s;
	assert_int_equal(store_stats(fx->st, &s), 0);
	assert_int_equal(s.runs, 2);
	assert_int_equal(s.ok, 2);
	assert_int_equal(s.failed, 0);
	assert_int_equal(s.stored_bytes, 10);
	int64_t bytes = 0;
	assert_int_equal(store_total_bytes(fx->st, &bytes), 0);
	assert_int_equal(bytes, 10);
	run_record_free(&r);
	run_record_free(&second);
	run_record_free(&full);
	sb_release(&blob);
}

static void test_lookup_respects_status_and_expiry(void **state)
{
	struct fixture *fx = *state;
	struct run_record failed, expiring, hit = { 0 };
	int64_t t0 = 1700000000000;
	make_run(fx, &failed, "cmd-f", "", 0, t0);
	assert_int_equal(store_save(fx->st, &failed), 0);
	assert_int_equal(fixture_lookup(fx, &failed.fp, 0, 0, t0, &hit), 0);
	assert_int_equal(fixture_lookup(fx, &failed.fp, 1, 0, t0, &hit), 1);
	assert_string_equal(hit.hash, failed.hash);
	assert_int_equal(hit.ok, 0);
	assert_int_equal(hit.exit_code, 3);
	run_record_free(&hit);
	make_run(fx, &expiring, "cmd-e", "e", 1, t0);
	expiring.expires_ms = t0 + 1000;
	assert_int_equal(store_save(fx->st, &expiring), 0);
	assert_int_equal(fixture_lookup(fx, &expiring.fp, 0, 0, t0 + 999, &hit), 1);
	run_record_free(&hit);
	assert_int_equal(fixture_lookup(fx, &expiring.fp, 0, 0, t0 + 1000, &hit), 0);
	run_record_free(&failed);
	run_record_free(&expiring);
}

static int collect_hash(const struct run_record *r, void *ctx)
{
	struct strvec *sv = ctx;
	sv_push(sv, r->hash);
	return 0;
}

static void test_resolve_list_remove(void **state)
{
	struct fixture *fx = *state;
	struct run_record a, b, c, hit = { 0 };
	struct strvec got = STRVEC_INIT;
	char hash[OID_HEX], prefix[8];
	int64_t t0 = 1700000000000;
	make_run(fx, &a, "cmd-1", "1", 1, t0);
	make_run(fx, &b, "cmd-2", "2", 0, t0 + 1);
	make_run(fx, &c, "cmd-3", "3", 1, t0 + 2);
	a.name = xstrdup("nightly");
	sv_push(&c.tags, "flag");
	assert_int_equal(store_save(fx->st, &a), 0);
	assert_int_equal(store_save(fx->st, &b), 0);
	assert_int_equal(store_save(fx->st, &c), 0);

	snprintf(prefix, sizeof(prefix), "%.7s", b.hash);
	assert_int_equal(store_resolve(fx->st, prefix, hash), 0);
	assert_string_equal(hash, b.hash);
	assert_int_equal(store_resolve(fx->st, "abc", hash), -1);
	assert_string_equal(err_msg(), "'abc' is not a run hash (4 to 40 lowercase hex digits)");
	assert_int_equal(store_resolve(fx->st, "ABCD", hash), -1);
	/* every run hash starts with a hex digit: a 4-digit prefix that no run
	 * has is looked for among the 16 first digits */
	snprintf(prefix, sizeof(prefix), "%.4s", a.hash);
	prefix[0] = prefix[0] == 'f' ? '0' : 'f';
	if (strncmp(prefix, b.hash, 4) && strncmp(prefix, c.hash, 4)) {
		assert_int_equal(store_resolve(fx->st, prefix, hash), -1);
		assert_int_equal(strncmp(err_msg(), "no run matches", 14), 0);
	}

	/* log: newest first, filters AND-ed */
	struct log_filter f = { 0 };
	assert_int_equal(store_list(fx->st, &f, collect_hash, &got), 0);
	assert_int_equal(got.n, 3);
	assert_string_equal(got.v[0], c.hash);
	assert_string_equal(got.v[2], a.hash);
	sv_release(&got);
	f.status = "failed";
	assert_int_equal(store_list(fx->st, &f, collect_hash, &got), 0);
	assert_int_equal(got.n, 1);
	assert_string_equal(got.v[0], b.hash);
	sv_release(&got);
	f.status = NULL;
	f.name = "nightly";
	assert_int_equal(store_list(fx->st, &f, collect_hash, &got), 0);
	assert_int_equal(got.n, 1);
	assert_string_equal(got.v[0], a.hash);
	sv_release(&got);
	f.name = NULL;
	sv_push(&f.tags, "flag");
	sv_push(&f.tags, "team=ml");
	assert_int_equal(store_list(fx->st, &f, collect_hash, &got), 0);
	assert_int_equal(got.n, 1);
	assert_string_equal(got.v[0], c.hash);
	sv_release(&got);
	sv_release(&f.tags);
	f.limit = 2;
	f.cmd_substr = "cmd-";
	assert_int_equal(store_list(fx->st, &f, collect_hash, &got), 0);
	assert_int_equal(got.n, 2);
	sv_release(&got);

	/* removed: neither found nor loadable, the others untouched */
	assert_int_equal(store_remove(fx->st, a.hash), 0);
	assert_int_equal(fixture_lookup(fx, &a.fp, 0, 0, t0, &hit), 0);
	assert_int_equal(store_load(fx->st, a.hash, &hit), 0);
	assert_int_equal(fixture_lookup(fx, &c.fp, 0, 0, t0, &hit), 1);
	run_record_free(&hit);

	/* the index is derived: rebuilt from git, it has the two runs left */
	size_t count = 0;
	struct strvec skipped = STRVEC_INIT;
	assert_int_equal(store_reindex(fx->st, &count, &skipped), 0);
	assert_int_equal(count, 2);
	assert_int_equal(skipped.n, 0);
	assert_int_equal(fixture_lookup(fx, &b.fp, 1, 0, t0, &hit), 1);
	assert_string_equal(hit.hash, b.hash);
	assert_int_equal(hit.created_ms, t0 + 1);
	struct strbuf blob = STRBUF_INIT;
	assert_int_equal(store_blob_read(fx->st, &hit.files[0], &blob), 0);
	assert_string_equal(blob.buf, "2");
	sb_release(&blob);
	run_record_free(&hit);
	assert_int_equal(store_load(fx->st, c.hash, &hit), 1);
	assert_int_equal(hit.tags.n, 2);
	run_record_free(&hit);
	run_record_free(&a);
	run_record_free(&b);
	run_record_free(&c);
}

/* Blobs over the inline limit are read from git's loose objects with zlib,
 * and one that does not match the run's digest is refused, never
 * replayed; it is moved aside only when its own bytes are damaged. */
static void test_loose_blob_checked(void **state)
{
	struct fixture *fx = *state;
	struct run_record r, hit = { 0 };
	struct strbuf big = STRBUF_INIT, back = STRBUF_INIT, obj = STRBUF_INIT;
	for (int i = 0; i < 20000; i++)
		sb_addf(&big, "%05d\n", i);
	make_run(fx, &r, "cmd-big", big.buf, 1, 1700000000000);
	assert_int_equal(store_save(fx->st, &r), 0);
	assert_int_equal(fixture_lookup(fx, &r.fp, 0, 0, 1700000000000, &hit), 1);
	assert_null(hit.files[0].data);
	assert_int_equal(hit.files[0].size, 120000);
	assert_int_equal(store_blob_read(fx->st, &hit.files[0], &back), 0);
	assert_int_equal(back.len, big.len);
	assert_memory_equal(back.buf, big.buf, big.len);

	/* the recorded digest no longer matches: refused, nothing appended,
	 * and the object, intact under its git id, stays where it is */
	sb_reset(&back);
	sb_adds(&back, "kept");
	hit.files[0].xxh.b[0] ^= 1;
	assert_true(store_blob_read(fx->st, &hit.files[0], &back) < 0);
	assert_int_equal(err_code(), E_CORRUPT);
	assert_string_equal(back.buf, "kept");
	assert_non_null(strstr(err_msg(), "is corrupt: content does not match its recorded hash"));
	sb_addf(&obj, "%s/objects/%.2s/%s", fx->store.buf, hit.files[0].oid, hit.files[0].oid + 2);
	assert_int_equal(access(obj.buf, F_OK), 0);

	/* the object's own bytes damaged: refused and moved aside */
	hit.files[0].xxh.b[0] ^= 1;
	chmod(obj.buf, 0644);
	FILE *f = fopen(obj.buf, "w");
	assert_non_null(f);
	fputs("not zlib", f);
	fclose(f);
	assert_true(store_blob_read(fx->st, &hit.files[0], &back) < 0);
	assert_int_equal(err_code(), E_CORRUPT);
	assert_string_equal(back.buf, "kept");
	assert_int_equal(access(obj.buf, F_OK), -1);
	sb_adds(&obj, ".corrupt");
	assert_int_equal(access(obj.buf, F_OK), 0);
	run_record_free(&r);
	run_record_free(&hit);
	sb_release(&big);
	sb_release(&back);
	sb_release(&obj);
}

/* zlib stream of data[0..len) in stored blocks of 65535 bytes, but for
 * tiny blocks of one byte (six with their header) after the first lead. */
static void stored_stream(struct strbuf *z, const char *data, size_t len, size_t lead, size_t tiny)
{
	sb_reset(z);
	sb_add(z, "\x78\x01", 2);
	for (size_t at = 0, done = 0; !done;) {
		size_t l = at < lead ? lead - at : len - at;
		l = tiny && at >= lead ? 1 : l < 65535 ? l : 65535;
		tiny -= tiny && at >= lead;
		done = at + l == len;
		unsigned char h[5] = { done, l & 0xff, (l >> 8) & 0xff, ~l & 0xff, (~l >> 8) & 0xff };
		sb_add(z, h, 5);
		sb_add(z, data + at, l);
		at += l;
	}
	uLong a = adler32(1, (const Bytef *)data, (uInt)len);
	unsigned char t[4] = { a >> 24, (a >> 16) & 0xff, (a >> 8) & 0xff, a & 0xff };
	sb_add(z, t, 4);
}

/* zlib stream of data: its first half in stored blocks, then compressed,
 * as git's zlib writes an object that is partly incompressible. */
static void mixed_stream(struct strbuf *z, const char *data, size_t len)
{
	z_stream s;
	memset(&s, 0, sizeof(s));
	assert_int_equal(deflateInit(&s, Z_NO_COMPRESSION), Z_OK);
	sb_reset(z);
	sb_grow(z, len + len / 64 + 4096);
	s.next_out = (Bytef *)z->buf;
	s.avail_out = (uInt)(len + len / 64 + 4096);
	s.next_in = (Bytef *)data;
	s.avail_in = (uInt)(len / 2);
	assert_int_equal(deflate(&s, Z_NO_FLUSH), Z_OK);
	assert_int_equal(deflateParams(&s, Z_BEST_SPEED, Z_DEFAULT_STRATEGY), Z_OK);
	s.avail_in += (uInt)(len - len / 2);
	assert_int_equal(deflate(&s, Z_FINISH), Z_STREAM_END);
	sb_setlen(z, s.total_out);
	deflateEnd(&s);
	assert_true(s.total_out < len); /* compressed in part */
}

static void replace_object(const char *path, const struct strbuf *z)
{
	chmod(path, 0644);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(z->buf, 1, z->len, f), z->len);
	assert_int_equal(fclose(f), 0);
}

/* A large loose object is read by its stored blocks, whatever their
 * sizes and wherever the reads cut them (block headers included); one
 * that also has compressed blocks goes through zlib; a damaged block
 * header is refused as corruption. */
static void test_large_loose_streams(void **state)
{
	struct fixture *fx = *state;
	struct run_record r, hit = { 0 };
	struct strbuf big = STRBUF_INIT, body = STRBUF_INIT, back = STRBUF_INIT, obj = STRBUF_INIT, z = STRBUF_INIT;
	for (int i = 0; big.len < (3u << 20); i++)
		sb_addf(&big, "%07d\n", i);
	make_run(fx, &r, "cmd-large", big.buf, 1, 1700000000000);
	assert_int_equal(store_save(fx->st, &r), 0);
	assert_int_equal(fixture_lookup(fx, &r.fp, 0, 0, 1700000000000, &hit), 1);
	assert_null(hit.files[0].data);
	sb_addf(&obj, "%s/objects/%.2s/%s", fx->store.buf, hit.files[0].oid, hit.files[0].oid + 2);
	sb_addf(&body, "blob %zu", big.len);
	sb_add(&body, "", 1);
	sb_add(&body, big.buf, big.len);

	/* as cashet wrote it */
	assert_int_equal(store_blob_read(fx->st, &hit.files[0], &back), 0);
	assert_int_equal(back.len, big.len);
	assert_memory_equal(back.buf, big.buf, big.len);
	/* 100 tiny blocks around where the reader's first read (1 MiB)
	 * ends, shifted a byte at a time: it ends inside one's header in
	 * four of the six */
	for (size_t shift = 0; shift < 6; shift++) {
		stored_stream(&z, body.buf, body.len, (1u << 20) - 400 + shift, 100);
		replace_object(obj.buf, &z);
		sb_reset(&back);
		assert_int_equal(store_blob_read(fx->st, &hit.files[0], &back), 0);
		assert_int_equal(back.len, big.len);
		assert_memory_equal(back.buf, big.buf, big.len);
	}
	mixed_stream(&z, body.buf, body.len);
	replace_object(obj.buf, &z);
	sb_reset(&back);
	assert_int_equal(store_blob_read(fx->st, &hit.files[0], &back), 0);
	assert_int_equal(back.len, big.len);
	assert_memory_equal(back.buf, big.buf, big.len);

	/* a stored block's header made a compressed block's, halfway */
	stored_stream(&z, body.buf, body.len, 0, 0);
	z.buf[2 + 20 * (5 + 65535)] |= 2;
	replace_object(obj.buf, &z);
	sb_reset(&back);
	sb_adds(&back, "kept");
	assert_true(store_blob_read(fx->st, &hit.files[0], &back) < 0);
	assert_int_equal(err_code(), E_CORRUPT);
	assert_string_equal(back.buf, "kept");
	run_record_free(&r);
	run_record_free(&hit);
	sb_release(&big);
	sb_release(&body);
	sb_release(&back);
	sb_release(&obj);
	sb_release(&z);
}

static int never_stale(const struct claim_owner *o)
{
	return 0;
}

static int always_stale(const struct claim_owner *o)
{
	return 1;
}

static void test_claims(void **state)
{
	struct fixture *fx = *state;
	struct claim_owner me = { .pid = 100, .start = 5, .heartbeat = 1000 },
			   other = { .pid = 200, .start = 6, .heartbeat = 2000 };
	struct claim_owner owner;
	struct digest fp;
	strcpy(me.host, "host-a");
	strcpy(other.host, "host-b");
	digest_of("claimed", 7, &fp);
	assert_int_equal(store_claim_get(fx->st, &fp, &owner), 0);
	assert_int_equal(store_claim(fx->st, &fp, &me, never_stale, &owner), 0);
	assert_int_equal(store_claim_get(fx->st, &fp, &owner), 1);
	assert_int_equal(owner.pid, 100);
	assert_string_equal(owner.host, "host-a");
	assert_int_equal(owner.start, 5);
	assert_int_equal(owner.heartbeat, 1000);
	/* held: another claimer is told who holds it */
	memset(&owner, 0, sizeof(owner));
	assert_int_equal(store_claim(fx->st, &fp, &other, never_stale, &owner), 1);
	assert_int_equal(owner.pid, 100);
	assert_int_equal(store_claim_heartbeat(fx->st, &fp, &me, 1500), 0);
	assert_int_equal(store_claim_get(fx->st, &fp, &owner), 1);
	assert_int_equal(owner.heartbeat, 1500);
	/* a heartbeat or release of someone else's claim changes nothing */
	assert_int_equal(store_claim_heartbeat(fx->st, &fp, &other, 9999), 0);
	assert_int_equal(store_claim_release(fx->st, &fp, &other), 0);
	assert_int_equal(store_claim_get(fx->st, &fp, &owner), 1);
	assert_int_equal(owner.heartbeat, 1500);
	/* a stale claim is taken over */
	assert_int_equal(store_claim(fx->st, &fp, &other, always_stale, &owner), 0);
	assert_int_equal(store_claim_get(fx->st, &fp, &owner), 1);
	assert_int_equal(owner.pid, 200);
	assert_int_equal(store_claim_release(fx->st, &fp, &other), 0);
	assert_int_equal(store_claim_get(fx->st, &fp, &owner), 0);
}

/* Saving the run a claim was taken for releases the claim with it. */
static void test_save_releases_claim(void **state)
{
	struct fixture *fx = *state;
	struct claim_owner me = { .pid = 300, .start = 1, .heartbeat = 1 }, owner;
	struct run_record r;
	strcpy(me.host, "h");
	make_run(fx, &r, "cmd-c", "c", 1, 1700000000000);
	assert_int_equal(store_claim(fx->st, &r.fp, &me, never_stale, &owner), 0);
	assert_int_equal(store_save(fx->st, &r), 0);
	assert_int_equal(store_claim_get(fx->st, &r.fp, &owner), 0);
	run_record_free(&r);
}

static void set_mtime_ago(const char *path, int seconds)
{
	struct timespec ts[2];
	clock_gettime(CLOCK_REALTIME, &ts[0]);
	ts[0].tv_sec -= seconds;
	ts[1] = ts[0];
	assert_int_equal(utimensat(AT_FDCWD, path, ts, 0), 0);
}

static void test_stat_cache(void **state)
{
	struct fixture *fx = *state;
	char *old = fixture_write(fx, "old.txt", "old content", 0644);
	struct strbuf deps = STRBUF_INIT;
	struct digest d, want, got;
	struct stat sb;
	digest_of("derived", 7, &d);
	/* ctime cannot be set back: wait until the file has been quiet for
	 * the cache's 2 s, as a file must be before it is trusted */
	set_mtime_ago(old, 60);
	sleep(2);
	usleep(200000);
	assert_int_equal(stat(old, &sb), 0);
	assert_int_equal(store_cache_get(fx->st, old, 1, &sb, &got, &deps), 0);
	store_cache_put(fx->st, old, 1, &sb, &d, "a.py\0b.py", 9);
	assert_int_equal(store_flush_statcache(fx->st), 0);
	assert_int_equal(store_cache_get(fx->st, old, 1, &sb, &got, &deps), 1);
	assert_true(digest_eq(&got, &d));
	assert_int_equal(deps.len, 9);
	assert_memory_equal(deps.buf, "a.py\0b.py", 9);
	/* another kind of the same file is another entry */
	assert_int_equal(store_cache_get(fx->st, old, 2, &sb, &got, NULL), 0);
	/* any stat change is a miss */
	struct stat changed = sb;
	changed.st_size++;
	assert_int_equal(store_cache_get(fx->st, old, 1, &changed, &got, NULL), 0);
	changed = sb;
	changed.st_mtim.tv_nsec ^= 1;
	assert_int_equal(store_cache_get(fx->st, old, 1, &changed, &got, NULL), 0);

	/* store_file_digest: the content digest, cached under kind 0 */
	assert_int_equal(store_file_digest(fx->st, old, &sb, &got), 0);
	digest_of("old content", 11, &want);
	assert_true(digest_eq(&got, &want));
	assert_int_equal(store_flush_statcache(fx->st), 0);
	assert_int_equal(store_cache_get(fx->st, old, 0, &sb, &got, NULL), 1);
	assert_true(digest_eq(&got, &want));

	/* a file changed just now is not cached ("racy git") */
	char *fresh = fixture_write(fx, "fresh.txt", "fresh", 0644);
	assert_int_equal(stat(fresh, &sb), 0);
	store_cache_put(fx->st, fresh, 1, &sb, &d, NULL, 0);
	assert_int_equal(store_flush_statcache(fx->st), 0);
	assert_int_equal(store_cache_get(fx->st, fresh, 1, &sb, &got, NULL), 0);
	free(old);
	free(fresh);
	sb_release(&deps);
}

/* Two threads working on two stores at once (serve runs the engine in
 * several): the git module once kept one repository per process, which
 * the threads replaced under each other's feet. */
struct git_worker {
	const char *dirs[2];
	int failures;
};

static void *git_worker(void *arg)
{
	struct git_worker *w = arg;
	const struct gitmod *g = gitmod_get();
	struct strbuf v = STRBUF_INIT;
	for (int i = 0; i < 300; i++) {
		sb_reset(&v);
		if (!g || g->config(w->dirs[i % 2], "max-size", NULL, 0, &v) != 1)
			w->failures++;
	}
	sb_release(&v);
	return NULL;
}

static void test_git_module_threads(void **state)
{
	struct fixture *fx = *state;
	struct strbuf other = STRBUF_INIT;
	struct store *st2 = NULL;
	int created;
	sb_addf(&other, "%s/other/" STORE_DIRNAME, fx->dir);
	assert_int_equal(mkdirs(other.buf, 0755), 0);
	rm_rf(other.buf);
	assert_int_equal(store_open(other.buf, STORE_CREATE, &st2, &created), 0);
	struct git_worker w[2] = { { { fx->store.buf, other.buf }, 0 }, { { other.buf, fx->store.buf }, 0 } };
	pthread_t t[2];
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&t[i], NULL, git_worker, &w[i]), 0);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	assert_int_equal(w[0].failures, 0);
	assert_int_equal(w[1].failures, 0);
	store_close(st2);
	sb_release(&other);
}

/* Settings with a dot live in a subsection, as git and libgit2 write
 * cashet.trust.allowed-signers; the plain [cashet] section does not
 * answer for them, nor another subsection. */
static void test_setting_subsections(void **state)
{
	struct fixture *fx = *state;
	struct store *st = NULL;
	struct strbuf v = STRBUF_INIT;
	int created = 0;
	free(fixture_write(fx, ".cashet/config",
			   "[core]\n\tbare = true\n[cashet]\n\tremote-mode = read\n\tallowed-signers = wrong\n"
			   "[cashet \"other\"]\n\tallowed-signers = wrong too\n"
			   "[cashet \"trust\"]\n\tallowed-signers = \"/etc/signers\" # comment\n",
			   0644));
	assert_int_equal(store_open(fx->store.buf, 0, &st, &created), 0);
	assert_int_equal(store_setting(st, "remote-mode", &v), 1);
	assert_string_equal(v.buf, "read");
	assert_int_equal(store_setting(st, "trust.allowed-signers", &v), 1);
	assert_string_equal(v.buf, "/etc/signers");
	assert_int_equal(store_setting(st, "trust.remote-mode", &v), 0);
	assert_int_equal(store_setting(st, "signing-key", &v), 0);
	store_close(st);
	sb_release(&v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_find_walks_up, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_open_and_create, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_save_lookup_load, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_lookup_respects_status_and_expiry, fixture_setup,
						fixture_teardown),
		cmocka_unit_test_setup_teardown(test_resolve_list_remove, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_loose_blob_checked, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_large_loose_streams, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_claims, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_save_releases_claim, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_stat_cache, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_git_module_threads, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_setting_subsections, fixture_setup, fixture_teardown),
	};
	return cmocka_run_group_tests_name("store", tests, NULL, NULL);
}
