#!/usr/bin/env bats
# cashet pipeline run --executor slurm on a real one-node Slurm cluster
# (tests/bats/slurm.bash, started once for the file). The story: a 2x2
# sweep runs as Slurm jobs, a re-run submits nothing, an edit submits
# exactly the steps it affects; failures carry Slurm's reason and the
# job's stderr (exit code, memory, time limit); Ctrl-C and TERM cancel
# every job; two pipelines started together submit each step once.
# What was submitted is read from Slurm itself (scontrol), what ran from
# the runs' slurm-job tags (cashet log --json) and the steps' own logs.

load helper
load slurm

setup_file() {
	slurm_start "$BATS_FILE_TMPDIR/cluster"
	if [ -n "${SLURM_SKIP:-}" ]; then
		echo "# skipping: $SLURM_SKIP" >&3
		return 0
	fi
	# Slurm checks time limits every 30 s: the job over its limit (1 min)
	# starts now and the last test looks at how it ended.
	mkdir -p "$BATS_FILE_TMPDIR/slow"
	cd "$BATS_FILE_TMPDIR/slow" || return 1
	printf '%s\n' '[steps.slow]' 'executor = "slurm"' 'time = "1m"' 'cmd = "echo started >&2; sleep 300"' > dag.toml
	# (set -e is on in bats functions: the failure must not end the subshell)
	(rc=0; cashet pipeline run > out 2> err < /dev/null || rc=$?; echo "$rc" > rc) 3>&- &
	echo $! > "$BATS_FILE_TMPDIR/slow.pid"
	# submitted before the tests count jobs
	for ((i = 0; i < 100; i++)); do
		squeue -h -o %j | grep -qx cashet:slow && return 0
		sleep 0.1
	done
}

