#!/usr/bin/env bats
# Why: `cashet why -- CMD` (exec --explain) fingerprints the command without
# running it and says whether it would replay (exit 0) or run (exit 1), and
# if it would run, exactly what changed since the last run of the same
# command line in the same directory, one reason a line: the input, the
# environment variable or the parameter with its old and new value (never
# the value of a secret-looking name), the script or module with the lines
# that changed, a failed or expired last run. `cashet exec -v` gives the same
# reasons before running. Also here: --env-file and -p/--param, whose values
# are what the reasons talk about, and their error messages.

load helper

setup_file() {
	direct_python3
}

setup() {
	common_setup
	cashet init > /dev/null
}

# why_reasons ARGS...: the reason lines of `cashet why ARGS`, without the
# two-space indent (exit status ignored).
why_reasons() {
	cashet why "$@" 2> /dev/null | sed -n 's/^  //p'
}

# --- verdicts --------------------------------------------------------------

@test "why without a store: run, 'never run before (no store)', exit 1, nothing created" {
	cd "$BATS_TEST_TMPDIR" && mkdir fresh && cd fresh
	run --separate-stderr cashet why -- echo hi
	assert_failure 1
	assert_output "run:
  never run before (no store)"
	[ -z "$stderr" ]
	run cashet why --json -- echo hi
	assert_failure 1
	[ "$(echo "$output" | json_field 'j')" = "{'hit': False, 'run': None, 'reasons': ['never run before (no store)']}" ]
	[ ! -e .cashet ]
	[ ! -e ../.cashet ]
}

@test "why in a store that never ran the command: 'never run before (no run of this command line in this directory)'" {
	run cashet why -- sh -c "$(counted 'echo x')"
	assert_failure 1
	assert_output "run:
  never run before (no run of this command line in this directory)"
	[ "$(run_count)" = 0 ]
	[ "$(log_count)" = 0 ]
	# the same command line elsewhere in the project is another line,
	# and the reason names both directories
	cashet exec -- echo x > /dev/null
	mkdir -p sub/deeper && cd sub
	run cashet why -- echo x
	assert_failure 1
	assert_line "  working directory changed: . -> sub (the command line never ran here)"
	[ "${#lines[@]}" = 2 ]
	cashet exec -- echo x > /dev/null
	cd deeper
	run why_reasons -- echo x
	assert_output "working directory changed: sub -> sub/deeper (the command line never ran here)"
}

@test "why after a run: 'hit: would replay <12 hex>', exit 0; --json has hit and the run" {
	run cashet exec -- sh -c "$(counted 'echo out')"
	assert_output out
	h=$(last_hash)
	run --separate-stderr cashet why -- sh -c "$(counted 'echo out')"
	assert_success
	assert_output --regexp "^hit: would replay ${h:0:12} \\([0-9]{4}-[0-9]{2}-[0-9]{2} [0-9:]{8}\\)\$"
	run cashet why --json -- sh -c "$(counted 'echo out')"
	assert_success
	[ "$(echo "$output" | json_field 'j["hit"]')" = True ]
	[ "$(echo "$output" | json_field 'j["run"]')" = "$h" ]
	[ "$(echo "$output" | json_field 'j["reasons"]')" = "[]" ]
	# nothing ran, nothing was stored
	[ "$(run_count)" = 1 ]
	[ "$(log_count)" = 1 ]
}

@test "why when it would run: header names the last run; --json lists the reasons" {
	echo 1 > data.csv
	cashet exec -i data.csv -- echo go > /dev/null
	h=$(last_hash)
	echo 2 > data.csv
	run cashet why -i data.csv -- echo go
	assert_failure 1
	assert_line --index 0 --regexp "^run: changed since ${h:0:12} \\(.*\\):\$"
	assert_line --index 1 "  input data.csv changed"
	[ "${#lines[@]}" = 2 ]
	run cashet why --json -i data.csv -- echo go
	assert_failure 1
	[ "$(echo "$output" | json_field 'j["hit"]')" = False ]
	[ "$(echo "$output" | json_field 'j["run"]')" = "$h" ]
	[ "$(echo "$output" | json_field 'j["reasons"]')" = "['input data.csv changed']" ]
}

