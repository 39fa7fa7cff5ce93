#!/usr/bin/env bats
# Observed inputs: on a miss cashet watches the command's whole process
# tree and records every file it read, executed, listed or looked for and
# did not find; a later run replays only while every one of them is as it
# was. Each case edits the thing the command depends on without declaring
# it and expects a miss, and the reverse cases (what the command wrote
# itself, __pycache__, a comment in a traced module, a fresh clone) stay
# hits. Verdicts come from the --report-fd JSON line.

load helper

setup_file() {
	direct_python3
}

setup() {
	common_setup
	cashet init > /dev/null
	if ! cashet exec --report-fd 3 -- true 3> "$BATS_TEST_TMPDIR/probe.json" 2> "$BATS_TEST_TMPDIR/probe.err" ||
		grep -q "cannot observe" "$BATS_TEST_TMPDIR/probe.err"; then
		skip "tracing is not possible here: $(cat "$BATS_TEST_TMPDIR/probe.err")"
	fi
	cashet clear > /dev/null 2>&1 || true
}

teardown() {
	# a test's directory outside BATS_TEST_TMPDIR (in /dev/shm) goes too
	if [ -f "$BATS_TEST_TMPDIR/shm.dir" ]; then
		rm -rf "$(cat "$BATS_TEST_TMPDIR/shm.dir")"
	fi
	kill_started
	sanitizer_check
}

# The JSON report of one exec (its output discarded).
report() {
	cashet exec --report-fd 3 "$@" 3>&1 > /dev/null 2> /dev/null
}

field() {
	python3 -c 'import json,sys; v=json.loads(sys.stdin.readline())[sys.argv[1]]; print(v if v is not None else "")' "$1"
}

# first_then CMD...: the first run is a miss, the second a hit.
miss_then_hit() {
	[ "$(verdict "$@")" = miss ]
	[ "$(verdict "$@")" = hit ]
}

@test "a file opened by a hard-coded name: editing it is a miss, leaving it a hit" {
	echo 1 > data.csv
	printf 'print(open("data.csv").read())\n' > s.py
	miss_then_hit -- python3 s.py
	echo 2 > data.csv
	[ "$(verdict -- python3 s.py)" = miss ]
	run cashet exec -- python3 s.py
	assert_output 2
}

@test "a file opened by a relative name after the process changed directory: chdir, fchdir, a raw chdir syscall" {
	# the preload library keeps the cwd it last read: each way of
	# changing it must make it read it again
	mkdir sub
	echo top > x
	cat > s.py <<-'EOF'
	import ctypes, os, platform, sys
	print(open("x").read().strip())
	if sys.argv[1] == "chdir":
	    os.chdir("sub")
	elif sys.argv[1] == "fchdir":
	    os.fchdir(os.open("sub", os.O_RDONLY))
	else:
	    nr = {"x86_64": 80, "aarch64": 49}[platform.machine()]
	    ctypes.CDLL(None).syscall(nr, b"sub")
	print(open("x").read().strip())
	EOF
	for how in chdir fchdir raw; do
		echo "inner $how" > sub/x
		run -0 cashet exec -- python3 s.py "$how"
		assert_output "$(printf 'top\ninner %s' "$how")"
		[ "$(verdict -- python3 s.py "$how")" = hit ]
		echo "changed $how" > sub/x
		run -0 cashet exec -- python3 s.py "$how"
		assert_output "$(printf 'top\nchanged %s' "$how")"
	done
}

@test "a variable an imported project module names is an input: a change is a miss, why names it; the standard library's are not" {
	printf 'import os\nLR = float(os.environ.get("LR", "0.1"))\n' > config.py
	printf 'import config\nprint(config.LR)\n' > train.py
	miss_then_hit -- python3 train.py
	export LR=0.5
	[ "$(verdict -- python3 train.py)" = miss ]
	run cashet exec -- python3 train.py
	assert_output 0.5
	export LR=0.7
	run cashet why -- python3 train.py
	assert_line "  env LR, read by the command, changed"
	run cashet exec -- python3 train.py
	assert_output 0.7
	# os.py, tempfile.py, shutil.py name these: not the project's code
	export COLUMNS=7 TMPDIR=/tmp
	[ "$(verdict -- python3 train.py)" = hit ]
	# (the interpreter's own PYTHON* variables, read with getenv, are
	# listed; a pyenv shim's, a site-packages' too)
	[ "$(cashet show --json "$(last_hash)" | json_field 'sorted({i["path"] for i in j["observed_inputs"] if i["kind"] == "env"} & {"$LR", "$COLUMNS", "$LINES"})')" = "['\$LR']" ]
	# but HOME is where Python looks for the user's own packages
	export HOME=$PWD/elsewhere
	[ "$(verdict -- python3 train.py)" = miss ]
}

