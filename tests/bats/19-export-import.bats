#!/usr/bin/env bats
# `cashet export FILE` writes runs to one archive file (a manifest and a
# git pack); `cashet import FILE` adds them to another store, so a second
# checkout replays results it never computed. Import checks every object
# and every path first and is all or nothing: a damaged archive, or a run
# that would write outside the project, leaves the store exactly as it was.

load helper

setup() {
	common_setup
	cashet init > /dev/null
}

g() {
	git --git-dir .cashet "$@"
}

# build: a small stdout, a small output and one too big to be inlined in
# the index, so a hit after import reads packed objects through libgit2.
build='cat in > out; head -c 200000 /dev/urandom > big.bin; echo built'

# The commit ids of the store, sorted.
hashes() {
	cashet log --json | python3 -c 'import json,sys; [print(r["hash"]) for r in json.load(sys.stdin)]' | sort
}

# A second checkout of the project: the same files, no store, no outputs.
clone_project() {
	mkdir -p ../proj2
	cp in ../proj2/ 2>/dev/null || true
	(cd ../proj2 && cashet init > /dev/null)
}

# pack_offset FILE: where the pack starts (after the manifest's "pack" line).
pack_offset() {
	python3 -c 'import sys; d = open(sys.argv[1], "rb").read(); i = d.index(b"\npack "); print(d.index(b"\n", i + 1) + 1)' "$1"
}

# flip FILE OFFSET: inverts one byte of FILE.
flip() {
	python3 -c 'import sys
p, o = sys.argv[1], int(sys.argv[2])
d = bytearray(open(p, "rb").read()); d[o] ^= 0xff; open(p, "wb").write(d)' "$1" "$2"
}

# The store in the current directory has no runs, no refs and no packs.
assert_empty_store() {
	run cashet log --json
	assert_output "[]"
	run g for-each-ref
	assert_output ""
	run find .cashet/objects/pack -type f
	assert_output ""
	[ ! -e .cashet/shallow ]
	run find .cashet/tmp -mindepth 1
	assert_output ""
}

@test "round trip into an empty store: a hit there without running, outputs restored" {
	echo data > in
	cashet exec -n train -t stage=fit -i in -o out -o big.bin -- sh -c "$(counted "$build")" > /dev/null
	cashet exec -- sh -c "$(counted 'echo second')" > /dev/null
	[ "$(run_count)" = 2 ]
	hashes > ../before
	run cashet export ../runs.cashet
	assert_success
	assert_output --regexp '^exported 2 runs \([0-9.]+K\) to \.\./runs\.cashet$'
	cp big.bin ../big.orig
	clone_project
	cd ../proj2
	run cashet import ../runs.cashet
	assert_success
	assert_output "imported 2 runs (0 already present)"
	hashes > ../after
	diff ../before ../after
	# the same run, tags and name included
	run cashet log --name train --tag stage=fit --json
	[ "$(echo "$output" | json_field 'len(j)')" = 1 ]
	# a hit: nothing runs, stdout replayed, both outputs restored
	run cashet exec -n train -t stage=fit -i in -o out -o big.bin -- sh -c "$(counted "$build")"
	assert_success
	assert_output built
	[ "$(run_count)" = 2 ]
	[ "$(cat out)" = data ]
	cmp big.bin ../big.orig
	run verdict -- sh -c "$(counted 'echo second')"
	assert_output hit
	[ "$(run_count)" = 2 ]
	run g fsck --no-dangling
	assert_success
	# the index is the same as one rebuilt from git
	cashet log --json > ../log.imported
	run cashet reindex
	assert_output "reindexed 2 runs"
	cashet log --json > ../log.reindexed
	diff ../log.imported ../log.reindexed
}

