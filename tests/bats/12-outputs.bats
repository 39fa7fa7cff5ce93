#!/usr/bin/env bats
# Declared outputs (-o): files and directories a command produces are stored
# with the run and put back on a hit: same bytes, same mode, symlinks as
# symlinks. A restore is atomic (a temp file renamed into place, nothing left
# behind), and an output that is already correct is left alone, mtime and
# all, so build tools downstream do not see a change. A declared output that
# was not produced fails the run and stores nothing.

load helper

setup() {
	common_setup
	cashet init > /dev/null
}

mk_tool='mkdir -p bin; printf "#!/bin/sh\necho tool\n" > bin/tool; chmod 755 bin/tool; echo made'

@test "an output file is restored after deletion: same content, mode 755" {
	run cashet exec -o bin/tool -- sh -c "$(counted "$mk_tool")"
	assert_success
	cp -p bin/tool ref
	rm -rf bin
	run cashet exec -o bin/tool -- sh -c "$(counted "$mk_tool")"
	assert_success
	assert_output made
	[ "$(run_count)" = 1 ]
	cmp ref bin/tool
	[ "$(stat -c %a bin/tool)" = 755 ]
	run ./bin/tool
	assert_output tool
}

@test "mode 644 is restored as 644 whatever the umask" {
	# the umask is in the key (a run under another umask is another run),
	# so the replay is made under the umask that would have given 600
	(umask 077 && cashet exec -o out.txt -- sh -c "$(counted 'echo data > out.txt; chmod 644 out.txt')")
	rm out.txt
	(umask 077 && cashet exec -o out.txt -- sh -c "$(counted 'echo data > out.txt; chmod 644 out.txt')")
	[ "$(run_count)" = 1 ]
	[ "$(stat -c %a out.txt)" = 644 ]
	[ "$(cat out.txt)" = data ]
}

@test "an output directory is restored with its nested files and symlinks" {
	gen='mkdir -p gen/a/b; echo top > gen/top; printf "deep\000bin" > gen/a/b/deep; ln -s top gen/link; echo x > gen/a/x; chmod +x gen/a/x'
	cashet exec -o gen -- sh -c "$(counted "$gen")"
	cp -a gen ref
	rm -rf gen
	cashet exec -o gen -- sh -c "$(counted "$gen")"
	[ "$(run_count)" = 1 ]
	diff -r ref gen
	cmp ref/a/b/deep gen/a/b/deep
	[ -L gen/link ]
	[ "$(readlink gen/link)" = top ]
	[ "$(stat -c %a gen/a/x)" = 755 ]
	[ "$(stat -c %a gen/top)" = 644 ]
}

@test "restoring leaves no temporary files behind" {
	gen='mkdir -p gen/a; echo 1 > gen/one; echo 2 > gen/a/two; echo 3 > single'
	cashet exec -o gen -o single -- sh -c "$gen"
	rm -rf gen single
	cashet exec -o gen -o single -- sh -c "$gen"
	[ -f gen/a/two ]
	[ -f single ]
	run find . -path ./.cashet -prune -o -name '*cashet-tmp*' -print
	assert_output ""
	# and the same for files that are overwritten rather than created
	echo wrong > single
	echo wrong > gen/one
	cashet exec -o gen -o single -- sh -c "$gen"
	[ "$(cat single)" = 3 ]
	[ "$(cat gen/one)" = 1 ]
	run find . -path ./.cashet -prune -o -name '*cashet-tmp*' -print
	assert_output ""
}

@test "an output that is already correct is not rewritten (mtime and inode kept)" {
	cashet exec -o out.txt -- sh -c "$(counted 'echo data > out.txt')"
	touch -d '2001-02-03 04:05:06' out.txt
	before=$(stat -c '%Y %i' out.txt)
	cashet exec -o out.txt -- sh -c "$(counted 'echo data > out.txt')"
	[ "$(run_count)" = 1 ]
	[ "$(stat -c '%Y %i' out.txt)" = "$before" ]
}