# each_an_input SCRIPT A B FORMAT: python3 SCRIPT prints variables A and
# B (through FORMAT); a change to each, in turn, is a miss that prints it,
# and why names the first.
each_an_input() {
	export "$2=a" "$3=a"
	miss_then_hit -- python3 "$1"
	export "$2=b"
	run cashet why -- python3 "$1"
	assert_line "  env $2, read by the command, changed"
	run cashet exec -- python3 "$1"
	assert_output "$(printf "$4" b a)"
	export "$3=b"
	run cashet exec -- python3 "$1"
	assert_output "$(printf "$4" b b)"
}

@test "a variable a library outside the project names is an input: on PYTHONPATH, in a site-packages; a lib/pythonX.Y standard library is not" {
	mkdir -p ../ext/lib ../ext/env/lib/python3.99/site-packages
	printf 'import os\nMODE = os.environ.get("LIB_MODE", "a")\n' > ../ext/lib/mylib.py
	printf 'import os\nDEPTH = os.getenv("PKG_DEPTH", "1")\n' > ../ext/env/lib/python3.99/site-packages/pkg.py
	printf 'import os\nCOLOR = os.environ.get("STD_COLOR", "red")\n' > ../ext/env/lib/python3.99/stdmod.py
	export PYTHONPATH="$PWD/../ext/lib:$PWD/../ext/env/lib/python3.99/site-packages:$PWD/../ext/env/lib/python3.99"
	printf 'import mylib, pkg, stdmod\nprint(mylib.MODE, pkg.DEPTH, stdmod.COLOR)\n' > run.py
	each_an_input run.py LIB_MODE PKG_DEPTH '%s %s red'
	# laid out as a standard library (os.py names TMPDIR): not scanned
	export STD_COLOR=blue
	[ "$(verdict -- python3 run.py)" = hit ]
}

@test "a read whose variable the code does not name (a helper's os.environ.get(key)) makes every variable an input, but for a library's" {
	printf 'import os\ndef env(k, d=None):\n    return os.environ.get(k, d)\n' > util.py
	printf 'from util import env\nprint("lr", env("LR", "0.1"))\n' > train.py
	miss_then_hit -- python3 train.py
	export LR=0.5
	run cashet why -- python3 train.py
	assert_line "  env *, read by the command, changed"
	run cashet exec -- python3 train.py
	assert_output "lr 0.5"
	# the session's own and the shell's are not among them
	export COLUMNS=3 SHLVL=9
	[ "$(verdict -- python3 train.py)" = hit ]
	# a library's such read is the caller's business: not every variable
	mkdir -p ../ext/site-packages
	printf 'import os\ndef get(k):\n    return os.environ.get(k)\n' > ../ext/site-packages/dyn.py
	printf 'import dyn\nprint("mode", dyn.get("MODE"))\n' > lib.py
	export PYTHONPATH="$PWD/../ext/site-packages"
	miss_then_hit -- python3 lib.py
	export UNRELATED=1
	[ "$(verdict -- python3 lib.py)" = hit ]
}

@test "a variable project code read some other way names is an input: a file sourced through a variable, a Perl module" {
	printf 'echo "v=$SRC_V"\n' > lib.sh
	printf 'f=lib.sh\n. "./$f"\n' > main.sh
	export SRC_V=a
	miss_then_hit -- bash main.sh
	export SRC_V=b
	run cashet why -- bash main.sh
	assert_line "  env SRC_V, read by the command, changed"
	run cashet exec -- bash main.sh
	assert_output v=b
	# a name in its comments is none (the edit itself is a miss)
	printf '# $NOT_READ\n' >> lib.sh
	export NOT_READ=1
	[ "$(verdict -- bash main.sh)" = miss ]
	[ "$(verdict -- bash main.sh)" = hit ]
	export NOT_READ=2
	[ "$(verdict -- bash main.sh)" = hit ]
	command -v perl > /dev/null || skip "perl is not installed"
	printf 'package Knob;\nsub v { return $ENV{PERL_KNOB} // "none"; }\n1;\n' > Knob.pm
	printf 'use lib ".";\nuse Knob;\nprint "knob ", Knob::v(), "\\n";\n' > k.pl
	export PERL_KNOB=a
	miss_then_hit -- perl k.pl
	export PERL_KNOB=b
	run cashet exec -- perl k.pl
	assert_output "knob b"
}

@test "a variable a script without an extension names, or a file it sources, is an input: bash build, . ./common" {
	printf 'echo "target=$TARGET"\n' > build
	printf '. ./common\necho "main"\n' > main.sh
	printf 'echo "common=$CV"\n' > common
	export TARGET=x86 CV=1
	miss_then_hit -- bash build
	miss_then_hit -- bash main.sh
	export TARGET=arm CV=2
	run cashet exec -- bash build
	assert_output target=arm
	run cashet exec -- bash main.sh
	assert_output "common=2
main"
}

