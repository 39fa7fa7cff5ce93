#!/usr/bin/env bats
# Signed runs and the trust policy: a store with `signing-key` signs every
# run it stores as git signs commits with gpg.format=ssh (checked with real
# git), and a store with `trust.allowed-signers` replays runs that arrive
# from elsewhere (import, git pull, Redis, a cashet serve upload) only when
# an allowed key signed them; the others are refused with a note naming
# the signer and never indexed. --remote-mode read never writes to Redis.

load helper

setup_file() {
	local k="$BATS_FILE_TMPDIR/keys"
	mkdir -p "$k"
	ssh-keygen -q -t ed25519 -N '' -C ci -f "$k/ci"
	ssh-keygen -q -t ed25519 -N '' -C intruder -f "$k/intruder"
	echo "ci@example.com $(cat "$k/ci.pub")" > "$k/allowed"
}

setup() {
	command -v ssh-keygen > /dev/null || skip "ssh-keygen is not installed (package openssh-client)"
	common_setup
	KEYS="$BATS_FILE_TMPDIR/keys"
	echo data > in
	cashet init > /dev/null
	mkdir -p "$BATS_TEST_TMPDIR/other"
}

teardown() {
	kill_started
	if [ -f "$BATS_TEST_TMPDIR/redis.pid" ]; then
		kill "$(cat "$BATS_TEST_TMPDIR/redis.pid")" 2> /dev/null || true
	fi
	sanitizer_check
}

# The same project in another directory with a store of its own that
# trusts only the ci key.
trusting_machine() {
	cp in "$BATS_TEST_TMPDIR/other/"
	cd "$BATS_TEST_TMPDIR/other"
	export RUNS_COUNT="$BATS_TEST_TMPDIR/other.count"
	cashet init > /dev/null
	cashet config trust.allowed-signers "$KEYS/allowed"
}

# export_run STORE-DIR KEY FILE: in a store of its own (KEY "" for none),
# runs `cat in` and exports that run to FILE.
export_run() {
	local dir=$1 key=$2 file=$3
	mkdir -p "$dir" && cp in "$dir/" && (
		cd "$dir" && cashet init > /dev/null
		[ -z "$key" ] || cashet config signing-key "$key"
		cashet exec -i in -- sh -c "$(counted 'cat in')" > /dev/null
		cashet export "$file" > /dev/null
	)
}

redis_start() {
	command -v redis-server > /dev/null || skip "redis-server is not installed"
	RPORT=$(free_port)
	redis-server --port "$RPORT" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
		--pidfile "$BATS_TEST_TMPDIR/redis.pid" --logfile "$BATS_TEST_TMPDIR/redis.log" \
		--dir "$BATS_TEST_TMPDIR" "$@"
	local n=0
	until redis-cli -p "$RPORT" ping 2> /dev/null | grep -q "PONG\|NOAUTH"; do
		n=$((n + 1))
		[ "$n" -gt 50 ] && skip "redis-server did not start on port $RPORT"
		sleep 0.1
	done
}

@test "signing-key: every run is signed, and git verify-commit accepts it with git's allowed signers" {
	run cashet config signing-key "$KEYS/ci"
	assert_success
	run cashet config signing-key
	assert_output "$KEYS/ci"
	cashet exec -i in -- cat in > /dev/null
	h=$(last_hash)
	git --git-dir .cashet cat-file commit "$h" | grep -q '^gpgsig -----BEGIN SSH SIGNATURE-----$'
	run git -c gpg.ssh.allowedSignersFile="$KEYS/allowed" --git-dir .cashet verify-commit "$h"
	assert_success
	assert_output --partial 'Good "git" signature for ci@example.com with ED25519 key'
	# and git says no for a key the file does not list
	echo "ci@example.com $(cat "$KEYS/intruder.pub")" > other-allowed
	run git -c gpg.ssh.allowedSignersFile="$PWD/other-allowed" --git-dir .cashet verify-commit "$h"
	assert_failure
	# still a plain hit afterwards
	[ "$(verdict -i in -- cat in)" = hit ]
}

@test "show and log --signatures name the signer: the principal when allowed, else the key" {
	cashet config signing-key "$KEYS/ci"
	cashet exec -- echo signed > /dev/null
	cashet config --unset signing-key
	cashet exec -- echo plain > /dev/null
	key=$(ssh-keygen -lf "$KEYS/ci.pub" | cut -d' ' -f2)
	run cashet log --signatures
	assert_line --index 2 "              unsigned"
	assert_line --index 4 "              signed by $key"
	cashet config trust.allowed-signers "$KEYS/allowed"
	run cashet log --signatures --json
	[ "$(echo "$output" | json_field '[(r["cmd"], r["signature"], r["signer"]) for r in j]')" = \
		"[('echo plain', 'unsigned', None), ('echo signed', 'allowed', 'ci@example.com')]" ]
	run cashet show "$(cashet log --cmd signed --json | json_field 'j[0]["hash"]')"
	assert_line --index 8 "signature   signed by ci@example.com"
	# log without the option is as before
	run cashet log --json
	[ "$(echo "$output" | json_field '"signature" in j[0]')" = False ]
}

