#!/usr/bin/env bats
# cashet pipeline: a dag.toml of steps, each run as a `cashet exec`. The
# story is a small ML pipeline (prepare -> featurize -> train, a 2x2 sweep ->
# evaluate): the first run runs everything, the second replays everything,
# and an edit re-runs exactly what it affects. Also targets, fail fast and
# --keep-going, real parallelism with -j 2, every validation error (exit 2,
# file:line), --dry-run, graph and status.

load helper

# The ML pipeline. Every script appends a line to runs/NAME when it really
# runs, so runs NAME counts real runs (replays do not run the script).
ml_pipeline() {
	mkdir -p runs
	printf 'a,1\nb,2\nc,3\n' > raw.csv
	cat > prepare.sh <<'EOF'
echo x >> runs/prepare
mkdir -p data
grep -v '^#' raw.csv > data/clean.csv
EOF
	cat > featurize.py <<'EOF'
# features: the value doubled
with open("runs/featurize", "a") as m:
    m.write("x\n")
rows = [l.strip().split(",") for l in open("data/clean.csv")]
with open("features.csv", "w") as f:
    for name, v in rows:
        f.write("%s,%d\n" % (name, int(v) * 2))
EOF
	cat > train.py <<'EOF'
import sys
lr, dropout = sys.argv[1], sys.argv[2]
with open("runs/train", "a") as m:
    m.write(lr + " " + dropout + "\n")
total = sum(int(l.split(",")[1]) for l in open("features.csv"))
with open("models/model-%s-%s.bin" % (lr, dropout), "w") as f:
    f.write("%s %s %d\n" % (lr, dropout, total))
EOF
	cat > evaluate.sh <<'EOF'
echo x >> runs/evaluate
cat "$@" | sort > report.txt
echo "evaluated $# models"
EOF
	mkdir -p models
	cat > dag.toml <<'EOF'
[vars]
raw = "raw.csv"

[steps.prepare]
cmd = "sh prepare.sh"
inputs = ["prepare.sh", "${vars.raw}"]
outputs = ["data/clean.csv"]

[steps.featurize]
cmd = ["python3", "featurize.py"]
inputs = ["data"]
outputs = ["features.csv"]

[steps.train]
cmd = ["python3", "train.py", "${matrix.lr}", "${matrix.dropout}"]
inputs = ["${steps.featurize.outputs[0]}"]
outputs = ["models/model-${matrix.lr}-${matrix.dropout}.bin"]
matrix = { lr = [0.1, 0.01], dropout = [0.2, 0.5] }
tags = { stage = "train" }

[steps.evaluate]
cmd = "sh evaluate.sh ${steps.train.outputs}"
inputs = ["evaluate.sh", "models/*.bin"]
outputs = ["report.txt"]
EOF
}

runs() {
	if [ -f "runs/$1" ]; then wc -l < "runs/$1" | tr -d ' '; else echo 0; fi
}

# counts: "prepare featurize train evaluate" real runs so far
counts() {
	echo "$(runs prepare) $(runs featurize) $(runs train) $(runs evaluate)"
}

@test "first run runs every step, the second replays every step" {
	ml_pipeline
	run cashet pipeline run
	assert_success
	assert_line --regexp '^step prepare: ran \([0-9.]+s\)$'
	assert_line --regexp '^step featurize: ran \([0-9.]+s\)$'
	assert_line --regexp '^step train@lr=0.1,dropout=0.2: ran \([0-9.]+s\)$'
	assert_line --regexp '^step train@lr=0.01,dropout=0.5: ran \([0-9.]+s\)$'
	assert_line --regexp '^step evaluate: ran \([0-9.]+s\)$'
	assert_line --regexp '^pipeline: 7 ran, 0 hit, 0 failed, 0 not run'
	[ "$(counts)" = "1 1 4 1" ]
	[ "$(wc -l < report.txt)" = 4 ]
	grep -qx '0.01 0.5 12' report.txt

	run cashet pipeline run dag.toml
	assert_success
	assert_line --regexp '^step prepare: hit \([0-9.]+s\)$'
	assert_line --regexp '^step train@lr=0.1,dropout=0.5: hit \([0-9.]+s\)$'
	assert_line --regexp '^step evaluate: hit \([0-9.]+s\)$'
	assert_line --regexp '^pipeline: 0 ran, 7 hit, 0 failed, 0 not run'
	[ "$(counts)" = "1 1 4 1" ]
	# each step is a named, tagged exec run
	run cashet log --name pipeline/evaluate --json
	assert_output --partial '"pipeline/evaluate"'
	run cashet log --tag stage=train --json
	[ "$(echo "$output" | json_field 'len(j)')" = 4 ]
}

