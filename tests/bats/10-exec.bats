#!/usr/bin/env bats
# cashet exec: the first run executes, the second replays.

load helper

@test "first run executes, second replays the same bytes and exit code" {
	run cashet exec -- sh -c "$(counted 'echo out; echo err >&2; exit 0')"
	assert_success
	assert_output --partial "out"
	[ "$(run_count)" = 1 ]
	run cashet exec -- sh -c "$(counted 'echo out; echo err >&2; exit 0')"
	assert_success
	[ "$(run_count)" = 1 ]
	cashet exec -- sh -c "$(counted 'echo out; echo err >&2; exit 0')" >o 2>e
	[ "$(cat o)" = out ]
	[ "$(cat e)" = err ]
	[ "$(run_count)" = 1 ]
}

@test "exec creates a store once and says so on stderr" {
	cashet exec -- true 2>err1
	assert [ -d .cashet ]
	grep -q "created a new store" err1
	cashet exec -- true 2>err2
	assert [ ! -s err2 ]
}
