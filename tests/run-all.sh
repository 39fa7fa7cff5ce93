#!/bin/sh
# Runs every suite; each prints TAP, which .ci/run counts. Exit status is
# non-zero if any suite failed. Under a sanitizer build (CASHET_SAN_LOG set,
# see the Makefile) any sanitizer report fails the run as well.
O=${1:-build}
fail=0

# san_reports STAGE: a "not ok" line for the reports the stage left in
# CASHET_SAN_LOG, each shown as a TAP comment. The bats helper fails the
# test that wrote one and moves it to seen/, so none is counted twice.
san_reports() {
	[ -n "$CASHET_SAN_LOG" ] || return 0
	n=0
	for f in "$CASHET_SAN_LOG"/report.*; do
		[ -f "$f" ] || continue
		n=$((n + 1))
		echo "# sanitizer report $f:"
		sed 's/^/# /' "$f"
		mkdir -p "$CASHET_SAN_LOG/seen" && mv "$f" "$CASHET_SAN_LOG/seen/"
	done
	[ "$n" -eq 0 ] && return 0
	echo "not ok - sanitizers: $n report(s) from $1"
	fail=1
}

if [ -n "$CASHET_SAN_LOG" ]; then
	# Reports go to files, not stderr: a test that expects a failing exit
	# code, or a child whose stderr is swallowed, would hide them. Leaks
	# are checked too, at every process's exit; tests/lsan.supp lists the
	# few in libraries, with why.
	rm -rf "$CASHET_SAN_LOG" && mkdir -p "$CASHET_SAN_LOG" || exit 1
	ASAN_OPTIONS="log_path=$CASHET_SAN_LOG/report:abort_on_error=1:detect_leaks=1:detect_stack_use_after_return=1:strict_string_checks=1:check_initialization_order=1:fast_unwind_on_malloc=0:print_stacktrace=1"
	UBSAN_OPTIONS="log_path=$CASHET_SAN_LOG/report:halt_on_error=1:abort_on_error=1:print_stacktrace=1"
	LSAN_OPTIONS="suppressions=$(pwd)/tests/lsan.supp:print_suppressions=0"
	export CASHET_SAN_LOG ASAN_OPTIONS UBSAN_OPTIONS LSAN_OPTIONS
fi
for t in "$O"/tests/test_*; do
	[ -x "$t" ] || continue
	echo "# unit: $t"
	rc=0
	CMOCKA_MESSAGE_OUTPUT=TAP "$t" || rc=$?
	# cmocka prints "not ok" for the tests that fail; a crash prints none.
	if [ "$rc" -gt 128 ]; then
		echo "not ok - $t killed by signal $((rc - 128))"
	fi
	[ "$rc" -eq 0 ] || fail=1
	san_reports "$t"
done
echo "# toml-test"
sh tests/toml-test.sh "$O/toml-decoder" || fail=1
san_reports toml-test
echo "# CLI (bats)"
bats --tap tests/bats || fail=1
san_reports "bats, outside a test"
exit $fail
