/* Unit tests for the run record codec (store/record.c): the "meta" text of
 * every run's tree is what the index is rebuilt from, so its exact bytes,
 * its round trip and what it refuses are pinned here. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "store/gitmod.h"

static void digest_of_str(const char *s, struct digest *d)
{
	digest_of(s, strlen(s), d);
}

/* A record with one of everything. */
static void sample(struct run_record *r)
{
	struct digest d;
	memset(r, 0, sizeof(*r));
	digest_of_str("fp", &r->fp);
	digest_of_str("line", &r->line);
	r->name = xstrdup("nightly");
	r->cwd = xstrdup("sub");
	sv_push(&r->argv, "python3");
	sv_push(&r->argv, "train.py");
	sv_push(&r->argv, "--lr=0.1");
	r->ok = 1;
	r->exit_code = 0;
	r->created_ms = 1700000000123;
	r->duration_ms = 4567;
	r->expires_ms = 1700086400123;
	sv_push(&r->tags, "lr=0.1");
	digest_of_str("argv", &d);
	run_add_part(r, "argv", "python3 train.py --lr=0.1", &d);
	digest_of_str("env", &d);
	struct run_part *p = run_add_part(r, "env", "HOME", &d);
	p->detail = xstrdup("/home/u");
	struct run_file *f = run_add_file(r, FILE_STDOUT, "stdout");
	f->size = 12;
	digest_of_str("out", &f->xxh);
	f = run_add_file(r, FILE_OUTPUT, "files/model.bin");
	f->size = 1ULL << 40;
	digest_of_str("model", &f->xxh);
	r->observed = OBSERVED_TRACED;
	struct run_input *in = run_add_input(r, 'f', "/usr/lib/a b");
	digest_of_str("lib", &in->d);
	in->size = 49059;
	in->mtime_ns = -1;
	in->ctime_ns = 1796115476366750410;
	in->ino = UINT64_MAX;
}

static void test_encode_exact_text(void **state)
{
	struct run_record r = { 0 };
	struct strbuf text = STRBUF_INIT, want = STRBUF_INIT;
	char hx[DIGEST_HEX];
	sv_push(&r.argv, "echo");
	sv_push(&r.argv, "a\tb\\c");
	r.exit_code = -2;
	r.created_ms = 5;
	r.duration_ms = 6;
	meta_encode(&r, &text);
	digest_hex(&r.fp, hx); /* all zero */
	assert_string_equal(hx, "00000000000000000000000000000000");
	sb_addf(&want,
		"cashet-run 1\n"
		"fingerprint %s\n"
		"line %s\n"
		"cwd .\n"
		"arg echo\n"
		"arg a\\x09b\\\\c\n"
		"status failed\n"
		"exit -2\n"
		"created 5\n"
		"duration 6\n",
		hx, hx);
	/* no name line without a name, no expires line when it never expires */
	assert_string_equal(text.buf, want.buf);
	run_record_free(&r);
	sb_release(&text);
	sb_release(&want);
}

/* The file, perm and input lines as printf's formats would write them. */
static void test_encode_numbers_as_printf(void **state)
{
	struct run_record r = { 0 };
	struct strbuf text = STRBUF_INIT, want = STRBUF_INIT;
	char hx[DIGEST_HEX];
	struct run_file *f = run_add_file(&r, FILE_OUTPUT, "files/m");
	f->size = UINT64_MAX;
	f->perm = 0640;
	digest_of_str("m", &f->xxh);
	r.observed = OBSERVED_TRACED;
	const int64_t nums[][3] = { { 0, 0, 0 }, { -1, INT64_MIN, INT64_MAX }, { 49059, 1796115476366750410, 7 } };
	const uint64_t inos[] = { 0, UINT64_MAX, 12345 };
	for (size_t i = 0; i < 3; i++) {
		struct run_input *in = run_add_input(&r, 'f', "a");
		digest_of_str("x", &in->d);
		in->size = nums[i][0];
		in->mtime_ns = nums[i][1];
		in->ctime_ns = nums[i][2];
		in->ino = inos[i];
	}
	meta_encode(&r, &text);
	digest_hex(&f->xxh, hx);
	sb_addf(&want, "file %d %s %" PRIu64 " files/m\nperm %03o\nobserved traced\n", FILE_OUTPUT, hx, f->size,
		(unsigned)f->perm);
	for (size_t i = 0; i < 3; i++) {
		const struct run_input *in = &r.inputs[i];
		digest_hex(&in->d, hx);
		sb_addf(&want, "input f %s %" PRId64 " %" PRId64 " %" PRId64 " %" PRIu64 " a\n", hx, in->size,
			in->mtime_ns, in->ctime_ns, in->ino);
	}
	const char *files = strstr(text.buf, "file ");
	assert_non_null(files);
	assert_string_equal(files, want.buf);
	run_record_free(&r);
	sb_release(&text);
	sb_release(&want);
}