@test "importlib.import_module, exec(open()), sys.path.insert: each module is an input" {
	mkdir lib
	echo 'X = 1' > plugin.py
	echo 'Y = 1' > helper.py
	echo 'Z = 1' > lib/mod.py
	cat > s.py <<'EOF'
import importlib, sys
sys.path.insert(0, "lib")
p = importlib.import_module("plugin")
exec(open("helper.py").read())
import mod
print(p.X, Y, mod.Z)
EOF
	miss_then_hit -- python3 s.py
	echo 'X = 2' > plugin.py
	miss_then_hit -- python3 s.py
	echo 'Y = 2' > helper.py
	miss_then_hit -- python3 s.py
	echo 'Z = 2' > lib/mod.py
	[ "$(verdict -- python3 s.py)" = miss ]
	run cashet exec -- python3 s.py
	assert_output "2 2 2"
}

@test "python3 -c 'import helper' and bash -c '. ./lib.sh' follow what they load" {
	echo 'V = 1' > helper.py
	miss_then_hit -- python3 -c 'import helper; print(helper.V)'
	echo 'V = 2' > helper.py
	[ "$(verdict -- python3 -c 'import helper; print(helper.V)')" = miss ]
	echo 'v=1' > lib.sh
	miss_then_hit -- bash -c '. ./lib.sh; echo $v'
	echo 'v=2' > lib.sh
	[ "$(verdict -- bash -c '. ./lib.sh; echo $v')" = miss ]
}

@test "a sourced file named through a variable, and a script behind nice, timeout and env" {
	mkdir d
	echo 'v=1' > d/lib.sh
	printf 'DIR=d\n. "$DIR/lib.sh"\necho $v\n' > run.sh
	echo 'print(1)' > inner.py
	printf 'import inner\n' > s.py
	for wrap in "nice" "timeout 60" "env"; do
		miss_then_hit -- $wrap python3 s.py
	done
	miss_then_hit -- sh run.sh
	echo 'print(2)' > inner.py
	echo 'v=2' > d/lib.sh
	for wrap in "nice" "timeout 60" "env"; do
		[ "$(verdict -- $wrap python3 s.py)" = miss ]
	done
	[ "$(verdict -- sh run.sh)" = miss ]
}

@test "a shell script that runs python3 step.py: editing step.py is a miss" {
	echo 'print("a")' > step.py
	printf '#!/bin/sh\npython3 step.py\n' > run.sh
	chmod +x run.sh
	miss_then_hit -- ./run.sh
	echo 'print("b")' > step.py
	[ "$(verdict -- ./run.sh)" = miss ]
	run cashet exec -- ./run.sh
	assert_output b
}

@test "node x.js requiring ./y.js: editing y.js is a miss" {
	command -v node > /dev/null || skip "node is not installed"
	echo 'module.exports = 1;' > y.js
	echo 'console.log(require("./y.js"));' > x.js
	miss_then_hit -- node x.js
	echo 'module.exports = 2;' > y.js
	[ "$(verdict -- node x.js)" = miss ]
}

@test "make all: an edited recipe or prerequisite is a miss" {
	printf 'all: in.txt\n\t@cat in.txt\n' > Makefile
	echo one > in.txt
	miss_then_hit -- make -s all
	printf 'all: in.txt\n\t@cat in.txt; echo edited\n' > Makefile
	[ "$(verdict -- make -s all)" = miss ]
	[ "$(verdict -- make -s all)" = hit ]
	echo two > in.txt
	[ "$(verdict -- make -s all)" = miss ]
}

@test "--in=data.csv and a directory argument: the file read and the listing are inputs" {
	echo 1 > data.csv
	cat > s.py <<'EOF'
import sys, os
path = sys.argv[1].split("=", 1)[1]
print(open(path).read().strip(), sorted(os.listdir(sys.argv[2])))
EOF
	mkdir shards
	touch shards/a
	miss_then_hit -- python3 s.py --in=data.csv shards
	echo 2 > data.csv
	miss_then_hit -- python3 s.py --in=data.csv shards
	touch shards/b
	miss_then_hit -- python3 s.py --in=data.csv shards
	rm shards/a
	[ "$(verdict -- python3 s.py --in=data.csv shards)" = miss ]
}

@test "a package on PYTHONPATH upgraded, and a module that now shadows another, are misses" {
	mkdir -p vendor/pkg first
	echo 'V = 1' > vendor/pkg/__init__.py
	export PYTHONPATH="$PWD/first:$PWD/vendor"
	miss_then_hit -- python3 -c 'import pkg; print(pkg.V)'
	echo 'V = 2' > vendor/pkg/__init__.py
	miss_then_hit -- python3 -c 'import pkg; print(pkg.V)'
	# a new module earlier on the path: Python looked there and found nothing
	mkdir first/pkg
	echo 'V = 3' > first/pkg/__init__.py
	[ "$(verdict -- python3 -c 'import pkg; print(pkg.V)')" = miss ]
	run cashet exec -- python3 -c 'import pkg; print(pkg.V)'
	assert_output 3
}

@test "why names the observed input that changed, and a file that now exists where the command looked" {
	echo 1 > data.csv
	printf 'import os\nprint(open("data.csv").read(), os.path.exists("flag"))\n' > s.py
	cashet exec -- python3 s.py > /dev/null
	echo 2 > data.csv
	run cashet why -- python3 s.py
	assert_line "  data.csv, read by the command, changed"
	cashet exec -- python3 s.py > /dev/null
	touch flag
	run cashet why -- python3 s.py
	assert_line "  flag now exists where the command looked for it"
}

