#!/usr/bin/env bats
# diff and history: one training job run three times (new data and a new
# learning rate, then a script edit that makes it fail), compared section by
# section (text, --stat, --json, exit codes 0/1/2) and listed as a history
# (order, --reverse, the `*` on the run a hit would replay, and what changed
# between runs), which is the same chain as the git log of the line's ref.

load helper

setup() {
	common_setup
	cashet init > /dev/null
	cat > train.py <<'EOF'
import os
# fit a model
rows = open("data.csv").read().splitlines()
lr = os.environ["LR"]
print("rows", len(rows))
print("lr", lr)
open("model.bin", "w").write("weights %s\n" % lr)
EOF
	printf 'x,y\n1,2\n' > data.csv
}

train() {
	LR=$1 cashet exec -i data.csv -e LR -o model.bin "${@:2}" -- python3 train.py
}

# h1: LR 0.1 on two rows; h2: LR 0.01 on three rows; h3: the script fails.
three_runs() {
	train 0.1 > /dev/null
	h1=$(last_hash)
	printf 'x,y\n1,2\n3,4\n' > data.csv
	train 0.01 > /dev/null
	h2=$(last_hash)
	cat > train.py <<'EOF'
import os, sys
# fit a model
rows = open("data.csv").read().splitlines()
lr = os.environ["LR"]
print("rows", len(rows))
print("lr too small", lr, file=sys.stderr)
sys.exit(3)
EOF
	# a failed run stores the outputs it left: this one starts without
	# model.bin and writes none, so model.bin is a removed output
	rm -f model.bin
	train 0.01 > /dev/null 2>&1 || true
	h3=$(last_hash)
}

# history rows without the time and duration columns: "M HASH STATUS EXIT | CHANGES"
history_rows() {
	cashet history "$@" | sed -E 's/^(.) ([0-9a-f]{12})  [0-9-]{10} [0-9:]{8}  (ok|failed) +(-?[0-9]+) +[0-9.]+m?s  /\1 \2 \3 \4 | /'
}

@test "diff: a run with itself, and a forced re-run with the same result, are identical (exit 0)" {
	train 0.1 > /dev/null
	h1=$(last_hash)
	sleep 0.01
	train 0.1 --force > /dev/null
	h1f=$(last_hash)
	[ "$h1" != "$h1f" ]
	for b in "$h1" "$h1f"; do
		run cashet diff "$h1" "$b"
		assert_success
		[ "${#lines[@]}" = 3 ]
		assert_line --index 0 --regexp "^a ${h1:0:12}  [0-9-]{10} [0-9:]{8}  ok, exit 0, took [0-9.]+m?s$"
		assert_line --index 1 --regexp "^b ${b:0:12}  [0-9-]{10} [0-9:]{8}  ok, exit 0, took [0-9.]+m?s$"
		assert_line --index 2 "identical: same inputs, exit status, stdout, stderr and outputs"
	done
	run cashet diff --stat "$h1" "$h1f"
	assert_success
	assert_output ""
	run cashet diff --json "$h1" "$h1f"
	assert_success
	[ "$(echo "$output" | json_field '(j["identical"], j["sections"], j["a"]["hash"], j["b"]["hash"])')" = "(True, [], '$h1', '$h1f')" ]
}

@test "diff: new data and learning rate: input, env, stdout and output sections (exit 1)" {
	three_runs
	run cashet diff "${h1:0:8}" "${h2:0:8}"
	assert_failure 1
	assert_line --index 0 --regexp "^a ${h1:0:12}  .*  ok, exit 0, took "
	assert_line --index 1 --regexp "^b ${h2:0:12}  .*  ok, exit 0, took "
	[ "$(printf '%s\n' "${lines[@]:2}")" = "$(cat <<'EOF'
input data.csv: changed
env LR: changed: 0.1 -> 0.01
stdout: changed
--- a/stdout
+++ b/stdout
@@ -1,2 +1,2 @@
-rows 2
-lr 0.1
+rows 3
+lr 0.01
output model.bin: changed
--- a/model.bin
+++ b/model.bin
@@ -1 +1 @@
-weights 0.1
+weights 0.01
EOF
)" ]
}

