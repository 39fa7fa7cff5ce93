#!/usr/bin/env bats
# Faults: full disks, read-only stores, a damaged or incomplete index,
# hostile archives. The store never destroys good data on its way out of
# a fault (only an object whose own bytes are bad is quarantined; gc keeps
# what refs reach), and a fault around the command degrades to running it
# rather than stopping it.
#
# Full disks are a file size limit (ulimit -f, which cashet turns into
# EFBIG instead of dying of SIGXFSZ); read-only stores are a read-only bind
# mount in a private mount namespace when running as root (chmod does not
# stop root), chmod otherwise; tests skip with the reason when neither works.

load helper

setup() {
	common_setup
	cashet init > /dev/null
}

# oid_of HASH KIND [PATH]: the git blob id of a run's stdout (0), stderr (1)
# or output file (2, PATH as declared), from the index.
oid_of() {
	local q="SELECT lower(hex(f.oid)) FROM files f JOIN runs r ON f.run = r.id WHERE r.hash = x'$1' AND f.kind = $2"
	[ -n "${3:-}" ] && q="$q AND f.path = 'files/$3'"
	sqlite3 .cashet/index.db "$q"
}

# Another process holds the index (an exclusive transaction) from now
# until release_index; its start time goes to held.at.
hold_index() {
	python3 - > held.at <<-'PY' &
	import os, sqlite3, time
	c = sqlite3.connect(".cashet/index.db", isolation_level=None)
	c.execute("BEGIN EXCLUSIVE")
	t0 = time.time()
	print(t0, flush=True)
	while not os.path.exists("done") and time.time() < t0 + 90:
	    time.sleep(0.2)
	PY
	writer=$!
	track_pid "$writer"
	wait_for_file held.at
}

release_index() {
	touch done
	wait "$writer"
}

# No object anywhere in the store has been moved aside.
assert_nothing_quarantined() {
	run find .cashet/objects -name '*.corrupt'
	assert_output ""
}

@test "a file size limit at the destination is reported as such and quarantines nothing" {
	cashet exec -o big.bin -- sh -c "$(counted 'head -c 300000 /dev/urandom > big.bin')"
	h=$(last_hash)
	cp big.bin want.bin
	# get -o under a 100 KiB limit: EFBIG, named, nothing left behind
	run --separate-stderr bash -c "ulimit -f 100; cashet get $h --file big.bin -o copy.bin"
	assert_failure 1
	[[ "$stderr" == *"cannot write copy.bin: File too large"* ]]
	[ ! -e copy.bin ]
	run find . -name '*cashet-tmp*'
	assert_output ""
	assert_nothing_quarantined
	# a hit restoring the output under the limit: the object stays too
	rm big.bin
	run --separate-stderr bash -c "ulimit -f 100; cashet exec -o big.bin -- sh -c '$(counted 'head -c 300000 /dev/urandom > big.bin')'"
	[[ "$stderr" == *"cannot write"*"big.bin: File too large"* ]]
	assert_nothing_quarantined
	# without the limit it is a hit again, and the store checks clean
	rm -f big.bin
	n=$(run_count)
	[ "$(verdict -o big.bin -- sh -c "$(counted 'head -c 300000 /dev/urandom > big.bin')")" = hit ]
	cmp big.bin want.bin
	[ "$(run_count)" = "$n" ]
	run cashet fsck
	assert_success
}

@test "an index row naming another run's object does not quarantine that object" {
	cashet exec -- seq 1 30000 > /dev/null
	a=$(last_hash)
	cashet exec -- seq 2 30001 > /dev/null
	b=$(last_hash)
	ob=$(oid_of "$b" 0)
	[ -f ".cashet/objects/${ob:0:2}/${ob:2}" ]
	sqlite3 .cashet/index.db "UPDATE files SET oid = x'$ob' WHERE kind = 0 AND run = (SELECT id FROM runs WHERE hash = x'$a')"
	# A cannot be replayed (its row is wrong): it runs again, with a warning
	run --separate-stderr cashet exec -- seq 1 30000
	assert_success
	[[ "$stderr" == *"does not match its recorded hash"* ]]
	[ "$output" = "$(seq 1 30000)" ]
	# B's object is intact and stays where it is: B is still a hit
	assert_nothing_quarantined
	[ -f ".cashet/objects/${ob:0:2}/${ob:2}" ]
	run --separate-stderr cashet exec -v -- seq 2 30001
	[[ "$stderr" == *"hit"* ]]
	[ "$output" = "$(seq 2 30001)" ]
}

# flip_byte OBJ AT [LEVEL]: a loose object with one byte of its content
# changed (AT from the end), deflated again: only its git id can tell.
flip_byte() {
	chmod u+w "$1"
	python3 - "$@" <<-'PY'
	import sys, zlib
	p, at = sys.argv[1], int(sys.argv[2])
	level = int(sys.argv[3]) if len(sys.argv) > 3 else -1
	data = bytearray(zlib.decompress(open(p, "rb").read()))
	data[-at] ^= 0x01
	open(p, "wb").write(zlib.compress(bytes(data), level))
	PY
}

@test "an object whose own bytes were altered is quarantined, and the re-run repairs the store" {
	cashet exec -- seq 1 30000 > /dev/null
	oid=$(oid_of "$(last_hash)" 0)
	obj=".cashet/objects/${oid:0:2}/${oid:2}"
	# one byte changed, properly deflated: only its git id tells
	flip_byte "$obj" 100
	run --separate-stderr cashet exec -- seq 1 30000
	assert_success
	[[ "$stderr" == *"corrupt"* ]]
	[ -f "$obj.corrupt" ]
	[ "$(verdict -- seq 1 30000)" = hit ]
	run cashet fsck
	assert_success
}

