# Shared set-up for the CLI tests: each test runs in its own empty
# directory with the cashet binary from this checkout first on PATH.
bats_load_library bats-support
bats_load_library bats-assert
bats_require_minimum_version 1.5.0

# CASHET_TEST_BUILD points the suite at another build (a directory holding
# cashet and cashet-git.so); by default the binary of this checkout is used.
CASHET_BUILD="${CASHET_TEST_BUILD:-$(cd "$BATS_TEST_DIRNAME/../.." && pwd)}"
export PATH="$CASHET_BUILD:$PATH"

common_setup() {
	unset CASHET_DIR CASHET_LOG
	export CASHET_RETRY_BASE_MS=10
	export RUNS_COUNT="$BATS_TEST_TMPDIR/runs.count"
	# stdin is part of the fingerprint: never inherit whatever bats was given.
	exec </dev/null
	cd "$BATS_TEST_TMPDIR" || return 1
	mkdir -p proj && cd proj || return 1
}

setup() {
	common_setup
}

# A command that counts its own runs, so a test can tell a hit (count
# unchanged) from a miss. The count is kept outside the project: a file
# written inside it and not declared would be named on stderr after each
# run (observed inputs).
# Its path comes from RUNS_COUNT, read under a name built at run time: a
# variable the code names literally ($RUNS_COUNT, printenv RUNS_COUNT) is
# part of the key, and the counter is
# the tests' side channel, not an input (a test that plays a second
# machine points it elsewhere).
counted() {
	echo "echo x >> \"\$(printenv \$(echo RUNS_COUNT))\"; $*"
}

run_count() {
	if [ -f "$RUNS_COUNT" ]; then wc -l < "$RUNS_COUNT" | tr -d ' '; else echo 0; fi
}

teardown() {
	kill_started
	sanitizer_check
}

# Under the sanitizer build (make SANITIZE=... check), a report from any
# cashet process the test started fails that test, even when the test
# expected a failing exit code: tests/run-all.sh sends the reports to files
# in CASHET_SAN_LOG. They are shown, then moved aside for the next test.
# Files that define their own teardown call this after stopping servers.
sanitizer_check() {
	local f found=0
	[ -n "${CASHET_SAN_LOG:-}" ] || return 0
	for f in "$CASHET_SAN_LOG"/report.*; do
		[ -f "$f" ] || continue
		found=1
		echo "sanitizer report $f:" >&2
		cat "$f" >&2
		mkdir -p "$CASHET_SAN_LOG/seen" && mv "$f" "$CASHET_SAN_LOG/seen/"
	done
	[ "$found" -eq 0 ]
}

# --- helpers added for the CLI suite ----------------------------------------

# Background work a test starts is registered here (a pid or a process group
# as -PGID) and killed by teardown, so a failing test never leaves sleepers.
track_pid() {
	echo "$1" >> "$BATS_TEST_TMPDIR/started.pids"
}

kill_started() {
	local p
	[ -f "$BATS_TEST_TMPDIR/started.pids" ] || return 0
	while read -r p; do
		[ -n "$p" ] && kill -KILL -- "$p" 2>/dev/null
	done < "$BATS_TEST_TMPDIR/started.pids"
	rm -f "$BATS_TEST_TMPDIR/started.pids"
	return 0
}

# The verdict of one exec: prints "hit" (replayed) or "miss" (it ran), read
# from the --report-fd JSON line. The command's own output is discarded.
verdict() {
	cashet exec --report-fd 3 "$@" 3>&1 >/dev/null 2>/dev/null |
		python3 -c 'import json,sys; v=json.loads(sys.stdin.readline())["verdict"]; print("hit" if v in ("hit","waited") else "miss")'
}

# Hash of the newest run (full 40 hex digits).
last_hash() {
	cashet log -n 1 --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["hash"])'
}

# An SQL condition on index.db's runs: the run's arguments are the words
# of $1 (the index keeps argv, NUL after each, not the command line).
argv_is() {
	printf "argv = CAST(replace('%s ', ' ', char(0)) AS BLOB)" "$1"
}

# Number of runs in the store.
log_count() {
	cashet log --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))'
}

# json_field EXPR: evaluates a Python expression on the JSON read from stdin (j).
json_field() {
	python3 -c 'import json,sys; j=json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"
}

# wait_for_file FILE [TENTHS]: waits until FILE exists and is not empty
# (default at most 10 s); fails otherwise.
wait_for_file() {
	local i=0 max=${2:-100}
	while [ ! -s "$1" ]; do
		i=$((i + 1))
		[ "$i" -gt "$max" ] && return 1
		sleep 0.1
	done
}

# pid_gone PID: true once PID has exited. A zombie counts as gone: it is
# dead, and reaping orphans is init's business, which may be slow.
pid_gone() {
	local i=0 state
	while kill -0 "$1" 2>/dev/null; do
		# the process may exit between kill -0 and the read: sed then
		# fails, which under bats' set -e must not fail the caller
		state=$(sed -E 's/^.*\) (.).*$/\1/' "/proc/$1/stat" 2>/dev/null || true)
		[ "$state" = Z ] && return 0
		i=$((i + 1))
		[ "$i" -gt 30 ] && return 1
		sleep 0.1
	done
}

# --- helpers added for the script and why tests -----------------------------

# would ARGS...: what `cashet why ARGS...` says, without running anything:
# "hit" (exit 0), "run" (exit 1), or "error N" for any other exit code.
would() {
	local rc=0
	cashet why "$@" > /dev/null 2>&1 || rc=$?
	case $rc in
	0) echo hit ;;
	1) echo run ;;
	*) echo "error $rc" ;;
	esac
}