@test "diff: a script edit that fails: script patch, exit, stdout, stderr, removed output" {
	three_runs
	run cashet diff "$h2" "$h3"
	assert_failure 1
	assert_line --index 1 --regexp "^b ${h3:0:12}  .*  failed, exit 3, took "
	[ "$(printf '%s\n' "${lines[@]:2}")" = "$(cat <<'EOF'
script train.py: changed
--- a/train.py
+++ b/train.py
@@ -1,7 +1,7 @@
-import os
+import os, sys
 # fit a model
 rows = open("data.csv").read().splitlines()
 lr = os.environ["LR"]
 print("rows", len(rows))
-print("lr", lr)
-open("model.bin", "w").write("weights %s\n" % lr)
+print("lr too small", lr, file=sys.stderr)
+sys.exit(3)
exit: changed: 0 -> 3
stdout: changed
--- a/stdout
+++ b/stdout
@@ -1,2 +1 @@
 rows 3
-lr 0.01
stderr: changed
--- a/stderr
+++ b/stderr
@@ -0,0 +1 @@
+lr too small 0.01
output model.bin: removed
--- a/model.bin
+++ b/model.bin
@@ -1 +0,0 @@
-weights 0.01
EOF
)" ]
}

@test "diff --stat: one line per section and a count" {
	three_runs
	run cashet diff --stat "$h1" "$h3"
	assert_failure 1
	[ "$output" = "$(cat <<'EOF'
 script train.py  | 6 +++---
 input data.csv   | changed
 env LR           | 0.1 -> 0.01
 exit             | 0 -> 3
 stdout           | 3 +--
 stderr           | 1 +
 output model.bin | 1 -
 7 sections differ
EOF
)" ]
}

@test "diff --json: sections with change, old, new and patches" {
	three_runs
	run cashet diff --json "$h1" "$h3"
	assert_failure 1
	j="$output"
	f() { echo "$j" | json_field "$1"; }
	[ "$(f 'j["identical"]')" = False ]
	[ "$(f '(j["a"]["hash"], j["b"]["hash"], j["b"]["status"], j["b"]["exit"])')" = "('$h1', '$h3', 'failed', 3)" ]
	[ "$(f '[(s["section"], s["name"], s["change"]) for s in j["sections"]]')" = \
		"[('script', 'train.py', 'changed'), ('input', 'data.csv', 'changed'), ('env', 'LR', 'changed'), ('exit', None, 'changed'), ('stdout', None, 'changed'), ('stderr', None, 'changed'), ('output', 'model.bin', 'removed')]" ]
	[ "$(f '[(s["old"], s["new"]) for s in j["sections"] if s["section"] in ("env", "exit")]')" = "[('0.1', '0.01'), ('0', '3')]" ]
	[ "$(f '[s for s in j["sections"] if s["section"] == "stderr"][0]["patch"]')" = "$(printf -- '--- a/stderr\n+++ b/stderr\n@@ -0,0 +1 @@\n+lr too small 0.01')" ]
	[ "$(f '[(s["new"], s["old_size"], s["new_size"], s["deletions"]) for s in j["sections"] if s["section"] == "output"]')" = "[(None, 12, 0, 1)]" ]
	# input digests are those `show --json` lists for the data.csv part
	[ "$(f '[s["old"] for s in j["sections"] if s["section"] == "input"][0]')" = \
		"$(cashet show --json "$h1" | json_field '[p["hash"] for p in j["parts"] if p["kind"] == "input"][0]')" ]
}