static void test_roundtrip_every_field(void **state)
{
	struct run_record r, back = { 0 };
	struct strbuf text = STRBUF_INIT, again = STRBUF_INIT;
	sample(&r);
	meta_encode(&r, &text);
	assert_int_equal(meta_decode(text.buf, &back), 0);
	assert_true(digest_eq(&back.fp, &r.fp));
	assert_true(digest_eq(&back.line, &r.line));
	assert_string_equal(back.name, "nightly");
	assert_string_equal(back.cwd, "sub");
	assert_int_equal(back.argv.n, 3);
	assert_string_equal(back.argv.v[2], "--lr=0.1");
	assert_null(back.argv.v[3]);
	assert_int_equal(back.ok, 1);
	assert_int_equal(back.exit_code, 0);
	assert_int_equal(back.created_ms, 1700000000123);
	assert_int_equal(back.duration_ms, 4567);
	assert_int_equal(back.expires_ms, 1700086400123);
	assert_int_equal(back.tags.n, 1);
	assert_string_equal(back.tags.v[0], "lr=0.1");
	assert_int_equal(back.nparts, 2);
	assert_string_equal(back.parts[0].kind, "argv");
	assert_string_equal(back.parts[0].name, "python3 train.py --lr=0.1");
	assert_null(back.parts[0].detail);
	assert_true(digest_eq(&back.parts[0].hash, &r.parts[0].hash));
	assert_string_equal(back.parts[1].kind, "env");
	assert_string_equal(back.parts[1].detail, "/home/u");
	assert_int_equal(back.nfiles, 2);
	assert_int_equal(back.files[0].kind, FILE_STDOUT);
	assert_string_equal(back.files[0].path, "stdout");
	assert_int_equal(back.files[0].size, 12);
	assert_int_equal(back.files[1].kind, FILE_OUTPUT);
	assert_string_equal(back.files[1].path, "files/model.bin");
	assert_int_equal(back.files[1].size, 1ULL << 40);
	assert_true(digest_eq(&back.files[1].xxh, &r.files[1].xxh));
	assert_int_equal(back.ninputs, 1);
	assert_int_equal(back.inputs[0].kind, 'f');
	assert_string_equal(back.inputs[0].path, "/usr/lib/a b");
	assert_true(digest_eq(&back.inputs[0].d, &r.inputs[0].d));
	assert_int_equal(back.inputs[0].size, 49059);
	assert_int_equal(back.inputs[0].mtime_ns, -1);
	assert_int_equal(back.inputs[0].ctime_ns, 1796115476366750410);
	assert_true(back.inputs[0].ino == UINT64_MAX);
	/* meta never carries the mode: the tree does */
	assert_int_equal(back.files[1].mode, 0100644);
	meta_encode(&back, &again);
	assert_string_equal(again.buf, text.buf);
	run_record_free(&r);
	run_record_free(&back);
	sb_release(&text);
	sb_release(&again);
}

