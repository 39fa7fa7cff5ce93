#!/usr/bin/env bats
# Scripts: "a cosmetic edit never re-runs an expensive job, and a real change
# always does". When a command runs a script (the argument after python3,
# bash, sh, node... and their own options; python3 -m MODULE; env python3;
# an executable with a shebang), the script is hashed in a canonical form:
# for Python and sh, comments, blank lines and trailing blanks are not part
# of the key, while docstrings, indentation, string contents and
# operators are. Local imports (Python import/from/relative imports,
# packages, PYTHONPATH entries inside the project) and shell `source F` /
# `. F` are followed recursively; installed packages are not. --dep adds
# more files, --raw-sources hashes bytes. Unparseable sources and other
# languages are hashed raw. Every test checks both directions; cashet why
# (nothing runs) is used where running the script again adds nothing.
# These are the rules of the declared key, which --trace=off uses and which
# is the fallback where tracing is impossible, so the store here is set to
# `trace off`; a traced run observes what it imports instead
# (28-observed.bats), with the same canonical forms.

load helper

setup_file() {
	direct_python3
}

setup() {
	common_setup
	cashet init > /dev/null
	cashet config trace off
}

# A Python script with a docstring at every level it can have one.
write_model_py() {
	cat > main.py <<'EOF'
"""Module docstring."""
import os


class Model:
    """Class docstring."""

    def fit(self, x):
        """Def docstring."""
        return x * 2  # double it


print(Model().fit(21), "a # b", os.sep)
EOF
}

# main imports pkg.a, which imports pkg.sub.b: a package two levels down.
write_pkg_tree() {
	mkdir -p pkg/sub
	printf 'import pkg.a\nprint(pkg.a.X)\n' > main.py
	: > pkg/__init__.py
	printf 'from pkg.sub import b\nX = b.Y + 1\n' > pkg/a.py
	: > pkg/sub/__init__.py
	printf 'Y = 1\n' > pkg/sub/b.py
}

# --- Python: cosmetic edits --------------------------------------------------

@test "python: comments, blank lines and trailing blanks are a hit" {
	write_model_py
	[ "$(verdict -- python3 main.py)" = miss ]
	[ "$(verdict -- python3 main.py)" = hit ]
	# a new comment line, and a changed trailing comment
	sed -i '2i # a new comment line' main.py
	sed -i 's/# double it/# twice, really/' main.py
	[ "$(verdict -- python3 main.py)" = hit ]
	# blank lines, at the top level and inside a function body
	sed -i 's/^import os$/import os\n\n\n/' main.py
	sed -i 's/^        return x \* 2/\n        return x * 2/' main.py
	[ "$(verdict -- python3 main.py)" = hit ]
	# trailing blanks and a tab
	sed -i 's/^class Model:$/class Model:   /; s/^print(.*)$/&\t /' main.py
	[ "$(verdict -- python3 main.py)" = hit ]
	run cashet exec -- python3 main.py
	assert_output "42 a # b /"
}

@test "python: module, class and def docstring edits are a miss; comments around them a hit" {
	write_model_py
	[ "$(verdict -- python3 main.py)" = miss ]
	sed -i 's/Module docstring\./The module, reworded./' main.py
	[ "$(verdict -- python3 main.py)" = miss ]
	sed -i 's/Class docstring\./A model, reworded./' main.py
	[ "$(verdict -- python3 main.py)" = miss ]
	sed -i 's/"""Def docstring\."""/"""Fit.\n\n        Longer text.\n        """/' main.py
	[ "$(verdict -- python3 main.py)" = miss ]
	sed -i 's/"""Class docstring\."""/"""A model, reworded."""  # why/' main.py
	[ "$(verdict -- python3 main.py)" = hit ]
}

@test "python: a '#' in a string is not a comment; string contents matter" {
	write_model_py
	[ "$(verdict -- python3 main.py)" = miss ]
	# text after the '#' inside the literal
	sed -i 's/"a # b"/"a # c"/' main.py
	[ "$(verdict -- python3 main.py)" = miss ]
	run cashet exec -- python3 main.py
	assert_output "42 a # c /"
	# text before it
	sed -i 's/"a # c"/"A # c"/' main.py
	[ "$(verdict -- python3 main.py)" = miss ]
	# spaces inside a string are contents, not trailing blanks
	sed -i 's/"A # c"/"A # c  "/' main.py
	[ "$(verdict -- python3 main.py)" = miss ]
	run cashet exec -- python3 main.py
	assert_output "42 A # c   /"
}

