#!/usr/bin/env bats
# Robustness: concurrent callers, crashes and corruption. Several processes
# asking for the same fingerprint share one run (a claim in the index; the
# others wait and replay); different fingerprints never wait for each other;
# a claim whose owner died is taken over at once; a kill -9 leaves a store
# that still opens and never replays a partial result; a corrupt object
# (loose git object or inline copy in the index) is detected by its digest
# and degrades to a miss; signals reach the command and nothing is stored.
#
# Background processes never keep bats' fd 3 open (3>&-) and are registered
# with track_pid so teardown kills them if a test fails half-way.

load helper

setup() {
	common_setup
	cashet init > /dev/null
}

# The cashet binary actually under test (for copying it elsewhere).
cashet_bin() {
	command -v cashet
}

@test "exactly once: 8 concurrent execs of the same slow command run it once" {
	for i in 1 2 3 4 5 6 7 8; do
		(cashet exec -- sh -c "$(counted 'sleep 1; echo result')" > "out.$i" 2> "err.$i"; echo $? > "rc.$i") 3>&- &
	done
	wait
	[ "$(run_count)" = 1 ]
	[ "$(log_count)" = 1 ]
	for i in 1 2 3 4 5 6 7 8; do
		[ "$(cat "out.$i")" = result ]
		[ "$(cat "rc.$i")" = 0 ]
		[ ! -s "err.$i" ]
	done
	# no claim is left behind
	[ "$(sqlite3 .cashet/index.db 'SELECT count(*) FROM claims')" = 0 ]
}

@test "different commands run concurrently without waiting for each other" {
	# A can only finish once B has run: if A's claim blocked B, A would time out.
	(cashet exec -- sh -c 'i=0; while [ ! -e marker ]; do sleep 0.05; i=$((i+1)); [ $i -gt 200 ] && exit 9; done; echo A' > a.out 2> a.err; echo $? > a.rc) 3>&- &
	a=$!
	track_pid "$a"
	sleep 0.2
	run --separate-stderr cashet exec -- sh -c 'touch marker; echo B'
	assert_success
	assert_output B
	wait "$a"
	[ "$(cat a.rc)" = 0 ]
	[ "$(cat a.out)" = A ]
}

@test "a claim left by a kill -9'ed cashet is taken over at once" {
	# D is neither declared nor named by the code (printenv reads it under
	# a name built at run time):
	# both invocations share a fingerprint.
	cmd='echo $$ > child.pid; sleep $(printenv $(echo D) || echo 0); echo done'
	D=30 cashet exec -- sh -c "$cmd" > /dev/null 2>&1 3>&- &
	cpid=$!
	track_pid "$cpid"
	wait_for_file child.pid
	track_pid "-$(cat child.pid)"
	[ "$(sqlite3 .cashet/index.db 'SELECT count(*) FROM claims')" = 1 ]
	kill -9 "$cpid"
	wait "$cpid" || true
	t0=$(date +%s%N)
	run --separate-stderr cashet exec -- sh -c "$cmd"
	t1=$(date +%s%N)
	assert_success
	assert_output done
	# at once: not after a claim timeout (generous bound; the run is instant)
	[ $(( (t1 - t0) / 1000000 )) -lt 5000 ]
	[ "$(sqlite3 .cashet/index.db 'SELECT count(*) FROM claims')" = 0 ]
	# it is the new run that got stored and is replayed
	run cashet exec -- sh -c "$cmd"
	assert_output done
	[ "$(log_count)" = 1 ]
}

@test "kill -9 in the middle of a run: the store still opens and nothing partial is replayed" {
	# the pid file is outside the project: undeclared files written in it are named on stderr
	pidf="$BATS_TEST_TMPDIR/child.pid"
	cmd="echo \$\$ > '$pidf'; $(counted 'echo part1; sleep ${D:-0}; echo part2')"
	D=30 cashet exec -- sh -c "$cmd" > partial.out 2>&1 3>&- &
	cpid=$!
	track_pid "$cpid"
	wait_for_file "$pidf"
	track_pid "-$(cat "$pidf")"
	kill -9 "$cpid"
	wait "$cpid" || true
	kill -KILL -- "-$(cat "$pidf")"
	run cashet log
	assert_success
	assert_output ""
	run cashet stats --json
	[ "$(echo "$output" | json_field 'j["runs"]')" = 0 ]
	run cashet exec -- sh -c "$cmd"
	assert_success
	assert_output "$(printf 'part1\npart2')"
	[ "$(run_count)" = 2 ]
	run cashet exec -- sh -c "$cmd"
	assert_output "$(printf 'part1\npart2')"
	[ "$(run_count)" = 2 ]
}