@test "an edit re-runs exactly what it affects" {
	ml_pipeline
	cashet pipeline run 2>/dev/null
	[ "$(counts)" = "1 1 4 1" ]

	# a comment: scripts are canonicalized, nothing runs
	sed -i 's/^# features: .*/# features: twice the value/' featurize.py
	run cashet pipeline run
	assert_success
	assert_line --regexp '^step featurize: hit'
	[ "$(counts)" = "1 1 4 1" ]
	# in a string cmd's script too (sh -c 'sh prepare.sh'), listed as an input
	printf '# reworded\n' >> prepare.sh
	printf '# reworded\n' >> evaluate.sh
	run cashet pipeline run
	assert_success
	assert_line --regexp '^pipeline: 0 ran, 7 hit'
	[ "$(counts)" = "1 1 4 1" ]

	# a real change with the same features: featurize runs, nothing downstream
	sed -i 's/int(v) \* 2/int(v) + int(v)/' featurize.py
	run cashet pipeline run
	assert_success
	assert_line --regexp '^step featurize: ran'
	assert_line --regexp '^step train@lr=0.1,dropout=0.2: hit'
	assert_line --regexp '^step evaluate: hit'
	[ "$(counts)" = "1 2 4 1" ]

	# a change of the features: everything downstream runs
	sed -i 's/int(v) + int(v)/int(v) * 3/' featurize.py
	run cashet pipeline run
	assert_success
	assert_line --regexp '^step prepare: hit'
	assert_line --regexp '^pipeline: 6 ran, 1 hit, 0 failed'
	[ "$(counts)" = "1 3 8 2" ]
	grep -qx '0.01 0.5 18' report.txt
}

@test "deleted outputs are restored without running anything" {
	ml_pipeline
	cashet pipeline run 2>/dev/null
	cp report.txt report.expected
	rm -rf models report.txt features.csv data
	run cashet pipeline run
	assert_success
	assert_line --regexp '^pipeline: 0 ran, 7 hit'
	[ "$(counts)" = "1 1 4 1" ]
	cmp report.txt report.expected
	[ -f models/model-0.1-0.2.bin ]
	[ -f features.csv ]
}

@test "targets run only what they need" {
	ml_pipeline
	run cashet pipeline run dag.toml featurize
	assert_success
	assert_line --regexp '^pipeline: 2 ran, 0 hit'
	[ "$(counts)" = "1 1 0 0" ]
	# a sweep's base name is all of its expansions; FILE defaults to dag.toml
	run cashet pipeline run train
	assert_success
	assert_line --regexp '^pipeline: 4 ran, 2 hit'
	[ "$(counts)" = "1 1 4 0" ]
	run cashet pipeline run 'train@lr=0.1,dropout=0.2' evaluate
	assert_success
	[ "$(counts)" = "1 1 4 1" ]
	run cashet pipeline run dag.toml nosuchstep
	assert_failure 2
	assert_output "cashet: unknown step 'nosuchstep' in dag.toml"
}

@test "--force runs every step, --force STEP only that one" {
	ml_pipeline
	cashet pipeline run 2>/dev/null
	run cashet pipeline run --force featurize
	assert_success
	assert_line --regexp '^step featurize: ran'
	assert_line --regexp '^step prepare: hit'
	[ "$(counts)" = "1 2 4 1" ]
	run cashet pipeline run -f
	assert_success
	assert_line --regexp '^pipeline: 7 ran'
	[ "$(counts)" = "2 3 8 2" ]
}