# damage_packed OID: flips a byte in the middle of the object's entry in
# the pack that holds it (the entry's own bytes: its CRC no longer holds).
damage_packed() {
	local idx pack at
	for idx in .cashet/objects/pack/*.idx; do
		at=$(git --git-dir .cashet verify-pack -v "$idx" 2>/dev/null | awk -v o="$1" '$1 == o { print $5 + int($4 / 2) }')
		[ -n "$at" ] && break
	done
	[ -n "$at" ]
	pack=${idx%.idx}.pack
	chmod u+w "$pack"
	python3 -c 'import sys; f = open(sys.argv[1], "r+b"); f.seek(int(sys.argv[2])); b = f.read(1); f.seek(int(sys.argv[2])); f.write(bytes([b[0] ^ 0x55]))' "$pack" "$at"
}

# The run writing a 100 kB output (too large to be copied into the index)
# whose bytes come from the project's data.bin.
copy_run() {
	cashet exec --trace off -i data.bin -o out.bin "$@" -- cp data.bin out.bin
}

@test "a damaged packed output: the re-run writes an intact copy, later runs hit, auto-pack and gc keep it, fsck is clean" {
	head -c 100000 /dev/urandom > data.bin
	copy_run
	cashet gc > /dev/null
	damage_packed "$(git hash-object data.bin)"
	rm out.bin
	run --separate-stderr copy_run
	assert_success
	[[ "$stderr" == *"is corrupt"* ]]
	# the pack's copy is passed over from now on: the loose one is read
	for i in 1 2; do
		rm out.bin
		[ "$(verdict --trace off -i data.bin -o out.bin -- cp data.bin out.bin)" = hit ]
		cmp out.bin data.bin
	done
	# fsck names the damaged copy, and no run is broken
	run -1 cashet fsck
	assert_line "object $(git hash-object data.bin): incorrect data check in one copy; an intact copy is there (gc keeps that one)"
	assert_line --regexp ' 1 bad objects, 0 broken runs, '
	# auto-pack keeps the loose copy, the pack's being damaged, and
	# merges the packs with that copy in the damaged one's place
	cashet config auto-pack 1
	cashet exec --trace off -- echo other > /dev/null
	rm out.bin
	[ "$(verdict --trace off -i data.bin -o out.bin -- cp data.bin out.bin)" = hit ]
	cmp out.bin data.bin
	run -0 cashet gc
	rm out.bin
	[ "$(verdict --trace off -i data.bin -o out.bin -- cp data.bin out.bin)" = hit ]
	cmp out.bin data.bin
	run -0 cashet fsck
	assert_output --regexp ' 0 bad objects, 0 broken runs, '
	run -0 git --git-dir .cashet fsck --strict --no-dangling
	assert_nothing_quarantined
}

@test "a damaged packed file of a many-file run: the re-run writes an intact copy, later runs hit" {
	mkdir src
	for i in $(seq 1 80); do echo "file $i" > "src/f$i"; done
	head -c 100000 /dev/urandom > src/big
	cashet exec --trace off -i src -o out -- cp -r src out
	cashet gc > /dev/null
	damage_packed "$(git hash-object src/big)"
	rm -rf out
	run -0 cashet exec --trace off -i src -o out -- cp -r src out
	rm -rf out
	[ "$(verdict --trace off -i src -o out -- cp -r src out)" = hit ]
	diff -r out src
	run -0 cashet gc
	run -0 cashet fsck
	assert_output --regexp ' 0 bad objects, 0 broken runs, '
}

@test "a pack file gone with its index left: the re-run stores the objects again, later runs hit" {
	head -c 100000 /dev/urandom > data.bin
	copy_run
	cashet gc > /dev/null
	rm .cashet/objects/pack/*.pack
	rm out.bin
	run --separate-stderr copy_run
	assert_success
	[ "$stderr" = "cashet: warning: files/out.bin (object $(git hash-object data.bin | cut -c1-12)) is missing from the store; running the command instead" ]
	rm out.bin
	[ "$(verdict --trace off -i data.bin -o out.bin -- cp data.bin out.bin)" = hit ]
	cmp out.bin data.bin
	# the first run's commit went with the pack: gc names it and what removes it
	run -1 cashet gc
	assert_output --regexp '^cashet: run [0-9a-f]{12} cannot be read \(.*\); `cashet fsck --prune` drops the runs git cannot give back$'
	run -0 cashet fsck --prune
	run -0 cashet gc
	run -0 cashet fsck
}

# damage_idx HOW: the index of the store's one pack cut short ("cut"), or
# with one byte of an object id in it flipped ("id": it then names an
# object the pack does not hold, and hides one it does).
damage_idx() {
	local idx
	idx=$(ls .cashet/objects/pack/*.idx)
	chmod u+w "$idx"
	case $1 in
	cut) truncate -s 500 "$idx" ;;
	id) python3 -c 'import sys; f = open(sys.argv[1], "r+b"); f.seek(8 + 1024 + 5); b = f.read(1); f.seek(8 + 1024 + 5); f.write(bytes([b[0] ^ 1]))' "$idx" ;;
	esac
}

@test "a damaged pack index: exec still runs, gc names it, fsck --prune rebuilds it from the pack and drops no run" {
	head -c 100000 /dev/urandom > data.bin
	copy_run
	cashet exec --trace off -- echo hello > /dev/null
	cashet gc > /dev/null
	cp -r .cashet "$BATS_TEST_TMPDIR/intact"
	for how in cut id; do
		rm -rf .cashet && cp -r "$BATS_TEST_TMPDIR/intact" .cashet
		idx=$(ls "$PWD"/.cashet/objects/pack/*.idx)
		damage_idx "$how"
		why="its checksum does not match its bytes"
		[ "$how" = cut ] && why="cut short"
		# the command runs (replayed or not), with at most one warning
		rm out.bin
		run --separate-stderr copy_run
		assert_success
		[ "${#stderr_lines[@]}" -le 1 ]
		cmp out.bin data.bin
		run --separate-stderr cashet gc
		assert_failure 1
		[ "$stderr" = "cashet: $idx is damaged ($why); \`cashet fsck\` rebuilds it from its pack" ]
		run -0 cashet fsck --prune
		assert_line "pack: $idx was damaged ($why): rebuilt from its pack"
		assert_line --regexp ' 0 bad objects, 0 broken runs, '
		[ "$(log_count)" -ge 2 ]
		run -0 cashet gc
		run -0 cashet fsck
		assert_output --regexp ' 0 bad objects, 0 broken runs, '
		run -0 git --git-dir .cashet fsck --strict --no-dangling
		rm out.bin
		[ "$(verdict --trace off -i data.bin -o out.bin -- cp data.bin out.bin)" = hit ]
		cmp out.bin data.bin
		[ "$(verdict --trace off -- echo hello)" = hit ]
	done
	# auto-pack leaves a pack whose index is damaged as it is: merged, its
	# entries would be copied under the ids the index names
	rm -rf .cashet && cp -r "$BATS_TEST_TMPDIR/intact" .cashet
	damage_idx id
	cashet config auto-pack 1
	cashet exec --trace off -- echo other > /dev/null
	cashet exec --trace off -- echo more > /dev/null
	run -0 cashet fsck
	assert_line --regexp '^pack: .* was damaged \(its checksum does not match its bytes\): rebuilt from its pack$'
	assert_output --regexp ' 0 bad objects, 0 broken runs, '
	rm out.bin
	[ "$(verdict --trace off -i data.bin -o out.bin -- cp data.bin out.bin)" = hit ]
	run -0 git --git-dir .cashet fsck --strict --no-dangling
}

@test "auto-pack never lets a damaged pack entry take the place of an intact copy in another pack" {
	head -c 100000 /dev/urandom > data.bin
	oid=$(git hash-object data.bin)
	copy_run
	# an intact copy of the blob in a pack of its own, with others, made by git
	git init -q --bare other.git
	git --git-dir other.git hash-object -w data.bin > /dev/null
	{ echo "$oid"; for i in $(seq 1 12); do echo "blob $i" | git --git-dir other.git hash-object -w --stdin; done; } |
		git --git-dir other.git pack-objects -q other.git/objects/pack/pack > /dev/null
	cashet gc > /dev/null
	damage_packed "$oid"
	cp other.git/objects/pack/pack-* .cashet/objects/pack/
	[ "$(ls .cashet/objects/pack/*.pack | wc -l)" = 2 ]
	# a run leaving loose objects packs them and merges every pack into one
	cashet config auto-pack 1
	cashet exec --trace off -- echo other > /dev/null
	[ "$(ls .cashet/objects/pack/*.pack | wc -l)" = 1 ]
	rm out.bin
	[ "$(verdict --trace off -i data.bin -o out.bin -- cp data.bin out.bin)" = hit ]
	cmp out.bin data.bin
	run -0 git --git-dir .cashet fsck --strict
}

@test "gc with a damaged packed object and no intact copy: a one-line error naming it; after fsck --prune gc works" {
	head -c 100000 /dev/urandom > data.bin
	oid=$(git hash-object data.bin)
	copy_run
	cashet gc > /dev/null
	damage_packed "$oid"
	run --separate-stderr cashet gc
	assert_failure
	[ "${#stderr_lines[@]}" = 1 ]
	[[ "$stderr" == "cashet: cannot read object $oid to pack: "*' (`cashet fsck --prune` drops the runs that need it)' ]]
	run -0 cashet fsck --prune
	assert_output --partial " 1 broken runs (pruned), "
	run -0 cashet gc
	run -0 cashet fsck
	assert_output --regexp ' 0 bad objects, 0 broken runs, '
}

@test "an index held by another process's long write delays the command by at most 2 s, with one warning; the run is stored" {
	# the writer takes the index for 8 s and says when it has it
	python3 - > held.at <<-'PY' &
	import sqlite3, sys, time
	c = sqlite3.connect(".cashet/index.db", isolation_level=None)
	c.execute("BEGIN EXCLUSIVE")
	print(time.time(), flush=True)
	time.sleep(8)
	PY
	writer=$!
	wait_for_file held.at
	run --separate-stderr cashet exec --report-fd 3 -- python3 -c 'import time; print(time.time())' 3> verdict.json
	wait "$writer"
	assert_success
	[ "$stderr" = "cashet: warning: cannot claim this run ($PWD/.cashet/index.db: BEGIN IMMEDIATE: database is locked); the command ran unclaimed" ]
	python3 -c 'import sys; held, ran = float(open("held.at").read()), float(sys.argv[1]); sys.exit(0 if ran - held < 5 else 1)' "$output"
	[ "$(json_field 'j["verdict"]' < verdict.json)" = ran ]
	[ "$(log_count)" = 1 ]
}

@test "an index held by another process until 30 s after the command ends: one line says the result is not stored and why" {
	# the writer takes the index until the exec is over
	hold_index
	run --separate-stderr cashet exec --report-fd 3 -- sh -c "$(counted 'echo ran')" 3> verdict.json
	release_index
	assert_success
	assert_output ran
	[ "$stderr" = "cashet: warning: result not stored: $PWD/.cashet/index.db: BEGIN IMMEDIATE: database is locked" ]
	[ "$(json_field 'j["verdict"]' < verdict.json)" != ran ]
	[ "$(log_count)" = 0 ]
}

@test "an index held while a run of many files is saved: one line says why it is not indexed; no row of it stays, git has it" {
	# the git module's save, whose index rows are written on a thread of
	# their own beside its commit: that thread's error is the one said
	hold_index
	run --separate-stderr cashet exec --report-fd 3 -o out -- sh -c 'mkdir out; for i in $(seq 70); do echo $i > out/f$i; done; echo ran' 3> verdict.json
	release_index
	assert_success
	assert_output ran
	[ "$stderr" = "cashet: warning: result not stored: $PWD/.cashet/index.db: BEGIN IMMEDIATE: database is locked" ]
	[ "$(json_field 'j["verdict"]' < verdict.json)" != ran ]
	[ "$(sqlite3 .cashet/index.db 'SELECT (SELECT count(*) FROM runs), (SELECT count(*) FROM files)')" = "0|0" ]
	# its commit is whole: the next gc indexes it, and it replays
	[ "$(git --git-dir .cashet for-each-ref refs/cashet/runs | wc -l)" = 1 ]
	run -0 cashet gc
	rm -rf out
	[ "$(verdict -o out -- sh -c 'mkdir out; for i in $(seq 70); do echo $i > out/f$i; done; echo ran')" = hit ]
	[ "$(cat out/f70)" = 70 ]
}

@test "gc with a run whose packed tree is damaged: a one-line error naming the run; after fsck --prune gc works" {
	head -c 100000 /dev/urandom > data.bin
	copy_run
	cashet gc > /dev/null
	h=$(last_hash)
	damage_packed "$(git --git-dir .cashet rev-parse "$h^{tree}")"
	run --separate-stderr cashet gc
	assert_failure
	[ "${#stderr_lines[@]}" = 1 ]
	[[ "$stderr" == "cashet: run ${h:0:12} cannot be read ("*'); `cashet fsck --prune` drops the runs git cannot give back' ]]
	run -0 cashet fsck --prune
	run -0 cashet gc
	run -0 cashet fsck
}

@test "a damaged packed-refs: fsck keeps its readable refs and the damaged file, a run whose ref was lost gets it back" {
	cashet config auto-pack 1
	for i in 1 2 3; do cashet exec -- echo "$i" > /dev/null; done
	[ -f .cashet/packed-refs ]
	lost=$(sed -n 3p .cashet/packed-refs | cut -d' ' -f2)
	sed -i '3s/.*/garbage here/' .cashet/packed-refs
	cp .cashet/packed-refs damaged
	run -1 cashet gc
	run -0 cashet fsck
	assert_line --regexp '^refs: packed-refs was damaged: [0-9]+ refs kept, 1 lines dropped \(the damaged file is .*/\.cashet/packed-refs\.corrupt-[0-9]+\)$'
	cmp damaged .cashet/packed-refs.corrupt-*
	assert_output --regexp ' 0 bad objects, 0 broken runs, '
	h=${lost##*/}
	assert_line "index: run ${h:0:12} had no ref (restored)"
	[ "$(git --git-dir .cashet rev-parse "$lost")" = "$h" ]
	[ "$(git --git-dir .cashet for-each-ref refs/cashet/runs | wc -l)" = 3 ]
	for i in 1 2 3; do [ "$(verdict -- echo "$i")" = hit ]; done
	run -0 cashet gc
	run -0 git --git-dir .cashet fsck --strict --no-dangling
}

# forget_row HASH: drops a run's index rows and keeps its ref and objects:
# the state an import or pull interrupted before its index transaction leaves.
forget_row() {
	sqlite3 .cashet/index.db "
		DELETE FROM files WHERE run = (SELECT id FROM runs WHERE hash = x'$1');
		DELETE FROM tags WHERE run = (SELECT id FROM runs WHERE hash = x'$1');
		DELETE FROM runs WHERE hash = x'$1';"
}

@test "gc keeps a run that has a ref but no index row, indexes it, and it hits again" {
	for i in 1 2 3; do
		cashet exec -- seq "$i" 20000 > /dev/null
	done
	h=$(cashet log --json | json_field 'j[1]["hash"]')
	forget_row "$h"
	[ "$(log_count)" = 2 ]
	run cashet gc
	assert_success
	assert_output --partial "3 kept"
	assert_output --partial "(1 re-indexed from their refs)"
	[ "$(log_count)" = 3 ]
	run --separate-stderr cashet exec -v -- seq 2 20000
	[[ "$stderr" == *"hit ${h:0:12}"* ]]
	[ "$output" = "$(seq 2 20000)" ]
	run cashet fsck
	assert_success
	[ "$(log_count)" = 3 ]
}

@test "re-importing an archive indexes the runs whose ref is there but whose row is not" {
	cashet exec -- seq 1 10 > /dev/null
	cashet exec -- seq 2 10 > /dev/null
	cashet export ../all.cashet > /dev/null
	mkdir ../proj2 && cd ../proj2 && cashet init > /dev/null
	run cashet import ../all.cashet
	assert_output "imported 2 runs (0 already present)"
	for h in $(cashet log --json | json_field '" ".join(r["hash"] for r in j)'); do
		forget_row "$h"
	done
	[ "$(log_count)" = 0 ]
	run cashet import ../all.cashet
	assert_success
	assert_output "imported 2 runs (0 already present)"
	[ "$(verdict -- seq 1 10)" = hit ]
	[ "$(verdict -- seq 2 10)" = hit ]
	run cashet import ../all.cashet
	assert_output "imported 0 runs (2 already present)"
	run cashet fsck
	assert_success
}

# A store of five runs, and a copy of its index as it is now.
five_runs() {
	for i in 1 2 3 4 5; do
		cashet exec -- seq "$i" 3000 > /dev/null
	done
	cp .cashet/index.db "$BATS_TEST_TMPDIR/good.db"
}

# damaged_index_recovers: the next command warns once, sets the damaged
# file aside, rebuilds the index from git and goes on: a hit.
damaged_index_recovers() {
	run --separate-stderr cashet exec -v -- seq 3 3000
	assert_success
	[ "$output" = "$(seq 3 3000)" ]
	[ "$(grep -c 'was damaged' <<< "$stderr")" = 1 ]
	[[ "$stderr" == *"rebuilt from git (5 runs)"* ]]
	[[ "$stderr" == *"cashet: hit "* ]]
	ls .cashet/index.db.corrupt-* > /dev/null
	[ "$(log_count)" = 5 ]
	run --separate-stderr cashet exec -- seq 3 3000
	[ -z "$stderr" ]
}

@test "a truncated index.db is set aside and rebuilt from git, with one warning" {
	five_runs
	truncate -s 8192 .cashet/index.db
	damaged_index_recovers
	# cut in the middle of a page
	head -c 5000 "$BATS_TEST_TMPDIR/good.db" > .cashet/index.db
	damaged_index_recovers
	[ "$(ls .cashet/index.db.corrupt-* | grep -vc -- -wal)" = 2 ]
}

@test "a garbage index.db is set aside and rebuilt from git, with one warning" {
	five_runs
	head -c 65536 /dev/urandom > .cashet/index.db
	damaged_index_recovers
	run cashet log
	assert_success
	run cashet gc
	assert_success
}

@test "a store that lost its HEAD is made whole in place: its runs still hit, nothing is said to be new" {
	cashet exec -- echo kept > /dev/null
	rm .cashet/HEAD
	run verdict -- echo kept
	assert_output hit
	[ -f .cashet/HEAD ]
	# and with the index gone too: rebuilt from the refs, not an empty store
	rm .cashet/HEAD .cashet/index.db*
	run cashet exec -- echo kept
	assert_success
	assert_output kept
	refute_line --partial "created a new store"
	run verdict -- echo kept
	assert_output hit
	run cashet fsck
	assert_success
}

@test "a store directory made by hand (a config file in it) becomes a store" {
	rm -rf .cashet
	mkdir .cashet
	printf '[cashet]\n' > .cashet/config
	run cashet exec -- echo first
	assert_success
	assert_line first
	run verdict -- echo first
	assert_output hit
}

@test "an index.db damaged inside: the command that finds it fails, the next one rebuilds it" {
	five_runs
	python3 - .cashet/index.db <<-'PY'
	import os, sys
	d = bytearray(open(sys.argv[1], "rb").read())
	d[4096 * 2:] = os.urandom(len(d) - 4096 * 2)
	open(sys.argv[1], "wb").write(d)
	PY
	run --separate-stderr cashet log
	[[ "$stderr" == *"rebuilt from git by the next command"* ]]
	damaged_index_recovers
}

@test "index.db deleted with its WAL left behind: rebuilt from git, the old WAL not laid over it" {
	five_runs
	# the last transactions are still in the WAL (it is not emptied on
	# exit); SQLite drops a WAL it finds next to an empty database
	[ -s .cashet/index.db-wal ]
	rm .cashet/index.db
	run --separate-stderr cashet exec -v -- seq 3 3000
	assert_success
	[[ "$stderr" == *"cashet: hit "* ]]
	[ "$(log_count)" = 5 ]
	run cashet fsck
	assert_success
	run --separate-stderr cashet exec -- seq 6 3000
	assert_success
	[ "$(log_count)" = 6 ]
}

@test "remote remove never deletes the store's runs; a fetch never prunes them" {
	shared="$BATS_TEST_TMPDIR/shared.git"
	git init -q --bare "$shared"
	cashet exec -- echo local > /dev/null
	mkdir ../other
	(cd ../other && cashet init > /dev/null && cashet exec -- echo a > /dev/null &&
		cashet exec -- echo b > /dev/null && cashet remote add origin "$shared" && cashet push > /dev/null)
	cashet remote add origin "$shared"
	# fetch.prune in the user's git config must not prune the local run
	HOME=$BATS_TEST_TMPDIR git config --global fetch.prune true
	run env HOME="$BATS_TEST_TMPDIR" cashet pull
	assert_output "pulled 2 new runs from origin"
	[ "$(git --git-dir .cashet for-each-ref refs/cashet/runs | wc -l)" = 3 ]
	run cashet remote remove origin
	assert_success
	# and a remote added by an older cashet, with the runs as its tracking refs
	git --git-dir .cashet config remote.old.url "$shared"
	git --git-dir .cashet config remote.old.fetch '+refs/cashet/runs/*:refs/cashet/runs/*'
	run cashet remote remove old
	assert_success
	run cashet remote
	assert_output ""
	[ "$(git --git-dir .cashet for-each-ref refs/cashet/runs | wc -l)" = 3 ]
	run cashet fsck
	assert_success
	[ "$(log_count)" = 3 ]
	run cashet gc
	assert_success
	assert_output --partial "3 kept"
	for w in local a b; do
		[ "$(verdict -- echo "$w")" = hit ]
	done
}

# readonly_reason: empty when this test can make .cashet read-only (as
# root: a read-only bind mount in a private mount namespace; otherwise
# chmod), else why not.
readonly_reason() {
	[ "$(id -u)" != 0 ] && return 0
	mkdir -p "$BATS_TEST_TMPDIR/probe"
	unshare -m sh -c 'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" && ! touch "$1/x" 2> /dev/null' \
		sh "$BATS_TEST_TMPDIR/probe" 2> /dev/null ||
		echo "running as root, and no read-only bind mount (unshare -m) here: chmod does not stop root"
}

# in_readonly_store CMD...: runs CMD while .cashet is read-only.
in_readonly_store() {
	if [ "$(id -u)" = 0 ]; then
		unshare -m sh -c 'mount --bind .cashet .cashet && mount -o remount,bind,ro .cashet && exec "$@"' sh "$@"
	else
		local rc=0
		chmod -R a-w .cashet
		"$@" || rc=$?
		chmod -R u+w .cashet
		return "$rc"
	fi
}

@test "a read-only store: hits still work, a miss runs uncached with one warning and the command's own status" {
	reason=$(readonly_reason)
	[ -z "$reason" ] || skip "$reason"
	# an input old enough for the stat cache (not changed in the last 2 s)
	old="$BATS_TEST_DIRNAME/helper.bash"
	cashet exec -i "$old" -- echo cached > /dev/null
	# hashed again on the hit, and its stat cache entry cannot be written
	sqlite3 .cashet/index.db 'DELETE FROM statcache'
	run --separate-stderr in_readonly_store cashet exec -v -i "$old" -- echo cached
	assert_success
	assert_output cached
	[[ "$stderr" == "cashet: hit "* ]]
	run --separate-stderr in_readonly_store cashet exec -- sh -c 'echo new; exit 3'
	assert_failure 3
	assert_output new
	[ "$(grep -c . <<< "$stderr")" = 1 ]
	[[ "$stderr" == "cashet: warning: cannot write the store "*"; running the command without caching it" ]]
	# a piped stdin is spooled outside the store; a new input's stat is not cached
	run --separate-stderr in_readonly_store sh -c 'echo piped | cashet exec -- cat'
	assert_success
	assert_output piped
	[ "$(log_count)" = 1 ]
	[ "$(verdict -i "$old" -- echo cached)" = hit ]
}

@test "an index that cannot be opened (its 32 KiB shared-memory file past a file size limit): the command runs uncached, one warning" {
	cashet exec -- echo cached > /dev/null
	cmd="$(counted 'echo new; echo err >&2; exit 3')"
	run --separate-stderr bash -c "ulimit -f 16; cashet exec -- sh -c '$cmd'"
	assert_failure 3
	assert_output new
	[ "$(run_count)" = 1 ]
	[ "$(grep -c . <<< "$stderr")" = 2 ]
	[ "$(sed -n 1p <<< "$stderr")" = "cashet: warning: $PWD/.cashet/index.db: cannot write it: File too large; running the command without caching it" ]
	[ "$(sed -n 2p <<< "$stderr")" = err ]
	# stdin, --no-stdin, --timeout and a missing command as without cashet
	run bash -c "ulimit -f 16; echo piped | cashet exec -- cat 2> /dev/null"
	assert_output piped
	run bash -c "ulimit -f 16; echo piped | cashet exec --no-stdin -- cat 2> /dev/null"
	assert_output ""
	run bash -c "ulimit -f 16; cashet exec --timeout 0.2s -- sleep 5 2> /dev/null"
	assert_failure 124
	run -127 bash -c "ulimit -f 16; cashet exec -- no-such-command-here"
	# without the limit: nothing was stored, and the store is whole
	[ "$(log_count)" = 1 ]
	[ "$(verdict -- echo cached)" = hit ]
	run cashet fsck
	assert_success
}

@test "a pipeline whose index cannot be opened runs its steps uncached, with one warning" {
	cat > p.toml <<-'EOF'
	[steps.a]
	cmd = "echo a > a.txt"
	outputs = ["a.txt"]
	[steps.b]
	cmd = "cat a.txt > b.txt"
	deps = ["a"]
	outputs = ["b.txt"]
	EOF
	run --separate-stderr bash -c "ulimit -f 16; cashet pipeline run p.toml"
	assert_success
	[ "$(cat b.txt)" = a ]
	[ "$(grep -c warning <<< "$stderr")" = 1 ]
	[ "$(sed -n 1p <<< "$stderr")" = "cashet: warning: $PWD/.cashet/index.db: cannot write it: File too large; running the steps without caching them" ]
	[[ "$stderr" == *"pipeline: 2 ran, 0 hit, 0 failed, 0 not run"* ]]
	# nothing was stored: both run again, then are cached
	run -0 --separate-stderr cashet pipeline run p.toml
	[[ "$stderr" == *"pipeline: 2 ran, 0 hit"* ]]
	run -0 --separate-stderr cashet pipeline run p.toml
	[[ "$stderr" == *"pipeline: 0 ran, 2 hit"* ]]
}

@test "an index that cannot grow (a file size limit below its WAL): the command runs uncached, one warning" {
	for i in 1 2 3 4 5 6; do cashet exec -- echo "$i" > /dev/null; done
	[ "$(stat -c %s .cashet/index.db-wal)" -gt $((64 * 1024)) ]
	run --separate-stderr bash -c "ulimit -f 40; cashet exec -- sh -c '$(counted 'echo new; exit 3')'"
	assert_failure 3
	assert_output new
	[ "$(grep -c . <<< "$stderr")" = 1 ]
	[[ "$stderr" == "cashet: warning: $PWD/.cashet/index.db: "*": disk I/O error; running the command without caching it" ]]
	[ "$(log_count)" = 6 ]
	run cashet fsck
	assert_success
}

# in_full_store CMD...: runs CMD with .cashet on a small file system
# filled to the last byte (a tmpfs in a private mount namespace; root only),
# its WAL emptied first so that any write needs new space. What CMD writes
# there is gone after.
in_full_store() {
	unshare -m sh -c 'full=$1; shift; mkdir -p "$full" && mount -t tmpfs -o size=2M tmpfs "$full" &&
		cp -a .cashet "$full/" && mount --bind "$full/.cashet" .cashet &&
		sqlite3 .cashet/index.db "PRAGMA wal_checkpoint(TRUNCATE)" > /dev/null &&
		{ head -c 4M /dev/zero > .cashet/filler 2> /dev/null || true; } && exec "$@"' \
		sh "$BATS_TEST_TMPDIR/full" "$@"
}

@test "a full disk is said in one line naming the store's index, never as a failed ROLLBACK" {
	for i in 1 2 3 4 5 6; do cashet exec -- echo "$i" > /dev/null; done
	# a file size limit: SQLite rolled back already, its error is the one said
	for c in fsck reindex; do
		run --separate-stderr bash -c "ulimit -f 40; cashet $c"
		assert_failure 1
		[ "${#stderr_lines[@]}" = 1 ]
		[[ "$stderr" == "cashet: $PWD/.cashet/index.db: "* ]]
		[[ "$stderr" != *ROLLBACK* ]]
	done
	[ "$(id -u)" = 0 ] && unshare -m true 2> /dev/null || skip "a full disk needs a tmpfs mount (root, unshare -m)"
	for c in fsck reindex "rm $(last_hash)" "clear -f"; do
		# shellcheck disable=SC2086
		run --separate-stderr in_full_store cashet $c
		assert_failure 1
		[ "$stderr" = "cashet: $PWD/.cashet/index.db: cannot write it: No space left on device" ]
	done
	# the command runs, uncached, with one warning
	run --separate-stderr in_full_store cashet exec -- sh -c 'echo new; exit 3'
	assert_failure 3
	assert_output new
	[ "$stderr" = "cashet: warning: $PWD/.cashet/index.db: cannot write it: No space left on device; running the command without caching it" ]
	run -0 cashet fsck
}

@test "a config file git would refuse: one warning naming its line, the settings around it still apply, the command runs" {
	cashet config trace off
	# a line written by hand that is not a setting, after the store's own
	printf 'oops, not a setting\n' >> .cashet/config
	bad=$(grep -n oops .cashet/config | cut -d: -f1)
	run --separate-stderr cashet exec -- sh -c 'echo ran; exit 2'
	assert_failure 2
	assert_output ran
	[ "$stderr" = "cashet: warning: $PWD/.cashet/config:$bad: not a 'key = value' line; the settings around it still apply (fix it with an editor)" ]
	# trace off still holds: the run has no observed inputs
	[ "$(cashet show --json "$(last_hash)" 2> /dev/null | json_field 'j["observed"]')" = none ]
	# what git takes is not warned of: a byte order mark, a flag without
	# a value, a value continued on the next line, CRLF line ends
	printf '\xef\xbb\xbf[core]\r\n\tbare = true\r\n[cashet]\n\tignore = a,\\\n b\n\tflag\n' > .cashet/config
	run -0 --separate-stderr cashet exec -- true
	[ "$stderr" = "" ]
	# a section header without its ']'
	printf '[cashet\n' > .cashet/config
	run --separate-stderr cashet exec -- true
	assert_success
	[ "$stderr" = "cashet: warning: $PWD/.cashet/config:1: a section header without its ']'; the settings around it still apply (fix it with an editor)" ]
}

@test "a bad value in the config: set, refused with the config unchanged; edited in, named by file and line, exec runs uncached" {
	cashet exec -- echo cached > /dev/null
	cp .cashet/config before
	for kv in "auto-pack 99999999999999999999" "auto-pack 12x" "max-size lots" "stdin-limit 99999999T" \
		"trace maybe" "auto-outputs 2" "remote-mode write"; do
		# shellcheck disable=SC2086
		run --separate-stderr cashet config $kv
		assert_failure 2
		[ "${#stderr_lines[@]}" = 1 ]
		[[ "$stderr" == "cashet config: ${kv%% *}: "* ]]
		cmp before .cashet/config
	done
	run --separate-stderr cashet config auto-pack 99999999999999999999
	[ "$stderr" = "cashet config: auto-pack: expected a number of loose objects from 0 (never) to 2147483647, got '99999999999999999999' (see 'cashet config --help')" ]
	# written by hand: every command names it; exec still runs the command
	printf '[cashet]\n\tauto-pack = 1e3\n' >> .cashet/config
	line=$(grep -n 1e3 .cashet/config | cut -d: -f1)
	why="$PWD/.cashet/config:$line: auto-pack: expected a number of loose objects from 0 (never) to 2147483647, got '1e3'"
	for c in log stats fsck gc "config auto-pack"; do
		# shellcheck disable=SC2086
		run --separate-stderr cashet $c
		assert_failure 1
		[ "$stderr" = "cashet: $why" ]
	done
	run --separate-stderr cashet exec -- sh -c "$(counted 'echo cached')"
	assert_success
	assert_output cached
	[ "$stderr" = "cashet: warning: $why; running the command without caching it" ]
	[ "$(run_count)" = 1 ]
	# config mends it; then all is as it was
	run -0 cashet config auto-pack 1000
	run -0 cashet config auto-pack
	assert_output 1000
	[ "$(verdict -- echo cached)" = hit ]
	[ "$(log_count)" = 1 ]
}

@test "a capture that hits a full disk: the output still flows, the command finishes with its status, nothing is stored" {
	# 3 MB of output; the capture file may grow to 1 MiB (index.db stays smaller)
	cmd="$(counted 'head -c 3000000 /dev/zero; echo done >&2; exit 3')"
	run --separate-stderr bash -c "ulimit -f 1024; cashet exec -- sh -c '$cmd' | wc -c; exit \${PIPESTATUS[0]}"
	assert_failure 3
	assert_output 3000000
	[[ "$stderr" == *"done"* ]]
	[[ "$stderr" == *"result not stored: cannot capture the command's output in "*"File too large"* ]]
	[ "$(log_count)" = 0 ]
	run ls -A .cashet/tmp
	assert_output ""
	# a command that succeeds: the same, exit 0, and the next run runs again
	run bash -c "ulimit -f 1024; cashet exec -- sh -c '$(counted 'head -c 3000000 /dev/zero')' 2> /dev/null | wc -c; exit \${PIPESTATUS[0]}"
	assert_success
	assert_output 3000000
	[ "$(log_count)" = 0 ]
	[ "$(run_count)" = 2 ]
}

# peak_kb FILE CMD...: runs CMD (stdout to FILE) and prints its peak RSS in KiB.
peak_kb() {
	local out=$1
	shift
	/usr/bin/time -f %M -o "$BATS_TEST_TMPDIR/rss" "$@" > "$out"
	cat "$BATS_TEST_TMPDIR/rss"
}

@test "a hit streams a large stdout in bounded memory, and still never writes a corrupt one" {
	[ -x /usr/bin/time ] || skip "no /usr/bin/time to measure the peak RSS"
	# 39 MB of stdout from a small command (a large input file would be
	# hashed from an mmap, which counts in the RSS too)
	seq 1 5000000 > want.txt
	cashet exec -- seq 1 5000000 > /dev/null
	h=$(last_hash)
	cashet exec -- echo small > /dev/null
	base=$(peak_kb small.out cashet exec -- echo small)
	rss=$(peak_kb out.txt cashet exec -- seq 1 5000000)
	cmp want.txt out.txt
	echo "peak RSS: small hit $base KiB, 39 MB hit $rss KiB"
	[ $((rss - base)) -lt 24576 ]
	rss=$(peak_kb out2.txt cashet get "$h")
	cmp want.txt out2.txt
	[ $((rss - base)) -lt 24576 ]
	# gc leaves a large blob loose (git's bigFileThreshold), everything
	# else goes into its pack
	cp -r .cashet "$BATS_TEST_TMPDIR/loose-store"
	oid=$(oid_of "$h" 0)
	cashet gc > /dev/null
	[ "$(find .cashet/objects -type f ! -path '*/pack/*')" = ".cashet/objects/${oid:0:2}/${oid:2}" ]
	# packed (by git, whole): read from the pack the same way, without libgit2
	git --git-dir .cashet repack -adqn
	[ -z "$(find .cashet/objects -type f ! -path '*/pack/*')" ]
	rss=$(peak_kb out.txt cashet exec -- seq 1 5000000)
	cmp want.txt out.txt
	echo "packed: $rss KiB"
	[ $((rss - base)) -lt 24576 ]
	rm -rf .cashet && mv "$BATS_TEST_TMPDIR/loose-store" .cashet
	# one byte changed near the end, properly deflated: found before any
	# byte is written, so the output is exactly the command's own
	oid=$(oid_of "$h" 0)
	obj=".cashet/objects/${oid:0:2}/${oid:2}"
	flip_byte "$obj" 10 1
	run --separate-stderr bash -c 'cashet exec -- seq 1 5000000 > out3.txt'
	assert_success
	[[ "$stderr" == *"corrupt"* ]]
	cmp want.txt out3.txt
}

@test "a killed pipeline's log directory is swept by the next pipeline" {
	export TMPDIR="$BATS_TEST_TMPDIR/tmp"
	mkdir -p "$TMPDIR"
	cat > dag.toml <<-'TOML'
	[steps.slow]
	cmd = "echo $$ > step.pid; sleep 30"
	outputs = []
	TOML
	cashet pipeline run > /dev/null 2>&1 3>&- &
	pipeline=$!
	track_pid "$pipeline"
	wait_for_file step.pid
	track_pid "-$(cat step.pid)"
	kill -9 "$pipeline"
	wait "$pipeline" || true
	kill -9 -- "-$(cat step.pid)" 2> /dev/null || true
	[ "$(ls "$TMPDIR" | grep -c '^cashet-pipeline\.')" = 1 ]
	# a live process's directory is left alone
	mkdir "$TMPDIR/cashet-pipeline.$$-live"
	cat > dag.toml <<-'TOML'
	[steps.quick]
	cmd = "echo quick"
	TOML
	run cashet pipeline run
	assert_success
	run ls "$TMPDIR"
	assert_output "cashet-pipeline.$$-live"
}

@test "a run from an archive with files where this project keeps its store: the replay refuses, the command runs, the store intact" {
	# made where the store is elsewhere (CASHET_DIR) and .cashet a plain
	# directory (no HEAD: no store, so -o . stores it)
	rm -rf .cashet
	export CASHET_DIR="$PWD/.other"
	cashet init > /dev/null
	mkdir .cashet
	echo planted > .cashet/config
	cashet exec -o . -- true
	cashet export ../runs.cashet > /dev/null
	unset CASHET_DIR
	mkdir ../proj2 && cd ../proj2
	cashet exec -- echo mine > /dev/null
	cp .cashet/config ../config.before
	run cashet import ../runs.cashet
	assert_success
	run verdict -o . -- true
	assert_output miss
	cmp .cashet/config ../config.before
	run cashet fsck
	assert_success
	run verdict -- echo mine
	assert_output hit
	# the run made here instead replays
	run verdict -o . -- true
	assert_output hit
}

@test "a replay never writes through a symlink another run left, absolute or relative (runs from an archive)" {
	make_link_runs
	cashet export ../runs.cashet > /dev/null
	mkdir ../proj2 && cd ../proj2
	run cashet import ../runs.cashet
	assert_output "imported 4 runs (0 already present)"
	check_link_replays
}

# redis_stub MODE: a fake Redis server on a free port of 127.0.0.1 (sets
# PORT), tracked for teardown. drip: every reply announces 100000 bytes and
# sends one every 300 ms; huge: every reply is 200 MB, sent as fast as the
# client reads; held: SET NX says the lock is held, GET finds nothing, and
# PTTL answers $PTTL (-1: no expiry, -2: no such key).
redis_stub() {
	PORT=$(free_port)
	rm -f "$BATS_TEST_TMPDIR/stub.up"
	# from a subshell, so that the test's shell does not report the kill
	(python3 -c '
import socket, sys, threading, time
mode, port, ready, pttl = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
def command(f):
    line = f.readline()
    if not line.startswith(b"*"):
        return None
    args = []
    for _ in range(int(line[1:])):
        n = int(f.readline()[1:])
        args.append(f.read(n + 2)[:-2].decode("latin-1"))
    return args
def serve(c):
    f = c.makefile("rb")
    try:
        while True:
            args = command(f)
            if args is None:
                return
            name = args[0].upper()
            if mode == "drip":
                c.sendall(b"$100000\r\n")
                for _ in range(100000):
                    c.sendall(b"x")
                    time.sleep(0.3)
            elif mode == "huge":
                c.sendall(b"$200000000\r\n")
                chunk = b"a" * 65536
                for _ in range(200000000 // 65536):
                    c.sendall(chunk)
            elif name == "SET" and "NX" in [a.upper() for a in args]:
                c.sendall(b"$-1\r\n")
            elif name == "GET":
                c.sendall(b"$-1\r\n")
            elif name == "PTTL":
                c.sendall(b":" + pttl.encode() + b"\r\n")
            else:
                c.sendall(b"+OK\r\n")
    except OSError:
        pass
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", port))
s.listen(8)
open(ready, "w").write("up")
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
' "$1" "$PORT" "$BATS_TEST_TMPDIR/stub.up" "${PTTL:--2}" 3>&- &
		echo $! > "$BATS_TEST_TMPDIR/stub.pid")
	track_pid "$(cat "$BATS_TEST_TMPDIR/stub.pid")"
	wait_for_file "$BATS_TEST_TMPDIR/stub.up"
}

# remote_exec [WORD]: an exec of a new command through the stub, at most
# 30 s; sets ms (its duration).
remote_exec() {
	local t0
	t0=$(date +%s%N)
	run --separate-stderr timeout -s KILL 30 cashet exec --remote "redis://127.0.0.1:$PORT/0" -- sh -c "$(counted "echo ran ${1:-}")"
	ms=$((($(date +%s%N) - t0) / 1000000))
}

@test "a Redis that drips its reply is cut off at the command's deadline: one warning, the command runs" {
	redis_stub drip
	remote_exec
	assert_success
	assert_output ran
	[ "$stderr" = "cashet: warning: remote redis://127.0.0.1:$PORT/0: no complete reply within 2000 ms; working locally" ]
	[ "$ms" -lt 5000 ]
}

@test "a Redis reply larger than allowed is refused as it arrives, not read into memory" {
	[ -x /usr/bin/time ] || skip "no /usr/bin/time to measure the peak RSS"
	redis_stub huge
	cashet exec -- echo small > /dev/null
	base=$(peak_kb small.out cashet exec -- echo small)
	rss=$(peak_kb out timeout -s KILL 30 cashet exec --remote "redis://127.0.0.1:$PORT/0" -- echo ran 2> err)
	[ "$(cat out)" = ran ]
	grep -q "a reply of more than 4096 bytes; working locally" err
	[ $((rss - base)) -lt 24576 ]
}

@test "a remote lock that never expires, or that the server says is held but cannot show, is not waited for forever" {
	PTTL=-1 redis_stub held
	remote_exec
	assert_success
	assert_output ran
	[[ "$stderr" == *"its lock on this command never expires; not waiting for it; working locally" ]]
	[ "$ms" -lt 3000 ]
	kill_started
	PTTL=-2 redis_stub held
	remote_exec again
	assert_success
	assert_output "ran again"
	[[ "$stderr" == *"its lock on this command was reported held but cannot be seen; not waiting any longer; working locally" ]]
	[ "$ms" -ge 2000 ]
	[ "$ms" -lt 6000 ]
	[ "$(run_count)" = 2 ]
}

# edited_while_running ARGS...: runs exec ARGS (a 1-second command that
# first creates the file started) while another process appends to the
# file named by $target once the command has started (not after a fixed
# delay: a loaded machine can start cashet later than that), and checks
# the report: nothing stored, the file named.
edited_while_running() {
	rm -f started
	(while [ ! -e started ]; do sleep 0.05; done; echo 2 >> "$target") &
	track_pid $!
	run sh -c 'cashet exec --trace=off --report-fd 3 "$@" 3>&1 >/dev/null 2>/dev/null' sh "$@"
	echo "$output" | python3 -c '
import json, sys
r = json.loads(sys.stdin.readline())
assert r["verdict"] == "not-stored", r
assert r["note"] == "warning: result not stored: changed while the command ran: " + sys.argv[1], r["note"]
' "$target"
}

@test "a replay killed with -9 leaves its temp file beside the output: the next replay removes it, a live one's and another host's stay" {
	cmd=$(counted 'head -c 300000 /dev/urandom > big.bin; mkdir -p sub; echo s > sub/s')
	cashet exec -o big.bin -o sub -- sh -c "$cmd"
	cp big.bin want.bin
	host=$(hostname | cut -d. -f1)
	sh -c 'exit 0' &
	dead=$!
	wait "$dead"
	# what a replay killed part-way leaves: part of the file, under a
	# temp name (this cashet's, and an older one's without the host)
	head -c 1000 want.bin > "big.bin.cashet-tmp.$dead.$host"
	head -c 1000 want.bin > "big.bin.cashet-tmp.$dead"
	echo x > "sub/s.cashet-tmp.$dead.$host"
	# a replay under way here, and one on another host sharing the project
	echo x > "big.bin.cashet-tmp.$$.$host"
	echo x > "big.bin.cashet-tmp.$dead.elsewhere"
	rm big.bin sub/s
	n=$(run_count)
	run -0 --separate-stderr cashet exec -o big.bin -o sub -- sh -c "$cmd"
	[ "$stderr" = "" ]
	[ "$(run_count)" = "$n" ]
	cmp big.bin want.bin
	[ "$(cat sub/s)" = s ]
	run env LC_ALL=C ls -A . sub
	assert_output "$(printf '%s\n' .: .cashet big.bin "big.bin.cashet-tmp.$$.$host" "big.bin.cashet-tmp.$dead.elsewhere" sub want.bin '' sub: s)"
}

@test "a declared input edited while the command runs: nothing stored, the note names it (-i file, argument, -i dir)" {
	mkdir dir
	echo 1 > in.txt
	echo 1 > arg.txt
	echo 1 > dir/f
	target=in.txt edited_while_running -i in.txt -- sh -c ': > started; sleep 1'
	target=arg.txt edited_while_running -- sh -c ': > started; sleep 1' arg.txt
	target=dir/f edited_while_running -i dir -- sh -c ': > started; sleep 1'
}

@test "a pipeline killed with -9 takes its running steps down: the step stops, nothing is stored" {
	cat > dag.toml <<-'TOML'
	[steps.slow]
	cmd = "echo $$ > step.pid; sleep 30"
	TOML
	cashet pipeline run > /dev/null 2>&1 3>&- &
	pipeline=$!
	track_pid "$pipeline"
	wait_for_file step.pid
	track_pid "-$(cat step.pid)"
	kill -9 "$pipeline"
	wait "$pipeline" || true
	pid_gone "$(cat step.pid)"
	[ "$(cashet log --json | json_field 'len(j)')" = 0 ]
	run cashet fsck
	assert_success
}

@test "closed standard streams: the command's own status, and a closed stdin still caches" {
	# stdin and stdout closed: cashet's own pipes must not take their
	# numbers (its signal pipe did, and the output came back as signals)
	rc=0
	cashet exec --no-cache -- sh -c 'echo hello; printf "x\t"; echo ok >&2' >&- <&- 2> err || rc=$?
	assert_equal "$rc" 0
	assert_equal "$(cat err)" ok
	rc=0
	cashet exec --no-cache -- sh -c 'echo hello; exit 3' >&- <&- || rc=$?
	assert_equal "$rc" 3
	[ "$(verdict -- echo closed <&-)" = miss ]
	[ "$(verdict -- echo closed <&-)" = hit ]
}

# damaged_loose REV: a run of `echo hello` in a new store, and the path of
# its loose object REV (`tree`, `meta`: as `git rev-parse RUN^{tree}` or
# `RUN:meta` name it), made writable for the test to damage.
damaged_loose() {
	local run id f
	cashet exec -- echo hello > /dev/null
	run=$(ls .cashet/refs/cashet/runs/)
	case $1 in
	tree) id=$(git --git-dir .cashet rev-parse "$run^{tree}") ;;
	*) id=$(git --git-dir .cashet rev-parse "$run:$1") ;;
	esac
	f=.cashet/objects/${id:0:2}/${id:2}
	chmod u+w "$f"
	echo "$f"
}

