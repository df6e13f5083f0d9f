#!/usr/bin/env bash
# A single-node Slurm cluster on localhost, to try and test profiles/slurm without a cluster.
#
#   scripts/slurm-local.sh up [--no-accounting] [--account NAME]... [--cpus N] [--mem-mb MB] [--gpus N]
#   scripts/slurm-local.sh down
#   scripts/slurm-local.sh status
#
# `up` installs Debian's Slurm 22.05 packages when missing, writes /etc/slurm/, and starts
# munged, (MariaDB + slurmdbd,) slurmctld and slurmd directly (no systemd needed). The node
# `localhost` has every CPU and ~90% of RAM (or --cpus/--mem-mb: more than the machine has is
# allowed, nothing enforces it), and fake A40s (`Gres=gpu:a40:N`, N = --gpus, default 1) so that
# `--gres=gpu:a40:1` is schedulable on a machine without a GPU; partition `p1`.
# With accounting (the default) `sacct` works, which the Snakemake Slurm plugin uses for status
# checks; `--no-accounting` leaves slurmdbd out, as on clusters without accounting, where the
# profile needs `slurm-status-command: squeue`. `--account NAME` registers a Slurm account for
# root (and $SUDO_USER) so that the plugin's account validation accepts it.
# Switch modes with `down` then `up [--no-accounting]`. Needs root and apt-get (Debian/Ubuntu).
set -euo pipefail

readonly MARK="# Written by halting scripts/slurm-local.sh; 'down' stops the daemons."
readonly CLUSTER=halting
readonly CONF_DIR=/etc/slurm
readonly LOG_DIR=/var/log/slurm
readonly OWN_DIR=/run/halting-slurm-local    # pids of the daemons this script started
readonly STATE_FILE=$OWN_DIR/mode             # "accounting" or "no-accounting" while up
readonly MUNGE_PID=/run/munge/munged.pid
readonly MYSQL_PID=/run/mysqld/mysqld.pid
readonly DBD_PID=/run/slurmdbd.pid
readonly CTLD_PID=/run/slurmctld.pid
readonly SLURMD_PID=/run/slurmd.pid
readonly FAKE_GPU_DIR=/var/spool/slurmd-fake-gpus
readonly BASE_PKGS=(munge slurmctld slurmd slurm-client)
readonly ACCT_PKGS=(slurmdbd mariadb-server)

T0=$(date +%s.%N)
log() { printf '[slurm-local] %s\n' "$*"; }
die() { printf '[slurm-local] error: %s\n' "$*" >&2; exit 1; }
elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }

usage() {
    sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//'
    exit "${1:-2}"
}

require_root() {
    [[ $(id -u) -eq 0 ]] || die "must run as root (it installs packages and starts daemons); try: sudo $0 $*"
}

# --- processes, by pid file -------------------------------------------------------------------

# running PID: the process exists and is not a zombie (an exited daemon stays a zombie until
# init reaps it, which takes a while in some containers).
running() {
    local state
    state=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null) || return 1
    [[ -n $state && $state != Z && $state != X ]]
}

# pid_alive PIDFILE NAME: the pid file names a running process whose command is NAME.
pid_alive() {
    local pid
    [[ -s $1 ]] || return 1
    pid=$(tr -dc 0-9 <"$1")
    [[ -n $pid ]] && running "$pid" || return 1
    [[ $(cat "/proc/$pid/comm" 2>/dev/null) == "$2" ]]
}

# remember NAME PIDFILE: record that this script started the daemon NAME, once it has written
# its pid file (daemons write it after forking, so the file can lag behind the command's exit).
remember() {
    local i
    for ((i = 0; i < 50; i++)); do
        pid_alive "$2" "$1" && break
        sleep 0.2
    done
    pid_alive "$2" "$1" || { show_logs "$LOG_DIR/$1.log"; die "$1 did not start (no live pid in $2)"; }
    mkdir -p "$OWN_DIR"
    cp "$2" "$OWN_DIR/$1.pid"
}

