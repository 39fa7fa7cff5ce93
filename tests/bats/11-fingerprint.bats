#!/usr/bin/env bats
# The fingerprint: what decides between a hit and a miss. cashet hashes the
# argv, the working directory (relative to the project root), the content
# of the executable, arguments that name files, declared inputs (-i),
# declared environment variables (-e), stdin when it is piped or a file,
# and the declared outputs (-o). Everything else (undeclared environment,
# tags, names, timestamps) is not part of the key. Each test checks both
# directions: a change that matters is a miss, a non-change is a hit.

load helper

setup() {
	common_setup
	cashet init > /dev/null
}

@test "a different argv is a miss, the same argv a hit" {
	[ "$(verdict -- echo a)" = miss ]
	[ "$(verdict -- echo a)" = hit ]
	[ "$(verdict -- echo b)" = miss ]
	[ "$(verdict -- echo a b)" = miss ]
	# argument boundaries matter, not just the joined text
	[ "$(verdict -- echo "a b")" = miss ]
	[ "$(verdict -- echo a)" = hit ]
}

@test "an argument naming a file: content change is a miss, touch is a hit" {
	echo one > data.txt
	[ "$(verdict -- cat data.txt)" = miss ]
	[ "$(verdict -- cat data.txt)" = hit ]
	touch data.txt
	[ "$(verdict -- cat data.txt)" = hit ]
	touch -d '2001-02-03 04:05:06' data.txt
	[ "$(verdict -- cat data.txt)" = hit ]
	# same size, changed at once: no timestamp granularity trick hides it
	echo two > data.txt
	[ "$(verdict -- cat data.txt)" = miss ]
	run cashet exec -- cat data.txt
	assert_output two
}

@test "a same-size edit with the old mtime put back is still a miss" {
	echo aaaa > data.txt
	touch -d '2001-02-03 04:05:06' data.txt
	# two runs: the second may use the stat cache entry written by the first
	[ "$(verdict -- cat data.txt)" = miss ]
	[ "$(verdict -- cat data.txt)" = hit ]
	echo bbbb > data.txt
	touch -d '2001-02-03 04:05:06' data.txt
	[ "$(verdict -- cat data.txt)" = miss ]
	run cashet exec -- cat data.txt
	assert_output bbbb
}

@test "-i FILE: content matters, the mode bit +x too" {
	echo v1 > conf
	[ "$(verdict -i conf -- echo x)" = miss ]
	[ "$(verdict -i conf -- echo x)" = hit ]
	echo v2 > conf
	[ "$(verdict -i conf -- echo x)" = miss ]
	chmod +x conf
	[ "$(verdict -i conf -- echo x)" = miss ]
	[ "$(verdict -i conf -- echo x)" = hit ]
	# declaring the input at all changes the key
	[ "$(verdict -- echo x)" = miss ]
}

@test "-i DIR: adding, changing or deleting a file below is a miss" {
	mkdir -p src/sub
	echo a > src/a.c
	echo b > src/sub/b.c
	[ "$(verdict -i src -- echo build)" = miss ]
	[ "$(verdict -i src -- echo build)" = hit ]
	echo c > src/sub/c.c
	[ "$(verdict -i src -- echo build)" = miss ]
	[ "$(verdict -i src -- echo build)" = hit ]
	echo B > src/sub/b.c
	[ "$(verdict -i src -- echo build)" = miss ]
	rm src/a.c
	[ "$(verdict -i src -- echo build)" = miss ]
	mkdir src/empty
	[ "$(verdict -i src -- echo build)" = miss ]
	mv src/sub/c.c src/sub/d.c
	[ "$(verdict -i src -- echo build)" = miss ]
	[ "$(verdict -i src -- echo build)" = hit ]
	touch src/sub/d.c
	[ "$(verdict -i src -- echo build)" = hit ]
}