# assert_loose_damage_handled LINE: fsck names the damaged object (LINE),
# gc stops, an exec that must rebuild its index still runs its command,
# fsck --prune drops the run and the store checks clean: never a crash or
# a hang on the way.
assert_loose_damage_handled() {
	run timeout 20 cashet fsck
	assert_equal "$status" 1
	assert_line "$1"
	run timeout 20 cashet gc
	assert_equal "$status" 1
	rm -f .cashet/index.db*
	run timeout 20 cashet exec -- echo hello
	assert_success
	assert_line hello
	run timeout 20 cashet fsck --prune
	assert_success
	run cashet fsck
	assert_success
}

@test "a loose object longer or shorter than its header says: named by fsck, pruned, never a crash or a hang" {
	local f id
	# the tree: content past its header's size (libgit2 overflowed on it)
	f=$(damaged_loose tree)
	id=${f#.cashet/objects/}
	id=${id/\//}
	python3 -c "import sys, zlib; open(sys.argv[1], 'wb').write(zlib.compress(b'tree 10\0' + b'A' * 100000))" "$f"
	assert_loose_damage_handled "object $id: loose object $id is corrupt (longer than its header says)"
	# meta cut short (libgit2 spun in inflate for ever), in a store of its own
	mkdir short
	cd short
	cashet init > /dev/null
	f=$(damaged_loose meta)
	id=${f#.cashet/objects/}
	id=${id/\//}
	truncate -s $(($(stat -c %s "$f") / 2)) "$f"
	assert_loose_damage_handled "object $id: loose object $id is corrupt (cut short or damaged)"
}
