# fish completion for cashet, the memoizing command wrapper.
# Installed as share/fish/vendor_completions.d/cashet.fish.
# Keep in step with src/cli/*.c: tests/bats/90-docs.bats checks that every
# command and every option in the command table (`cashet __options`) is here.

# The subcommand: the first word after cashet's global options.
function __cashet_subcommand
    set -l tokens (commandline -opc)
    set -e tokens[1]
    set -l skip 0
    for t in $tokens
        if test $skip = 1
            set skip 0
            continue
        end
        switch $t
            case --store
                set skip 1
            case '-*'
            case '*'
                echo $t
                return 0
        end
    end
    return 1
end

function __cashet_using
    set -l sub (__cashet_subcommand)
    or return 1
    contains -- $sub $argv
end

# The store named with --store on the command line, if any.
function __cashet_store_args
    set -l tokens (commandline -opc)
    set -l i 1
    for t in $tokens
        set i (math $i + 1)
        switch $t
            case --store
                if set -q tokens[$i]
                    echo --store
                    echo $tokens[$i]
                end
                return
            case '--store=*'
                echo --store
                string replace -- --store= '' $t
                return
        end
    end
end

# For exec and why: the words of the wrapped command typed so far (after
# "--" or from the first word that is not an option or an option's value).
# Fails while the cursor is still among cashet's own options.
function __cashet_wrapped
    __cashet_using exec why; or return 1
    set -l tokens (commandline -opc)
    set -l cur (commandline -ct)
    # drop "cashet", the global options and the subcommand
    while set -q tokens[1]
        set -l t $tokens[1]
        set -e tokens[1]
        switch $t
            case exec why
                break
            case --store
                set -e tokens[1]
        end
    end
    while set -q tokens[1]
        set -l t $tokens[1]
        switch $t
            case --
                set -e tokens[1]
                printf '%s\n' $tokens
                return 0
            case -i -o -e -p -t -n --input --output --env --param --env-file --dep --tag --name --ttl --stale --timeout --kill-after --retries --store --remote --remote-mode --metrics
                # the cursor is on this option's value
                set -q tokens[2]; or return 1
                set -e tokens[1..2]
            case '-*'
                set -e tokens[1]
            case '*'
                printf '%s\n' $tokens
                return 0
        end
    end
    # no command word yet: the current word is the command unless it is an option
    string match -q -- '-*' $cur; and return 1
    return 0
end

function __cashet_complete_wrapped
    set -l words (__cashet_wrapped)
    if not set -q words[1]
        complete -C (commandline -ct)
    else
        complete -C "$words "(commandline -ct)
    end
end

function __cashet_runs
    set -l cmd (commandline -opc)
    $cmd[1] (__cashet_store_args) log -n 50 2>/dev/null | awk 'NR>1{print $1}'
end

complete -c cashet -f

