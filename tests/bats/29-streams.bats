#!/usr/bin/env bats
# The command's streams: a piped stdin that does not end (or not soon) is
# streamed to the command while it is hashed, not spooled first; stdout and
# stderr are replayed in the order the command wrote them.

load helper

setup() {
	common_setup
	cashet init > /dev/null
}

# raw_verdict ARGS...: the report's verdict as is (ran, hit, not-stored, ...)
raw_verdict() {
	cashet exec --report-fd 3 "$@" 3>&1 >/dev/null 2>/dev/null | json_field 'j["verdict"]'
}

@test "yes | cashet exec -- head -1 finishes at once, uncached with a note" {
	run -0 --separate-stderr timeout 10 sh -c 'yes | cashet exec -- head -1'
	[ "$output" = y ]
	[ "$stderr" = "cashet: note: result not stored: the command finished before its stdin did" ]
	[ "$(yes | raw_verdict -- head -1)" = not-stored ]
	[ "$(cashet log --json | json_field 'len(j)')" = 0 ]
}

@test "the command reads a flowing stdin while it flows (it is not spooled to its end first)" {
	# the producer ends only after the command has read its first line:
	# with the input spooled first, neither would ever go on
	flag="$BATS_TEST_TMPDIR/flag"
	run -0 --separate-stderr timeout 10 sh -c \
		"(echo start; while [ ! -e '$flag' ]; do sleep 0.05; done; echo end) |
		 cashet exec -- sh -c 'read l; echo \$l; touch \"$flag\"; cat'"
	[ "$output" = "$(printf 'start\nend')" ]
	[ "$stderr" = "" ]
}

@test "a long piped input is streamed and stored, then replayed; another input is a miss" {
	[ "$(seq 1 300000 | verdict -- wc -l)" = miss ]
	[ "$(seq 1 300000 | raw_verdict -- wc -l)" = hit ]
	run -0 --separate-stderr sh -c 'seq 1 300000 | cashet exec -- wc -l'
	[ "$output" = 300000 ]
	[ "$(seq 2 300000 | verdict -- wc -l)" = miss ]
	[ "$(seq 1 300000 | verdict -- wc -l)" = hit ]
	[ "$(cashet log --json | json_field 'len(j)')" = 2 ]
}

@test "a slow producer's input is streamed the first time, read to its end for the lookup after" {
	slow() { echo a; sleep 0.6; echo b; }
	[ "$(slow | raw_verdict -- cat)" = ran ]
	[ "$(slow | raw_verdict -- cat)" = hit ]
	[ "$(slow | cashet exec -- cat 2>/dev/null)" = "$(printf 'a\nb')" ]
	[ "$({ echo a; sleep 0.6; echo c; } | raw_verdict -- cat)" = ran ]
}

@test "stdin-limit: a longer pipe runs uncached, whole, with one warning" {
	cashet config stdin-limit 1500K
	[ "$(seq 1 300000 | raw_verdict -- wc -l)" = ran ]
	run -0 --separate-stderr sh -c 'seq 1 300000 | cashet exec --report-fd 3 -- wc -l 3>report'
	[ "$output" = 300000 ]
	[ "$stderr" = "cashet: warning: stdin is longer than stdin-limit; running the command without caching it" ]
	[ "$(json_field 'j["verdict"]' < report)" = not-stored ]
	run -2 --separate-stderr cashet config stdin-limit lots
	[ "$stderr" = "cashet config: stdin-limit: invalid size 'lots' (expected e.g. 500M, 2G) (see 'cashet config --help')" ]
}

@test "stdout and stderr are replayed in the order the command wrote them" {
	cmd='echo a; sleep 0.2; echo b >&2; sleep 0.2; echo c; sleep 0.2; echo d >&2; sleep 0.2; echo e'
	cashet exec -- sh -c "$cmd" > fresh 2>&1
	[ "$(cat fresh)" = "$(printf 'a\nb\nc\nd\ne')" ]
	[ "$(verdict -- sh -c "$cmd")" = hit ]
	cashet exec -- sh -c "$cmd" > replayed 2>&1
	cmp fresh replayed
	# each stream alone stays whole
	run -0 --separate-stderr cashet exec -- sh -c "$cmd"
	[ "$output" = "$(printf 'a\nc\ne')" ]
	[ "$stderr" = "$(printf 'b\nd')" ]
	# the order is part of the run's git tree: a rebuilt index keeps it
	cashet reindex > /dev/null
	cashet exec -- sh -c "$cmd" > replayed 2>&1
	cmp fresh replayed
	[ "$(cashet show --json "$(last_hash)" | json_field '[f["kind"] for f in j["files"]]')" = "['stdout', 'stderr', 'order']" ]
}

@test "a run with output files replays its streams in order too, whatever the files hold" {
	# an output whose text reads like the order record ("o N" lines)
	cmd='printf "o 1\ne 9\n" > out.txt; echo a; sleep 0.2; echo b >&2; sleep 0.2; echo c'
	cashet exec -o out.txt -- sh -c "$cmd" > fresh 2>&1
	[ "$(cat fresh)" = "$(printf 'a\nb\nc')" ]
	rm out.txt
	[ "$(verdict -o out.txt -- sh -c "$cmd")" = hit ]
	rm out.txt
	cashet exec -o out.txt -- sh -c "$cmd" > replayed 2>&1
	cmp fresh replayed
	[ "$(cat out.txt)" = "$(printf 'o 1\ne 9')" ]
}

@test "a run that wrote to one stream only keeps no order" {
	cashet exec -- sh -c 'echo a; echo b' > /dev/null
	[ "$(cashet show --json "$(last_hash)" | json_field '[f["kind"] for f in j["files"]]')" = "['stdout', 'stderr']" ]
}