# --- exact reasons ---------------------------------------------------------

@test "reason: a file argument changed, added or removed (--trace=off: arguments are the key)" {
	echo a > a.txt
	echo b > b.txt
	cashet exec --trace=off -- cat a.txt b.txt > /dev/null
	echo A > a.txt
	run why_reasons --trace=off -- cat a.txt b.txt
	assert_output "file argument a.txt changed"
	cashet exec --trace=off -- cat a.txt b.txt > /dev/null || true
	rm b.txt
	run why_reasons --trace=off -- cat a.txt b.txt
	assert_output "file argument b.txt removed"
	# the last run of the line is now one without b.txt (it failed)
	run cashet exec --trace=off -- cat a.txt b.txt
	assert_failure 1
	echo bb > b.txt
	run why_reasons --trace=off -- cat a.txt b.txt
	assert_output "file argument b.txt added"
}

@test "reason: a file the command read changed, or one it looked for now exists (traced)" {
	echo a > a.txt
	cmd='cat a.txt; cat b.txt 2> /dev/null; true'
	cashet exec -- sh -c "$cmd" > /dev/null
	echo A > a.txt
	run why_reasons -- sh -c "$cmd"
	assert_output "a.txt, read by the command, changed"
	cashet exec -- sh -c "$cmd" > /dev/null
	echo b > b.txt
	run why_reasons -- sh -c "$cmd"
	assert_output "b.txt now exists where the command looked for it"
}

@test "reason: 'directory data: files added or removed' with the file added or removed" {
	mkdir data
	echo 1 > data/a.csv
	cashet exec -i data -- echo d > /dev/null
	echo 2 > data/b.csv
	run why_reasons -i data -- echo d
	assert_line "input data/b.csv added"
	assert_line "directory data: files added or removed"
	[ "${#lines[@]}" = 2 ]
	cashet exec -i data -- echo d > /dev/null
	rm data/a.csv
	run why_reasons -i data -- echo d
	assert_line "input data/a.csv removed"
	assert_line "directory data: files added or removed"
	[ "${#lines[@]}" = 2 ]
	# a content change alone does not change the listing
	cashet exec -i data -- echo d > /dev/null
	echo 3 > data/b.csv
	run why_reasons -i data -- echo d
	assert_output "input data/b.csv changed"
}

@test "reason: 'env LR changed: 0.1 -> 0.01', unset shown as (unset)" {
	LR=0.1 cashet exec -e LR -- echo t > /dev/null
	LR=0.01 run why_reasons -e LR -- echo t
	assert_output "env LR changed: 0.1 -> 0.01"
	run why_reasons -e LR -- echo t
	assert_output "env LR changed: 0.1 -> (unset)"
	LR=0.1 run cashet why -e LR -- echo t
	assert_success
}

@test "reason: a secret-looking variable is named without its values" {
	API_TOKEN=old-value-123 cashet exec -e API_TOKEN -e DB_PASSWORD -- echo t > /dev/null
	API_TOKEN=new-value-456 run cashet why -e API_TOKEN -e DB_PASSWORD -- echo t
	assert_failure 1
	assert_line "  env API_TOKEN changed"
	refute_output --partial old-value
	refute_output --partial new-value
	API_TOKEN=new-value-456 DB_PASSWORD=hunter2 run cashet why --json -e API_TOKEN -e DB_PASSWORD -- echo t
	refute_output --partial value-
	refute_output --partial hunter2
	[[ "$output" == *'"env DB_PASSWORD changed'* ]]
	# nor does the stored run keep them
	run cashet show --json "$(last_hash)"
	refute_output --partial old-value
}

@test "reason: 'env pattern PAT_* matches a different set' and the new variable" {
	export PAT_A=1
	cashet exec -e 'PAT_*' -- echo p > /dev/null
	export PAT_B=2
	run why_reasons -e 'PAT_*' -- echo p
	assert_line "env PAT_B added"
	assert_line "env pattern PAT_* matches a different set"
	[ "${#lines[@]}" = 2 ]
	[ "$(verdict -e 'PAT_*' -- echo p)" = miss ]
	export NOT_PAT=1
	[ "$(verdict -e 'PAT_*' -- echo p)" = hit ]
}

