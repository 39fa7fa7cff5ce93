#!/usr/bin/env bats
# cashet pipeline run, the no-op fast path: a step whose child `cashet exec`
# would only replay is replayed by the scheduler itself, with the child's
# argv, directory and environment. The story: the verdict (hit or ran) is
# always the one `cashet why` gives for the step (through `pipeline
# status`), in the cases where the scheduler has to act like the child:
# env tables, the outer environment, workdirs, params, input globs and PATH.

load helper

# Runs `pipeline status` (a `cashet why` child per step), then `pipeline
# run`, and checks that every step the status called up to date was a hit
# and every other step ran. The steps must not depend on each other (status
# cannot know what an upstream run will change). Leaves run.txt.
agree() {
	cashet pipeline status > status.txt 2>&1
	cashet pipeline run > run.txt 2>&1 || { cat status.txt run.txt; return 1; }
	local s want
	for s in $(sed -n 's/^\([^ :]*\): .*/\1/p' status.txt); do
		if grep -q "^$s: up to date" status.txt; then want=hit; else want=ran; fi
		grep -q "^step $s: $want " run.txt || {
			echo "step $s: why says $want"
			cat status.txt run.txt
			return 1
		}
	done
}

verdict() {
	sed -n "s/^step $1: \([a-z]*\) .*/\1/p" run.txt
}

@test "a no-op run starts no child and still restores outputs and shows output" {
	cat > dag.toml <<'EOF'
[steps.a]
cmd = "echo x >> $RUNS_COUNT; echo a-out; echo a-err >&2; echo a > a.txt"
outputs = ["a.txt"]

[steps.b]
cmd = "echo x >> $RUNS_COUNT; cat a.txt > b.txt"
inputs = ["a.txt"]
outputs = ["b.txt"]
EOF
	run cashet pipeline run
	assert_success
	[ "$(run_count)" = 2 ]
	run cashet pipeline run -v
	assert_success
	assert_line --regexp '^step a: hit'
	assert_line --regexp '^step b: hit'
	assert_line '  | a-out'
	assert_line '  | a-err'
	assert_line --regexp '^pipeline: 0 ran, 2 hit, 0 failed, 0 not run '
	rm b.txt
	run cashet pipeline run
	assert_success
	assert_line --regexp '^step b: hit'
	[ "$(cat b.txt)" = a ]
	[ "$(run_count)" = 2 ]
	if command -v strace >/dev/null; then
		# LeakSanitizer (the sanitizer build) cannot run under ptrace
		ASAN_OPTIONS="${ASAN_OPTIONS:-}:detect_leaks=0" \
			strace -f -e trace=execve -o trace cashet pipeline run 2>/dev/null
		[ "$(grep -c 'execve(' trace)" = 1 ]
	fi
	# a hand-edited output is put back by the replay, as exec does
	echo z > a.txt
	run cashet pipeline run
	assert_line --regexp '^step a: hit'
	assert_line --regexp '^step b: hit'
	[ "$(cat a.txt)" = a ]
	[ "$(run_count)" = 2 ]
	# a changed command runs, through a child
	sed -i 's/cat a.txt > b.txt/cat a.txt a.txt > b.txt/' dag.toml
	run cashet pipeline run
	assert_line --regexp '^step b: ran'
	[ "$(run_count)" = 3 ]
}

@test "the scheduler's verdict is exec's: env tables, env, workdir, params, globs, PATH" {
	mkdir -p sub data bin
	echo root > in.txt
	echo sub > sub/in.txt
	printf 'lr = 0.1\nepochs = 3\n' > p.toml
	echo 1 > data/a.csv
	printf '#!/bin/sh\necho tool v1\n' > bin/tool
	chmod +x bin/tool
	cat > dag.toml <<EOF
[steps.envtab]
cmd = "echo \$MODE"
env = { MODE = "a" }

[steps.outer]
cmd = "echo \$LEVEL"
env = ["LEVEL"]

[steps.pattern]
cmd = "env | grep ^CFG_ | sort"
env = ["CFG_*"]

[steps.wd]
cmd = "cat in.txt"
inputs = ["in.txt"]
workdir = "sub"

[steps.par]
cmd = "echo training"
params = ["p.toml:lr"]

[steps.glob]
cmd = "ls data"
inputs = ["data/*.csv"]

[steps.path]
cmd = ["tool"]
env = { PATH = "$PWD/bin:/usr/bin:/bin" }
EOF
	unset MODE LEVEL
	agree
	[ "$(grep -c ': ran ' run.txt)" = 7 ]
	agree
	[ "$(grep -c ': hit ' run.txt)" = 7 ]

	export LEVEL=2 MODE=outer # the table's MODE wins over the outer one
	agree
	[ "$(verdict outer)" = ran ]
	[ "$(verdict envtab)" = hit ]
	sed -i 's/MODE = "a"/MODE = "b"/' dag.toml
	agree
	[ "$(verdict envtab)" = ran ]

	export CFG_X=1
	agree
	[ "$(verdict pattern)" = ran ]

	echo changed > in.txt # not the workdir's in.txt
	agree
	[ "$(verdict wd)" = hit ]
	echo changed > sub/in.txt
	agree
	[ "$(verdict wd)" = ran ]

	printf 'lr = 0.1\nepochs = 4\n' > p.toml
	agree
	[ "$(verdict par)" = hit ]
	printf 'lr = 0.2\nepochs = 4\n' > p.toml
	agree
	[ "$(verdict par)" = ran ]

	echo 2 > data/b.csv
	agree
	[ "$(verdict glob)" = ran ]
	# not matched by the glob, but `ls data` lists it: the listing is an
	# observed input (the old answer, hit, replayed a stale listing)
	echo 3 > data/c.txt
	agree
	[ "$(verdict glob)" = ran ]

	printf '#!/bin/sh\necho tool v2\n' > bin/tool
	agree
	[ "$(verdict path)" = ran ]
	agree
	[ "$(grep -c ': hit ' run.txt)" = 7 ]
}