@test "a store outside the project (CASHET_DIR) still sees the files the command reads" {
	export CASHET_DIR="$BATS_TEST_TMPDIR/elsewhere/.cashet"
	mkdir -p "$BATS_TEST_TMPDIR/elsewhere"
	cashet init > /dev/null 2>&1 || true
	echo 1 > data.csv
	miss_then_hit -- cat data.csv
	echo 2 > data.csv
	[ "$(verdict -- cat data.csv)" = miss ]
}

@test "a project in /dev/shm: the files read there are inputs; the devices read are not" {
	[ -d /dev/shm ] && [ -w /dev/shm ] || skip "/dev/shm is not a writable directory here"
	shm=$(mktemp -d /dev/shm/cashet-test.XXXXXX)
	echo "$shm" > "$BATS_TEST_TMPDIR/shm.dir"
	cd "$shm"
	cashet init > /dev/null
	echo 1 > data.csv
	printf 'import os\nos.urandom(1)\nopen("/dev/null").read()\nprint(open("data.csv").read())\n' > s.py
	miss_then_hit -- python3 s.py
	[ "$(cashet show --json "$(last_hash)" | json_field '[i["path"] for i in j["observed_inputs"] if i["path"].startswith(("/dev", "data", "s.py"))]')" = "['data.csv', 's.py']" ]
	echo 2 > data.csv
	[ "$(verdict -- python3 s.py)" = miss ]
	run cashet exec -- python3 s.py
	assert_output 2
}

@test "a compiled program's getenv is an input: a change is a miss, why and show name it; HOME and --ignore are not" {
	command -v gcc > /dev/null || skip "gcc is not installed"
	printf '#include <stdio.h>\n#include <stdlib.h>\nint main(void) { const char *b = getenv("BATCH_SIZE"); printf("%%s %%d\\n", b ? b : "-", getenv("HOME") != NULL); return 0; }\n' > p.c
	gcc -o p p.c
	export BATCH_SIZE=32
	miss_then_hit -- ./p
	[ "$(cashet show --json "$(last_hash)" | json_field '[i["path"] for i in j["observed_inputs"] if i["kind"] == "env"]')" = "['\$BATCH_SIZE']" ]
	export BATCH_SIZE=64
	run cashet why -- ./p
	assert_line "  env BATCH_SIZE, read by the command, changed"
	[ "$(verdict -- ./p)" = miss ]
	run cashet exec -- ./p
	assert_output "64 1"
	HOME=/nonexistent run cashet exec --report-fd 3 -- ./p 3> report.json
	[ "$(field verdict < report.json)" = hit ]
	miss_then_hit --ignore '$BATCH_SIZE' -- ./p
	export BATCH_SIZE=128
	[ "$(verdict --ignore '$BATCH_SIZE' -- ./p)" = hit ]
}

@test "a variable a started shell's or Python's code names is an input: sh -c, python3 -c, scripts run by path or by their #! line, make's recipes" {
	# a shell expands $NAME, and Python fills os.environ, without a getenv
	cat > s.py <<'EOF'
import subprocess
subprocess.run(["sh", "-c", 'echo "lr=$LR"'])
subprocess.run(["python3", "-c", 'import os; print("seed", os.environ.get("SEED"))'])
EOF
	each_an_input s.py LR SEED 'lr=%s\nseed %s'
	[ "$(verdict -- python3 s.py)" = hit ]
	# a script run by path, outside the project: what it names too
	mkdir -p ../tools
	printf 'echo "mode=$TOOL_MODE"\n' > ../tools/helper.sh
	printf 'import os\nprint("knob", os.environ.get("KNOB"))\n' > ../tools/helper.py
	printf 'import subprocess\nsubprocess.run(["sh", "../tools/helper.sh"])\nsubprocess.run(["python3", "../tools/helper.py"])\n' > t.py
	each_an_input t.py TOOL_MODE KNOB 'mode=%s\nknob %s'
	# and one started by its "#!" line: the kernel reads the script, the
	# tracer sees only the script's path started
	printf '#!/bin/sh\necho "prep=$PREP"\n' > ../tools/prep
	printf '#!/usr/bin/env python3\nimport os\nprint("fit", os.environ.get("FIT"))\n' > ../tools/fit
	chmod +x ../tools/prep ../tools/fit
	printf 'import subprocess\nsubprocess.run(["../tools/prep"])\nsubprocess.run(["../tools/fit"])\n' > u.py
	each_an_input u.py PREP FIT 'prep=%s\nfit %s'
	[ "$(verdict -- python3 u.py)" = hit ]
	if command -v make > /dev/null; then
		printf 'all:\n\t@echo "mode=$$MODE"\n' > Makefile
		export MODE=fast
		miss_then_hit -- make -s
		export MODE=slow
		run cashet exec -- make -s
		assert_output "mode=slow"
	fi
	# what the command's own sh -c names is in its declared key: not listed twice
	cashet exec -- sh -c 'echo $LR' > /dev/null
	[ "$(cashet show --json "$(last_hash)" | json_field '[i["path"] for i in j["observed_inputs"] if i["kind"] == "env" and i["path"] == "$LR"]')" = "[]" ]
	cashet show "$(last_hash)" | grep -q '^  env  *[0-9a-f]*  LR$'
}

