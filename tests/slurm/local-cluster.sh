#!/bin/bash
# A real single-node SLURM (with slurmdbd accounting, which the executor plugin's status checks use)
# on localhost, for the workflow tests. Needs root and apt (Debian 12: SLURM 22.05).
#   local-cluster.sh start STATE_DIR   install what is missing, start the daemons not yet running
#   local-cluster.sh stop STATE_DIR    stop exactly the daemons that `start` started, by pid
# STATE_DIR/started lists "name pid" of each daemon this script started.
set -euo pipefail
action=${1:?start or stop}
state=${2:?state directory}
mkdir -p "$state"
state=$(cd "$state" && pwd)
started="$state/started"

running() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }
pidof_file() { [ -s "$1" ] && cat "$1" || true; }
note() { echo "$1 $2" >>"$started"; }

start_daemon() { # name pidfile command...
  local name=$1 pidfile=$2; shift 2
  if running "$(pidof_file "$pidfile")"; then return 0; fi
  "$@"
  for _ in $(seq 50); do running "$(pidof_file "$pidfile")" && break; sleep 0.2; done
  running "$(pidof_file "$pidfile")" || { echo "$name did not start" >&2; exit 1; }
  note "$name" "$(cat "$pidfile")"
}

if [ "$action" = stop ]; then
  [ -f "$started" ] || exit 0
  tac "$started" | while read -r name pid; do
    running "$pid" || continue
    kill "$pid"
    for _ in $(seq 50); do running "$pid" || break; sleep 0.2; done
    running "$pid" && kill -9 "$pid"
    echo "stopped $name ($pid)"
  done
  rm -f "$started"
  exit 0
fi

export DEBIAN_FRONTEND=noninteractive
packages="slurm-wlm slurmctld slurmd slurm-client munge slurmdbd mariadb-server"
dpkg -s $packages >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq $packages >/dev/null; }

install -d -o munge -g munge -m 755 /run/munge
[ -s /etc/munge/munge.key ] || { mungekey --create --force; chown munge:munge /etc/munge/munge.key; chmod 400 /etc/munge/munge.key; }
start_daemon munged /run/munge/munged.pid runuser -u munge -- /usr/sbin/munged

# controller and node state live in STATE_DIR: jobs left queued or running by an earlier, interrupted
# cluster are never recovered into this one (they would hold the node's CPUs and block every new job)
install -d /run/slurm /var/log/slurm "$state/slurmctld" "$state/slurmd"
install -d -o mysql -g root /run/mysqld
if ! mariadb -e 'select 1' >/dev/null 2>&1; then
  setsid nohup /usr/sbin/mariadbd --user=mysql --datadir=/var/lib/mysql --socket=/run/mysqld/mysqld.sock \
    --bind-address=127.0.0.1 --pid-file=/run/mysqld/mariadbd.pid >/var/log/slurm/mariadbd.log 2>&1 </dev/null &
  for _ in $(seq 100); do mariadb -e 'select 1' >/dev/null 2>&1 && break; sleep 0.2; done
  note mariadbd "$(cat /run/mysqld/mariadbd.pid)"
fi
mariadb -e "CREATE DATABASE IF NOT EXISTS slurm_acct_db;
  CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'slurmdbpass';
  GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost'; FLUSH PRIVILEGES;"

cat >/etc/slurm/slurmdbd.conf <<CONF
AuthType=auth/munge
DbdHost=localhost
DbdPort=6819
SlurmUser=root
PidFile=/run/slurm/slurmdbd.pid
LogFile=/var/log/slurm/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=localhost
StoragePort=3306
StorageUser=slurm
StoragePass=slurmdbpass
StorageLoc=slurm_acct_db
CONF
chmod 600 /etc/slurm/slurmdbd.conf

# no cgroups or systemd here: linuxproc process tracking; memory in MB as the rules declare it
cat >/etc/slurm/slurm.conf <<CONF
ClusterName=localcluster
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
ReturnToService=2
SlurmctldPidFile=/run/slurm/slurmctld.pid
SlurmdPidFile=/run/slurm/slurmd.pid
SlurmctldPort=6817
SlurmdPort=6818
StateSaveLocation=$state/slurmctld
SlurmdSpoolDir=$state/slurmd
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
JobCompType=jobcomp/none
JobAcctGatherType=jobacct_gather/linux
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort=6819
AccountingStoreFlags=job_comment
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$(nproc) RealMemory=16000 State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
CONF

start_daemon slurmdbd /run/slurm/slurmdbd.pid slurmdbd
for _ in $(seq 50); do sacctmgr -n list cluster >/dev/null 2>&1 && break; sleep 0.2; done
sacctmgr -n -P list cluster format=cluster | grep -qx localcluster || sacctmgr -i add cluster localcluster >/dev/null
sacctmgr -n -P list account format=account | grep -qx test || sacctmgr -i add account test Description=test Organization=local >/dev/null
sacctmgr -n -P list assoc user=root account=test format=user | grep -qx root || sacctmgr -i add user root Account=test DefaultAccount=test >/dev/null
start_daemon slurmctld /run/slurm/slurmctld.pid slurmctld
start_daemon slurmd /run/slurm/slurmd.pid slurmd -N localhost
for _ in $(seq 100); do sinfo -h -o %T 2>/dev/null | grep -qx idle && break; sleep 0.2; done
sinfo -h -o "%P %a %D %T %N"
sinfo -h -o %T | grep -qx idle || { echo "the node is not idle: $(sinfo -h -o %T); queued: $(squeue -h | wc -l) jobs" >&2; exit 1; }
