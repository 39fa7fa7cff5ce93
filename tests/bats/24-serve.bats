#!/usr/bin/env bats
# cashet serve: the store over HTTP. Each test starts a server on a free
# port of 127.0.0.1 with the token "secret" and checks what curl gets back:
# the JSON of log, show and stats, exact bytes of streams and outputs, the
# error statuses (400, 401/403, 404, 405, 413), and archives going from one
# server's store into another's, found there again by fingerprint.

load helper

setup_file() {
	command -v curl >/dev/null || skip "curl is not installed"
	direct_python3
}

setup() {
	common_setup
	cashet init > /dev/null
	cashet exec -o out.txt -- sh -c 'printf "hello\n"; echo oops >&2; printf "a\0b\n" > out.txt' > /dev/null 2>&1
	cashet exec -n second -t env=ci -t nightly -- echo second > /dev/null
	H=$(cashet log --json | json_field 'j[1]["hash"]')
	start_server secret
}

# start_server TOKEN [OPTIONS...]: serves the store of the current
# directory; sets PORT and URL. TOKEN "" starts it without a token.
start_server() {
	serve_start . "$@"
}

teardown() {
	stop_started
	sanitizer_check
}

# status ARGS...: the HTTP status of a curl request (body to $BATS_TEST_TMPDIR/body).
status() {
	curl -s --path-as-is -o "$BATS_TEST_TMPDIR/body" -w '%{http_code}' "$@" || true
}

body() {
	cat "$BATS_TEST_TMPDIR/body"
}

@test "serve --help names every option" {
	run cashet serve --help
	assert_success
	assert_output --partial "--listen ADDR:PORT"
	assert_output --partial "--token-file FILE"
	assert_output --partial "--max-body SIZE"
	run cashet serve --listen nowhere
	assert_failure 2
	run cashet serve --max-body lots
	assert_failure 2
}

@test "only cashet-serve.so loads libmicrohttpd: a cache hit does not pay for it" {
	command -v ldd >/dev/null || skip "ldd is not available"
	run ldd "$CASHET_BUILD/cashet"
	assert_success
	refute_output --partial microhttpd
	run ldd "$CASHET_BUILD/cashet-serve.so"
	assert_output --partial libmicrohttpd
}

@test "GET /log: the fields of cashet log --json, with its filters" {
	[ "$(status "$URL/log")" = 200 ]
	[ "$(body)" = "$(cashet log --json | python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin), separators=(",", ":")))')" ]
	run json_field 'sorted(j[0].keys())' < "$BATS_TEST_TMPDIR/body"
	assert_output "['cmd', 'created', 'duration_ms', 'exit', 'hash', 'name', 'status', 'tags']"
	run json_field '[j[0]["name"], j[0]["tags"], j[1]["hash"]]' < "$BATS_TEST_TMPDIR/body"
	assert_output "['second', {'env': 'ci', 'nightly': True}, '$H']"
	curl -s "$URL/log?limit=1" | json_field 'len(j)' | grep -qx 1
	curl -s "$URL/log?name=second" | json_field '[r["cmd"] for r in j]' | grep -qx "\['echo second'\]"
	curl -s "$URL/log?tag=env=ci&tag=nightly" | json_field 'len(j)' | grep -qx 1
	curl -s "$URL/log?status=failed" | json_field 'j' | grep -qx '\[\]'
	[ "$(status "$URL/log?status=maybe")" = 400 ]
	[ "$(body | json_field 'list(j)')" = "['error']" ]
	[ "$(status "$URL/log?limit=-1")" = 400 ]
	[ "$(status "$URL/log?colour=red")" = 400 ]
}

