#!/usr/bin/env bats
# Upkeep: gc evicts expired runs, runs unused for a while and the least
# recently used ones beyond a size, then repacks so the space is returned;
# a run a live process is computing is never evicted; clear, invalidate
# and the automatic size bound (config max-size); fsck verifies every
# object and run against git and repairs the index. The store stays a valid
# git repository throughout, and what is kept still replays.

load helper

setup() {
	common_setup
	cashet init > /dev/null
}

# N runs of `cat fileI`, each storing a 300 KB stdout (too big to be inline).
make_runs() {
	for i in $(seq 1 "$1"); do
		head -c 300000 /dev/urandom > "f$i"
		cashet exec -- cat "f$i" > /dev/null
	done
}

age_run() { # make run of file $1 look unused for $2 seconds
	sqlite3 .cashet/index.db "UPDATE runs SET last_used = last_used - $2 * 1000 WHERE $(argv_is "cat $1")"
}

@test "gc --max-size keeps the most recently used runs and returns the space" {
	make_runs 4
	age_run f1 400; age_run f2 300; age_run f3 200; age_run f4 100
	# f1 was used most recently after all
	sqlite3 .cashet/index.db "UPDATE runs SET last_used = $(date +%s)000 WHERE $(argv_is "cat f1")"
	before=$(du -sk .cashet/objects | cut -f1)
	run cashet gc --max-size 700K
	assert_success
	assert_output --regexp '^removed 0 expired, 2 evicted, 2 kept; objects .* -> .*$'
	run cashet log --json
	[ "$(echo "$output" | json_field 'sorted(r["cmd"] for r in j)')" = "['cat f1', 'cat f4']" ]
	after=$(du -sk .cashet/objects | cut -f1)
	[ "$after" -lt "$before" ]
	git --git-dir .cashet fsck --no-dangling
	# kept runs replay from the pack, byte for byte
	cashet exec -- cat f1 | cmp - f1
	cashet exec -- cat f4 | cmp - f4
	[ "$(cashet log --json | json_field 'len(j)')" = 2 ]
	# evicted ones run again
	cashet exec -- cat f2 | cmp - f2
	[ "$(cashet log --json | json_field 'len(j)')" = 3 ]
}

@test "gc --older-than evicts runs unused for that long; --dry-run changes nothing" {
	make_runs 3
	age_run f1 $((8 * 86400))
	run cashet gc --older-than 7d --dry-run
	assert_success
	assert_output --regexp '^would remove 0 expired, 1 evicted, 2 kept'
	[ "$(cashet log --json | json_field 'len(j)')" = 3 ]
	run cashet gc --older-than 7d
	assert_output --regexp '^removed 0 expired, 1 evicted, 2 kept'
	run cashet log --cmd 'cat f1'
	[ "${#lines[@]}" = 0 ]
}

@test "gc purges expired runs" {
	cashet exec --ttl 1s -- echo short > /dev/null
	cashet exec -- echo long > /dev/null
	sleep 1.2
	run cashet gc
	assert_output --regexp '^removed 1 expired, 0 evicted, 1 kept'
	run cashet log
	assert_output --partial 'echo long'
	refute_output --partial 'echo short'
}

@test "gc keeps history valid: a kept run whose parent was evicted is a shallow root" {
	echo 1 > in; cashet exec -i in -- cat in > /dev/null
	echo 2 > in; cashet exec -i in -- cat in > /dev/null
	old=$(cashet log --json | json_field 'j[1]["hash"]')
	age_run in 1000
	sqlite3 .cashet/index.db "UPDATE runs SET last_used = $(date +%s)000 WHERE hash != x'$old'"
	run cashet gc --older-than 10m
	assert_output --regexp 'removed 0 expired, 1 evicted, 1 kept'
	kept=$(cashet log --json | json_field 'j[0]["hash"]')
	grep -qx "$kept" .cashet/shallow
	git --git-dir .cashet fsck --no-dangling
	[ "$(git --git-dir .cashet log --format=%H --all | wc -l)" = 1 ]
}

@test "gc never evicts a run that a live process is claiming" {
	cashet exec -- echo claimed > /dev/null
	fp=$(cashet show --json "$(last_hash)" | json_field 'j["fingerprint"]')
	sqlite3 .cashet/index.db "INSERT INTO claims VALUES(x'$fp', $$, '$(hostname)', 0, $(date +%s)000)"
	run cashet gc --max-size 1
	assert_output --regexp 'removed 0 expired, 0 evicted, 1 kept \(1 in use\)'
	sqlite3 .cashet/index.db "DELETE FROM claims"
	run cashet gc --max-size 1
	assert_output --regexp 'removed 0 expired, 1 evicted, 0 kept'
}

@test "clear removes everything (no prompt when not a terminal or with -f)" {
	make_runs 2
	run cashet clear -f
	assert_success
	assert_output --regexp '^removed 0 expired, 2 evicted, 0 kept'
	[ "$(cashet log --json)" = "[]" ]
	[ -z "$(find .cashet/objects -type f)" ]
	git --git-dir .cashet fsck
}

