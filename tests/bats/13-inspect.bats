#!/usr/bin/env bats
# Looking at the store: log (table and JSON, filters), show (text and JSON),
# get (exact bytes of a stream or an output), rm, stats, hash prefixes and
# their errors, and how every command finds its store (walking up, --store,
# CASHET_DIR). The read-only commands never create a store.

load helper

setup() {
	common_setup
	cashet init > /dev/null
}

# Three runs with names, tags and statuses to filter on; oldest first.
three_runs() {
	cashet exec -n alpha -t env=ci -t nightly -- echo first > /dev/null
	cashet exec -n beta -t env=dev -- sh -c 'echo second; exit 2' > /dev/null || true
	cashet exec -t env=ci -- echo third > /dev/null
}

hashes_newest_first() {
	cashet log --json | python3 -c 'import json,sys; [print(r["hash"]) for r in json.load(sys.stdin)]'
}

@test "init: creates .cashet once, says so, and is idempotent" {
	cd "$BATS_TEST_TMPDIR" && mkdir fresh && cd fresh
	run cashet init
	assert_success
	assert_output "Initialized cashet store in $PWD/.cashet"
	[ -f .cashet/HEAD ]
	run cashet init
	assert_success
	assert_output "Store already exists in $PWD/.cashet"
}

@test "log: an empty store prints nothing (json: [])" {
	run --separate-stderr cashet log
	assert_success
	assert_output ""
	run cashet log --json
	assert_output "[]"
}

@test "log: a table with a header, newest first" {
	three_runs
	run cashet log
	assert_success
	[ "${#lines[@]}" = 4 ]
	assert_line --index 0 --regexp '^HASH +CREATED +STATUS +EXIT +DURATION +COMMAND$'
	assert_line --index 1 --regexp '^[0-9a-f]{12}  [0-9-]{10} [0-9:]{8}  ok +0 +[0-9.]+m?s  echo third$'
	assert_line --index 2 --regexp '^[0-9a-f]{12}  .*  failed +2 +.*  \[beta\] sh -c '"'"'echo second; exit 2'"'"'$'
	assert_line --index 3 --regexp '^[0-9a-f]{12}  .*  ok +0 +.*  \[alpha\] echo first$'
	# the table's hash column is the prefix of the JSON hash
	first=$(hashes_newest_first | head -n 1)
	[[ "${lines[1]}" == "${first:0:12}  "* ]]
}

@test "log -n limits, --name, --cmd, --status filter" {
	three_runs
	run cashet log -n 1
	[ "${#lines[@]}" = 2 ]
	assert_line --index 1 --partial "echo third"
	run cashet log --limit 2 --json
	[ "$(echo "$output" | json_field 'len(j)')" = 2 ]
	run cashet log --name beta
	[ "${#lines[@]}" = 2 ]
	assert_line --index 1 --partial "[beta]"
	run cashet log --cmd 'echo th'
	[ "${#lines[@]}" = 2 ]
	assert_line --index 1 --partial "echo third"
	run cashet log --cmd 'second; exit'
	[ "${#lines[@]}" = 2 ]
	run cashet log --status failed --json
	[ "$(echo "$output" | json_field '[r["name"] for r in j]')" = "['beta']" ]
	run cashet log --status ok --json
	[ "$(echo "$output" | json_field '[r["cmd"] for r in j]')" = "['echo third', 'echo first']" ]
	run cashet log --name nobody
	assert_success
	assert_output ""
}

@test "log --tag K=V and --tag K are AND-ed" {
	three_runs
	run cashet log --tag env=ci --json
	[ "$(echo "$output" | json_field '[r["cmd"] for r in j]')" = "['echo third', 'echo first']" ]
	run cashet log --tag nightly --json
	[ "$(echo "$output" | json_field '[r["cmd"] for r in j]')" = "['echo first']" ]
	run cashet log --tag env=ci --tag nightly --json
	[ "$(echo "$output" | json_field '[r["cmd"] for r in j]')" = "['echo first']" ]
	run cashet log --tag env=dev --tag nightly --json
	assert_output "[]"
	run cashet log --tag env --json
	[ "$(echo "$output" | json_field 'len(j)')" = 3 ]
	run cashet log -t env=dev --status failed --json
	[ "$(echo "$output" | json_field '[r["name"] for r in j]')" = "['beta']" ]
}

