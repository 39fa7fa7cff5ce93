/* Unit tests for canon: cosmetic edits must keep the canonical form, real
 * ones must change it, and what the tokenizers cannot read must fail. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "key/canon.h"

/* Canonical form of src (NULL if the tokenizer failed); caller frees. */
static char *canon(enum canon_lang lang, const char *src, struct strvec *deps)
{
	struct strbuf out = STRBUF_INIT;
	int r = lang == CANON_PYTHON ? canon_python(src, strlen(src), &out, deps)
				     : canon_sh(src, strlen(src), &out, deps);
	if (r < 0) {
		assert_int_equal(out.len, 0);
		sb_release(&out);
		return NULL;
	}
	return sb_detach(&out);
}

static void check(enum canon_lang lang, const char *a, const char *b, int same)
{
	char *ca = canon(lang, a, NULL), *cb = canon(lang, b, NULL);
	if (!ca || !cb)
		fail_msg("tokenizer failed: %s\n--- a:\n%s\n--- b:\n%s", err_msg(), a, b);
	if (same && strcmp(ca, cb))
		fail_msg("expected same:\n%s\n--- vs ---\n%s", ca, cb);
	if (!same && !strcmp(ca, cb))
		fail_msg("expected different:\n%s\n--- vs ---\n%s", a, b);
	free(ca);
	free(cb);
}

#define PY_SAME(a, b) check(CANON_PYTHON, a, b, 1)
#define PY_DIFF(a, b) check(CANON_PYTHON, a, b, 0)
#define SH_SAME(a, b) check(CANON_SH, a, b, 1)
#define SH_DIFF(a, b) check(CANON_SH, a, b, 0)

static void fails(enum canon_lang lang, const char *src)
{
	char *c = canon(lang, src, NULL);
	if (c)
		fail_msg("expected failure for:\n%s\ngot:\n%s", src, c);
}

static void deps_are(enum canon_lang lang, const char *src, const char *const *want)
{
	struct strvec d = STRVEC_INIT;
	char *c = canon(lang, src, &d);
	size_t n = 0;
	assert_non_null(c);
	while (want[n])
		n++;
	for (size_t i = 0; i < d.n && i < n; i++)
		assert_string_equal(d.v[i], want[i]);
	assert_int_equal(d.n, n);
	free(c);
	sv_release(&d);
}

/* ---- Python ---- */

static void py_comments_blank_trailing(void **state)
{
	PY_SAME("x = 1\n", "x = 1  # set x\n");
	PY_SAME("x = 1\ny = 2\n", "# header\nx = 1\n\n\n   \ny = 2\n");
	PY_SAME("x = 1\n", "x = 1   \t\n");
	PY_SAME("x = 1\n", "x = 1");
	PY_SAME("def f():\n    return 1\n", "def f():\n    # why\n\n    return 1  # one\n");
	PY_SAME("x = 1\r\n", "x = 1\n");
	PY_DIFF("#!/usr/bin/python3\nx = 1\n", "#!/usr/bin/python2\nx = 1\n");
	PY_DIFF("# coding: latin-1\ns = '\xe9'\n", "# coding: utf-8\ns = '\xe9'\n");
}

/* Docstrings are code: the standard library prints them (unittest -v,
 * cmd's help), so an edit, an addition or a removal is a change; the
 * comments and blank lines around them still are not. */
static void py_docstrings(void **state)
{
	PY_DIFF("\"\"\"Module.\"\"\"\nx = 1\n", "\"\"\"Other\n\nlines.\"\"\"\nx = 1\n");
	PY_DIFF("class A:\n    'doc'\n    x = 1\n", "class A:\n    'doc2'\n    x = 1\n");
	PY_DIFF("def f():\n    \"\"\"a\"\"\"\n    return 1\n", "def f():\n    \"\"\"b\"\"\"\n    return 1\n");
	PY_DIFF("def f():\n    'doc'\n    return 1\n", "def f():\n    return 1\n");
	PY_SAME("def f():\n    'doc'  # c\n\n    return 1\n", "def f():\n    # why\n    'doc'\n    return 1\n");
}

