#!/usr/bin/env bats
# cashet pipeline report: one HTML file with the DAG, the last run's
# timeline, the experiments table and a plot, opened in headless Chromium
# (DOM checks through --dump-dom, a screenshot that is not blank).

load helper

# prep -> train (a sweep of 3, each writing metrics) -> summary
report_pipeline() {
	cat > train.sh <<'SH'
printf '{"acc": %s, "loss": %s}\n' "$(awk "BEGIN { print $1 * 2 }")" "$(awk "BEGIN { print 1 - $1 }")" > "m-$1.json"
SH
	cat > dag.toml <<'TOML'
[steps.prep]
cmd = "echo data > data.txt"
outputs = ["data.txt"]

[steps.train]
cmd = "sh train.sh ${matrix.lr}"
inputs = ["data.txt"]
metrics = ["m-${matrix.lr}.json"]
matrix = { lr = [0.1, 0.3, 0.2] }

[steps.summary]
cmd = "cat m-*.json > all.txt"
inputs = ["m-*.json"]
outputs = ["all.txt"]
TOML
}

# Chromium, or a skip that says why.
need_chromium() {
	command -v chromium >/dev/null || skip "chromium is not installed (make deps installs it)"
	echo '<p id="ok">ok</p>' > probe.html
	timeout 60 chromium --headless --no-sandbox --disable-gpu --dump-dom "file://$PWD/probe.html" 2>/dev/null |
		grep -q 'id="ok"' || skip "chromium cannot start here: $(timeout 60 chromium --headless --no-sandbox --dump-dom about:blank 2>&1 | tail -n 1)"
}

dom() {
	timeout 60 chromium --headless --no-sandbox --disable-gpu --dump-dom "file://$PWD/$1" 2>/dev/null
}

count() {
	grep -o -- "$1" | wc -l | tr -d ' '
}

@test "pipeline report writes one self-contained page: DAG, timeline, table, plot" {
	report_pipeline
	cashet pipeline run 2>/dev/null
	run cashet pipeline report -o report.html --metric acc
	assert_success
	assert_output "cashet: wrote report.html"
	# nothing to fetch: no external script, style sheet or image
	run grep -Ec '<(script|link|img|iframe)[^>]* (src|href)=' report.html
	assert_output 0
	# only the SVG namespace (dot's output) may name a URL
	[ "$(grep -o 'https\?://[^"]*' report.html | grep -vc 'www.w3.org')" = 0 ]
	# as the page was written: 5 steps, 5 rows, 3 points
	[ "$(count 'class="node"' < report.html)" = 5 ]
	[ "$(count '<tr class="run">' < report.html)" = 5 ]
	[ "$(count 'class="point"' < report.html)" = 3 ]
	[ "$(count 'class="bar ran"' < report.html)" = 5 ]
	# to standard output without -o
	run cashet pipeline report
	assert_success
	assert_line --index 0 "<!DOCTYPE html>"
}

@test "the report without dot: the built-in layout draws each step with its state" {
	report_pipeline
	# prep ran (up to date, green), the rest never did (grey)
	cashet pipeline run dag.toml prep 2>/dev/null
	CASHET_DOT= run cashet pipeline report -o r.html
	assert_success
	[ "$(count 'class="node"' < r.html)" = 5 ]
	[ "$(count 'class="edge"' < r.html)" = 6 ]
	run grep -o '<g id="step-0" class="node"><title>prep</title>[^/]*fill="#[0-9a-f]*"' r.html
	assert_output '<g id="step-0" class="node"><title>prep</title><rect x="10" y="10" rx="6" width="180" height="40" fill="#c8e6c9"'
	[ "$(count '>never run</text>' < r.html)" = 4 ]
	# CASHET_DOT naming nothing that runs: the same fallback
	CASHET_DOT=/nonexistent/dot run cashet pipeline report -o r2.html
	assert_success
	[ "$(count 'class="node"' < r2.html)" = 5 ]
}

