/* Unit tests for outputs (store/outputs.c): what collecting declared outputs
 * records (stored paths, modes, sizes, digests, symlinks, directories) and
 * what restoring a stored run puts back, byte for byte and mode for mode,
 * leaving unchanged files alone and refusing content that fails its digest. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fixture.h"
#include "store/outputs.h"

static char *path_in(const struct fixture *fx, const char *rel)
{
	struct strbuf p = STRBUF_INIT;
	sb_addf(&p, "%s/%s", fx->dir, rel);
	return sb_detach(&p);
}

static void read_back(const struct fixture *fx, const char *rel, struct strbuf *out)
{
	char *p = path_in(fx, rel);
	sb_reset(out);
	assert_int_equal(read_file_sb(p, out), 0);
	free(p);
}

static unsigned mode_of(const struct fixture *fx, const char *rel)
{
	char *p = path_in(fx, rel);
	struct stat sb;
	assert_int_equal(lstat(p, &sb), 0);
	free(p);
	return (unsigned)sb.st_mode;
}

/* out.txt, bin/run.sh (executable) and dir/ with a.txt, link -> a.txt, sub/b.txt */
static void make_outputs(struct fixture *fx)
{
	char *p;
	free(fixture_write(fx, "out.txt", "result\n", 0644));
	free(fixture_write(fx, "bin/run.sh", "#!/bin/sh\necho hi\n", 0755));
	free(fixture_write(fx, "dir/a.txt", "aaa", 0644));
	free(fixture_write(fx, "dir/sub/b.txt", "bb", 0600));
	p = path_in(fx, "dir/link");
	assert_int_equal(symlink("a.txt", p), 0);
	free(p);
}

static void collect(struct fixture *fx, const char *cwd, struct run_record *r)
{
	struct strvec decl = STRVEC_INIT;
	sv_push(&decl, "out.txt");
	sv_push(&decl, "dir");
	sv_push(&decl, "bin/run.sh");
	sv_push(&decl, "dir/a.txt"); /* already inside dir: recorded once */
	assert_int_equal(outputs_collect(fx->st, cwd, &decl, 0, r), 0);
	sv_release(&decl);
}

static void test_local_path(void **state)
{
	struct fixture *fx = *state;
	struct strbuf out = STRBUF_INIT, want = STRBUF_INIT;
	outputs_local_path(fx->st, "files/a/b.txt", &out);
	sb_addf(&want, "%s/a/b.txt", fx->dir);
	assert_string_equal(out.buf, want.buf);
	outputs_local_path(fx->st, "abs/etc/x", &out);
	assert_string_equal(out.buf, "/etc/x");
	outputs_local_path(fx->st, "stdout", &out);
	assert_string_equal(out.buf, "stdout");
	sb_release(&out);
	sb_release(&want);
}

static void test_collect_records_every_file(void **state)
{
	struct fixture *fx = *state;
	struct run_record r = { 0 };
	struct digest d;
	make_outputs(fx);
	collect(fx, fx->dir, &r);
	assert_int_equal(r.nfiles, 7);
	/* declared order; a directory (recorded itself) then its entries
	 * sorted by name */
	assert_string_equal(r.files[0].path, "files/out.txt");
	assert_string_equal(r.files[1].path, "files/dir");
	assert_string_equal(r.files[2].path, "files/dir/a.txt");
	assert_string_equal(r.files[3].path, "files/dir/link");
	assert_string_equal(r.files[4].path, "files/dir/sub");
	assert_string_equal(r.files[5].path, "files/dir/sub/b.txt");
	assert_string_equal(r.files[6].path, "files/bin/run.sh");
	for (size_t i = 0; i < r.nfiles; i++)
		assert_int_equal(r.files[i].kind, i == 1 || i == 4 ? FILE_DIR : FILE_OUTPUT);
	assert_int_equal(r.files[1].mode, 040000);
	assert_int_equal(r.files[0].mode, 0100644);
	assert_int_equal(r.files[0].size, 7);
	/* a file's digest is set by the store's writer, its one read */
	struct digest none = { 0 };
	assert_true(digest_eq(&r.files[0].xxh, &none));
	char *want = path_in(fx, "out.txt");
	assert_string_equal(r.files[0].src, want);
	free(want);
	/* a symlink is its target, as in git */
	assert_int_equal(r.files[3].mode, 0120000);
	assert_int_equal(r.files[3].size, 5);
	digest_of("a.txt", 5, &d);
	assert_true(digest_eq(&r.files[3].xxh, &d));
	/* the git mode has the executable bit; perm the run's bits */
	assert_int_equal(r.files[5].mode, 0100644);
	assert_int_equal(r.files[6].mode, 0100755);
	assert_int_equal(r.files[6].perm, 0755);
	run_record_free(&r);

	/* paths are relative to cwd, stored relative to the project root */
	struct strvec decl = STRVEC_INIT;
	char *sub = path_in(fx, "dir/sub");
	sv_push(&decl, "../../out.txt");
	sv_push(&decl, "./b.txt");
	assert_int_equal(outputs_collect(fx->st, sub, &decl, 0, &r), 0);
	assert_int_equal(r.nfiles, 2);
	assert_string_equal(r.files[0].path, "files/out.txt");
	assert_string_equal(r.files[1].path, "files/dir/sub/b.txt");
	run_record_free(&r);
	sv_release(&decl);
	free(sub);
}

