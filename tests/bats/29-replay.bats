#!/usr/bin/env bats
# Replay fidelity: a hit leaves the working tree as a fresh run of the
# command would. Declared outputs come back with the permission bits the run
# produced; an output directory holds exactly the run's entries (empty
# directories too, and nothing the run did not have); a replayed failure
# (--cache-failures) puts back what the failed run left.

load helper

setup() {
	common_setup
	cashet init > /dev/null
}

@test "permission bits are restored exactly: 600, 640, 755, 700 and 444, whatever the umask" {
	gen='mkdir -p out; for m in 600 640 755 700 444; do echo $m > out/f$m; chmod $m out/f$m; done'
	[ "$(verdict -o out -- sh -c "$gen")" = miss ]
	rm -rf out
	[ "$(umask 022 && verdict -o out -- sh -c "$gen")" = hit ]
	for m in 600 640 755 700 444; do
		[ "$(stat -c %a out/f$m)" = $m ]
		[ "$(cat out/f$m)" = $m ]
	done
	# a file whose mode alone changed is put back
	chmod 644 out/f600
	[ "$(verdict -o out -- sh -c "$gen")" = hit ]
	[ "$(stat -c %a out/f600)" = 600 ]
	# they are in the run's git tree (its meta), not only in the index
	cashet reindex > /dev/null
	rm -rf out
	[ "$(verdict -o out -- sh -c "$gen")" = hit ]
	[ "$(stat -c %a out/f640)" = 640 ]
	[ "$(stat -c %a out/f444)" = 444 ]
}