@test "a step's env table and workdir do not leak into the next step" {
	mkdir -p sub
	cat > dag.toml <<'EOF'
[steps.a]
cmd = "echo a"
env = { X = "in" }
workdir = "sub"

[steps.b]
cmd = "echo b-$X; pwd"
env = ["X"]
EOF
	# b is stored with X=in from the outer environment...
	X=in cashet pipeline run
	# ...so if a's X stayed set in the scheduler, b would falsely hit now
	run cashet pipeline run -v
	assert_success
	assert_line --regexp '^step a: hit'
	assert_line --regexp '^step b: ran'
	assert_line '  | b-'
	assert_line "  | $PWD"
	run cashet pipeline run
	assert_line --regexp '^step b: hit'
}

# --- the witness: a no-op answered by stat alone ---------------------------
# After a run whose every step hit or ran, the pipeline's witness records
# what each verdict asked of the file system; the next run answers from it
# when every answer is the same ("witnessed" in --report-fd's JSON). A file
# changed in the last two seconds cannot vouch for its content (racy), so
# each story first lets the files age, records, and checks the fast path
# is taken; then one change must be seen.

# prun [ARGS...]: `pipeline run` with its counts in $OUT/report.json and
# its output in $OUT/run.txt, outside the project: a file made in it is a
# change (the directory's listing).
prun() {
	OUT=$BATS_TEST_TMPDIR
	cashet pipeline run --report-fd 3 "$@" 3> "$OUT/report.json" > "$OUT/run.txt" 2>&1
}

witnessed() {
	jq -r .witnessed "$OUT/report.json"
}

# Ages the files, records a witness and checks that it answers a no-op
# of all N steps.
witness_ready() {
	sleep 2.1
	prun || { cat "$OUT/run.txt"; return 1; }
	prun || { cat "$OUT/run.txt"; return 1; }
	[ "$(witnessed)" = "$1" ] || { cat "$OUT/run.txt" "$OUT/report.json"; return 1; }
	[ "$(jq -r .hit "$OUT/report.json")" = "$1" ]
}

two_steps() {
	printf 'hello\n' > in.txt
	cat > dag.toml <<EOF
[steps.a]
cmd = "echo x >> \$RUNS_COUNT; cat in.txt > a.txt"
inputs = ["in.txt"]
outputs = ["a.txt"]

[steps.b]
cmd = "echo x >> \$RUNS_COUNT; cat a.txt a.txt > b.txt"
inputs = ["a.txt"]
outputs = ["b.txt"]
EOF
	prun
	[ "$(run_count)" = 2 ]
}

@test "the witness answers a no-op: the same lines, no step asked, counted in --report-fd" {
	two_steps
	# the files were just written (racy): the hits record no witness
	prun
	[ "$(witnessed)" = 0 ]
	prun
	[ "$(witnessed)" = 0 ]
	witness_ready 2
	assert_equal "$(sed -n 1,2p "$OUT/run.txt")" "step a: hit (0.00s)
step b: hit (0.00s)"
	grep -q '^pipeline: 0 ran, 2 hit, 0 failed, 0 not run ' "$OUT/run.txt"
	[ "$(jq -c 'del(.duration_ms)' "$OUT/report.json")" = '{"ran":0,"hit":2,"failed":0,"not_run":0,"witnessed":2}' ]
	[ "$(run_count)" = 2 ]
	# an unrelated variable or file is not a change; a target list is another run
	FOO=1 prun
	[ "$(witnessed)" = 2 ]
	touch unrelated.txt
	prun
	[ "$(witnessed)" = 2 ]
	prun a
	[ "$(witnessed)" = 0 ]
	run cashet pipeline run --report-fd 9
	assert_failure 2
	assert_output --partial "--report-fd: '9' is not an open file descriptor"
}