static void py_hash_in_strings(void **state)
{
	PY_DIFF("x = '# a'\n", "x = '# b'\n");
	PY_DIFF("x = \"# a\"\n", "x = \"# b\"\n");
	PY_DIFF("x = '''\n# a\n'''\n", "x = '''\n# b\n'''\n");
	PY_DIFF("x = \"\"\"a\n  # a  \n\"\"\"\n", "x = \"\"\"a\n  # a\n\"\"\"\n");
	PY_DIFF("x = f'{y} # a'\n", "x = f'{y} # b'\n");
	PY_DIFF("x = f\"{'#'} a\"\n", "x = f\"{'#'} b\"\n");
	PY_DIFF("x = f\"{d['k']:>{w}} # a\"\n", "x = f\"{d['k']:>{w}} # b\"\n");
	PY_DIFF("x = f\"{d[\"k\"]} # a\"\n", "x = f\"{d[\"k\"]} # b\"\n");
	PY_DIFF("x = rb'\\'# a'\n", "x = rb'\\'# b'\n");
	PY_DIFF("x = 'it\\'s # a'\n", "x = 'it\\'s # b'\n");
	PY_DIFF("x = Rb\"#\" 'a'\n", "x = Rb\"#\" 'b'\n");
	PY_DIFF("x = f'\\N{BULLET} # a'\n", "x = f'\\N{BULLET} # b'\n");
	PY_DIFF("x = 'a\\\n# a'\n", "x = 'a\\\n# b'\n");
}

static void py_real_changes(void **state)
{
	PY_DIFF("x = 'a'\n", "x = 'b'\n");
	PY_DIFF("x = 'a '\n", "x = 'a'\n");
	PY_DIFF("x = a + b\n", "x = a - b\n");
	PY_DIFF("x = 10\n", "x = 11\n");
	PY_DIFF("if x:\n    y()\n    z()\n", "if x:\n    y()\nz()\n");
	PY_DIFF("if x:\n  y()\n", "if x:\n    y()\n");
	PY_DIFF("if x:\n\ty()\n", "if x:\n    y()\n");
	PY_DIFF("x = (1,\n     2)\n", "x = (1,\n     3)\n");
	PY_DIFF("x = 1 + \\\n    2\n", "x = 1 + \\\n    3\n");
	PY_DIFF("x = f'{a!r}'\n", "x = f'{a!s}'\n");
}

static void py_brackets_and_continuations(void **state)
{
	PY_SAME("x = foo(1,\n        2)\n", "x = foo(1,  # one\n\n        # two\n        2)\n");
	PY_SAME("x = [\n  1,\n]\n", "x = [  \n  1,   # c\n]\n");
	PY_SAME("x = 1 + \\\n    2\n", "x = 1 + \\\n    2   # two\n");
	PY_SAME("d = {'#': 1}\n", "d = {'#': 1}  # {\n");
	/* "x = 1 \" then a blank line is not a continuation: never join */
	fails(CANON_PYTHON, "x = 1 + \\\n\n2\n");
	fails(CANON_PYTHON, "x = 1 \\ \ny = 2\n");
}

static void py_failures(void **state)
{
	fails(CANON_PYTHON, "x = 'abc\n");
	fails(CANON_PYTHON, "x = '''abc\n");
	fails(CANON_PYTHON, "x = (1,\n");
	fails(CANON_PYTHON, "x = 1)\n");
	fails(CANON_PYTHON, "x = (1]\n");
	fails(CANON_PYTHON, "if x:\n    y\n  z\n");
	fails(CANON_PYTHON, "  x = 1\n");
	fails(CANON_PYTHON, "x = f'{a'\n");
	fails(CANON_PYTHON, "x = f'{a # c}'\n");
	fails(CANON_PYTHON, "x = 1\ry = 2\n");
}