@test "python: an operator change is a miss" {
	write_model_py
	[ "$(verdict -- python3 main.py)" = miss ]
	sed -i 's/return x \* 2/return x ** 2/' main.py
	[ "$(verdict -- python3 main.py)" = miss ]
	run cashet exec -- python3 main.py
	assert_output "441 a # b /"
	[ "$(verdict -- python3 main.py)" = hit ]
}

@test "python: moving a statement into or out of a block is a miss" {
	printf 'x = 1\nif x > 5:\n    print("big")\n    print("done")\n' > main.py
	run cashet exec -- python3 main.py
	assert_output ""
	# dedent: print("done") now runs unconditionally
	sed -i 's/^    print("done")/print("done")/' main.py
	[ "$(verdict -- python3 main.py)" = miss ]
	run cashet exec -- python3 main.py
	assert_output done
	# and back in: the same key as the first run
	sed -i 's/^print("done")/    print("done")/' main.py
	[ "$(verdict -- python3 main.py)" = hit ]
	run cashet exec -- python3 main.py
	assert_output ""
}

@test "python: blank lines and trailing blanks inside a multi-line string are content" {
	printf 'x = """a\n\nb   \n"""\nprint(repr(x))\n' > main.py
	run cashet exec -- python3 main.py
	assert_output "'a\\n\\nb   \\n'"
	printf 'x = """a\n\nb\n"""\nprint(repr(x))\n' > main.py
	[ "$(verdict -- python3 main.py)" = miss ]
	printf 'x = """a\nb\n"""\nprint(repr(x))\n' > main.py
	[ "$(verdict -- python3 main.py)" = miss ]
	run cashet exec -- python3 main.py
	assert_output "'a\\nb\\n'"
	# a '#' line inside it is not a comment
	printf 'x = """a\n# b\n"""\nprint(repr(x))\n' > main.py
	[ "$(verdict -- python3 main.py)" = miss ]
	printf 'x = """a\n# c\n"""\nprint(repr(x))\n' > main.py
	[ "$(verdict -- python3 main.py)" = miss ]
}

@test "python: a program that reads its docstrings or shows line numbers keeps them in the key" {
	# __doc__ is output: the docstring is code
	printf '"""Usage: tool."""\nprint(__doc__)\n' > doc.py
	[ "$(verdict -- python3 doc.py)" = miss ]
	sed -i 's/Usage: tool\./Usage: tool [-v]./' doc.py
	[ "$(verdict -- python3 doc.py)" = miss ]
	run cashet exec -- python3 doc.py
	assert_output "Usage: tool [-v]."
	# a line number is output: a blank line moves it
	printf 'import inspect\nprint(inspect.currentframe().f_lineno)\n' > line.py
	run cashet exec -- python3 line.py
	assert_output 2
	sed -i '1a\\' line.py
	[ "$(verdict -- python3 line.py)" = miss ]
	run cashet exec -- python3 line.py
	assert_output 3
}

# --- Python: imports ---------------------------------------------------------

@test "python: a module two levels down: code is a miss, a comment a hit" {
	write_pkg_tree
	[ "$(verdict -- python3 main.py)" = miss ]
	run source_parts
	assert_output "script main.py
source pkg/__init__.py
source pkg/a.py
source pkg/sub/__init__.py
source pkg/sub/b.py"
	[ "$(verdict -- python3 main.py)" = hit ]
	printf '# the answer\nY = 1  # one\n' > pkg/sub/b.py
	[ "$(verdict -- python3 main.py)" = hit ]
	printf 'Y = 2\n' > pkg/sub/b.py
	[ "$(verdict -- python3 main.py)" = miss ]
	run cashet exec -- python3 main.py
	assert_output 3
	# a package's __init__.py is code too
	echo 'VERSION = 1' > pkg/sub/__init__.py
	[ "$(verdict -- python3 main.py)" = miss ]
}

@test "python: 'from . import x' and 'from .mod import y' inside a package are followed" {
	mkdir pkg
	printf 'from pkg import a\nprint(a.X)\n' > main.py
	: > pkg/__init__.py
	printf 'from . import helper\nfrom .consts import K\nX = helper.H + K\n' > pkg/a.py
	printf 'H = 10\n' > pkg/helper.py
	printf 'K = 1\n' > pkg/consts.py
	run cashet exec -- python3 main.py
	assert_output 11
	run source_parts
	assert_line "source pkg/helper.py"
	assert_line "source pkg/consts.py"
	printf 'H = 20\n' > pkg/helper.py
	[ "$(verdict -- python3 main.py)" = miss ]
	printf 'K = 2\n' > pkg/consts.py
	[ "$(verdict -- python3 main.py)" = miss ]
	printf 'K = 2  # two\n' > pkg/consts.py
	[ "$(verdict -- python3 main.py)" = hit ]
	run cashet exec -- python3 main.py
	assert_output 22
}

