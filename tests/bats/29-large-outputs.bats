#!/usr/bin/env bats
# Large outputs: a file of a megabyte or more is streamed into a loose git
# object (stored, not deflated) in bounded memory, replayed from it as a
# stream, and left loose by gc. git itself must read every such object.

load helper

# sha1 of LEN MiB of FILE from MiB OFF
region() {
	dd if="$1" bs=1M skip="$2" count="$3" status=none | sha1sum | cut -d' ' -f1
}

# The object id of the output file PATH of the newest run.
output_oid() {
	sqlite3 .cashet/index.db "SELECT lower(hex(f.oid)) FROM files f JOIN runs r ON f.run = r.id
		WHERE r.hash = x'$(last_hash)' AND f.path = 'files/$1'"
}

@test "an output over 4 GiB (sparse) round-trips byte for byte with its mode, before and after gc" {
	head -c 1M /dev/urandom > a
	head -c 1M /dev/urandom > b
	cat > make.sh <<-'SH'
	truncate -s 4101M big.out
	dd if=a of=big.out bs=1M seek=0 conv=notrunc status=none
	dd if=b of=big.out bs=1M seek=4097 conv=notrunc status=none
	chmod 755 big.out
	SH
	cashet exec --trace off -i a -i b -o big.out -- sh make.sh
	want0=$(region big.out 0 1) want1=$(region big.out 4097 1) wanthole=$(region big.out 2048 1)
	oid=$(output_oid big.out)
	[ -f ".cashet/objects/${oid:0:2}/${oid:2}" ]
	for when in before-gc after-gc; do
		rm big.out
		run -0 cashet exec --trace off -i a -i b -o big.out -- sh make.sh
		[ "$(stat -c %s big.out)" = $((4101 << 20)) ]
		[ "$(stat -c %a big.out)" = 755 ]
		[ "$(region big.out 0 1)" = "$want0" ]
		[ "$(region big.out 4097 1)" = "$want1" ]
		[ "$(region big.out 2048 1)" = "$wanthole" ]
		cashet gc > /dev/null
		# still loose: gc never reads it into a pack
		[ -f ".cashet/objects/${oid:0:2}/${oid:2}" ]
	done
	# git reads its header (git fsck of the whole object would take longer
	# than the rest of the test: the smaller objects below are fsck'd)
	[ "$(git --git-dir .cashet cat-file -s "$oid")" = $((4101 << 20)) ]
}

@test "a large output is a loose blob git reads, stored uncompressed, with its mode in the tree" {
	head -c 3M /dev/urandom > data
	cashet exec --trace off -i data -o out.bin -- sh -c 'cp data out.bin && chmod +x out.bin'
	oid=$(output_oid out.bin)
	obj=".cashet/objects/${oid:0:2}/${oid:2}"
	[ "$(git --git-dir .cashet cat-file -t "$oid")" = blob ]
	git --git-dir .cashet cat-file blob "$oid" | cmp - data
	# stored deflate blocks: a few bytes per 64 KiB more than the data
	size=$(stat -c %s "$obj")
	[ "$size" -gt $((3 << 20)) ] && [ "$size" -lt $(((3 << 20) + 4096)) ]
	[ "$(stat -c %a "$obj")" = 444 ]
	run -0 git --git-dir .cashet ls-tree -r "$(last_hash)"
	assert_output --partial "100755 blob $oid	files/out.bin"
	git --git-dir .cashet fsck --strict --no-progress
	# the same content stored again by another run is the same object
	cp data copy.bin
	cashet exec --trace off -i copy.bin -o copy.bin -- true
	[ "$(output_oid copy.bin)" = "$oid" ]
	[ -z "$(find .cashet/objects -name 'tmp_obj_*')" ]
}

@test "storing and replaying a 64 MiB output stays in bounded memory" {
	[ -x /usr/bin/time ] || skip "no /usr/bin/time to measure the peak RSS"
	head -c 64M /dev/urandom > out.bin
	cp out.bin want
	/usr/bin/time -f %M -o rss cashet exec --trace off -o out.bin -- true
	echo "store: $(cat rss) KiB"
	[ "$(cat rss)" -lt 40960 ]
	rm out.bin
	/usr/bin/time -f %M -o rss cashet exec --trace off -o out.bin -- true
	echo "replay: $(cat rss) KiB"
	[ "$(cat rss)" -lt 40960 ]
	cmp want out.bin
}

@test "gc packs the small objects, keeps the large loose ones and removes temp files a writer left" {
	head -c 2M /dev/urandom > out.bin
	cashet exec --trace off -o out.bin -- true
	oid=$(output_oid out.bin)
	touch .cashet/objects/tmp_obj_left
	cashet gc > /dev/null
	[ "$(find .cashet/objects -type f ! -path '*/pack/*' ! -path '*/info/*')" = ".cashet/objects/${oid:0:2}/${oid:2}" ]
	rm out.bin
	run -0 cashet exec --trace off -o out.bin -- true
	git --git-dir .cashet fsck --no-progress
}
