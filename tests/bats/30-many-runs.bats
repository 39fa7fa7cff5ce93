#!/usr/bin/env bats
# Stores with many runs: loose objects and refs are packed as a miss
# stores its run (`config auto-pack`, git's gc --auto), so the store stays
# small and a real git repository, and every run still replays.

load helper

# The loose object files of the store (large blobs included).
loose_count() {
	find .cashet/objects -path '*/objects/??/*' -type f | wc -l | tr -d ' '
}

@test "auto-pack packs loose objects and refs; git fsck and cashet fsck pass, refs resolve, hits hit" {
	cashet init > /dev/null
	cashet config auto-pack 16
	for i in $(seq 1 30); do cashet exec --trace off -- echo "run $i" > /dev/null; done
	# 4 objects a run: packed whenever more than 16 were loose
	[ "$(loose_count)" -le 16 ]
	# the fan-out directories it emptied are kept, for the next runs'
	# objects: all of them there, and more of them than hold an object
	[ "$(find .cashet/objects -mindepth 1 -maxdepth 1 -type d -name '??' | wc -l)" -gt \
		"$(find .cashet/objects -path '*/objects/??/*' -type f | sed 's,/[^/]*$,,' | sort -u | wc -l)" ]
	# packs merged as they come (each at least twice all smaller ones), deltas kept
	[ "$(ls .cashet/objects/pack/pack-*.pack | wc -l)" -le 3 ]
	for idx in .cashet/objects/pack/pack-*.idx; do
		run -0 git --git-dir .cashet verify-pack "$idx"
	done
	# runs' commits and trees differ in a few ids: most are deltas (git's
	# rule, that a delta halve its object, kept every one whole)
	[ "$(for idx in .cashet/objects/pack/pack-*.idx; do git --git-dir .cashet verify-pack -v "$idx"; done |
		awk '($2 == "commit" || $2 == "tree") && NF == 7' | wc -l)" -ge 30 ]
	# and so are their meta blobs (text that differs in a few values):
	# blobs that deflating does not halve are stored, not these
	[ "$(for idx in .cashet/objects/pack/pack-*.idx; do git --git-dir .cashet verify-pack -v "$idx"; done |
		awk '$2 == "blob" && NF == 7' | wc -l)" -ge 15 ]
	[ -s .cashet/packed-refs ]
	[ "$(find .cashet/refs -type f | wc -l)" -lt 60 ]
	run -0 git --git-dir .cashet fsck --strict --no-dangling
	run -0 cashet fsck
	assert_output "checked $(git --git-dir .cashet count-objects -v | awk '/^count:|^in-pack:/ { n += $2 } END { print n }') objects and 30 runs: 0 bad objects, 0 broken runs, 0 index rows repaired"
	# every run ref and line ref resolves to its run
	[ "$(git --git-dir .cashet for-each-ref refs/cashet/runs | wc -l)" = 30 ]
	# (a line of one run has no line ref: its run ref is the same commit)
	[ "$(git --git-dir .cashet for-each-ref refs/cashet/lines | wc -l)" = 0 ]
	for n in 1 17 30; do
		run -0 cashet exec --trace off --report-fd 3 -- echo "run $n" 3> verdict.json
		assert_output "run $n"
		[ "$(json_field 'j["verdict"]' < verdict.json)" = hit ]
	done
	# the line of a packed run is still its parent's line
	cashet exec --trace off -f -- echo "run 2" > /dev/null
	run -0 git --git-dir .cashet rev-list --count "refs/cashet/runs/$(last_hash)"
	assert_output 2
	run -0 git --git-dir .cashet for-each-ref --format='%(objectname)' refs/cashet/lines
	assert_output "$(last_hash)"
	run -0 cashet reindex
	assert_output "reindexed 31 runs"
}