@test "python: a module found through PYTHONPATH inside the project is followed" {
	mkdir lib
	printf 'import util\nprint(util.V)\n' > main.py
	printf 'V = "one"\n' > lib/util.py
	export PYTHONPATH=lib
	[ "$(verdict -- python3 main.py)" = miss ]
	run source_parts
	assert_output "script main.py
source lib/util.py"
	printf '\n# comment\nV = "one"\n' > lib/util.py
	[ "$(verdict -- python3 main.py)" = hit ]
	printf 'V = "two"\n' > lib/util.py
	[ "$(verdict -- python3 main.py)" = miss ]
	run cashet exec -- python3 main.py
	assert_output two
}

@test "python: stdlib imports are not sources; a local module with its own name is" {
	printf 'import json\nimport os.path\nfrom collections import OrderedDict\nimport helpers\nprint(helpers.f())\n' > main.py
	printf 'def f():\n    return "local"\n' > helpers.py
	[ "$(verdict -- python3 main.py)" = miss ]
	run source_parts
	assert_output "script main.py
source helpers.py"
	[ "$(verdict -- python3 main.py)" = hit ]
	printf 'def f():\n    return "changed"\n' > helpers.py
	[ "$(verdict -- python3 main.py)" = miss ]
	run cashet exec -- python3 main.py
	assert_output changed
}

@test "python: an import cycle terminates and hashes both modules" {
	printf 'import a\nprint(a.A, a.b.B)\n' > main.py
	printf 'import b\nA = 1\n' > a.py
	printf 'import a\nB = 2\n' > b.py
	run timeout 10 cashet exec -- python3 main.py
	assert_success
	assert_output "1 2"
	run source_parts
	assert_output "script main.py
source a.py
source b.py"
	printf 'import a\nB = 3\n' > b.py
	[ "$(timeout 10 cashet why -- python3 main.py > /dev/null; echo $?)" = 1 ]
	printf 'import b\nA = 4\n' > a.py
	[ "$(verdict -- python3 main.py)" = miss ]
	# a script that imports itself (by its module name) is a cycle too
	printf 'import selfref\nX = 1\n' > selfref.py
	run timeout 10 cashet exec -- python3 selfref.py
	assert_success
	[ "$(would -- python3 selfref.py)" = hit ]
}

# --- Python: how the script is named on the command line -------------------

@test "python: the script is found after interpreter options (python3 -u -X dev)" {
	printf 'print("train")\n' > train.py
	[ "$(verdict -- python3 -u -X dev train.py --epochs 3)" = miss ]
	run source_parts
	assert_output "script train.py"
	echo '# tuned' >> train.py
	[ "$(verdict -- python3 -u -X dev train.py --epochs 3)" = hit ]
	printf 'print("train!")\n' > train.py
	[ "$(verdict -- python3 -u -X dev train.py --epochs 3)" = miss ]
	# clustered flags and -W with its value
	[ "$(verdict -- python3 -BuW ignore train.py)" = miss ]
	run source_parts
	assert_output "script train.py"
}

@test "python: python3 -m pkg.tool hashes pkg/tool.py and its package" {
	mkdir pkg
	: > pkg/__init__.py
	printf 'print("tool")\n' > pkg/tool.py
	[ "$(verdict -- python3 -m pkg.tool)" = miss ]
	run source_parts
	assert_line "script pkg/tool.py"
	assert_line "source pkg/__init__.py"
	printf '# a comment\nprint("tool")  # same\n' > pkg/tool.py
	[ "$(verdict -- python3 -m pkg.tool)" = hit ]
	printf 'print("tool 2")\n' > pkg/tool.py
	[ "$(verdict -- python3 -m pkg.tool)" = miss ]
	run cashet exec -- python3 -m pkg.tool
	assert_output "tool 2"
	# the module name glued to -m
	[ "$(verdict -- python3 -mpkg.tool)" = miss ]
	run source_parts
	assert_line "script pkg/tool.py"
}