@test "SIGTERM is forwarded to the command; cashet exits 143 and stores nothing" {
	cashet exec -- sh -c 'trap "echo got > trapped; exit 7" TERM; echo $$ > child.pid; sleep 30 & wait' > /dev/null 2>&1 3>&- &
	cpid=$!
	track_pid "$cpid"
	wait_for_file child.pid
	track_pid "-$(cat child.pid)"
	kill -TERM "$cpid"
	rc=0
	wait "$cpid" || rc=$?
	[ "$rc" = 143 ]
	wait_for_file trapped 30
	[ "$(cat trapped)" = got ]
	[ "$(log_count)" = 0 ]
	[ "$(sqlite3 .cashet/index.db 'SELECT count(*) FROM claims')" = 0 ]
}

@test "a corrupt loose object is detected: warning, and the command runs again" {
	head -c 100000 /dev/urandom | od -An -tx1 > big.txt
	cashet exec -- sh -c "$(counted 'cat big.txt')" > o1
	cmp big.txt o1
	oid=$(cashet show --json "$(last_hash)" | json_field '[f["oid"] for f in j["files"] if f["kind"] == "stdout"][0]')
	obj=".cashet/objects/${oid:0:2}/${oid:2}"
	[ -f "$obj" ]
	chmod u+w "$obj"
	echo 'not zlib at all' > "$obj"
	cashet exec -- sh -c "$(counted 'cat big.txt')" > o2 2> e2 || true
	grep -q corrupt e2
	grep -q "$oid" e2
	[ "$(run_count)" = 2 ]
	cmp big.txt o2
}

@test "a loose object with wrong content (valid zlib) is detected by its digest" {
	head -c 100000 /dev/urandom | od -An -tx1 > big.txt
	cashet exec -- sh -c "$(counted 'cat big.txt')" > /dev/null
	oid=$(cashet show --json "$(last_hash)" | json_field '[f["oid"] for f in j["files"] if f["kind"] == "stdout"][0]')
	obj=".cashet/objects/${oid:0:2}/${oid:2}"
	chmod u+w "$obj"
	# same size, one byte different, properly deflated
	python3 - "$obj" <<-'PY'
	import sys, zlib
	p = sys.argv[1]
	data = zlib.decompress(open(p, "rb").read())
	nul = data.index(b"\0")
	body = bytearray(data[nul + 1:])
	body[5000] ^= 0x01
	open(p, "wb").write(zlib.compress(data[:nul + 1] + bytes(body)))
	PY
	cashet exec -- sh -c "$(counted 'cat big.txt')" > o2 2> e2 || true
	grep -q 'corrupt' e2
	[ "$(run_count)" = 2 ]
	cmp big.txt o2
}

@test "a corrupt inline copy in the index is detected and the command runs again" {
	cashet exec -- sh -c "$(counted 'echo hello')" > /dev/null
	[ "$(sqlite3 .cashet/index.db 'SELECT enc FROM files WHERE kind=0')" = 0 ]
	sqlite3 .cashet/index.db "UPDATE files SET data=CAST('HELLO' || char(10) AS BLOB) WHERE kind=0"
	run --separate-stderr cashet exec -- sh -c "$(counted 'echo hello')"
	assert_success
	assert_output hello
	[[ "$stderr" == *"corrupt"* ]]
	[[ "$stderr" == *"running the command instead"* ]]
	[ "$(run_count)" = 2 ]
	# the fresh run is replayed from then on
	run --separate-stderr cashet exec -- sh -c "$(counted 'echo hello')"
	assert_output hello
	[ -z "$stderr" ]
	[ "$(run_count)" = 2 ]
}