@test "config: the keys are checked, and paths are kept absolute" {
	run cashet config signing-key nowhere
	assert_failure 2
	assert_output --partial "signing-key: cannot read nowhere"
	run cashet config remote-mode write
	assert_failure 2
	assert_output --partial "remote-mode: expected read or read-write, got 'write'"
	cp "$KEYS/allowed" signers
	cashet config trust.allowed-signers signers
	run cashet config trust.allowed-signers
	assert_output "$PWD/signers"
	grep -q '^\[cashet "trust"\]' .cashet/config
}

@test "a key that cannot sign fails the store, not the command" {
	cp "$KEYS/ci" gone-key && cashet config signing-key "$PWD/gone-key" && rm gone-key
	run --separate-stderr cashet exec -- echo out
	assert_output out
	[[ "$stderr" == *"cannot sign with $PWD/gone-key"* ]]
	[ "$(log_count)" = 0 ]
}

@test "import: with a policy, only runs an allowed key signed are added; others are named and refused" {
	export_run "$BATS_TEST_TMPDIR/ci" "$KEYS/ci" "$BATS_TEST_TMPDIR/ci.cashet"
	export_run "$BATS_TEST_TMPDIR/bad" "$KEYS/intruder" "$BATS_TEST_TMPDIR/bad.cashet"
	export_run "$BATS_TEST_TMPDIR/none" "" "$BATS_TEST_TMPDIR/none.cashet"
	trusting_machine
	run cashet import "$BATS_TEST_TMPDIR/none.cashet"
	assert_failure 1
	assert_output "cashet: run $(cd "$BATS_TEST_TMPDIR/none" && last_hash | cut -c1-12) is unsigned"
	key=$(ssh-keygen -lf "$KEYS/intruder.pub" | cut -d' ' -f2)
	run cashet import "$BATS_TEST_TMPDIR/bad.cashet"
	assert_failure 1
	assert_output "cashet: run $(cd "$BATS_TEST_TMPDIR/bad" && last_hash | cut -c1-12) is signed by $key, not an allowed signer"
	[ "$(log_count)" = 0 ]
	[ -z "$(git --git-dir .cashet for-each-ref refs/cashet/runs)" ]
	run cashet import "$BATS_TEST_TMPDIR/ci.cashet"
	assert_output 'imported 1 run (0 already present)'
	[ "$(verdict -i in -- sh -c "$(counted 'cat in')")" = hit ]
	[ "$(run_count)" = 0 ]
	# without a policy, everything is accepted as before
	cashet config --unset trust.allowed-signers
	run cashet import "$BATS_TEST_TMPDIR/none.cashet"
	assert_output 'imported 1 run (0 already present)'
}

@test "git pull: runs not signed by an allowed key are refused one by one, never indexed" {
	git init -q --bare "$BATS_TEST_TMPDIR/shared.git"
	cashet remote add origin "$BATS_TEST_TMPDIR/shared.git"
	cashet exec -- echo unsigned > /dev/null
	cashet config signing-key "$KEYS/intruder"
	cashet exec -- echo intruder > /dev/null
	cashet config signing-key "$KEYS/ci"
	cashet exec -- echo ci > /dev/null
	cashet push > /dev/null
	# a signed run changed afterwards (its message): the signature no longer matches
	ci=$(cashet log --cmd ci --json | json_field 'j[0]["hash"]')
	forged=$(git --git-dir .cashet cat-file commit "$ci" | sed 's/^echo ci$/echo forged/' |
		git --git-dir "$BATS_TEST_TMPDIR/shared.git" hash-object -t commit -w --stdin)
	git --git-dir "$BATS_TEST_TMPDIR/shared.git" update-ref "refs/cashet/runs/$forged" "$forged"
	trusting_machine
	cashet remote add origin "$BATS_TEST_TMPDIR/shared.git"
	run cashet remote
	assert_output "origin $BATS_TEST_TMPDIR/shared.git (trusted: runs signed by a key of $KEYS/allowed)"
	run --separate-stderr cashet pull
	assert_success
	assert_output 'pulled 1 new run from origin'
	key=$(ssh-keygen -lf "$KEYS/intruder.pub" | cut -d' ' -f2)
	[ "$(grep -c ' is unsigned; not pulled$' <<< "$stderr")" = 1 ]
	[ "$(grep -c " is signed by $key, not an allowed signer; not pulled\$" <<< "$stderr")" = 1 ]
	[ "$(grep -c "^cashet: run ${forged:0:12} is signed, but its signature does not verify; not pulled\$" <<< "$stderr")" = 1 ]
	[ "$(echo "$stderr" | wc -l)" = 3 ]
	run cashet log --json
	[ "$(echo "$output" | json_field '[r["cmd"] for r in j]')" = "['echo ci']" ]
	[ "$(git --git-dir .cashet for-each-ref refs/cashet/runs | wc -l)" = 1 ]
}