@test "GET /run/HASH: the JSON of cashet show --json, prefixes allowed" {
	[ "$(status "$URL/run/$H")" = 200 ]
	[ "$(body)" = "$(cashet show --json "$H")" ]
	[ "$(status "$URL/run/${H:0:8}")" = 200 ]
	run json_field '[j["hash"], j["status"], j["argv"][0], [f["path"] for f in j["files"]]]' < "$BATS_TEST_TMPDIR/body"
	assert_output "['$H', 'ok', 'sh', ['stdout', 'stderr', 'files/out.txt', 'streams']]"
	run curl -s -o /dev/null -w '%{content_type}' "$URL/run/$H"
	assert_output "application/json"
}

@test "GET /stats: the JSON of cashet stats --json" {
	[ "$(status "$URL/stats")" = 200 ]
	run json_field '[j["runs"], j["completed"], j["failed"], j["store"]]' < "$BATS_TEST_TMPDIR/body"
	assert_output "[2, 2, 0, '$PWD/.cashet']"
	[ "$(body | json_field 'sorted(j)')" = "$(cashet stats --json | json_field 'sorted(j)')" ]
}

@test "GET stdout, stderr and an output file: the exact bytes" {
	curl -s -o got.out "$URL/run/$H/stdout"
	cashet get "$H" --stdout > want.out
	cmp got.out want.out
	[ "$(curl -s "$URL/run/$H/stderr")" = oops ]
	curl -s -o got.file "$URL/run/$H/file/out.txt"
	cmp got.file out.txt
	curl -s -o got.file2 "$URL/run/$H/file/files/out.txt"
	cmp got.file2 out.txt
	run curl -s -o /dev/null -w '%{http_code} %{content_type}' "$URL/run/$H/file/out.txt"
	assert_output "200 application/octet-stream"
}

@test "unknown runs, paths and routes are 404; a malformed hash is 400" {
	[ "$(status "$URL/run/0000000000")" = 404 ]
	[ "$(body | json_field 'list(j)')" = "['error']" ]
	[ "$(status "$URL/run/$H/file/missing.txt")" = 404 ]
	[ "$(status "$URL/run/$H/file/stdout")" = 404 ]
	[ "$(status "$URL/run/$H/nothing")" = 404 ]
	[ "$(status "$URL/nothing")" = 404 ]
	[ "$(status "$URL/run/not-hex")" = 400 ]
	[ "$(status "$URL/run/ABCDEF12")" = 400 ]
	[ "$(status "$URL/run/abc")" = 400 ]
	[ "$(status "$URL/fp/1234")" = 400 ]
	[ "$(status "$URL/archive/xyz")" = 400 ]
}

@test "a path that leaves the run is refused, plain or percent-encoded" {
	local s
	for p in "../../etc/passwd" "%2e%2e/%2e%2e/etc/passwd" "..%2f..%2fetc%2fpasswd" "files/../../../etc/passwd" \
		"/etc/passwd" "out.txt%00.jpg"; do
		s=$(status "$URL/run/$H/file/$p")
		[ "$s" = 400 ] || [ "$s" = 404 ] || fail "$p: $s"
		! grep -q root: "$BATS_TEST_TMPDIR/body" || fail "$p: served /etc/passwd"
	done
}

@test "POST /gc needs the token: 401 without or with a wrong one, 200 with it" {
	[ "$(status -X POST "$URL/gc")" = 401 ]
	[ "$(status -X POST -H 'Authorization: Bearer wrong' "$URL/gc")" = 401 ]
	[ "$(status -X POST -H 'Authorization: secret' "$URL/gc")" = 401 ]
	[ "$(status -X POST -H 'Authorization: Bearer secret' -d '{"older_than": "7d"}' "$URL/gc")" = 200 ]
	run json_field '[j["evicted"], j["kept"], j["dry_run"]]' < "$BATS_TEST_TMPDIR/body"
	assert_output "[0, 2, False]"
	[ "$(status -X POST -H 'Authorization: Bearer secret' "$URL/gc?older_than=1ms&dry_run=1")" = 200 ]
	run json_field '[j["evicted"], j["dry_run"]]' < "$BATS_TEST_TMPDIR/body"
	assert_output "[2, True]"
	[ "$(log_count)" = 2 ]
	[ "$(status -X POST -H 'Authorization: Bearer secret' -d '{"older_than": "soon"}' "$URL/gc")" = 400 ]
	[ "$(status -X POST -H 'Authorization: Bearer secret' -d 'not json' "$URL/gc")" = 400 ]
}

