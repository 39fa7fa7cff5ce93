#!/usr/bin/env bats
# POST /submit: `cashet serve --pipeline dag.toml` runs one step of the
# pipeline by name, as `cashet pipeline run` would (ran, then hit with the
# same run, which `cashet log` and the pipeline itself see), and never an
# arbitrary command unless started with --allow-exec and a token. Each test
# starts a server on a free port with the token "secret", like 24-serve.

load helper

setup_file() {
	command -v curl >/dev/null || skip "curl is not installed"
	direct_python3
}

setup() {
	common_setup
	cashet init > /dev/null
	printf 'b\na\n' > raw.txt
	# each command counts its real runs in runs.NAME
	cat > dag.toml <<'EOF'
[steps.prepare]
cmd = "echo x >> runs.prepare; sort raw.txt > clean.txt"
inputs = ["raw.txt"]
outputs = ["clean.txt"]

[steps.train]
cmd = ["sh", "-c", "echo x >> runs.train; echo lr=${matrix.lr} | cat - clean.txt > model-${matrix.lr}.txt"]
inputs = ["clean.txt"]
outputs = ["model-${matrix.lr}.txt"]
matrix = { lr = [0.1, 0.01] }

[steps.broken]
cmd = "echo no >&2; exit 3"
EOF
}

# start_server TOKEN [OPTIONS...]: as in 24-serve.bats.
start_server() {
	serve_start . "$@"
}

teardown() {
	stop_started
	sanitizer_check
}

# submit BODY [CURL OPTIONS...]: POSTs BODY to /submit with the token;
# prints the HTTP status, the answer goes to $BATS_TEST_TMPDIR/body.
submit() {
	local body=$1
	shift
	curl -s -o "$BATS_TEST_TMPDIR/body" -w '%{http_code}' -X POST -H 'Authorization: Bearer secret' "$@" \
		-d "$body" "$URL/submit" || true
}

body() {
	cat "$BATS_TEST_TMPDIR/body"
}

count() {
	if [ -f "runs.$1" ]; then wc -l < "runs.$1" | tr -d ' '; else echo 0; fi
}

@test "serve --help names --pipeline and --allow-exec" {
	run cashet serve --help
	assert_success
	assert_output --partial "--pipeline FILE"
	assert_output --partial "--allow-exec"
	assert_output --partial "POST /submit"
}

@test "a step submitted twice: ran, then hit with the same run, in cashet log" {
	start_server secret --pipeline dag.toml
	[ "$(submit '{"step": "prepare"}')" = 200 ]
	run json_field '[j["step"], j["status"], j["exit"]]' < "$BATS_TEST_TMPDIR/body"
	assert_output "['prepare', 'ran', 0]"
	local h
	h=$(body | json_field 'j["run"]')
	[ "${#h}" = 40 ]
	[ "$(count prepare)" = 1 ]
	[ "$(cat clean.txt)" = "$(printf 'a\nb')" ]

	rm clean.txt
	[ "$(submit '{"step": "prepare"}')" = 200 ]
	run json_field '[j["status"], j["exit"], j["run"]]' < "$BATS_TEST_TMPDIR/body"
	assert_output "['hit', 0, '$h']"
	[ "$(count prepare)" = 1 ]
	[ -f clean.txt ] # the hit restored the output

	run cashet log --json
	assert_output --partial "\"hash\":\"$h\""
	[ "$(cashet show --json "$h" | json_field 'j["name"]')" = pipeline/prepare ]
	# the same fingerprint as `cashet pipeline run` gives the step
	run cashet pipeline run dag.toml prepare
	assert_success
	assert_output --partial "step prepare: hit"
	[ "$(count prepare)" = 1 ]
}