static void py_imports(void **state)
{
	static const char *const w1[] = { "a.b.c", "d", NULL };
	deps_are(CANON_PYTHON, "import a.b.c, d as e\n", w1);
	static const char *const w2[] = { "x.y", "x.y.z", "x.y.w", NULL };
	deps_are(CANON_PYTHON, "from x.y import z, w as v\n", w2);
	static const char *const w3[] = { ".", ".z", "..pkg", "..pkg.q", NULL };
	deps_are(CANON_PYTHON, "from . import z\nfrom ..pkg import q\n", w3);
	static const char *const w4[] = { "m", "m.a", "m.b", NULL };
	deps_are(CANON_PYTHON, "from m import (a,  # c\n    b,\n)\n", w4);
	static const char *const w5[] = { "m", NULL };
	deps_are(CANON_PYTHON, "from m import *\n", w5);
	static const char *const w6[] = { "j", "k", "l", "n", "o", NULL };
	deps_are(CANON_PYTHON,
		 "try:\n    import j\nexcept ImportError:\n    import k\n"
		 "def f():\n    import l; import n\nif x: import o\n",
		 w6);
	static const char *const none[] = { NULL };
	deps_are(CANON_PYTHON,
		 "# import a\nx = 'import b'\ny = '''\nimport c\n'''\nraise X from y\n"
		 "z = f'{1} import d'\n",
		 none);
}

/* ---- shell ---- */

static void sh_comments_blank_trailing(void **state)
{
	SH_SAME("echo a\n\techo b\n", "# c\necho a   # x\n\n   \n\techo b\t\n");
	SH_SAME("echo a;\n", "echo a;# c\n");
	SH_SAME("f() {\n  echo a\n}\n", "f() { # c\n  echo a\n}\n");
	SH_SAME("x=$(echo a\n)\n", "x=$(echo a # c\n)\n");
	SH_DIFF("#!/bin/sh\necho a\n", "#!/bin/bash\necho a\n");
	/* "\" then a comment line still ends the command there */
	SH_SAME("echo a \\\n  # x\necho b\n", "echo a \\\n  # y\necho b\n");
	SH_DIFF("echo a \\\n\necho b\n", "echo a \\\necho b\n");
	/* an escaped blank is not trailing */
	SH_DIFF("echo a\\ \n", "echo a\\\n");
}

static void sh_not_comments(void **state)
{
	SH_DIFF("echo '# a'\n", "echo '# b'\n");
	SH_DIFF("echo \"# a\"\n", "echo \"# b\"\n");
	SH_DIFF("echo $'# a'\n", "echo $'# b'\n");
	SH_DIFF("echo a#a\n", "echo a#b\n");
	SH_DIFF("echo ${#x} a\n", "echo ${#x} b\n");
	SH_DIFF("echo ${x#a}\n", "echo ${x#b}\n");
	SH_DIFF("echo $# a\n", "echo $# b\n");
	SH_DIFF("echo $((16#a))\n", "echo $((16#b))\n");
	SH_DIFF("echo \\# a\n", "echo \\# b\n");
	SH_DIFF("echo \"$(echo '#' a)\"\n", "echo \"$(echo '#' b)\"\n");
	SH_DIFF("echo `echo # a`\n", "echo `echo # b`\n");
	SH_DIFF("echo \"multi\n# a  \nline\"\n", "echo \"multi\n# a\nline\"\n");
	SH_DIFF("echo 'multi\n# a\n'\n", "echo 'multi\n# b\n'\n");
}

static void sh_heredocs(void **state)
{
	SH_DIFF("cat <<EOF\n# a\nEOF\n", "cat <<EOF\n# b\nEOF\n");
	SH_DIFF("cat <<EOF\nx  \nEOF\n", "cat <<EOF\nx\nEOF\n");
	SH_DIFF("cat <<EOF\n\nEOF\n", "cat <<EOF\nEOF\n");
	SH_DIFF("cat <<'EOF'\n# a\nEOF\n", "cat <<'EOF'\n# b\nEOF\n");
	SH_DIFF("cat <<-\"E\"\n\t# a\n\tE\n", "cat <<-\"E\"\n\t# b\n\tE\n");
	SH_DIFF("cat <<A <<B # c\n# 1\nA\n# 2\nB\n", "cat <<A <<B # c\n# 1\nA\n# 3\nB\n");
	SH_SAME("cat <<A # x\nbody\nA\n# after\necho\n", "cat <<A # y\nbody\nA\necho\n");
	SH_DIFF("x=$(cat <<E\n# a\nE\n)\n", "x=$(cat <<E\n# b\nE\n)\n");
	/* a body line is not the delimiter unless it matches exactly */
	SH_DIFF("cat <<E\nE \n# a\nE\n", "cat <<E\nE \n# b\nE\n");
	fails(CANON_SH, "cat <<EOF\nno end\n");
	/* bash and dash end this body at different lines */
	fails(CANON_SH, "cat <<EOF\nE\\\nOF\nEOF\n");
}