@test "gcc -c x.c: an edited header is a miss, an untouched one a hit" {
	command -v gcc > /dev/null || skip "gcc is not installed"
	mkdir inc
	echo '#define V 1' > inc/v.h
	printf '#include "v.h"\nint f(void) { return V; }\n' > x.c
	miss_then_hit -- gcc -Iinc -c x.c -o x.o
	echo '#define V 2' > inc/v.h
	[ "$(verdict -- gcc -Iinc -c x.c -o x.o)" = miss ]
	# a header put earlier on the include path shadows the old one
	echo '#define V 3' > v.h
	[ "$(verdict -- gcc -Iinc -c x.c -o x.o)" = miss ]
}

@test "what the command wrote and read back, and __pycache__, are not inputs: the second run hits" {
	echo 'V = 1' > helper.py
	cat > s.py <<'EOF'
import helper, tempfile, os
with open("scratch.txt", "w") as f:
    f.write("tmp")
print(open("scratch.txt").read(), helper.V)
fd, p = tempfile.mkstemp()
os.write(fd, b"x"); os.close(fd)
print(open(p).read()); os.unlink(p)
EOF
	unset PYTHONDONTWRITEBYTECODE
	miss_then_hit -- python3 s.py
	[ -d __pycache__ ]
	[ "$(verdict -- python3 s.py)" = hit ]
}

@test "a comment edit in a module found only by tracing stays a hit; a real edit is a miss" {
	printf 'V = 1  # one\n' > plugin.py
	printf 'import importlib\nprint(importlib.import_module("plugin").V)\n' > s.py
	miss_then_hit -- python3 s.py
	printf '# a new comment\nV = 1  # still one\n' > plugin.py
	[ "$(verdict -- python3 s.py)" = hit ]
	printf 'V = 2\n' > plugin.py
	[ "$(verdict -- python3 s.py)" = miss ]
}

@test "a fresh copy of the project replays: inputs inside it are relative to its root" {
	echo 1 > data.csv
	printf 'print(open("data.csv").read())\n' > s.py
	cashet exec -- python3 s.py > /dev/null
	cp -a "$PWD" "$BATS_TEST_TMPDIR/clone"
	cd "$BATS_TEST_TMPDIR/clone"
	[ "$(verdict -- python3 s.py)" = hit ]
	echo 2 > data.csv
	[ "$(verdict -- python3 s.py)" = miss ]
}

@test "an input edited while the command runs: the result is not stored, and the note names it" {
	echo 1 > data.csv
	( sleep 0.4; echo 2 > data.csv ) &
	track_pid $!
	run report -- sh -c 'cat data.csv; sleep 1'
	[ "$(echo "$output" | field verdict)" = not-stored ]
	[ "$(echo "$output" | field note)" = "warning: result not stored: changed while the command ran: data.csv" ]
	[ "$(verdict -- sh -c 'cat data.csv; sleep 1')" = miss ]
}

@test "files written in the project and not declared are named once; --auto-outputs stores and restores them" {
	run --separate-stderr cashet exec -- sh -c 'echo a > out.txt; echo b > out2.txt'
	assert_success
	[ "$stderr" = "cashet: wrote out.txt, out2.txt, not declared with -o: they will not be restored on a hit (--auto-outputs stores them)" ]
	[ "$(verdict -- sh -c 'echo a > out.txt; echo b > out2.txt')" = hit ]
	[ "$(verdict --auto-outputs -- sh -c 'echo a > out.txt')" = miss ]
	rm out.txt
	[ "$(verdict --auto-outputs -- sh -c 'echo a > out.txt')" = hit ]
	[ "$(cat out.txt)" = a ]
}

@test "--auto-outputs with a declared directory: each file stored once, both restored" {
	job='mkdir -p out; echo a > out/a; echo b > extra.txt'
	run -0 cashet exec --auto-outputs -o out -- sh -c "$job"
	[ "$(git --git-dir .cashet ls-tree -r --name-only "$(last_hash)" | grep -c '^files/')" = 2 ]
	rm -r out extra.txt
	[ "$(verdict --auto-outputs -o out -- sh -c "$job")" = hit ]
	[ "$(cat out/a extra.txt)" = "$(printf 'a\nb')" ]
}