# ours NAME PIDFILE: the running daemon NAME is one this script started.
ours() { [[ -s $OWN_DIR/$1.pid && -s $2 ]] && cmp -s "$OWN_DIR/$1.pid" "$2"; }

# start_once NAME PIDFILE COMMAND...: run COMMAND (which starts the daemon NAME) unless a NAME
# that this script started is running already; one it did not start is an error.
start_once() {
    local name=$1 pidfile=$2
    shift 2
    if ! pid_alive "$pidfile" "$name"; then
        "$@"
        remember "$name" "$pidfile"
    elif ! ours "$name" "$pidfile"; then
        die "a $name not started by this script is running (pid $(cat "$pidfile")); stop it first"
    fi
}

# stop_own NAME: SIGTERM the daemon NAME that this script started, wait up to 20 s, then SIGKILL.
# Daemons that were running before `up` (a system MariaDB or munged) are left alone.
stop_own() {
    local name=$1 pidfile=$OWN_DIR/$1.pid pid i t
    t=$(date +%s.%N)
    if ! pid_alive "$pidfile" "$name"; then
        rm -f "$pidfile"
        return 0
    fi
    pid=$(tr -dc 0-9 <"$pidfile")
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
        running "$pid" || break
        sleep 0.2
    done
    if running "$pid"; then
        log "$name ($pid) ignored SIGTERM for 20 s; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        sleep 0.5
    fi
    rm -f "$pidfile"
    log "stopped $name ($pid) in $(elapsed "$t") s"
}

# wait_for SECONDS COMMAND...: poll COMMAND every 0.5 s until it succeeds.
wait_for() {
    local limit=$1 i
    shift
    for ((i = 0; i < limit * 2; i++)); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.5
    done
    return 1
}

show_logs() {
    local f
    for f in "$@"; do
        [[ -f $f ]] || continue
        printf '\n--- last lines of %s ---\n' "$f" >&2
        tail -n 25 "$f" >&2
    done
}

# --- installation -------------------------------------------------------------------------

pkg_installed() { [[ $(dpkg-query -W -f='${Status}' "$1" 2>/dev/null) == "install ok installed" ]]; }

