#!/usr/bin/env bats
# cashet exec: the first run executes, the second replays.
# A replay is byte-exact (binary, no trailing newline, large outputs) and
# gives back the exit code; failed runs are recorded but run again unless
# --cache-failures; --force runs and replaces what is replayed; --no-cache
# runs and stores nothing. Also: -v / CASHET_LOG, tags and names (stored,
# not part of the key), --ttl, --timeout (exit 124, whole process group
# killed), --retries, and the usage errors (exit 2, one line), 126/127 for
# commands that cannot be executed, and "--" handling.

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

# --- replay is byte-for-byte ------------------------------------------------

@test "binary output without a trailing newline is replayed byte for byte" {
	printf 'a\000b\377\r\n\001end' > expected.out
	printf 'err\000\376no-newline' > expected.err
	cmd="$(counted 'cat expected.out; cat expected.err >&2')"
	cashet exec -- sh -c "$cmd" > o1 2> e1
	cashet exec -- sh -c "$cmd" > o2 2> e2
	[ "$(run_count)" = 1 ]
	cmp expected.out o1
	cmp expected.out o2
	# the first run also said "created a new store"; the replay says nothing else
	grep -q 'created a new store' e1
	cmp expected.err e2
}

@test "output larger than the inline limit (64 KiB) is replayed byte for byte" {
	head -c 300000 /dev/urandom > big.bin
	cashet init > /dev/null
	cashet exec -- sh -c "$(counted 'cat big.bin')" > o1
	cashet exec -- sh -c "$(counted 'cat big.bin')" > o2
	[ "$(run_count)" = 1 ]
	cmp big.bin o1
	cmp big.bin o2
}

@test "empty output is replayed as empty" {
	cashet init > /dev/null
	cashet exec -- sh -c "$(counted 'true')" > o1 2> e1
	cashet exec -- sh -c "$(counted 'true')" > o2 2> e2
	[ "$(run_count)" = 1 ]
	[ ! -s o2 ]
	[ ! -s e2 ]
}

# --- exit codes ---------------------------------------------------------------

@test "a failed run is recorded but not replayed: it runs again" {
	cashet init > /dev/null
	run cashet exec -- sh -c "$(counted 'echo bad; exit 3')"
	assert_failure 3
	assert_output "bad"
	run cashet exec -- sh -c "$(counted 'echo bad; exit 3')"
	assert_failure 3
	[ "$(run_count)" = 2 ]
	# both runs are in the log as failed
	run cashet log --status failed --json
	assert_success
	[ "$(echo "$output" | json_field 'len(j)')" = 2 ]
	[ "$(echo "$output" | json_field 'j[0]["exit"]')" = 3 ]
	[ "$(echo "$output" | json_field 'j[0]["status"]')" = failed ]
}

@test "--cache-failures replays a failed run with its exit code and streams" {
	cashet init > /dev/null
	run --separate-stderr cashet exec --cache-failures -- sh -c "$(counted 'echo out; echo err >&2; exit 3')"
	assert_failure 3
	run --separate-stderr cashet exec --cache-failures -- sh -c "$(counted 'echo out; echo err >&2; exit 3')"
	assert_failure 3
	assert_output "out"
	[ "$stderr" = err ]
	[ "$(run_count)" = 1 ]
}

@test "--cache-failures replays a failed run that was stored without it" {
	cashet init > /dev/null
	run cashet exec -- sh -c "$(counted 'exit 4')"
	assert_failure 4
	# the failed run exists: with --cache-failures it is replayed
	run cashet exec --cache-failures -- sh -c "$(counted 'exit 4')"
	assert_failure 4
	[ "$(run_count)" = 1 ]
}

@test "a command killed by a signal exits 128+N" {
	cashet init > /dev/null
	run cashet exec -- sh -c 'kill -USR1 $$'
	assert_failure 138
}

@test "a successful run replays exit 0 even when stderr is not empty" {
	cashet init > /dev/null
	run cashet exec -- sh -c "$(counted 'echo warn >&2')"
	assert_success
	run cashet exec -- sh -c "$(counted 'echo warn >&2')"
	assert_success
	assert_output warn
	[ "$(run_count)" = 1 ]
}

# --- --force and --no-cache ------------------------------------------------------

@test "--force runs again and the new run is the one replayed afterwards" {
	cashet init > /dev/null
	# X is neither declared (-e) nor named by the code (the name is built
	# at run time): not in the key
	X=one run cashet exec -- sh -c "$(counted 'printenv $(echo X)')"
	assert_output one
	X=two run cashet exec -- sh -c "$(counted 'printenv $(echo X)')"
	assert_output one
	[ "$(run_count)" = 1 ]
	X=two run cashet exec --force -- sh -c "$(counted 'printenv $(echo X)')"
	assert_success
	assert_output two
	[ "$(run_count)" = 2 ]
	X=three run cashet exec -- sh -c "$(counted 'printenv $(echo X)')"
	assert_output two
	[ "$(run_count)" = 2 ]
	[ "$(log_count)" = 2 ]
}