static void sh_failures(void **state)
{
	fails(CANON_SH, "echo 'abc\n");
	fails(CANON_SH, "echo \"abc\n");
	fails(CANON_SH, "echo \"$(echo\"\n");
	fails(CANON_SH, "echo ${x\n");
	fails(CANON_SH, "echo `abc\n");
	fails(CANON_SH, "(echo)#x\n");
	fails(CANON_SH, "echo $'it\\'s'\n");
}

static void sh_sources(void **state)
{
	static const char *const w[] = { "./lib.sh", "/etc/a b.sh", "c.sh", "d.sh", "e.sh", NULL };
	deps_are(CANON_SH,
		 "#!/bin/sh\nsource ./lib.sh\n. '/etc/a b.sh'\nif true; then . \"c.sh\"; fi\n"
		 "x() { source d.sh arg; }\nFOO=1 . e.sh\n"
		 ". $HOME/x.sh\nsource \"$d/y.sh\"\nsource *.sh\n. ~/z.sh\n"
		 "echo source f.sh\n# source g.sh\necho '. h.sh'\n",
		 w);
}

/* ---- detection and dispatch ---- */

static void detect(void **state)
{
	assert_int_equal(canon_detect("a.py", "", 0), CANON_PYTHON);
	assert_int_equal(canon_detect("dir.x/a.sh", NULL, 0), CANON_SH);
	assert_int_equal(canon_detect("a.bash", NULL, 0), CANON_SH);
	assert_int_equal(canon_detect("a.zsh", NULL, 0), CANON_RAW);
	assert_int_equal(canon_detect("a.txt", NULL, 0), CANON_RAW);
	assert_int_equal(canon_detect(NULL, NULL, 0), CANON_RAW);
#define SB(s) canon_detect("run", s, strlen(s))
	assert_int_equal(SB("#!/usr/bin/env python3\n"), CANON_PYTHON);
	assert_int_equal(SB("#!/usr/bin/python3.12 -u\n"), CANON_PYTHON);
	assert_int_equal(SB("#!/usr/bin/python2\n"), CANON_RAW);
	assert_int_equal(SB("#!/bin/bash\n"), CANON_SH);
	assert_int_equal(SB("#! /bin/sh -e\n"), CANON_SH);
	assert_int_equal(SB("#!/usr/bin/env -S bash -e\n"), CANON_SH);
	assert_int_equal(SB("#!/usr/bin/env LC_ALL=C bash\r\n"), CANON_SH);
	assert_int_equal(SB("#!/bin/zsh\n"), CANON_RAW);
	assert_int_equal(SB("#!/usr/bin/perl\n"), CANON_RAW);
	assert_int_equal(SB("echo hi\n"), CANON_RAW);
	assert_int_equal(canon_detect("x.sh", "#!/usr/bin/env python3\n", 23), CANON_RAW);
	assert_int_equal(canon_detect("x.sh", "#!/bin/bash\n", 12), CANON_SH);
	assert_string_equal(canon_lang_name(CANON_SH), "sh");
	/* what runs the file speaks when nothing else does, and must agree */
	assert_int_equal(canon_detect_run("build", "echo $A\n", 8, CANON_SH), CANON_SH);
	assert_int_equal(canon_detect_run("tool", "import os\n", 10, CANON_PYTHON), CANON_PYTHON);
	assert_int_equal(canon_detect_run("tool", "import os\n", 10, -1), CANON_RAW);
	assert_int_equal(canon_detect_run("x.sh", "echo\n", 5, CANON_SH), CANON_SH);
	assert_int_equal(canon_detect_run("x.py", "echo\n", 5, CANON_SH), CANON_RAW);
	assert_int_equal(canon_detect_run("x", "#!/usr/bin/python3\n", 19, CANON_SH), CANON_RAW);
	assert_int_equal(canon_lang_of_exe("/usr/bin/dash"), CANON_SH);
	assert_int_equal(canon_lang_of_exe("/usr/bin/python3.11"), CANON_PYTHON);
	assert_int_equal(canon_lang_of_exe("/usr/bin/zsh"), CANON_RAW);
}