@test "an output changed since the run is put back on a hit, mode included" {
	cashet exec -o bin/tool -- sh -c "$(counted "$mk_tool")" > /dev/null
	cp bin/tool ref
	echo 'locally edited' > bin/tool
	chmod 644 bin/tool
	cashet exec -o bin/tool -- sh -c "$(counted "$mk_tool")" > /dev/null
	[ "$(run_count)" = 1 ]
	cmp ref bin/tool
	[ "$(stat -c %a bin/tool)" = 755 ]
	# a correct content with a wrong mode is fixed too
	chmod 644 bin/tool
	cashet exec -o bin/tool -- sh -c "$(counted "$mk_tool")" > /dev/null
	[ "$(stat -c %a bin/tool)" = 755 ]
	[ "$(run_count)" = 1 ]
}

@test "an output replaced by a symlink is put back as a regular file" {
	cashet exec -o out.txt -- sh -c 'echo data > out.txt'
	rm out.txt
	ln -s /etc/hostname out.txt
	cashet exec -o out.txt -- sh -c 'echo data > out.txt'
	[ ! -L out.txt ]
	[ "$(cat out.txt)" = data ]
}

@test "-o . stores the project without the store; a hit leaves the store as it is, and what it read stays an input" {
	echo data > f.txt
	cashet exec -o . -- sh -c 'cat f.txt > g.txt'
	run cashet show --json "$(last_hash)"
	assert_success
	run python3 -c 'import json,sys; print(" ".join(sorted(f["path"] for f in json.load(sys.stdin)["files"] if f["kind"] == "output")))' <<< "$output"
	assert_output "files/f.txt files/g.txt"
	rm g.txt
	run verdict -o . -- sh -c 'cat f.txt > g.txt'
	assert_output hit
	[ "$(cat g.txt)" = data ]
	[ "$(log_count)" = 1 ]
	run cashet fsck
	assert_success
	echo edited > f.txt
	run verdict -o . -- sh -c 'cat f.txt > g.txt'
	assert_output miss
	[ "$(cat g.txt)" = edited ]
	[ "$(log_count)" = 2 ]
}

@test "another project's store under a declared directory is neither stored nor pruned by a hit" {
	mkdir sub
	(cd sub && cashet init > /dev/null && cashet exec -- echo subrun > /dev/null)
	cashet exec -o sub -- touch sub/made
	run cashet show --json "$(last_hash)"
	run python3 -c 'import json,sys; print(" ".join(sorted(f["path"] for f in json.load(sys.stdin)["files"] if f["kind"] == "output")))' <<< "$output"
	assert_output "files/sub/made"
	rm sub/made
	run verdict -o sub -- touch sub/made
	assert_output hit
	[ -f sub/made ]
	run bash -c 'cd sub && cashet log --json | python3 -c "import json,sys; print(len(json.load(sys.stdin)))"'
	assert_output 1
}

@test "an output that is the store or inside it, or an empty path, is refused before the command runs" {
	for o in .cashet .cashet/config ./.cashet/objects ''; do
		run cashet exec -o "$o" -- touch ran
		assert_failure 125
		[ ! -e ran ]
	done
	run cashet exec -o .cashet/x -- touch ran
	assert_output "cashet: output .cashet/x: it is the store ($PWD/.cashet) or inside it, which is never an output"
	run cashet exec -o '' -- touch ran
	assert_output "cashet: an output named by an empty path"
	run cashet exec -i '' -- touch ran
	assert_failure 125
	assert_output "cashet: an input named by an empty path"
	[ ! -e ran ]
	printf '[steps.a]\ncmd = "touch ran"\noutputs = ["ran", ""]\n' > dag.toml
	run cashet pipeline run
	assert_failure 2
	assert_output "cashet: dag.toml:3: step 'a': an empty path in 'outputs'"
	[ ! -e ran ]
	# in a pipeline, before any step runs, at the step's outputs line
	printf '[steps.b]\ncmd = "touch ran"\n\n[steps.a]\ncmd = "touch ran"\noutputs = [".cashet/x"]\n' > dag.toml
	run cashet pipeline run
	assert_failure 2
	assert_output "cashet: dag.toml:6: step 'a': output '.cashet/x' is the store ($PWD/.cashet) or inside it, which is never an output"
	[ ! -e ran ]
	run cashet pipeline run b
	assert_success
	[ -e ran ]
}

@test "a missing declared output fails the run, names the file and stores nothing" {
	run --separate-stderr cashet exec -o not-made.txt -- sh -c "$(counted 'echo ran')"
	assert_failure
	assert_output ran
	[[ "$stderr" == *not-made.txt* ]]
	[ "$(log_count)" = 0 ]
	# so the next exec runs it again
	run cashet exec -o not-made.txt -- sh -c "$(counted 'echo ran')"
	assert_failure
	[ "$(run_count)" = 2 ]
}