@test "a sweep expansion by its name or by base name and matrix" {
	start_server secret --pipeline dag.toml
	[ "$(submit '{"step": "prepare"}')" = 200 ]
	[ "$(submit '{"step": "train@lr=0.1"}')" = 200 ]
	run json_field '[j["step"], j["status"]]' < "$BATS_TEST_TMPDIR/body"
	assert_output "['train@lr=0.1', 'ran']"
	[ "$(head -n 1 model-0.1.txt)" = lr=0.1 ]
	[ "$(submit '{"step": "train", "matrix": {"lr": 0.1}}')" = 200 ]
	run json_field '[j["step"], j["status"]]' < "$BATS_TEST_TMPDIR/body"
	assert_output "['train@lr=0.1', 'hit']"
	[ "$(submit '{"step": "train", "matrix": {"lr": 0.01}}')" = 200 ]
	run json_field '[j["step"], j["status"]]' < "$BATS_TEST_TMPDIR/body"
	assert_output "['train@lr=0.01', 'ran']"
	[ "$(count train)" = 2 ]
	# the base name alone is ambiguous; a value nobody swept is unknown
	[ "$(submit '{"step": "train"}')" = 404 ]
	[ "$(submit '{"step": "train", "matrix": {"lr": 0.5}}')" = 404 ]
	[ "$(submit '{"step": "train", "matrix": {"lr": [1]}}')" = 400 ]
}

@test "a failing step: status failed, its exit code and its stored run" {
	start_server secret --pipeline dag.toml
	[ "$(submit '{"step": "broken"}')" = 200 ]
	run json_field '[j["step"], j["status"], j["exit"], len(j["run"])]' < "$BATS_TEST_TMPDIR/body"
	assert_output "['broken', 'failed', 3, 40]"
	[ "$(curl -s "$URL/run/$(body | json_field 'j["run"]')/stderr")" = no ]
}

@test "unknown step 404, no token 401, a wrong one 401, malformed JSON 400" {
	start_server secret --pipeline dag.toml
	[ "$(submit '{"step": "nothing"}')" = 404 ]
	[ "$(body | json_field 'j["error"]')" = "unknown step 'nothing'" ]
	[ "$(curl -s -o /dev/null -w '%{http_code}' -X POST -d '{"step": "prepare"}' "$URL/submit")" = 401 ]
	[ "$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Authorization: Bearer wrong' \
		-d '{"step": "prepare"}' "$URL/submit")" = 401 ]
	[ "$(count prepare)" = 0 ]
	[ "$(submit '{"step": ')" = 400 ]
	[ "$(body | json_field 'list(j)')" = "['error']" ]
	[ "$(submit '["prepare"]')" = 400 ]
	[ "$(submit '{"step": "prepare"} trailing')" = 400 ]
	[ "$(submit '{"step": "prepare", "colour": "red"}')" = 400 ]
	[ "$(submit '{}')" = 400 ]
	[ "$(curl -s -o /dev/null -w '%{http_code}' "$URL/submit")" = 405 ]
	[ "$(count prepare)" = 0 ]
}

@test "a step whose inputs are missing is 409, naming them" {
	start_server secret --pipeline dag.toml
	[ "$(submit '{"step": "train@lr=0.1"}')" = 409 ]
	run json_field '[j["missing"], "clean.txt" in j["error"]]' < "$BATS_TEST_TMPDIR/body"
	assert_output "[['clean.txt'], True]"
	[ "$(count train)" = 0 ]
}

@test "without --pipeline a step is 404 with a hint; a server without a token refuses (403)" {
	start_server secret
	[ "$(submit '{"step": "prepare"}')" = 404 ]
	[ "$(body | json_field 'j["error"]')" = "no pipeline: start the server with --pipeline FILE" ]
	start_server "" --pipeline dag.toml
	[ "$(submit '{"step": "prepare"}')" = 403 ]
	[ "$(count prepare)" = 0 ]
}

@test "an argv is refused (403) without --allow-exec" {
	start_server secret --pipeline dag.toml
	[ "$(submit '{"argv": ["sh", "-c", "echo x >> runs.argv"]}')" = 403 ]
	[ "$(body | json_field 'list(j)')" = "['error']" ]
	[ "$(count argv)" = 0 ]
}