@test "a run whose parent is not exported: a shallow root for git, a first run for cashet" {
	echo 1 > in
	cashet exec -i in -- sh -c "$(counted 'cat in')" > /dev/null
	h1=$(last_hash)
	echo 2 > in
	cashet exec -i in -- sh -c "$(counted 'cat in')" > /dev/null
	h2=$(last_hash)
	[ "$(g rev-parse "$h2^")" = "$h1" ]
	cashet export ../one.cashet "${h2:0:8}" > /dev/null
	clone_project
	cd ../proj2
	run cashet import ../one.cashet
	assert_output "imported 1 run (0 already present)"
	run cat .cashet/shallow
	assert_output "$h2"
	run g fsck --no-dangling
	assert_success
	run g log --format=%H "refs/cashet/runs/$h2"
	assert_success
	assert_output "$h2"
	run cashet show "$h2"
	assert_success
	assert_line --regexp "^parent +$h1$"
	run cashet exec -i in -- sh -c "$(counted 'cat in')"
	assert_output 2
	[ "$(run_count)" = 2 ]
	# the command line's history continues from the imported run
	echo 3 > in
	cashet exec -i in -- sh -c "$(counted 'cat in')" > /dev/null
	[ "$(g rev-parse "$(last_hash)^")" = "$h2" ]
	run g fsck --no-dangling
	assert_success
}

@test "filters: --tag, --name and hashes select what is exported" {
	cashet exec -n a -t team=x -- echo a > /dev/null
	ha=$(last_hash)
	cashet exec -n b -t team=x -t big -- echo b > /dev/null
	hb=$(last_hash)
	cashet exec -n c -- echo c > /dev/null
	hc=$(last_hash)
	cashet export ../team.cashet --tag team=x > /dev/null
	cashet export ../big.cashet -t big > /dev/null
	cashet export ../named.cashet --name c > /dev/null
	run cashet export ../two.cashet "${ha:0:6}" "$hc"
	assert_output --regexp '^exported 2 runs '
	run cashet export ../both.cashet --tag team=x "$hb"
	assert_output --regexp '^exported 1 run '
	mkdir ../other && cd ../other
	for f in team big named two both; do
		rm -rf .cashet
		cashet init > /dev/null
		cashet import "../$f.cashet" > /dev/null
		echo "$f: $(hashes | tr '\n' ' ')"
	done > ../got
	cat > ../want <<-EOF
	team: $(printf '%s\n' "$ha" "$hb" | sort | tr '\n' ' ')
	big: $hb 
	named: $hc 
	two: $(printf '%s\n' "$ha" "$hc" | sort | tr '\n' ' ')
	both: $hb 
	EOF
	diff ../want ../got
	cd ../proj
	# a hash the filters exclude, an unknown hash, no match at all
	run cashet export ../x.cashet --tag team=x "$hc"
	assert_failure 1
	assert_output --partial "does not match"
	run cashet export ../x.cashet 0000000
	assert_failure 1
	assert_output --partial "no run matches"
	run cashet export ../x.cashet --name nobody
	assert_failure 1
	assert_output --partial "no runs to export"
	[ ! -e ../x.cashet ]
	run ls ..
	refute_output --partial ".tmp-"
}

@test "empty strings survive export and import: an argument, --name, an env value" {
	empty_values_run
	run cashet export ../runs.cashet
	assert_success
	clone_project
	cd ../proj2
	run cashet import ../runs.cashet
	assert_output "imported 1 run (0 already present)"
	assert_empty_values
}

@test "importing again is a no-op; runs the store has are skipped" {
	cashet exec -- echo a > /dev/null
	cashet export ../a.cashet > /dev/null
	cashet exec -- echo b > /dev/null
	cashet export ../ab.cashet > /dev/null
	# the archive's own store has them all
	run cashet import ../ab.cashet
	assert_success
	assert_output "imported 0 runs (2 already present)"
	clone_project
	cd ../proj2
	cashet import ../a.cashet > /dev/null
	run cashet import ../ab.cashet
	assert_output "imported 1 run (1 already present)"
	find .cashet/objects/pack -type f | sort > ../packs.before
	run cashet import ../ab.cashet
	assert_success
	assert_output "imported 0 runs (2 already present)"
	find .cashet/objects/pack -type f | sort > ../packs.after
	diff ../packs.before ../packs.after
	[ "$(log_count)" = 2 ]
}

