#!/usr/bin/env bats
# The HTTP cache protocol of bazel-remote and ccache's http storage
# (cache+http://host:port/prefix: GET/PUT/HEAD of /cas/<sha256> and
# /ac/<sha256>), against Debian's nginx with WebDAV PUT started by each
# test on 127.0.0.1 with its config, root and logs in the test's
# directory: two stores share runs through it, a corrupted object is a
# miss with a warning, a server that is down costs one warning, and a
# read-only consumer writes nothing (no PUT in nginx's access log).

load helper

setup() {
	NGINX=$(command -v nginx || echo /usr/sbin/nginx)
	[ -x "$NGINX" ] || skip "nginx is not installed (contrib/install-deps.sh installs it)"
	common_setup
	echo data > in
	cashet init > /dev/null
	nginx_start
	export CASHET_REMOTE="cache+http://127.0.0.1:$NPORT/team-cache"
	mkdir -p "$BATS_TEST_TMPDIR/other"
}

teardown() {
	kill_started
	if [ -f "$BATS_TEST_TMPDIR/nginx/nginx.pid" ]; then
		kill "$(cat "$BATS_TEST_TMPDIR/nginx/nginx.pid")" 2> /dev/null || true
	fi
	sanitizer_check
}

# nginx_start [EXTRA-DIRECTIVES]: nginx on a free port of 127.0.0.1 serving
# and accepting PUTs under $BATS_TEST_TMPDIR/nginx/root; sets NPORT and
# NROOT. As root it needs `user root;` or its workers cannot write there.
nginx_start() {
	local d="$BATS_TEST_TMPDIR/nginx" n=0
	NPORT=$(free_port)
	NROOT="$d/root"
	mkdir -p "$NROOT" "$d/tmp"
	cat > "$d/nginx.conf" <<-EOF
		$([ "$(id -u)" = 0 ] && echo 'user root;')
		daemon on;
		worker_processes 1;
		pid $d/nginx.pid;
		error_log $d/error.log;
		events { worker_connections 64; }
		http {
		    access_log $d/access.log;
		    client_body_temp_path $d/tmp;
		    client_max_body_size 0;
		    server {
		        listen 127.0.0.1:$NPORT;
		        root $NROOT;
		        location / {
		            dav_methods PUT DELETE MKCOL;
		            create_full_put_path on;
		            $1
		        }
		    }
		}
	EOF
	"$NGINX" -c "$d/nginx.conf" -p "$d" 2> "$d/start.log" || skip "nginx did not start: $(cat "$d/start.log")"
	until curl -s -o /dev/null "http://127.0.0.1:$NPORT/"; do
		n=$((n + 1))
		[ "$n" -gt 50 ] && skip "nginx did not answer on port $NPORT"
		sleep 0.1
	done
}

other_machine() {
	cp in "$BATS_TEST_TMPDIR/other/"
	cd "$BATS_TEST_TMPDIR/other"
	export RUNS_COUNT="$BATS_TEST_TMPDIR/other.count"
	cashet init > /dev/null
}

puts() {
	grep -c '"PUT ' "$BATS_TEST_TMPDIR/nginx/access.log" || true
}

@test "two stores share a run through nginx: bazel-remote's layout, objects named by their SHA-256" {
	run --separate-stderr cashet exec -v -i in -- sh -c "$(counted 'cat in')"
	assert_output data
	[[ "$stderr" == *"cashet: sent "*" to cache+http://127.0.0.1:$NPORT/team-cache ("* ]]
	# one archive under cas/, named by its digest, and one action entry
	cas=$(ls "$NROOT/team-cache/cas")
	[ "$(echo "$cas" | wc -l)" = 1 ]
	[ "$(sha256sum "$NROOT/team-cache/cas/$cas" | cut -d' ' -f1)" = "$cas" ]
	ac=$(ls "$NROOT/team-cache/ac")
	[[ "$ac" =~ ^[0-9a-f]{64}$ ]]
	run cat "$NROOT/team-cache/ac/$ac"
	assert_line --index 0 'cashet-ac 1'
	assert_line --index 1 "run $(last_hash) $cas $(stat -c %s "$NROOT/team-cache/cas/$cas")"
	other_machine
	run --separate-stderr cashet exec -v -i in -- sh -c "$(counted 'cat in')"
	assert_output data
	[[ "$stderr" == *"cashet: fetched "*" from cache+http://127.0.0.1:$NPORT/team-cache"* ]]
	[ ! -f "$RUNS_COUNT" ] # never ran here
	[ "$(verdict -i in -- sh -c "$(counted 'cat in')")" = hit ]
}