@test "without a token every write is refused (403) and reads stay open" {
	start_server ""
	[ "$(status -X POST -H 'Authorization: Bearer secret' "$URL/gc")" = 403 ]
	[ "$(status -X PUT -H 'Authorization: Bearer secret' --data-binary x "$URL/archive")" = 403 ]
	[ "$(status "$URL/run/$H")" = 200 ]
}

@test "--token-file: the token is read from a file" {
	printf 'from-file\n' > token
	start_server "" --token-file token
	[ "$(status -X POST -H 'Authorization: Bearer from-file' "$URL/gc?dry_run=1")" = 200 ]
	[ "$(status -X POST -H 'Authorization: Bearer secret' "$URL/gc")" = 401 ]
}

@test "archives: GET from one server, PUT into another, then found by fingerprint" {
	local fp first=$URL
	fp=$(cashet show --json "$H" | json_field 'j["fingerprint"]')
	run curl -s -o run.archive -w '%{http_code} %{content_type}' "$first/archive/${H:0:10}"
	assert_output "200 application/octet-stream"
	head -n 1 run.archive | grep -qx 'cashet-archive 1'
	[ "$(status "$first/fp/$fp")" = 200 ]
	[ "$(body | json_field 'j["run"]')" = "$H" ]

	mkdir ../other && cd ../other && cashet init > /dev/null
	start_server other
	[ "$(status "$URL/fp/$fp")" = 404 ]
	[ "$(status -X PUT --data-binary @../proj/run.archive "$URL/archive")" = 401 ]
	[ "$(status -X PUT -H 'Authorization: Bearer other' --data-binary @../proj/run.archive "$URL/archive")" = 200 ]
	[ "$(body)" = '{"imported":1,"present":0}' ]
	[ "$(status -X PUT -H 'Authorization: Bearer other' --data-binary @../proj/run.archive "$URL/archive")" = 200 ]
	[ "$(body)" = '{"imported":0,"present":1}' ]
	[ "$(status "$URL/fp/$fp")" = 200 ]
	[ "$(body | json_field 'j["run"]')" = "$H" ]
	curl -s -o got.file "$URL/run/$H/file/out.txt"
	cmp got.file ../proj/out.txt
	# a damaged archive adds nothing
	head -c 300 ../proj/run.archive > broken.archive
	[ "$(status -X PUT -H 'Authorization: Bearer other' --data-binary @broken.archive "$URL/archive")" = 400 ]
	[ "$(body | json_field 'list(j)')" = "['error']" ]
	[ "$(log_count)" = 1 ]
}

@test "an upload over --max-body is refused with 413, chunked too" {
	start_server secret --max-body 4K
	head -c 100000 /dev/zero > big
	[ "$(status -X PUT -H 'Authorization: Bearer secret' --data-binary @big "$URL/archive")" = 413 ]
	# no Content-Length: counted as it arrives
	[ "$(status -X PUT -H 'Authorization: Bearer secret' -H 'Transfer-Encoding: chunked' --data-binary @big \
		"$URL/archive")" = 413 ]
	[ "$(status -X POST -H 'Authorization: Bearer secret' -H 'Transfer-Encoding: chunked' --data-binary @big \
		"$URL/gc")" = 413 ]
	[ "$(body | json_field 'list(j)')" = "['error']" ]
	[ -z "$(ls .cashet/tmp)" ]
	[ "$(status "$URL/stats")" = 200 ]
}

