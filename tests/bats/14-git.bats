#!/usr/bin/env bats
# The store is a bare git repository: every run is a commit whose tree holds
# meta, stdout, stderr and files/<path> (with the file's mode), referenced by
# refs/cashet/runs/<commit>; refs/cashet/lines/<line> points at the newest
# run of a command line (argv + cwd), and each run's parent is the previous
# run of that line, so `git log` shows a command's history. index.db is only
# derived data: `cashet reindex` (or any command finding it missing)
# rebuilds it from the refs, and everything works as before.

load helper

setup() {
	common_setup
	cashet init > /dev/null
}

g() {
	git --git-dir .cashet "$@"
}

build='cat in > out; chmod +x out; echo so; echo se >&2'

@test "two runs of one command line form a parent chain in git" {
	echo 1 > in
	cashet exec -i in -o out -- sh -c "$build" > /dev/null 2>&1
	h1=$(last_hash)
	echo 2 > in
	cashet exec -i in -o out -- sh -c "$build" > /dev/null 2>&1
	h2=$(last_hash)
	run g for-each-ref --format='%(refname)' refs/cashet/lines/
	assert_success
	[ "${#lines[@]}" = 1 ]
	line_ref="${lines[0]}"
	[[ "$line_ref" =~ ^refs/cashet/lines/[0-9a-f]+$ ]]
	[ "$(g rev-parse "$line_ref")" = "$h2" ]
	run g log --format='%H %P' "$line_ref"
	assert_success
	[ "${#lines[@]}" = 2 ]
	assert_line --index 0 "$h2 $h1"
	assert_line --index 1 "$h1 "
	run g log --format=%s "$line_ref"
	assert_line --index 0 "sh -c '$build'"
	# each run also has its own ref
	run g for-each-ref --format='%(refname)' refs/cashet/runs/
	assert_line "refs/cashet/runs/$h1"
	assert_line "refs/cashet/runs/$h2"
	# git agrees the repository is sound
	run g fsck --no-dangling
	assert_success
}

@test "different command lines have separate histories; a line ref once a line has two runs" {
	cashet exec -- echo a > /dev/null
	h1=$(last_hash)
	cashet exec -- echo b > /dev/null
	mkdir sub
	(cd sub && cashet exec -- echo a > /dev/null)
	# a line of one run: its run ref is its history
	run -0 g for-each-ref refs/cashet/lines/
	assert_output ""
	run g log --all --format=%P
	# no run has a parent
	[ -z "$(echo "$output" | tr -d '[:space:]')" ]
	cashet exec -f -- echo a > /dev/null
	h2=$(last_hash)
	run -0 g for-each-ref --format='%(objectname)' refs/cashet/lines/
	assert_output "$h2"
	run -0 g log --format='%H %P' "$h2"
	assert_line --index 0 "$h2 $h1"
}

@test "the commit tree holds meta, stdout, stderr, streams and files/<path> with modes" {
	echo payload > in
	cashet exec -i in -o out -o data/plain.txt -o lnk -- sh -c "$build; mkdir -p data; echo p > data/plain.txt; ln -sf out lnk" > /dev/null 2>&1
	h=$(last_hash)
	run g ls-tree -r "$h"
	assert_success
	[ "${#lines[@]}" = 7 ]
	assert_line --regexp $'^100644 blob [0-9a-f]{40}\tmeta$'
	assert_line --regexp $'^100644 blob [0-9a-f]{40}\tstdout$'
	assert_line --regexp $'^100644 blob [0-9a-f]{40}\tstderr$'
	assert_line --regexp $'^100644 blob [0-9a-f]{40}\tstreams$'
	assert_line --regexp $'^100755 blob [0-9a-f]{40}\tfiles/out$'
	assert_line --regexp $'^100644 blob [0-9a-f]{40}\tfiles/data/plain.txt$'
	assert_line --regexp $'^120000 blob [0-9a-f]{40}\tfiles/lnk$'
	[ "$(g show "$h:stdout")" = so ]
	[ "$(g show "$h:stderr")" = se ]
	[ "$(g show "$h:streams")" = "$(printf 'o 3\ne 3')" ]
	[ "$(g show "$h:files/out")" = payload ]
	[ "$(g show "$h:files/lnk")" = out ]
	run g show "$h:meta"
	assert_line "cwd ."
	assert_line "exit 0"
	assert_line "status ok"
	# the oids in the index are the blobs of the tree
	oid=$(cashet show --json "$h" | json_field '[f["oid"] for f in j["files"] if f["path"] == "files/out"][0]')
	[ "$(g rev-parse "$h:files/out")" = "$oid" ]
}

