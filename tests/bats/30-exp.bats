#!/usr/bin/env bats
# cashet exp show, metrics diff, params diff: a small sweep of a training
# script run through exec (--param, -e, --metrics) and through a pipeline
# (matrix, metrics = [...]), then compared as a table and run against run.

load helper

# train.sh reads lr from params.toml and writes metrics.json; val.acc grows
# with lr, so the rows are told apart by both.
sweep() {
	cat > train.sh <<'SH'
lr=$(sed -n 's/^lr = //p' params.toml)
acc=$(awk "BEGIN { print 0.5 + $lr }")
printf '{"val": {"acc": %s, "loss": 0.3}, "epochs": 3, "note": "ok", "hist": [1, 2]}\n' "$acc" > metrics.json
SH
	local lr
	for lr in "$@"; do
		printf 'lr = %s\nbatch = 32\n' "$lr" > params.toml
		SEED=7 cashet exec -p params.toml:lr -p params.toml:batch -e SEED --metrics metrics.json -- sh train.sh
	done
}

# The runs' hashes, oldest first, 8 digits (as the table shows them).
short() {
	cashet log --json | python3 -c 'import json,sys; print("\n".join(r["hash"][:8] for r in reversed(json.load(sys.stdin))))' | sed -n "${1}p"
}

@test "exec --metrics stores the file's values with the run, flattened, in meta and the index" {
	sweep 0.1
	run cashet show "$(short 1)"
	assert_success
	assert_line "metrics     epochs=3 note=ok val.acc=0.6 val.loss=0.3"
	[ "$(git --git-dir .cashet log --all -p | grep '^+metric' | sort)" = "$(printf '%s\n' '+metric epochs=3' '+metric note=ok' '+metric val.acc=0.6' '+metric val.loss=0.3')" ]
	# the metrics file is an output: restored on a hit
	rm metrics.json
	run cashet exec -p params.toml:lr -p params.toml:batch -e SEED --metrics metrics.json -- sh train.sh
	assert_success
	[ -f metrics.json ]
}

@test "exp show: a row per run, the params that differ, the metrics, numbers aligned right" {
	sweep 0.1 0.2 0.3
	run --separate-stderr cashet exp show
	assert_success
	assert_output "run        lr  epochs  note  val.acc  val.loss
$(short 1)  0.1       3  ok        0.6       0.3
$(short 2)  0.2       3  ok        0.7       0.3
$(short 3)  0.3       3  ok        0.8       0.3"
}

@test "exp show --sort, --where, --line, --tag" {
	sweep 0.1 0.3 0.2
	run cashet exp show --sort -val.acc
	assert_success
	assert_output "run        lr  epochs  note  val.acc  val.loss
$(short 2)  0.3       3  ok        0.8       0.3
$(short 3)  0.2       3  ok        0.7       0.3
$(short 1)  0.1       3  ok        0.6       0.3"
	run cashet exp show --where 'val.acc >= 0.7' --where 'lr<0.3' --sort lr
	assert_success
	assert_output "run        lr  epochs  note  val.acc  val.loss
$(short 3)  0.2       3  ok        0.7       0.3"
	run --separate-stderr cashet exp show --line "$(short 1)" --where 'note != ok'
	assert_success
	assert_output ""
	[ "$stderr" = "cashet: no runs to show" ]
	run cashet exp show --where 'val.f1 > 1'
	assert_failure 2
	assert_output "cashet exp show: --where: no column 'val.f1' (see 'cashet exp show --help')"
	run cashet exp show --where 'val.acc ~ 1'
	assert_failure 2
	assert_output --partial "--where 'val.acc ~ 1': expected COLUMN OP VALUE"
	run cashet exp show --sort nope
	assert_failure 2
	assert_output "cashet exp show: --sort: no column 'nope' (see 'cashet exp show --help')"
	printf 'lr = 0.5\nbatch = 32\n' > params.toml
	SEED=7 cashet exec -t best -p params.toml:lr -p params.toml:batch -e SEED --metrics metrics.json -- sh train.sh
	run cashet exp show --tag best --json
	assert_success
	assert_output "[{\"run\":\"$(cashet log -n 1 --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["hash"])')\",\"name\":null,\"created\":\"$(cashet log -n 1 --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["created"])')\",\"status\":\"ok\",\"params\":{\"batch\":32,\"lr\":0.5,\"env.SEED\":7},\"metrics\":{\"epochs\":3,\"note\":\"ok\",\"val.acc\":1,\"val.loss\":0.3}}]"
}