@test "python: 'env python3 x.py' hashes x.py" {
	printf 'print("x")\n' > x.py
	[ "$(verdict -- env python3 x.py)" = miss ]
	run source_parts
	assert_output "script x.py"
	echo '# note' >> x.py
	[ "$(verdict -- env python3 x.py)" = hit ]
	printf 'print("y")\n' > x.py
	[ "$(verdict -- env python3 x.py)" = miss ]
	[ "$(verdict -- env PYTHONHASHSEED=0 python3 -u x.py)" = miss ]
	run source_parts
	assert_output "script x.py"
}

@test "python: an executable with a '#!/usr/bin/env python3' shebang run as ./x.py" {
	printf '#!/usr/bin/env python3\nprint("direct")\n' > x.py
	chmod +x x.py
	[ "$(verdict -- ./x.py)" = miss ]
	run source_parts
	assert_output "script x.py"
	run cashet show --json "$(last_hash)"
	[ "$(echo "$output" | json_field '[p["kind"] for p in j["parts"]].count("interp")')" = 1 ]
	sed -i '2i # explain what follows' x.py
	[ "$(verdict -- ./x.py)" = hit ]
	sed -i 's/"direct"/"changed"/' x.py
	[ "$(verdict -- ./x.py)" = miss ]
	run cashet exec -- ./x.py
	assert_output changed
}

@test "python: an unparseable source is hashed raw: a comment edit is a miss, never an error" {
	printf 'x = 1\nprint("unterminated\n' > broken.py
	run cashet exec --cache-failures -- python3 broken.py
	assert_failure 1
	[[ "$output" == *SyntaxError* ]]
	[ "$(would --cache-failures -- python3 broken.py)" = hit ]
	sed -i '1i # a comment' broken.py
	run cashet why --cache-failures -- python3 broken.py
	assert_failure 1
	assert_line "  broken.py changed (line 1)"
}

# --- shell ---------------------------------------------------------------------

write_sh() {
	cat > run.sh <<'EOF'
#!/bin/bash
# build step
echo "a # b"
cat <<END
# not a comment: heredoc text
body
END
EOF
}

@test "sh: comments and blank lines are a hit" {
	write_sh
	[ "$(verdict -- bash run.sh)" = miss ]
	[ "$(verdict -- bash run.sh)" = hit ]
	sed -i 's/# build step/# the build step, reworded/' run.sh
	sed -i 's/^echo "a # b"$/\n&   # trailing comment\n/' run.sh
	[ "$(verdict -- bash run.sh)" = hit ]
	run cashet exec -- bash run.sh
	assert_output "a # b
# not a comment: heredoc text
body"
}

@test "sh: a heredoc body is data, even a line starting with '#'" {
	write_sh
	[ "$(verdict -- bash run.sh)" = miss ]
	sed -i 's/^body$/body 2/' run.sh
	[ "$(verdict -- bash run.sh)" = miss ]
	sed -i 's/^# not a comment: heredoc text$/# still not a comment/' run.sh
	[ "$(verdict -- bash run.sh)" = miss ]
	run cashet exec -- bash run.sh
	assert_line --index 1 "# still not a comment"
	# a blank line inside the heredoc is output too
	sed -i 's/^body 2$/\nbody 2/' run.sh
	[ "$(verdict -- bash run.sh)" = miss ]
}

@test "sh: a '#' inside quotes is not a comment" {
	write_sh
	printf 'echo x'"'"'#y'"'"' "#z"\n' >> run.sh
	[ "$(verdict -- sh run.sh)" = miss ]
	sed -i 's/"a # b"/"a # c"/' run.sh
	[ "$(verdict -- sh run.sh)" = miss ]
	sed -i "s/x'#y'/x'#Y'/" run.sh
	[ "$(verdict -- sh run.sh)" = miss ]
	run cashet exec -- sh run.sh
	assert_line "a # c"
	assert_line "x#Y #z"
	# a '#' glued to a word is not a comment either
	echo 'echo a#b' >> run.sh
	[ "$(verdict -- sh run.sh)" = miss ]
	sed -i 's/^echo a#b$/echo a#c/' run.sh
	[ "$(verdict -- sh run.sh)" = miss ]
}

@test "sh: '#' in \$#, \${#x}, \${x#pat}, a#b and \$((2#101)) starts no comment" {
	printf 'set -- a b\nx=abc\necho $# ${#x} ${x#a} ${x##*b} a#b $((2#101)) end\n' > run.sh
	run cashet exec -- bash run.sh
	assert_output "2 3 bc c a#b 5 end"
	sed -i 's/ end$/ END/' run.sh
	[ "$(verdict -- bash run.sh)" = miss ]
	run cashet exec -- bash run.sh
	assert_output "2 3 bc c a#b 5 END"
	# while a real comment after them is one
	sed -i 's/ END$/ END # note/' run.sh
	[ "$(verdict -- bash run.sh)" = hit ]
}