@test "invalidate removes the runs carrying all given tags" {
	cashet exec -t exp=a -t gpu -- echo 1 > /dev/null
	cashet exec -t exp=a -- echo 2 > /dev/null
	cashet exec -t exp=b -t gpu -- echo 3 > /dev/null
	run cashet invalidate --tag exp=a --tag gpu
	assert_output 'invalidated 1 run'
	run cashet log --json
	[ "$(echo "$output" | json_field 'sorted(r["cmd"] for r in j)')" = "['echo 2', 'echo 3']" ]
	run cashet invalidate --tag gpu
	assert_output 'invalidated 1 run'
	run cashet invalidate
	assert_failure 2
}

@test "config max-size bounds the store automatically after each store" {
	run cashet config max-size
	assert_failure 1
	assert_output ''
	cashet config max-size 700K
	run cashet config max-size
	assert_output 700K
	grep -q 'max-size = 700K' .cashet/config
	make_runs 4
	# past the bound, exec trims to 90% of it: two 300 KB runs remain
	[ "$(cashet log --json | json_field 'len(j)')" = 2 ]
	cashet exec -- cat f4 | cmp - f4
	cashet config --unset max-size
	run cashet config max-size
	assert_failure 1
	run cashet config max-size lots
	assert_failure 2
	run cashet config colour red
	assert_failure 2
}

@test "max-size in the user's git config bounds the store too; the store's own setting wins" {
	mkdir home
	printf '[user]\n\tname = x\n[cashet]\n\tmax-size = 700K\n' > home/.gitconfig
	HOME=$PWD/home make_runs 4
	[ "$(cashet log --json | json_field 'len(j)')" = 2 ]
	cashet config max-size 10M
	HOME=$PWD/home make_runs 4
	[ "$(cashet log --json | json_field 'len(j)')" = 6 ]
}

@test "gc and exec running together never leave a run pointing at a deleted object" {
	for i in $(seq 1 20); do echo "$i" > "in$i"; done
	( for i in $(seq 1 20); do cashet gc --max-size 1 > /dev/null 2>&1; done ) 3>&- &
	gcpid=$!
	track_pid "$gcpid"
	for i in $(seq 1 20); do
		head -c 100000 /dev/urandom > "big$i"
		cashet exec -- cat "big$i" > "out$i"
		cmp "out$i" "big$i"
	done
	wait "$gcpid"
	git --git-dir .cashet fsck --no-dangling
	# every run still in the index replays correctly
	for h in $(cashet log --json | json_field '" ".join(r["hash"] for r in j)'); do
		cashet get "$h" > /dev/null
	done
}

@test "fsck: a clean store checks clean" {
	cashet exec -- echo hi > /dev/null
	run cashet fsck
	assert_success
	assert_output --regexp '^checked [0-9]+ objects and 1 runs: 0 bad objects, 0 broken runs, 0 index rows repaired$'
}