# The files DIR's snapshot trusts by their stat signature, in its order
# (key/dirscan.c: after the magic, per file: varints of the prefix shared
# with the previous path and of the rest's length, the rest, five varints
# of stat fields, a 16-byte digest).
tree_paths() {
	python3 - "$(pwd -P)/$1" <<'PY'
import sqlite3, sys
row = sqlite3.connect(".cashet/index.db").execute(
    "SELECT deps FROM statcache WHERE kind = -1 AND path = ?", (sys.argv[1],)).fetchone()
b = row[0] if row else b"cdtree2\n"
assert b[:8] == b"cdtree2\n"
i, path = 8, b""
def varint():
    global i
    v, shift = 0, 0
    while True:
        c = b[i]; i += 1
        v |= (c & 0x7f) << shift; shift += 7
        if not c & 0x80:
            return v
while i < len(b):
    keep, add = varint(), varint()
    path = path[:keep] + b[i:i + add]
    i += add
    for _ in range(5):
        varint()
    i += 16
    print(path.decode())
PY
}

tree_bytes() {
	sqlite3 .cashet/index.db "SELECT hex(deps) FROM statcache WHERE kind = -1 AND path = '$(pwd -P)/$1'"
}

@test "-i DIR: the directory's snapshot still sees a same-size edit, old mtime put back or racy" {
	mkdir -p src/sub
	for i in 1 2 3; do echo "v$i" > "src/sub/f$i"; done
	touch -d '2001-02-03 04:05:06' src/sub/f*
	sleep 2.1 # the stat cache keeps files quiet for 2 s (their change time too)
	[ "$(verdict -i src -- echo build)" = miss ]
	[ "$(verdict -i src -- echo build)" = hit ]
	# cached now (quiet files): the next lookups read the snapshot
	[ "$(tree_paths src)" = "$(printf 'sub/f1\nsub/f2\nsub/f3')" ]
	[ "$(verdict -i src -- echo build)" = hit ]
	echo v9 > src/sub/f2
	touch -d '2001-02-03 04:05:06' src/sub/f2
	[ "$(verdict -i src -- echo build)" = miss ]
	[ "$(verdict -i src -- echo build)" = hit ]
	# racy: a file written just now is never trusted by its signature
	echo w1 > src/sub/f3
	[ "$(verdict -i src -- echo build)" = miss ]
	echo w2 > src/sub/f3
	[ "$(verdict -i src -- echo build)" = miss ]
	[ "$(verdict -i src -- echo build)" = hit ]
	# a second directory input, and a glob of directories, each read alike
	mkdir other
	echo o > other/x
	[ "$(verdict -i src -i other -- echo build)" = miss ]
	[ "$(verdict -i src -i other -- echo build)" = hit ]
	echo p > other/x
	[ "$(verdict -i src -i other -- echo build)" = miss ]
	[ "$(verdict -i 'src/*' -- echo build)" = miss ]
	echo v8 > src/sub/f1
	[ "$(verdict -i 'src/*' -- echo build)" = miss ]
}

@test "-i DIR: a same-size edit deep down with the old mtime put back is a miss; files written just now are not trusted" {
	mkdir -p src/a/b/c/d
	echo v1 > src/a/b/c/d/deep
	echo x > src/top
	touch -d '2001-02-03 04:05:06' src/a/b/c/d/deep src/top
	sleep 2.1
	[ "$(verdict -i src -- echo build)" = miss ]
	[ "$(tree_paths src)" = "$(printf 'a/b/c/d/deep\ntop')" ]
	[ "$(verdict -i src -- echo build)" = hit ]
	# same size, same mtime, same inode: only the change time differs
	echo v2 > src/a/b/c/d/deep
	touch -d '2001-02-03 04:05:06' src/a/b/c/d/deep
	[ "$(verdict -i src -- echo build)" = miss ]
	# changed just now: hashed on each run, not trusted by its signature
	[ "$(tree_paths src)" = top ]
	[ "$(verdict -i src -- echo build)" = hit ]
	sleep 2.1
	[ "$(verdict -i src -- echo build)" = hit ]
	[ "$(tree_paths src)" = "$(printf 'a/b/c/d/deep\ntop')" ]
	# a file added deep down, removed again, the deep one removed
	echo n > src/a/b/c/new
	[ "$(verdict -i src -- echo build)" = miss ]
	rm src/a/b/c/new
	[ "$(verdict -i src -- echo build)" = hit ]
	rm src/a/b/c/d/deep
	[ "$(verdict -i src -- echo build)" = miss ]
	[ "$(tree_paths src)" = top ]
}