# source_parts: the script, source and dep parts of the newest run, one
# "KIND NAME" line each, in the order the run recorded them.
source_parts() {
	cashet show --json "$(last_hash)" | python3 -c '
import json, sys
for p in json.load(sys.stdin)["parts"]:
    if p["kind"] in ("script", "source", "dep"):
        print(p["kind"], p["name"])'
}

# direct_python3: puts the python3 interpreter itself first on PATH, in place
# of a version-manager shim (a shell script that takes ~0.1 s to start), for
# files that run python3 a lot. Call it from setup_file: tests inherit PATH.
direct_python3() {
	local py
	py=$(python3 -c 'import sys; print(sys.executable)' 2> /dev/null) || return 0
	[ -x "$py" ] || return 0
	mkdir -p "$BATS_FILE_TMPDIR/bin" && ln -sf "$py" "$BATS_FILE_TMPDIR/bin/python3"
	export PATH="$BATS_FILE_TMPDIR/bin:$PATH"
}

# A TCP port nobody listens on right now.
free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# serve_start DIR TOKEN [OPTIONS...]: `cashet serve` for the store in DIR
# on a free port of 127.0.0.1 (TOKEN "" for none); sets PORT, URL and
# SERVER_PID. Started from a subshell, so the test's shell does not
# report the kill.
serve_start() {
	local dir=$1 token=$2 i=0
	shift 2
	PORT=$(free_port)
	URL="http://127.0.0.1:$PORT"
	[ -n "$token" ] && set -- --token "$token" "$@"
	(cd "$dir" || exit 1
		cashet serve --listen "127.0.0.1:$PORT" "$@" 2> "$BATS_TEST_TMPDIR/serve.$PORT.log" &
		echo $! > "$BATS_TEST_TMPDIR/serve.pid")
	SERVER_PID=$(cat "$BATS_TEST_TMPDIR/serve.pid")
	track_pid "$SERVER_PID"
	until curl -s -o /dev/null "$URL/stats"; do
		i=$((i + 1))
		[ "$i" -gt 100 ] && { cat "$BATS_TEST_TMPDIR/serve.$PORT.log" >&2; return 1; }
		sleep 0.05
	done
}

# Every tracked process gets TERM first, as a user would stop a server;
# kill_started is the net.
stop_started() {
	local p
	if [ -f "$BATS_TEST_TMPDIR/started.pids" ]; then
		while read -r p; do
			kill -TERM "$p" 2> /dev/null && pid_gone "$p"
		done < "$BATS_TEST_TMPDIR/started.pids"
	fi
	kill_started
}

# blackhole PORT: a server on 127.0.0.1:PORT that accepts connections and
# never answers (a remote that hangs); tracked, so teardown stops it.
blackhole() {
	python3 -c '
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(8)
open(sys.argv[2], "w").write("up")
held = []
while True:
    held.append(s.accept())' "$1" "$BATS_TEST_TMPDIR/blackhole.up" 3>&- &
	track_pid $!
	wait_for_file "$BATS_TEST_TMPDIR/blackhole.up"
}

# --- empty strings in a run's record ------------------------------------------

# empty_values_run: a run whose record holds empty strings: an argument,
# the name, and the value of the declared variable EMPTY.
empty_values_run() {
	EMPTY= cashet exec -n '' -e EMPTY -- printf '%s\n' '' x > /dev/null
}

# assert_empty_values: the store here has that run with its empty strings
# intact, as log, show and why read them back.
assert_empty_values() {
	run cashet log
	assert_success
	[[ "${lines[1]}" == *"  [] printf '%s\n' '' x" ]]
	run cashet show --json "$(last_hash)"
	assert_success
	[ "$(echo "$output" | json_field 'j["argv"] == ["printf", "%s\\n", "", "x"] and j["name"] == ""')" = True ]
	EMPTY=1 run cashet why -n '' -e EMPTY -- printf '%s\n' '' x
	assert_failure 1
	assert_line '  env EMPTY changed: "" -> 1'
	[ "$(EMPTY= would -n '' -e EMPTY -- printf '%s\n' '' x)" = hit ]
}

# Runs that try to make a replay write through a symlink: for link and
# link2, run A leaves the link (absolute and relative target), run B
# writes a file under the link's name (PWN, not in the key, makes B work
# here). make_link_runs makes them; check_link_replays, in another project
# that got them (an archive, a remote), replays A and expects B's replay
# refused and nothing written outside.
# PWN is read under a name built at run time: not named by the code, it is
# not in the key, so the harmless replay finds the run made with it.
LINK_B='if [ -n "$(printenv $(echo PWN))" ]; then mkdir -p "$0" && echo pwned > "$0/x"; fi'

make_link_runs() {
	outside="$BATS_TEST_TMPDIR/outside"
	mkdir -p "$outside"
	for l in link link2; do
		target=$outside
		[ "$l" = link2 ] && target=../outside
		cashet exec -o "$l" -- ln -s "$target" "$l"
		rm "$l"
		PWN=1 cashet exec -o "$l/x" -- sh -c "$LINK_B" "$l"
		rm -r "$l"
	done
}

check_link_replays() {
	for l in link link2; do
		target=$outside
		[ "$l" = link2 ] && target=../outside
		[ "$(verdict -o "$l" -- ln -s "$target" "$l")" = hit ]
		[ -L "$l" ]
		run --separate-stderr cashet exec -o "$l/x" -- sh -c "$LINK_B" "$l"
		[[ "$stderr" == *"refusing to restore $PWD/$l/x: $l is a symbolic link"* ]] || { echo "$stderr"; false; }
		[ ! -e "$outside/x" ]
	done
	run ls -A "$outside"
	assert_output ""
}

# The same through the remote in CASHET_REMOTE (other_machine switches).
links_through_remote() {
	make_link_runs
	other_machine
	check_link_replays
}