@test "the witness never hides an edited input, or one replaced with the same size and mtime" {
	two_steps
	witness_ready 2
	printf 'HELLO\n' > in.txt
	prun
	[ "$(witnessed)" = 0 ]
	grep -q '^step a: ran' "$OUT/run.txt"
	[ "$(cat b.txt)" = "HELLO
HELLO" ]
	witness_ready 2
	# rewritten in place, the same size and mtime: only its ctime says so
	touch -r in.txt "$BATS_TEST_TMPDIR/when"
	printf 'howdy\n' > in.txt
	touch -r "$BATS_TEST_TMPDIR/when" in.txt
	prun
	grep -q '^step a: ran' "$OUT/run.txt"
	[ "$(cat a.txt)" = howdy ]
}

@test "the witness never hides a change deep in a directory input: same size and mtime, added, removed" {
	mkdir -p data/x/y/z
	for n in 1 2 3; do printf 'row %s\n' "$n" > "data/x/y/z/f$n.csv"; done
	echo top > data/top.csv
	cat > dag.toml <<EOF
[steps.count]
cmd = "echo x >> \$RUNS_COUNT; ls -R data > n.txt"
inputs = ["data"]
outputs = ["n.txt"]
EOF
	prun
	witness_ready 1
	# same size, the mtime put back: only the ctime says so
	touch -r data/x/y/z/f2.csv "$BATS_TEST_TMPDIR/when"
	printf 'ROW 2\n' > data/x/y/z/f2.csv
	touch -r "$BATS_TEST_TMPDIR/when" data/x/y/z/f2.csv
	# (the command lists the files, it reads none: the declared input
	# directory's content is the key's, not what the trace saw)
	prun
	[ "$(witnessed)" = 0 ]
	grep -q '^step count: ran' "$OUT/run.txt"
	witness_ready 1
	echo more > data/x/y/z/f4.csv
	prun
	[ "$(witnessed)" = 0 ]
	grep -q '^f4.csv$' n.txt
	witness_ready 1
	rm data/x/y/z/f1.csv
	prun
	[ "$(witnessed)" = 0 ]
	! grep -q '^f1.csv$' n.txt
	[ "$(run_count)" = 4 ]
}

@test "the witness never hides a deleted or edited output" {
	two_steps
	witness_ready 2
	rm b.txt
	prun
	[ "$(witnessed)" = 0 ]
	[ "$(cat b.txt)" = "hello
hello" ]
	witness_ready 2
	echo tampered > a.txt
	prun
	[ "$(cat a.txt)" = hello ]
	[ "$(run_count)" = 2 ]
}

@test "the witness never hides a changed script, environment variable or pipeline file" {
	printf '#!/bin/sh\necho v1\n' > tool.sh
	chmod +x tool.sh
	cat > dag.toml <<EOF
[steps.tool]
cmd = ["./tool.sh"]

[steps.env]
cmd = "echo x >> \$RUNS_COUNT; echo \$LEVEL"
env = ["LEVEL"]
EOF
	export LEVEL=1
	prun
	witness_ready 2
	printf '#!/bin/sh\necho v2\n' > tool.sh
	prun
	grep -q '^step tool: ran' "$OUT/run.txt"
	witness_ready 2
	export LEVEL=2
	prun
	grep -q '^step env: ran' "$OUT/run.txt"
	witness_ready 2
	# rewritten in place: only its bytes say so
	sed 's/echo \$LEVEL/echo level \$LEVEL/' dag.toml > "$BATS_TEST_TMPDIR/dag.toml"
	cat "$BATS_TEST_TMPDIR/dag.toml" > dag.toml
	prun
	grep -q '^step env: ran' "$OUT/run.txt"
}

@test "the witness never hides a run removed by rm, invalidate, gc or clear" {
	two_steps
	witness_ready 2
	cashet rm "$(cashet log --name pipeline/b --json | jq -r '.[0].hash')" 2>/dev/null
	prun
	grep -q '^step b: ran' "$OUT/run.txt"
	[ "$(run_count)" = 3 ]
	witness_ready 2
	cashet invalidate --name pipeline/a 2>/dev/null
	prun
	grep -q '^step a: ran' "$OUT/run.txt"
	[ "$(run_count)" = 4 ]
	witness_ready 2
	cashet gc --max-size 1 >/dev/null 2>&1
	prun
	[ "$(run_count)" = 6 ]
	witness_ready 2
	cashet clear --force >/dev/null 2>&1
	prun
	[ "$(run_count)" = 8 ]
}

@test "the witness never hides a change to a file the command read undeclared (traced)" {
	echo 1 > data.txt
	cat > dag.toml <<EOF
[steps.read]
cmd = "echo x >> \$RUNS_COUNT; cat data.txt > copy.txt"
outputs = ["copy.txt"]
EOF
	prun
	witness_ready 1
	echo 2 > data.txt
	prun
	grep -q '^step read: ran' "$OUT/run.txt"
	[ "$(cat copy.txt)" = 2 ]
}

@test "status checks a step's observed variables in the step's environment, its env table included" {
	printf 'import os\nprint(os.environ["DEPTH"])\n' > s.py
	cat > dag.toml <<'EOF2'
[steps.s]
cmd = "python3 s.py"
env = { DEPTH = "3" }
EOF2
	cashet pipeline run > /dev/null
	run cashet pipeline status
	assert_output "s: up to date"
	sed -i 's/"3"/"4"/' dag.toml
	run cashet pipeline status
	assert_output --partial "s: changed"
}