@test "-i DIR: a directory of 300 files (stat()ed by two threads) sees a same-size edit with the old mtime put back" {
	mkdir src
	for i in $(seq 100 399); do echo "$i" > "src/f$i"; done
	touch -d '2001-02-03 04:05:06' src/f*
	sleep 2.1
	[ "$(verdict -i src -- echo build)" = miss ]
	[ "$(tree_paths src | wc -l)" = 300 ]
	[ "$(verdict -i src -- echo build)" = hit ]
	for f in f101 f250 f399; do
		echo 999 > "src/$f"
		touch -d '2001-02-03 04:05:06' "src/$f"
		[ "$(verdict -i src -- echo build)" = miss ]
	done
	for f in f101 f250 f399; do echo "${f#f}" > "src/$f"; done
	[ "$(verdict -i src -- echo build)" = hit ]
}

@test "-i DIR: the snapshot is in the walk's order ('a/b' before 'a-c'), kept on a hit, ignored when damaged" {
	mkdir -p src/a
	echo 1 > src/a/b
	echo 2 > src/a-c
	echo 3 > src/a.txt
	echo 4 > src/a0
	touch -d '2001-02-03 04:05:06' src/a/b src/a-c src/a.txt src/a0
	sleep 2.1
	[ "$(verdict -i src -- echo build)" = miss ]
	[ "$(tree_paths src)" = "$(printf 'a/b\na-c\na.txt\na0')" ]
	before=$(tree_bytes src)
	[ "$(verdict -i src -- echo build)" = hit ]
	[ "$(tree_bytes src)" = "$before" ]
	# a flipped bit in the last file's digest: the snapshot fails its
	# check, every file is hashed again (a hit), and it is written anew
	python3 - "$(pwd -P)/src" <<'PY'
import sqlite3, sys
db = sqlite3.connect(".cashet/index.db")
b = bytearray(db.execute("SELECT deps FROM statcache WHERE kind = -1 AND path = ?", (sys.argv[1],)).fetchone()[0])
b[-1] ^= 1
db.execute("UPDATE statcache SET deps = ? WHERE kind = -1 AND path = ?", (bytes(b), sys.argv[1]))
db.commit()
PY
	[ "$(verdict -i src -- echo build)" = hit ]
	[ "$(tree_bytes src)" = "$before" ]
	[ "$(tree_paths src)" = "$(printf 'a/b\na-c\na.txt\na0')" ]
}

@test "-i . does not hash the store itself" {
	echo a > a
	[ "$(verdict -i . -- echo whole)" = miss ]
	# the store changed (a run was written), the project did not
	[ "$(verdict -i . -- echo whole)" = hit ]
}

@test "-i 'GLOB': a new matching file is a miss, a non-matching one is not" {
	touch a.log
	[ "$(verdict -i '*.log' -- echo g)" = miss ]
	[ "$(verdict -i '*.log' -- echo g)" = hit ]
	touch b.log
	[ "$(verdict -i '*.log' -- echo g)" = miss ]
	touch c.txt
	[ "$(verdict -i '*.log' -- echo g)" = hit ]
	echo changed > a.log
	[ "$(verdict -i '*.log' -- echo g)" = miss ]
	rm a.log b.log
	[ "$(verdict -i '*.log' -- echo g)" = miss ]
	[ "$(verdict -i '*.log' -- echo g)" = hit ]
}

@test "-i with a missing path fails before running (exit 125), a dangling symlink is an input" {
	run --separate-stderr cashet exec -i nothing-here -- sh -c "$(counted 'echo x')"
	assert_failure 125
	[[ "$stderr" == *"nothing-here"* ]]
	[ "$(run_count)" = 0 ]
	ln -s target1 link
	[ "$(verdict -i link -- echo l)" = miss ]
	[ "$(verdict -i link -- echo l)" = hit ]
	ln -sfn target2 link
	[ "$(verdict -i link -- echo l)" = miss ]
}

@test "-e VAR: a changed value is a miss; unset and empty differ" {
	V=1 run verdict -e V -- echo e
	assert_output miss
	V=1 run verdict -e V -- echo e
	assert_output hit
	V=2 run verdict -e V -- echo e
	assert_output miss
	unset V
	run verdict -e V -- echo e
	assert_output miss
	run verdict -e V -- echo e
	assert_output hit
	V= run verdict -e V -- echo e
	assert_output miss
	V= run verdict -e V -- echo e
	assert_output hit
}