# flip_packed OID...: one byte flipped in the middle of each OID's entry in
# the store's packs (its zlib stream: it no longer inflates to OID's
# content). All are found before any is flipped: verify-pack stops at one.
flip_packed() {
	local idx at=()
	for idx in .cashet/objects/pack/*.idx; do
		at+=($(git verify-pack -v "$idx" | awk -v p="${idx%.idx}.pack" -v want=" $* " \
			'index(want, " " $1 " ") { print p ":" $5 + int($4 / 2) }'))
	done
	[ "${#at[@]}" = "$#" ]
	chmod u+w .cashet/objects/pack/*.pack
	python3 - "${at[@]}" <<-'PY'
	import sys
	for a in sys.argv[1:]:
	    path, off = a.rsplit(":", 1)
	    with open(path, "r+b") as f:
	        f.seek(int(off)); b = f.read(1); f.seek(int(off)); f.write(bytes([b[0] ^ 0x5a]))
	PY
}

@test "fsck reads every packed object: a corrupt one is reported with the run it breaks, an unreachable one too" {
	cashet exec -- seq 1 500 > /dev/null
	cashet exec -- echo kept > /dev/null
	bad=$(cashet log --json | json_field '[r["hash"] for r in j if r["cmd"] == "seq 1 500"][0]')
	oid=$(cashet show --json "$bad" | json_field '[f["oid"] for f in j["files"] if f["kind"] == "stdout"][0]')
	git --git-dir .cashet repack -a -d -q
	orphan=$(echo "an object no run reaches" | git --git-dir .cashet hash-object -w --stdin)
	echo "$orphan" | git --git-dir .cashet pack-objects -q .cashet/objects/pack/pack > /dev/null
	git --git-dir .cashet prune-packed
	[ -z "$(find .cashet/objects -path '*/objects/??/*' -type f)" ]
	flip_packed "$oid" "$orphan"
	run cashet fsck
	assert_failure 1
	assert_line --regexp "^object $oid: "
	assert_line --regexp "^object $orphan: "
	assert_line --regexp "^run ${bad:0:12}: "
	assert_line --regexp 'checked [0-9]+ objects and 2 runs: 2 bad objects, 1 broken runs, 0 index rows repaired$'
	[ "$(verdict -- echo kept)" = hit ]
	run cashet fsck --prune
	assert_line --regexp '1 broken runs \(pruned\)'
	run cashet fsck
	assert_success
	assert_output --regexp 'checked [0-9]+ objects and 1 runs: 0 bad objects, 0 broken runs'
	git --git-dir .cashet fsck --no-dangling
	# the pruned run runs again and is stored whole
	[ "$(verdict -- seq 1 500)" = miss ]
	[ "$(verdict -- seq 1 500)" = hit ]
	run -0 cashet fsck
}

@test "fsck checks every object's SHA-1: a run's meta altered but well formed is reported, and the run with it" {
	cashet exec -- sh -c 'exit 3' > /dev/null || true
	h=$(last_hash)
	meta=$(git --git-dir .cashet rev-parse "$h:meta")
	obj=".cashet/objects/${meta:0:2}/${meta:2}"
	[ -f "$obj" ]
	# the same object name, a valid object of other content: only its id tells
	chmod u+w "$obj"
	python3 - "$obj" <<-'PY'
	import sys, zlib
	p = sys.argv[1]
	head, body = zlib.decompress(open(p, "rb").read()).split(b"\0", 1)
	body = body.replace(b"\nexit 3\n", b"\nexit 0\n")
	open(p, "wb").write(zlib.compress(b"blob %d\0" % len(body) + body))
	PY
	run cashet fsck
	assert_failure 1
	assert_line --regexp "^object $meta: "
	assert_line --regexp "^run ${h:0:12}: "
	assert_line --regexp 'checked [0-9]+ objects and 1 runs: 1 bad objects, 1 broken runs, 0 index rows repaired$'
}

@test "fsck finds a corrupt object and a lost index row, repairs the index, --prune removes the broken run" {
	head -c 100000 /dev/urandom > a
	cashet exec -- cat a > /dev/null
	cashet exec -- echo hi > /dev/null
	bad=$(cashet log --json | json_field '[r["hash"] for r in j if r["cmd"] == "cat a"][0]')
	oid=$(cashet show --json "$bad" | json_field '[f["oid"] for f in j["files"] if f["kind"] == "stdout"][0]')
	obj=".cashet/objects/${oid:0:2}/${oid:2}"
	chmod u+w "$obj"
	echo garbage > "$obj"
	sqlite3 .cashet/index.db "DELETE FROM runs WHERE $(argv_is "echo hi")"
	run cashet fsck
	assert_failure 1
	assert_line --regexp "^object $oid: "
	assert_line --regexp "^run ${bad:0:12}: stdout \(object ${oid:0:12}\): "
	assert_line --regexp '^index: run [0-9a-f]{12} was missing \(added back\)$'
	assert_line --regexp 'checked [0-9]+ objects and 2 runs: 1 bad objects, 1 broken runs, 1 index rows repaired$'
	# the lost row is back
	run cashet log --cmd 'echo hi'
	[ "${#lines[@]}" = 2 ]
	run cashet fsck --prune
	assert_success
	assert_line --regexp '1 broken runs \(pruned\)'
	run cashet fsck
	assert_success
	assert_output --regexp 'checked [0-9]+ objects and 1 runs: 0 bad objects'
	git --git-dir .cashet fsck --no-dangling
	run cashet log --cmd 'cat a'
	[ "${#lines[@]}" = 0 ]
}

@test "fsck of many runs (read ahead by several threads) reports an object they share once, then each run it breaks, in order" {
	cashet config auto-pack 0
	for i in $(seq 1 100); do cashet exec -- sh -c 'echo shared' "$i" > /dev/null; done
	cashet exec -- echo intact > /dev/null
	oid=$(cashet show --json "$(last_hash)" | json_field '[f["oid"] for f in j["files"] if f["kind"] == "stdout"][0]')
	shared=$(echo shared | git --git-dir .cashet hash-object --stdin)
	obj=".cashet/objects/${shared:0:2}/${shared:2}"
	chmod u+w "$obj"
	echo garbage > "$obj"
	run cashet fsck
	assert_failure 1
	[ "$(grep -c "^object $shared: " <<< "$output")" = 1 ]
	[ "$(grep -c "^object " <<< "$output")" = 1 ]
	# one line per broken run, in the order they were stored (the packs' order)
	grep -o '^run [0-9a-f]*' <<< "$output" | cut -c5- > got
	cashet log --json | json_field '"\n".join(r["hash"][:12] for r in reversed(j) if r["cmd"] != "echo intact")' > want
	[ "$(wc -l < got)" = 100 ]
	diff want got
	assert_line --regexp '^checked [0-9]+ objects and 101 runs: 1 bad objects, 100 broken runs, 0 index rows repaired$'
	[ "$(cashet stats --json | json_field 'j["runs"]')" = 101 ]
	[ "$(verdict -- echo intact)" = hit ]
	run cashet fsck --prune
	assert_line --regexp '100 broken runs \(pruned\)'
	run -0 cashet fsck
	[ "$(cashet stats --json | json_field 'j["runs"]')" = 1 ]
	[ "$oid" != "$shared" ]
}