@test "sh: 'source ./lib.sh' and '. lib.sh' are followed" {
	printf 'source ./lib1.sh\n. lib2.sh\necho "$A$B"\n' > main.sh
	printf 'A=1\n' > lib1.sh
	printf 'B=2\n' > lib2.sh
	[ "$(verdict -- bash main.sh)" = miss ]
	run source_parts
	assert_output "script main.sh
source lib1.sh
source lib2.sh"
	printf '# comment\nA=1 # one\n\n' > lib1.sh
	[ "$(verdict -- bash main.sh)" = hit ]
	printf '# comment\nB=2\n' > lib2.sh
	[ "$(verdict -- bash main.sh)" = hit ]
	printf 'A=3\n' > lib1.sh
	[ "$(verdict -- bash main.sh)" = miss ]
	printf 'B=4\n' > lib2.sh
	[ "$(verdict -- bash main.sh)" = miss ]
	run cashet exec -- bash main.sh
	assert_output 34
}

@test "sh: a sourced file that sources its sourcer terminates" {
	printf '[ -n "$LOOP" ] && return 0\nLOOP=1\n. ./b.sh\necho done\n' > a.sh
	printf '. ./a.sh\n' > b.sh
	run timeout 10 cashet exec -- bash a.sh
	assert_success
	assert_output done
	run source_parts
	assert_line --index 0 "script a.sh"
	assert_line --index 1 "source b.sh"
	# (a.sh is also listed a second time, as "source a.sh": see
	# scripts-bugs.bats.pending)
	printf '. ./a.sh\necho b\n' > b.sh
	[ "$(would -- bash a.sh)" = run ]
}

@test "a file without an extension is in the language of what runs it: bash build, python3 tool, a sourced ./common" {
	printf 'echo "target=$TARGET"\n' > build
	printf 'import os\nprint(os.environ.get("PN"))\n' > tool
	printf '. ./common\necho "main"\n' > main.sh
	printf 'echo "common=$CV"\n' > common
	export TARGET=x86 PN=1 CV=1
	[ "$(verdict -- bash build)" = miss ]
	[ "$(verdict -- python3 tool)" = miss ]
	[ "$(verdict -- bash main.sh)" = miss ]
	export TARGET=arm PN=2 CV=2
	run cashet exec -- bash build
	assert_output target=arm
	run cashet exec -- python3 tool
	assert_output 2
	run cashet exec -- bash main.sh
	assert_output "common=2
main"
	# and they are read as shell and Python: a comment is cosmetic
	printf '# which target\necho "target=$TARGET"\n' > build
	printf '# the name\nimport os\nprint(os.environ.get("PN"))\n' > tool
	printf '# shared\necho "common=$CV"\n' > common
	[ "$(verdict -- bash build)" = hit ]
	[ "$(verdict -- python3 tool)" = hit ]
	[ "$(verdict -- bash main.sh)" = hit ]
}

@test "sh: 'bash -c CODE' has no script: the code is in argv" {
	echo 'echo from-file' > code.sh
	[ "$(verdict -- bash -c 'echo one # c')" = miss ]
	run source_parts
	assert_output ""
	[ "$(verdict -- bash -c 'echo one # c')" = hit ]
	# argv is hashed as given: even a comment in it is a change
	[ "$(verdict -- bash -c 'echo one # d')" = miss ]
	[ "$(verdict -- bash -c 'echo two # c')" = miss ]
	# the word after -c is code, not a script, even if a file has that name
	[ "$(verdict -- sh -ec code.sh)" = miss ]
	run source_parts
	assert_output ""
}

# --- options -------------------------------------------------------------------

@test "--raw-sources: a comment edit is a miss" {
	write_model_py
	[ "$(verdict --raw-sources -- python3 main.py)" = miss ]
	[ "$(verdict --raw-sources -- python3 main.py)" = hit ]
	sed -i '2i # a comment' main.py
	[ "$(verdict --raw-sources -- python3 main.py)" = miss ]
	[ "$(verdict --raw-sources -- python3 main.py)" = hit ]
	# imports are still followed, byte for byte
	write_pkg_tree
	[ "$(verdict --raw-sources -- python3 main.py)" = miss ]
	echo '# c' >> pkg/sub/b.py
	[ "$(verdict --raw-sources -- python3 main.py)" = miss ]
	# without the option the same comment is cosmetic
	[ "$(verdict -- python3 main.py)" = miss ]
	echo '# c2' >> pkg/sub/b.py
	[ "$(verdict -- python3 main.py)" = hit ]
}