@test "reason: 'param params.toml:train.lr changed: 0.1 -> 0.01'; other keys do not matter" {
	printf '[train]\nlr = 0.1\nepochs = 3\n\n[eval]\nbatch = 8\n' > params.toml
	cashet exec -p params.toml:train.lr -- echo t > /dev/null
	sed -i 's/^epochs = 3/epochs = 4/; s/^batch = 8/batch = 16/' params.toml
	[ "$(would -p params.toml:train.lr -- echo t)" = hit ]
	# reformatting the same value is not a change either
	sed -i 's/^lr = 0.1$/lr   =   1e-1  # the rate/' params.toml
	[ "$(would -p params.toml:train.lr -- echo t)" = hit ]
	sed -i 's/^lr .*$/lr = 0.01/' params.toml
	run cashet why -p params.toml:train.lr -- echo t
	assert_failure 1
	assert_line "  param params.toml:train.lr changed: 0.1 -> 0.01"
	[ "${#lines[@]}" = 2 ]
	# the type matters: 1 and 1.0 differ
	cashet exec -p params.toml:eval.batch -- echo e > /dev/null
	sed -i 's/^batch = 16/batch = 16.0/' params.toml
	run why_reasons -p params.toml:eval.batch -- echo e
	assert_output "param params.toml:eval.batch changed: 16 -> 16.0"
}

@test "reason: 'param params.json:train.lr changed: 0.1 -> 0.01'; other keys do not matter" {
	echo '{"train": {"lr": 0.1, "epochs": 3}, "name": "x"}' > params.json
	cashet exec -p params.json:train.lr -- echo t > /dev/null
	echo '{"name": "y", "train": {"epochs": 4, "lr": 0.1}}' > params.json
	[ "$(would -p params.json:train.lr -- echo t)" = hit ]
	echo '{"name": "y", "train": {"epochs": 4, "lr": 0.01}}' > params.json
	run why_reasons -p params.json:train.lr -- echo t
	assert_output "param params.json:train.lr changed: 0.1 -> 0.01"
	# a whole table as the value
	cashet exec -p params.json:train -- echo all > /dev/null
	echo '{"name": "y", "train": {"epochs": 5, "lr": 0.01}}' > params.json
	[ "$(would -p params.json:train -- echo all)" = run ]
}

# A seven-line script: a comment, an import, a blank line, then code.
write_train_py() {
	printf '# train\nimport sys\n\na = 1\nb = 2\nc = 3\nprint(a + b + c)\n' > train.py
}

@test "reason: 'train.py changed (line N)' names the edited line" {
	write_train_py
	cashet exec -- python3 train.py > /dev/null
	sed -i 's/^b = 2$/b = 20/' train.py
	run why_reasons -- python3 train.py
	assert_output "train.py changed (line 5)"
	# the numbers are those of the current file, comments and blanks included
	sed -i '1i # one more comment\n' train.py
	run why_reasons -- python3 train.py
	assert_output "train.py changed (line 7)"
}

@test "reason: 'train.py changed (lines 4-5)' for a multi-line edit" {
	write_train_py
	cashet exec -- python3 train.py > /dev/null
	sed -i 's/^a = 1$/a = 10/; s/^b = 2$/b = 20/' train.py
	run why_reasons -- python3 train.py
	assert_output "train.py changed (lines 4-5)"
	# two separate places
	write_train_py
	sed -i 's/^a = 1$/a = 10/; s/^print(a + b + c)$/print(a - b - c)/' train.py
	run why_reasons -- python3 train.py
	assert_output "train.py changed (lines 4, 7)"
}