@test "a failed command with a missing output keeps its own exit code" {
	run cashet exec -o not-made.txt -- sh -c 'exit 7'
	assert_failure 7
}

@test "a symlink output is stored as a symlink and restored with its target" {
	cashet exec -o link -- sh -c "$(counted 'ln -s some/target link')"
	rm link
	cashet exec -o link -- sh -c "$(counted 'ln -s some/target link')"
	[ "$(run_count)" = 1 ]
	[ -L link ]
	[ "$(readlink link)" = some/target ]
	run cashet show --json "$(last_hash)"
	[ "$(echo "$output" | json_field '[f["mode"] for f in j["files"] if f["kind"] == "output"][0]')" = 120000 ]
}

@test "an output outside the project is stored by absolute path and restored there" {
	outside="$BATS_TEST_TMPDIR/outside/o.txt"
	mkdir -p "$BATS_TEST_TMPDIR/outside"
	cashet exec -o "$outside" -- sh -c "$(counted "echo far > '$outside'")"
	rm "$outside"
	cashet exec -o "$outside" -- sh -c "$(counted "echo far > '$outside'")"
	[ "$(run_count)" = 1 ]
	[ "$(cat "$outside")" = far ]
	run cashet show --json "$(last_hash)"
	[ "$(echo "$output" | json_field '[f["path"] for f in j["files"] if f["kind"] == "output"][0]')" = "abs$outside" ]
}

@test "outputs are restored relative to the project root from a subdirectory" {
	mkdir -p sub
	cd sub
	cashet exec -o ../top.txt -o here.txt -- sh -c "$(counted 'echo t > ../top.txt; echo h > here.txt')"
	rm ../top.txt here.txt
	cashet exec -o ../top.txt -o here.txt -- sh -c "$(counted 'echo t > ../top.txt; echo h > here.txt')"
	[ "$(run_count)" = 1 ]
	[ "$(cat ../top.txt)" = t ]
	[ "$(cat here.txt)" = h ]
	run cashet show --json "$(last_hash)"
	[ "$(echo "$output" | json_field 'sorted(f["path"] for f in j["files"] if f["kind"] == "output")')" = "['files/sub/here.txt', 'files/top.txt']" ]
}

@test "a large binary output is restored byte for byte" {
	head -c 200000 /dev/urandom > src.bin
	cashet exec -o big.bin -- cp src.bin big.bin
	rm big.bin
	cashet exec -o big.bin -- cp src.bin big.bin
	cmp src.bin big.bin
	[ "$(log_count)" = 1 ]
}

@test "a declared output the command reads before it writes it (sed -i): not stored, so an edit is never overwritten" {
	echo a > d.txt
	run --separate-stderr cashet exec --report-fd 3 -o d.txt -- sed -i s/a/X/ d.txt 3> rep
	assert_success
	assert_equal "$stderr" "cashet: warning: result not stored: it read d.txt, a declared output it found in place, before it wrote it"
	assert_equal "$(json_field 'j["verdict"]' < rep)" not-stored
	echo "a a2" > d.txt
	cashet exec -o d.txt -- sed -i s/a/X/ d.txt
	assert_equal "$(cat d.txt)" "X a2"
	# one it only reads (a --metrics file already there) is an input too:
	# an edit is a miss, never overwritten by a replay
	echo 1 > m.txt
	[ "$(verdict -o m.txt -- cat m.txt)" = miss ]
	[ "$(verdict -o m.txt -- cat m.txt)" = hit ]
	echo 2 > m.txt
	run cashet exec -o m.txt -- cat m.txt
	assert_output 2
	assert_equal "$(cat m.txt)" 2
	# one it writes first and reads back is an output like any other
	[ "$(verdict -o out.txt -- sh -c 'sort d.txt > out.txt; wc -l out.txt')" = miss ]
	[ "$(verdict -f -o out.txt -- sh -c 'sort d.txt > out.txt; wc -l out.txt')" = miss ]
	[ "$(verdict -o out.txt -- sh -c 'sort d.txt > out.txt; wc -l out.txt')" = hit ]
}