@test "a damaged pack is refused and nothing is imported" {
	cashet exec -- echo a > /dev/null
	head -c 100000 /dev/urandom > big
	cashet exec -- cat big > /dev/null
	cashet export ../good.cashet > /dev/null
	off=$(pack_offset ../good.cashet)
	size=$(stat -c %s ../good.cashet)
	clone_project
	cd ../proj2
	for at in 0 12 $((size / 2)) $((size - off - 1)); do
		cp ../good.cashet ../bad.cashet
		flip ../bad.cashet $((off + at))
		run cashet import ../bad.cashet
		assert_failure 1
		assert_output --regexp '^cashet: \.\./bad\.cashet: '
		[ "${#lines[@]}" = 1 ]
		assert_empty_store
	done
	# the good one still imports
	run cashet import ../good.cashet
	assert_output "imported 2 runs (0 already present)"
}

@test "truncated archives, other files and a damaged manifest are refused" {
	cashet exec -- echo a > /dev/null
	cashet export ../good.cashet > /dev/null
	clone_project
	cd ../proj2
	off=$(pack_offset ../good.cashet)
	head -c $((off + 100)) ../good.cashet > ../short.cashet
	run cashet import ../short.cashet
	assert_failure 1
	assert_output --regexp '^cashet: \.\./short\.cashet: the archive is truncated'
	head -c 30 ../good.cashet > ../cut.cashet
	run cashet import ../cut.cashet
	assert_failure 1
	assert_output --partial "cut.cashet: the archive is truncated"
	{ cat ../good.cashet; echo extra; } > ../long.cashet
	run cashet import ../long.cashet
	assert_failure 1
	assert_output --partial "unexpected data after the pack"
	echo 'just text' > ../notes.txt
	run cashet import ../notes.txt
	assert_failure 1
	assert_output "cashet: ../notes.txt: not a cashet archive"
	: > ../empty
	run cashet import ../empty
	assert_output "cashet: ../empty: not a cashet archive"
	head -c 5000 /dev/urandom > ../random.bin
	run cashet import ../random.bin
	assert_failure 1
	sed '1s/ 1$/ 9/' ../good.cashet > ../future.cashet
	run cashet import ../future.cashet
	assert_output --partial "archive format 9 is not supported"
	# a run id in the manifest that is not in the pack
	sed -E '2s/^run [0-9a-f]{40}$/run 0123456789012345678901234567890123456789/' ../good.cashet > ../other.cashet
	run cashet import ../other.cashet
	assert_failure 1
	assert_output --partial "is missing from the archive's pack"
	run cashet import ../nowhere.cashet
	assert_failure 1
	assert_output --partial "nowhere.cashet"
	assert_empty_store
}

@test "an output outside the project is refused without --allow-absolute" {
	outside="$BATS_TEST_TMPDIR/outside.txt"
	cashet exec -- echo plain > /dev/null
	cashet exec -o "$outside" -- sh -c "$(counted "echo abs > '$outside'")" > /dev/null
	g ls-tree -r --name-only "$(last_hash)" | grep -q '^abs/'
	cashet export ../abs.cashet > /dev/null
	clone_project
	cd ../proj2
	run cashet import ../abs.cashet
	assert_failure 1
	assert_output --partial "has an output outside its project ($outside)"
	assert_output --partial "--allow-absolute"
	# all or nothing: the harmless run is not imported either
	assert_empty_store
	run cashet import --allow-absolute ../abs.cashet
	assert_output "imported 2 runs (0 already present)"
	rm "$outside"
	run cashet exec -o "$outside" -- sh -c "$(counted "echo abs > '$outside'")"
	[ "$(run_count)" = 1 ]
	[ "$(cat "$outside")" = abs ]
}