@test "cashet remote: without a policy every remote is untrusted, the exec remote and its mode too" {
	cashet remote add origin /srv/cache.git
	cashet config remote redis://u:secret@127.0.0.1:1/0
	cashet config remote-mode read
	run cashet remote
	assert_output "origin /srv/cache.git (untrusted: no trust.allowed-signers, runs are replayed whoever made them)
exec redis://u:***@127.0.0.1:1/0 (read, untrusted: no trust.allowed-signers, runs are replayed whoever made them)"
}

@test "Redis: a run signed by an allowed key is replayed; one signed by another key is refused with a note" {
	redis_start
	export CASHET_REMOTE="redis://127.0.0.1:$RPORT/0"
	cashet config signing-key "$KEYS/intruder"
	cashet exec -i in -- sh -c "$(counted 'cat in')" > /dev/null
	bad=$(last_hash)
	trusting_machine
	key=$(ssh-keygen -lf "$KEYS/intruder.pub" | cut -d' ' -f2)
	run --separate-stderr cashet exec --remote-mode read -i in -- sh -c "$(counted 'cat in')"
	assert_output data
	[ "$stderr" = "cashet: note: run ${bad:0:12} is signed by $key, not an allowed signer on redis://127.0.0.1:$RPORT/0; not replayed" ]
	[ "$(run_count)" = 1 ] # ran here
	run cashet log --json
	[ "$(echo "$output" | json_field '[r["hash"] == "'"$bad"'" for r in j]')" = "[False]" ]
	# the ci key's run, sent by a third machine, is replayed
	cd "$BATS_TEST_TMPDIR/proj"
	cashet config signing-key "$KEYS/ci"
	echo new > in
	RUNS_COUNT="$BATS_TEST_TMPDIR/third.count" cashet exec -i in -- sh -c "$(counted 'cat in')" > /dev/null
	cd "$BATS_TEST_TMPDIR/other" && echo new > in
	[ "$(verdict -i in -- sh -c "$(counted 'cat in')")" = hit ]
	[ "$(run_count)" = 1 ]
}

@test "--remote-mode read (and remote-mode read in config): fetches, never writes, takes no lock" {
	redis_start
	export CASHET_REMOTE="redis://127.0.0.1:$RPORT/0"
	cashet exec -i in -- sh -c "$(counted 'cat in')" > /dev/null
	keys=$(redis-cli -p "$RPORT" --raw dbsize)
	[ "$keys" = 2 ] # the run and its fingerprint
	trusting_machine
	cashet config --unset trust.allowed-signers
	# a hit from the remote
	[ "$(verdict --remote-mode read -i in -- sh -c "$(counted 'cat in')")" = hit ]
	# a miss runs, and nothing is sent
	redis-cli -p "$RPORT" monitor > "$BATS_TEST_TMPDIR/monitor" &
	track_pid $!
	sleep 0.2
	echo changed > in
	run --separate-stderr cashet exec -v --remote-mode read -i in -- sh -c "$(counted 'cat in')"
	assert_output changed
	[[ "$stderr" == *"not sent to redis://127.0.0.1:$RPORT/0: remote-mode is read"* ]]
	cashet config remote-mode read
	run cashet exec -i in -- sh -c "$(counted 'cat in'); echo again"
	assert_success
	sleep 0.2
	[ "$(redis-cli -p "$RPORT" --raw dbsize)" = 2 ]
	# the reader asked (GET), and never wrote (SET) nor locked (SET NX)
	grep -qi '"get"' "$BATS_TEST_TMPDIR/monitor"
	run grep -ci '"set"\|"setex"\|"psetex"\|"del"\|"eval"\|"pexpire"' "$BATS_TEST_TMPDIR/monitor"
	assert_output 0
	# read-write again: it sends
	run cashet exec --remote-mode read-write -i in -- sh -c "$(counted 'cat in'); echo third"
	[ "$(redis-cli -p "$RPORT" --raw dbsize)" = 4 ]
}