@test "exp show fits the terminal's width (COLUMNS) and --csv has every column" {
	sweep 0.1 0.2
	COLUMNS=36 run cashet exp show
	assert_success
	assert_output "run        lr  epochs  note  val.acc
$(short 1)  0.1       3  ok        0.6
$(short 2)  0.2       3  ok        0.7
(1 more column: val.loss; --json or --csv shows them)"
	COLUMNS=36 run cashet exp show --csv
	assert_success
	run cut -d, -f2- <<<"$output"
	assert_output "lr,epochs,note,val.acc,val.loss
0.1,3,ok,0.6,0.3
0.2,3,ok,0.7,0.3"
	run cashet exp show --csv --json
	assert_failure 2
	assert_output "cashet exp show: --json and --csv exclude each other (see 'cashet exp show --help')"
}

@test "metrics diff and params diff: the last two runs by default, or A B; absolute and relative change" {
	sweep 0.2 0.3
	run cashet metrics diff
	assert_success
	assert_output "metric   old  new  change  relative
val.acc  0.7  0.8  +0.1    +14.3%"
	run cashet metrics diff --all "$(short 2)" "$(short 1)"
	assert_success
	assert_output "metric    old  new  change  relative
epochs    3    3    +0      +0.0%
note      ok   ok   -       -
val.acc   0.8  0.7  -0.1    -12.5%
val.loss  0.3  0.3  +0      +0.0%"
	run cashet params diff "$(short 2)"
	assert_success
	assert_output "param  old  new  change  relative
lr     0.2  0.3  +0.1    +50.0%"
	run cashet params diff --json
	assert_success
	assert_output "{\"old\":\"$(cashet log --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[1]["hash"])')\",\"new\":\"$(cashet log --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["hash"])')\",\"params\":{\"lr\":{\"old\":0.2,\"new\":0.3,\"change\":0.1,\"relative\":0.5}}}"
	run cashet metrics diff "$(short 1)"
	assert_failure 1
	assert_output "cashet: run $(cashet log --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[1]["hash"][:12])') has no earlier run of its command line to compare with (name two runs)"
}

@test "metrics files: TOML, CSV's last row; a malformed one costs its metrics, never the run" {
	printf '[train]\nloss = 0.25\nsteps = 100\n' > m.toml
	run cashet exec --metrics m.toml -- cat m.toml
	assert_success
	printf 'epoch,loss\n1,0.9\n2,0.5\n' > log.csv
	run cashet exec --metrics log.csv -- cat log.csv
	assert_success
	run cashet exp show --csv
	run cut -d, -f2- <<<"$output"
	assert_output "epoch,loss,train.loss,train.steps
,,0.25,100
2,0.5,,"
	printf '{"acc": 0.5,\n "loss": }\n' > bad.json
	run --separate-stderr cashet exec --metrics bad.json -- cat bad.json
	assert_success
	[ "$stderr" = "cashet: warning: bad.json:2: unexpected character; its metrics are not stored" ]
	printf 'a,b\n1,2,3\n' > bad.csv
	run --separate-stderr cashet exec --metrics bad.csv -- cat bad.csv
	assert_success
	[ "$stderr" = "cashet: warning: bad.csv:2: 3 values, but the header names 2; its metrics are not stored" ]
}

@test "exp show PIPELINE: each sweep point's newest run, matrix values as params, metrics = [...]" {
	cat > train.sh <<'SH'
printf '{"acc": %s}\n' "$(awk "BEGIN { print $1 * 2 }")" > "m-$1.json"
SH
	cat > dag.toml <<'TOML'
[steps.prep]
cmd = "echo data > data.txt"
outputs = ["data.txt"]

[steps.train]
cmd = "sh train.sh ${matrix.lr}"
inputs = ["data.txt"]
metrics = ["m-${matrix.lr}.json"]
matrix = { lr = [0.1, 0.3] }
TOML
	run cashet pipeline run
	assert_success
	run cashet exp show
	assert_success
	local prep t1 t3
	prep=$(cashet log --name pipeline/prep --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["hash"][:8])')
	t1=$(cashet log --name pipeline/train@lr=0.1 --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["hash"][:8])')
	t3=$(cashet log --name pipeline/train@lr=0.3 --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["hash"][:8])')
	assert_output "run       name    lr  acc
$prep  prep     -    -
$t1  train  0.1  0.2
$t3  train  0.3  0.6"
	run cashet exp show dag.toml --where 'acc > 0.3'
	assert_output "run       name    lr  acc
$t3  train  0.3  0.6"
	run cashet exp show nope.toml
	assert_failure 2
	assert_output --partial "nope.toml"
}
