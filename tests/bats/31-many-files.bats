#!/usr/bin/env bats
# An output directory of thousands of small files: its blobs are written
# straight into one pack (not a loose object each), the index keeps no
# copy of them, and a replay restores every file byte for byte with its
# mode, before and after gc.

load helper

# 3,000 files in 30 directories, sizes 0 to 5 KiB, some executable, one
# empty directory, two files with the same content.
make_tree() {
	python3 - "$1" <<-'PY'
	import os, random, sys
	random.seed(7)
	out = sys.argv[1]
	for d in range(30):
	    os.makedirs(f"{out}/d{d:02}", exist_ok=True)
	    for f in range(100):
	        p = f"{out}/d{d:02}/f{f:03}"
	        with open(p, "wb") as fh:
	            fh.write(random.randbytes(random.randint(0, 5120)))
	        os.chmod(p, 0o755 if f % 17 == 0 else 0o640 if f % 13 == 0 else 0o644)
	os.makedirs(f"{out}/empty", exist_ok=True)
	open(f"{out}/same1", "w").write("same\n")
	open(f"{out}/same2", "w").write("same\n")
	PY
}

# path, mode and sha1 of every file, and every directory
listing() {
	(cd "$1" && find . -type d | sort && find . -type f -printf '%p %m\n' | sort &&
		find . -type f -print0 | sort -z | xargs -0 sha1sum)
}

# The last run, of command "$@" with -o out: the store intact, and out
# replayed as it was.
replays_whole() {
	local want
	want=$(listing out)
	run -0 cashet fsck
	run -0 git --git-dir .cashet fsck --strict --no-dangling
	rm -rf out
	[ "$(verdict -o out -- "$@")" = hit ]
	[ "$(listing out)" = "$want" ]
}

