# bash completion for cashet, the memoizing command wrapper.
# Installed as share/bash-completion/completions/cashet; or source it.
# Keep in step with src/cli/*.c: tests/bats/90-docs.bats checks that every
# command and every option in the command table (`cashet __options`) is here.

# Hashes of the newest runs, for show/get/rm. The store is the one the
# command line names with --store, if any.
_cashet_runs()
{
	"$1" ${2:+--store "$2"} log -n 50 2>/dev/null | awk 'NR>1{print $1}'
}

_cashet_files()
{
	compopt -o filenames 2>/dev/null
	COMPREPLY=($(compgen -f -- "$1"))
}

_cashet_dirs()
{
	compopt -o filenames 2>/dev/null
	COMPREPLY=($(compgen -d -- "$1"))
}

_cashet()
{
	local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD - 1]}
	local prog=${COMP_WORDS[0]} store="" cmd="" cmd_at=0 i w
	local commands="init exec why log show diff history get rm stats reindex export import gc clear invalidate config fsck remote push pull pipeline exp metrics params serve help"

	# "--opt=value" arrives as three words: "--opt" "=" "value".
	if [[ $prev == = ]] && ((COMP_CWORD > 1)); then
		prev=${COMP_WORDS[COMP_CWORD - 2]}
	fi

	# Global options come before the command.
	for ((i = 1; i < COMP_CWORD; i++)); do
		w=${COMP_WORDS[i]}
		case $w in
		--store)
			if [[ ${COMP_WORDS[i + 1]} == = ]]; then ((i++)); fi
			store=${COMP_WORDS[i + 1]}
			((i++))
			;;
		-*) ;;
		*) cmd=$w; cmd_at=$i; break ;;
		esac
	done

	if [[ -z $cmd ]]; then
		case $prev in
		--store) _cashet_dirs "$cur"; return ;;
		esac
		if [[ $cur == -* ]]; then
			COMPREPLY=($(compgen -W "--store --help --version" -- "$cur"))
		else
			COMPREPLY=($(compgen -W "$commands" -- "$cur"))
		fi
		return
	fi

	case $cmd in
	exec | why)
		# Find where the wrapped command starts: after "--" or at the
		# first word that is neither an option nor an option's value.
		local start=0
		for ((i = cmd_at + 1; i < COMP_CWORD; i++)); do
			w=${COMP_WORDS[i]}
			case $w in
			--) start=$((i + 1)); break ;;
			-i | -o | -e | -p | -t | -n | --input | --output | --env | --param | --env-file | \
				--dep | --tag | --name | --ttl | --stale | --timeout | --kill-after | --retries | --store | --remote | \
				--remote-mode | --metrics)
				if [[ ${COMP_WORDS[i + 1]} == = ]]; then ((i++)); fi
				((i++))
				;;
			-*) ;;
			*) start=$i; break ;;
			esac
		done
		if ((start > 0)); then
			if ((start == COMP_CWORD)); then
				COMPREPLY=($(compgen -c -- "$cur"))
			else
				_cashet_files "$cur"
			fi
			return
		fi
		case $prev in
		-i | --input | -o | --output | -p | --param | --env-file | --dep | --metrics) _cashet_files "$cur"; return ;;
		--store) _cashet_dirs "$cur"; return ;;
		-e | --env) COMPREPLY=($(compgen -v -- "$cur")); return ;;
		-t | --tag | -n | --name | --ttl | --stale | --timeout | --kill-after | --retries) return ;;
		--remote) COMPREPLY=($(compgen -W "redis:// http:// cache+http://" -- "$cur")); compopt -o nospace 2>/dev/null; return ;;
		--trace) COMPREPLY=($(compgen -W "on off" -- "$cur")); return ;;
		--remote-mode) COMPREPLY=($(compgen -W "read read-write" -- "$cur")); return ;;
		--env-mode) COMPREPLY=($(compgen -W "strict all" -- "$cur")); return ;;
		--ignore) _cashet_files "$cur"; return ;;
		esac
		if [[ $cur == -* ]]; then
			COMPREPLY=($(compgen -W "-i --input -o --output -e --env -p --param --env-file
				--dep --raw-sources -t --tag -n --name --metrics --trace --ignore --auto-outputs --strict --env-mode
				--ttl --stale --warm --timeout --kill-after --retries --cache-failures -f --force
				--no-cache --no-stdin --store --remote --remote-mode -v --verbose --explain --json --report-fd -h --help --" -- "$cur"))
		else
			COMPREPLY=($(compgen -c -- "$cur"))
		fi
		;;
	init)
		[[ $cur == -* ]] && COMPREPLY=($(compgen -W "-h --help" -- "$cur")) || _cashet_dirs "$cur"
		;;
	log)
		case $prev in
		--status) COMPREPLY=($(compgen -W "ok failed" -- "$cur")); return ;;
		-n | --limit | --name | --cmd | -t | --tag) return ;;
		esac
		COMPREPLY=($(compgen -W "-n --limit --name --cmd --status -t --tag --json --signatures -h --help" -- "$cur"))
		;;
	show)
		if [[ $cur == -* ]]; then
			COMPREPLY=($(compgen -W "--json -h --help" -- "$cur"))
		else
			COMPREPLY=($(compgen -W "$(_cashet_runs "$prog" "$store")" -- "$cur"))
		fi
		;;
	diff)
		if [[ $cur == -* ]]; then
			COMPREPLY=($(compgen -W "--stat --json -h --help" -- "$cur"))
		else
			COMPREPLY=($(compgen -W "$(_cashet_runs "$prog" "$store")" -- "$cur"))
		fi
		;;
	history)
		# "history HASH", or "history [exec options] -- COMMAND"
		for ((i = cmd_at + 1; i < COMP_CWORD; i++)); do
			if [[ ${COMP_WORDS[i]} == -- ]]; then
				((i + 1 == COMP_CWORD)) && COMPREPLY=($(compgen -c -- "$cur")) || _cashet_files "$cur"
				return
			fi
		done
		case $prev in
		-i | --input | -o | --output | -p | --param | --env-file | --dep) _cashet_files "$cur"; return ;;
		-e | --env) COMPREPLY=($(compgen -v -- "$cur")); return ;;
		esac
		if [[ $cur == -* ]]; then
			COMPREPLY=($(compgen -W "--reverse --json -i --input -o --output -e --env -p --param
				--env-file --dep --raw-sources --cache-failures --no-stdin -h --help --" -- "$cur"))
		else
			COMPREPLY=($(compgen -W "$(_cashet_runs "$prog" "$store")" -- "$cur"))
		fi
		;;
	get)
		case $prev in
		--file | -o | --output) _cashet_files "$cur"; return ;;
		esac
		if [[ $cur == -* ]]; then
			COMPREPLY=($(compgen -W "--stdout --stderr --file -o --output -h --help" -- "$cur"))
		else
			COMPREPLY=($(compgen -W "$(_cashet_runs "$prog" "$store")" -- "$cur"))
		fi
		;;
	rm)
		if [[ $cur == -* ]]; then
			COMPREPLY=($(compgen -W "-h --help" -- "$cur"))
		else
			COMPREPLY=($(compgen -W "$(_cashet_runs "$prog" "$store")" -- "$cur"))
		fi
		;;
	stats)
		COMPREPLY=($(compgen -W "--json -h --help" -- "$cur"))
		;;
	reindex)
		COMPREPLY=($(compgen -W "-h --help" -- "$cur"))
		;;
	export)
		# "export FILE [options] [HASH...]": the first word is the archive
		case $prev in
		--name | -t | --tag) return ;;
		esac
		if [[ $cur == -* ]]; then
			COMPREPLY=($(compgen -W "--name -t --tag -h --help" -- "$cur"))
			return
		fi
		local words=0
		for ((i = cmd_at + 1; i < COMP_CWORD; i++)); do
			case ${COMP_WORDS[i]} in
			--name | -t | --tag) ((i++)) ;;
			-*) ;;
			*) ((words++)) ;;
			esac
		done
		if ((words == 0)); then
			_cashet_files "$cur"
		else
			COMPREPLY=($(compgen -W "$(_cashet_runs "$prog" "$store")" -- "$cur"))
		fi
		;;
	import)
		if [[ $cur == -* ]]; then
			COMPREPLY=($(compgen -W "--allow-absolute -h --help" -- "$cur"))
		else
			_cashet_files "$cur"
		fi
		;;
	gc)
		COMPREPLY=($(compgen -W "--older-than --max-size -n --dry-run -h --help" -- "$cur"))
		;;
	clear)
		COMPREPLY=($(compgen -W "-f --force -h --help" -- "$cur"))
		;;
	invalidate)
		COMPREPLY=($(compgen -W "--tag --name -h --help" -- "$cur"))
		;;
	config)
		COMPREPLY=($(compgen -W "max-size auto-pack remote remote-mode trace auto-outputs ignore stdin-limit signing-key
			trust.allowed-signers --unset -h --help" -- "$cur"))
		;;
	fsck)
		COMPREPLY=($(compgen -W "--prune -h --help" -- "$cur"))
		;;
	pipeline)
		# "pipeline run|graph|status|report|job [options] [FILE] [TARGET...]"
		if ((COMP_CWORD == cmd_at + 1)); then
			COMPREPLY=($(compgen -W "run graph status report job -h --help" -- "$cur"))
			return
		fi
		case $prev in
		--format) COMPREPLY=($(compgen -W "dot mermaid" -- "$cur")); return ;;
		--executor) COMPREPLY=($(compgen -W "local slurm" -- "$cur")); return ;;
		-j | --jobs | --metric | --index | --report-fd) return ;;
		-o | --output) _cashet_files "$cur"; return ;;
		--origin | --spool) compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -d -- "$cur")); return ;;
		esac
		if [[ $cur == -* ]]; then
			case ${COMP_WORDS[cmd_at + 1]} in
			graph) COMPREPLY=($(compgen -W "--format --store -h --help" -- "$cur")) ;;
			job) COMPREPLY=($(compgen -W "--origin --spool --index -f --force -h --help" -- "$cur")) ;;
			report) COMPREPLY=($(compgen -W "-o --output --metric --store -h --help" -- "$cur")) ;;
			*) COMPREPLY=($(compgen -W "-j --jobs -k --keep-going -n --dry-run -f --force
				-v --verbose --report-fd --executor --format --store -h --help" -- "$cur")) ;;
			esac
		else
			compopt -o filenames 2>/dev/null
			COMPREPLY=($(compgen -f -X '!*.toml' -- "$cur") $(compgen -d -- "$cur"))
		fi
		;;
	exp)
		case $prev in
		--line | -t | --tag | --sort | --where) return ;;
		esac
		if [[ $cur == -* ]]; then
			COMPREPLY=($(compgen -W "--line -t --tag --sort --where --json --csv --store -h --help" -- "$cur"))
		elif ((COMP_CWORD == cmd_at + 1)); then
			COMPREPLY=($(compgen -W "show" -- "$cur"))
		else
			compopt -o filenames 2>/dev/null
			COMPREPLY=($(compgen -f -X '!*.toml' -- "$cur") $(compgen -d -- "$cur"))
		fi
		;;
	metrics | params)
		if [[ $cur == -* ]]; then
			COMPREPLY=($(compgen -W "-a --all --json --store -h --help" -- "$cur"))
		elif ((COMP_CWORD == cmd_at + 1)); then
			COMPREPLY=($(compgen -W "diff" -- "$cur"))
		fi
		;;
	remote)
		COMPREPLY=($(compgen -W "add remove list -h --help" -- "$cur"))
		;;
	push)
		COMPREPLY=($(compgen -W "--tag --name --since -h --help" -- "$cur"))
		;;
	pull)
		COMPREPLY=($(compgen -W "-h --help" -- "$cur"))
		;;
	serve)
		case $prev in
		--token-file | --pipeline) compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -f -- "$cur")) ;;
		--listen | --token | --max-body) ;;
		*) COMPREPLY=($(compgen -W "--listen --token --token-file --max-body --pipeline --allow-exec -h --help" -- "$cur")) ;;
		esac
		;;
	esac
}

complete -F _cashet cashet