static void test_escapes_keep_one_field_per_line(void **state)
{
	struct run_record r = { 0 }, back = { 0 };
	struct strbuf text = STRBUF_INIT;
	const char *odd = "line1\nline2\r\x01\x7f\\x41 \xc3\xa9";
	sv_push(&r.argv, odd);
	sv_push(&r.argv, "");
	r.name = xstrdup("");
	sv_push(&r.tags, "k=\n");
	meta_encode(&r, &text);
	/* every line is "key value": no value ever adds a line */
	size_t lines = 0;
	for (size_t i = 0; i < text.len; i++)
		lines += text.buf[i] == '\n';
	assert_int_equal(lines, 12);
	assert_non_null(strstr(text.buf, "arg line1\\x0aline2\\x0d\\x01\\x7f\\\\x41 \xc3\xa9\n"));
	assert_int_equal(meta_decode(text.buf, &back), 0);
	assert_string_equal(back.argv.v[0], odd);
	assert_string_equal(back.argv.v[1], "");
	assert_string_equal(back.name, "");
	assert_string_equal(back.tags.v[0], "k=\n");
	run_record_free(&r);
	run_record_free(&back);
	sb_release(&text);
}

/* Empty values decode to "" (the unescaped buffer was once left
 * unterminated): an empty argument must stay an empty argument. */
static void test_decode_empty_values(void **state)
{
	struct run_record r = { 0 };
	for (int i = 0; i < 4; i++) {
		char *junk = malloc(64);
		memset(junk, 'Q', 64);
		free(junk);
		assert_int_equal(meta_decode("cashet-run 1\nname \narg \narg x\ntag \n", &r), 0);
		assert_string_equal(r.name, "");
		assert_int_equal(r.argv.n, 2);
		assert_string_equal(r.argv.v[0], "");
		assert_string_equal(r.argv.v[1], "x");
		assert_string_equal(r.tags.v[0], "");
		run_record_free(&r);
	}
}

static void test_decode_lenient_parts(void **state)
{
	struct run_record r = { 0 };
	/* unknown keys are skipped (newer versions may add fields), a detail
	 * before any part is ignored, the last of repeated scalars wins, a bad
	 * escape is kept as it is */
	assert_int_equal(meta_decode("cashet-run 1\n"
				     "detail orphan\n"
				     "future stuff here\n"
				     "cwd a\ncwd b\n"
				     "arg \\x41\\x4\n"
				     "status weird\n"
				     "exit 7\n"
				     "created 99",
				     &r),
			 0);
	assert_int_equal(r.nparts, 0);
	assert_string_equal(r.cwd, "b");
	assert_string_equal(r.argv.v[0], "A\\x4");
	assert_int_equal(r.ok, 0);
	assert_int_equal(r.exit_code, 7);
	assert_int_equal(r.created_ms, 99);
	run_record_free(&r);
}

