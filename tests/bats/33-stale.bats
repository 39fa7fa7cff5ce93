#!/usr/bin/env bats
# exec --stale and --warm, as bkt has them: a run older than the staleness
# bound is replayed at once and refreshed by a detached process (the next
# call gets the new result); concurrent stale calls refresh it once;
# --warm refreshes without printing.

load helper

setup() {
	common_setup
	cashet init >/dev/null
}

# The command: counts its runs and prints the count, so a result says
# which run made it. $1 seconds of work first.
numbered() {
	echo "sleep ${1:-0}; echo x >> \"\$RUNS_COUNT\"; wc -l < \"\$RUNS_COUNT\" | tr -d ' '"
}

# Waits (up to 10 s) until the command has run $1 times in all.
wait_runs() {
	local n=0
	while [ "$(run_count)" -lt "$1" ] && [ $n -lt 100 ]; do
		sleep 0.1
		n=$((n + 1))
	done
	[ "$(run_count)" -ge "$1" ]
}

# Waits (up to 10 s) until the store has $1 runs (the refresh stored its run).
wait_stored() {
	local n=0
	while [ "$(log_count)" -lt "$1" ] && [ $n -lt 100 ]; do
		sleep 0.1
		n=$((n + 1))
	done
	[ "$(log_count)" -ge "$1" ]
}

@test "--stale: fresh runs are hits; a stale one is replayed at once, refreshed behind, and the next call gets the new result" {
	run cashet exec --stale 1s -- sh -c "$(numbered)"
	assert_success
	assert_output 1
	run cashet exec --stale 1s -- sh -c "$(numbered)"
	assert_output 1
	[ "$(run_count)" = 1 ]
	sleep 1.2
	# stale: the old result now, a refresh in the background
	run --separate-stderr cashet exec --stale 1s -- sh -c "$(numbered)"
	assert_success
	assert_output 1
	[ "$stderr" = "" ]
	wait_runs 2
	wait_stored 2
	# (without --stale from here: the new run may be stale too on a slow machine)
	run cashet exec -- sh -c "$(numbered)"
	assert_output 2
	[ "$(verdict -- sh -c "$(numbered)")" = hit ]
	[ "$(run_count)" = 2 ]
}

@test "--stale: concurrent stale calls all replay at once and the refresh runs exactly once" {
	cashet exec --stale 1s -- sh -c "$(numbered 0.5)" >/dev/null 2>&1
	sleep 1.2
	local k
	for k in 1 2 3 4; do
		cashet exec --stale 1s -- sh -c "$(numbered 0.5)" > "out.$k" 2>/dev/null &
	done
	wait
	for k in 1 2 3 4; do
		[ "$(cat "out.$k")" = 1 ]
	done
	wait_runs 2
	wait_stored 2
	# a second refresh would run within its 0.5 s of work plus start-up
	sleep 1.5
	[ "$(run_count)" = 2 ]
	[ "$(log_count)" = 2 ]
	run cashet exec -- sh -c "$(numbered 0.5)"
	assert_output 2
}

@test "--warm: prints nothing, returns before the command ends, and the next call replays what it stored" {
	local t0 t1
	t0=$(date +%s%N)
	run --separate-stderr cashet exec --warm -- sh -c "$(numbered 1)"
	t1=$(date +%s%N)
	assert_success
	assert_output ""
	[ "$stderr" = "" ]
	[ $(((t1 - t0) / 1000000)) -lt 900 ]
	wait_stored 1
	[ "$(verdict -- sh -c "$(numbered 1)")" = hit ]
	run cashet exec -- sh -c "$(numbered 1)"
	assert_output 1
	# warming again refreshes: a new run, replayed from then on
	cashet exec --warm -- sh -c "$(numbered 1)"
	wait_stored 2
	run cashet exec -- sh -c "$(numbered 1)"
	assert_output 2
	[ "$(run_count)" = 2 ]
}

@test "--stale and --warm give the command no stdin (the background refresh has none of the caller's)" {
	run sh -c 'echo piped | cashet exec --stale 1h -- cat'
	assert_success
	assert_output ""
	run cashet exec --stale 1h -- cat
	assert_output ""
	[ "$(log_count)" = 1 ]
	run cashet exec --stale soon -- true
	assert_failure 2
	assert_output --partial "--stale"
}