# global options and commands
complete -c cashet -n "not __cashet_subcommand" -l store -x -a '(__fish_complete_directories)' -d 'Use the store at DIR'
complete -c cashet -n "not __cashet_subcommand" -s h -l help -d 'List the commands'
complete -c cashet -n "not __cashet_subcommand" -l version -d 'Print the version'
complete -c cashet -n "not __cashet_subcommand" -a init -d 'Create a store in the current directory'
complete -c cashet -n "not __cashet_subcommand" -a exec -d 'Run a command, or replay its cached result'
complete -c cashet -n "not __cashet_subcommand" -a why -d 'Say whether a command would hit, and what changed if not'
complete -c cashet -n "not __cashet_subcommand" -a log -d 'List runs, newest first'
complete -c cashet -n "not __cashet_subcommand" -a show -d 'Show everything about a run'
complete -c cashet -n "not __cashet_subcommand" -a diff -d 'Show what differs between two runs'
complete -c cashet -n "not __cashet_subcommand" -a history -d 'List every run of a command line, oldest first'
complete -c cashet -n "not __cashet_subcommand" -a get -d "Print a run's stdout, stderr or an output file"
complete -c cashet -n "not __cashet_subcommand" -a rm -d 'Remove runs'
complete -c cashet -n "not __cashet_subcommand" -a stats -d 'Show store statistics'
complete -c cashet -n "not __cashet_subcommand" -a reindex -d 'Rebuild the index from the git store'
complete -c cashet -n "not __cashet_subcommand" -a export -d 'Write runs to an archive for another store'
complete -c cashet -n "not __cashet_subcommand" -a import -d 'Add the runs of an archive made by export'
complete -c cashet -n "not __cashet_subcommand" -a gc -d 'Remove expired, old or least recently used runs and repack'
complete -c cashet -n "not __cashet_subcommand" -a clear -d 'Remove every run'
complete -c cashet -n "not __cashet_subcommand" -a invalidate -d 'Remove the runs with given tags'
complete -c cashet -n "not __cashet_subcommand" -a config -d 'Get or set store settings (max-size)'
complete -c cashet -n "not __cashet_subcommand" -a fsck -d 'Verify the store against git and repair the index'
complete -c cashet -n "not __cashet_subcommand" -a pipeline -d 'Run the steps of a dag.toml, replaying what is unchanged'
complete -c cashet -n "not __cashet_subcommand" -a exp -d 'Compare runs as experiments: their params and metrics in a table'
complete -c cashet -n "not __cashet_subcommand" -a metrics -d 'Compare the metrics of two runs'
complete -c cashet -n "not __cashet_subcommand" -a params -d 'Compare the params of two runs'
complete -c cashet -n "not __cashet_subcommand" -a remote -d 'Add, remove or list git remotes used as shared caches'
complete -c cashet -n "not __cashet_subcommand" -a push -d 'Send runs to a git remote'
complete -c cashet -n "not __cashet_subcommand" -a pull -d "Fetch a git remote's runs and index them"
complete -c cashet -n "not __cashet_subcommand" -a serve -d 'Serve the store over HTTP (JSON API and a remote cache)'
complete -c cashet -n "not __cashet_subcommand" -a help -d 'List the commands'

# exec and why (the same options), then the wrapped command
complete -c cashet -n '__cashet_using exec why; and not __cashet_wrapped' -s i -l input -r -F -d 'Hash a file, directory or glob as an input'
complete -c cashet -n '__cashet_using exec why; and not __cashet_wrapped' -s o -l output -r -F -d 'Store and restore an output file or directory'
complete -c cashet -n '__cashet_using exec why; and not __cashet_wrapped' -s e -l env -x -a '(set -n -x)' -d 'Hash an environment variable or pattern'
complete -c cashet -n '__cashet_using exec why; and not __cashet_wrapped' -s p -l param -r -F -d 'Hash one value of a TOML or JSON parameters file (FILE:KEY)'
complete -c cashet -n '__cashet_using exec why; and not __cashet_wrapped' -l env-file -r -F -d 'Set and hash NAME=VALUE lines, hash NAME lines'
complete -c cashet -n '__cashet_using exec why; and not __cashet_wrapped' -l dep -r -F -d 'Hash another source file or glob, following its imports'
complete -c cashet -n '__cashet_using exec why; and not __cashet_wrapped' -l raw-sources -d 'Hash scripts byte for byte (no canonicalization)'
complete -c cashet -n '__cashet_using exec why; and not __cashet_wrapped' -l trace -x -a 'on off' -d 'Observe the files the command reads'
complete -c cashet -n '__cashet_using exec why; and not __cashet_wrapped' -l ignore -r -F -d 'Never take matching paths (or $NAME variables) as observed inputs'
complete -c cashet -n '__cashet_using exec why; and not __cashet_wrapped' -l auto-outputs -d 'Store and restore the files the command writes in the project'
complete -c cashet -n '__cashet_using exec why; and not __cashet_wrapped' -l strict -d 'Fail if the command reads a project file it does not declare'
complete -c cashet -n '__cashet_using exec why; and not __cashet_wrapped' -l env-mode -x -a 'strict all' -d 'Which environment variables the command gets'
complete -c cashet -n '__cashet_using exec why; and not __cashet_wrapped' -s t -l tag -x -d 'Tag the run: KEY=VALUE or KEY (not part of the key)'
complete -c cashet -n '__cashet_using exec why; and not __cashet_wrapped' -s n -l name -x -d 'Name the run'
complete -c cashet -n '__cashet_using exec why; and not __cashet_wrapped' -l metrics -r -F -d "An output read as the run's metrics (JSON, TOML, CSV)"
complete -c cashet -n '__cashet_using exec why; and not __cashet_wrapped' -l ttl -x -d 'Do not replay the run after DURATION (e.g. 12h)'
complete -c cashet -n '__cashet_using exec why; and not __cashet_wrapped' -l stale -x -d 'Replay a run older than DURATION at once, refresh it in the background'
complete -c cashet -n '__cashet_using exec why; and not __cashet_wrapped' -l warm -d 'Refresh the run in the background and print nothing'
complete -c cashet -n '__cashet_using exec why; and not __cashet_wrapped' -l timeout -x -d "Kill the command's process group after DURATION (exit 124)"
complete -c cashet -n '__cashet_using exec why; and not __cashet_wrapped' -l kill-after -x -d 'Grace period between TERM and KILL after a timeout'
complete -c cashet -n '__cashet_using exec why; and not __cashet_wrapped' -l retries -x -d 'Retry a failing command up to N times, backing off'
complete -c cashet -n '__cashet_using exec why; and not __cashet_wrapped' -l cache-failures -d 'Replay failed runs too'
complete -c cashet -n '__cashet_using exec why; and not __cashet_wrapped' -s f -l force -d 'Run even if cached; the new run is replayed from then on'
complete -c cashet -n '__cashet_using exec why; and not __cashet_wrapped' -l no-cache -d 'Always run, store nothing'
complete -c cashet -n '__cashet_using exec why; and not __cashet_wrapped' -l no-stdin -d 'Do not read or hash stdin; the command gets /dev/null'
complete -c cashet -n '__cashet_using exec why; and not __cashet_wrapped' -l store -x -a '(__fish_complete_directories)' -d 'Use the store at DIR'
complete -c cashet -n '__cashet_using exec why; and not __cashet_wrapped' -l remote -x -d 'Share runs through Redis (redis://host:port/db)'
complete -c cashet -n '__cashet_using exec why; and not __cashet_wrapped' -l remote-mode -x -a 'read read-write' -d 'read: never write to the remote'
complete -c cashet -n '__cashet_using exec why; and not __cashet_wrapped' -s v -l verbose -d 'Say hit or miss (and why) and the run hash on stderr'
complete -c cashet -n '__cashet_using exec why; and not __cashet_wrapped' -l explain -d 'Do not run: say whether it would hit, and if not, what changed'
complete -c cashet -n '__cashet_using exec why; and not __cashet_wrapped' -l json -d 'With --explain: print JSON'
complete -c cashet -n '__cashet_using exec why; and not __cashet_wrapped' -l report-fd -r -d 'Write the verdict as JSON to fd N'
complete -c cashet -n '__cashet_using exec why; and not __cashet_wrapped' -s h -l help -d 'Show usage'
complete -c cashet -n "__cashet_wrapped" -x -a '(__cashet_complete_wrapped)'