@test "--no-cache always runs and stores nothing" {
	cashet init > /dev/null
	cashet exec -- sh -c "$(counted 'echo a')" > /dev/null
	[ "$(log_count)" = 1 ]
	run cashet exec --no-cache -- sh -c "$(counted 'echo a')"
	assert_success
	assert_output a
	run cashet exec --no-cache -- sh -c "$(counted 'echo a')"
	assert_output a
	[ "$(run_count)" = 3 ]
	[ "$(log_count)" = 1 ]
	run cashet exec --no-cache -- sh -c "$(counted 'echo new command')"
	[ "$(run_count)" = 4 ]
	[ "$(log_count)" = 1 ]
}

# --- verbosity -------------------------------------------------------------------

@test "-v says miss, stored and hit with the run hash on stderr" {
	cashet init > /dev/null
	run --separate-stderr cashet exec -v -- echo hi
	assert_success
	assert_output hi
	[[ "${stderr_lines[0]}" =~ ^cashet:\ miss\ [0-9a-f]{32}$ ]]
	h=$(last_hash)
	# (other explanatory lines may come in between)
	[[ "${stderr_lines[-1]}" == "cashet: stored ${h:0:12} (exit 0)" ]]
	run --separate-stderr cashet exec -v -- echo hi
	assert_success
	assert_output hi
	[ "${#stderr_lines[@]}" = 1 ]
	[[ "${stderr_lines[0]}" =~ ^cashet:\ hit\ ${h:0:12}\  ]]
}

@test "--report-fd N writes the verdict as one JSON line: ran, hit, not-stored" {
	cashet init > /dev/null
	run --separate-stderr cashet exec --report-fd 3 -- sh -c 'echo hi; exit 3' 3> report
	assert_failure 3
	assert_output hi
	h=$(last_hash)
	[ "$(json_field 'j["verdict"], j["exit"], j["run"], j["note"]' < report)" = "('ran', 3, '$h', None)" ]
	[ "$(wc -l < report)" = 1 ]
	# a failure is stored, and replayed only with --cache-failures
	run cashet exec --report-fd 3 -- sh -c 'echo hi; exit 3' 3> report
	[ "$(json_field 'j["verdict"]' < report)" = ran ]
	h=$(last_hash)
	run cashet exec --cache-failures --report-fd 3 -- sh -c 'echo hi; exit 3' 3> report
	assert_failure 3
	assert_output hi
	[ "$(json_field 'j["verdict"], j["exit"], j["run"]' < report)" = "('hit', 3, '$h')" ]
	run -127 --separate-stderr cashet exec --report-fd 3 -- no-such-command-here 3> report
	assert_failure 127
	[ "$(json_field 'j["verdict"], j["exit"], j["run"], j["note"]' < report)" = "('not-stored', 127, None, 'no-such-command-here: command not found')" ]
	run --separate-stderr cashet exec --report-fd 7 -- true
	assert_failure 2
	[ "$stderr" = "cashet exec: --report-fd: '7' is not an open file descriptor (see 'cashet exec --help')" ]
}

@test "CASHET_LOG=1 is the same as -v; CASHET_LOG=0 and the default are silent" {
	cashet init > /dev/null
	CASHET_LOG=1 run --separate-stderr cashet exec -- echo hi
	[[ "$stderr" == *"cashet: miss "* ]]
	CASHET_LOG=1 run --separate-stderr cashet exec -- echo hi
	[[ "$stderr" =~ ^cashet:\ hit\ [0-9a-f]{12} ]]
	CASHET_LOG=0 run --separate-stderr cashet exec -- echo hi
	assert_output hi
	[ -z "$stderr" ]
	run --separate-stderr cashet exec -- echo hi
	assert_output hi
	[ -z "$stderr" ]
}

# --- tags and names --------------------------------------------------------------

@test "--tag and --name are stored but are not part of the key" {
	cashet init > /dev/null
	run cashet exec -n build -t env=ci -t nightly -- sh -c "$(counted 'echo t')"
	assert_success
	run cashet exec -n other -t env=dev -- sh -c "$(counted 'echo t')"
	assert_success
	assert_output t
	[ "$(run_count)" = 1 ]
	[ "$(log_count)" = 1 ]
	h=$(last_hash)
	run cashet show "$h"
	assert_line "name        build"
	assert_line "tags        env=ci nightly"
	run cashet log
	assert_line --index 1 --partial "[build] sh -c "
	cashet log --json | json_field 'j[0]["tags"]' > tags
	[ "$(cat tags)" = "{'env': 'ci', 'nightly': True}" ]
}