@test "--ignore and config ignore leave a path out of the observed inputs, and show lists them" {
	mkdir cache
	echo 1 > cache/x
	miss_then_hit --ignore 'cache/*' -- sh -c 'cat cache/x'
	echo 2 > cache/x
	[ "$(verdict --ignore 'cache/*' -- sh -c 'cat cache/x')" = hit ]
	cashet config ignore 'cache, other/*'
	echo 1 > cache/y
	miss_then_hit -- sh -c 'cat cache/y'
	echo 2 > cache/y
	[ "$(verdict -- sh -c 'cat cache/y')" = hit ]
	run cashet show --json "$(cashet log --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["hash"])')"
	echo "$output" | python3 -c '
import json, sys
r = json.load(sys.stdin)
assert r["observed"] == "traced", r["observed"]
names = [p["name"] for p in r["parts"] if p["kind"] == "ignore"]
assert names == ["cache", "other/*"], names
assert not any(i["path"].startswith("cache") for i in r["observed_inputs"]), r["observed_inputs"]
'
}

@test "show --json lists the observed inputs with their kinds" {
	echo 1 > data.csv
	cashet exec -- sh -c 'cat data.csv; ls . > /dev/null; cat missing 2> /dev/null; true' > /dev/null
	run cashet show --json "$(cashet log --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["hash"])')"
	echo "$output" | python3 -c '
import json, sys
r = json.load(sys.stdin)
kinds = {i["path"]: i["kind"] for i in r["observed_inputs"]}
assert kinds.get("data.csv") == "read", kinds
assert kinds.get("missing") == "absent", kinds
assert kinds.get(".") == "listed", kinds
'
}

@test "runs reading different project files keep one copy of what they read outside it; each replays only its own" {
	for i in 1 2 3; do
		echo "$i" > "in$i.txt"
		[ "$(verdict -- cat "in$i.txt")" = miss ]
	done
	# the index keeps each run's list as two parts: outside the project
	# (the C library, cat itself) shared by all three, and each one's own
	[ "$(sqlite3 .cashet/index.db 'SELECT count(DISTINCT inputset) FROM runs')" = 1 ]
	[ "$(sqlite3 .cashet/index.db 'SELECT count(DISTINCT inputset_own) FROM runs')" = 3 ]
	[ "$(sqlite3 .cashet/index.db 'SELECT count(*) FROM inputsets')" = 4 ]
	cashet gc > /dev/null
	[ "$(sqlite3 .cashet/index.db 'SELECT count(*) FROM inputsets')" = 4 ]
	echo changed > in2.txt
	[ "$(verdict -- cat in1.txt)" = hit ]
	[ "$(verdict -- cat in2.txt)" = miss ]
	[ "$(verdict -- cat in3.txt)" = hit ]
	# both parts come back whole from git: show lists the same inputs
	# after the index is rebuilt
	h=$(last_hash)
	before=$(cashet show --json "$h" | json_field 'sorted(i["path"] for i in j["observed_inputs"])')
	[[ "$before" == *"'in2.txt'"* && "$before" == *"'/"* ]]
	cashet reindex > /dev/null
	[ "$(cashet show --json "$h" | json_field 'sorted(i["path"] for i in j["observed_inputs"])')" = "$before" ]
	[ "$(verdict -- cat in2.txt)" = hit ]
}

@test "--trace=off is the declared key only: an undeclared file's edit stays a hit" {
	echo 1 > data.csv
	miss_then_hit --trace=off -- sh -c 'cat data.csv'
	echo 2 > data.csv
	[ "$(verdict --trace=off -- sh -c 'cat data.csv')" = hit ]
	# and a traced request never takes an untraced run
	[ "$(verdict -- sh -c 'cat data.csv')" = miss ]
}

@test "--strict fails a run that reads an undeclared project file (125, naming it); declared, it passes" {
	echo 1 > data.csv
	run --separate-stderr cashet exec --strict -- sh -c 'cat data.csv'
	[ "$status" -eq 125 ]
	[ "$stderr" = "cashet: --strict: the command read files it does not declare (-i or --dep): data.csv" ]
	[ "$(verdict --strict -- sh -c 'cat data.csv')" = miss ]
	run cashet exec --strict -i data.csv -- sh -c 'cat data.csv'
	assert_success
	assert_output 1
}

@test "--env-mode strict: the command gets only declared variables and the base set" {
	export FOO=secret-ish
	run cashet exec --env-mode strict -- sh -c 'echo "${FOO:-unset} ${HOME:+home}"'
	assert_output "unset home"
	run cashet exec --env-mode strict -e FOO -- sh -c 'echo "${FOO:-unset} ${HOME:+home}"'
	assert_output "secret-ish home"
}

@test "umask, LANG, LC_* and TZ are in every key" {
	miss_then_hit -- true
	[ "$( (umask 077; verdict -- true) )" = miss ]
	[ "$(TZ=UTC verdict -- true)" = miss ]
	[ "$(LC_TIME=C verdict -- true)" = miss ]
	[ "$(verdict -- true)" = hit ]
}