@test "diff: binary and added outputs" {
	mk='printf "v\000$V" > bin.out; if [ "$V" = 2 ]; then echo new > extra.out; fi'
	V=1 cashet exec -e V -o bin.out -- sh -c "$mk" > /dev/null
	a=$(last_hash)
	V=2 cashet exec -e V -o bin.out -o extra.out -- sh -c "$mk" > /dev/null
	b=$(last_hash)
	run cashet diff "$a" "$b"
	assert_failure 1
	[ "$(printf '%s\n' "${lines[@]:2}")" = "$(cat <<'EOF'
env V: changed: 1 -> 2
declared-output extra.out: added
output bin.out: changed: binary, 3 bytes vs 3 bytes
output extra.out: added
--- a/extra.out
+++ b/extra.out
@@ -0,0 +1 @@
+new
EOF
)" ]
	run cashet diff --stat "$a" "$b"
	assert_line --index 2 " output bin.out            | Bin 3 -> 3 bytes"
}

@test "diff: usage errors and unknown runs exit 2" {
	train 0.1 > /dev/null
	h1=$(last_hash)
	run cashet diff "$h1"
	assert_failure 2
	run cashet diff --bogus "$h1" "$h1"
	assert_failure 2
	run cashet diff --stat --json "$h1" "$h1"
	assert_failure 2
	run --separate-stderr cashet diff "$h1" ffff
	assert_failure 2
	[ "$stderr" = "cashet: no run matches 'ffff'" ]
	run cashet diff "$h1" xyz
	assert_failure 2
}

@test "history HASH: every run of the line, oldest first, failed runs too, with what changed" {
	three_runs
	run history_rows "${h2:0:10}"
	assert_success
	[ "$output" = "$(cat <<EOF
  HASH          CREATED              STATUS  EXIT  DURATION  CHANGES
  ${h1:0:12} ok 0 | first run
* ${h2:0:12} ok 0 | input data.csv changed; env LR changed: 0.1 -> 0.01
  ${h3:0:12} failed 3 | train.py changed (lines 1, 6-7)
EOF
)" ]
	# the same list from any run of the line, newest first with --reverse;
	# the mark: what a hit on that run's fingerprint would replay
	run history_rows --reverse "$h1"
	[ "$output" = "$(cat <<EOF
  HASH          CREATED              STATUS  EXIT  DURATION  CHANGES
  ${h3:0:12} failed 3 | train.py changed (lines 1, 6-7)
  ${h2:0:12} ok 0 | input data.csv changed; env LR changed: 0.1 -> 0.01
* ${h1:0:12} ok 0 | first run
EOF
)" ]
	# a failed run is never replayed (without --cache-failures): no mark
	run history_rows "$h3"
	[ "${#lines[@]}" = 4 ]
	refute_line --regexp '^\*'
}

@test "history -- CMD: marks what a hit would replay now, and the mark moves after --force" {
	three_runs
	# the failing script is current: nothing would be replayed
	run history_rows -i data.csv -e LR -o model.bin -- python3 train.py
	assert_success
	[ "${#lines[@]}" = 4 ]
	refute_line --regexp '^\*'
	# back to the first script and data: the first run would be replayed
	cat > train.py <<'EOF'
import os
# fit a model
rows = open("data.csv").read().splitlines()
lr = os.environ["LR"]
print("rows", len(rows))
print("lr", lr)
open("model.bin", "w").write("weights %s\n" % lr)
EOF
	printf 'x,y\n1,2\n' > data.csv
	export LR=0.1
	run history_rows -i data.csv -e LR -o model.bin -- python3 train.py
	assert_line --index 1 "* ${h1:0:12} ok 0 | first run"
	refute_line --index 2 --regexp '^\*'
	# a forced run of the same inputs becomes the one replayed
	train 0.1 --force > /dev/null
	h4=$(last_hash)
	run history_rows -e LR -i data.csv -o model.bin -- python3 train.py
	assert_line --index 1 "  ${h1:0:12} ok 0 | first run"
	assert_line --index 4 "* ${h4:0:12} ok 0 | train.py changed (lines 1, 6-7); input data.csv changed; env LR changed: 0.01 -> 0.1"
	run history_rows "$h1"
	assert_line --index 4 --regexp "^\* ${h4:0:12} "
	# a hit replays no new run: the history does not grow
	train 0.1 > /dev/null
	[ "$(last_hash)" = "$h4" ]
	run history_rows "$h1"
	[ "${#lines[@]}" = 5 ]
	# the same inputs again (forced): "same inputs"
	train 0.1 --force > /dev/null
	run history_rows --reverse "$h1"
	assert_line --index 1 --regexp "^\* [0-9a-f]{12} ok 0 \| same inputs$"
}