@test "a crafted archive with a path that escapes the project is refused" {
	cashet exec -o evil -- sh -c 'echo ok > evil' > /dev/null
	h=$(last_hash)
	# Rebuild the run's tree with files/../evil (git itself does not stop this).
	work="$BATS_TEST_TMPDIR/craft.git"
	git init -q --bare "$work"
	echo "$PWD/.cashet/objects" > "$work/objects/info/alternates"
	gw() { git --git-dir "$work" "$@"; }
	meta=$(g show "$h:meta" | sed 's#files/evil$#files/../evil#' | gw hash-object -w --stdin)
	blob=$(echo pwned | gw hash-object -w --stdin)
	inner=$(printf '100644 blob %s\tevil\n' "$blob" | gw mktree)
	files=$(printf '040000 tree %s\t..\n' "$inner" | gw mktree)
	root=$({ g ls-tree "$h" | grep -vE $'\t(meta|files)$'
		printf '100644 blob %s\tmeta\n040000 tree %s\tfiles\n' "$meta" "$files"; } | gw mktree)
	commit=$(echo crafted | gw commit-tree "$root")
	gw rev-list --objects "$commit" | cut -d' ' -f1 | gw pack-objects --stdout > ../crafted.pack
	{
		echo "cashet-archive 1"
		echo "run $commit"
		printf 'pack %020d\n' "$(stat -c %s ../crafted.pack)"
		cat ../crafted.pack
	} > ../crafted.cashet
	clone_project
	cd ../proj2
	run cashet import ../crafted.cashet
	assert_failure 1
	assert_output --partial "bad file name '..'"
	assert_empty_store
	[ ! -e ../evil ]
}

@test "usage errors exit 2; --help lists the options" {
	run cashet export
	assert_failure 2
	run cashet export ../x --bogus
	assert_failure 2
	run cashet import
	assert_failure 2
	run cashet import a b
	assert_failure 2
	run cashet import --bogus x
	assert_failure 2
	run cashet export --help
	assert_success
	assert_output --partial "--name"
	assert_output --partial "--tag"
	run cashet import --help
	assert_success
	assert_output --partial "--allow-absolute"
}

@test "import creates the store when there is none; --store picks another" {
	cashet exec -- echo a > /dev/null
	cashet export ../a.cashet > /dev/null
	mkdir ../fresh && cd ../fresh
	run cashet import ../a.cashet
	assert_success
	assert_output "imported 1 run (0 already present)"
	[ -d .cashet ]
	run cashet --store "$BATS_TEST_TMPDIR/elsewhere/.cashet" import ../a.cashet
	assert_output "imported 1 run (0 already present)"
	run cashet --store "$BATS_TEST_TMPDIR/elsewhere/.cashet" log --json
	[ "$(echo "$output" | json_field 'len(j)')" = 1 ]
}

@test "a failure after the pack is in place undoes everything" {
	cashet exec -- echo a > /dev/null
	cashet exec -- echo b > /dev/null
	cashet export ../ab.cashet > /dev/null
	last=$(hashes | tail -n 1)
	clone_project
	cd ../proj2
	# a directory where the last run's ref would go: its ref cannot be
	# written, after the pack was moved in and the first ref written
	mkdir -p ".cashet/refs/cashet/runs/$last"
	echo "$last" > ".cashet/refs/cashet/runs/$last/blocker"
	run cashet import ../ab.cashet
	assert_failure 1
	assert_output --partial "refs/cashet/runs/$last"
	rm -r ".cashet/refs/cashet/runs/$last"
	assert_empty_store
	run cashet import ../ab.cashet
	assert_output "imported 2 runs (0 already present)"
}

@test "archives imported into one store at the same time are all imported" {
	# a pipeline's Slurm jobs hand their runs back this way, several at once
	for i in 1 2 3 4 5 6 7 8; do
		cashet exec -- sh -c "echo $i" > /dev/null
		cashet export "a$i" "$(cashet log --json -n 1 | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["hash"])')" > /dev/null
	done
	hashes > ../exported
	mkdir ../other && cd ../other && cashet init > /dev/null
	for i in 1 2 3 4 5 6 7 8; do
		cashet import "../proj/a$i" > "out$i" 2>&1 &
	done
	fails=0
	for job in $(jobs -p); do wait "$job" || fails=$((fails + 1)); done
	cat out*
	assert_equal "$fails" 0
	assert_equal "$(hashes)" "$(cat ../exported)"
}