@test "reason: a deleted line names the line now in its place; an insertion spans its code lines" {
	write_train_py
	cashet exec -- python3 train.py > /dev/null
	sed -i '/^b = 2$/d' train.py
	run why_reasons -- python3 train.py
	assert_output "train.py changed (line 5)"
	# two code lines with a blank and a comment between them: lines 5 to 8
	write_train_py
	sed -i 's/^a = 1$/a = 1\nx = 0\n\n# why\ny = 0/' train.py
	[ "$(sed -n 5p train.py)" = "x = 0" ]
	[ "$(sed -n 8p train.py)" = "y = 0" ]
	run why_reasons -- python3 train.py
	assert_output "train.py changed (lines 5-8)"
	# comments and blanks alone: no change at all
	write_train_py
	sed -i 's/^a = 1$/a = 1\n\n# why/' train.py
	[ "$(would -- python3 train.py)" = hit ]
}

@test "reason: an imported module read by the command changed (traced)" {
	mkdir pkg
	: > pkg/__init__.py
	printf 'from pkg import b\nprint(b.X + b.Y)\n' > main.py
	printf 'X = 1\nY = 2\n' > pkg/b.py
	cashet exec -- python3 main.py > /dev/null
	printf 'X = 1\nY = 3\n' > pkg/b.py
	run why_reasons -- python3 main.py
	assert_output "pkg/b.py, read by the command, changed"
}

@test "reason: 'pkg/b.py changed (line 2)' for an imported module (--trace=off: the scripts' closure)" {
	cashet config trace off
	mkdir pkg
	: > pkg/__init__.py
	printf 'from pkg import b\nprint(b.X + b.Y)\n' > main.py
	printf 'X = 1\nY = 2\n' > pkg/b.py
	cashet exec -- python3 main.py > /dev/null
	printf 'X = 1\nY = 3\n' > pkg/b.py
	run cashet why -- python3 main.py
	assert_failure 1
	assert_line "  pkg/b.py changed (line 2)"
	[ "${#lines[@]}" = 2 ]
	# a sourced shell file too
	printf '. ./lib.sh\necho "$V"\n' > run.sh
	printf 'V=1\n' > lib.sh
	cashet exec -- sh run.sh > /dev/null
	printf '# lib\nV=2\n' > lib.sh
	run why_reasons -- sh run.sh
	assert_output "lib.sh changed (line 2)"
}

@test "reason: a failed last run is not replayed, unless --cache-failures" {
	run cashet exec -- sh -c 'exit 3'
	assert_failure 3
	run cashet why -- sh -c 'exit 3'
	assert_failure 1
	assert_line "  the last run failed (exit 3) and failures are not replayed (--cache-failures)"
	[ "${#lines[@]}" = 2 ]
	run cashet why --cache-failures -- sh -c 'exit 3'
	assert_success
	assert_output --partial "hit: would replay"
}

@test "reason: 'the last run expired (--ttl)'" {
	cashet exec --ttl 700ms -- echo fresh > /dev/null
	[ "$(would -- echo fresh)" = hit ]
	sleep 0.8
	run cashet why -- echo fresh
	assert_failure 1
	assert_line "  the last run expired (--ttl)"
}

@test "reason: 'script one.py removed' when the script is gone" {
	printf 'print(1)\n' > one.py
	cashet exec -- python3 one.py > /dev/null
	# the same command line, now the script is gone: the argv stays, the part goes
	rm one.py
	run why_reasons -- python3 one.py
	assert_output "script one.py removed"
}

@test "exec -v on a miss prints the reasons as 'cashet: why:' lines before running" {
	echo 1 > data.csv
	LR=0.1 cashet exec -i data.csv -e LR -- sh -c "$(counted 'echo t')" > /dev/null
	echo 2 > data.csv
	LR=0.01 run --separate-stderr cashet exec -v -i data.csv -e LR -- sh -c "$(counted 'echo t >&2')"
	assert_success
	# argv changed too: this is a new command line
	[[ "$stderr" == *"cashet: why: never run before (no run of this command line in this directory)"* ]]
	LR=0.01 cashet exec -i data.csv -e LR -- sh -c "$(counted 'echo t')" > /dev/null
	echo 3 > data.csv
	LR=0.001 run --separate-stderr cashet exec -v -i data.csv -e LR -- sh -c "$(counted 'echo t')"
	assert_success
	assert_output t
	mapfile -t err <<< "$stderr"
	[[ "${err[0]}" =~ ^cashet:\ miss\ [0-9a-f]{32}$ ]]
	[ "${err[1]}" = "cashet: why: input data.csv changed" ]
	[ "${err[2]}" = "cashet: why: env LR changed: 0.01 -> 0.001" ]
	[[ "${err[3]}" =~ ^cashet:\ stored\ [0-9a-f]{12}\ \(exit\ 0\)$ ]]
	[ "${#err[@]}" = 4 ]
	# the reasons come before the command's own output
	LR=1 run cashet exec -v -i data.csv -e LR -- sh -c "$(counted 'echo t')"
	assert_line --index 1 "cashet: why: env LR changed: 0.001 -> 1"
	assert_line --index 2 t
	# a hit says no why
	LR=1 run cashet exec -v -i data.csv -e LR -- sh -c "$(counted 'echo t')"
	refute_output --partial "why:"
	[ "$(run_count)" = 5 ]
}