# The size of object $1 and the bytes it takes in the store's pack: "size packed".
meta_sizes() {
	local idx
	for idx in .cashet/objects/pack/*.idx; do
		git --git-dir .cashet verify-pack -v "$idx" | awk -v id="$1" '$1 == id { print $3, $4 }'
	done
}

# The pack holding the blob of the last run's file $1 (a stored path),
# where in it the blob starts and how many bytes it takes: "pack offset size".
packed_entry() {
	local oid pack
	oid=$(git --git-dir .cashet rev-parse "$(last_hash):$1")
	for pack in .cashet/objects/pack/*.pack; do
		git --git-dir .cashet verify-pack -v "${pack%.pack}.idx" | awk -v o="$oid" -v p="$pack" '$1 == o { print p, $5, $4 }'
	done
}

# The ids of the blobs in the store's packs, one line each time one is there.
packed_blobs() {
	for i in .cashet/objects/pack/*.idx; do
		git --git-dir .cashet verify-pack -v "$i" | awk '$2 == "blob" { print $1 }'
	done
}

# Writes byte $3 (printf's \x form) at offset $2 of pack $1.
put_byte() {
	chmod u+w "$1"
	printf "$3" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}

@test "3,000 small output files: one pack, no copies in the index, byte-for-byte replays with modes before and after gc" {
	export CASHET_EARLY_PACK_MS=off # one pack, however slow the copy
	make_tree ../src
	want=$(listing ../src)
	cashet exec --trace off -i ../src -o out -- cp -r ../src out
	[ "$(listing out)" = "$want" ]
	# no loose object for them (only trees, meta and the commit): one pack holds the blobs
	[ "$(find .cashet/objects -path '*/objects/??/*' -type f | wc -l)" -lt 50 ]
	[ "$(ls .cashet/objects/pack/*.pack | wc -l)" = 1 ]
	run -0 git --git-dir .cashet verify-pack .cashet/objects/pack/*.idx
	run -0 git --git-dir .cashet fsck --strict --no-dangling
	[ "$(sqlite3 .cashet/index.db "SELECT count(*) FROM files WHERE path LIKE 'files/out/%' AND data IS NOT NULL")" = 0 ]
	# its meta (300 KB) stored as it is by the miss, deflated by gc
	meta=$(git --git-dir .cashet rev-parse "$(last_hash):meta")
	read -r size packed <<< "$(meta_sizes "$meta")"
	[ "$size" -gt 262144 ] && [ "$packed" -gt "$size" ]
	for when in before-gc after-gc; do
		rm -rf out
		run -0 cashet exec --trace off --report-fd 3 -i ../src -o out -- cp -r ../src out 3> verdict.json
		[ "$(json_field 'j["verdict"]' < verdict.json)" = hit ]
		[ "$(listing out)" = "$want" ]
		cashet gc > /dev/null
	done
	read -r size packed <<< "$(meta_sizes "$meta")"
	[ "$packed" -lt "$((size / 2))" ]
	run -0 cashet fsck
	assert_output --regexp '^checked [0-9]+ objects and 1 runs: 0 bad objects, 0 broken runs, 0 index rows repaired$'
	run -0 git --git-dir .cashet fsck --strict --no-dangling
}

@test "100 files all new and different: the pack's checksum, taken as it was written, is the one git computes; read back when not" {
	export CASHET_EARLY_PACK_MS=off # one pack, however slow the copy
	mkdir ../src
	for i in $(seq 100); do echo "file $i" > "../src/f$i"; done
	cashet exec --trace off -o out -- cp -r ../src out
	[ "$(ls .cashet/objects/pack/*.pack | wc -l)" = 1 ]
	pack=$(ls .cashet/objects/pack/*.pack)
	# the 100 files, the empty blob of the empty stdout and stderr, meta,
	# and the trees of /, files/ and files/out/
	[ "$(head -c 12 "$pack" | od -An -tu1 -j8 | tr -s ' ')" = " 0 0 0 105" ]
	[ "$(tail -c 20 "$pack" | od -An -tx1 | tr -d ' \n')" = "$(head -c -20 "$pack" | sha1sum | cut -c1-40)" ]
	run -0 git --git-dir .cashet verify-pack .cashet/objects/pack/*.idx
	run -0 git --git-dir .cashet fsck --strict --no-dangling
	rm -rf out
	[ "$(verdict --trace off -o out -- cp -r ../src out)" = hit ]
	diff -r ../src out
	# one more new file and one the store has: the count differs from
	# the one announced, and the pack is read back for its checksum
	cp -r ../src ../src2
	echo "file 101" > ../src2/f101
	cashet exec --trace off -o out2 -- cp -r ../src2 out2
	[ "$(ls .cashet/objects/pack/*.pack | wc -l)" = 2 ]
	run -0 git --git-dir .cashet verify-pack .cashet/objects/pack/*.idx
	run -0 git --git-dir .cashet fsck --strict --no-dangling
}

@test "a run of many files whose blobs the store has writes none of them again; a damaged packed file is not replayed" {
	export CASHET_EARLY_PACK_MS=off # two packs, however slow the copies
	make_tree ../src
	cashet exec --trace off -i ../src -o out -- cp -r ../src out
	cashet exec --trace off -i ../src -o out2 -- cp -r ../src out2
	# the second run's pack: its meta and trees, no blob the first stored
	[ "$(ls .cashet/objects/pack/*.pack | wc -l)" = 2 ]
	[ "$(packed_blobs | sort | uniq -d)" = "" ]
	[ "$(packed_blobs | wc -l)" -gt 3000 ]
	rm -rf out2
	run -0 cashet exec --trace off -i ../src -o out2 -- cp -r ../src out2
	[ "$(listing out2)" = "$(listing ../src)" ]
	# a byte of one packed file's deflated data flipped: that replay
	# refuses and runs the command instead
	read -r pack off len < <(packed_entry files/out2/d03/f050)
	put_byte "$pack" $((off + len / 2)) '\x55'
	rm -rf out
	run cashet exec --trace off --report-fd 3 -i ../src -o out -- cp -r ../src out 3> verdict.json
	[ "$(json_field 'j["verdict"]' < verdict.json)" = ran ]
	[ "$(listing out)" = "$(listing ../src)" ]
}

@test "a replay into a missing directory builds it aside: killed part-way, no partial directory under the run's name; the next sweeps it" {
	python3 -c '
import os
for d in range(40):
    os.makedirs(f"../src/d{d:02}")
    for f in range(200):
        open(f"../src/d{d:02}/f{f:03}", "wb").write(os.urandom(4096))'
	cashet exec --trace off -i ../src -o out -- cp -r ../src out
	rm -rf out
	cashet exec --trace off -i ../src -o out -- cp -r ../src out &
	pid=$!
	# killed as soon as the restore has begun: the directory being built
	# is there under a temp name
	for _ in $(seq 1 2000); do
		compgen -G 'out.cashet-tmp.*' > /dev/null || [ -e out ] && break
	done
	kill -9 "$pid"
	wait "$pid" || true
	if [ -e out ]; then diff -r out ../src; fi
	# the next replay restores it whole, and sweeps the temp directory
	# the killed one left
	rm -rf out
	run -0 cashet exec --trace off --report-fd 3 -i ../src -o out -- cp -r ../src out 3> verdict.json
	[ "$(json_field 'j["verdict"]' < verdict.json)" = hit ]
	diff -r out ../src
	run compgen -G 'out.cashet-tmp.*'
	[ "$status" -ne 0 ]
}

@test "a packed file whose stored block's length is damaged is not replayed; zlib's own check stops it" {
	make_tree ../src
	cashet exec --trace off -i ../src -o out -- cp -r ../src out
	read -r pack off len < <(packed_entry files/out/d07/f042)
	# the entry's header, then zlib's two bytes, then the block's: its LEN
	# and NLEN follow the byte that says "stored"
	at=$(python3 -c 'import sys; d = open(sys.argv[1], "rb").read()[int(sys.argv[2]):][:16]; print(int(sys.argv[2]) + d.index(b"\x78\x01") + 3)' "$pack" "$off")
	put_byte "$pack" "$at" '\x01'
	rm -rf out
	run cashet exec --trace off --report-fd 3 -i ../src -o out -- cp -r ../src out 3> verdict.json
	[ "$(json_field 'j["verdict"]' < verdict.json)" = ran ]
	[ "$(listing out)" = "$(listing ../src)" ]
}

# 200 files written, then a pause the early packing sees them in (quiet for
# 50 ms): 1 s, or, with $1, until a pack is there (however loaded the
# machine: the packing thread runs at the lowest priority), then some
# written again, removed, added and made executable.
early_job() {
	local pause='sleep 1'
	[ -n "${1:-}" ] && pause='for _ in $(seq 200); do ls .cashet/objects/pack/*.idx > /dev/null 2>&1 && break; sleep 0.1; done'
	cat > job.sh <<-EOF
	mkdir -p out/a out/b
	for i in \$(seq 100); do echo "first \$i" > out/a/f\$i; echo "first \$i" > out/b/f\$i; done
	$pause
	for i in \$(seq 10); do echo "second \$i" > out/a/f\$i; done
	rm out/b/f1 out/b/f2
	echo late > out/b/late
	chmod 755 out/a/f3
	EOF
}

# Waits for an early pack of the job running (up to 20 s: the packing
# thread runs at the lowest priority); fails when none came.
wait_for_early_pack() {
	for _ in $(seq 200); do
		compgen -G '.cashet/objects/pack/*.idx' > /dev/null && return 0
		sleep 0.1
	done
	return 1
}

@test "outputs are packed while the command runs; what it writes, removes or adds after is stored as it left it" {
	# the first walk once all 200 are written and quiet: one pack has them all
	export CASHET_EARLY_PACK_MS=1000
	early_job wait-for-a-pack
	run -0 cashet exec --report-fd 3 -o out -- sh job.sh 3> verdict.json
	[ "$(json_field 'j["verdict"]' < verdict.json)" = ran ]
	want=$(listing out)
	# "first 1" was packed as it ran: out/a/f1's blob then, before it was
	# written again (an orphan now), in a pack besides the run's own
	first=$(echo "first 1" | git hash-object --stdin)
	run -0 git --git-dir .cashet cat-file -e "$first"
	[ "$(ls .cashet/objects/pack/*.pack | wc -l)" -ge 2 ]
	[ "$(git --git-dir .cashet rev-parse "$(last_hash):files/out/a/f1")" = "$(echo "second 1" | git hash-object --stdin)" ]
	rm -rf out
	[ "$(verdict -o out -- sh job.sh)" = hit ]
	[ "$(listing out)" = "$want" ]
	[ "$(cat out/a/f1)" = "second 1" ] && [ ! -e out/b/f1 ] && [ "$(cat out/b/late)" = late ]
	run -0 cashet fsck
	assert_output --regexp '^checked [0-9]+ objects and 1 runs: 0 bad objects, 0 broken runs, 0 index rows repaired$'
	run -0 git --git-dir .cashet fsck --strict --no-dangling
}

# 200 files written and packed as the command runs, and out/m written
# again after that through a shared mapping made before: a write to a page
# already dirty changes no time stamp (on tmpfs none ever does), so a stat
# cannot tell. The mapping is of out/m by its name ($1 = own), through a
# hard link outside out (link), or of a file renamed to out/m once mapped
# (renamed).
mapped_job() {
	mkdir -p bin
	cat > bin/job.py <<-'EOF'
	import glob, hashlib, mmap, os, subprocess, sys, time
	os.makedirs("out/a", exist_ok=True)
	for i in range(200):
	    open(f"out/a/f{i}", "w").write(f"first {i}\n")
	how = sys.argv[1]
	path = {"own": "out/m", "link": "m-link", "renamed": "m-tmp"}[how]
	open("m-tmp" if how == "renamed" else "out/m", "wb").write(b"first m\n")
	if how == "link":
	    os.link("out/m", "m-link")
	fd = os.open(path, os.O_RDWR)
	m = mmap.mmap(fd, 8)
	m[:8] = m[:8]  # dirty, before the pack
	if how == "renamed":
	    os.rename("m-tmp", "out/m")
	# until a pack holds out/m's first bytes (a first pack may come
	# before out/m has been quiet long enough to be in it)
	first = hashlib.sha1(b"blob 8\0first m\n").hexdigest()
	for _ in range(200):
	    if glob.glob(".cashet/objects/pack/*.idx") and subprocess.run(
	            ["git", "--git-dir", ".cashet", "cat-file", "-e", first], stderr=subprocess.DEVNULL).returncode == 0:
	        break
	    time.sleep(0.1)
	time.sleep(0.2)
	m[:8] = b"other m\n"
	m.close()
	EOF
}

@test "an output written through a shared mapping after it was packed is stored as it is at the end, traced or not" {
	export CASHET_EARLY_PACK_MS=1000
	mapped_job
	for how in own/on link/on renamed/on own/off; do
		trace=${how#*/}
		how=${how%/*}
		rm -rf out .cashet m-link
		run -0 cashet exec --trace "$trace" --report-fd 3 -o out -- python3 bin/job.py "$how" 3> verdict.json
		[ "$(json_field 'j["verdict"]' < verdict.json)" = ran ]
		# the early pack has the first bytes; the run, the last
		run -0 git --git-dir .cashet cat-file -e "$(printf 'first m\n' | git hash-object --stdin)"
		[ "$(git --git-dir .cashet cat-file -p "$(last_hash):files/out/m")" = "other m" ]
		rm -rf out
		[ "$(verdict --trace "$trace" -o out -- python3 bin/job.py "$how")" = hit ]
		[ "$(cat out/m out/a/f7)" = "$(printf 'other m\nfirst 7')" ]
	done
}

@test "files added to a directory whose files were all packed are packed while the command still runs" {
	# a walk goes down a directory it found packed whole without reading
	# it again, until its entries change
	export CASHET_EARLY_PACK_MS=200
	cat > job.sh <<-'EOF'
	packs() { ls .cashet/objects/pack/*.idx 2> /dev/null | wc -l; }
	wait_packs() { for _ in $(seq 200); do [ "$(packs)" -ge "$1" ] && return 0; sleep 0.1; done; return 1; }
	mkdir -p out/a
	for i in $(seq 100); do echo "first $i" > out/a/f$i; done
	wait_packs 1
	sleep 0.5 # walks that find out/a packed whole
	mkdir out/a/new
	for i in $(seq 100); do echo "late $i" > out/a/g$i; echo "new $i" > out/a/new/f$i; done
	wait_packs 2 && echo packed > seen
	EOF
	run -0 cashet exec --trace off -o out -- sh job.sh
	[ "$(cat seen)" = packed ]
	rm -rf out seen
	[ "$(verdict --trace off -o out -- sh job.sh)" = hit ]
	[ "$(cat out/a/f100 out/a/g100 out/a/new/f100)" = "$(printf 'first 100\nlate 100\nnew 100')" ]
}

@test "outputs are not packed while the command runs with CASHET_EARLY_PACK_MS=off, nor while gc holds the store" {
	early_job
	CASHET_EARLY_PACK_MS=off cashet exec -o out -- sh job.sh
	[ "$(ls .cashet/objects/pack/*.pack | wc -l)" = 1 ]
	rm -rf .cashet out
	cashet init
	# gc's lock, held until the job is done: nothing packed early, and
	# the run stored once the lock is free
	flock -x .cashet/gc.lock sleep 4 &
	sleep 0.2
	CASHET_EARLY_PACK_MS=0 cashet exec -o out -- sh job.sh
	wait
	[ "$(ls .cashet/objects/pack/*.pack | wc -l)" = 1 ]
	want=$(listing out)
	rm -rf out
	[ "$(verdict -o out -- sh job.sh)" = hit ]
	[ "$(listing out)" = "$want" ]
}

@test "the digests of 3,000 observed inputs are kept in the stat cache, written beside the save" {
	make_tree src
	sleep 2.1 # the stat cache keeps files quiet for 2 s only
	run -0 cashet exec --report-fd 3 -o out -- cp -r src out 3> verdict.json
	[ "$(json_field 'j["verdict"]' < verdict.json)" = ran ]
	# on a connection and a thread of their own: every row there
	rows=$(sqlite3 .cashet/index.db "SELECT count(*) FROM statcache WHERE kind = 0 AND path LIKE '$(pwd -P)/src/%'")
	[ "$rows" = "$(find src -type f | wc -l)" ]
	run -0 cashet fsck
}

@test "a command that exits while a pack of its outputs is being written: stored whole, replayed byte for byte" {
	# 1,000 quiet files of 24 KiB appear at once (one pack's worth), then
	# an exit as soon as that pack is begun: the engine's thread packs on
	# what the lowest-priority one had begun
	export CASHET_EARLY_PACK_MS=0
	cat > job.py <<-'EOF'
	import os, time
	os.makedirs("tmp")
	for i in range(1000):
	    with open(f"tmp/f{i:04}", "w") as f:
	        f.write((f"row {i}," * 4096)[:24576])
	time.sleep(0.06)
	os.rename("tmp", "out")
	for _ in range(20000):
	    if any(n.startswith("tmp_pack_") for n in os.listdir(".cashet/objects/pack")):
	        open("seen", "w").close()
	        os._exit(0)
	    time.sleep(0.001)
	EOF
	[ "$(verdict -o out -- python3 job.py)" = miss ]
	[ -e seen ]
	rm seen
	replays_whole python3 job.py
	[ "$(head -c 12 out/f0999)" = "row 999,row " ]
}

@test "outputs left to pack when the command exits go into several packs, written on two threads; stored whole" {
	# 2,100 files appear as the command exits: the last walk has them
	# all, in two packs of 1,050 (split_last)
	export CASHET_EARLY_PACK_MS=0
	cat > job.py <<-'EOF'
	import os
	os.mkdir("tmp")
	for i in range(2100):
	    with open(f"tmp/{i}", "w") as f:
	        f.write(f"{i}\n" * (i % 50 + 1))
	os.rename("tmp", "out")
	os._exit(0)
	EOF
	[ "$(verdict -o out -- python3 job.py)" = miss ]
	big=0
	for idx in .cashet/objects/pack/*.idx; do
		[ "$(git show-index < "$idx" | wc -l)" -ge 1024 ] && big=$((big + 1))
	done
	[ "$big" = 2 ]
	replays_whole python3 job.py
}

@test "a command stopped while its outputs are being packed: nothing stored, the store intact, the next run stored and replayed" {
	export CASHET_EARLY_PACK_MS=0
	cat > job.sh <<-'EOF'
	mkdir -p out
	for i in $(seq 300); do echo "v $i" > out/f$i; done
	echo 1 > started
	[ -n "$SLOW" ] && sleep 30
	exit 0
	EOF
	SLOW=1 cashet exec -o out -- sh job.sh 3>&- &
	pid=$!
	track_pid "$pid"
	wait_for_file started
	wait_for_early_pack # then stopped: TERM goes on to the command
	kill -TERM "$pid"
	rc=0
	wait "$pid" || rc=$?
	[ "$rc" = 143 ]
	[ "$(cashet log --json | json_field 'len(j)')" = 0 ]
	run -0 cashet fsck
	run -0 git --git-dir .cashet fsck --strict --no-dangling
	rm -rf out started
	[ "$(verdict -o out -- sh job.sh)" = miss ]
	rm -rf out
	[ "$(verdict -o out -- sh job.sh)" = hit ]
	[ "$(cat out/f300)" = "v 300" ]
}

@test "gc while a command runs is not held up by its early packs, which it removes; the run is stored whole all the same" {
	# its files all written and quiet before the first walk: one early
	# pack, none after the gc
	export CASHET_EARLY_PACK_MS=500
	cat > job.sh <<-'EOF'
	mkdir -p out
	for i in $(seq 200); do echo "v $i" > out/f$i; done
	echo 1 > started
	for _ in $(seq 200); do [ -e go ] && exit 0; sleep 0.1; done
	exit 1
	EOF
	# untraced: the job waits for a file the test makes, which a trace
	# would see change as it ran
	cashet exec --trace off -o out -- sh job.sh 3>&- &
	pid=$!
	track_pid "$pid"
	wait_for_file started
	wait_for_early_pack
	run -0 timeout 20 cashet gc
	run compgen -G '.cashet/objects/pack/*.idx'
	[ "$status" -ne 0 ]
	echo 1 > go
	wait "$pid"
	run -0 cashet fsck
	assert_output --regexp '^checked [0-9]+ objects and 1 runs: 0 bad objects, 0 broken runs, 0 index rows repaired$'
	rm -rf out go
	[ "$(verdict --trace off -o out -- sh job.sh)" = hit ]
	[ "$(cat out/f200)" = "v 200" ]
}