@test "auto-pack 0 never packs; gc still packs everything" {
	cashet init > /dev/null
	cashet config auto-pack 0
	for i in $(seq 1 10); do cashet exec --trace off -- echo "run $i" > /dev/null; done
	[ "$(loose_count)" -ge 40 ]
	[ ! -e .cashet/packed-refs ]
	cashet gc > /dev/null
	[ "$(loose_count)" = 0 ]
	# gc's pack has deltas of commits and trees as auto-pack's have, and git reads it
	run -0 git --git-dir .cashet verify-pack -v .cashet/objects/pack/pack-*.idx
	[ "$(echo "$output" | awk '($2 == "commit" || $2 == "tree") && NF == 7' | wc -l)" -ge 16 ]
	[ "$(echo "$output" | awk '$2 == "blob" && NF == 7' | wc -l)" -ge 5 ]
	run -0 git --git-dir .cashet fsck --strict --no-dangling
	run -0 cashet exec -v --trace off -- echo "run 3"
	assert_line --index 1 --partial "cashet: hit "
	run -2 cashet config auto-pack x
	assert_output --partial "auto-pack: expected a number of loose objects from 0 (never) to 2147483647, got 'x'"
}

@test "more than 50 packs (a pipeline's batches, sharing objects) are merged after the next stored run, with every object kept" {
	cashet init > /dev/null
	cashet exec --trace off -- echo first > /dev/null
	cashet gc > /dev/null
	# 60 packs, as a pipeline's batches leave them: one object of its own
	# each, and one they all share (a blob every step makes)
	shared=$(echo shared | git --git-dir .cashet hash-object -w --stdin)
	for i in $(seq 1 60); do
		{ echo "$shared"; echo "object $i" | git --git-dir .cashet hash-object -w --stdin; } |
			git --git-dir .cashet pack-objects -q .cashet/objects/pack/pack > /dev/null
	done
	git --git-dir .cashet prune-packed
	[ "$(loose_count)" = 0 ]
	[ "$(ls .cashet/objects/pack/*.pack | wc -l)" = 61 ]
	git --git-dir .cashet cat-file --batch-all-objects --batch-check | sort > before
	cashet exec --trace off -- echo second > /dev/null
	[ "$(ls .cashet/objects/pack/*.pack | wc -l)" -le 3 ]
	# every object still there (no longer loose: auto-pack ran), and the second run's
	[ "$(loose_count)" = 0 ]
	git --git-dir .cashet cat-file --batch-all-objects --batch-check | sort > after
	[ -z "$(comm -23 before after)" ]
	[ "$(comm -13 before after | wc -l)" -ge 4 ]
	run -0 git --git-dir .cashet fsck --strict
	run -0 cashet exec -v --trace off -- echo first
	assert_line --index 1 --partial "cashet: hit "
}

# runs completed failed stored_bytes, from stats --json
stats_line() {
	cashet stats --json | json_field '" ".join(str(j[k]) for k in ("runs", "completed", "failed", "stored_bytes"))'
}

@test "stats counters stay exact through rm, gc, import and reindex" {
	for i in 1 2 3; do cashet exec -- echo "ok $i" > /dev/null; done
	cashet exec -- sh -c 'echo bad; exit 3' > /dev/null || true
	[ "$(stats_line)" = "4 3 1 19" ]
	cashet rm "$(cashet log --cmd 'ok 2' --json | json_field 'j[0]["hash"]')" > /dev/null
	[ "$(stats_line)" = "3 2 1 14" ]
	cashet export ../all.cashet > /dev/null
	cashet exec --ttl 1s -- echo expiring > /dev/null
	[ "$(stats_line)" = "4 3 1 23" ]
	sleep 1.1
	cashet gc > /dev/null
	[ "$(stats_line)" = "3 2 1 14" ]
	mkdir ../other && cd ../other
	cashet import ../all.cashet > /dev/null
	[ "$(stats_line)" = "3 2 1 14" ]
	rm .cashet/index.db
	cashet reindex > /dev/null
	[ "$(stats_line)" = "3 2 1 14" ]
	cashet clear -f > /dev/null
	[ "$(stats_line)" = "0 0 0 0" ]
}

@test "runs that read the same files share one list of observed inputs in the index" {
	for i in 1 2 3 4 5; do cashet exec -- echo "run $i" > /dev/null; done
	[ "$(sqlite3 .cashet/index.db 'SELECT count(DISTINCT inputset) FROM runs')" = 1 ]
	# the list's two parts: outside the project, and its own (here the
	# variable echo reads, $POSIXLY_CORRECT)
	[ "$(sqlite3 .cashet/index.db 'SELECT count(*) FROM inputsets')" = 2 ]
	run -0 cashet show --json "$(last_hash)"
	[ "$(echo "$output" | json_field 'any(i["path"].endswith("/echo") for i in j["observed_inputs"])')" = True ]
	# a removed run's lists stay while another run names them; gc drops unnamed ones
	cashet exec -- cat /etc/hostname > /dev/null
	[ "$(sqlite3 .cashet/index.db 'SELECT count(*) FROM inputsets')" -gt 2 ]
	cashet rm "$(last_hash)" > /dev/null
	cashet gc > /dev/null
	[ "$(sqlite3 .cashet/index.db 'SELECT count(*) FROM inputsets')" = 2 ]
	run -0 cashet exec -v -- echo "run 3"
	assert_line --index 0 "run 3"
	assert_line --index 1 --partial "cashet: hit "
}