static void test_collect_refusals(void **state)
{
	struct fixture *fx = *state;
	struct run_record r = { 0 };
	struct strvec decl = STRVEC_INIT;
	sv_push(&decl, "nope.txt");
	assert_int_equal(outputs_collect(fx->st, fx->dir, &decl, 0, &r), -1);
	assert_string_equal(err_msg(), "declared output nope.txt was not produced: No such file or directory");
	sv_release(&decl);
	run_record_free(&r);

	char *fifo = path_in(fx, "pipe");
	assert_int_equal(mkfifo(fifo, 0600), 0);
	sv_push(&decl, "pipe");
	assert_int_equal(outputs_collect(fx->st, fx->dir, &decl, 0, &r), -1);
	assert_string_equal(err_msg(), "output pipe is not a regular file, directory or symlink");
	sv_release(&decl);
	run_record_free(&r);
	free(fifo);
}

/* Outside the project an output is stored under its absolute path. */
static void test_collect_outside_project(void **state)
{
	struct fixture *fx = *state;
	struct fixture *other = fixture_new();
	struct run_record r = { 0 };
	struct strvec decl = STRVEC_INIT;
	struct strbuf want = STRBUF_INIT;
	assert_non_null(other);
	char *p = fixture_write(other, "far.txt", "far", 0644);
	sv_push(&decl, p);
	assert_int_equal(outputs_collect(fx->st, fx->dir, &decl, 0, &r), 0);
	assert_int_equal(r.nfiles, 1);
	sb_addf(&want, "abs%s", p);
	assert_string_equal(r.files[0].path, want.buf);
	outputs_local_path(fx->st, r.files[0].path, &want);
	assert_string_equal(want.buf, p);
	run_record_free(&r);
	sv_release(&decl);
	sb_release(&want);
	free(p);
	fixture_free(other);
}

/* Saves the collected outputs as a run and returns it as a hit gives it. */
static void save_and_reload(struct fixture *fx, struct run_record *hit)
{
	struct run_record r = { 0 };
	digest_of("outputs-run", 11, &r.fp);
	sv_push(&r.argv, "make");
	r.ok = 1;
	r.created_ms = 1700000000000;
	collect(fx, fx->dir, &r);
	assert_int_equal(store_save(fx->st, &r), 0);
	memset(hit, 0, sizeof(*hit));
	assert_int_equal(fixture_lookup(fx, &r.fp, 0, 0, r.created_ms, hit), 1);
	assert_int_equal(hit->nfiles, 7);
	/* the digest the writer took as it read the file, in the index too */
	struct digest d;
	digest_of("result\n", 7, &d);
	assert_true(digest_eq(&r.files[0].xxh, &d));
	int seen = 0;
	for (size_t i = 0; i < hit->nfiles; i++)
		if (!strcmp(hit->files[i].path, "files/out.txt"))
			seen += digest_eq(&hit->files[i].xxh, &d);
	assert_int_equal(seen, 1);
	run_record_free(&r);
}

static int count_tmp_files(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;
	while (d && (e = readdir(d)))
		n += strstr(e->d_name, ".cashet-tmp.") != NULL;
	if (d)
		closedir(d);
	return n;
}