@test "--dep 'conf/*.py': code edits are a miss, comments a hit, a new file a miss" {
	mkdir conf
	printf 'LR = 0.1\n' > conf/a.py
	printf 'EPOCHS = 3\n' > conf/b.py
	cmd=(--dep 'conf/*.py' -- sh -c "$(counted 'echo train')")
	[ "$(verdict "${cmd[@]}")" = miss ]
	run source_parts
	assert_output "dep conf/a.py
dep conf/b.py"
	[ "$(verdict "${cmd[@]}")" = hit ]
	printf '# learning rate\nLR = 0.1  # default\n' > conf/a.py
	[ "$(verdict "${cmd[@]}")" = hit ]
	printf 'EPOCHS = 4\n' > conf/b.py
	[ "$(verdict "${cmd[@]}")" = miss ]
	printf 'X = 1\n' > conf/c.py
	[ "$(verdict "${cmd[@]}")" = miss ]
	rm conf/c.py
	[ "$(verdict "${cmd[@]}")" = hit ]
	[ "$(run_count)" = 3 ]
}

@test "--dep FILE follows the file's imports" {
	printf 'import layers\nN = layers.K\n' > model.py
	printf 'K = 1\n' > layers.py
	[ "$(verdict --dep model.py -- echo fit)" = miss ]
	run source_parts
	assert_output "dep model.py
source layers.py"
	echo '# c' >> layers.py
	[ "$(verdict --dep model.py -- echo fit)" = hit ]
	printf 'K = 2\n' > layers.py
	[ "$(verdict --dep model.py -- echo fit)" = miss ]
}

@test "--dep with a missing file fails before running (exit 125)" {
	run --separate-stderr cashet exec --dep nothing.py -- sh -c "$(counted 'echo x')"
	assert_failure 125
	[[ "$stderr" == *"--dep nothing.py"* ]]
	[ "$(run_count)" = 0 ]
}

# --- what is recorded ----------------------------------------------------------

@test "show --json: script and source parts with root-relative names, from a subdirectory" {
	mkdir -p exp/models
	printf 'import models.net\nprint(models.net.W)\n' > exp/train.py
	: > exp/models/__init__.py
	printf 'W = 5\n' > exp/models/net.py
	printf 'source ../env.sh\necho "$E"\n' > exp/go.sh
	printf 'E=e\n' > env.sh
	cd exp
	run cashet exec -- python3 train.py
	assert_output 5
	run cashet show --json "$(last_hash)"
	parts=$(echo "$output" | json_field '[(p["kind"], p["name"]) for p in j["parts"] if p["kind"] in ("script", "source")]')
	[ "$parts" = "[('script', 'exp/train.py'), ('source', 'exp/models/__init__.py'), ('source', 'exp/models/net.py')]" ]
	[ "$(echo "$output" | json_field 'j["cwd"]')" = exp ]
	# the sources are stored with the run, under the same names
	files=$(echo "$output" | json_field 'sorted(f["path"] for f in j["files"] if f["kind"] == "source")')
	[ "$files" = "['sources/exp/models/__init__.py', 'sources/exp/models/net.py', 'sources/exp/train.py']" ]
	run cashet exec -- bash go.sh
	assert_output e
	run source_parts
	assert_output "script exp/go.sh
source env.sh"
}

# --- other languages -------------------------------------------------------------

@test "node: a script is hashed raw (a comment edit is a miss)" {
	command -v node > /dev/null || skip "node is not installed"
	printf 'console.log("n");\n' > app.js
	[ "$(verdict -- node app.js)" = miss ]
	run source_parts
	assert_output "script app.js"
	[ "$(verdict -- node app.js)" = hit ]
	echo '// a comment' >> app.js
	[ "$(verdict -- node app.js)" = miss ]
	[ "$(verdict -- node --no-warnings app.js)" = miss ]
	run source_parts
	assert_output "script app.js"
}

@test "perl: a script is hashed raw (a comment edit is a miss)" {
	command -v perl > /dev/null || skip "perl is not installed"
	printf 'print "p\\n";\n' > app.pl
	[ "$(verdict -- perl -w app.pl)" = miss ]
	run source_parts
	assert_output "script app.pl"
	[ "$(verdict -- perl -w app.pl)" = hit ]
	echo '# a comment' >> app.pl
	[ "$(verdict -- perl -w app.pl)" = miss ]
	run cashet exec -- perl -w app.pl
	assert_output p
}