@test "-e 'PATTERN': matching variables are hashed, others are not" {
	export PAT_A=1
	[ "$(verdict -e 'PAT_*' -- echo p)" = miss ]
	[ "$(verdict -e 'PAT_*' -- echo p)" = hit ]
	export PAT_A=2
	[ "$(verdict -e 'PAT_*' -- echo p)" = miss ]
	export PAT_B=
	[ "$(verdict -e 'PAT_*' -- echo p)" = miss ]
	export OTHER_PAT_C=1 PATX=1
	[ "$(verdict -e 'PAT_*' -- echo p)" = hit ]
	# back to the earlier environment: the earlier run is replayed
	unset PAT_B
	[ "$(verdict -e 'PAT_*' -- echo p)" = hit ]
	export PAT_A=3
	[ "$(verdict -e 'PAT_*' -- echo p)" = miss ]
}

@test "an environment variable the code names is part of the key; one read without being named is not (documented)" {
	U=1 run cashet exec -- sh -c "$(counted 'echo $U')"
	assert_output 1
	U=2 run cashet exec -- sh -c "$(counted 'echo ${U}')"
	assert_output 2
	U=2 run cashet exec -- sh -c "$(counted 'echo ${U}')"
	assert_output 2
	[ "$(run_count)" = 2 ]
	U=3 run cashet why -- sh -c "$(counted 'echo ${U}')"
	assert_line "  env U changed: 2 -> 3"
	# a name built at run time is not seen
	V=1 run cashet exec -- sh -c "$(counted 'printenv $(echo V)')"
	V=2 run cashet exec -- sh -c "$(counted 'printenv $(echo V)')"
	assert_output 1
}

@test "the environment variables a script names are hashed: Python's os.environ and getenv, shell \$NAME, not in comments" {
	cat > job.py <<-'EOF'
	import os
	# SEEN_IN_COMMENT is not read
	print(os.environ["ALPHA"], os.getenv("BETA"), os.environ.get('GAMMA', "g"))
	EOF
	cat > job.sh <<-'EOF'
	#!/bin/sh
	# $QUIET is a comment
	echo "${MODE:-fast}"
	EOF
	chmod +x job.sh
	export ALPHA=a
	[ "$(verdict -- python3 job.py)" = miss ]
	[ "$(verdict -- python3 job.py)" = hit ]
	for v in BETA=b GAMMA= ALPHA=a2; do
		export "$v"
		[ "$(verdict -- python3 job.py)" = miss ]
		[ "$(verdict -- python3 job.py)" = hit ]
	done
	export SEEN_IN_COMMENT=1 UNRELATED=1 MODE=slow
	[ "$(verdict -- python3 job.py)" = hit ]
	[ "$(verdict -- ./job.sh)" = miss ]
	export MODE=slower
	[ "$(verdict -- ./job.sh)" = miss ]
	export QUIET=1
	[ "$(verdict -- ./job.sh)" = hit ]
	# python -c too, and --trace=off alike
	[ "$(verdict -- python3 -c 'import os; print(os.environ["DELTA"])')" = miss ]
	export DELTA=1
	[ "$(verdict -- python3 -c 'import os; print(os.environ["DELTA"])')" = miss ]
	[ "$(verdict --trace=off -- python3 job.py)" = miss ]
	export BETA=b2
	[ "$(verdict --trace=off -- python3 job.py)" = miss ]
}

@test "Python reads the environment over several lines, with spaces, in other literal forms and through an alias: each is hashed" {
	cat > job.py <<-'EOF'
	import os
	from os import getenv as g
	env = os.environ
	mode = os.environ.get(
	    "MODE")
	print(mode, os.getenv(
	'P2'), os.environ[
	'P3'], os.environ .get('P4'), 'P5' in os.environ, 'P6' not in os.environ,
	      os.getenv(key='P7'), os.environ.get("""P8"""), os.environb.get(b'P9'),
	      os.getenvb(b'P10'), env.get('P11'), g('P12'))
	EOF
	export P3=0
	[ "$(verdict -- python3 job.py)" = miss ]
	[ "$(verdict -- python3 job.py)" = hit ]
	for v in MODE P2 P3 P4 P5 P6 P7 P8 P9 P10 P11 P12; do
		export "$v=1"
		[ "$(verdict -- python3 job.py)" = miss ]
		[ "$(verdict -- python3 job.py)" = hit ]
	done
	run cashet exec -- python3 job.py
	assert_output "1 1 1 1 True False 1 1 b'1' b'1' 1 1"
}

