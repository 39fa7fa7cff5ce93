#!/usr/bin/env bats
# Git remotes as shared caches: one machine pushes its runs to a bare
# repository (a path, or git:// served by `git daemon` on 127.0.0.1), another
# pulls them and replays without running. Filters choose what is pushed.

load helper

setup() {
	common_setup
	git init -q --bare "$BATS_TEST_TMPDIR/shared.git"
	mkdir -p "$BATS_TEST_TMPDIR/other"
	cashet init > /dev/null
	echo data > in
}

teardown() {
	if [ -f "$BATS_TEST_TMPDIR/daemon.pid" ]; then
		kill "$(cat "$BATS_TEST_TMPDIR/daemon.pid")" 2> /dev/null || true
	fi
	sanitizer_check
}

# The same project on "another machine": a copy of the files, a new store.
other_machine() {
	cp in "$BATS_TEST_TMPDIR/other/"
	cd "$BATS_TEST_TMPDIR/other"
	export RUNS_COUNT="$BATS_TEST_TMPDIR/other.count"
	cashet init > /dev/null
	cashet remote add origin "$1"
}

@test "remote add / list / remove" {
	run cashet remote add origin "$BATS_TEST_TMPDIR/shared.git"
	assert_success
	run cashet remote
	assert_output "origin $BATS_TEST_TMPDIR/shared.git (untrusted: no trust.allowed-signers, runs are replayed whoever made them)"
	run cashet remote add origin elsewhere
	assert_failure 1
	run cashet remote remove origin
	assert_success
	run cashet remote list
	assert_output ''
	run cashet remote add onlyname
	assert_failure 2
}

@test "push to a bare repository, pull elsewhere: a hit without running" {
	cashet exec -i in -- sh -c "$(counted 'cat in')" > /dev/null
	cashet remote add origin "$BATS_TEST_TMPDIR/shared.git"
	run cashet push
	assert_output 'pushed 1 run to origin'
	[ "$(git --git-dir "$BATS_TEST_TMPDIR/shared.git" for-each-ref refs/cashet/runs | wc -l)" = 1 ]
	other_machine "$BATS_TEST_TMPDIR/shared.git"
	run cashet pull
	assert_output 'pulled 1 new run from origin'
	run --separate-stderr cashet exec -v -i in -- sh -c "$(counted 'cat in')"
	assert_success
	assert_output data
	[[ "$stderr" == "cashet: hit "* ]]
	[ ! -f "$RUNS_COUNT" ] # never ran here
	run cashet pull
	assert_output 'pulled 0 new runs from origin'
	git --git-dir .cashet fsck --no-dangling
}

@test "empty strings survive push and pull: an argument, --name, an env value" {
	empty_values_run
	cashet remote add origin "$BATS_TEST_TMPDIR/shared.git"
	run cashet push
	assert_output 'pushed 1 run to origin'
	other_machine "$BATS_TEST_TMPDIR/shared.git"
	run cashet pull
	assert_output 'pulled 1 new run from origin'
	assert_empty_values
}

@test "push filters: --tag, --name, --since" {
	cashet exec -t exp=a -- echo a > /dev/null
	cashet exec -t exp=b -n nightly -- echo b > /dev/null
	cashet exec -- echo c > /dev/null
	sqlite3 .cashet/index.db "UPDATE runs SET created = created - 86400000 * 3 WHERE $(argv_is "echo c")"
	cashet remote add origin "$BATS_TEST_TMPDIR/shared.git"
	run cashet push --tag exp=a
	assert_output 'pushed 1 run to origin'
	run cashet push --name nightly
	assert_output 'pushed 1 run to origin'
	[ "$(git --git-dir "$BATS_TEST_TMPDIR/shared.git" for-each-ref refs/cashet/runs | wc -l)" = 2 ]
	run cashet push --since 1d
	assert_output 'pushed 2 runs to origin'
	[ "$(git --git-dir "$BATS_TEST_TMPDIR/shared.git" for-each-ref refs/cashet/runs | wc -l)" = 2 ]
	run cashet push
	assert_output 'pushed 3 runs to origin'
	[ "$(git --git-dir "$BATS_TEST_TMPDIR/shared.git" for-each-ref refs/cashet/runs | wc -l)" = 3 ]
}

