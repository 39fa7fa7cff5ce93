#!/bin/sh
# Runs the toml-test suite (https://github.com/toml-lang/toml-test) against a
# decoder and prints TAP. Usage: sh tests/toml-test.sh DECODER [TOMLTEST_DIR]
# The cases are vendored in tests/toml-test/ with their license (MIT), so a
# clone of this repository alone runs them.
# The comparison itself lives in toml-test.py (one python3 for all cases).
here=$(dirname "$0")
if [ $# -lt 1 ]; then
	echo "usage: $0 DECODER [TOMLTEST_DIR]" >&2
	exit 2
fi
decoder=$1
dir=${2:-"$here/toml-test"}
if [ ! -f "$dir/files-toml-1.0.0" ]; then
	# Never report success for tests that did not run.
	echo "1..0 # SKIP toml-test not found"
	exit 1
fi
exec python3 "$here/toml-test.py" "$decoder" "$dir"
