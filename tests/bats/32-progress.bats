#!/usr/bin/env bats
# pipeline run's progress: on a terminal a live display (done, running,
# queued, each running step's time, an ETA from the store's previous
# durations), in color unless NO_COLOR; elsewhere a plain line per step.

load helper

two_steps() {
	cat > dag.toml <<'TOML'
[steps.a]
cmd = "sleep 0.5; echo a > a.txt"
outputs = ["a.txt"]

[steps.b]
cmd = "sleep 0.3; cat a.txt > b.txt"
inputs = ["a.txt"]
outputs = ["b.txt"]
TOML
}

# Durations become T, so lines compare exactly; only whole words, so a
# path that holds one (bats' random directory "bats-run-IHyi2s") is kept.
mask() {
	sed -E 's/\b([0-9]+(\.[0-9]+)?(ms|s)|[0-9]+m[0-9]+s)\b/T/g'
}

# cashet's stderr through a pseudo-terminal (script(1)), carriage returns
# turned into line breaks.
on_tty() {
	command -v script >/dev/null || skip "script(1) is not installed"
	script -qec "$*" /dev/null | tr '\r' '\n'
}

@test "not on a terminal: one line per step event, no escape sequences" {
	two_steps
	run --separate-stderr cashet pipeline run
	assert_success
	assert_equal "$(mask <<<"$stderr")" "cashet: created a new store in $PWD/.cashet
step a: ran (T)
step b: ran (T)
pipeline: 2 ran, 0 hit, 0 failed, 0 not run (T)"
	run --separate-stderr cashet pipeline run
	assert_success
	assert_equal "$(mask <<<"$stderr")" "step a: hit (T)
step b: hit (T)
pipeline: 0 ran, 2 hit, 0 failed, 0 not run (T)"
	[[ $stderr != *$'\033'* ]]
}

@test "on a terminal: done, running, queued, the running step's time and an ETA from its last duration" {
	two_steps
	cashet pipeline run 2>/dev/null
	run on_tty NO_COLOR=1 cashet pipeline run --force
	assert_success
	local out
	out=$(mask <<<"$output" | sed 's/\x1b\[[0-9;]*[A-Za-z]//g')
	# the first frame: nothing started, both queued, an ETA from the store
	grep -qx '\[0/2\] 0 done, 0 running, 2 queued, T, ETA T' <<<"$out"
	grep -qx '\[0/2\] 0 done, 1 running, 1 queued, T, ETA T' <<<"$out"
	grep -qx '  a  T (last T)' <<<"$out"
	grep -qx '\[1/2\] 1 done, 1 running, 0 queued, T, ETA T' <<<"$out"
	grep -qx '  b  T (last T)' <<<"$out"
	grep -qx 'step a: ran (T)' <<<"$out"
	grep -qx 'step b: ran (T)' <<<"$out"
	grep -qx 'pipeline: 2 ran, 0 hit, 0 failed, 0 not run (T)' <<<"$out"
	# NO_COLOR: cursor movements only, no colors
	[[ $output != *$'\033[3'* ]]
	[[ $output != *$'\033[1m'* ]]
	[[ $output == *$'\033[J'* ]]
}

@test "on a terminal without NO_COLOR: the verdicts in color; without a previous run no ETA" {
	two_steps
	run on_tty NO_COLOR= cashet pipeline run
	assert_success
	[[ $output == *$'step a: \033[34mran\033[0m ('* ]]
	[[ $output == *$'\033[1m[0/2]\033[0m 0 done, 0 running, 2 queued, '* ]]
	local out
	out=$(mask <<<"$output" | sed 's/\x1b\[[0-9;]*[A-Za-z]//g')
	grep -qx '\[0/2\] 0 done, 1 running, 1 queued, T' <<<"$out"
	grep -qx '  a  T' <<<"$out"
	run on_tty NO_COLOR= cashet pipeline run
	[[ $output == *$'step a: \033[32mhit\033[0m ('* ]]
}

@test "on a narrow terminal the live display's lines are cut to its width, never wrapped" {
	two_steps
	cashet pipeline run 2>/dev/null
	run on_tty "stty cols 24; NO_COLOR=1 cashet pipeline run --force"
	assert_success
	local out
	out=$(sed 's/\x1b\[[0-9;]*[A-Za-z]//g' <<<"$output" | grep -E '^(\[|  )')
	grep -qx '\[0/2\] 0 done, 1 running' <<<"$out"
	[ "$(awk 'length > 23' <<<"$out")" = "" ]
}
