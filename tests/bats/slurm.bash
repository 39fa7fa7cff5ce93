# A one-node Slurm cluster for the tests of --executor slurm: munged,
# slurmctld and slurmd from Debian's packages, configured in a temp dir on
# 127.0.0.1 ports, started once per file (slurm_start in setup_file) and
# stopped by pid (slurm_stop in teardown_file). When the daemons cannot
# start, SLURM_SKIP says why and every test skips with that reason.

# slurm_start DIR: starts the cluster with its files in DIR; exports
# SLURM_CONF (every Slurm command reads it) and, on failure, SLURM_SKIP.
slurm_start() {
	local dir=$1 i host user
	mkdir -p "$dir/state" "$dir/spool" "$dir/log"
	export SLURM_DIR=$dir
	for c in munged slurmctld slurmd sbatch scontrol squeue scancel; do
		if ! command -v "$c" >/dev/null && ! [ -x "/usr/sbin/$c" ]; then
			export SLURM_SKIP="$c is not installed (apt-get install slurm-wlm munge)"
			return 0
		fi
	done
	# config_overrides: the node offers 8 CPUs whatever this machine has,
	# so that jobs can queue behind others in a predictable way
	host=$(hostname -s)
	user=$(id -un)
	dd if=/dev/urandom of="$dir/munge.key" bs=1024 count=1 2>/dev/null
	chmod 600 "$dir/munge.key"
	/usr/sbin/munged --key-file "$dir/munge.key" --socket "$dir/munge.sock" \
		--pid-file "$dir/munged.pid" --log-file "$dir/log/munged.log" \
		--seed-file "$dir/munge.seed" -f 2>"$dir/log/munged.err" || {
		export SLURM_SKIP="munged did not start: $(head -c 300 "$dir/log/munged.err" | tr '\n' ' ')"
		return 0
	}
	cat > "$dir/slurm.conf" <<CONF
ClusterName=cashettest
SlurmctldHost=$host(127.0.0.1)
SlurmUser=$user
SlurmdUser=root
SlurmctldPort=$(free_port)
SlurmdPort=$(free_port)
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/munge.sock
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=task=1
JobAcctGatherParams=OverMemoryKill
AccountingStorageType=accounting_storage/none
SchedulerType=sched/builtin
SchedulerParameters=sched_interval=1
SlurmdParameters=config_overrides
DefMemPerCPU=50
MessageTimeout=5
KillWait=2
OverTimeLimit=0
MinJobAge=300
InactiveLimit=0
ReturnToService=2
MpiDefault=none
NodeName=$host NodeAddr=127.0.0.1 CPUs=8 RealMemory=4000 State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
	export SLURM_CONF=$dir/slurm.conf
	/usr/sbin/slurmctld -f "$SLURM_CONF" 2>"$dir/log/slurmctld.err" || {
		export SLURM_SKIP="slurmctld did not start: $(tail -c 300 "$dir/log/slurmctld.err" | tr '\n' ' ')"
		return 0
	}
	/usr/sbin/slurmd -f "$SLURM_CONF" 2>"$dir/log/slurmd.err" || {
		export SLURM_SKIP="slurmd did not start: $(tail -c 300 "$dir/log/slurmd.err" | tr '\n' ' ')"
		return 0
	}
	for ((i = 0; i < 100; i++)); do
		if sinfo -h -o %T 2>/dev/null | grep -qx idle; then
			return 0
		fi
		sleep 0.1
	done
	export SLURM_SKIP="the Slurm node did not become idle in 10 s: $(sinfo -h -o '%T %E' 2>&1 | head -1)"
}

# Stops the daemons and waits for them (5 s at most each): the temp dir
# is removed next, where they write their state on the way out.
slurm_stop() {
	local f pid i
	for f in slurmd slurmctld munged; do
		[ -f "$SLURM_DIR/$f.pid" ] || continue
		pid=$(cat "$SLURM_DIR/$f.pid")
		kill "$pid" 2>/dev/null || continue
		for ((i = 0; i < 50; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
	done
	return 0
}

slurm_skip_if_down() {
	if [ -n "${SLURM_SKIP:-}" ]; then
		skip "$SLURM_SKIP"
	fi
}