@test "observed inputs: the action entry lists several runs of one declared key; the one that fits is replayed" {
	cat > job.sh <<-'EOF'
		cat "$(cat which)"
	EOF
	echo a > a.txt; echo b > b.txt
	echo a.txt > which
	cashet exec -- sh job.sh > /dev/null
	echo b.txt > which
	cashet exec -- sh job.sh > /dev/null
	[ "$(grep -c '^run ' "$NROOT"/team-cache/ac/*)" = 2 ]
	other_machine
	cp "$BATS_TEST_TMPDIR/proj/"{job.sh,a.txt,b.txt} .
	echo a.txt > which
	run --separate-stderr cashet exec --report-fd 3 -- sh job.sh 3> report
	assert_output a
	[ "$(json_field 'j["verdict"]' < report)" = hit ]
	echo b.txt > which
	run cashet exec -- sh job.sh
	assert_output b
	[ "$(verdict -- sh job.sh)" = hit ]
}

@test "a corrupted object on the server is a miss with one warning, never a replay" {
	cashet exec -i in -- sh -c "$(counted 'cat in')" > /dev/null
	cas=$(ls "$NROOT/team-cache/cas")
	printf 'X' | dd of="$NROOT/team-cache/cas/$cas" bs=1 seek=100 conv=notrunc 2> /dev/null
	other_machine
	run --separate-stderr cashet exec -i in -- sh -c "$(counted 'cat in')"
	assert_output data
	[ "$stderr" = "cashet: warning: remote cache+http://127.0.0.1:$NPORT/team-cache: object cas/${cas:0:12} does not match its digest (it is $(sha256sum "$NROOT/team-cache/cas/$cas" | cut -c1-12)); working locally" ]
	[ "$(run_count)" = 1 ]
	[ "$(log_count)" = 1 ]
	# a damaged action entry is a warning too, and the next run sent replaces it
	ac=$(ls "$NROOT/team-cache/ac")
	printf 'run nonsense\n' > "$NROOT/team-cache/ac/$ac"
	cashet rm "$(last_hash)" > /dev/null
	run --separate-stderr cashet exec -i in -- sh -c "$(counted 'cat in')"
	[ "$stderr" = "cashet: warning: remote cache+http://127.0.0.1:$NPORT/team-cache: its action entry is not a cashet-ac 1 entry; working locally" ]
	[ "$(run_count)" = 2 ]
	run cashet exec -f -i in -- sh -c "$(counted 'cat in')"
	assert_output data
	[ "$(head -n 1 "$NROOT/team-cache/ac/$ac")" = 'cashet-ac 1' ]
	[ "$(grep -c '^run ' "$NROOT/team-cache/ac/$ac")" = 1 ]
}

@test "a server that is down costs one warning and at most 500 ms" {
	kill "$(cat "$BATS_TEST_TMPDIR/nginx/nginx.pid")"
	sleep 0.3
	run --separate-stderr cashet exec -i in -- cat in
	assert_output data
	[[ "$stderr" == "cashet: warning: remote cache+http://127.0.0.1:$NPORT/team-cache: "*"Couldn't connect to server; working locally" ]]
	[ "$(echo "$stderr" | wc -l)" = 1 ]
	[ "$(log_count)" = 1 ] # stored locally all the same
	# a server that accepts and never answers: one warning, after 300 ms
	port=$(free_port)
	blackhole "$port"
	export CASHET_REMOTE="cache+http://127.0.0.1:$port/x"
	run --separate-stderr cashet exec --trace off -- echo blackholed
	assert_output blackholed
	[ "$stderr" = "cashet: warning: remote cache+http://127.0.0.1:$port/x: timed out after 300 ms; working locally" ]
	# what the remote adds to the same miss (the fastest of three misses
	# each way, so another process's load does not count): under 500 ms
	local round best=999999 with without
	for round in 1 2 3; do
		cashet rm "$(last_hash)" > /dev/null
		with=$(date +%s%N)
		cashet exec --trace off -- echo blackholed > /dev/null 2>&1
		with=$((($(date +%s%N) - with) / 1000000))
		cashet rm "$(last_hash)" > /dev/null
		without=$(date +%s%N)
		CASHET_REMOTE= cashet exec --trace off -- echo blackholed > /dev/null
		without=$((($(date +%s%N) - without) / 1000000))
		[ $((with - without)) -lt "$best" ] && best=$((with - without))
	done
	echo "# blackholed remote cost: $best ms" >&3
	# the sanitizer build runs everything around the 300 ms timeout at a
	# fraction of the speed: its bound is wider
	[ "$best" -lt "$([ -n "${CASHET_SAN_LOG:-}" ] && echo 1000 || echo 500)" ]
}

