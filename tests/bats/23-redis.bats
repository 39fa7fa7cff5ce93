#!/usr/bin/env bats
# A Redis server as a cache shared between machines: each test starts its
# own redis-server on 127.0.0.1 (a free port, nothing saved to disk). One
# store writes its runs through, another store of the same project reads
# them through and replays without running; two stores that start the same
# slow command together run it once; a Redis that is down costs one warning.

load helper

setup() {
	command -v redis-server > /dev/null ||
		skip "redis-server is not installed (contrib/install-deps.sh installs it)"
	common_setup
	PORT=$(free_port)
	redis-server --port "$PORT" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
		--pidfile "$BATS_TEST_TMPDIR/redis.pid" --logfile "$BATS_TEST_TMPDIR/redis.log" \
		--dir "$BATS_TEST_TMPDIR"
	local i=0
	until redis-cli -p "$PORT" ping > /dev/null 2>&1; do
		i=$((i + 1))
		[ "$i" -gt 50 ] && fail "redis-server did not start on port $PORT"
		sleep 0.1
	done
	export CASHET_REMOTE="redis://127.0.0.1:$PORT/0"
	mkdir -p "$BATS_TEST_TMPDIR/other"
	cashet init > /dev/null
	echo data > in
}

teardown() {
	kill_started
	if [ -f "$BATS_TEST_TMPDIR/redis.pid" ]; then
		kill "$(cat "$BATS_TEST_TMPDIR/redis.pid")" 2> /dev/null || true
	fi
	sanitizer_check
}

rcli() {
	redis-cli -p "$PORT" --raw "$@"
}

# The same project in another directory with a store of its own.
other_machine() {
	cp in "$BATS_TEST_TMPDIR/other/"
	cd "$BATS_TEST_TMPDIR/other"
	export RUNS_COUNT="$BATS_TEST_TMPDIR/other.count"
}

@test "store A writes through, store B reads through and replays without running" {
	run --separate-stderr cashet exec -v -i in -- sh -c "$(counted 'cat in')"
	assert_success
	assert_output data
	[[ "$stderr" == *"cashet: sent "* ]]
	[ "$(run_count)" = 1 ]
	other_machine
	run --separate-stderr cashet exec -v -i in -- sh -c "$(counted 'cat in')"
	assert_success
	assert_output data
	[[ "$stderr" == *"cashet: fetched "*" from redis://127.0.0.1:$PORT/0"* ]]
	[[ "$stderr" == *"cashet: hit "* ]]
	[ "$(run_count)" = 0 ] # never ran here
	[ "$(log_count)" = 1 ]
	# now a local hit: Redis is not even asked
	kill "$(cat "$BATS_TEST_TMPDIR/redis.pid")"
	run --separate-stderr cashet exec -v -i in -- sh -c "$(counted 'cat in')"
	assert_success
	[[ "$stderr" == "cashet: hit "* ]]
	[ -z "$(grep warning <<<"$stderr")" ]
	git --git-dir .cashet fsck --no-dangling
}

@test "outputs travel too; --remote and the config key name the server" {
	unset CASHET_REMOTE
	cashet exec --remote "redis://127.0.0.1:$PORT" -i in -o out -- sh -c "$(counted 'cp in out')"
	other_machine
	cashet init > /dev/null
	run cashet config remote "redis://127.0.0.1:$PORT"
	assert_success
	run cashet config remote nowhere
	assert_failure 2
	cashet exec -i in -o out -- sh -c "$(counted 'cp in out')"
	[ "$(run_count)" = 0 ]
	[ "$(cat out)" = data ]
}

@test "key layout: cashet:v1:fp, cashet:v1:run, no lock left behind" {
	cashet exec -i in -- cat in > /dev/null
	local hash fp
	hash=$(last_hash)
	fp=$(cashet show --json "$hash" | json_field 'j["fingerprint"]')
	run rcli keys 'cashet:*'
	assert_success
	assert_line "cashet:v1:fp:$fp"
	assert_line "cashet:v1:run:$hash"
	[ "${#lines[@]}" = 2 ]
	run rcli get "cashet:v1:fp:$fp"
	assert_output "$hash"
	run sh -c "redis-cli -p $PORT --raw getrange cashet:v1:run:$hash 0 15"
	assert_output "cashet-archive 1"
	# a failed run is not sent, unless failures are cached
	run cashet exec -- sh -c 'exit 3'
	assert_failure 3
	[ "$(rcli keys 'cashet:v1:fp:*' | wc -l)" = 1 ]
	run cashet exec --cache-failures -- sh -c 'exit 4'
	assert_failure 4
	[ "$(rcli keys 'cashet:v1:fp:*' | wc -l)" = 2 ]
}