static void test_decode_rejects(void **state)
{
	static const struct {
		const char *text, *msg;
	} bad[] = {
		{ "", "not a cashet run (no 'cashet-run' header)" },
		{ "status ok\n", "not a cashet run (no 'cashet-run' header)" },
		{ "cashet-run 0\n", "not a cashet run (no 'cashet-run' header)" },
		{ "cashet-run 1\nnospace\n", "meta line 2: malformed" },
		{ "cashet-run 1\n\n", "meta line 2: malformed" },
		{ "cashet-run 1\npart argv nothex x\n", "meta line 2: malformed part" },
		{ "cashet-run 1\npart argv\n", "meta line 2: malformed part" },
		{ "cashet-run 1\nfile 2 00112233445566778899aabbccddeeff\n", "meta line 2: malformed file" },
		{ "cashet-run 1\nfile x 00112233445566778899aabbccddeeff 1 p\n", "meta line 2: malformed file" },
		/* a directory is a "dir" line: as a file it could not be written back (fuzz-meta) */
		{ "cashet-run 1\nfile 4 00112233445566778899aabbccddeeff 0 \n", "meta line 2: malformed file" },
		{ "cashet-run 1\nfile 0 00112233445566778899aabbccddeeff 1x p\n", "meta line 2: malformed file" },
		{ "cashet-run 1\npart argv 00112233445566778899aabbccddeeff0 x\n", "meta line 2: malformed part" },
		{ "cashet-run 1\ninput f 00112233445566778899aabbccddeeff 1 2 3\n", "meta line 2: malformed input" },
		{ "cashet-run 1\ninput f 00112233445566778899aabbccddeeff 1 2 3 4x /p\n",
		  "meta line 2: malformed input" },
		{ "cashet-run 1\ninput f 0011 1 2 3 4 /p\n", "meta line 2: malformed input" },
		{ "cashet-run 1\ninput \n", "meta line 2: malformed input" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		struct run_record r = { 0 };
		err_clear();
		assert_int_equal(meta_decode(bad[i].text, &r), -1);
		assert_string_equal(err_msg(), bad[i].msg);
		run_record_free(&r);
	}
}

/* The kind of a part is escaped like every value: written raw, a kind
 * holding a backslash or a control byte came back changed, so encoding a
 * decoded record twice gave two different texts. */
static void test_part_kind_roundtrip(void **state)
{
	struct run_record r = { 0 }, back = { 0 }, again = { 0 };
	struct strbuf text = STRBUF_INIT, text2 = STRBUF_INIT;
	struct digest d;
	digest_of_str("k", &d);
	run_add_part(&r, "we\\ird\x01", "n", &d);
	run_add_part(&r, "argv", "plain", &d);
	meta_encode(&r, &text);
	assert_non_null(strstr(text.buf, "\npart we\\\\ird\\x01 "));
	assert_int_equal(meta_decode(text.buf, &back), 0);
	assert_string_equal(back.parts[0].kind, "we\\ird\x01");
	assert_string_equal(back.parts[1].kind, "argv");
	meta_encode(&back, &text2);
	assert_string_equal(text2.buf, text.buf);
	assert_int_equal(meta_decode(text2.buf, &again), 0);
	assert_string_equal(again.parts[0].kind, "we\\ird\x01");
	run_record_free(&r);
	run_record_free(&back);
	run_record_free(&again);
	sb_release(&text);
	sb_release(&text2);
}

static void test_cmdline_quotes_for_the_shell(void **state)
{
	struct run_record r = { 0 };
	sv_push(&r.argv, "sh");
	sv_push(&r.argv, "-c");
	sv_push(&r.argv, "echo 'hi' there");
	sv_push(&r.argv, "");
	sv_push(&r.argv, "a=b,c:d@e%f+g/h.i_j");
	char *cmd = run_cmdline(&r);
	assert_string_equal(cmd, "sh -c 'echo '\\''hi'\\'' there' '' a=b,c:d@e%f+g/h.i_j");
	free(cmd);
	run_record_free(&r);
	cmd = run_cmdline(&r);
	assert_string_equal(cmd, "");
	free(cmd);
}

static void test_add_part_and_file_defaults(void **state)
{
	struct run_record r = { 0 };
	struct digest d;
	digest_of_str("x", &d);
	for (int i = 0; i < 20; i++) {
		struct run_file *f = run_add_file(&r, FILE_SOURCE, "sources/a.py");
		assert_int_equal(f->mode, 0100644);
		assert_int_equal(f->size, 0);
		assert_null(f->data);
		assert_string_equal(f->oid, "");
		run_add_part(&r, "file", "a.py", &d);
	}
	assert_int_equal(r.nfiles, 20);
	assert_int_equal(r.nparts, 20);
	assert_true(digest_eq(&r.parts[19].hash, &d));
	run_record_free(&r);
	assert_null(r.files);
	assert_int_equal(r.nparts, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_encode_exact_text),
		cmocka_unit_test(test_encode_numbers_as_printf),
		cmocka_unit_test(test_roundtrip_every_field),
		cmocka_unit_test(test_escapes_keep_one_field_per_line),
		cmocka_unit_test(test_decode_empty_values),
		cmocka_unit_test(test_decode_lenient_parts),
		cmocka_unit_test(test_decode_rejects),
		cmocka_unit_test(test_part_kind_roundtrip),
		cmocka_unit_test(test_cmdline_quotes_for_the_shell),
		cmocka_unit_test(test_add_part_and_file_defaults),
	};
	return cmocka_run_group_tests_name("record", tests, NULL, NULL);
}