# --- ttl -------------------------------------------------------------------------

@test "--ttl: the run is replayed within it and expires TTL after it started" {
	cashet init > /dev/null
	# 30 s: the second call is inside it however slow the machine is
	[ "$(verdict --ttl 30s -- sh -c "$(counted 'echo t')")" = miss ]
	[ "$(verdict --ttl 30s -- sh -c "$(counted 'echo t')")" = hit ]
	[ "$(run_count)" = 1 ]
	run cashet show --json "$(last_hash)"
	echo "$output" | json_field 'j["expires"]' > expires
	echo "$output" | json_field 'j["created"]' > created
	python3 - <<'PY'
from datetime import datetime
t = lambda f: datetime.strptime(open(f).read().strip(), "%Y-%m-%dT%H:%M:%S.%fZ")
assert (t("expires") - t("created")).total_seconds() == 30, (t("created"), t("expires"))
PY
}

@test "--ttl: an expired run runs again" {
	cashet init > /dev/null
	[ "$(verdict --ttl 1s -- sh -c "$(counted 'echo t')")" = miss ]
	sleep 1.2
	[ "$(verdict --ttl 1s -- sh -c "$(counted 'echo t')")" = miss ]
	[ "$(run_count)" = 2 ]
}

@test "a run without --ttl is replayed by a later exec with --ttl" {
	cashet init > /dev/null
	cashet exec -- sh -c "$(counted 'echo t')" > /dev/null
	[ "$(verdict --ttl 1h -- sh -c "$(counted 'echo t')")" = hit ]
}

# --- timeout -----------------------------------------------------------------------

@test "--timeout kills the whole process group and exits 124 quickly" {
	cashet init > /dev/null
	t0=$(date +%s%N)
	run --separate-stderr cashet exec --timeout 0.3s -- sh -c 'sleep 30 & echo $! > bg.pid; echo started; sleep 5'
	t1=$(date +%s%N)
	assert_failure 124
	assert_output started
	# generous bound: the command itself would take 5 s
	[ $(( (t1 - t0) / 1000000 )) -lt 3000 ]
	[ -s bg.pid ]
	track_pid "$(cat bg.pid)"
	pid_gone "$(cat bg.pid)"
	# a timed-out run is recorded as failed with exit 124, not replayed
	run cashet log --json
	[ "$(echo "$output" | json_field 'j[0]["status"], j[0]["exit"]')" = "('failed', 124)" ]
}

@test "--timeout does not touch a command that finishes in time" {
	cashet init > /dev/null
	run cashet exec --timeout 10s -- sh -c "$(counted 'echo quick')"
	assert_success
	assert_output quick
	run cashet exec --timeout 10s -- sh -c "$(counted 'echo quick')"
	assert_output quick
	[ "$(run_count)" = 1 ]
}

# --- retries ----------------------------------------------------------------------------

@test "--retries 2: a command failing twice then succeeding succeeds after 3 attempts" {
	cashet init > /dev/null
	cat > flaky.sh <<-'SH'
	#!/bin/sh
	n=$(cat state 2>/dev/null || echo 0); n=$((n + 1)); echo $n > state
	if [ $n -ge 3 ]; then echo "ok on $n"; exit 0; fi
	echo "fail $n" >&2; exit 1
	SH
	chmod +x flaky.sh
	run --separate-stderr cashet exec -v --retries 2 -- ./flaky.sh
	assert_success
	[ "$(cat state)" = 3 ]
	assert_output "ok on 3"
	[[ "$stderr" == *"retrying (1 of 2)"* ]]
	[[ "$stderr" == *"retrying (2 of 2)"* ]]
	# the successful attempt is the one stored and replayed
	run cashet exec --retries 2 -- ./flaky.sh
	assert_success
	assert_output "ok on 3"
	[ "$(cat state)" = 3 ]
}

@test "--retries N gives up after N+1 attempts with the last exit code" {
	cashet init > /dev/null
	run cashet exec --retries 2 -- sh -c "$(counted 'exit 5')"
	assert_failure 5
	[ "$(run_count)" = 3 ]
	[ "$(log_count)" = 1 ]
}

# --- usage errors ------------------------------------------------------------------

@test "unknown option: exit 2 with a one-line 'cashet exec:' message" {
	run --separate-stderr cashet exec --bogus -- true
	assert_failure 2
	[ "${#stderr_lines[@]}" = 1 ]
	[[ "$stderr" == "cashet exec: unknown option '--bogus'"* ]]
	[ ! -d .cashet ]
}

