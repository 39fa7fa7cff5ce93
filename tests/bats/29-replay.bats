#!/usr/bin/env bats
# Replay fidelity: a hit leaves the working tree as a fresh run of the
# command would. Declared outputs come back with the permission bits the run
# produced; an output directory holds exactly the run's entries (empty
# directories too, and nothing the run did not have); a replayed failure
# (--cache-failures) puts back what the failed run left.

load helper

setup() {
	common_setup
	cashet init > /dev/null
}

@test "permission bits are restored exactly: 600, 640, 755, 700 and 444, whatever the umask" {
	gen='mkdir -p out; for m in 600 640 755 700 444; do echo $m > out/f$m; chmod $m out/f$m; done'
	[ "$(verdict -o out -- sh -c "$gen")" = miss ]
	rm -rf out
	[ "$(umask 022 && verdict -o out -- sh -c "$gen")" = hit ]
	for m in 600 640 755 700 444; do
		[ "$(stat -c %a out/f$m)" = $m ]
		[ "$(cat out/f$m)" = $m ]
	done
	# a file whose mode alone changed is put back
	chmod 644 out/f600
	[ "$(verdict -o out -- sh -c "$gen")" = hit ]
	[ "$(stat -c %a out/f600)" = 600 ]
	# they are in the run's git tree (its meta), not only in the index
	cashet reindex > /dev/null
	rm -rf out
	[ "$(verdict -o out -- sh -c "$gen")" = hit ]
	[ "$(stat -c %a out/f640)" = 640 ]
	[ "$(stat -c %a out/f444)" = 444 ]
}

@test "empty directories inside an output directory are restored, with their modes" {
	gen='mkdir -p out/a/empty out/b out/locked; echo x > out/a/x; chmod 700 out/b; chmod 555 out/locked'
	[ "$(verdict -o out -- sh -c "$gen")" = miss ]
	chmod -R u+w out && rm -rf out
	[ "$(verdict -o out -- sh -c "$gen")" = hit ]
	[ -d out/a/empty ] && [ -d out/b ] && [ -d out/locked ]
	[ "$(stat -c %a out/b)" = 700 ]
	[ "$(stat -c %a out/locked)" = 555 ]
	[ "$(cat out/a/x)" = x ]
	# an empty declared directory too
	[ "$(verdict -o empty -- mkdir -p empty)" = miss ]
	rmdir empty
	[ "$(verdict -o empty -- mkdir -p empty)" = hit ]
	[ -d empty ]
	# from the run's git tree as well
	cashet reindex > /dev/null
	rm -rf empty
	[ "$(verdict -o empty -- mkdir -p empty)" = hit ]
	[ -d empty ]
	run cashet fsck
	assert_success
}

# shards N: writes shards/0 .. shards/N-1 into a fresh shards/.
shards='rm -rf shards; mkdir shards; i=0; while [ $i -lt $N ]; do echo $i > shards/$i; i=$((i+1)); done'

@test "a restored output directory holds exactly the run's files: the others are removed" {
	[ "$(verdict -o shards -- sh -c "N=2; $shards")" = miss ]
	[ "$(verdict -o shards -- sh -c "N=1; $shards")" = miss ]
	[ "$(verdict -o shards -- sh -c "N=2; $shards")" = hit ]
	[ "$(ls shards | tr '\n' ' ')" = "0 1 " ]
	# extra files, directories and a link to outside are removed (the
	# link itself, not what it points to)
	mkdir -p shards/sub/deeper ../outside
	echo keep > ../outside/precious
	echo stray > shards/sub/deeper/f
	ln -s ../../outside shards/link
	[ "$(verdict -o shards -- sh -c "N=1; $shards")" = hit ]
	[ "$(ls -A shards)" = 0 ]
	[ "$(cat shards/0)" = 0 ]
	[ "$(cat ../outside/precious)" = keep ]
}

@test "a restore that fails midway leaves the old tree: nothing replaced, nothing removed" {
	# the fresh run that follows a failed replay reports what it found
	export SEEN="$BATS_TEST_TMPDIR/seen"
	cmd='cat shards/0 > "$SEEN" 2>/dev/null; ls shards >> "$SEEN"; N=2; '"$shards"
	[ "$(verdict -o shards -- sh -c "$cmd")" = miss ]
	sqlite3 .cashet/index.db "UPDATE files SET data=CAST('evil' || char(10) AS BLOB) WHERE path='files/shards/1'"
	echo old > shards/0
	rm shards/1
	echo stray > shards/extra
	run --separate-stderr cashet exec -o shards -- sh -c "$cmd"
	assert_success
	[[ "$stderr" == *corrupt* ]]
	[ "$(cat "$SEEN" | tr '\n' ' ')" = "old 0 extra " ]
	[ "$(cat shards/1)" = 1 ]
	run find . -name '*cashet-tmp*'
	assert_output ""
}

@test "--cache-failures: a replayed failure restores the outputs the failed run left, and only those" {
	cmd='mkdir -p out; echo partial > out/a; echo log > build.log; chmod 600 build.log; exit 3'
	run verdict --cache-failures -o out -o build.log -o never.txt -- sh -c "$cmd"
	assert_output miss
	rm -rf out build.log
	run cashet exec --cache-failures -o out -o build.log -o never.txt -- sh -c "$cmd"
	assert_failure 3
	[ "$(verdict --cache-failures -o out -o build.log -o never.txt -- sh -c "$cmd")" = hit ]
	[ "$(cat out/a)" = partial ]
	[ "$(cat build.log)" = log ]
	[ "$(stat -c %a build.log)" = 600 ]
	[ ! -e never.txt ]
}

# tree_of DIR: every entry under DIR with its type, permission bits, size,
# link target and content digest, one a line, sorted.
tree_of() {
	(cd "$1" && find . -mindepth 1 -printf '%y %m %p -> %l\n' | sort &&
		find . -type f -exec sha1sum {} + | sort -k2)
}

@test "a replay leaves the same tree as a fresh run: files, modes, empty dirs, symlinks" {
	gen='rm -rf out; mkdir -p out/a/b out/empty out/ro; umask 027; echo key > out/key; chmod 600 out/key
	printf "#!/bin/sh\n" > out/a/run; chmod 755 out/a/run; echo deep > out/a/b/deep; echo g > out/a/g
	ln -s a/b/deep out/link; ln -s missing out/dangling; echo r > out/ro/r; chmod 555 out/ro; chmod 700 out/a/b'
	[ "$(verdict -o out -- sh -c "$gen")" = miss ]
	fresh=$(tree_of out)
	# a tree that differs every way: gone, changed, extra, modes
	chmod -R u+w out && rm -rf out/empty out/a/b && echo changed > out/key && chmod 644 out/key
	mkdir out/stray && echo s > out/stray/s && ln -s /etc out/etc && echo e > out/a/extra
	[ "$(verdict -o out -- sh -c "$gen")" = hit ]
	[ "$(tree_of out)" = "$fresh" ]
	# and from nothing
	chmod -R u+w out && rm -rf out
	[ "$(verdict -o out -- sh -c "$gen")" = hit ]
	[ "$(tree_of out)" = "$fresh" ]
}
