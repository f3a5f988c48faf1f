#!/usr/bin/env bash
# Install and start a single-node Slurm (munge + slurmctld + slurmd) on this host, for CI and local tests.
# Runs as root on Debian/Ubuntu without systemd. Idempotent: safe to run again (reuses the key, config and daemons).
set -euo pipefail

CONF_DIR=/etc/slurm
PARTITION=${LABKIT_SLURM_PARTITION:-debug}
HOST=$(hostname -s)

log() { echo "[setup_slurm] $*"; }

if [ "$(id -u)" -ne 0 ]; then
  echo "[setup_slurm] must run as root (apt-get, daemons)" >&2
  exit 1
fi

if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null; then
  log "installing slurm-wlm and munge with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null
fi

# --- munge: one key, a socket dir, the daemon ------------------------------------------------------------------
mkdir -p /etc/munge /var/lib/munge /var/log/munge /run/munge
if [ ! -s /etc/munge/munge.key ]; then
  log "creating /etc/munge/munge.key"
  dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
fi
chown -R munge:munge /etc/munge /var/lib/munge /var/log/munge /run/munge
chmod 0700 /etc/munge /var/lib/munge /var/log/munge
chmod 0755 /run/munge
chmod 0400 /etc/munge/munge.key
if ! munge -n >/dev/null 2>&1; then
  log "starting munged"
  runuser -u munge -- /usr/sbin/munged
  for _ in $(seq 1 20); do munge -n >/dev/null 2>&1 && break; sleep 0.5; done
fi
munge -n | unmunge >/dev/null

# --- slurm.conf for this host ----------------------------------------------------------------------------------
mkdir -p "$CONF_DIR" /var/spool/slurmctld /var/spool/slurmd /var/log/slurm /run/slurm
CPUS=$(nproc)
MEM_MB=$(awk '/MemTotal/ {print int($2 / 1024)}' /proc/meminfo)
REAL_MEM=$(( MEM_MB * 9 / 10 ))   # leave headroom so the node is never drained for "low RealMemory"
if ! getent hosts "$HOST" >/dev/null; then
  echo "127.0.0.1 $HOST" >> /etc/hosts
fi
cat > "$CONF_DIR/slurm.conf.new" <<CONF
# Written by labkit slurm/ci/setup_slurm.sh: a single-node cluster on $HOST.
ClusterName=labkit
SlurmctldHost=$HOST
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurm/slurmctld.pid
SlurmdPidFile=/run/slurm/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=/var/log/slurm/jobcomp.log
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
JobRequeue=1
MinJobAge=3600
KillWait=30
MpiDefault=none
SwitchType=switch/none
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$REAL_MEM State=UNKNOWN
PartitionName=$PARTITION Nodes=$HOST Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
CONF
changed=1
if [ -f "$CONF_DIR/slurm.conf" ] && cmp -s "$CONF_DIR/slurm.conf.new" "$CONF_DIR/slurm.conf"; then changed=0; fi
mv "$CONF_DIR/slurm.conf.new" "$CONF_DIR/slurm.conf"
# No cgroups in containers: proctrack/linuxproc + task/none need none. Slurm 22.05 still reads cgroup.conf, so give
# it the autodetect plugin and constrain nothing.
printf 'CgroupPlugin=autodetect\nConstrainCores=no\nConstrainRAMSpace=no\nConstrainDevices=no\n' > "$CONF_DIR/cgroup.conf"

running() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

if running /run/slurm/slurmctld.pid; then
  [ "$changed" = 1 ] && { log "config changed: reconfiguring"; scontrol reconfigure || true; }
else
  log "starting slurmctld"
  slurmctld
fi
if ! running /run/slurm/slurmd.pid; then
  log "starting slurmd"
  slurmd
fi

log "waiting for node $HOST to be idle"
for i in $(seq 1 60); do
  state=$(sinfo -h -n "$HOST" -o '%T' 2>/dev/null | head -1 || true)
  case "$state" in
    idle|mixed|allocated) log "node $HOST is $state"; sinfo; exit 0 ;;
    down*|drain*) scontrol update NodeName="$HOST" State=RESUME 2>/dev/null || true ;;
  esac
  sleep 1
done
echo "[setup_slurm] node $HOST did not become idle (last state: ${state:-none}); see /var/log/slurm/" >&2
exit 1