@test "shell reads a variable without \$NAME: \${#N}, arithmetic, let, declare -i, an index, -v, declare -p, printenv; \${!P_*} and a bare env take every match" {
	cat > job.sh <<-'EOF'
	a=(p q r)
	let x=S4+1
	declare -i y=S5
	typeset -i z=S6
	echo ${#S1} $((S2+0)) $(( S3 > 3 )) $x $y $z ${a[S7]}
	[[ -v S8 ]] && echo S8 set
	declare -p S9 2> /dev/null | wc -l
	printenv S10
	echo ${!P_*} ${!Q_@}
	env | grep -c '^R_' || :
	EOF
	export S1=1 S2=1 S3=1 S4=1 S5=1 S6=1 S7=0 S10=1
	[ "$(verdict -- bash job.sh)" = miss ]
	[ "$(verdict -- bash job.sh)" = hit ]
	for v in S1=22 S2=2 S3=5 S4=2 S5=2 S6=2 S7=1 S8= S9=1 S10=2 P_A=1 Q_B=1 R_C=1; do
		export "$v"
		[ "$(verdict -- bash job.sh)" = miss ]
		[ "$(verdict -- bash job.sh)" = hit ]
	done
	run cashet exec -- bash job.sh
	assert_output "2 2 1 3 2 2 q
S8 set
1
2
P_A Q_B
1"
}

@test "a Node or Perl script's process.env.NAME and \$ENV{NAME} are hashed too" {
	echo 'console.log(process.env.RATE)' > job.js
	echo 'print "$ENV{RATE}\n";' > job.pl
	for run in "node job.js" "perl job.pl"; do
		command -v "${run%% *}" > /dev/null || { echo "# ${run%% *} is not installed" >&3; continue; }
		export RATE=1
		# shellcheck disable=SC2086
		[ "$(verdict -- $run)" = miss ]
		# shellcheck disable=SC2086
		[ "$(verdict -- $run)" = hit ]
		export RATE=2
		# shellcheck disable=SC2086
		[ "$(verdict -- $run)" = miss ]
	done
}

@test "piped stdin is hashed and still given to the command" {
	echo a | cashet exec -- sh -c "$(counted 'cat')" > o1
	echo a | cashet exec -- sh -c "$(counted 'cat')" > o2
	echo b | cashet exec -- sh -c "$(counted 'cat')" > o3
	[ "$(cat o1)" = a ]
	[ "$(cat o2)" = a ]
	[ "$(cat o3)" = b ]
	[ "$(run_count)" = 2 ]
	# an empty pipe is not the same as no stdin at all
	: | cashet exec -- sh -c "$(counted 'cat')" > o4
	[ "$(run_count)" = 3 ]
	[ ! -s o4 ]
}

@test "large piped stdin is given to the command completely" {
	head -c 500000 /dev/urandom > in.bin
	cat in.bin | cashet exec -- cat > out.bin
	cmp in.bin out.bin
	cat in.bin | cashet exec -- cat > out2.bin
	cmp in.bin out2.bin
	[ "$(log_count)" = 1 ]
}

@test "stdin redirected from a file is hashed by content" {
	echo one > in.txt
	cashet exec -- sh -c "$(counted 'cat')" < in.txt > o1
	cashet exec -- sh -c "$(counted 'cat')" < in.txt > o2
	[ "$(run_count)" = 1 ]
	echo two > in.txt
	cashet exec -- sh -c "$(counted 'cat')" < in.txt > o3
	[ "$(run_count)" = 2 ]
	[ "$(cat o2)" = one ]
	[ "$(cat o3)" = two ]
}

@test "--no-stdin: stdin is neither read nor hashed; the command reads /dev/null" {
	echo a | cashet exec --no-stdin -- sh -c "$(counted 'cat; echo end')" > o1
	echo b | cashet exec --no-stdin -- sh -c "$(counted 'cat; echo end')" > o2
	[ "$(cat o1)" = end ]
	[ "$(cat o2)" = end ]
	[ "$(run_count)" = 1 ]
}

# Process substitution gives the command a pipe as /dev/fd/63: its bytes
# cannot be hashed without taking them from the command, so the run is
# never looked up or stored (a stored `cat <(echo hi)` once replayed "hi"
# for `cat <(echo bye)`).
@test "a pipe the command line names (<(cmd)) is never cached: each run prints its own input" {
	run --separate-stderr cashet exec -- cat <(echo hi)
	assert_success
	assert_output hi
	run --separate-stderr cashet exec -- cat <(echo bye)
	assert_output bye
	[[ "$stderr" == *"result not stored: the command line names fd "*", a pipe"* ]] || { echo "$stderr"; false; }
	report=$(cashet exec --report-fd 3 -- cat <(echo bye) 3>&1 >/dev/null 2>/dev/null)
	[ "$(echo "$report" | json_field 'j["verdict"]')" = not-stored ]
	[ "$(verdict -- cat --in=<(echo bye))" = miss ]
	[ "$(log_count)" = 0 ]
	# `why` cannot tell either, and says so
	run cashet why -- cat <(echo bye)
	assert_failure 125
	assert_output --partial "a pipe: such a run is never cached"
}

@test "a file inherited as fd 5 and read as /dev/fd/5 is hashed by content" {
	echo one > in.txt
	[ "$(verdict -- cat /dev/fd/5 5< in.txt)" = miss ]
	[ "$(verdict -- cat /dev/fd/5 5< in.txt)" = hit ]
	echo two > in.txt
	[ "$(verdict -- cat /dev/fd/5 5< in.txt)" = miss ]
	run cashet exec -- cat /dev/fd/5 5< in.txt
	assert_output two
	[ "$(verdict -- cat /proc/self/fd/5 5< in.txt)" = miss ]
	[ "$(verdict -- cat /proc/self/fd/5 5< in.txt)" = hit ]
	echo three > in.txt
	[ "$(verdict -- cat /proc/self/fd/5 5< in.txt)" = miss ]
	run cashet why -- cat /dev/fd/5 5< in.txt
	assert_failure 1
	assert_line "  fd 5 (in.txt) changed"
}

@test "a file inherited as a descriptor the command line does not name is hashed too" {
	echo one > in.txt
	[ "$(verdict -- sh -c 'cat <&5' 5< in.txt)" = miss ]
	[ "$(verdict -- sh -c 'cat <&5' 5< in.txt)" = hit ]
	echo two > in.txt
	[ "$(verdict -- sh -c 'cat <&5' 5< in.txt)" = miss ]
	run cashet exec -- sh -c 'cat <&5' 5< in.txt
	assert_output two
	# a reader starts at the offset: after one line is read, another input
	printf 'a\nb\n' > in.txt
	[ "$(verdict -- sh -c 'cat <&5' 5< in.txt)" = miss ]
	{
		read -r _ <&5
		[ "$(verdict -- sh -c 'cat <&5')" = miss ]
	} 5< in.txt
	[ "$(verdict -- sh -c 'cat <&5' 5< in.txt)" = hit ]
}

# FLIP is read through printenv: not in the key, it makes the first run
# see another content than the one it was keyed under. The change comes
# a few milliseconds after the start, inside the file system clock's tick
# (ctime is stamped from a clock up to 4 ms behind): one try in eight
# went unseen before, so it is tried 16 times.
@test "a run whose inherited or declared file changed while it ran is not stored, even at once" {
	flip='[ -n "$(printenv FLIP)" ] && echo B > in.txt; cat <&5'
	for i in $(seq 16); do
		echo "A$i" > in.txt
		run --separate-stderr env FLIP=1 cashet exec -- sh -c "$flip" 5< in.txt
		assert_output B
		[[ "$stderr" == *"result not stored: changed while the command ran: fd 5 ("*"in.txt)"* ]] || { echo "$stderr"; false; }
		echo "A$i" > in.txt
		run --separate-stderr env FLIP=1 cashet exec --trace=off -i in.txt -- sh -c "${flip%<&5}in.txt"
		assert_output B
		[[ "$stderr" == *"result not stored: changed while the command ran: in.txt"* ]] || { echo "$stderr"; false; }
	done
	echo A > in.txt
	run cashet exec -- sh -c "$flip" 5< in.txt
	assert_output A
	[ "$(verdict -- sh -c "$flip" 5< in.txt)" = hit ]
}

# make -j hands its jobserver's pipe to every child, named only in
# MAKEFLAGS: refusing such pipes would end caching under make.
@test "an inherited pipe the command line does not name still allows a hit" {
	[ "$(verdict -- echo job 7< <(echo token))" = miss ]
	[ "$(verdict -- echo job 7< <(echo token2))" = hit ]
	# nor does a log open for writing only, which grows between runs
	[ "$(verdict -- echo job 8>> ../build.log)" = hit ]
	echo more >> ../build.log
	[ "$(verdict -- echo job 8>> ../build.log)" = hit ]
}

@test "the working directory matters: the same command in a subdirectory is a miss" {
	mkdir sub
	[ "$(verdict -- echo here)" = miss ]
	cd sub
	[ "$(verdict -- echo here)" = miss ]
	[ "$(verdict -- echo here)" = hit ]
	# the project's store was found and used; none was created here
	[ ! -e .cashet ]
	cd ..
	[ "$(verdict -- echo here)" = hit ]
	run cashet log --json
	[ "$(echo "$output" | json_field 'len(j)')" = 2 ]
	run cashet show --json "$(last_hash)"
	[ "$(echo "$output" | json_field 'j["cwd"]')" = sub ]
}

@test "the executable's content matters: editing ./tool.sh is a miss" {
	printf '#!/bin/sh\necho v1\n' > tool.sh
	chmod +x tool.sh
	run cashet exec -- ./tool.sh
	assert_output v1
	[ "$(verdict -- ./tool.sh)" = hit ]
	printf '#!/bin/sh\necho v2\n' > tool.sh
	run cashet exec -- ./tool.sh
	assert_output v2
}

@test "a command found on PATH is hashed by content too" {
	mkdir bin
	printf '#!/bin/sh\necho v1\n' > bin/mytool
	chmod +x bin/mytool
	PATH="$PWD/bin:$PATH" run cashet exec -- mytool
	assert_output v1
	printf '#!/bin/sh\necho v2!\n' > bin/mytool
	PATH="$PWD/bin:$PATH" run cashet exec -- mytool
	assert_output v2!
	run cashet show --json "$(last_hash)"
	# named root-relative, whatever kind of part (exe, script) it is
	[ "$(echo "$output" | json_field 'any(p["name"] == "bin/mytool" for p in j["parts"])')" = True ]
}

@test "declared outputs are part of the key" {
	[ "$(verdict -o a -- sh -c 'touch a b')" = miss ]
	[ "$(verdict -o a -- sh -c 'touch a b')" = hit ]
	[ "$(verdict -o b -- sh -c 'touch a b')" = miss ]
	[ "$(verdict -o a -o b -- sh -c 'touch a b')" = miss ]
	[ "$(verdict -- sh -c 'touch a b')" = miss ]
}

@test "a declared output named as an argument is not an input" {
	echo in > in.txt
	[ "$(verdict -o out.txt -- cp in.txt out.txt)" = miss ]
	# out.txt exists now; it must not change the key
	[ "$(verdict -o out.txt -- cp in.txt out.txt)" = hit ]
	echo edited > out.txt
	[ "$(verdict -o out.txt -- cp in.txt out.txt)" = hit ]
	[ "$(cat out.txt)" = in ]
	echo in2 > in.txt
	[ "$(verdict -o out.txt -- cp in.txt out.txt)" = miss ]
	[ "$(cat out.txt)" = in2 ]
}

@test "two checkouts of the same project share hits for relative paths" {
	mkdir src
	echo 'int x;' > src/a.c
	printf '#!/bin/sh\ncat "$@"\n' > build.sh
	chmod +x build.sh
	cashet exec -i src -o out.txt -- sh -c "$(counted './build.sh src/a.c > out.txt; echo built')" > /dev/null
	cashet exec -- sh -c "$(counted 'cat src/a.c')" > /dev/null
	[ "$(run_count)" = 2 ]
	cd ..
	cp -r proj proj2
	cd proj2
	rm out.txt
	run cashet exec -i src -o out.txt -- sh -c "$(counted './build.sh src/a.c > out.txt; echo built')"
	assert_output built
	[ "$(cat out.txt)" = 'int x;' ]
	run cashet exec -- sh -c "$(counted 'cat src/a.c')"
	assert_output 'int x;'
	[ "$(run_count)" = 2 ]
	# a change in the copy is still seen
	echo 'int y;' > src/a.c
	run cashet exec -i src -o out.txt -- sh -c "$(counted './build.sh src/a.c > out.txt; echo built')"
	[ "$(run_count)" = 3 ]
	[ "$(cat out.txt)" = 'int y;' ]
	# and the original checkout is untouched
	[ "$(cat ../proj/out.txt)" = 'int x;' ]
}

@test "show lists the parts of the fingerprint" {
	echo c > conf
	V=1 cashet exec -i conf -e V -o out -- sh -c 'touch out' < /dev/null
	run cashet show "$(last_hash)"
	assert_success
	assert_line --regexp '^  argv +[0-9a-f]{32}  sh -c '"'"'touch out'"'"'$'
	assert_line --regexp '^  cwd +[0-9a-f]{32}  \.$'
	assert_line --regexp '^  exe +[0-9a-f]{32}  /.*/sh$'
	assert_line --regexp '^  input +[0-9a-f]{32}  conf$'
	assert_line --regexp '^  env +[0-9a-f]{32}  V$'
	assert_line --regexp '^  output +[0-9a-f]{32}  out$'
	refute_line --regexp '^  stdin '
}

@test "the order of declarations is not meaning: -i, -e, -o, --dep and --param in any order are one key" {
	echo a > a
	echo b > b
	echo 'x = 1' > p.toml
	echo 'y = 1' >> p.toml
	touch d1.py d2.py
	cashet exec -i a -i b -e A -e B -o o1 -o o2 --dep d1.py --dep d2.py -p p.toml:x -p p.toml:y -- sh -c 'touch o1 o2' > /dev/null
	[ "$(verdict -i b -i a -e B -e A -o o2 -o o1 --dep d2.py --dep d1.py -p p.toml:y -p p.toml:x -- sh -c 'touch o1 o2')" = hit ]
	# and a declaration given twice is given once
	[ "$(verdict -i a -i b -i a -e A -e B -o o1 -o o2 --dep d1.py --dep d2.py -p p.toml:x -p p.toml:y -- sh -c 'touch o1 o2')" = hit ]
}

@test "-i . with -o build: the outputs are not inputs, so a build that is not reproducible still hits" {
	mkdir src
	echo code > src/a
	miss=$(verdict -i . -o build -- sh -c 'mkdir -p build; date +%N > build/stamp')
	[ "$miss" = miss ]
	[ "$(verdict -i . -o build -- sh -c 'mkdir -p build; date +%N > build/stamp')" = hit ]
	# the same for a glob that matches the output
	[ "$(verdict -i '*' -o build -- sh -c 'mkdir -p build; date +%N > build/stamp')" = miss ]
	[ "$(verdict -i '*' -o build -- sh -c 'mkdir -p build; date +%N > build/stamp')" = hit ]
	echo more > src/a
	[ "$(verdict -i . -o build -- sh -c 'mkdir -p build; date +%N > build/stamp')" = miss ]
}

@test "-i 'data/**/*.csv' matches at any depth, zero directories included" {
	mkdir -p data/a/b
	echo 1 > data/x.csv
	echo 2 > data/a/b/y.csv
	echo 3 > data/a/z.txt
	cashet exec --trace=off -i 'data/**/*.csv' -- true
	[ "$(verdict --trace=off -i 'data/**/*.csv' -- true)" = hit ]
	echo 3 > data/a/z.txt.bak
	[ "$(verdict --trace=off -i 'data/**/*.csv' -- true)" = hit ]
	echo 22 > data/a/b/y.csv
	[ "$(verdict --trace=off -i 'data/**/*.csv' -- true)" = miss ]
	echo 4 > data/a/new.csv
	[ "$(verdict --trace=off -i 'data/**/*.csv' -- true)" = miss ]
	echo 11 > data/x.csv
	[ "$(verdict --trace=off -i 'data/**/*.csv' -- true)" = miss ]
}

@test "--in=data.csv names a file like a plain argument (--trace=off)" {
	echo 1 > data.csv
	cashet exec --trace=off -- cat --in=data.csv > /dev/null 2>&1 || true
	[ "$(verdict --trace=off -- sh -c 'true' --in=data.csv)" = miss ]
	[ "$(verdict --trace=off -- sh -c 'true' --in=data.csv)" = hit ]
	echo 2 > data.csv
	[ "$(verdict --trace=off -- sh -c 'true' --in=data.csv)" = miss ]
}