# a fails, b needs a, c does not.
fail_pipeline() {
	mkdir -p runs
	cat > dag.toml <<'EOF'
[steps.a]
cmd = "echo a-out; echo a-err >&2; echo x >> runs/a; exit 3"

[steps.b]
cmd = "echo x >> runs/b"
deps = ["a"]

[steps.c]
cmd = "echo x >> runs/c; echo c > c.txt"
outputs = ["c.txt"]
EOF
}

@test "fail fast: the first failure stops the pipeline and shows the step's output" {
	fail_pipeline
	run cashet pipeline run -j 1
	assert_failure 1
	assert_line 'step a: FAILED (exit 3)'
	assert_line '  | a-out'
	assert_line '  | a-err'
	refute_line --partial 'cashet: miss'
	refute_line --partial 'step b:'
	refute_line --partial 'step c:'
	assert_line --regexp '^pipeline: 0 ran, 0 hit, 1 failed, 2 not run'
	[ "$(runs a)" = 1 ]
	[ "$(runs b)" = 0 ]
	[ "$(runs c)" = 0 ]
}

@test "--keep-going runs everything not downstream of a failure" {
	fail_pipeline
	run cashet pipeline run -j 1 --keep-going
	assert_failure 1
	assert_line 'step a: FAILED (exit 3)'
	assert_line 'step b: skipped (upstream step a failed)'
	assert_line --regexp '^step c: ran'
	[ "$(runs b)" = 0 ]
	[ "$(runs c)" = 1 ]
}

@test "fail fast stops the steps still running" {
	cat > dag.toml <<'EOF'
[steps.slow]
cmd = "touch slow.started; sleep 30; touch slow.finished"

[steps.bad]
cmd = "i=0; while [ ! -f slow.started ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done; exit 1"
EOF
	run timeout 20 cashet pipeline run -j 2
	assert_failure 1
	assert_line 'step bad: FAILED (exit 1)'
	assert_line --regexp '^step slow: stopped'
	[ ! -e slow.finished ]
	# a stopped run stores nothing
	run cashet log --name pipeline/slow --json
	assert_output '[]'
}

@test "-j 2 runs independent steps at the same time" {
	# each waits (at most 5 s) for the other: both succeed only in parallel
	cat > dag.toml <<'EOF'
[steps.left]
cmd = "touch left.up; i=0; while [ ! -f right.up ]; do i=$((i+1)); [ $i -gt 50 ] && exit 1; sleep 0.1; done"
cache = false

[steps.right]
cmd = "touch right.up; i=0; while [ ! -f left.up ]; do i=$((i+1)); [ $i -gt 50 ] && exit 1; sleep 0.1; done"
cache = false
EOF
	run cashet pipeline run -j 2
	assert_success
	assert_line --regexp '^step left: ran'
	assert_line --regexp '^step right: ran'
}

@test "env tables are set and hashed, workdir is relative to the file" {
	mkdir -p sub/work
	cat > sub/dag.toml <<'EOF'
[steps.greet]
cmd = "echo $GREETING > out.txt; echo x >> ../runs"
env = { GREETING = "hello" }
outputs = ["out.txt"]
workdir = "work"
EOF
	run cashet pipeline run sub/dag.toml
	assert_success
	[ "$(cat sub/work/out.txt)" = hello ]
	run cashet pipeline run sub/dag.toml
	assert_line --regexp '^step greet: hit'
	sed -i 's/hello/bye/' sub/dag.toml
	run cashet pipeline run sub/dag.toml
	assert_line --regexp '^step greet: ran'
	[ "$(cat sub/work/out.txt)" = bye ]
	[ "$(wc -l < sub/runs)" = 2 ]
	# the store is found from the pipeline's directory (created there)
	[ -d sub/.cashet ]
}