@test "fingerprint parts are kept once each; show lists a run's own, in order; gc drops the unlisted" {
	cashet init > /dev/null
	for i in 1 2 3 4 5; do mkdir d$i && (cd d$i && cashet exec -- echo "run $i" > /dev/null); done
	per_run=$(cashet show --json "$(last_hash)" | json_field 'len(j["parts"])')
	# five cwd parts, the rest shared; no argv part: each run's is made
	# again from its arguments
	[ "$(sqlite3 .cashet/index.db 'SELECT count(*) FROM partvals')" = $((per_run + 3)) ]
	[ "$(sqlite3 .cashet/index.db "SELECT count(*) FROM partvals WHERE kind = 'argv'")" = 0 ]
	run -0 cashet show --json "$(last_hash)"
	[ "$(echo "$output" | json_field '[p["kind"] for p in j["parts"]][:3]')" = "['argv', 'cwd', 'exe']" ]
	[ "$(echo "$output" | json_field 'j["parts"][0]["name"]')" = "echo 'run 5'" ]
	[ "$(echo "$output" | json_field 'j["parts"][1]["name"]')" = "d5" ]
	# the same digest as the fingerprint gave it when the run was stored
	[ "$(echo "$output" | json_field 'j["parts"][0]["hash"]')" = "$(git --git-dir .cashet cat-file -p "$(last_hash):meta" | awk '$1 == "part" && $2 == "argv" { print $3 }')" ]
	cashet rm "$(last_hash)" > /dev/null
	cashet gc > /dev/null
	[ "$(sqlite3 .cashet/index.db 'SELECT count(*) FROM partvals')" = $((per_run + 2)) ]
	cd d5
	run -1 cashet why -- echo "run 5"
	cd ../d4
	run -0 cashet exec -v -- echo "run 4"
	assert_line --index 1 --partial "cashet: hit "
}