@test "log --json is valid JSON with the documented fields" {
	three_runs
	run --separate-stderr cashet log --json
	assert_success
	echo "$output" | python3 -c 'import json,sys; json.load(sys.stdin)'
	[ "$(echo "$output" | json_field 'sorted(j[0].keys())')" = "['cmd', 'created', 'duration_ms', 'exit', 'hash', 'name', 'status', 'tags']" ]
	[ "$(echo "$output" | json_field 'j[2]["name"], j[2]["status"], j[2]["exit"], j[2]["tags"]')" = "('alpha', 'ok', 0, {'env': 'ci', 'nightly': True})" ]
	[ "$(echo "$output" | json_field 'j[1]["status"], j[1]["exit"]')" = "('failed', 2)" ]
	[ "$(echo "$output" | json_field 'j[0]["name"]')" = None ]
	[[ "$(echo "$output" | json_field 'j[0]["created"]')" =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z$ ]]
	[[ "$(echo "$output" | json_field 'j[0]["hash"]')" =~ ^[0-9a-f]{40}$ ]]
}

@test "log --json escapes awkward command lines" {
	cashet exec -- printf '%s\n' 'quote " backslash \ tab	 newline
end' > /dev/null
	run cashet log --json
	assert_success
	[ "$(echo "$output" | json_field '"backslash" in j[0]["cmd"] and "newline" in j[0]["cmd"]')" = True ]
	run cashet show --json "$(last_hash)"
	[ "$(echo "$output" | json_field 'j["argv"][2]')" = "$(printf '%s' 'quote " backslash \ tab	 newline
end')" ]
}

@test "log: bad options exit 2" {
	run cashet log -n 0
	assert_failure 2
	run cashet log --status maybe
	assert_failure 2
	assert_output --partial "--status"
	run cashet log --bogus
	assert_failure 2
	run cashet log extra
	assert_failure 2
}

@test "show: every field, by full hash and by prefix" {
	echo in > input.txt
	cashet exec -n nm -t k=v -i input.txt -- sh -c 'echo out; echo err >&2' > /dev/null 2>&1
	h=$(last_hash)
	run cashet show "${h:0:8}"
	assert_success
	full="$output"
	run cashet show "$h"
	[ "$output" = "$full" ]
	assert_line --index 0 "run         $h"
	assert_line "command     sh -c 'echo out; echo err >&2'"
	assert_line "name        nm"
	assert_line "cwd         ."
	assert_line "status      ok (exit 0)"
	assert_line "parent      -"
	assert_line "tags        k=v"
	assert_line --regexp '^fingerprint [0-9a-f]{32}$'
	assert_line --regexp '^duration    [0-9.]+m?s$'
	assert_line --regexp '^created     [0-9-]{10} [0-9:]{8}$'
	assert_line "inputs:"
	assert_line --regexp '^  input +[0-9a-f]{32}  input.txt$'
	assert_line "files:"
	assert_line --regexp '^  stdout 100644 +4B  [0-9a-f]{12}  stdout$'
	assert_line --regexp '^  stderr 100644 +4B  [0-9a-f]{12}  stderr$'
}

@test "show: the parent is the previous run of the same command line" {
	echo 1 > in
	cashet exec -i in -- echo x > /dev/null
	h1=$(last_hash)
	echo 2 > in
	cashet exec -i in -- echo x > /dev/null
	h2=$(last_hash)
	[ "$h1" != "$h2" ]
	run cashet show "$h2"
	assert_line "parent      $h1"
	run cashet show --json "$h2"
	[ "$(echo "$output" | json_field 'j["parent"]')" = "$h1" ]
	run cashet show --json "$h1"
	[ "$(echo "$output" | json_field 'j["parent"]')" = None ]
}

@test "show --json is valid and complete" {
	V=1 cashet exec -n nm -t k=v -t flag -e V --ttl 1h -- sh -c 'echo out; exit 0' > /dev/null
	h=$(last_hash)
	run --separate-stderr cashet show --json "$h"
	assert_success
	echo "$output" | python3 -c 'import json,sys; json.load(sys.stdin)'
	[ "$(echo "$output" | json_field 'j["hash"]')" = "$h" ]
	[ "$(echo "$output" | json_field 'j["argv"]')" = "['sh', '-c', 'echo out; exit 0']" ]
	[ "$(echo "$output" | json_field 'j["cmd"]')" = "sh -c 'echo out; exit 0'" ]
	[ "$(echo "$output" | json_field 'j["name"], j["cwd"], j["status"], j["exit"]')" = "('nm', '.', 'ok', 0)" ]
	[ "$(echo "$output" | json_field 'sorted(j["tags"])')" = "['flag', 'k=v']" ]
	[ "$(echo "$output" | json_field '[p["kind"] for p in j["parts"]][:4]')" = "['argv', 'cwd', 'exe', 'env']" ]
	# and what is in every key: the umask, the locale, the time zone, how inputs are found
	[ "$(echo "$output" | json_field '[p["name"] for p in j["parts"] if p["kind"] == "setting"]')" = "['umask', 'trace']" ]
	[ "$(echo "$output" | json_field '[p["name"] for p in j["parts"] if p["kind"] == "env"][1:4]')" = "['LANG', 'LC_ALL', 'TZ']" ]
	[ "$(echo "$output" | json_field '[(f["kind"], f["path"], f["mode"], f["size"]) for f in j["files"]]')" = "[('stdout', 'stdout', '100644', 4), ('stderr', 'stderr', '100644', 0)]" ]
	[[ "$(echo "$output" | json_field 'j["fingerprint"]')" =~ ^[0-9a-f]{32}$ ]]
	[[ "$(echo "$output" | json_field 'j["files"][0]["oid"]')" =~ ^[0-9a-f]{40}$ ]]
	[ "$(echo "$output" | json_field 'j["expires"] is not None')" = True ]
	# the fingerprint printed by -v on a miss is the one recorded
	run --separate-stderr cashet exec -v -- echo fp
	fp=$(cashet show --json "$(last_hash)" | json_field 'j["fingerprint"]')
	[[ "$stderr" == *"cashet: miss $fp"* ]]
}

@test "show: usage errors" {
	run cashet show
	assert_failure 2
	run cashet show --bogus
	assert_failure 2
	run cashet show abcd ef01
	assert_failure 2
}

@test "hash errors: not hex, too short, no match (exit 1 with a message)" {
	cashet exec -- echo x > /dev/null
	run --separate-stderr cashet show zzzz
	assert_failure 1
	[ "$stderr" = "cashet: 'zzzz' is not a run hash (4 to 40 lowercase hex digits)" ]
	run --separate-stderr cashet show abc
	assert_failure 1
	[[ "$stderr" == *"'abc' is not a run hash"* ]]
	h=$(last_hash)
	other=$( [ "${h:0:1}" = 0 ] && echo 1 || echo 0 )
	run --separate-stderr cashet show "${other}${h:1:7}"
	assert_failure 1
	[ "$stderr" = "cashet: no run matches '${other}${h:1:7}'" ]
	for c in get rm; do
		run --separate-stderr cashet "$c" "${other}${h:1:7}"
		assert_failure 1
		[[ "$stderr" == *"no run matches"* ]]
	done
}

@test "an ambiguous prefix is an error listing the candidates" {
	cashet exec -- echo x > /dev/null
	h=$(last_hash)
	# A second index row sharing the first 8 digits (a real collision on a
	# short prefix is too rare to wait for).
	twin="${h:0:8}$(printf '%032d' 0)"
	[ "$twin" != "$h" ]
	sqlite3 .cashet/index.db "INSERT INTO runs(hash, parent, fp, line, name, argv, cwd, ok, exit_code, created, last_used, duration_ms, expires, bytes) SELECT x'$twin', parent, fp, line, name, argv, cwd, ok, exit_code, created - 1, last_used, duration_ms, expires, bytes FROM runs WHERE hash=x'$h'"
	run --separate-stderr cashet show "${h:0:6}"
	assert_failure 1
	[[ "$stderr" == "cashet: ambiguous hash '${h:0:6}': candidates:"* ]]
	[[ "$stderr" == *" ${h:0:12}"* ]]
	[[ "$stderr" == *" ${twin:0:12}"* ]]
	# a longer prefix resolves
	run cashet show "${h:0:12}"
	assert_success
	assert_line --index 0 "run         $h"
}

@test "get: exact bytes of stdout, stderr and an output file" {
	cashet exec -o sub/out.bin -- sh -c 'mkdir -p sub; printf "o\000\377" > sub/out.bin; printf "x\ny"; printf "e1\000e2" >&2' > /dev/null 2>&1
	h=$(last_hash)
	printf 'x\ny' > want.out
	printf 'e1\000e2' > want.err
	printf 'o\000\377' > want.bin
	cashet get "$h" > got1
	cmp want.out got1
	cashet get --stdout "${h:0:8}" > got2
	cmp want.out got2
	cashet get --stderr "$h" > got3
	cmp want.err got3
	cashet get --file sub/out.bin "$h" > got4
	cmp want.bin got4
	cashet get --file files/sub/out.bin "$h" > got5
	cmp want.bin got5
	(cd sub && cashet get --file out.bin "$h") > got6
	cmp want.bin got6
	run cashet get "$h" --file sub/out.bin -o copy.bin
	assert_success
	assert_output ""
	cmp want.bin copy.bin
	cashet get --stderr "$h" -o copy.err
	cmp want.err copy.err
	run find . -name '*cashet-tmp*'
	assert_output ""
}

@test "get of a large (non-inline) stdout is exact" {
	head -c 200000 /dev/urandom > big
	cashet exec -- cat big > /dev/null
	cashet get "$(last_hash)" > got
	cmp big got
}

@test "get: unknown output file and usage errors" {
	cashet exec -- echo x > /dev/null
	h=$(last_hash)
	run --separate-stderr cashet get --file nope "$h"
	assert_failure 1
	[ "$stderr" = "cashet: run ${h:0:12} has no output file 'nope'" ]
	run cashet get
	assert_failure 2
	run cashet get "$h" "$h"
	assert_failure 2
	run cashet get --bogus "$h"
	assert_failure 2
}

@test "rm: the run is gone from log and the next exec is a miss" {
	cashet exec -- sh -c "$(counted 'echo a')" > /dev/null
	cashet exec -- echo other > /dev/null
	h=$(cashet log --cmd RUNS_COUNT --json | json_field 'j[0]["hash"]')
	run cashet rm "${h:0:10}"
	assert_success
	assert_output "removed ${h:0:12}"
	run cashet log --json
	[ "$(echo "$output" | json_field '[r["cmd"] for r in j]')" = "['echo other']" ]
	run cashet show "$h"
	assert_failure 1
	run cashet exec -- sh -c "$(counted 'echo a')"
	assert_output a
	[ "$(run_count)" = 2 ]
	# its ref is gone from the git store too
	run git --git-dir .cashet show-ref
	refute_output --partial "refs/cashet/runs/$h"
}

@test "rm: several runs at once; an unknown one is exit 1 but the others go" {
	cashet exec -- echo 1 > /dev/null
	cashet exec -- echo 2 > /dev/null
	mapfile -t hs < <(hashes_newest_first)
	run --separate-stderr cashet rm "${hs[0]}" ffffffffffff "${hs[1]}"
	assert_failure 1
	assert_line "removed ${hs[0]:0:12}"
	assert_line "removed ${hs[1]:0:12}"
	[[ "$stderr" == *"no run matches 'ffffffffffff'"* ]]
	[ "$(log_count)" = 0 ]
	run cashet rm
	assert_failure 2
}

@test "stats: exact counts, text and JSON" {
	cashet exec -- echo ok1 > /dev/null
	cashet exec -- echo ok2 > /dev/null
	cashet exec -- sh -c 'exit 1' || true
	run cashet stats
	assert_success
	assert_line "store         $PWD/.cashet"
	assert_line "runs          3"
	assert_line "completed     2"
	assert_line "failed        1"
	assert_line --regexp '^objects       [0-9]+ \('
	run cashet stats --json
	assert_success
	[ "$(echo "$output" | json_field 'j["runs"], j["completed"], j["failed"]')" = "(3, 2, 1)" ]
	[ "$(echo "$output" | json_field 'j["store"]')" = "$PWD/.cashet" ]
	[ "$(echo "$output" | json_field 'j["stored_bytes"]')" = 8 ]
	[ "$(echo "$output" | json_field 'j["objects"] > 0 and j["index_bytes"] > 0')" = True ]
	# objects: git's count, loose and then packed
	git_objects() { git --git-dir .cashet count-objects -v | awk '$1 == "count:" || $1 == "in-pack:" { n += $2 } END { print n }'; }
	[ "$(cashet stats --json | json_field 'j["objects"]')" = "$(git_objects)" ]
	cashet gc > /dev/null
	[ -z "$(find .cashet/objects -path '*/objects/??/*' -type f)" ]
	[ "$(cashet stats --json | json_field 'j["objects"]')" = "$(git_objects)" ]
	run cashet stats --bogus
	assert_failure 2
}

@test "read-only commands without a store fail clearly and create nothing" {
	cd "$BATS_TEST_TMPDIR" && mkdir empty && cd empty
	for c in log "show abcd" "get abcd" stats "rm abcd" reindex; do
		# shellcheck disable=SC2086
		run --separate-stderr cashet $c
		assert_failure 1
		[[ "$stderr" == "cashet: no cashet store found"* ]]
		[ ! -e .cashet ]
	done
	run ls -A
	assert_output ""
}

@test "the store is found by walking up from a subdirectory" {
	cashet exec -- echo top > /dev/null
	mkdir -p a/b/c
	cd a/b/c
	run cashet log --json
	assert_success
	[ "$(echo "$output" | json_field 'len(j)')" = 1 ]
	run cashet exec -- echo deep
	assert_output deep
	[ ! -e .cashet ]
	[ ! -e ../.cashet ]
	run cashet show --json "$(last_hash)"
	[ "$(echo "$output" | json_field 'j["cwd"]')" = a/b/c ]
}

@test "--store DIR (global and exec option) and CASHET_DIR select the store" {
	other="$BATS_TEST_TMPDIR/other-store"
	run --separate-stderr cashet exec --store "$other" -- sh -c "$(counted 'echo s')"
	assert_success
	[[ "$stderr" == *"created a new store in $other"* ]]
	[ -f "$other/HEAD" ]
	# the project store did not get the run
	[ "$(log_count)" = 0 ]
	run cashet --store "$other" log --json
	[ "$(echo "$output" | json_field 'len(j)')" = 1 ]
	run cashet --store="$other" stats --json
	[ "$(echo "$output" | json_field 'j["runs"]')" = 1 ]
	CASHET_DIR="$other" run cashet exec -- sh -c "$(counted 'echo s')"
	assert_output s
	[ "$(run_count)" = 1 ]
	run cashet --store "$other" exec -- sh -c "$(counted 'echo s')"
	assert_output s
	[ "$(run_count)" = 1 ]
	# an explicit --store wins over CASHET_DIR
	CASHET_DIR="$BATS_TEST_TMPDIR/nowhere" run cashet --store "$other" log --json
	assert_success
	[ "$(echo "$output" | json_field 'len(j)')" = 1 ]
	[ ! -e "$BATS_TEST_TMPDIR/nowhere" ]
}

@test "--store after the command name, and between a command and its subcommand" {
	other="$BATS_TEST_TMPDIR/other-store"
	cashet exec --store "$other" -- echo s > /dev/null
	run cashet log --store "$other" --json
	assert_success
	[ "$(echo "$output" | json_field 'len(j)')" = 1 ]
	run cashet stats --json --store="$other"
	[ "$(echo "$output" | json_field 'j["runs"]')" = 1 ]
	run cashet show "$(cashet log --store "$other" --json | json_field 'j[0]["hash"]')" --store "$other"
	assert_success
	# the options of exec end at its command: a later --store is the command's
	run cashet exec -- echo --store "$other"
	assert_output -- "--store $other"
	run cashet remote --store "$other" list
	assert_success
	run cashet remote list --store "$other"
	assert_success
}

@test "every command and subcommand: --help made from its table, one-line usage errors" {
	local c
	for c in $(cashet --help | awk '/^commands:/ { on = 1; next } on && /^  [a-z]/ { print $1 }') \
		"pipeline run" "pipeline graph" "pipeline status" "remote add" "remote remove" "remote list"; do
		# shellcheck disable=SC2086
		run --separate-stderr cashet $c --help
		assert_success
		assert_line --index 0 --partial "usage: cashet $c"
		[ -z "$stderr" ]
		# shellcheck disable=SC2086
		run --separate-stderr cashet $c --no-such-option
		assert_failure 2
		[ "${#stderr_lines[@]}" = 1 ]
		[ "$stderr" = "cashet $c: unknown option '--no-such-option' (see 'cashet $c --help')" ]
	done
	run --separate-stderr cashet show
	assert_failure 2
	[ "$stderr" = "cashet show: missing HASH (usage: cashet show [options] HASH) (see 'cashet show --help')" ]
	run --separate-stderr cashet diff a b c
	assert_failure 2
	[ "$stderr" = "cashet diff: unexpected argument 'c' (see 'cashet diff --help')" ]
	run --separate-stderr cashet pipeline frob
	assert_failure 2
	[[ "$stderr" == "cashet pipeline: unknown subcommand 'frob' (run, graph, status, job or report)"* ]]
}

@test "--store naming a missing directory: read-only commands fail and create nothing" {
	run --separate-stderr cashet --store "$BATS_TEST_TMPDIR/missing" log
	assert_failure 1
	[ ! -e "$BATS_TEST_TMPDIR/missing" ]
	CASHET_DIR="$BATS_TEST_TMPDIR/missing" run cashet stats
	assert_failure 1
	[ ! -e "$BATS_TEST_TMPDIR/missing" ]
}

@test "global usage: --help, --version, unknown command, unknown option" {
	run cashet --help
	assert_success
	assert_line --index 0 "usage: cashet [--store DIR] <command> [options] [args]"
	run cashet --version
	assert_success
	assert_output --regexp '^cashet [0-9]+\.[0-9]+\.[0-9]+'
	run --separate-stderr cashet frobnicate
	assert_failure 2
	[ "$stderr" = "cashet: 'frobnicate' is not a cashet command (see 'cashet --help')" ]
	# an option error before the command: one line, as a command's own are
	run --separate-stderr cashet --frob log
	assert_failure 2
	[ "$stderr" = "cashet: unknown option '--frob' (see 'cashet --help')" ]
	run --separate-stderr cashet --store
	assert_failure 2
	[ "$stderr" = "cashet: option '--store' needs a value (see 'cashet --help')" ]
	run --separate-stderr cashet log --store
	assert_failure 2
	[ "$stderr" = "cashet log: option '--store' needs a value (see 'cashet log --help')" ]
	run --separate-stderr cashet
	assert_failure 2
	for c in log show get rm stats reindex init; do
		run --separate-stderr cashet "$c" --help
		assert_success
		assert_line --index 0 --partial "usage: cashet $c"
	done
}