# --- --env-file ------------------------------------------------------------------

@test "--env-file: a later setting of a name wins, over the environment and over an earlier file" {
	printf 'LR=0.1\nLR=0.2\n' > a.env
	printf 'LR=0.3\n' > b.env
	LR=9 run cashet exec --env-file a.env -- sh -c 'echo "$LR"; env | grep -c "^LR="'
	assert_output "0.2
1"
	LR=9 run cashet exec --env-file a.env --env-file b.env -- sh -c 'echo "$LR"; env | grep -c "^LR="'
	assert_output "0.3
1"
}

@test "--env-file: NAME=VALUE is set and hashed, NAME is only hashed" {
	printf '# settings\nexport LR=0.1\nMODE="fast"\n\nSEED\n' > run.env
	unset LR MODE SEED
	cmd=(--env-file run.env -- sh -c "$(counted 'echo "$LR $MODE ${SEED-unset}"')")
	run cashet exec "${cmd[@]}"
	assert_output "0.1 fast unset"
	[ "$(verdict "${cmd[@]}")" = hit ]
	SEED=7 run cashet exec "${cmd[@]}"
	assert_output "0.1 fast 7"
	[ "$(run_count)" = 2 ]
	SEED=7 run why_reasons "${cmd[@]}"
	assert_output ""
	sed -i 's/LR=0.1/LR=0.01/' run.env
	SEED=7 run why_reasons "${cmd[@]}"
	assert_output "env LR changed: 0.1 -> 0.01"
	SEED=7 run cashet exec "${cmd[@]}"
	assert_output "0.01 fast 7"
	# the file wins over the caller's environment for NAME=VALUE
	LR=5 SEED=7 run cashet exec "${cmd[@]}"
	assert_output "0.01 fast 7"
	[ "$(run_count)" = 3 ]
	# comments and blank lines in the file are nothing
	printf '\n# more\n' >> run.env
	[ "$(SEED=7 would "${cmd[@]}")" = hit ]
}

@test "--env-file: a malformed line is 'FILE:LINE: expected NAME=VALUE or NAME', exit 125" {
	printf 'A=1\n# ok\nnot a name\n' > bad.env
	run --separate-stderr cashet exec --env-file bad.env -- sh -c "$(counted 'echo x')"
	assert_failure 125
	[ "$stderr" = "cashet: bad.env:3: expected NAME=VALUE or NAME" ]
	[ "$(run_count)" = 0 ]
	printf '=1\n' > bad.env
	run --separate-stderr cashet why --env-file bad.env -- echo x
	assert_failure 125
	[ "$stderr" = "cashet: bad.env:1: expected NAME=VALUE or NAME" ]
	run --separate-stderr cashet exec --env-file missing.env -- echo x
	assert_failure 125
	[[ "$stderr" == "cashet: --env-file: "*"missing.env"* ]]
}

@test "--env-file with a pattern line: a new matching variable is a miss" {
	printf 'PAT_*\n' > pat.env
	export PAT_A=1
	[ "$(verdict --env-file pat.env -- echo p)" = miss ]
	[ "$(verdict --env-file pat.env -- echo p)" = hit ]
	export PAT_B=1
	[ "$(verdict --env-file pat.env -- echo p)" = miss ]
	export PAT_B=2
	run why_reasons --env-file pat.env -- echo p
	assert_output "env PAT_B changed: 1 -> 2"
}