teardown_file() {
	# the slow pipeline, if a filtered run (bats -f) did not wait for it
	local pid i
	if [ -f "$BATS_FILE_TMPDIR/slow.pid" ]; then
		pid=$(cat "$BATS_FILE_TMPDIR/slow.pid")
		pkill -TERM -P "$pid" 2>/dev/null
		for ((i = 0; i < 100; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
	fi
	slurm_stop
}

setup() {
	slurm_skip_if_down
	common_setup
	export JOBLOG="$BATS_TEST_TMPDIR/jobs.log"
}

# How many jobs of cashet pipelines Slurm was given so far (finished ones
# stay listed for MinJobAge, 5 minutes).
jobs_submitted() {
	scontrol -o show jobs 2>/dev/null | grep -c 'JobName=cashet:' || true
}

# The names of the jobs after the first N, sorted.
job_names_after() {
	scontrol -o show jobs | grep -o 'JobName=cashet:[^ ]*' | sed 's/JobName=cashet://' | tail -n +"$(($1 + 1))" | sort
}

# Jobs of cashet pipelines Slurm still has queued or running (but the
# one setup_file started).
jobs_alive() {
	squeue -h -o '%j' | grep -v '^cashet:slow$' | grep -c '^cashet:' || true
}

# The slurm-job tag of every run of the store, "NAME JOB" sorted.
run_jobs() {
	cashet log --json | python3 -c '
import json, sys
for r in json.load(sys.stdin):
    print(r["name"], r["tags"].get("slurm-job", "-"))' | sort
}

sweep() {
	printf 'one\n' > in-1.txt
	printf 'two\n' > in-2.txt
	cat > dag.toml <<'TOML'
[defaults]
executor = "slurm"
mem = "100M"

[steps.train]
matrix = { a = [1, 2], b = ["x", "y"] }
cmd = "echo $SLURM_JOB_ID >> \"$JOBLOG\"; cat in-${matrix.a}.txt > out-${matrix.a}${matrix.b}; echo $SLURM_JOB_ID >> out-${matrix.a}${matrix.b}"
inputs = ["in-${matrix.a}.txt"]
outputs = ["out-${matrix.a}${matrix.b}"]
cpus = "${matrix.a}"
TOML
}

@test "a 2x2 sweep runs as four Slurm jobs, each recording its job id in its run" {
	sweep
	before=$(jobs_submitted)
	run cashet pipeline run -j 4
	assert_success
	assert_equal "$(jobs_submitted)" "$((before + 4))"
	assert_equal "$(job_names_after "$before" | tr '\n' ' ')" \
		"train@a=1,b=x train@a=1,b=y train@a=2,b=x train@a=2,b=y "
	for o in 1x 1y 2x 2y; do
		assert [ -f "out-$o" ]
	done
	assert_equal "$(sed -n 1p out-2y)" "two"
	# each run is tagged with the job that made it, the job its output names
	run run_jobs
	assert_output "pipeline/train@a=1,b=x $(sed -n 2p out-1x)
pipeline/train@a=1,b=y $(sed -n 2p out-1y)
pipeline/train@a=2,b=x $(sed -n 2p out-2x)
pipeline/train@a=2,b=y $(sed -n 2p out-2y)"
	assert_equal "$(wc -l < "$JOBLOG")" 4
	run cashet pipeline status
	assert_output "train@a=1,b=x: up to date (Slurm job $(sed -n 2p out-1x))
train@a=1,b=y: up to date (Slurm job $(sed -n 2p out-1y))
train@a=2,b=x: up to date (Slurm job $(sed -n 2p out-2x))
train@a=2,b=y: up to date (Slurm job $(sed -n 2p out-2y))"
	# the job hands its run back and leaves nothing in the store's spool
	assert_equal "$(ls .cashet/slurm/)" "jobs"
	assert_equal "$(ls .cashet/slurm/jobs)" ""
}

@test "a re-run submits nothing, locally or through Slurm, and restores outputs" {
	sweep
	cashet pipeline run -j 4
	before=$(jobs_submitted)
	rm out-1x
	run cashet pipeline run -j 4
	assert_success
	assert_equal "$(jobs_submitted)" "$before"
	assert_equal "$(sed -n 1p out-1x)" "one"
	# the runs made on the node are the ones a local run replays: same keys
	run cashet pipeline run --executor local
	assert_success
	assert_equal "$(wc -l < "$JOBLOG")" 4
	assert_equal "$(cashet log --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" 4
	assert_equal "$(jobs_submitted)" "$before"
}

@test "an edit submits exactly the steps it affects" {
	sweep
	cashet pipeline run -j 4
	before=$(jobs_submitted)
	printf 'ONE\n' > in-1.txt
	run cashet pipeline run -j 4
	assert_success
	assert_equal "$(jobs_submitted)" "$((before + 2))"
	assert_equal "$(job_names_after "$before" | tr '\n' ' ')" "train@a=1,b=x train@a=1,b=y "
	assert_equal "$(sed -n 1p out-1y)" "ONE"
	assert_equal "$(wc -l < "$JOBLOG")" 6
}

@test "-j bounds the jobs in flight" {
	for i in 1 2 3 4 5; do
		printf '[steps.s%s]\nexecutor = "slurm"\ncmd = "echo + >> \\"$JOBLOG\\"; sleep 1; echo - >> \\"$JOBLOG\\"; echo %s"\n' "$i" "$i"
	done > dag.toml
	run cashet pipeline run -j 2
	assert_success
	# the most jobs whose command ran at once
	assert_equal "$(awk '/\+/ { n++; if (n > m) m = n } /-/ { n-- } END { print NR, m }' "$JOBLOG")" "10 2"
}

@test "a run the node keys otherwise than this host is not taken: the step fails, nothing is replayed" {
	# the step hashes SLURM_JOB_ID, which only a job has: a key this
	# host can never compute, as a tool of another version on the node
	cat > dag.toml <<'TOML'
[steps.odd]
executor = "slurm"
cmd = "echo ran >> \"$JOBLOG\"; echo $SLURM_JOB_ID"
env = ["SLURM_JOB_ID"]
TOML
	run cashet pipeline run
	assert_failure 1
	assert_line --regexp "^step odd: FAILED \(Slurm job [0-9]+ stored run [0-9a-f]{12}, but this host computes another key for the step \(a tool, an input or the environment differs on the node\)\)$"
	# run again: submitted again, never replayed from the odd run
	before=$(jobs_submitted)
	run cashet pipeline run
	assert_failure 1
	assert_equal "$(jobs_submitted)" "$((before + 1))"
	assert_equal "$(wc -l < "$JOBLOG")" 2
}

@test "--dry-run shows the steps that would be submitted, with their resources" {
	sweep
	cat >> dag.toml <<'TOML'

[steps.report]
cmd = "cat out-* > report.txt"
inputs = ["${steps.train.outputs}"]
outputs = ["report.txt"]
executor = "local"

[steps.gpu]
cmd = "true"
time = "90s"
gpus = 1
partition = "debug"
slurm_args = ["--qos=normal"]
TOML
	run cashet pipeline run --dry-run
	assert_success
	assert_output "step train@a=1,b=x: run (Slurm: --cpus-per-task=1 --mem=100M)
  never run before (no store)
step train@a=1,b=y: run (Slurm: --cpus-per-task=1 --mem=100M)
  never run before (no store)
step train@a=2,b=x: run (Slurm: --cpus-per-task=2 --mem=100M)
  never run before (no store)
step train@a=2,b=y: run (Slurm: --cpus-per-task=2 --mem=100M)
  never run before (no store)
step report: run (upstream step train@a=1,b=x will run)
step gpu: run (Slurm: --partition=debug --mem=100M --gpus=1 --time=2 --qos=normal)
  never run before (no store)"
	# --executor local runs here the steps that do not name an executor
	# themselves; [defaults] is overridden
	run cashet pipeline run --dry-run --executor local train
	assert_success
	assert_line "step train@a=1,b=x: run"
}

@test "bad Slurm settings in dag.toml are one-line errors naming file:line" {
	check() {
		printf '%s\n' "$@" > bad.toml
		run cashet pipeline run bad.toml
		assert_failure 2
		assert_equal "${#lines[@]}" 1
	}
	check '[steps.a]' 'cmd = "true"' 'executor = "kubernetes"'
	assert_output "cashet: bad.toml:3: step 'a': 'executor' must be \"local\" or \"slurm\""
	check '[steps.a]' 'cmd = "true"' 'cpus = 0'
	assert_output "cashet: bad.toml:3: step 'a': 'cpus' must be a positive integer, not '0'"
	check '[steps.a]' 'cmd = "true"' 'mem = "lots"'
	assert_output "cashet: bad.toml:3: step 'a': 'mem' must be a size such as \"500M\" or \"4G\", not 'lots'"
	check '[steps.a]' 'cmd = "true"' 'time = "soon"'
	assert_output "cashet: bad.toml:3: step 'a': 'time' must be a duration such as \"10m\" or Slurm's D-HH:MM:SS, not 'soon'"
	check '[defaults]' 'nodes = 2' '[steps.a]' 'cmd = "true"'
	assert_output "cashet: bad.toml:2: unknown key 'nodes' in [defaults] (expected executor or a Slurm resource)"
	check 'executor = "slurm"' '[defaults]' 'executor = "local"' '[steps.a]' 'cmd = "true"'
	assert_output "cashet: bad.toml:1: 'executor' is given both at the top and in [defaults]"
	check '[steps.a]' 'matrix = { c = [1, "x"] }' 'cmd = "true"' 'cpus = "${matrix.c}"'
	assert_output "cashet: bad.toml:4: step 'a@c=x': 'cpus' must be a positive integer, not 'x'"
	check '[steps.a]' 'cmd = "true"' 'slurm_args = "--qos=high"'
	assert_output "cashet: bad.toml:3: step 'a': 'slurm_args' must be an array of strings"
}

@test "a failing job fails its step with its exit code and stderr tail; fail fast cancels the others" {
	cat > dag.toml <<'TOML'
executor = "slurm"

[steps.bad]
cmd = "sleep 0.5; echo 'cannot read data' >&2; exit 3"

[steps.long]
cmd = "echo $SLURM_JOB_ID > long.id; sleep 60"
TOML
	run cashet pipeline run -j 2
	assert_failure 1
	assert_line --regexp "^step bad: FAILED \(exit 3, Slurm job [0-9]+\)$"
	assert_line "  | cannot read data"
	assert_line --regexp "^step long: stopped \("
	assert_equal "$(jobs_alive)" 0
	run scontrol -o show job "$(cat long.id)"
	assert_output --partial "JobState=CANCELLED"
	# the failed run is stored, as a local failure is, and not replayed
	assert_equal "$(cashet log --status failed --json | python3 -c 'import json,sys; print([r["exit"] for r in json.load(sys.stdin)])')" "[3]"
	run cashet pipeline run -j 2 --keep-going bad
	assert_failure 1
	assert_line --regexp "^step bad: FAILED \(exit 3, Slurm job [0-9]+\)$"
}

@test "a job killed for its memory fails its step with Slurm's word for it" {
	cat > dag.toml <<'TOML'
[steps.hog]
executor = "slurm"
mem = "20M"
cmd = ["python3", "-c", "import time; x = bytearray(300 << 20); x[::4096] = b'x' * len(x[::4096]); time.sleep(30)"]
TOML
	run cashet pipeline run
	assert_failure 1
	# without cgroups Slurm's memory enforcement (jobacct_gather's
	# OverMemoryKill) ends the job as FAILED, with cgroups as OUT_OF_MEMORY
	assert_line --regexp "^step hog: FAILED \(Slurm job [0-9]+: (FAILED|OUT_OF_MEMORY)"
	assert_output --partial "memory limit"
	assert_equal "$(cashet log --json)" "[]"
}

@test "pipeline status shows queued and running jobs; Ctrl-C cancels them all (130)" {
	cat > dag.toml <<'TOML'
executor = "slurm"

[steps.first]
cmd = "sleep 60; echo first"
cpus = 5

[steps.second]
cmd = "sleep 60; echo second"
cpus = 5
TOML
	cashet pipeline run -j 2 > run.out 2> run.err &
	pid=$!
	track_pid "$pid"
	for ((i = 0; i < 100; i++)); do
		[ "$(squeue -h -o '%j %T' | grep -v '^cashet:slow ' | cut -d' ' -f2 | sort | tr '\n' ' ')" = "PENDING RUNNING " ] && break
		sleep 0.1
	done
	run cashet pipeline status
	assert_success
	assert_line --regexp "^(first|second): running \(Slurm job [0-9]+\)$"
	assert_line --regexp "^(first|second): queued \(Slurm job [0-9]+\)$"
	kill -INT "$pid"
	rc=0
	wait "$pid" || rc=$?
	assert_equal "$rc" 130
	assert_equal "$(jobs_alive)" 0
	run cashet pipeline status
	assert_output "first: never run
second: never run"
	assert_equal "$(ls .cashet/slurm/)" "jobs"
}

@test "TERM cancels the job, which cleans up its TMPDIR, and exits 143" {
	printf '%s\n' '[steps.wait]' 'executor = "slurm"' 'cmd = "sleep 60"' > dag.toml
	# what jobs killed outright (SIGKILL) left there: this host's is
	# removed once its process is gone, not a live one's or another host's
	local host dead
	host=$(hostname)
	sh -c : &
	dead=$!
	wait "$dead"
	mkdir -p "node-tmp/cashet-job.$host.$dead-killed/.cashet" "node-tmp/cashet-job.$host.$$-alive" \
		"node-tmp/cashet-job.elsewhere.$dead-other"
	TMPDIR=$PWD/node-tmp cashet pipeline run > run.out 2> run.err &
	pid=$!
	track_pid "$pid"
	for ((i = 0; i < 100; i++)); do
		[ "$(jobs_alive)" = 1 ] && break
		sleep 0.1
	done
	# the job is running cashet: it has made its private store
	for ((i = 0; i < 100; i++)); do
		[ "$(ls node-tmp | wc -l)" = 3 ] && [ ! -e "node-tmp/cashet-job.$host.$dead-killed" ] && break
		sleep 0.1
	done
	kill -TERM "$pid"
	rc=0
	wait "$pid" || rc=$?
	assert_equal "$rc" 143
	assert_equal "$(jobs_alive)" 0
	assert_equal "$(ls -A node-tmp | sort)" \
		"$(printf '%s\n' "cashet-job.$host.$$-alive" "cashet-job.elsewhere.$dead-other" | sort)"
}

@test "two pipelines started together submit each step once" {
	cat > dag.toml <<'TOML'
[defaults]
executor = "slurm"

[steps.a]
cmd = "echo a >> \"$JOBLOG\"; sleep 1; echo A > a.txt"
outputs = ["a.txt"]

[steps.b]
cmd = "echo b >> \"$JOBLOG\"; sleep 1; echo B > b.txt"
outputs = ["b.txt"]
TOML
	before=$(jobs_submitted)
	cashet pipeline run -j 2 > one.out 2> one.err &
	one=$!
	cashet pipeline run -j 2 > two.out 2> two.err &
	two=$!
	track_pid "$one"
	track_pid "$two"
	rc1=0 rc2=0
	wait "$one" || rc1=$?
	wait "$two" || rc2=$?
	cat one.err two.err
	assert_equal "$rc1 $rc2" "0 0"
	assert_equal "$(jobs_submitted)" "$((before + 2))"
	assert_equal "$(sort "$JOBLOG" | tr '\n' ' ')" "a b "
	assert_equal "$(cat a.txt b.txt | tr '\n' ' ')" "A B "
}

@test "a step over its time limit fails with Slurm's TIMEOUT and its stderr tail" {
	# started by setup_file: Slurm ends it 60 to 90 s after it started
	cd "$BATS_FILE_TMPDIR/slow"
	for ((i = 0; i < 1200; i++)); do
		[ -s rc ] && break
		sleep 0.1
	done
	assert_equal "$(cat rc)" 1
	run cat err
	assert_line --regexp "^step slow: FAILED \(Slurm job [0-9]+: TIMEOUT, TimeLimit(, signal 15)?\)$"
	assert_line "  | started"
	assert_output --partial "DUE TO TIME LIMIT"
}