@test "ruby: a script is hashed raw (a comment edit is a miss)" {
	command -v ruby > /dev/null || skip "ruby is not installed"
	printf 'puts "r"\n' > app.rb
	[ "$(verdict -- ruby app.rb)" = miss ]
	run source_parts
	assert_output "script app.rb"
	echo '# a comment' >> app.rb
	[ "$(verdict -- ruby app.rb)" = miss ]
}

@test "zsh: a .zsh script is hashed raw (a comment edit is a miss)" {
	command -v zsh > /dev/null || skip "zsh is not installed"
	printf 'echo z\n' > app.zsh
	[ "$(verdict -- zsh app.zsh)" = miss ]
	run source_parts
	assert_output "script app.zsh"
	echo '# a comment' >> app.zsh
	[ "$(verdict -- zsh app.zsh)" = miss ]
}

# --- the closure cache -------------------------------------------------------------

# The only test that waits: files older than 2 s let cashet cache the whole
# import closure under the script. The hit must still hold through the cache,
# and a change deep in the tree, or a module appearing where an import
# looked and found nothing, must still be seen.
@test "closure cache: a hit through the cached closure; deep changes and new modules still seen" {
	write_pkg_tree
	printf 'try:\n    import localcfg\nexcept ImportError:\n    localcfg = None\nimport pkg.a\nprint(pkg.a.X, localcfg and localcfg.C)\n' > main.py
	touch -d '1 hour ago' main.py pkg pkg/sub pkg/*.py pkg/sub/*.py .
	sleep 2.1
	[ "$(verdict -- python3 main.py)" = miss ]
	# the premise: the closure of main.py was cached (stat cache, kind 11)
	[ "$(python3 -c 'import sqlite3; print(sqlite3.connect(".cashet/index.db").execute("SELECT count(*) FROM statcache WHERE kind = 11 AND path LIKE ?", ("closure:script:%/main.py:%",)).fetchone()[0])')" = 1 ]
	[ "$(verdict -- python3 main.py)" = hit ]
	[ "$(would -- python3 main.py)" = hit ]
	# a cosmetic edit deep down: the cache is stale, the key is not
	echo '# note' >> pkg/sub/b.py
	[ "$(verdict -- python3 main.py)" = hit ]
	printf 'Y = 10\n' > pkg/sub/b.py
	[ "$(verdict -- python3 main.py)" = miss ]
	run cashet exec -- python3 main.py
	assert_output "11 None"
	# a module where the import found nothing before
	printf 'C = 7\n' > localcfg.py
	[ "$(verdict -- python3 main.py)" = miss ]
	run cashet exec -- python3 main.py
	assert_output "11 7"
	run source_parts
	assert_line "source localcfg.py"
}

# python3 -m PKG runs PKG/__main__.py, but only PKG/__init__.py is hashed
# (script.c: the module is resolved like an import; a package's __main__.py
# is never added).
@test "python3 -m pkg: a change to pkg/__main__.py is a miss" {
	mkdir pkg
	: > pkg/__init__.py
	echo 'print(1)' > pkg/__main__.py
	run cashet exec -- python3 -m pkg
	assert_output 1
	echo 'print(2)' > pkg/__main__.py
	run cashet exec -- python3 -m pkg
	assert_output 2 # got: 1 (replayed)
}

# python3 DIR runs DIR/__main__.py; script.c only looks for a regular file
# after the options (is_file), and fp.c hashes only regular-file arguments,
# so nothing of the directory is hashed.
@test "python3 app (a directory with __main__.py): a change to app/__main__.py is a miss" {
	mkdir app
	echo 'print(1)' > app/__main__.py
	run cashet exec -- python3 app
	assert_output 1
	echo 'print(2)' > app/__main__.py
	run cashet exec -- python3 app
	assert_output 2 # got: 1 (replayed)
}

# Python puts the directory of the *resolved* script in sys.path[0]; cashet
# uses the directory of the symlink, so the imports of a symlinked script
# are looked up in the wrong place and not hashed.
@test "a symlinked script's imports are looked up next to the target, as Python does" {
	mkdir src scripts
	printf 'import helper\nprint(helper.X)\n' > src/run.py
	echo 'X = 1' > src/helper.py
	ln -s ../src/run.py scripts/run.py
	run cashet exec -- python3 scripts/run.py
	assert_output 1
	echo 'X = 2' > src/helper.py
	run cashet exec -- python3 scripts/run.py
	assert_output 2 # got: 1 (replayed)
}

# Cycle detection (script.c add_source, the 'seen' list) compares absolute
# paths as built, without folding "." and "..": the same file reached as
# /p/a.sh and /p/./a.sh is added twice.
@test "a sourcing cycle lists each file once" {
	printf '[ -n "$LOOP" ] && return 0\nLOOP=1\n. ./b.sh\necho done\n' > a.sh
	printf '. ./a.sh\n' > b.sh
	run cashet exec -- bash a.sh
	assert_output done
	run source_parts
	assert_output "script a.sh
source b.sh" # got a third line: "source a.sh"
}

# Worse: when a literal path is resolved against the sourcing file's
# directory (sh_resolve's fallback), each level appends "../d/" and the
# "cycle" only ends when the path exceeds PATH_MAX: 580+ parts for one file.
@test "a self-sourcing script through '..' is one part, not hundreds" {
	mkdir d
	printf '[ -n "$G" ] && return 0\nG=1\n. ../d/a.sh\necho hi\n' > d/a.sh
	# from the project root, "../d/a.sh" is not a file next to the working
	# directory, so it is resolved next to d/a.sh: d/../d/a.sh, then
	# d/../d/../d/a.sh, ...
	cashet exec -- bash d/a.sh > /dev/null 2>&1 || true
	run cashet show --json "$(last_hash)"
	[ "$(echo "$output" | json_field 'len([p for p in j["parts"] if p["name"] == "d/a.sh"])')" = 1 ] # got: 584 (until the path is longer than PATH_MAX)
}

@test "docstrings the standard library prints are code: unittest -v, cmd's help, traced or not" {
	local mode
	printf 'import unittest\n\nclass T(unittest.TestCase):\n    def test_a(self):\n        """Checks a."""\n' > test_m.py
	printf 'import cmd\n\nclass Shell(cmd.Cmd):\n    def do_x(self, arg):\n        """Does x."""\n\nShell().onecmd("help x")\n' > shell.py
	# (unittest loads test_m by name: only a traced run sees that file)
	[ "$(verdict --trace on -- python3 -m unittest -v test_m)" = miss ]
	sed -i "s/Checks a\./Checks a, reworded./" test_m.py
	run cashet exec --trace on -- python3 -m unittest -v test_m
	assert_output --partial "Checks a, reworded."
	for mode in on off; do
		sed -i "s/Does x[^.]*\./Does x $mode./" shell.py
		[ "$(verdict --trace $mode -- python3 shell.py)" = miss ]
		sed -i "s/Does x $mode\./Does x $mode, reworded./" shell.py
		run cashet exec --trace $mode -- python3 shell.py
		assert_output "Does x $mode, reworded."
		# a comment is still no code
		printf '# the shell\n' >> shell.py
		[ "$(verdict --trace $mode -- python3 shell.py)" = hit ]
	done
}

@test "docstrings: a program that reads an imported module's __doc__ keeps every docstring of its closure" {
	local mode
	printf 'import helper\nprint(helper.__doc__)\n' > main.py
	for mode in on off; do
		printf '"""First %s."""\ndef f():\n    return 1\n' $mode > helper.py
		[ "$(verdict --trace $mode -- python3 main.py)" = miss ]
		printf '"""Second %s."""\ndef f():\n    return 1\n' $mode > helper.py
		[ "$(verdict --trace $mode -- python3 main.py)" = miss ]
		[ "$(cashet exec --trace $mode -- python3 main.py 2>/dev/null)" = "Second $mode." ]
		# comments are still no code
		printf '"""Second %s."""\n# a comment\ndef f():\n    return 1\n' $mode > helper.py
		[ "$(verdict --trace $mode -- python3 main.py)" = hit ]
	done
}

@test "sh -c 'sh SCRIPT' (a dag.toml string cmd): the script is canonical, also when declared with -i" {
	printf '# prepare\necho hi\n' > prepare.sh
	[ "$(verdict -i prepare.sh -- sh -c 'sh prepare.sh')" = miss ]
	printf '# prepare, reworded\necho hi\n' > prepare.sh
	[ "$(verdict -i prepare.sh -- sh -c 'sh prepare.sh')" = hit ]
	printf '# prepare\necho hello\n' > prepare.sh
	[ "$(verdict -i prepare.sh -- sh -c 'sh prepare.sh')" = miss ]
	# a command string that is not one simple command is hashed as it is
	[ "$(verdict -- sh -c 'sh prepare.sh; true')" = miss ]
	printf '# again\necho hello\n' > prepare.sh
	[ "$(verdict -i prepare.sh -- sh -c 'sh prepare.sh; true')" = miss ]
}