static void dispatch_and_lines(void **state)
{
	struct strbuf out = STRBUF_INIT;
	struct strvec deps = STRVEC_INIT;
	struct canon_lines lines = CANON_LINES_INIT;
	const char *bad = "x = 'oops\n";

	sb_adds(&out, "prefix:");
	assert_int_equal(canon_source(CANON_PYTHON, bad, strlen(bad), &out, &deps), 1);
	assert_string_equal(out.buf, "prefix:x = 'oops\n");
	assert_int_equal(deps.n, 0);

	sb_reset(&out);
	assert_int_equal(canon_source(CANON_RAW, "a # b\n", 6, &out, NULL), 0);
	assert_string_equal(out.buf, "a # b\n");

	sb_reset(&out);
	const char *py = "# c\nimport os\n\ns = '''a\nb'''\nx = (1,\n\n  2)\n";
	assert_int_equal(canon_source_lines(CANON_PYTHON, py, strlen(py), &out, &deps, &lines), 0);
	assert_string_equal(out.buf, "import os\ns = '''a\nb'''\nx = (1,\n  2)\n");
	assert_int_equal(lines.n, 5);
	assert_int_equal(lines.v[0], 2);
	assert_int_equal(lines.v[1], 4);
	assert_int_equal(lines.v[2], 5);
	assert_int_equal(lines.v[3], 6);
	assert_int_equal(lines.v[4], 8);
	assert_int_equal(deps.n, 1);

	canon_lines_release(&lines);
	sb_reset(&out);
	const char *sh = "# c\necho a\n\ncat <<E\nx\nE\n";
	assert_int_equal(canon_source_lines(CANON_SH, sh, strlen(sh), &out, NULL, &lines), 0);
	assert_string_equal(out.buf, "echo a\ncat <<E\nx\nE\n");
	assert_int_equal(lines.n, 4);
	assert_int_equal(lines.v[0], 2);
	assert_int_equal(lines.v[1], 4);
	assert_int_equal(lines.v[3], 6);

	/* line numbers may reach the output: dropped lines stay as empty ones */
	sb_reset(&out);
	const char *ln = "# c\necho $LINENO\n";
	assert_int_equal(canon_sh(ln, strlen(ln), &out, NULL), 0);
	assert_string_equal(out.buf, "\necho $LINENO\n");

	sb_release(&out);
	sv_release(&deps);
	canon_lines_release(&lines);
}

/* The variables code names, in the order first named, once each. */
static void env_is(enum canon_lang lang, const char *code, const char *want)
{
	struct strvec names = STRVEC_INIT;
	struct strbuf got = STRBUF_INIT;
	canon_env_refs(lang, code, strlen(code), &names);
	for (size_t i = 0; i < names.n; i++)
		sb_addf(&got, "%s%s", i ? " " : "", names.v[i]);
	assert_string_equal(got.buf ? got.buf : "", want);
	sv_release(&names);
	sb_release(&got);
}