# init
complete -c cashet -n "__cashet_using init" -x -a '(__fish_complete_directories)' -d 'Store directory'
complete -c cashet -n "__cashet_using init" -s h -l help -d 'Show usage'

# log
complete -c cashet -n "__cashet_using log" -s n -l limit -x -d 'Show at most N runs'
complete -c cashet -n "__cashet_using log" -l name -x -d 'Only runs with this name'
complete -c cashet -n "__cashet_using log" -l cmd -x -d 'Only runs whose command line contains TEXT'
complete -c cashet -n "__cashet_using log" -l status -x -a 'ok failed' -d 'Only completed or only failed runs'
complete -c cashet -n "__cashet_using log" -s t -l tag -x -d 'Only runs with this tag: KEY=VALUE or KEY'
complete -c cashet -n "__cashet_using log" -l json -d 'Print JSON'
complete -c cashet -n "__cashet_using log" -l signatures -d 'Also say who signed each run'
complete -c cashet -n "__cashet_using log" -s h -l help -d 'Show usage'

# show
complete -c cashet -n "__cashet_using show" -x -a '(__cashet_runs)' -d 'Run'
complete -c cashet -n "__cashet_using show" -l json -d 'Print JSON'
complete -c cashet -n "__cashet_using show" -s h -l help -d 'Show usage'

# diff
complete -c cashet -n "__cashet_using diff" -x -a '(__cashet_runs)' -d 'Run'
complete -c cashet -n "__cashet_using diff" -l stat -d 'One line per difference instead of the patches'
complete -c cashet -n "__cashet_using diff" -l json -d 'Print JSON'
complete -c cashet -n "__cashet_using diff" -s h -l help -d 'Show usage'