@test "two pipelines started at once run each step once" {
	cat > dag.toml <<'EOF'
[steps.a]
cmd = "echo x >> $RUNS_COUNT; sleep 1; echo a > a.out"
outputs = ["a.out"]

[steps.b]
cmd = "echo x >> $RUNS_COUNT; cat a.out > b.out"
inputs = ["a.out"]
outputs = ["b.out"]
EOF
	cashet pipeline run > out1 2>&1 &
	local p1=$!
	track_pid "$p1"
	cashet pipeline run > out2 2>&1 &
	local p2=$!
	track_pid "$p2"
	wait "$p1"
	wait "$p2"
	[ "$(run_count)" = 2 ]
	[ "$(cat b.out)" = a ]
	# one of them ran each step, the other replayed it
	[ "$(cat out1 out2 | grep -c '^step a: ran')" = 1 ]
	[ "$(cat out1 out2 | grep -c '^step a: hit')" = 1 ]
}

@test "timeout, retries, params and cache = false reach exec" {
	echo 'lr = 0.1' > params.toml
	cat > dag.toml <<'EOF'
[steps.flaky]
cmd = "echo x >> tries; [ $(wc -l < tries) -ge 2 ]"
retries = 2
params = ["params.toml:lr"]

[steps.always]
cmd = "echo x >> $RUNS_COUNT"
cache = false

[steps.slow]
cmd = "sleep 10"
timeout = "1s"
EOF
	run cashet pipeline run -k
	assert_failure 1
	assert_line --regexp '^step flaky: ran'
	assert_line --regexp '^step always: ran'
	assert_line 'step slow: FAILED (exit 124)'
	[ "$(wc -l < tries)" = 2 ]
	run cashet pipeline run dag.toml flaky always
	assert_success
	assert_line --regexp '^step flaky: hit'
	assert_line --regexp '^step always: ran'
	[ "$(run_count)" = 2 ]
	echo 'lr = 0.2' > params.toml
	run cashet pipeline run dag.toml flaky
	assert_line --regexp '^step flaky: ran'
	run cashet pipeline status dag.toml always
	assert_output 'always: always runs (cache = false)'
}

@test "on a terminal, a live display is updated in place (tests/bats/32-progress.bats has more)" {
	command -v script >/dev/null || skip "script is not installed"
	cat > dag.toml <<'EOF'
[steps.a]
cmd = "true"
EOF
	run script -qec "NO_COLOR=1 cashet pipeline run" /dev/null
	assert_success
	assert_output --partial $'[0/1] 0 done, 1 running, 0 queued, '
	assert_output --partial $'\n  a  '
	assert_output --partial $'\n[1/1] 1 done, 0 running, 0 queued, '
	assert_output --partial 'step a: ran'
}

# --- validation: nothing runs, exit 2, file:line ----------------------------

# expect_error MESSAGE: `pipeline run` fails with exit 2 and exactly MESSAGE.
expect_error() {
	run cashet pipeline run
	assert_failure 2
	assert_output "$1"
	[ ! -e ran ]
}

@test "a cycle is named" {
	cat > dag.toml <<'EOF'
[steps.a]
cmd = "touch ran"
deps = ["c"]

[steps.b]
cmd = "touch ran"
deps = ["a"]

[steps.c]
cmd = "touch ran"
deps = ["b"]
EOF
	expect_error "cashet: dag.toml:1: cycle: a -> b -> c -> a"
}

@test "a cycle through outputs and inputs is named" {
	cat > dag.toml <<'EOF'
[steps.x]
cmd = "touch ran"
inputs = ["y.out"]
outputs = ["x.out"]

[steps.y]
cmd = "touch ran"
inputs = ["x.out"]
outputs = ["y.out"]
EOF
	expect_error "cashet: dag.toml:1: cycle: x -> y -> x"
}