@test "a corrupt compressed (zstd) inline copy is detected too" {
	cashet exec -- sh -c "$(counted 'seq 1000')" > /dev/null
	[ "$(sqlite3 .cashet/index.db 'SELECT enc FROM files WHERE kind=0')" = 1 ]
	sqlite3 .cashet/index.db "UPDATE files SET data=randomblob(length(data)) WHERE kind=0"
	run --separate-stderr cashet exec -- sh -c "$(counted 'seq 1000')"
	assert_success
	[ "$output" = "$(seq 1000)" ]
	[[ "$stderr" == *"corrupt"* ]]
	[ "$(run_count)" = 2 ]
}

@test "a corrupt output file blob is never restored" {
	cashet exec -o out.txt -- sh -c "$(counted 'echo good > out.txt')" > /dev/null
	sqlite3 .cashet/index.db "UPDATE files SET data=CAST('evil' || char(10) AS BLOB) WHERE kind=2"
	rm out.txt
	run --separate-stderr cashet exec -o out.txt -- sh -c "$(counted 'echo good > out.txt')"
	assert_success
	[[ "$stderr" == *"corrupt"* ]]
	[ "$(cat out.txt)" = good ]
	[ "$(run_count)" = 2 ]
	run find . -name '*cashet-tmp*'
	assert_output ""
}

@test "corruption found by get is an error, not garbage" {
	cashet exec -- echo hello > /dev/null
	h=$(last_hash)
	sqlite3 .cashet/index.db "UPDATE files SET data=CAST('HELLO' || char(10) AS BLOB) WHERE kind=0"
	run --separate-stderr cashet get "$h"
	assert_failure 1
	[[ "$stderr" == *"corrupt"* ]]
}

@test "a hit and a small miss work without the git module; only a large output needs it" {
	cashet exec -- sh -c "$(counted 'echo cached')" > /dev/null
	mkdir lonely
	cp "$(cashet_bin)" lonely/cashet
	run --separate-stderr env CASHET_GIT_MODULE=/nonexistent/cashet-git.so ./lonely/cashet exec -- sh -c "$(counted 'echo cached')"
	assert_success
	assert_output cached
	[ "$(run_count)" = 1 ]
	# a miss with small outputs is stored by cashet itself, as git would
	echo 1 > in
	run --separate-stderr env CASHET_GIT_MODULE=/nonexistent/cashet-git.so ./lonely/cashet exec -i in -o out -- sh -c 'cat in > out; ln -sf out link; echo new'
	assert_success
	assert_output new
	[ -z "$stderr" ] || [[ "$stderr" != *"not stored"* ]]
	h1=$(last_hash)
	echo 2 > in
	env CASHET_GIT_MODULE=/nonexistent/cashet-git.so ./lonely/cashet exec -i in -o out -o link -- sh -c 'cat in > out; ln -sf out link; echo new' > /dev/null
	h2=$(last_hash)
	run git --git-dir .cashet fsck --strict --no-dangling
	assert_success
	# the parent chain and the tree are what libgit2 writes
	[ "$(git --git-dir .cashet log --format='%H %P' -1 "$h2")" = "$h2 $h1" ]
	run git --git-dir .cashet ls-tree -r "$h2"
	assert_line --regexp '^120000 blob [0-9a-f]{40}	files/link$'
	assert_line --regexp '^100644 blob [0-9a-f]{40}	files/out$'
	[ "$(git --git-dir .cashet cat-file -p "$h2:files/link")" = out ]
	rm out link
	run --separate-stderr cashet exec -i in -o out -o link -- sh -c 'cat in > out; ln -sf out link; echo new'
	assert_output new
	[ "$(cat out)" = 2 ] && [ "$(readlink link)" = out ]
	run cashet reindex
	assert_success
	run cashet fsck
	assert_success
	# a miss still runs the command; only storing a large file needs the module
	run --separate-stderr env CASHET_GIT_MODULE=/nonexistent/cashet-git.so ./lonely/cashet exec -o big -- sh -c 'head -c 2000000 /dev/zero > big; echo new'
	assert_success
	assert_output new
	[[ "$stderr" == *"result not stored: cannot load the git module"* ]]
}