@test "push sends only the runs the remote lacks; with nothing new it writes nothing there" {
	git init -q --bare ../cache.git
	cashet init > /dev/null
	cashet config auto-pack 8
	for i in 1 2 3 4 5; do cashet exec -- echo "run $i" > /dev/null; done
	cashet remote add origin ../cache.git
	run -0 cashet push
	assert_output "pushed 5 runs to origin"
	[ "$(git --git-dir ../cache.git for-each-ref refs/cashet/runs | wc -l)" = 5 ]
	touch -d '2000-01-01' ../cache.git/refs/cashet/runs/*
	before=$(ls -l --time-style=+%s ../cache.git/refs/cashet/runs | md5sum)
	run -0 cashet push
	assert_output "pushed 5 runs to origin"
	[ "$(ls -l --time-style=+%s ../cache.git/refs/cashet/runs | md5sum)" = "$before" ]
	cashet exec -- echo "run 6" > /dev/null
	run -0 cashet push
	[ "$(git --git-dir ../cache.git for-each-ref refs/cashet/runs | wc -l)" = 6 ]
	[ "$(ls -l --time-style=+%s ../cache.git/refs/cashet/runs | grep -c ' 946684800 ')" = 5 ]
	run -0 git --git-dir ../cache.git fsck --no-dangling
	mkdir ../b && cd ../b && cashet init > /dev/null && cashet remote add origin ../cache.git
	run -0 cashet pull
	run -0 cashet exec -v -- echo "run 6"
	assert_line --index 1 --partial "cashet: hit "
}

@test "a store killed between a pack and the removal of its loose copies, or midway through a pack, checks clean and replays" {
	cashet init > /dev/null
	cashet config auto-pack 0
	for i in 1 2 3 4 5 6; do cashet exec -- echo "run $i" > /dev/null; done
	cp -r .cashet/objects ../loose
	cashet config auto-pack 8
	cashet exec -- echo "run 7" > /dev/null
	ls .cashet/objects/pack/pack-*.pack > /dev/null
	# the loose copies back beside the pack, and a pack writer's temp file
	cp -rn ../loose/. .cashet/objects/
	head -c 1000 /dev/urandom > .cashet/objects/pack/tmp_pack_AbCdEf
	run -0 git --git-dir .cashet fsck --strict --no-dangling
	run -0 cashet fsck
	assert_output --regexp '^checked [0-9]+ objects and 7 runs: 0 bad objects, 0 broken runs, 0 index rows repaired$'
	for n in 1 6 7; do
		[ "$(verdict -- echo "run $n")" = hit ]
	done
	cashet gc > /dev/null
	[ ! -e .cashet/objects/pack/tmp_pack_AbCdEf ]
	run -0 git --git-dir .cashet fsck --strict --no-dangling
	[ "$(verdict -- echo "run 3")" = hit ]
}

@test "an index of schema 8 (ids as hex text) is rebuilt from git: runs kept, hits hit, ids now 20 bytes" {
	for i in 1 2 3; do cashet exec -- echo "run $i" > /dev/null; done
	h=$(last_hash)
	# what cashet 8 left: its runs table, ids as 40 hex digits, a cmd column
	sqlite3 .cashet/index.db "DROP TABLE runs; CREATE TABLE runs(id INTEGER PRIMARY KEY, hash TEXT NOT NULL UNIQUE,
		parent TEXT NOT NULL, fp BLOB NOT NULL, line BLOB NOT NULL, name TEXT, argv BLOB NOT NULL, cmd TEXT NOT NULL,
		cwd TEXT NOT NULL, ok INTEGER NOT NULL, exit_code INTEGER NOT NULL, created INTEGER NOT NULL,
		last_used INTEGER NOT NULL, duration_ms INTEGER NOT NULL, expires INTEGER NOT NULL, bytes INTEGER NOT NULL,
		inputset INTEGER, timed_out INTEGER NOT NULL DEFAULT 0, parts BLOB);
		INSERT INTO runs VALUES(1, '$h', '', x'00', x'00', NULL, x'00', 'x', '.', 1, 0, 0, 0, 0, 0, 0, NULL, 0, NULL);
		PRAGMA user_version = 8"
	run -0 cashet log --json
	[ "$(echo "$output" | json_field 'len(j)')" = 3 ]
	[ "$(echo "$output" | json_field 'j[0]["hash"]')" = "$h" ]
	[ "$(sqlite3 .cashet/index.db 'PRAGMA user_version')" = 11 ]
	[ "$(sqlite3 .cashet/index.db "SELECT count(*) FROM runs WHERE typeof(hash) = 'blob' AND length(hash) = 20")" = 3 ]
	[ "$(sqlite3 .cashet/index.db "SELECT count(*) FROM files WHERE length(oid) = 20")" = 6 ]
	for n in 1 2 3; do
		run -0 cashet exec -v -- echo "run $n"
		assert_line --index 0 "run $n"
		assert_line --index 1 --partial "cashet: hit "
	done
	run -0 cashet show "${h:0:7}"
	assert_line --index 0 "run         $h"
	# log's filter on the command line, which the index no longer keeps
	run -0 cashet log --json --cmd "run 2"
	[ "$(echo "$output" | json_field 'len(j)')" = 1 ]
	[ "$(echo "$output" | json_field 'j[0]["cmd"]')" = "echo 'run 2'" ]
}

@test "an upgraded index gives back the old tables' pages: the file is as small as the runs need" {
	for i in 1 2 3; do cashet exec -- echo "run $i" > /dev/null; done
	# an index of schema 10 with 8 MB of lists that schema 11 keeps otherwise
	sqlite3 .cashet/index.db "INSERT INTO inputsets(digest, data) VALUES(x'00', zeroblob(8000000));
		PRAGMA user_version = 10"
	[ "$(stat -c %s .cashet/index.db)" -gt 8000000 ]
	run -0 cashet exec -v -- echo "run 2"
	assert_line --index 1 --partial "cashet: hit "
	[ "$(sqlite3 .cashet/index.db 'PRAGMA user_version')" = 11 ]
	[ "$(stat -c %s .cashet/index.db)" -lt 1000000 ]
	[ "$(sqlite3 .cashet/index.db 'SELECT count(*) FROM runs')" = 3 ]
}