@test "a step depending on itself" {
	cat > dag.toml <<'EOF'
[steps.a]
cmd = "touch ran"
deps = ["a"]
EOF
	expect_error "cashet: dag.toml:3: step 'a' depends on itself"
	cat > dag.toml <<'EOF'
[steps.a]
cmd = "touch ran"
inputs = ["out/x"]
outputs = ["out"]
EOF
	expect_error "cashet: dag.toml:3: step 'a' depends on itself (input 'out/x' is its own output)"
}

@test "unknown steps and variables" {
	cat > dag.toml <<'EOF'
[steps.a]
cmd = "touch ran"

[steps.b]
cmd = "touch ran"
deps = ["a", "nope"]
EOF
	expect_error "cashet: dag.toml:6: unknown step 'nope' in deps of step 'b'"
	cat > dag.toml <<'EOF'
[vars]
x = 1

[steps.a]
cmd = "touch ran ${vars.y}"
EOF
	expect_error "cashet: dag.toml:5: unknown variable 'vars.y' in step 'a'"
	cat > dag.toml <<'EOF'
[steps.a]
cmd = "touch ran"
inputs = ["${steps.nope.outputs}"]
EOF
	expect_error "cashet: dag.toml:3: unknown step 'nope' in '\${steps.nope.outputs}' of step 'a'"
}

@test "two steps writing the same output" {
	cat > dag.toml <<'EOF'
[steps.a]
cmd = "touch ran"
outputs = ["model.bin"]

[steps.b]
cmd = "touch ran"
outputs = ["./model.bin"]
EOF
	expect_error "cashet: dag.toml:7: steps 'a' and 'b' both write './model.bin'"
}

@test "two matrix values that read the same would be one step run twice: refused, naming the second" {
	cat > dag.toml <<'EOF'
[steps.t]
cmd = "touch ran-${matrix.lr}"
matrix = { lr = [1.0, 0.5,
  1] }
EOF
	expect_error "cashet: dag.toml:4: step 't': matrix 'lr' has the value 1 twice"
}

@test "an env entry that is not a variable name is refused, naming its line" {
	printf '[steps.t]\ncmd = "echo hi"\nenv = { "A=B" = "c" }\n' > dag.toml
	expect_error "cashet: dag.toml:3: step 't': 'A=B' is not a variable name"
	printf '[steps.t]\ncmd = "echo hi"\nenv = ["A=1"]\n' > dag.toml
	expect_error "cashet: dag.toml:3: step 't': env 'A=1' is not a variable name (a value goes in a table: env = { A = \"1\" })"
	printf '[steps.t]\ncmd = "echo hi"\nenv = ["", "X"]\n' > dag.toml
	expect_error "cashet: dag.toml:3: step 't': env '' is not a variable name"
}

@test "a first word with a / is the pipeline file, never a target; a step name cannot hold one" {
	printf '[steps.t]\ncmd = "touch ran"\n' > dag.toml
	run cashet pipeline run /dev/null
	assert_failure 2
	assert_output "cashet: /dev/null:1: no steps (expected [steps.NAME] tables)"
	run cashet pipeline run ./nothere
	assert_failure 2
	assert_output "cashet: cannot open ./nothere: No such file or directory"
	printf '[steps."a/b"]\ncmd = "touch ran"\n' > dag.toml
	expect_error "cashet: dag.toml:1: invalid step name 'a/b' (no spaces, '@' or '/')"
}

@test "a missing input that no step produces" {
	cat > dag.toml <<'EOF'
[steps.a]
cmd = "touch a.out"
outputs = ["a.out"]

[steps.b]
cmd = "cat a.out data.csv"
inputs = ["a.out", "data.csv"]
EOF
	expect_error "cashet: dag.toml:7: input 'data.csv' of step 'b' does not exist and no step produces it"
	touch data.csv
	run cashet pipeline run dag.toml b
	assert_success
}

@test "an unknown key in a step" {
	cat > dag.toml <<'EOF'
[steps.train]
cmd = "touch ran"
imputs = ["x"]
EOF
	expect_error "cashet: dag.toml:3: unknown key 'imputs' in step 'train'"
}