@test "a pipeline step is traced: a module its script imports without listing it re-runs the step" {
	echo 'V = 1' > util.py
	printf 'import util\nprint(util.V)\n' > step.py
	cat > dag.toml <<'EOF'
[steps.a]
cmd = "python3 step.py > a.out"
outputs = ["a.out"]
EOF
	cashet pipeline run dag.toml > /dev/null 2>&1
	[ "$(cat a.out)" = 1 ]
	echo 'V = 2' > util.py
	cashet pipeline run dag.toml > /dev/null 2>&1
	[ "$(cat a.out)" = 2 ]
}

@test "kill -9 during a traced run leaves a store that passes fsck and replays nothing partial" {
	echo 1 > data.csv
	cashet exec -- sh -c 'cat data.csv; sleep 5' > /dev/null &
	local pid=$!
	track_pid $pid
	sleep 0.5
	kill -9 $pid
	wait $pid 2> /dev/null || true
	run cashet fsck
	assert_success
	[ "$(verdict -- sh -c 'cat data.csv; sleep 0')" = miss ]
}

# trace-run from this build: a traced process, inside which cashet cannot
# trace (one seccomp listener per process chain), as under a container
# runtime that listens itself.
trace_run() {
	local t
	for t in "$CASHET_BUILD/build/trace-run" "$CASHET_BUILD/trace-run"; do
		[ -x "$t" ] && { echo "$t"; return; }
	done
	return 1
}

@test "where tracing is impossible: one warning, the declared key and the scripts' closure, hits and misses stay right" {
	tr=$(trace_run) || skip "trace-run is not built"
	echo 'V = 1' > helper.py
	echo 'import helper; print(helper.V)' > s.py
	run --separate-stderr "$tr" --quiet -- cashet exec -- python3 s.py
	assert_output 1
	[[ "$stderr" == "cashet: warning: cannot observe what the command reads ("*"); only its declared inputs and the sources its scripts load are checked" ]]
	[ "$(grep -c . <<< "$stderr")" = 1 ]
	[ "$("$tr" --quiet -- bash -c 'source "$0"; verdict -- python3 s.py' "$BATS_TEST_DIRNAME/helper.bash")" = hit ]
	echo 'V = 2' > helper.py
	run "$tr" --quiet -- cashet exec -- python3 s.py
	assert_line 2
	# a run stored untraced is not replayed where tracing works
	[ "$(verdict -- python3 s.py)" = miss ]
}

@test "a process the command leaves running keeps its file access after cashet has exited" {
	echo content > file
	# its output elsewhere: cashet does not wait for it
	cashet exec -- sh -c '(sleep 1; cat file > out) > /dev/null 2>&1 &'
	[ ! -e out ]
	for _ in $(seq 100); do
		[ -s out ] && break
		sleep 0.1
	done
	[ "$(cat out)" = content ]
}

@test "a symbolic link looked at is an input: pointing it at an equal file is a miss" {
	echo same > a
	echo same > b
	ln -s a current
	miss_then_hit -- readlink current
	ln -sfn b current
	[ "$(verdict -- readlink current)" = miss ]
	run cashet exec -- readlink current
	assert_output b
	# through a link: the file beside its target, not the one beside it
	mkdir -p ../ext/inner
	echo same > f
	echo same > ../ext/f
	ln -s "$(cd ../ext/inner && pwd)" sub
	miss_then_hit -- cat sub/../f
	echo changed > ../ext/f
	run cashet exec -- cat sub/../f
	assert_output changed
}

@test "a source read as data counts byte for byte; the executable bit of a file looked at counts" {
	echo 'echo hi' > s.sh
	miss_then_hit -- md5sum s.sh
	echo 'echo hi  # a comment' > s.sh
	[ "$(verdict -- md5sum s.sh)" = miss ]
	# run as a script, a comment still does not count
	miss_then_hit -- sh s.sh
	echo 'echo hi  # another comment' > s.sh
	[ "$(verdict -- sh s.sh)" = hit ]
	echo 'echo hook' > hook
	miss_then_hit -- sh -c '[ -x hook ] && echo executable || echo not'
	chmod +x hook
	run cashet exec -- sh -c '[ -x hook ] && echo executable || echo not'
	assert_output executable
}

@test "HOME, TMPDIR: another place is a miss once the command read there" {
	mkdir -p hA hB proj
	echo Alice > hA/.apprc
	echo Bob > hB/.apprc
	local top=$PWD
	cd proj
	# read under HOME by a program that does not name it: the place counts
	local rc='import os.path; print(open(os.path.expanduser("~/.apprc")).read(), end="")'
	HOME=$top/hA miss_then_hit -- python3 -c "$rc"
	run env HOME="$top/hB" cashet why -- python3 -c "$rc"
	assert_line "  env HOME, where the command read files, changed"
	run env HOME="$top/hB" cashet exec -- python3 -c "$rc"
	assert_output Bob
	# a shell's ~ names HOME itself
	HOME=$top/hA miss_then_hit -- sh -c 'cat ~/.apprc'
	run env HOME="$top/hB" cashet why -- sh -c 'cat ~/.apprc'
	assert_line "  env HOME changed: $top/hA -> $top/hB"
	# Python tries a file in TMPDIR before it names it
	mkdir t1 t2
	TMPDIR=$top/proj/t1 miss_then_hit -- python3 -c 'import tempfile; print(tempfile.gettempdir())'
	run env TMPDIR="$top/proj/t2" cashet exec -- python3 -c 'import tempfile; print(tempfile.gettempdir())'
	assert_output "$top/proj/t2"
	# a command that reads nothing there is not split by it
	miss_then_hit -- cat ../hA/.apprc
	[ "$(HOME=/elsewhere verdict -- cat ../hA/.apprc)" = hit ]
}