@test "bad option values: exit 2 with a one-line message naming the option" {
	for args in "--ttl xx" "--timeout soon" "--retries x" "--retries -1" "--retries 101" "--kill-after z"; do
		# shellcheck disable=SC2086
		run --separate-stderr cashet exec $args -- true
		assert_failure 2
		[ "${#stderr_lines[@]}" = 1 ]
		[[ "$stderr" == "cashet exec: ${args%% *}"* ]]
	done
	run --separate-stderr cashet exec -t =v -- true
	assert_failure 2
	[[ "$stderr" == "cashet exec: invalid tag '=v'"* ]]
	[ ! -d .cashet ]
}

@test "no command: exit 2" {
	for args in "" "--" "-v" "-v --" "-i x"; do
		# shellcheck disable=SC2086
		run --separate-stderr cashet exec $args
		assert_failure 2
		[ "${#stderr_lines[@]}" = 1 ]
		[[ "$stderr" == "cashet exec: "* ]]
	done
	[ ! -d .cashet ]
}

@test "command not found: exit 127, a message, nothing stored" {
	cashet init > /dev/null
	run -127 --separate-stderr cashet exec -- no-such-command-xyz arg
	assert_failure 127
	[ "$stderr" = "cashet: no-such-command-xyz: command not found" ]
	[ "$(log_count)" = 0 ]
	run -127 cashet exec -- ./missing.sh
	assert_failure 127
	[ "$(log_count)" = 0 ]
}

@test "command not executable: exit 126, nothing stored" {
	cashet init > /dev/null
	echo 'echo hi' > noexec.sh
	run --separate-stderr cashet exec -- ./noexec.sh
	assert_failure 126
	[[ "$stderr" == "cashet: ./noexec.sh: "* ]]
	[ "$(log_count)" = 0 ]
}

@test "a command path naming a FIFO or a directory: exit 126 at once, nothing stored" {
	cashet init > /dev/null
	mkfifo ff
	mkdir dd
	chmod +x ff dd
	# hashing the FIFO as the executable waited for a writer for ever
	run --separate-stderr timeout -k 2 10 cashet exec -- ./ff
	assert_failure 126
	[ "$stderr" = "cashet: ./ff: Permission denied" ]
	run --separate-stderr timeout -k 2 10 cashet exec -- ./dd
	assert_failure 126
	[ "$stderr" = "cashet: ./dd: Permission denied" ]
	[ "$(log_count)" = 0 ]
}

@test "a script without #! runs through sh, found in PATH or by its path, as execvp runs it" {
	cashet init > /dev/null
	mkdir bin
	printf 'echo "no shebang $1"\n' > bin/plain
	chmod +x bin/plain
	run cashet exec -- ./bin/plain a
	assert_success
	assert_output "no shebang a"
	PATH="$PWD/bin:$PATH" run cashet exec -- plain b
	assert_success
	assert_output "no shebang b"
	[ "$(PATH="$PWD/bin:$PATH" verdict -- plain b)" = hit ]
}

@test "options after the command belong to the command, with or without --" {
	cashet init > /dev/null
	run --separate-stderr cashet exec -- echo -v --force -n x
	assert_success
	assert_output -- "-v --force -n x"
	[ -z "$stderr" ]
	run --separate-stderr cashet exec echo -v --no-cache
	assert_success
	assert_output -- "-v --no-cache"
	[ -z "$stderr" ]
	# a second "--" is an argument of the command
	run cashet exec -- sh -c 'printf "[%s]" "$@"' sh -- a
	assert_output "[--][a]"
	# "--" and the options before it are not part of the command line
	run cashet log --json
	[ "$(echo "$output" | json_field 'sorted(r["cmd"] for r in j)[0]')" = "echo -v --force -n x" ]
}

@test "the same command with and without -- is the same run" {
	cashet init > /dev/null
	cashet exec -- sh -c "$(counted 'echo a')" > /dev/null
	cashet exec sh -c "$(counted 'echo a')" > /dev/null
	[ "$(run_count)" = 1 ]
}

@test "exec --help prints the usage on stdout and exits 0" {
	run --separate-stderr cashet exec --help
	assert_success
	assert_line --index 0 "usage: cashet exec [options] -- COMMAND [ARGS...]"
	[ -z "$stderr" ]
	[ ! -d .cashet ]
}

@test "an exec option without its value says it needs a value" {
	for opt in --ttl --timeout --retries --tag --name --input --output --env --store -i -o -e -t -n; do
		run --separate-stderr cashet exec "$opt"
		assert_failure 2
		[ "${#stderr_lines[@]}" = 1 ]
		[[ "$stderr" == "cashet exec: option '$opt' needs a value"* ]]
	done
}