@test "bad TOML is reported by the parser with file:line:col" {
	printf '[steps.a]\ncmd = "touch ran\n' > dag.toml
	run cashet pipeline run
	assert_failure 2
	assert_output "cashet: dag.toml:2:17: newline in a single-line string (missing closing quote?)"
	run cashet pipeline run missing.toml
	assert_failure 2
	assert_output --partial "cashet: cannot open missing.toml"
}

@test "usage errors exit 2" {
	run cashet pipeline frobnicate
	assert_failure 2
	run cashet pipeline run --no-such-option
	assert_failure 2
	run cashet pipeline run -j 0
	assert_failure 2
	run cashet pipeline graph --format svg
	assert_failure 2
}

# --- dry run, graph, status ---------------------------------------------------

@test "--dry-run prints the plan and runs nothing" {
	ml_pipeline
	run cashet pipeline run --dry-run
	assert_success
	assert_line 'step prepare: run'
	assert_line --regexp '^  never run before'
	assert_line 'step featurize: run (upstream step prepare will run)'
	assert_line 'step evaluate: run (upstream step train@lr=0.1,dropout=0.2 will run)'
	[ "$(counts)" = "0 0 0 0" ]
	[ ! -e data/clean.csv ]

	cashet pipeline run 2>/dev/null
	echo 'd,4' >> raw.csv
	run cashet pipeline run -n
	assert_success
	assert_line 'step prepare: run'
	assert_line --regexp '^  input raw.csv changed'
	assert_line 'step featurize: run (upstream step prepare will run)'
	run cashet pipeline run -n featurize
	assert_success
	refute_line --partial 'step train'
	sed -i '$d' raw.csv
	run cashet pipeline run -n
	assert_line 'step prepare: hit'
	assert_line 'step evaluate: hit'
	run cashet pipeline run -n --force featurize
	assert_line 'step featurize: run (forced)'
	assert_line 'step train@lr=0.1,dropout=0.2: run (upstream step featurize will run)'
	[ "$(counts)" = "1 1 4 1" ]
}

@test "graph prints the edges as dot or mermaid" {
	ml_pipeline
	run cashet pipeline graph
	assert_success
	assert_line --index 0 'digraph pipeline {'
	assert_line $'\t"prepare" -> "featurize";'
	assert_line $'\t"featurize" -> "train@lr=0.1,dropout=0.2";'
	assert_line $'\t"train@lr=0.01,dropout=0.5" -> "evaluate";'
	refute_line $'\t"prepare" -> "evaluate";'
	run cashet pipeline graph dag.toml --format mermaid
	assert_success
	assert_line --index 0 'flowchart TD'
	assert_line $'\ts0["prepare"]'
	assert_line $'\ts0 --> s1'
}

@test "status says up to date, changed (and why) or never run" {
	ml_pipeline
	run cashet pipeline status
	assert_success
	assert_line 'prepare: never run'
	assert_line 'evaluate: never run'
	cashet pipeline run 2>/dev/null
	run cashet pipeline status
	assert_success
	assert_line 'prepare: up to date'
	assert_line 'train@lr=0.1,dropout=0.2: up to date'
	echo 'd,4' >> raw.csv
	run cashet pipeline status
	assert_line --regexp "^prepare: changed: input raw.csv changed"
	assert_line 'featurize: up to date'
}

@test "-v shows every step's output" {
	fail_pipeline
	sed -i 's/exit 3/exit 0/' dag.toml
	run cashet pipeline run -v
	assert_success
	assert_line '  | a-out'
	assert_line '  | a-err'
	run cashet pipeline run
	refute_line '  | a-out'
}

@test "a replay is recognized even when the step's stderr lacks a final newline" {
	cat > dag.toml <<'EOF'
[steps.a]
cmd = "printf 'no-newline' >&2"
EOF
	cashet pipeline run 2>/dev/null
	run cashet pipeline run -v
	assert_success
	assert_line --regexp '^step a: hit'
	assert_line '  | no-newline'
	refute_output --partial 'cashet: hit'
}