@test "a reader closing the pipe early does not break the run or what is stored" {
	cashet exec -- seq 100000 | head -n 1 > first
	[ "$(cat first)" = 1 ]
	run cashet log --json
	[ "$(echo "$output" | json_field 'j[0]["status"]')" = ok ]
	[ "$(cashet exec -- seq 100000 | wc -l)" = 100000 ]
	[ "$(log_count)" = 1 ]
	# and a hit into a closed pipe is fine too
	cashet exec -- seq 100000 | head -n 1 > first2
	[ "$(cat first2)" = 1 ]
}

@test "captures are cleaned up: the store's tmp directory is empty after runs" {
	cashet exec -- echo a > /dev/null
	cashet exec -- sh -c 'exit 2' || true
	echo in | cashet exec -- cat > /dev/null
	cashet exec --no-cache -- echo b > /dev/null
	cashet exec --timeout 0.2s -- sleep 5 || true
	run ls -A .cashet/tmp
	assert_output ""
}

@test "SIGINT while waiting for another process's claim exits 130 promptly" {
	cmd='echo $$ > child.pid; sleep $(printenv $(echo D) || echo 0); echo done'
	D=30 cashet exec -- sh -c "$cmd" > /dev/null 2>&1 3>&- &
	owner=$!
	track_pid "$owner"
	wait_for_file child.pid
	track_pid "-$(cat child.pid)"
	# -v says "miss" just before the claim wait: only then is cashet's
	# handler installed (a background job starts with SIGINT ignored)
	cashet exec -v -- sh -c "$cmd" > waiter.out 2> waiter.err 3>&- &
	waiter=$!
	track_pid "$waiter"
	wait_for_file waiter.err
	sleep 0.1
	t0=$(date +%s%N)
	kill -INT "$waiter"
	# do not wait 30 s for a broken build: poll for at most 3 s
	pid_gone "$waiter"
	t1=$(date +%s%N)
	rc=0
	wait "$waiter" || rc=$?
	[ "$rc" = 130 ]
	[ $(( (t1 - t0) / 1000000 )) -lt 3000 ]
	[ ! -s waiter.out ]
	[ "$(log_count)" = 0 ]
}

@test "a corrupt loose object: the re-run succeeds (exit 0) and repairs the store" {
	head -c 100000 /dev/urandom | od -An -tx1 > big.txt
	cashet exec -- sh -c "$(counted 'cat big.txt')" > /dev/null
	oid=$(cashet show --json "$(last_hash)" | json_field '[f["oid"] for f in j["files"] if f["kind"] == "stdout"][0]')
	obj=".cashet/objects/${oid:0:2}/${oid:2}"
	chmod u+w "$obj"
	echo 'not zlib at all' > "$obj"
	# (output to files: a failing assert must not print 100 KB)
	rc=0
	cashet exec -- sh -c "$(counted 'cat big.txt')" > o2 2> e2 || rc=$?
	cat e2
	[ "$rc" = 0 ]
	grep -q corrupt e2
	cmp big.txt o2
	[ "$(run_count)" = 2 ]
	rc=0
	cashet exec -- sh -c "$(counted 'cat big.txt')" > o3 2> e3 || rc=$?
	cat e3
	[ "$rc" = 0 ]
	[ ! -s e3 ]
	cmp big.txt o3
	[ "$(run_count)" = 2 ]
	git --git-dir .cashet fsck --no-dangling
}

@test "a working directory removed under cashet: the command still runs there, uncached, with one warning" {
	mkdir gone
	cd gone
	rmdir ../gone
	run --separate-stderr cashet exec --report-fd 3 -- echo ran 3> "$BATS_TEST_TMPDIR/rep"
	assert_equal "$status" 0
	assert_equal "$output" ran
	assert_equal "$stderr" "cashet: warning: cannot read the working directory: No such file or directory; running the command without caching it"
	run cashet exec -- false
	assert_equal "$status" 1
	# explaining needs the directory: a one-line error
	run --separate-stderr cashet exec --explain -- true
	assert_equal "$status" 125
	assert_equal "$stderr" "cashet: cannot read the working directory: No such file or directory"
	cd "$BATS_TEST_TMPDIR"
	assert_equal "$(json_field 'j["verdict"]' < rep)" not-stored
}