@test "--allow-exec with the token: an argv runs as cashet exec would, never through a shell" {
	start_server secret --allow-exec
	[ "$(submit '{"argv": ["sh", "-c", "echo x >> runs.argv; cat raw.txt > copy.txt; exit 2"], "inputs": ["raw.txt"], "outputs": ["copy.txt"]}')" = 200 ]
	run json_field '[j["status"], j["exit"], len(j["run"])]' < "$BATS_TEST_TMPDIR/body"
	assert_output "['failed', 2, 40]"
	[ "$(submit '{"argv": ["sh", "-c", "echo x >> runs.argv; cat raw.txt"], "inputs": ["raw.txt"]}')" = 200 ]
	run json_field '[j["status"], j["exit"]]' < "$BATS_TEST_TMPDIR/body"
	assert_output "['ran', 0]"
	local h
	h=$(body | json_field 'j["run"]')
	[ "$(submit '{"argv": ["sh", "-c", "echo x >> runs.argv; cat raw.txt"], "inputs": ["raw.txt"]}')" = 200 ]
	run json_field '[j["status"], j["run"]]' < "$BATS_TEST_TMPDIR/body"
	assert_output "['hit', '$h']"
	[ "$(count argv)" = 2 ]
	# the same command from the command line is the same run
	run cashet exec --no-stdin -i raw.txt -- sh -c 'echo x >> runs.argv; cat raw.txt'
	assert_output "$(printf 'b\na')"
	[ "$(count argv)" = 2 ]
	# one word is one argument: no shell splits or expands it
	[ "$(submit '{"argv": ["echo x; touch pwned"]}')" = 200 ]
	[ "$(body | json_field 'j["status"]')" = failed ]
	[ ! -e pwned ]
	[ "$(submit '{"argv": ["cat", "nowhere.txt"], "inputs": ["nowhere.txt"]}')" = 409 ]
	[ "$(submit '{"argv": []}')" = 400 ]
	[ "$(submit '{"argv": "echo hi"}')" = 400 ]
}

@test "--allow-exec without a token and a bad pipeline file are refused at start (exit 2)" {
	run cashet serve --allow-exec
	assert_failure 2
	assert_output --partial "--allow-exec needs a token"
	printf '[steps.a]\ncmd = "true"\nimputs = ["x"]\n' > bad.toml
	run cashet serve --token secret --pipeline bad.toml
	assert_failure 2
	assert_output --partial "bad.toml:3:"
	run cashet serve --token secret --pipeline missing.toml
	assert_failure 2
}

@test "at most two submits run at once, and reads are served meanwhile" {
	start_server secret --allow-exec
	local i
	for i in 1 2; do
		(submit "{\"argv\": [\"sh\", \"-c\", \"echo x > started.$i; sleep 1\"]}" > "status.$i") &
	done
	wait_for_file started.1
	wait_for_file started.2
	[ "$(submit '{"argv": ["sleep", "1.3"]}')" = 503 ]
	[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "$URL/stats")" = 200 ]
	wait
	[ "$(cat status.1)" = 200 ]
	[ "$(cat status.2)" = 200 ]
	[ "$(submit '{"argv": ["sleep", "0.1"]}')" = 200 ]
}

@test "a step is bounded by its own timeout; TERM stops the server and its running step" {
	cat >> dag.toml <<'EOF'

[steps.slow]
cmd = "echo $$ > slow.pid; exec sleep 30"
timeout = "300ms"
EOF
	start_server secret --pipeline dag.toml
	[ "$(submit '{"step": "slow"}')" = 200 ]
	run json_field '[j["status"], j["exit"]]' < "$BATS_TEST_TMPDIR/body"
	assert_output "['failed', 124]"
	sed -i 's/timeout = "300ms"/timeout = "1h"/' dag.toml
	start_server secret --pipeline dag.toml
	rm -f slow.pid
	(submit '{"step": "slow"}' > status.slow) &
	wait_for_file slow.pid
	kill -TERM "$SERVER_PID"
	pid_gone "$SERVER_PID"
	wait
	[ "$(cat status.slow)" = 200 ]
	[ "$(body | json_field 'j["status"]')" = failed ]
	pid_gone "$(cat slow.pid)"
}