# history (HASH, or exec options -- COMMAND)
complete -c cashet -n "__cashet_using history" -x -a '(__cashet_runs)' -d 'Run'
complete -c cashet -n "__cashet_using history" -l reverse -d 'Newest first'
complete -c cashet -n "__cashet_using history" -l json -d 'Print JSON'
complete -c cashet -n "__cashet_using history" -s i -l input -r -F -d 'Hash a file, directory or glob as an input'
complete -c cashet -n "__cashet_using history" -s e -l env -x -a '(set -n -x)' -d 'Hash an environment variable or pattern'
complete -c cashet -n "__cashet_using history" -s p -l param -r -F -d 'Hash one value of a TOML or JSON parameters file (FILE:KEY)'
complete -c cashet -n "__cashet_using history" -s h -l help -d 'Show usage'

# get
complete -c cashet -n "__cashet_using get" -x -a '(__cashet_runs)' -d 'Run'
complete -c cashet -n "__cashet_using get" -l stdout -d "The run's standard output (default)"
complete -c cashet -n "__cashet_using get" -l stderr -d "The run's standard error"
complete -c cashet -n "__cashet_using get" -l file -r -F -d 'A declared output file of the run'
complete -c cashet -n "__cashet_using get" -s o -l output -r -F -d 'Write to FILE instead of stdout'
complete -c cashet -n "__cashet_using get" -s h -l help -d 'Show usage'

# rm
complete -c cashet -n "__cashet_using rm" -x -a '(__cashet_runs)' -d 'Run'
complete -c cashet -n "__cashet_using rm" -s h -l help -d 'Show usage'

# stats
complete -c cashet -n "__cashet_using stats" -l json -d 'Print JSON'
complete -c cashet -n "__cashet_using stats" -s h -l help -d 'Show usage'

# reindex
complete -c cashet -n "__cashet_using reindex" -s h -l help -d 'Show usage'

# export FILE [HASH...], import FILE
complete -c cashet -n "__cashet_using export" -F -a '(__cashet_runs)' -d 'Archive file, then runs'
complete -c cashet -n "__cashet_using export" -l name -x -d 'Only runs with this name'
complete -c cashet -n "__cashet_using export" -s t -l tag -x -d 'Only runs with this tag: KEY=VALUE or KEY'
complete -c cashet -n "__cashet_using export" -s h -l help -d 'Show usage'
complete -c cashet -n "__cashet_using import" -F -d 'Archive file'
complete -c cashet -n "__cashet_using import" -l allow-absolute -d 'Accept runs with outputs outside their project'
complete -c cashet -n "__cashet_using import" -s h -l help -d 'Show usage'

# gc, clear, invalidate, config
complete -c cashet -n "__cashet_using gc" -l older-than -x -d 'Remove runs unused for DURATION'
complete -c cashet -n "__cashet_using gc" -l max-size -x -d 'Keep the most recently used runs up to SIZE'
complete -c cashet -n "__cashet_using gc" -s n -l dry-run -d 'Change nothing'
complete -c cashet -n "__cashet_using gc" -s h -l help -d 'Show usage'
complete -c cashet -n "__cashet_using clear" -s f -l force -d 'Do not ask'
complete -c cashet -n "__cashet_using clear" -s h -l help -d 'Show usage'
complete -c cashet -n "__cashet_using invalidate" -l tag -x -d 'Tag KEY=VALUE or KEY'
complete -c cashet -n "__cashet_using invalidate" -l name -x -d 'Run name'
complete -c cashet -n "__cashet_using invalidate" -s h -l help -d 'Show usage'
complete -c cashet -n "__cashet_using config" -l unset -d 'Remove the setting'
complete -c cashet -n "__cashet_using config" -x -a 'max-size auto-pack remote remote-mode trace auto-outputs ignore stdin-limit signing-key trust.allowed-signers' -d 'Setting'
complete -c cashet -n "__cashet_using config" -s h -l help -d 'Show usage'
complete -c cashet -n "__cashet_using fsck" -l prune -d 'Remove runs that cannot be repaired'
complete -c cashet -n "__cashet_using fsck" -s h -l help -d 'Show usage'