@test "a damaged archive, or a key naming a run of another fingerprint: a warning, then a run" {
	cashet exec -- echo one > /dev/null
	local one fp_one
	one=$(last_hash)
	fp_one=$(cashet show --json "$one" | json_field 'j["fingerprint"]')
	cashet exec -- echo two > /dev/null
	local two fp_two
	two=$(last_hash)
	fp_two=$(cashet show --json "$two" | json_field 'j["fingerprint"]')
	# the key of "echo two" now names the run of "echo one"
	rcli set "cashet:v1:fp:$fp_two" "$one" > /dev/null
	other_machine
	run --separate-stderr cashet exec -- echo two
	assert_success
	assert_output two
	[[ "$stderr" == *"cashet: warning: remote $CASHET_REMOTE: run ${one:0:12} has another fingerprint than the lookup that named it; working locally" ]]
	[ "$(log_count)" = 1 ] # the stray run was not kept
	# a damaged archive fails the import's checks
	printf 'cashet-archive 1\nrun %s\npack 00000000000000000010\nxxxxxxxxxx' "$one" |
		redis-cli -p "$PORT" -x set "cashet:v1:run:$one" > /dev/null
	run --separate-stderr cashet exec -- echo one
	assert_success
	assert_output one
	[[ "$stderr" == *"cashet: warning: remote $CASHET_REMOTE: "*"; working locally" ]]
	[ "$(grep -c warning <<<"$stderr")" = 1 ]
	git --git-dir .cashet fsck --no-dangling
}

@test "the lock is held while the command runs, with an expiry" {
	cashet exec -- sh -c 'echo yes > started; sleep 2' &
	track_pid $!
	wait_for_file started 50
	run rcli keys 'cashet:v1:lock:*'
	[ "${#lines[@]}" = 1 ]
	local ttl
	ttl=$(rcli pttl "${lines[0]}")
	[ "$ttl" -gt 0 ] && [ "$ttl" -le 30000 ]
	wait
	run rcli keys 'cashet:v1:lock:*'
	assert_output ''
}

@test "two stores started together run a slow command once" {
	local cmd="echo x >> $BATS_TEST_TMPDIR/count; sleep 1; echo done"
	cashet exec -v -- sh -c "$cmd" > a.out 2> a.err &
	local a=$!
	track_pid $a
	other_machine
	cashet exec -v -- sh -c "$cmd" > b.out 2> b.err &
	local b=$!
	track_pid $b
	wait $a
	wait $b
	[ "$(wc -l < "$BATS_TEST_TMPDIR/count")" = 1 ]
	[ "$(cat "$BATS_TEST_TMPDIR/proj/a.out")" = done ]
	[ "$(cat b.out)" = done ]
	cat "$BATS_TEST_TMPDIR/proj/a.err" b.err | grep -q '^cashet: waited for '
}

@test "redis down: one warning, the command runs, fast" {
	export CASHET_REMOTE="redis://127.0.0.1:$(free_port)/0"
	local t0 t1
	t0=$(date +%s%N)
	run --separate-stderr cashet exec -- sh -c "$(counted 'echo ran')"
	t1=$(date +%s%N)
	assert_success
	assert_output ran
	[ "$(grep -c . <<<"$stderr")" = 1 ]
	[[ "$stderr" == "cashet: warning: remote $CASHET_REMOTE: "*"; working locally" ]]
	[ $(((t1 - t0) / 1000000)) -lt 2000 ]
	# stored locally all the same
	run --separate-stderr cashet exec -- sh -c "$(counted 'echo ran')"
	assert_output ran
	[ "$(run_count)" = 1 ]
	# a bad URL is a warning too, not an error
	run --separate-stderr cashet exec --remote redis://:notaport -- echo hi
	assert_success
	assert_output hi
	[[ "$stderr" == "cashet: warning: remote redis://:notaport: "*"; working locally" ]]
}

@test "redis slow (accepts, never answers): one warning after the timeout" {
	local port
	port=$(free_port)
	blackhole "$port"
	local t0 t1
	t0=$(date +%s%N)
	run --separate-stderr cashet exec --remote "redis://127.0.0.1:$port/2" -- sh -c "$(counted 'echo ran')"
	t1=$(date +%s%N)
	assert_success
	assert_output ran
	[ "$stderr" = "cashet: warning: remote redis://127.0.0.1:$port/2: timed out after 500 ms; working locally" ]
	[ $(((t1 - t0) / 1000000)) -lt 2000 ]
}

@test "a lock whose owner is gone expires, and the waiter runs the command" {
	CASHET_REMOTE= cashet exec -- sh -c "$(counted 'echo ran')" > /dev/null
	local hash fp
	hash=$(last_hash)
	fp=$(cashet show --json "$hash" | json_field 'j["fingerprint"]')
	cashet rm "$hash" > /dev/null
	rcli set "cashet:v1:lock:$fp" someone-else PX 1000 > /dev/null
	local t0 t1
	t0=$(date +%s%N)
	run cashet exec -- sh -c "$(counted 'echo ran')"
	t1=$(date +%s%N)
	assert_success
	assert_output ran
	[ "$(run_count)" = 2 ]
	[ $(((t1 - t0) / 1000000)) -ge 700 ]
	run rcli get "cashet:v1:fp:$fp"
	assert_output "$(last_hash)"
}

@test "an archive over the size limit is not sent, with a note" {
	head -c 4096 /dev/urandom > big
	CASHET_REMOTE_MAX_BYTES=1000 run --separate-stderr cashet exec -i big -o copy -- cp big copy
	assert_success
	[[ "$stderr" == "cashet: note: run "*" not sent to $CASHET_REMOTE: its archive ("*" bytes) is over the limit of 1000 bytes" ]]
	run rcli keys 'cashet:*'
	assert_output ''
}

@test "runs fetched through Redis never make a replay write through a symlink another run left" {
	links_through_remote
}