@test "Chromium renders the report: DOM has the DAG, the rows, the points; the table sorts; the screenshot is not blank" {
	need_chromium
	report_pipeline
	cashet pipeline run 2>/dev/null
	# the second run replays every step: the timeline says hit
	cashet pipeline run 2>/dev/null
	cashet pipeline report -o report.html --metric acc 2>/dev/null
	run dom report.html
	assert_success
	local page=$output
	[ "$(count 'class="node"' <<<"$page")" = 5 ]
	[ "$(count '<tr class="run">' <<<"$page")" = 5 ]
	[ "$(count 'class="point"' <<<"$page")" = 3 ]
	[ "$(count 'class="bar hit"' <<<"$page")" = 5 ]
	# the page's script sorts the table: #sort=-acc puts lr=0.3 (acc 0.6) first
	run dom "report.html#sort=-acc"
	assert_success
	run sh -c 'grep -o "<tr class=\"run\"><td>[0-9a-f]*</td><td>[a-z]*</td><td>[-0-9.]*</td><td>[-0-9.]*</td>" | head -n 3 | sed "s/<td>[0-9a-f]*<\/td>//; s/<[^>]*>/ /g; s/  */ /g"' <<<"$output"
	assert_output " train 0.3 0.6 
 train 0.2 0.4 
 train 0.1 0.2 "
	run timeout 60 chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1000,900 \
		--screenshot="$PWD/shot.png" "file://$PWD/report.html"
	[ -s shot.png ]
	# decode the PNG (zlib and the five filters): many colours, not one
	run python3 - shot.png <<'PY'
import struct, sys, zlib
data = open(sys.argv[1], "rb").read()
assert data[:8] == b"\x89PNG\r\n\x1a\n"
pos, idat, ihdr = 8, b"", None
while pos < len(data):
    n, kind = struct.unpack(">I4s", data[pos:pos + 8])
    body = data[pos + 8:pos + 8 + n]
    if kind == b"IHDR":
        ihdr = struct.unpack(">IIBBBBB", body)
    elif kind == b"IDAT":
        idat += body
    pos += 12 + n
w, h, depth, ctype = ihdr[:4]
assert depth == 8 and ctype in (2, 6)
bpp = 3 if ctype == 2 else 4
raw, stride, prev, colours = zlib.decompress(idat), w * bpp, bytearray(w * bpp), set()
for y in range(h):
    f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
    for i in range(stride):
        a = line[i - bpp] if i >= bpp else 0
        b, c = prev[i], prev[i - bpp] if i >= bpp else 0
        if f == 1: line[i] = (line[i] + a) & 255
        elif f == 2: line[i] = (line[i] + b) & 255
        elif f == 3: line[i] = (line[i] + (a + b) // 2) & 255
        elif f == 4:
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
    colours.update(bytes(line[i:i + 3]) for i in range(0, stride, bpp))
    prev = line
print(w, h, "many" if len(colours) > 16 else len(colours))
PY
	assert_success
	assert_output "1000 900 many"
}

@test "a report before any run, and of a metric no run has, says so" {
	report_pipeline
	CASHET_DOT= run cashet pipeline report -o r.html
	assert_success
	[ ! -d .cashet ]
	run grep -c '>never run</text>' r.html
	assert_output 5
	run grep -o '<p class="none">[^<]*</p>' r.html
	assert_output '<p class="none">The pipeline has not run yet.</p>
<p class="none">No runs.</p>
<p class="none">No runs.</p>'
	cashet pipeline run 2>/dev/null
	run cashet pipeline report --metric val.f1 -o r.html
	assert_success
	run grep -o '<p class="none">[^<]*</p>' r.html
	assert_output '<p class="none">No run has the metric val.f1.</p>'
	run cashet pipeline report nope.toml
	assert_failure 2
	assert_output --partial "nope.toml"
}
