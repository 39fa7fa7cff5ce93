#!/usr/bin/env bats
# The docs never drift from the code: every command that `cashet --help`
# lists and every long option in the command table (which the hidden
# `cashet __options` prints, and from which --help is made) must appear in
# the man pages, in the bash, zsh and fish completions and (for exec) in
# the README; and each of those files must parse.

load helper

# The documents are in the source tree, which the build under test
# (CASHET_TEST_BUILD) need not be.
ROOT="$(cd "$BATS_TEST_DIRNAME/../.." && pwd)"
MAN="$ROOT/man/cashet.1"
BASH_COMP="$ROOT/completions/cashet.bash"
ZSH_COMP="$ROOT/completions/_cashet"
FISH_COMP="$ROOT/completions/cashet.fish"
README="$ROOT/README.md"

# The commands `cashet --help` lists: the indented lines after "commands:".
commands() {
	cashet --help | awk '/^commands:/ { on = 1; next } on && /^  [a-z]/ { print $1 } on && /^$/ { exit }'
}

# The long options of CMD (its subcommands' too) in the command table:
# `cashet __options` prints a "CMD [SUB] --OPTION" line for each.
long_options() {
	cashet __options | awk -v cmd="$1" '$1 == cmd { print $NF }' | sort -u
}

# The man pages' source with roff escapes folded: "\-" is "-", fonts dropped.
man_text() {
	sed -e 's/\\-/-/g' -e 's/\\f[BIRP]//g' -e 's/\\(em/-/g' "$ROOT"/man/*.1
}

# The part of the man page that documents CMD: its ".SS CMD" subsection,
# and for exec and the commands that share its options also the EXEC
# OPTIONS section.
man_section() {
	man_text | awk -v cmd="$1" '
		/^\.S[HS] / { on = 0 }
		$0 == ".SS " cmd { on = 1 }
		/^\.SH "?EXEC OPTIONS"?$/ && (cmd == "exec" || cmd == "why") { on = 1 }
		on'
}

# The branch of a shell `case` that handles CMD in a completion file: from
# the line whose pattern names CMD ("exec | why)" or "(exec|why)") to the
# ";;" that closes it (the first one indented at most one level deeper, so
# the ";;" of nested cases inside the branch do not end it).
case_branch() {
	awk -v cmd="$2" '
		function width(s,   i, w) {
			w = 0
			for (i = 1; i <= length(s); i++) {
				c = substr(s, i, 1)
				if (c == "\t") w += 8 - w % 8
				else if (c == " ") w++
				else break
			}
			return w
		}
		!on && /^[ \t]*\(?[a-z| ]+\)[ \t]*$/ {
			line = $0
			gsub(/[()\t ]/, "", line)
			n = split(line, pats, "|")
			for (i = 1; i <= n; i++) if (pats[i] == cmd) on = 1
			if (on) { indent = width($0); next }
		}
		on && /^[ \t]*;;/ && width($0) <= indent + 8 { exit }
		on' "$1"
}

# The fish lines for CMD: those whose condition names it.
fish_lines() {
	grep -E -- "__cashet_using [a-z ]*\\b$1\\b" "$FISH_COMP"
}

@test "the docs and completions exist" {
	for f in "$MAN" "$BASH_COMP" "$ZSH_COMP" "$FISH_COMP" "$README"; do
		assert [ -s "$f" ]
	done
}

@test "cashet --help lists commands (the parser of this test still works)" {
	run commands
	assert_success
	assert_line exec
	assert_line log
	[ "${#lines[@]}" -ge 8 ]
}

@test "cashet __options prints the command table, and --help shows each option" {
	run cashet __options
	assert_success
	assert_line "exec --input"
	assert_line "log --status"
	assert_line "history --reverse"
	assert_line "pipeline run --jobs"
	assert_line "serve --allow-exec"
	refute_line --partial -- "--help"
	local missing="" line words
	while read -r line; do
		read -ra words <<<"$line"
		cashet "${words[@]:0:${#words[@]}-1}" --help | grep -qE -- "${words[-1]}( |$)" || missing+=" [$line]"
	done <<<"$output"
	[ -z "$missing" ] || fail "not in --help:$missing"
}

@test "every command has a man page section and is completed by bash, zsh and fish" {
	local missing=""
	for cmd in $(commands); do
		man_text | grep -qx "\\.SS $cmd" || missing+=" man:$cmd"
		grep -qE "(^|[ \"])$cmd( |\"|$)" "$BASH_COMP" || missing+=" bash:$cmd"
		[ -n "$(case_branch "$BASH_COMP" "$cmd")" ] || missing+=" bash-case:$cmd"
		grep -qE "'$cmd:" "$ZSH_COMP" || missing+=" zsh:$cmd"
		grep -qE -- "-a $cmd( |$)" "$FISH_COMP" || missing+=" fish:$cmd"
		grep -qE "cashet $cmd" "$README" || missing+=" README:$cmd"
	done
	[ -z "$missing" ] || fail "not documented:$missing"
}

@test "every long option of every command is in the man page and the completions" {
	local missing="" cmd opt
	for cmd in $(commands); do
		local man bash zsh fish
		man=$(man_section "$cmd")
		bash=$(case_branch "$BASH_COMP" "$cmd")
		zsh=$(case_branch "$ZSH_COMP" "$cmd")
		if [ "$cmd" = exec ] || [ "$cmd" = why ]; then
			# exec and why share _cashet_exec_args
			zsh+=$(awk '/^_cashet_exec_args\(\)/ { on = 1 } on && /^}/ { exit } on' "$ZSH_COMP")
		fi
		fish=$(fish_lines "$cmd")
		for opt in $(long_options "$cmd"); do
			grep -qF -- "$opt" <<<"$man" || missing+=" man:$cmd$opt"
			grep -qE -- "(^|[[:space:]\"'])$opt([[:space:]\")]|$)" <<<"$bash" || missing+=" bash:$cmd$opt"
			grep -qE -- "(^|[{,')*])$opt([=+,}[]|$)" <<<"$zsh" || missing+=" zsh:$cmd$opt"
			grep -qE -- "-l ${opt#--}( |$)" <<<"$fish" || missing+=" fish:$cmd$opt"
		done
	done
	[ -z "$missing" ] || fail "not documented:$missing"
}

@test "every exec option is in the README's option table" {
	local missing="" opt
	for opt in $(long_options exec); do
		grep -qE -- "^\|.*\`$opt[ \`]" "$README" || missing+=" $opt"
	done
	[ -z "$missing" ] || fail "README lacks:$missing"
}

@test "global options are documented and completed" {
	for opt in --store --version --help; do
		man_text | grep -qF -- "$opt"
		grep -qF -- "$opt" "$BASH_COMP"
		grep -qF -- "$opt" "$ZSH_COMP"
		grep -qE -- "-l ${opt#--}( |$)" "$FISH_COMP"
	done
}

@test "the man page renders without warnings" {
	command -v groff >/dev/null || skip "groff is not installed"
	run groff -man -Tutf8 -ww -z "$MAN"
	assert_success
	assert_output ""
	run sh -c "groff -man -Tutf8 '$MAN' 2>/dev/null | wc -l"
	[ "$output" -gt 100 ]
}

@test "bash completion parses and completes commands and exec options" {
	run bash -n "$BASH_COMP"
	assert_success
	run bash -c '
		source "$1"
		COMP_WORDS=(cashet ""); COMP_CWORD=1; _cashet; echo "${COMPREPLY[*]}"
		COMP_WORDS=(cashet exec --no-); COMP_CWORD=2; _cashet; echo "${COMPREPLY[*]}"
		COMP_WORDS=(cashet log --status ""); COMP_CWORD=3; _cashet; echo "${COMPREPLY[*]}"' _ "$BASH_COMP"
	assert_success
	assert_line --index 0 --partial "exec"
	assert_line --index 1 "--no-cache --no-stdin"
	assert_line --index 2 "ok failed"
}

@test "zsh completion parses" {
	command -v zsh >/dev/null || skip "zsh is not installed"
	run zsh -n "$ZSH_COMP"
	assert_success
	run head -n 1 "$ZSH_COMP"
	assert_output "#compdef cashet"
}

@test "fish completion parses and completes" {
	command -v fish >/dev/null || skip "fish is not installed"
	run fish -n "$FISH_COMP"
	assert_success
	run fish -c "source '$FISH_COMP'; complete -C 'cashet exec --no-'; complete -C 'cashet log --status '"
	assert_success
	assert_line --partial "--no-cache"
	assert_line --partial "--no-stdin"
	assert_line --partial "failed"
}

@test "the version in the man page is the binary's" {
	local v
	v=$(cashet --version | awk '{ print $2 }')
	grep -qE "^\\.TH CASHET 1 .*\"cashet $v\"" "$MAN"
}

@test "each loadable module exports its entry table and nothing else" {
	command -v nm > /dev/null || skip "nm (binutils) is not available"
	for m in cashet-git.so:cashet_gitmod cashet-serve.so:cashet_serve_v2 cashet-http.so:cashet_httpmod_v2; do
		run sh -c "nm -D --defined-only '$CASHET_BUILD/${m%%:*}' | awk '\$2 ~ /[TDRBVW]/ {print \$3}'"
		assert_success
		assert_output "${m#*:}"
	done
}