# --- --param errors --------------------------------------------------------------

@test "--param: a missing key is an error, exit 125, nothing runs" {
	printf '[train]\nlr = 0.1\n' > params.toml
	run --separate-stderr cashet exec -p params.toml:train.nope -- sh -c "$(counted 'echo x')"
	assert_failure 125
	[ "$stderr" = "cashet: --param params.toml: no key 'train.nope'" ]
	run --separate-stderr cashet why -p params.toml:train.lr.deeper -- echo x
	assert_failure 125
	[ "$stderr" = "cashet: --param params.toml: no key 'train.lr.deeper'" ]
	echo '{"a": 1}' > p.json
	run --separate-stderr cashet exec -p p.json:b -- echo x
	assert_failure 125
	[ "$stderr" = "cashet: --param p.json: no key 'b'" ]
	[ "$(run_count)" = 0 ]
}

@test "--param: bad TOML names FILE:LINE:COL; a missing file and a bad spec are errors" {
	printf '[train]\nlr = 0.1\nepochs = = 3\n' > params.toml
	run --separate-stderr cashet exec -p params.toml:train.lr -- sh -c "$(counted 'echo x')"
	assert_failure 125
	[[ "$stderr" =~ ^cashet:\ --param:\ params\.toml:3:[0-9]+:\ .+ ]]
	[ "$(run_count)" = 0 ]
	run --separate-stderr cashet exec -p nothere.toml:a -- echo x
	assert_failure 125
	[[ "$stderr" == *nothere.toml* ]]
	run --separate-stderr cashet exec -p params.toml -- echo x
	assert_failure 125
	[ "$stderr" = "cashet: --param 'params.toml': expected FILE:KEY (e.g. params.toml:train.lr)" ]
}

@test "reason: a last run stopped by --timeout 'timed out', not 'failed (exit 124)'" {
	run cashet exec --timeout 200ms -- sleep 5
	assert_failure 124
	run cashet why -- sleep 5
	assert_failure 1
	assert_line "  the last run timed out (--timeout) and failures are not replayed (--cache-failures)"
	[ "${#lines[@]}" = 2 ]
	# from the run's meta too
	cashet reindex > /dev/null
	run cashet why -- sleep 5
	assert_line "  the last run timed out (--timeout) and failures are not replayed (--cache-failures)"
	# a command that exits 124 itself did not time out
	run cashet exec -- sh -c 'exit 124'
	run cashet why -- sh -c 'exit 124'
	assert_line "  the last run failed (exit 124) and failures are not replayed (--cache-failures)"
}

@test "reason: a variable set to empty is shown quoted: (unset) -> \"\", \"\" -> 1" {
	cashet exec -e FOO -- true
	run why_reasons -e FOO -- true
	assert_output ""
	FOO= run why_reasons -e FOO -- true
	assert_output 'env FOO changed: (unset) -> ""'
	FOO= cashet exec -e FOO -- true
	FOO=1 run why_reasons -e FOO -- true
	assert_output 'env FOO changed: "" -> 1'
}

@test "reason: another PATH that selects another executable is one line: 'tool now resolves to b2/tool (was b1/tool)'" {
	mkdir b1 b2
	cp /bin/true b1/tool
	cp /bin/true b2/tool
	echo x >> b2/tool
	PATH="$PWD/b1:$PATH" cashet exec -- tool
	PATH="$PWD/b2:$PATH" run why_reasons -- tool
	assert_output "tool now resolves to b2/tool (was b1/tool)"
	# outside the project the path is absolute
	mkdir -p "$BATS_TEST_TMPDIR/ext"
	cp /bin/true "$BATS_TEST_TMPDIR/ext/tool"
	echo y >> "$BATS_TEST_TMPDIR/ext/tool"
	PATH="$BATS_TEST_TMPDIR/ext:$PATH" run why_reasons -- tool
	assert_output "tool now resolves to $BATS_TEST_TMPDIR/ext/tool (was b1/tool)"
}