@test "workers publish their runs in batches: every step stored exactly once, as git objects in packs" {
	{
		for i in $(seq 1 40); do
			printf '[steps.s%d]\ncmd = "echo %d > out/%d.txt"\noutputs = ["out/%d.txt"]\n' "$i" "$i" "$i" "$i"
		done
		# three steps of one fingerprint: run once, then replayed
		for i in 1 2 3; do
			printf '[steps.same%d]\ncmd = "echo same"\n' "$i"
		done
	} > dag.toml
	mkdir out
	run cashet pipeline run -j 2
	assert_success
	assert_line --regexp '^pipeline: 41 ran, 2 hit, 0 failed, 0 not run'
	[ "$(log_count)" = 41 ]
	run cashet log --json
	for i in $(seq 1 40); do
		[ "$(echo "$output" | json_field "len([r for r in j if r['name'] == 'pipeline/s$i'])")" = 1 ]
	done
	[ "$(echo "$output" | json_field "len([r for r in j if 'echo same' in r['cmd']])")" = 1 ]
	# the objects are in packs, not loose; git reads them all
	[ -n "$(ls .cashet/objects/pack/*.idx)" ]
	[ -z "$(find .cashet/objects -path '*/objects/[0-9a-f][0-9a-f]/*' -type f)" ]
	run git --git-dir .cashet fsck --strict --no-dangling
	assert_success
	run cashet fsck
	assert_success
	assert_output --partial '0 bad objects, 0 broken runs, 0 index rows repaired'
	# reindexed from git alone, the same runs come back
	rm .cashet/index.db*
	run cashet reindex
	assert_success
	[ "$(log_count)" = 41 ]
	rm -r out
	mkdir out
	run cashet pipeline run -j 2
	assert_success
	assert_line --regexp '^pipeline: 0 ran, 43 hit'
	[ "$(cat out/17.txt)" = 17 ]
}

@test "a pipeline killed mid-batch leaves a store that passes fsck and replays no partial run" {
	{
		for i in $(seq 1 8); do
			printf '[steps.q%d]\ncmd = "echo %d > q%d.txt"\noutputs = ["q%d.txt"]\n' "$i" "$i" "$i" "$i"
		done
		printf '[steps.slow]\ncmd = "echo $$ > slow.pid; sleep 30; echo late > slow.txt"\n'
		printf 'inputs = [%s]\noutputs = ["slow.txt"]\n' "$(seq -s, -f '"q%g.txt"' 1 8)"
	} > dag.toml
	cashet pipeline run -j 1 > /dev/null 2>&1 3>&- &
	pipeline=$!
	track_pid "$pipeline"
	wait_for_file slow.pid
	track_pid "-$(cat slow.pid)"
	kill -9 "$pipeline"
	wait "$pipeline" || true
	# the worker stops with its scheduler, publishing nothing more
	for _ in $(seq 1 50); do
		kill -0 -- "-$(cat slow.pid)" 2> /dev/null || break
		sleep 0.1
	done
	run git --git-dir .cashet fsck --strict --no-dangling
	assert_success
	run cashet fsck
	assert_success
	assert_output --partial '0 bad objects, 0 broken runs, 0 index rows repaired'
	# whatever was published replays whole; the rest runs again
	n=$(log_count)
	[ "$n" -le 8 ]
	rm -f q*.txt
	sed -i 's/sleep 30; //' dag.toml
	run cashet pipeline run -j 1
	assert_success
	assert_line --regexp "^pipeline: $((8 - n + 1)) ran, $n hit, 0 failed"
	for i in $(seq 1 8); do [ "$(cat q$i.txt)" = "$i" ]; done
	run cashet fsck
	assert_success
	# gc sweeps the pack the killed worker left unfinished
	run cashet gc
	assert_success
	[ -z "$(ls .cashet/objects | grep '^tmp_obj_')" ]
}