@test "a read-only consumer fetches and writes nothing: no PUT in nginx's access log" {
	cashet exec -i in -- sh -c "$(counted 'cat in')" > /dev/null
	before=$(puts)
	[ "$before" -ge 2 ] # the archive and the action entry
	other_machine
	[ "$(verdict --remote-mode read -i in -- sh -c "$(counted 'cat in')")" = hit ]
	echo changed > in
	run cashet exec --remote-mode read -i in -- sh -c "$(counted 'cat in')"
	assert_output changed
	CASHET_REMOTE_MODE=read cashet exec -- echo also > /dev/null
	[ "$(puts)" = "$before" ]
	grep -q '"GET /team-cache/ac/' "$BATS_TEST_TMPDIR/nginx/access.log"
}

@test "basic auth from the URL, the environment or a netrc file; bearer tokens from CASHET_REMOTE_TOKEN" {
	command -v openssl > /dev/null || skip "openssl is not installed"
	kill "$(cat "$BATS_TEST_TMPDIR/nginx/nginx.pid")"
	sleep 0.3
	printf 'ci:%s\n' "$(openssl passwd -apr1 s3cret)" > "$BATS_TEST_TMPDIR/htpasswd"
	nginx_start "auth_basic cache; auth_basic_user_file $BATS_TEST_TMPDIR/htpasswd;"
	export CASHET_REMOTE="cache+http://127.0.0.1:$NPORT/c"
	run --separate-stderr cashet exec -- echo one
	[[ "$stderr" == *"HTTP 401; working locally" ]]
	cashet exec --remote "cache+http://ci:s3cret@127.0.0.1:$NPORT/c" -- echo two > /dev/null
	CASHET_REMOTE_USER=ci CASHET_REMOTE_PASSWORD=s3cret cashet exec -- echo three > /dev/null
	printf 'machine 127.0.0.1 login ci password s3cret\n' > "$BATS_TEST_TMPDIR/netrc"
	NETRC="$BATS_TEST_TMPDIR/netrc" cashet exec -- echo four > /dev/null
	[ "$(ls "$NROOT/c/ac" | wc -l)" = 3 ]
	# a bearer token reaches the server (nginx logs the header here)
	kill "$(cat "$BATS_TEST_TMPDIR/nginx/nginx.pid")"
	sleep 0.3
	nginx_start 'if ($http_authorization != "Bearer t0ken") { return 403; }'
	export CASHET_REMOTE="cache+http://127.0.0.1:$NPORT/c"
	run --separate-stderr cashet exec -- echo five
	[[ "$stderr" == *"HTTP 403; working locally" ]]
	CASHET_REMOTE_TOKEN=t0ken cashet exec -- echo six > /dev/null
	[ "$(ls "$NROOT/c/ac" | wc -l)" = 4 ] # the same root: three before, and this one
}

@test "with a trust policy, a run from the HTTP cache is replayed only if an allowed key signed it" {
	ssh-keygen -q -t ed25519 -N '' -C ci -f "$BATS_TEST_TMPDIR/ci"
	echo "ci@example.com $(cat "$BATS_TEST_TMPDIR/ci.pub")" > "$BATS_TEST_TMPDIR/allowed"
	cashet exec -i in -- sh -c "$(counted 'cat in')" > /dev/null
	other_machine
	cashet config trust.allowed-signers "$BATS_TEST_TMPDIR/allowed"
	run --separate-stderr cashet exec --remote-mode read -i in -- sh -c "$(counted 'cat in')"
	assert_output data
	[[ "$stderr" == "cashet: note: run "*" is unsigned on cache+http://127.0.0.1:$NPORT/team-cache; not replayed" ]]
	[ "$(run_count)" = 1 ]
	cd "$BATS_TEST_TMPDIR/proj"
	cashet config signing-key "$BATS_TEST_TMPDIR/ci"
	RUNS_COUNT="$BATS_TEST_TMPDIR/runs.count" cashet exec -f -i in -- sh -c "$(counted 'cat in')" > /dev/null
	cd "$BATS_TEST_TMPDIR/other"
	cashet rm "$(last_hash)" > /dev/null
	[ "$(verdict --remote-mode read -i in -- sh -c "$(counted 'cat in')")" = hit ]
	[ "$(run_count)" = 1 ]
}
