# Shared set-up for the CLI tests: each test runs in its own empty
# directory with the cashet binary from this checkout first on PATH.
bats_load_library bats-support
bats_load_library bats-assert

CASHET_BUILD="$(cd "$BATS_TEST_DIRNAME/../.." && pwd)"
export PATH="$CASHET_BUILD:$PATH"

common_setup() {
	unset CASHET_DIR CASHET_LOG
	export CASHET_RETRY_BASE_MS=10
	cd "$BATS_TEST_TMPDIR" || return 1
	mkdir -p proj && cd proj || return 1
}

setup() {
	common_setup
}

# A command that counts its own runs in ./runs.count, so a test can tell a
# hit (count unchanged) from a miss.
counted() {
	echo "echo x >> runs.count; $*"
}

run_count() {
	if [ -f runs.count ]; then wc -l < runs.count | tr -d ' '; else echo 0; fi
}