static void test_restore(void **state)
{
	struct fixture *fx = *state;
	struct run_record hit;
	struct strbuf back = STRBUF_INIT;
	struct stat before, after;
	char target[64];
	make_outputs(fx);
	save_and_reload(fx, &hit);

	/* delete one, change one, replace the link, drop the x bit, leave one */
	char *out = path_in(fx, "out.txt"), *a = path_in(fx, "dir/a.txt"), *link = path_in(fx, "dir/link");
	char *b = path_in(fx, "dir/sub/b.txt"), *run = path_in(fx, "bin/run.sh"), *dir = path_in(fx, "dir");
	assert_int_equal(unlink(out), 0);
	free(fixture_write(fx, "dir/a.txt", "changed", 0644));
	assert_int_equal(unlink(link), 0);
	assert_int_equal(symlink("elsewhere", link), 0);
	assert_int_equal(chmod(run, 0644), 0);
	assert_int_equal(stat(b, &before), 0);

	assert_int_equal(outputs_restore(fx->st, &hit), 0);
	read_back(fx, "out.txt", &back);
	assert_string_equal(back.buf, "result\n");
	read_back(fx, "dir/a.txt", &back);
	assert_string_equal(back.buf, "aaa");
	ssize_t n = readlink(link, target, sizeof(target) - 1);
	assert_int_equal(n, 5);
	target[n] = '\0';
	assert_string_equal(target, "a.txt");
	assert_int_equal(mode_of(fx, "bin/run.sh") & 0777, 0755);
	assert_int_equal(mode_of(fx, "out.txt") & 0777, 0644);
	/* unchanged: not rewritten (same inode) */
	assert_int_equal(stat(b, &after), 0);
	assert_int_equal(after.st_ino, before.st_ino);
	assert_int_equal(count_tmp_files(fx->dir), 0);
	assert_int_equal(count_tmp_files(dir), 0);

	/* a missing directory is made again */
	rm_rf(dir);
	assert_int_equal(outputs_restore(fx->st, &hit), 0);
	read_back(fx, "dir/sub/b.txt", &back);
	assert_string_equal(back.buf, "bb");
	run_record_free(&hit);
	sb_release(&back);
	free(out);
	free(a);
	free(link);
	free(b);
	free(run);
	free(dir);
}

/* Content that does not match its recorded digest is never written: the
 * file on disk stays as it was and no temporary file is left. */
static void test_restore_refuses_corrupt(void **state)
{
	struct fixture *fx = *state;
	struct run_record hit;
	struct strbuf back = STRBUF_INIT;
	make_outputs(fx);
	save_and_reload(fx, &hit);
	free(fixture_write(fx, "out.txt", "local edit", 0644));
	struct run_file *f = NULL;
	for (size_t i = 0; i < hit.nfiles; i++)
		if (!strcmp(hit.files[i].path, "files/out.txt"))
			f = &hit.files[i];
	assert_non_null(f);
	assert_non_null(f->data);
	f->data[0] ^= 0x20;
	assert_int_equal(outputs_restore(fx->st, &hit), -1);
	assert_int_equal(strncmp(err_msg(), "files/out.txt (object ", 22), 0);
	assert_non_null(strstr(err_msg(), ") is corrupt: content does not match its recorded hash"));
	read_back(fx, "out.txt", &back);
	assert_string_equal(back.buf, "local edit");
	assert_int_equal(count_tmp_files(fx->dir), 0);
	run_record_free(&hit);
	sb_release(&back);
}

static void test_add_sources(void **state)
{
	struct fixture *fx = *state;
	struct run_record r = { 0 };
	struct digest d;
	free(fixture_write(fx, "train.py", "import x\n", 0755));
	free(fixture_write(fx, "lib/x.py", "X = 1\n", 0644));
	digest_of("", 0, &d);
	run_add_part(&r, "script", "train.py", &d);
	run_add_part(&r, "dep", "lib/x.py", &d);
	run_add_part(&r, "source", "/usr/lib/python3/os.py", &d); /* outside: not copied */
	run_add_part(&r, "file", "data.csv", &d);                 /* not a source */
	assert_int_equal(outputs_add_sources(fx->st, &r), 0);
	assert_int_equal(r.nfiles, 2);
	assert_string_equal(r.files[0].path, "sources/train.py");
	assert_int_equal(r.files[0].kind, FILE_SOURCE);
	assert_int_equal(r.files[0].mode, 0100644);
	assert_int_equal(r.files[0].size, 9);
	digest_of("import x\n", 9, &d);
	assert_true(digest_eq(&r.files[0].xxh, &d));
	assert_string_equal(r.files[1].path, "sources/lib/x.py");
	run_record_free(&r);
	/* a source that is gone is an error */
	run_add_part(&r, "script", "gone.py", &d);
	assert_int_equal(outputs_add_sources(fx->st, &r), -1);
	run_record_free(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_local_path, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_collect_records_every_file, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_collect_refusals, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_collect_outside_project, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_restore, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_restore_refuses_corrupt, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_add_sources, fixture_setup, fixture_teardown),
	};
	return cmocka_run_group_tests_name("outputs", tests, NULL, NULL);
}