@test "push and pull over git:// (git daemon on 127.0.0.1)" {
	port=$((20000 + RANDOM % 20000))
	git daemon --export-all --enable=receive-pack --base-path="$BATS_TEST_TMPDIR" --listen=127.0.0.1 \
		--port="$port" --reuseaddr --detach --pid-file="$BATS_TEST_TMPDIR/daemon.pid" "$BATS_TEST_TMPDIR"
	for _ in $(seq 50); do
		git ls-remote "git://127.0.0.1:$port/shared.git" > /dev/null 2>&1 && break
		sleep 0.1
	done
	cashet exec -i in -- sh -c "$(counted 'cat in')" > /dev/null
	cashet remote add origin "git://127.0.0.1:$port/shared.git"
	run cashet push
	assert_output 'pushed 1 run to origin'
	other_machine "git://127.0.0.1:$port/shared.git"
	run cashet pull
	assert_output 'pulled 1 new run from origin'
	run cashet exec -i in -- sh -c "$(counted 'cat in')"
	assert_output data
	[ ! -f "$RUNS_COUNT" ]
}

@test "push to a file:// URL or a path whose refs are packed sends only what the remote lacks; a path that is no repository is a clear error" {
	for i in 1 2 3; do cashet exec -- echo "run $i" > /dev/null; done
	cashet remote add url "file://$BATS_TEST_TMPDIR/shared.git"
	run -0 cashet push url
	assert_output 'pushed 3 runs to url'
	git --git-dir "$BATS_TEST_TMPDIR/shared.git" pack-refs --all
	[ -z "$(ls "$BATS_TEST_TMPDIR/shared.git/refs/cashet/runs")" ]
	cashet exec -- echo "run 4" > /dev/null
	cashet remote add path "$BATS_TEST_TMPDIR/shared.git"
	run -0 cashet push path
	assert_output 'pushed 4 runs to path'
	# only the new run was written (loose); the packed ones were left as they were
	[ "$(ls "$BATS_TEST_TMPDIR/shared.git/refs/cashet/runs")" = "$(last_hash)" ]
	[ "$(git --git-dir "$BATS_TEST_TMPDIR/shared.git" for-each-ref refs/cashet/runs | wc -l)" = 4 ]
	git --git-dir "$BATS_TEST_TMPDIR/shared.git" fsck --no-dangling
	mkdir "$BATS_TEST_TMPDIR/plain"
	cashet remote add plain "$BATS_TEST_TMPDIR/plain"
	run --separate-stderr cashet push plain
	assert_failure 1
	[ "${#stderr_lines[@]}" = 1 ]
	[[ "$stderr" == "cashet: $BATS_TEST_TMPDIR/plain: "* ]]
}

@test "push or pull to an unknown remote is a clear error" {
	run cashet push nowhere
	assert_failure 1
	assert_output --partial "no remote 'nowhere'"
	run cashet pull nowhere
	assert_failure 1
	assert_output --partial "no remote 'nowhere'"
}

@test "push leaves out, with a warning, runs whose lineage gc cut; the others go" {
	echo 1 > in; cashet exec -i in -- cat in > /dev/null
	echo 2 > in; cashet exec -i in -- cat in > /dev/null
	old=$(cashet log --json | json_field 'j[1]["hash"]')
	cashet rm "$old" > /dev/null
	cashet gc > /dev/null
	[ -s .cashet/shallow ]
	cashet exec -- echo fresh > /dev/null
	cashet remote add origin "$BATS_TEST_TMPDIR/shared.git"
	run --separate-stderr cashet push
	assert_success
	assert_output 'pushed 1 run to origin'
	[[ "$stderr" == "cashet: warning: run "*" not pushed: its history was cut by gc ("*"); use export/import" ]]
	[ "$(git --git-dir "$BATS_TEST_TMPDIR/shared.git" for-each-ref refs/cashet/runs | wc -l)" = 1 ]
}

@test "pull refuses a run whose output lies outside its project, as import does, and keeps the others" {
	abs="$BATS_TEST_TMPDIR/elsewhere.txt"
	cashet exec -o "$abs" -- sh -c "echo x > '$abs'" > /dev/null
	cashet exec -- echo fine > /dev/null
	abs_run=$(cashet log --json | json_field 'j[1]["hash"]')
	cashet remote add origin "$BATS_TEST_TMPDIR/shared.git"
	cashet push > /dev/null
	rm "$abs"
	other_machine "$BATS_TEST_TMPDIR/shared.git"
	run --separate-stderr cashet pull
	assert_success
	assert_output 'pulled 1 new run from origin'
	[ "$stderr" = "cashet: run ${abs_run:0:12} has an output outside its project (${abs}); import it with --allow-absolute if you trust it; not pulled" ]
	[ "$(verdict -o "$abs" -- sh -c "echo x > '$abs'")" = miss ]
	# nor does a later gc or fsck index it behind the user's back
	cashet gc > /dev/null
	[ "$(cashet log --json | json_field 'len(j)')" = 2 ]
}