# pipeline run|graph|status|report|job [options] [FILE] [TARGET...]
complete -c cashet -n "__cashet_using pipeline" -x -a 'run graph status report job' -d 'Subcommand'
complete -c cashet -n "__cashet_using pipeline" -s o -l output -r -F -d 'Report: write the page to FILE'
complete -c cashet -n "__cashet_using pipeline" -l metric -x -d 'Report: the metric to plot'
complete -c cashet -n "__cashet_using pipeline" -F -a '(__fish_complete_suffix .toml)'
complete -c cashet -n "__cashet_using pipeline" -s j -l jobs -x -d 'Run up to N steps at once'
complete -c cashet -n "__cashet_using pipeline" -s k -l keep-going -d 'After a failure, run every step not downstream of it'
complete -c cashet -n "__cashet_using pipeline" -s n -l dry-run -d 'Run nothing: print the plan, hit or run and why'
complete -c cashet -n "__cashet_using pipeline" -s f -l force -d 'Run every step (or the next word, a step) even if cached'
complete -c cashet -n "__cashet_using pipeline" -s v -l verbose -d "Print every step's output"
complete -c cashet -n "__cashet_using pipeline" -l report-fd -r -d "Write the run's counts as JSON to fd N"
complete -c cashet -n "__cashet_using pipeline" -l executor -x -a 'local slurm' -d 'Run steps here or as Slurm jobs'
complete -c cashet -n "__cashet_using pipeline" -l origin -x -a '(__fish_complete_directories)' -d "(job) The submitting pipeline's store"
complete -c cashet -n "__cashet_using pipeline" -l spool -x -a '(__fish_complete_directories)' -d "(job) Where the run's archive goes"
complete -c cashet -n "__cashet_using pipeline" -l index -x -d "(job) The name of the step's files in the spool"
complete -c cashet -n "__cashet_using pipeline" -l format -x -a 'dot mermaid' -d 'Graph format'
complete -c cashet -n "__cashet_using pipeline" -l store -x -a '(__fish_complete_directories)' -d 'Use the store at DIR'
complete -c cashet -n "__cashet_using pipeline" -s h -l help -d 'Show usage'

# remote, push, pull
complete -c cashet -n "__cashet_using remote" -x -a 'add remove list' -d 'Action'
complete -c cashet -n "__cashet_using remote" -s h -l help -d 'Show usage'
complete -c cashet -n "__cashet_using push" -l tag -x -d 'Only runs with tag KEY=VALUE or KEY'
complete -c cashet -n "__cashet_using push" -l name -x -d 'Only runs with this name'
complete -c cashet -n "__cashet_using push" -l since -x -d 'Only runs created in the last DURATION'
complete -c cashet -n "__cashet_using push" -s h -l help -d 'Show usage'
complete -c cashet -n "__cashet_using pull" -s h -l help -d 'Show usage'

# serve
complete -c cashet -n "__cashet_using serve" -l listen -x -d 'Listen on ADDR:PORT (default 127.0.0.1:8000)'
complete -c cashet -n "__cashet_using serve" -l token -x -d 'Token that writes need'
complete -c cashet -n "__cashet_using serve" -l token-file -r -F -d 'Read the token from FILE'
complete -c cashet -n "__cashet_using serve" -l max-body -x -d 'Largest request body accepted'
complete -c cashet -n "__cashet_using serve" -l pipeline -r -F -d 'Pipeline file whose steps POST /submit runs'
complete -c cashet -n "__cashet_using serve" -l allow-exec -d 'POST /submit may run any command (needs a token)'
complete -c cashet -n "__cashet_using serve" -s h -l help -d 'Show usage'

# exp show [options] [PIPELINE]
complete -c cashet -n "__cashet_using exp" -x -a 'show' -d 'Subcommand'
complete -c cashet -n "__cashet_using exp" -F -a '(__fish_complete_suffix .toml)'
complete -c cashet -n "__cashet_using exp" -l line -x -d 'Every run of the command line of run HASH'
complete -c cashet -n "__cashet_using exp" -s t -l tag -x -d 'The runs with this tag (KEY=VALUE)'
complete -c cashet -n "__cashet_using exp" -l sort -x -d 'Sort by a column, descending with -'
complete -c cashet -n "__cashet_using exp" -l where -x -d 'Keep the rows where COL OP VALUE'
complete -c cashet -n "__cashet_using exp" -l json -d 'Print JSON'
complete -c cashet -n "__cashet_using exp" -l csv -d 'Print CSV with every column'

# metrics diff / params diff [options] [A [B]]
complete -c cashet -n "__cashet_using metrics params" -x -a 'diff' -d 'Subcommand'
complete -c cashet -n "__cashet_using metrics params" -s a -l all -d 'List unchanged values too'
complete -c cashet -n "__cashet_using metrics params" -l json -d 'Print JSON'
