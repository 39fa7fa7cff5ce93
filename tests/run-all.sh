#!/bin/sh
# Runs every suite; each prints TAP, which .ci/run counts. Exit status is
# non-zero if any suite failed.
O=${1:-build}
fail=0
for t in "$O"/tests/test_*; do
	[ -x "$t" ] || continue
	echo "# unit: $t"
	CMOCKA_MESSAGE_OUTPUT=TAP "$t" || fail=1
done
echo "# toml-test"
sh tests/toml-test.sh "$O/toml-decoder" || fail=1
echo "# CLI (bats)"
bats --tap tests/bats || fail=1
exit $fail