@test "cashet serve: with a policy, PUT /archive takes only runs an allowed key signed (403 otherwise)" {
	export_run "$BATS_TEST_TMPDIR/ci" "$KEYS/ci" "$BATS_TEST_TMPDIR/ci.cashet"
	export_run "$BATS_TEST_TMPDIR/bad" "$KEYS/intruder" "$BATS_TEST_TMPDIR/bad.cashet"
	trusting_machine
	serve_start . secret
	put() {
		curl -s -o "$BATS_TEST_TMPDIR/body" -w '%{http_code}' -X PUT -H 'Authorization: Bearer secret' \
			--data-binary "@$1" "$URL/archive"
	}
	[ "$(put "$BATS_TEST_TMPDIR/bad.cashet")" = 403 ]
	key=$(ssh-keygen -lf "$KEYS/intruder.pub" | cut -d' ' -f2)
	[ "$(json_field 'j["error"]' < "$BATS_TEST_TMPDIR/body")" = \
		"run $(cd "$BATS_TEST_TMPDIR/bad" && last_hash | cut -c1-12) is signed by $key, not an allowed signer" ]
	[ "$(curl -s "$URL/stats" | json_field 'j["runs"]')" = 0 ]
	[ "$(put "$BATS_TEST_TMPDIR/ci.cashet")" = 200 ]
	[ "$(curl -s "$URL/stats" | json_field 'j["runs"]')" = 1 ]
	# exec --remote uploads its own signed run the same way
	cd "$BATS_TEST_TMPDIR/ci"
	echo more > in
	CASHET_REMOTE_TOKEN=secret cashet exec --remote "$URL" -i in -- cat in > /dev/null
	[ "$(curl -s "$URL/stats" | json_field 'j["runs"]')" = 2 ]
}

@test "Redis AUTH: a password or an ACL user from the URL or the environment; without it, one warning" {
	redis_start --requirepass s3cret --user alice on ">alicepw" "~cashet:*" "+@all"
	cashet exec --remote "redis://:s3cret@127.0.0.1:$RPORT/0" -i in -- sh -c "$(counted 'cat in')" > /dev/null
	[ "$(redis-cli -p "$RPORT" -a s3cret --no-auth-warning --raw dbsize)" = 2 ]
	trusting_machine
	cashet config --unset trust.allowed-signers
	# no password: the server says so, once, and the command runs
	run --separate-stderr cashet exec --remote "redis://127.0.0.1:$RPORT/0" -i in -- sh -c "$(counted 'cat in')"
	assert_output data
	[[ "$stderr" == "cashet: warning: remote redis://127.0.0.1:$RPORT/0: "*"NOAUTH"*"; working locally" ]]
	[ "$(echo "$stderr" | wc -l)" = 1 ]
	cashet rm "$(last_hash)" > /dev/null
	# the password from the environment: a hit from Redis
	[ "$(CASHET_REDIS_PASSWORD=s3cret verdict --remote "redis://127.0.0.1:$RPORT/0" -i in -- sh -c "$(counted 'cat in')")" = hit ]
	cashet rm "$(last_hash)" > /dev/null
	# an ACL user, from the URL (the password is not shown) and from the environment
	run --separate-stderr cashet exec -v --remote "redis://alice:wrong@127.0.0.1:$RPORT/0" -- true
	[[ "$stderr" == *"cashet: warning: remote redis://alice:***@127.0.0.1:$RPORT/0: "*"; working locally"* ]]
	[[ "$stderr" != *wrong* ]]
	[ "$(verdict --remote "redis://alice:alicepw@127.0.0.1:$RPORT/0" -i in -- sh -c "$(counted 'cat in')")" = hit ]
	cashet rm "$(last_hash)" > /dev/null
	[ "$(CASHET_REDIS_USER=alice CASHET_REDIS_PASSWORD=alicepw verdict --remote "redis://127.0.0.1:$RPORT/0" \
		-i in -- sh -c "$(counted 'cat in')")" = hit ]
	[ "$(run_count)" = 1 ] # only the run without a password
}

@test "rediss:// is refused with the reason (Debian's hiredis 0.14 has no TLS), and the command runs" {
	run --separate-stderr cashet exec --remote rediss://127.0.0.1:1/0 -- echo ok
	assert_output ok
	[ "$stderr" = "cashet: warning: remote rediss://127.0.0.1:1/0: rediss:// (Redis over TLS) is not supported: this hiredis has no TLS; reach the server through a TLS tunnel (stunnel) on 127.0.0.1; working locally" ]
	run cashet config remote rediss://127.0.0.1:1/0
	assert_failure 2
}