install_packages() {
    local missing=() p t
    for p in "$@"; do pkg_installed "$p" || missing+=("$p"); done
    if ((${#missing[@]} == 0)); then
        log "packages present: $*"
        return 0
    fi
    command -v apt-get >/dev/null ||
        die "apt-get not found: this script needs a Debian or Ubuntu machine (missing: ${missing[*]})"
    t=$(date +%s.%N)
    log "installing ${missing[*]} (apt-get, non-interactive)"
    # Keep package scripts from starting the daemons through init scripts: we start them ourselves.
    local own_policy=0
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        own_policy=1
    fi
    local apt=(env DEBIAN_FRONTEND=noninteractive apt-get -q -y -o DPkg::Lock::Timeout=300
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
    local ok=0
    if compgen -G '/var/lib/apt/lists/*_Packages' >/dev/null &&
        "${apt[@]}" install --no-install-recommends "${missing[@]}" >/tmp/slurm-local-apt.log 2>&1; then
        ok=1
    elif "${apt[@]}" update >>/tmp/slurm-local-apt.log 2>&1 &&
        "${apt[@]}" install --no-install-recommends "${missing[@]}" >>/tmp/slurm-local-apt.log 2>&1; then
        ok=1
    fi
    ((own_policy)) && rm -f /usr/sbin/policy-rc.d
    if ((!ok)); then
        tail -n 30 /tmp/slurm-local-apt.log >&2
        die "apt-get could not install ${missing[*]} (full log: /tmp/slurm-local-apt.log)"
    fi
    log "installed in $(elapsed "$t") s"
}

# --- configuration ------------------------------------------------------------------------

# Refuse to overwrite a Slurm configuration that this script did not write.
check_foreign_conf() {
    local f
    for f in "$CONF_DIR/slurm.conf" "$CONF_DIR/gres.conf" "$CONF_DIR/slurmdbd.conf"; do
        if [[ -s $f ]] && ! grep -qxF "$MARK" "$f"; then
            die "$f exists and was not written by this script; refusing to overwrite a real Slurm set-up"
        fi
    done
}

# render_conf DIR ACCOUNTING CPUS MEM_MB GPUS: write slurm.conf and gres.conf into DIR.
render_conf() {
    local dir=$1 accounting=$2 cpus=$3 real_mem=$4 gpus=$5 def_mem acct_lines gpu_files
    def_mem=$((real_mem / cpus))
    ((def_mem > 2048)) && def_mem=2048
    if [[ $accounting == accounting ]]; then
        # job_comment: `sacct -o Comment` shows the plugin's `--comment rule_<name>`.
        # gres/gpu:a40 in AccountingStorageTRES: `sacct -o ReqTRES,AllocTRES` shows the GPU request.
        acct_lines="AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStorageTRES=gres/gpu,gres/gpu:a40
AccountingStoreFlags=job_comment
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=30"
    else
        acct_lines="AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none"
    fi
    # A typed GRES needs a device file (Count= alone marks the node invalid) and slurmd wants a
    # character or block device: one fake A40 is /dev/null, several are copies of /dev/null's
    # device node made by make_fake_gpus.
    if ((gpus == 1)); then
        gpu_files=/dev/null
    else
        gpu_files="$FAKE_GPU_DIR/a40-[0-$((gpus - 1))]"
    fi

    cat >"$dir/slurm.conf" <<EOF
$MARK
# Single-node test cluster ($accounting): node localhost, partition p1, $gpus fake A40(s).
ClusterName=$CLUSTER
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
ReturnToService=2
# The node's size comes from this file, not from the hardware (see up --cpus/--mem-mb).
SlurmdParameters=config_overrides
SlurmctldPidFile=$CTLD_PID
SlurmdPidFile=$SLURMD_PID
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldLogFile=$LOG_DIR/slurmctld.log
SlurmdLogFile=$LOG_DIR/slurmd.log
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
GresTypes=gpu
# Each job gets DefMemPerCPU per CPU unless it asks (else it takes the whole node's memory).
DefMemPerCPU=$def_mem
# Jobs that finished stay visible to squeue for MinJobAge seconds: the Snakemake plugin's
# squeue status check needs at least 3x its first-status-check delay.
MinJobAge=300
# A job past its time limit gets SIGTERM, then SIGKILL after KillWait seconds.
KillWait=10
OverTimeLimit=0
InactiveLimit=0
Waittime=0
$acct_lines
NodeName=localhost CPUs=$cpus RealMemory=$real_mem Gres=gpu:a40:$gpus State=UNKNOWN
PartitionName=p1 Nodes=localhost Default=YES DefaultTime=04:00:00 MaxTime=2-00:00:00 State=UP
EOF

    cat >"$dir/gres.conf" <<EOF
$MARK
NodeName=localhost Name=gpu Type=a40 File=$gpu_files
EOF
}

# make_fake_gpus N: N character devices like /dev/null (1:3), one per fake A40, when N > 1.
make_fake_gpus() {
    local gpus=$1 i
    ((gpus > 1)) || return 0
    mkdir -p "$FAKE_GPU_DIR"
    for ((i = 0; i < gpus; i++)); do
        [[ -c $FAKE_GPU_DIR/a40-$i ]] && continue
        rm -f "$FAKE_GPU_DIR/a40-$i"
        mknod -m 666 "$FAKE_GPU_DIR/a40-$i" c 1 3 ||
            die "cannot create the fake GPU device $FAKE_GPU_DIR/a40-$i (mknod); use --gpus 1"
    done
}

# write_conf ACCOUNTING CPUS MEM_MB GPUS: the configuration in /etc/slurm/.
write_conf() {
    local accounting=$1
    mkdir -p "$CONF_DIR" "$LOG_DIR" /var/spool/slurmctld /var/spool/slurmd
    chmod 755 /var/spool/slurmctld /var/spool/slurmd
    make_fake_gpus "$4"
    render_conf "$CONF_DIR" "$@"

    if [[ $accounting == accounting ]]; then
        local pass
        pass=$(sed -n 's/^StoragePass=//p' "$CONF_DIR/slurmdbd.conf" 2>/dev/null || true)
        [[ -n $pass ]] || pass=$(head -c 18 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')
        umask 077
        cat >"$CONF_DIR/slurmdbd.conf" <<EOF
$MARK
AuthType=auth/munge
DbdHost=localhost
DbdPort=6819
SlurmUser=root
LogFile=$LOG_DIR/slurmdbd.log
PidFile=$DBD_PID
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=$pass
StorageLoc=slurm_acct_db
EOF
        umask 022
        chmod 600 "$CONF_DIR/slurmdbd.conf"
    fi
    log "wrote $CONF_DIR ($accounting): $(grep -E '^(NodeName|DefMemPerCPU)=' "$CONF_DIR/slurm.conf" | tr '\n' ' ')"
}

# --- daemons ------------------------------------------------------------------------------

start_munge() {
    if pid_alive "$MUNGE_PID" munged; then
        ours munged "$MUNGE_PID" || log "using the munged already running (down leaves it running)"
        return 0
    fi
    if [[ ! -s /etc/munge/munge.key ]]; then
        mkdir -p /etc/munge
        if command -v mungekey >/dev/null; then
            mungekey --create --keyfile=/etc/munge/munge.key
        else
            dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
        fi
        chown munge:munge /etc/munge/munge.key
        chmod 400 /etc/munge/munge.key
    fi
    mkdir -p /run/munge /var/log/munge /var/lib/munge
    chown munge:munge /run/munge /var/log/munge /var/lib/munge
    chmod 755 /run/munge
    runuser -u munge -- /usr/sbin/munged --pid-file="$MUNGE_PID"
    remember munged "$MUNGE_PID"
    wait_for 10 bash -c 'munge -n | unmunge' ||
        { show_logs /var/log/munge/munged.log; die "munged did not start"; }
    log "munged running"
}

start_mariadb() {
    if pid_alive "$MYSQL_PID" mariadbd; then
        ours mariadbd "$MYSQL_PID" || log "using the MariaDB already running (down leaves it running)"
        return 0
    fi
    mkdir -p /run/mysqld
    chown mysql:mysql /run/mysqld
    if [[ ! -d /var/lib/mysql/mysql ]]; then
        mariadb-install-db --user=mysql --datadir=/var/lib/mysql >/tmp/slurm-local-mariadb-install.log 2>&1 ||
            { tail /tmp/slurm-local-mariadb-install.log >&2; die "mariadb-install-db failed"; }
    fi
    # Local socket only: nothing listens on a TCP port.
    setsid -f /usr/sbin/mariadbd --user=mysql --skip-networking --pid-file="$MYSQL_PID" \
        --socket=/run/mysqld/mysqld.sock --log-error="$LOG_DIR/mariadb.log" </dev/null >/dev/null 2>&1
    mkdir -p "$LOG_DIR"
    wait_for 30 mariadb-admin --socket=/run/mysqld/mysqld.sock ping ||
        { show_logs "$LOG_DIR/mariadb.log"; die "MariaDB did not start"; }
    remember mariadbd "$MYSQL_PID"
    local pass
    pass=$(sed -n 's/^StoragePass=//p' "$CONF_DIR/slurmdbd.conf")
    mariadb --socket=/run/mysqld/mysqld.sock <<EOF
CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY '$pass';
ALTER USER 'slurm'@'localhost' IDENTIFIED BY '$pass';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';
EOF
    log "MariaDB running"
}

start_slurmdbd() {
    start_once slurmdbd "$DBD_PID" slurmdbd
    wait_for 30 sacctmgr -n list cluster ||
        { show_logs "$LOG_DIR/slurmdbd.log"; die "slurmdbd did not answer within 30 s"; }
    if ! sacctmgr -n -P list cluster format=cluster | grep -qx "$CLUSTER"; then
        sacctmgr -i add cluster "$CLUSTER" >/dev/null
    fi
    log "slurmdbd running"
}

start_slurmctld() {
    start_once slurmctld "$CTLD_PID" slurmctld
    wait_for 30 scontrol ping ||
        { show_logs "$LOG_DIR/slurmctld.log"; die "slurmctld did not answer within 30 s"; }
    log "slurmctld running"
}

node_ready() {
    local state
    state=$(sinfo -h -N -n localhost -o %T 2>/dev/null) || return 1
    [[ $state == idle || $state == mixed || $state == allocated ]]
}

start_slurmd() {
    # The machine's hostname is not `localhost`: name the node explicitly.
    start_once slurmd "$SLURMD_PID" slurmd -N localhost
    if ! wait_for 30 sinfo -h -n localhost -o %T; then
        show_logs "$LOG_DIR/slurmd.log"
        die "slurmd did not register"
    fi
    local i
    for ((i = 0; i < 60; i++)); do
        node_ready && break
        # A node left down/drained by an earlier run comes back here.
        if [[ $(sinfo -h -N -n localhost -o %T 2>/dev/null) =~ ^(down|drained|draining) ]]; then
            scontrol update nodename=localhost state=resume >/dev/null 2>&1 || true
        fi
        sleep 0.5
    done
    node_ready || {
        sinfo -N -n localhost -o '%N %T %E' >&2 || true
        show_logs "$LOG_DIR/slurmd.log" "$LOG_DIR/slurmctld.log"
        die "node localhost is not idle after 30 s"
    }
    log "slurmd running; node localhost $(sinfo -h -N -n localhost -o %T)"
}

add_accounts() {
    local acct user users=(root)
    [[ -n ${SUDO_USER:-} && ${SUDO_USER} != root ]] && users+=("$SUDO_USER")
    for acct in "$@"; do
        if ! sacctmgr -n -P list account "$acct" format=account | grep -qx "$acct"; then
            sacctmgr -i add account "$acct" cluster="$CLUSTER" description="halting test account" >/dev/null
        fi
        for user in "${users[@]}"; do
            if ! sacctmgr -n -P list assoc user="$user" account="$acct" format=account | grep -qx "$acct"; then
                sacctmgr -i add user "$user" account="$acct" cluster="$CLUSTER" >/dev/null
            fi
        done
        log "account $acct: users ${users[*]}"
    done
}

# --- commands -----------------------------------------------------------------------------

cmd_up() {
    local accounting=accounting accounts=() cpus="" mem_mb="" gpus=1
    while (($#)); do
        case $1 in
        --no-accounting) accounting=no-accounting ;;
        --account | --cpus | --mem-mb | --gpus)
            [[ -n ${2:-} ]] || die "$1 needs a value"
            case $1 in
            --account) accounts+=("$2") ;;
            --cpus) cpus=$2 ;;
            --mem-mb) mem_mb=$2 ;;
            --gpus) gpus=$2 ;;
            esac
            shift
            ;;
        -h | --help) usage 0 ;;
        *) die "unknown option for up: $1" ;;
        esac
        shift
    done
    require_root up
    [[ -z $cpus ]] && cpus=$(nproc)
    [[ -z $mem_mb ]] && mem_mb=$(($(awk '/^MemTotal:/ { print $2 }' /proc/meminfo) * 9 / 10 / 1024))
    local n
    for n in "$cpus" "$mem_mb" "$gpus"; do
        [[ $n =~ ^[1-9][0-9]*$ ]] || die "--cpus, --mem-mb and --gpus take positive integers (got '$n')"
    done
    if [[ $accounting == no-accounting && ${#accounts[@]} -gt 0 ]]; then
        die "--account needs accounting (slurmdbd); drop --no-accounting"
    fi
    if [[ -s $STATE_FILE ]] && pid_alive "$CTLD_PID" slurmctld; then
        local running again="up"
        running=$(cat "$STATE_FILE")
        [[ $accounting == no-accounting ]] && again="up --no-accounting"
        [[ $running == "$accounting" ]] ||
            die "the cluster is up in mode '$running'; run '$0 down' first, then '$0 $again'"
        # Same mode: the node's size must match too (slurm.conf is only written while down).
        local tmp
        tmp=$(mktemp -d)
        render_conf "$tmp" "$accounting" "$cpus" "$mem_mb" "$gpus"
        if ! cmp -s "$tmp/slurm.conf" "$CONF_DIR/slurm.conf" || ! cmp -s "$tmp/gres.conf" "$CONF_DIR/gres.conf"; then
            diff "$CONF_DIR/slurm.conf" "$tmp/slurm.conf" >&2 || true
            rm -rf "$tmp"
            die "the cluster is up with another configuration; run '$0 down' first"
        fi
        rm -rf "$tmp"
    elif pid_alive "$CTLD_PID" slurmctld && ! ours slurmctld "$CTLD_PID"; then
        die "a slurmctld not started by this script is running (pid $(cat "$CTLD_PID")); stop it first"
    fi

    local pkgs=("${BASE_PKGS[@]}")
    [[ $accounting == accounting ]] && pkgs+=("${ACCT_PKGS[@]}")
    install_packages "${pkgs[@]}"

    local t
    t=$(date +%s.%N)
    if ! pid_alive "$CTLD_PID" slurmctld; then
        check_foreign_conf
        write_conf "$accounting" "$cpus" "$mem_mb" "$gpus"
    fi
    mkdir -p "$OWN_DIR"
    echo "$accounting" >"$STATE_FILE"
    start_munge
    if [[ $accounting == accounting ]]; then
        start_mariadb
        start_slurmdbd
    fi
    start_slurmctld
    start_slurmd
    ((${#accounts[@]})) && add_accounts "${accounts[@]}"
    log "daemons started in $(elapsed "$t") s; up ($accounting) in $(elapsed "$T0") s in all"
}

cmd_down() {
    require_root down
    local t
    t=$(date +%s.%N)
    if pid_alive "$CTLD_PID" slurmctld && scontrol ping >/dev/null 2>&1; then
        local jobs
        jobs=$(squeue -h -o %i 2>/dev/null | tr '\n' ' ')
        if [[ -n ${jobs// /} ]]; then
            log "cancelling jobs: $jobs"
            # shellcheck disable=SC2086
            scancel $jobs || true
            local i
            for ((i = 0; i < 60; i++)); do
                [[ -z $(squeue -h -t running,completing,pending,suspended -o %i 2>/dev/null) ]] && break
                sleep 0.5
            done
        fi
    fi
    stop_own slurmd
    stop_own slurmctld
    stop_own slurmdbd
    stop_own mariadbd
    stop_own munged
    rm -f "$STATE_FILE"
    log "down in $(elapsed "$t") s"
}

cmd_status() {
    local name pidfile ok=0 mode=none
    [[ -s $STATE_FILE ]] && mode=$(cat "$STATE_FILE")
    printf 'mode: %s\n' "$mode"
    for name in munged mariadbd slurmdbd slurmctld slurmd; do
        case $name in
        munged) pidfile=$MUNGE_PID ;;
        mariadbd) pidfile=$MYSQL_PID ;;
        slurmdbd) pidfile=$DBD_PID ;;
        slurmctld) pidfile=$CTLD_PID ;;
        slurmd) pidfile=$SLURMD_PID ;;
        esac
        if pid_alive "$pidfile" "$name"; then
            printf '%-10s running (pid %s)\n' "$name" "$(cat "$pidfile")"
        else
            printf '%-10s stopped\n' "$name"
            case $name in
            mariadbd | slurmdbd) [[ $mode == accounting ]] && ok=1 ;;
            *) ok=1 ;;
            esac
        fi
    done
    if ((ok == 0)); then
        sinfo -N -o '%N %P %T %c %m %G'
        node_ready || ok=1
    fi
    return "$ok"
}

case ${1:-} in
up) shift; cmd_up "$@" ;;
down) shift; (($# == 0)) || die "down takes no options"; cmd_down ;;
status) shift; cmd_status ;;
-h | --help | help) usage 0 ;;
*) usage 2 ;;
esac
