#!/bin/sh
# cashet demo: runs a slow word-count job twice (a miss, then a hit that
# replays it in milliseconds and restores its output file), edits its
# input (a miss again), then shows the store with `cashet log` and
# `cashet show`. Uses the cashet built in this checkout and works in a
# temporary directory that it removes. Run from anywhere: sh demo.sh
# (`make demo` does, after building).

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
CASHET=$root/cashet

if [ ! -x "$CASHET" ]; then
	echo "demo: $CASHET not found: run 'make' in $root first" >&2
	exit 1
fi
if ! command -v python3 >/dev/null 2>&1; then
	echo "demo: python3 is needed (apt-get install python3)" >&2
	exit 1
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/cashet-demo.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
unset CASHET_DIR CASHET_LOG
cd "$tmp" || exit 1

# A ~200 KB corpus, the same on every run: sentences drawn from a small
# vocabulary by a fixed-seed generator (Park-Miller), skewed so that some
# words are much more frequent than others.
gen_corpus() {
	awk -v bytes=200000 '
	function rnd() { seed = (seed * 16807) % 2147483647; return seed / 2147483647 }
	BEGIN {
		nw = split("the of and to a in that it is was he for on are as with his they at be " \
			"this from have or by one had not but what all were when we there can an your " \
			"which their said if do will each about how up out them then she many some so " \
			"these would other into has more her two like him see time could no make than " \
			"first been who now people my made over did down only way find use may water " \
			"long little very after words called just where most know get through back much " \
			"go good new write our me man too any day same right look think also around " \
			"another came come work three word must because does part even place well such " \
			"here take why things help put years different away again off went old number " \
			"great tell men say small every found still between name should home big give " \
			"air line set own under read last never us left end along while might next " \
			"sound below saw something thought both few those always looked show large often " \
			"together asked house world going want school important until form food keep " \
			"children feet land side without boy once animals life enough took sometimes " \
			"four head above kind began almost live page got earth need far hand high year " \
			"mother light country father let night picture being study second eyes soon " \
			"story since white days ever paper hard near sentence better best across during " \
			"today others sure means knew try told young miles sun ways thing whole hear " \
			"example heard several change answer room sea against top turned learn point " \
			"city play toward five himself usually cache replay fingerprint", w, " ")
		seed = 20260101
		size = 0
		while (size < bytes) {
			n = 6 + int(rnd() * 10)
			line = ""
			for (i = 0; i < n; i++) {
				r = rnd()
				line = line (i ? " " : "") w[1 + int(r * r * nw)]
			}
			line = toupper(substr(line, 1, 1)) substr(line, 2) "."
			print line
			size += length(line) + 1
		}
	}'
}

now_ms() {
	echo $(($(date +%s%N) / 1000000))
}

# step TITLE: runs the job through cashet -v and prints what happened and
# how long it took. Sets $outcome (hit or miss) and $elapsed (ms).
step() {
	echo
	echo "== $1"
	echo "\$ cashet exec -v -i corpus.txt -o top.txt -- python3 wordfreq.py corpus.txt"
	start=$(now_ms)
	"$CASHET" exec -v -i corpus.txt -o top.txt -- python3 wordfreq.py corpus.txt 2>stderr.txt
	status=$?
	elapsed=$(($(now_ms) - start))
	sed 's/^/  (stderr) /' stderr.txt
	if grep -q '^cashet: hit ' stderr.txt; then
		outcome=hit
	elif grep -q '^cashet: miss ' stderr.txt; then
		outcome=miss
	else
		outcome=unknown
	fi
	rm -f stderr.txt
	if [ "$status" -ne 0 ]; then
		echo "demo: cashet exec exited with status $status" >&2
		exit 1
	fi
	echo "-> $outcome in $elapsed ms"
}

expect() {
	if [ "$outcome" != "$1" ]; then
		echo "demo: expected a $1, got: $outcome" >&2
		exit 1
	fi
}

cp "$here/wordfreq.py" . || exit 1
gen_corpus >corpus.txt || exit 1
echo "cashet demo in $tmp"
echo "corpus.txt: $(wc -c <corpus.txt | tr -d ' ') bytes, $(wc -l <corpus.txt | tr -d ' ') lines"
"$CASHET" init || exit 1

step "1. first run: nothing stored yet, so it runs (about 1.5 s of work)"
expect miss
t_miss=$elapsed

rm -f top.txt
echo
echo "(removed top.txt: a hit restores declared outputs)"
step "2. same command, same inputs: replayed"
expect hit
t_hit=$elapsed
if [ ! -f top.txt ]; then
	echo "demo: top.txt was not restored" >&2
	exit 1
fi
echo "top.txt (restored):"
head -n 5 top.txt | sed 's/^/  /'

echo "The replay took $t_hit ms instead of $t_miss ms."

echo
echo "(appending a line to corpus.txt)"
echo "The cache was cold, then warm, then the corpus changed." >>corpus.txt
step "3. the input changed: it runs again"
expect miss

step "4. and the new result is replayed"
expect hit

echo
echo "== cashet log"
"$CASHET" log || exit 1

hash=$("$CASHET" log -n 1 | awk 'NR == 2 { print $1 }')
echo
echo "== cashet show $hash"
"$CASHET" show "$hash" || exit 1

echo
echo "demo: ok (miss $t_miss ms, hit $t_hit ms)"