@test "a wrong method is 405 with Allow" {
	[ "$(status -X DELETE "$URL/run/$H")" = 405 ]
	[ "$(status -X POST "$URL/stats")" = 405 ]
	[ "$(status -X GET "$URL/gc")" = 405 ]
	[ "$(status -X GET "$URL/archive")" = 405 ]
	[ "$(status -X PUT "$URL/log")" = 405 ]
	curl -s -i -X DELETE "$URL/log" | grep -qi '^Allow: GET, HEAD'
}

@test "malformed requests never bring the server down" {
	local q
	for q in 'GARBAGE\r\n\r\n' 'GET\r\n\r\n' 'GET /stats HTTP/9.9\r\n\r\n' 'GET /%zz%%% HTTP/1.1\r\nHost: x\r\n\r\n' \
		'POST /gc HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n' \
		'PUT /archive HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer secret\r\nContent-Length: 99999999999999999999\r\n\r\n' \
		'PUT /archive HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer secret\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n'; do
		printf "$q" | timeout 5 python3 -c '
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=3)
s.sendall(sys.stdin.buffer.read())
try:
    s.recv(4096)
except OSError:
    pass' "$PORT" || true
	done
	curl -s -o /dev/null -H "$(head -c 100000 /dev/zero | tr '\0' a): x" "$URL/stats" || true
	curl -s -o /dev/null "$URL/run/$(head -c 5000 /dev/zero | tr '\0' a)" || true
	[ "$(status "$URL/stats")" = 200 ]
	kill -0 "$SERVER_PID"
}

@test "the server stops on TERM" {
	kill -TERM "$SERVER_PID"
	pid_gone "$SERVER_PID"
	! curl -s -o /dev/null "$URL/stats"
}

# slow_clients N PATH: N connections that ask for PATH, wait for the
# answer to begin, and never read it (a small receive buffer each), held
# for 30 s in the background (SLOW_PID); returns once all are held.
slow_clients() {
	python3 - "$PORT" "$1" "$2" > "$BATS_TEST_TMPDIR/slow.out" <<'PY' &
import socket, sys, time
port, n, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
held = []
for i in range(n):
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    s.recv(1)
    held.append(s)
print("held", flush=True)
time.sleep(30)
PY
	SLOW_PID=$!
	track_pid $SLOW_PID
	wait_for_file "$BATS_TEST_TMPDIR/slow.out" 300
}

@test "clients that request a large stream and never read it: the server's memory stays bounded (streams, at most 16 at once), a reader still gets every byte" {
	# 24 MiB of stdout, stored loose (over the inline and the 8 MiB check sizes)
	cashet exec -- head -c 25165824 /dev/urandom > big.out
	big=$(cashet log --json | json_field 'j[0]["hash"]')
	before=$(awk '/VmRSS/ { print $2 }' "/proc/$SERVER_PID/status")
	slow_clients 12 "/run/$big/stdout"
	sleep 1
	after=$(awk '/VmRSS/ { print $2 }' "/proc/$SERVER_PID/status")
	# 12 copies in memory would be 288 MiB; allow 64 MiB of growth
	[ $((after - before)) -lt 65536 ] || { echo "RSS grew by $((after - before)) KiB"; false; }
	curl -s -o fetched.out "$URL/run/$big/stdout"
	cmp big.out fetched.out
}

@test "downloads are bounded: with 16 archives held by clients that never read, the next gets 503; once they go, it is served" {
	cashet exec -- head -c 8388608 /dev/urandom > big.out
	big=$(cashet log --json | json_field 'j[0]["hash"]')
	slow_clients 16 "/archive/$big"
	[ "$(status "$URL/archive/$big")" = 503 ]
	kill $SLOW_PID
	for _ in $(seq 50); do
		[ "$(status "$URL/archive/$big")" = 200 ] && break
		sleep 0.1
	done
	[ "$(status "$URL/archive/$big")" = 200 ]
}