@test "stored blobs are byte-exact in git, binary included" {
	head -c 100000 /dev/urandom > big.bin
	printf 'a\000b' > small.bin
	cashet exec -- sh -c 'cat big.bin; cat small.bin >&2' > /dev/null 2>&1
	h=$(last_hash)
	g cat-file blob "$h:stdout" > got.out
	g cat-file blob "$h:stderr" > got.err
	cmp big.bin got.out
	cmp small.bin got.err
}

@test "reindex: a deleted index is rebuilt; log, show and hits are identical" {
	echo 1 > in
	cashet exec -n nm -t k=v -i in -o out -- sh -c "$(counted "$build")" > /dev/null 2>&1
	echo 2 > in
	cashet exec -n nm -t k=v -i in -o out -- sh -c "$(counted "$build")" > /dev/null 2>&1
	cashet exec -- sh -c 'exit 3' || true
	head -c 100000 /dev/urandom > big
	cashet exec -- cat big > /dev/null
	[ "$(run_count)" = 2 ]
	cashet log > log.before
	cashet log --json > json.before
	mapfile -t hs < <(python3 -c 'import json; [print(r["hash"]) for r in json.load(open("json.before"))]')
	# last_used is LRU bookkeeping kept only in the index (git is immutable)
	for h in "${hs[@]}"; do cashet show --json "$h" | json_field '{k: v for k, v in j.items() if k != "last_used"}'; done > show.before
	rm -f .cashet/index.db .cashet/index.db-wal .cashet/index.db-shm
	run cashet reindex
	assert_success
	assert_output "reindexed 4 runs"
	cashet log > log.after
	diff log.before log.after
	cashet log --json > json.after
	diff json.before json.after
	for h in "${hs[@]}"; do cashet show --json "$h" | json_field '{k: v for k, v in j.items() if k != "last_used"}'; done > show.after
	diff show.before show.after
	run cashet log --tag k=v --name nm --json
	[ "$(echo "$output" | json_field 'len(j)')" = 2 ]
	# a hit without running again, outputs restored
	rm out
	run cashet exec -n nm -t k=v -i in -o out -- sh -c "$(counted "$build")"
	assert_success
	[ "$(run_count)" = 2 ]
	[ "$(cat out)" = 2 ]
	cashet exec -- cat big > got
	cmp big got
	# the lineage continues from the rebuilt index
	echo 3 > in
	cashet exec -n nm -t k=v -i in -o out -- sh -c "$(counted "$build")" > /dev/null 2>&1
	run cashet show --json "$(last_hash)"
	[ "$(echo "$output" | json_field 'j["parent"]')" = "${hs[2]}" ]
}

@test "reindex of a store without runs, and a deleted index of one, rebuild an empty index" {
	cashet init > /dev/null
	run -0 cashet reindex
	assert_output "reindexed 0 runs"
	rm .cashet/index.db*
	run -0 cashet log
	assert_output ""
}

@test "reindex on an intact index is idempotent" {
	cashet exec -- echo a > /dev/null
	cashet exec -- echo b > /dev/null
	cashet log --json > before
	run cashet reindex
	assert_success
	assert_output "reindexed 2 runs"
	cashet log --json > after
	diff before after
	run cashet reindex extra
	assert_failure 2
}

@test "a missing index is rebuilt by whatever command comes next" {
	cashet exec -- sh -c "$(counted 'echo a')" > /dev/null
	cashet log > before
	rm -f .cashet/index.db .cashet/index.db-wal .cashet/index.db-shm
	run cashet log
	assert_success
	[ "$output" = "$(cat before)" ]
	[ -f .cashet/index.db ]
	rm -f .cashet/index.db .cashet/index.db-wal .cashet/index.db-shm
	run cashet exec -- sh -c "$(counted 'echo a')"
	assert_output a
	[ "$(run_count)" = 1 ]
}

@test "reindex and fsck read empty strings back as empty: an argument, --name, an env value" {
	empty_values_run
	assert_empty_values
	rm -f .cashet/index.db .cashet/index.db-wal .cashet/index.db-shm
	run cashet reindex
	assert_output "reindexed 1 run"
	assert_empty_values
	# fsck rebuilds the index rows from the records too
	run cashet fsck
	assert_success
	assert_empty_values
}

@test "a removed run is not brought back by reindex" {
	cashet exec -- echo keep > /dev/null
	cashet exec -- echo drop > /dev/null
	h=$(last_hash)
	cashet rm "$h" > /dev/null
	run cashet reindex
	assert_output "reindexed 1 run"
	run cashet log --json
	[ "$(echo "$output" | json_field '[r["cmd"] for r in j]')" = "['echo keep']" ]
}