@test "a program a shell found through PATH: a PATH that finds another one is a miss, one that finds the same a hit" {
	mkdir b1 b2 empty
	printf '#!/bin/sh\necho tool1\n' > b1/mytool
	printf '#!/bin/sh\necho tool2\n' > b2/mytool
	chmod +x b1/mytool b2/mytool
	# not the script's last command: the shell searches PATH as far as b2
	PATH=$PWD/b2:$PATH miss_then_hit -- sh -c 'mytool; true'
	[ "$(PATH=$PWD/empty:$PWD/b2:$PATH verdict -- sh -c 'mytool; true')" = hit ]
	run env PATH="$PWD/b1:$PWD/b2:$PATH" cashet why -- sh -c 'mytool; true'
	assert_line "  env PATH now finds another mytool, a program the command ran"
	run env PATH="$PWD/b1:$PWD/b2:$PATH" cashet exec -- sh -c 'mytool; true'
	assert_output tool1
	# --ignore '$PATH' leaves the lookups out, for a store shared between machines
	PATH=$PWD/b2:$PATH miss_then_hit --ignore '$PATH' -- sh -c 'mytool; :'
	[ "$(PATH=$PWD/b1:$PWD/b2:$PATH verdict --ignore '$PATH' -- sh -c 'mytool; :')" = hit ]
}

@test "a file beside the project, read through ../: the project copied beside another such file misses" {
	mkdir -p A/proj B
	echo A-sib > A/sib.txt
	echo B-sib > B/sib.txt
	local top=$PWD
	cd A/proj
	cashet init > /dev/null
	miss_then_hit -- cat ../sib.txt
	cp -a "$top/A/proj" "$top/B/proj"
	cd "$top/B/proj"
	run cashet why -- cat ../sib.txt
	assert_line "  ../sib.txt, read by the command, changed"
	run cashet exec -- cat ../sib.txt
	assert_output B-sib
	# both places as they were: a hit
	echo A-sib > ../sib.txt
	cashet exec -- cat ../sib.txt > /dev/null
	[ "$(verdict -- cat ../sib.txt)" = hit ]
	# the original project still hits on its own sibling
	cd "$top/A/proj"
	[ "$(verdict -- cat ../sib.txt)" = hit ]
}

# The files a run read, by kind, path and digest, as `show --json` gives them.
inputs_of() {
	cashet show --json "$1" | json_field 'sorted((i["kind"], i["path"], i.get("hash")) for i in j["observed_inputs"])'
}

@test "the files a command reads are hashed while it runs, to the digests read after it would give" {
	head -c 1500000 /dev/urandom > data.bin # more than 1 MiB: read a megabyte at a time
	echo small > small.txt
	sleep 2.1 # quiet for the stat cache's two seconds
	run cashet exec --report-fd 3 -- sh -c 'cat data.bin small.txt | wc -c; sleep 1' 3> report
	assert_success
	assert_output 1500006
	# every input read to be hashed, system files too, was read while it ran
	[ "$(json_field 'j["verdict"], j["inputs_hashed"]["after"], j["inputs_hashed"]["during"] >= 2' < report)" = "('ran', 0, True)" ]
	early=$(inputs_of "$(last_hash)")
	# the same inputs hashed after the exit (a new store: no stat cache)
	rm -rf .cashet && cashet init > /dev/null
	CASHET_PREHASH_MS=off run cashet exec --report-fd 3 -- sh -c 'cat data.bin small.txt | wc -c; sleep 1' 3> report
	assert_success
	[ "$(json_field 'j["verdict"], j["inputs_hashed"]["during"], j["inputs_hashed"]["after"] >= 2' < report)" = "('ran', 0, True)" ]
	[ "$(inputs_of "$(last_hash)")" = "$early" ]
	# and an edit after them is a miss, as ever
	echo other > small.txt
	run cashet exec --report-fd 3 -- sh -c 'cat data.bin small.txt | wc -c; sleep 1' 3> report
	[ "$(json_field 'j["verdict"]' < report)" = ran ]
}

@test "a file written less than two seconds before the command read it is hashed after it exits" {
	echo fresh > fresh.txt
	run cashet exec --report-fd 3 -- sh -c 'cat fresh.txt; sleep 1' 3> report
	assert_success
	assert_output fresh
	# its timestamps could not yet tell a later write from this one
	[ "$(json_field 'j["verdict"], j["inputs_hashed"]["after"]' < report)" = "('ran', 1)" ]
}