@test "history --json: fields, order, replay mark and changes" {
	three_runs
	run cashet history --json "$h2"
	assert_success
	j="$output"
	f() { echo "$j" | json_field "$1"; }
	[ "$(f '[r["hash"] for r in j]')" = "['$h1', '$h2', '$h3']" ]
	[ "$(f '[r["parent"] for r in j]')" = "[None, '$h1', '$h2']" ]
	[ "$(f '[(r["status"], r["exit"], r["replay"]) for r in j]')" = "[('ok', 0, False), ('ok', 0, True), ('failed', 3, False)]" ]
	[ "$(f '[r["changes"] for r in j]')" = "[None, ['input data.csv changed', 'env LR changed: 0.1 -> 0.01'], ['train.py changed (lines 1, 6-7)']]" ]
	[ "$(f 'all(isinstance(r["duration_ms"], int) and r["created"].endswith("Z") for r in j)')" = True ]
	run cashet history --json --reverse "$h2"
	[ "$(echo "$output" | json_field '[r["hash"] for r in j]')" = "['$h3', '$h2', '$h1']" ]
}

@test "history: the same chain as git log of the line's ref" {
	three_runs
	ref=$(git --git-dir .cashet for-each-ref --format='%(refname)' refs/cashet/lines/)
	[ "$(echo "$ref" | wc -l)" = 1 ]
	run git --git-dir .cashet log --format=%H "$ref"
	assert_success
	[ "${#lines[@]}" = 3 ]
	[ "$output" = "$(cashet history --json --reverse "$h1" | python3 -c 'import json,sys; [print(r["hash"]) for r in json.load(sys.stdin)]')" ]
}

@test "history: usage errors exit 2, unknown runs 1, a command never run lists nothing" {
	run cashet history
	assert_failure 2
	run cashet history a b
	assert_failure 2
	run cashet history --bogus
	assert_failure 2
	run cashet history --
	assert_failure 2
	run --separate-stderr cashet history abcd
	assert_failure 1
	[ "$stderr" = "cashet: no run matches 'abcd'" ]
	run cashet history -- echo never
	assert_success
	assert_output ""
	run cashet history --json -- echo never
	assert_output "[]"
}

@test "diff and history name an observed input that changed, once, and not one a declared part covers" {
	echo 1 > p.txt
	echo 1 > q.txt
	cashet exec -i q.txt -- sh -c 'cat p.txt q.txt' > /dev/null
	local a b
	a=$(last_hash)
	echo 2 > p.txt
	echo 2 > q.txt
	cashet exec -i q.txt -- sh -c 'cat p.txt q.txt' > /dev/null
	b=$(last_hash)
	run cashet diff --stat "$a" "$b"
	assert_equal "$status" 1
	assert_output " input q.txt    | changed
 observed p.txt | read
 stdout         | 4 ++--
 3 sections differ"
	run cashet history -- sh -c 'cat p.txt q.txt'
	assert_line --index 2 --regexp ' ok +0 +[0-9]+ms  input q.txt changed; p.txt, read by the command, changed$'
	[ "$(cashet history --json -- sh -c 'cat p.txt q.txt' | json_field 'j[1]["changes"]')" = "['input q.txt changed', 'p.txt, read by the command, changed']" ]
}