static void env_refs(void **state)
{
	(void)state;
	env_is(CANON_SH, "echo $A ${B:-x} \"$C\"$A $1 $@ $? $$ ${#D} $RANDOM $PWD $BASH_VERSION $_E9", "A B C D _E9");
	/* names read without a $: arithmetic, an index, -v, declare, printenv */
	env_is(CANON_SH,
	       "echo $((N1+0)) ${a[N2]}\n(( N3 > 3 ))\nlet x=N4+1\ndeclare -i y=N5 z\ntypeset -p N6\n"
	       "[[ -v N7 ]]; printenv N8 > out; echo $((0x1f + 16#ff))",
	       "N1 a N2 N3 x N4 N5 N6 N7 N8");
	/* many at once: a pattern, as -e takes; an env that runs a command
	 * dumps nothing */
	env_is(CANON_SH, "echo ${!P_*} ${!Q_@}; env | grep X; env A=1 cmd; printenv $(echo V)", "P_* Q_* *");
	/* a tilde that expands is HOME; ~user and one inside a word are not */
	env_is(CANON_SH, "cd ~/src; P=~/x; Q=a:~/y\n", "HOME");
	env_is(CANON_SH, "echo a~b ~root/x", "");
	env_is(CANON_PYTHON,
	       "import os\nos.environ['A']; os.getenv(\"B\"); os.environ.get( 'C', 'd'); environ.setdefault('D', '1')\n"
	       "os.environ[name]; os.getenv(f'{x}'); os.environ.pop(\"E\"); os.environ[\"A\"]",
	       "A B C D E *");
	/* a name not written there may be any variable: every one counts
	 * ("*", as a shell's bare env); a copy handed on is no read */
	env_is(CANON_PYTHON, "def env(k, d=None):\n    return os.environ.get(k, d)\n", "*");
	env_is(CANON_PYTHON, "for k in os.environ: pass\n", "*");
	env_is(CANON_PYTHON, "print(sorted(os.environ.items()))\n", "*");
	env_is(CANON_PYTHON, "from os import getenv\ng = getenv(KEY)\n", "*");
	env_is(CANON_PYTHON,
	       "from os import getenv, environ\nenv = os.environ.copy()\nsubprocess.run(c, env=env)\n"
	       "subprocess.run(c, env={**os.environ, 'A': '1'})\nenv['B'] = '2'\n",
	       "B");
	/* on tokens: split over lines, spaced, other literal forms, aliases */
	env_is(CANON_PYTHON,
	       "os.environ.get(\n    \"M1\")\nos.getenv(\n'M2')\nos.environ[\n'M3']\nos.environ .get('M4')\n"
	       "if 'M5' in os.environ and 'M6' not in os.environ: pass\nos.getenv(key='M7')\n"
	       "os.environ.get(\"\"\"M8\"\"\")\nos.environb[b'M9']; os.getenvb(b'M10')\n"
	       "env = os.environ\nenv.get('M11'); env['M12']\nfrom os import getenv as g\ng('M13')\n"
	       "c = os.environ.copy()\nc.get('M14'); dict(os.environ)['M15']\nos.environ.get( # why\n 'M16')\n"
	       "x = os.environ.get('M17')\nx.get('NOT_ENV')",
	       "M1 M2 M3 M4 M5 M6 M7 M8 M9 M10 M11 M12 M13 M14 M15 M16 M17");
	/* raw may be zsh or ksh: their $NAME count too */
	env_is(CANON_RAW, "echo $A", "A");
	env_is(CANON_RAW,
	       "const lr = process.env.LR, s = process.env[\"SEED\"]; my $h = $ENV{HOME} . $ENV{'X'};\n"
	       "y <- ENV[\"Y\"]; z <- Sys.getenv(\"Z\"); process.env['Q']",
	       "LR SEED Q Y HOME X Z h ENV");
	/* the script's own lower-case variables, assigned before they are
	 * read; an upper-case one, and one read first, stay */
	env_is(CANON_SH, "lr=0.1; echo $lr\nfor f in *; do echo $f; done\nX=1; echo $X; echo $y; y=2; echo $y", "X y");
	env_is(CANON_SH, "lr=${lr:-0.1}; echo $lr $SLURM_JOB_ID $CASHET_DIR; PATH=$PATH:/opt/bin", "lr");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(py_comments_blank_trailing),
		cmocka_unit_test(py_docstrings),
		cmocka_unit_test(py_hash_in_strings),
		cmocka_unit_test(py_real_changes),
		cmocka_unit_test(py_brackets_and_continuations),
		cmocka_unit_test(py_failures),
		cmocka_unit_test(py_imports),
		cmocka_unit_test(sh_comments_blank_trailing),
		cmocka_unit_test(sh_not_comments),
		cmocka_unit_test(sh_heredocs),
		cmocka_unit_test(sh_failures),
		cmocka_unit_test(sh_sources),
		cmocka_unit_test(detect),
		cmocka_unit_test(env_refs),
		cmocka_unit_test(dispatch_and_lines),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
