#!/usr/bin/env bash
# PostgreSQL with automatic failover, on one machine: Patroni (Debian's `patroni`)
# managing a primary and a synchronous standby of the real server (PostgreSQL 15), its
# leader lock in etcd (Debian's `etcd-server`), and HAProxy routing clients to
# whichever node Patroni says is the primary. Ports and directories of its own; the
# shared server on 5432 is never touched.
#
#   scripts/cluster/postgres.sh start DIR        # etcd, pg1 + pg2, HAProxy; prints the URL
#   scripts/cluster/postgres.sh stop  DIR        # stops what it started
#   scripts/cluster/postgres.sh kill-node DIR N  # kill -9 node N's Patroni and PostgreSQL (a lost node)
#   scripts/cluster/postgres.sh start-node DIR N # start node N again (it rejoins as a standby)
#   scripts/cluster/postgres.sh list DIR         # patronictl list
#
# Ports from PG_CLUSTER_BASE (default 5440): HAProxy (the clients' address) on BASE,
# PostgreSQL on BASE+1 and BASE+2, Patroni's REST API on BASE+1001 and BASE+1002, etcd
# on BASE+2000 (clients) and BASE+2001 (peers). The last line of `start` is the URL
# for `database.url` (user postgres, trust authentication on loopback).
#
# Why nothing acknowledged is lost on a failover: `synchronous_mode` makes every commit
# wait until the standby has it, and Patroni promotes only that standby. Timings are
# short for a test (`ttl` 10 s, `loop_wait` 1 s, `retry_timeout` 4 s): a lost primary's
# lock expires within 10 s and the standby takes over. HAProxy checks each node's
# `GET /primary` (200 only on the leader) every 500 ms and closes the sessions of a
# node marked down, so clients reconnect to the new primary.
# One etcd member here; a deployment runs three (etcd is the consensus, not PostgreSQL).
#
# TLS: with PG_CLUSTER_TLS_DIR set (a folder with ca.pem, server.pem, server.key), both
# nodes serve TLS with that certificate and refuse every connection without it
# (`hostnossl ... reject`); clients use `sslmode=verify-full&sslrootcert=.../ca.pem`.
# HAProxy passes TLS through (TCP mode), so it ends at PostgreSQL itself.
set -euo pipefail

usage() {
    echo "usage: $0 start|stop|list DIR | kill-node|start-node DIR N" >&2
    exit 2
}
[[ $# -ge 2 ]] || usage
CMD=$1
mkdir -p "$2"
DIR=$(cd "$2" && pwd)
BASE=${PG_CLUSTER_BASE:-5440}
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
WAIT=${PG_CLUSTER_WAIT:-90}

for tool in patroni patronictl etcd haproxy; do
    command -v "$tool" >/dev/null || [[ -x /usr/sbin/$tool ]] || {
        echo "postgres.sh: $tool not found: apt-get install patroni etcd-server haproxy" >&2
        exit 1
    }
done
[[ -x $PG_BIN/postgres ]] || {
    echo "postgres.sh: $PG_BIN/postgres not found: apt-get install postgresql-15 (or set PG_BIN)" >&2
    exit 1
}
HAPROXY=$(command -v haproxy || echo /usr/sbin/haproxy)

# PostgreSQL refuses to run as root: as root, the nodes run as `postgres` (setpriv
# execs, so the pid recorded is Patroni's own).
AS=()
if [[ $(id -u) -eq 0 ]]; then
    AS=(setpriv --reuid postgres --regid postgres --init-groups env HOME=/var/lib/postgresql)
fi

etcd_port() { echo $((BASE + 2000)); }
pg_port() { echo $((BASE + $1)); }
rest_port() { echo $((BASE + 1000 + $1)); }

pid_alive() { [[ -f $1 ]] && kill -0 "$(<"$1")" 2>/dev/null; }

# wait_for WHAT SECONDS COMMAND...: polls COMMAND every 0.5 s.
wait_for() {
    local what=$1 limit=$2
    shift 2
    local deadline=$((SECONDS + limit))
    until "$@" >/dev/null 2>&1; do
        if ((SECONDS > deadline)); then
            echo "postgres.sh: $what not within ${limit}s" >&2
            return 1
        fi
        sleep 0.5
    done
}

start_etcd() {
    local d=$DIR/etcd
    pid_alive "$d/pid" && return 0
    mkdir -p "$d"
    setsid etcd --name e1 --data-dir "$d/data" \
        --listen-client-urls "http://127.0.0.1:$(etcd_port)" \
        --advertise-client-urls "http://127.0.0.1:$(etcd_port)" \
        --listen-peer-urls "http://127.0.0.1:$((BASE + 2001))" \
        --initial-advertise-peer-urls "http://127.0.0.1:$((BASE + 2001))" \
        --initial-cluster "e1=http://127.0.0.1:$((BASE + 2001))" \
        >>"$d/etcd.log" 2>&1 </dev/null &
    echo $! >"$d/pid"
    wait_for "etcd on $(etcd_port)" 30 curl -fsS "http://127.0.0.1:$(etcd_port)/health" || {
        tail -n 20 "$d/etcd.log" >&2
        exit 1
    }
}

TLS_DIR=${PG_CLUSTER_TLS_DIR:-}

# The node's copy of the certificate and key (PostgreSQL wants the key readable by
# its own user only).
node_tls() {
    local d=$1
    [[ -n $TLS_DIR ]] || return 0
    mkdir -p "$d/tls"
    cp "$TLS_DIR/ca.pem" "$TLS_DIR/server.pem" "$TLS_DIR/server.key" "$d/tls/"
    chmod 600 "$d/tls/server.key"
}

# The lines that make a node serve TLS only (none without PG_CLUSTER_TLS_DIR).
tls_parameters() {
    [[ -n $TLS_DIR ]] || return 0
    cat <<YAML
    ssl: "on"
    ssl_cert_file: $1/tls/server.pem
    ssl_key_file: $1/tls/server.key
    ssl_ca_file: $1/tls/ca.pem
YAML
}

hba() {
    if [[ -n $TLS_DIR ]]; then
        cat <<YAML
    - local all all trust
    - hostssl all all 127.0.0.1/32 trust
    - hostssl replication all 127.0.0.1/32 trust
    - hostnossl all all 0.0.0.0/0 reject
    - hostnossl replication all 0.0.0.0/0 reject
YAML
    else
        cat <<YAML
    - local all all trust
    - host all all 127.0.0.1/32 trust
    - host replication all 127.0.0.1/32 trust
YAML
    fi
}

node_config() {
    local n=$1 d=$DIR/pg$1
    cat <<YAML
scope: booking
name: pg$n
log:
  level: WARNING
restapi:
  listen: 127.0.0.1:$(rest_port "$n")
  connect_address: 127.0.0.1:$(rest_port "$n")
etcd3:
  hosts: 127.0.0.1:$(etcd_port)
bootstrap:
  dcs:
    ttl: 10
    loop_wait: 1
    retry_timeout: 4
    maximum_lag_on_failover: 1048576
    synchronous_mode: true
    postgresql:
      use_pg_rewind: true
      parameters:
        max_connections: 300
        wal_level: replica
        hot_standby: "on"
        max_wal_senders: 10
        max_replication_slots: 10
        wal_log_hints: "on"
  initdb:
    - encoding: UTF8
    - locale: C.UTF-8
postgresql:
  listen: 127.0.0.1:$(pg_port "$n")
  connect_address: 127.0.0.1:$(pg_port "$n")
  data_dir: $d/data
  bin_dir: $PG_BIN
  pgpass: $d/pgpass
  authentication:
    superuser:
      username: postgres
    replication:
      username: postgres
  parameters:
    unix_socket_directories: $d
$(tls_parameters "$d")
  pg_hba:
$(hba)
YAML
}

start_node() {
    local n=$1 d=$DIR/pg$1
    pid_alive "$d/patroni.pid" && return 0
    mkdir -p "$d"
    node_tls "$d"
    node_config "$n" >"$d/patroni.yml"
    [[ ${#AS[@]} -eq 0 ]] || chown -R postgres "$d"
    # Patroni's own stdout (its log) goes to the node's folder; setsid: it outlives
    # this script. It starts in the node's folder: as `postgres` it may not enter the
    # caller's (a fresh machine's /root is 0700, and Patroni's worker processes chdir
    # back to where it started).
    (
        cd "$d"
        setsid "${AS[@]}" patroni "$d/patroni.yml" >>"$d/patroni.log" 2>&1 </dev/null &
        echo $! >"$d/patroni.pid"
    )
}

# A node answers as the leader or as a streaming replica.
node_running() {
    curl -fsS "http://127.0.0.1:$(rest_port "$1")/health"
}

# The standby is synchronous: nothing the primary acknowledges can be lost.
has_sync_standby() {
    curl -fsS "http://127.0.0.1:$(rest_port 1)/cluster" | grep -q '"sync_standby"'
}

start_haproxy() {
    local d=$DIR/haproxy
    pid_alive "$d/pid" && return 0
    mkdir -p "$d"
    cat >"$d/haproxy.cfg" <<CONF
global
    maxconn 2000

defaults
    mode tcp
    timeout connect 2s
    timeout client 30m
    timeout server 30m
    timeout check 2s

listen postgres
    bind 127.0.0.1:$BASE
    option httpchk GET /primary
    http-check expect status 200
    default-server inter 500ms fall 2 rise 1 on-marked-down shutdown-sessions
    server pg1 127.0.0.1:$(pg_port 1) check port $(rest_port 1)
    server pg2 127.0.0.1:$(pg_port 2) check port $(rest_port 2)
CONF
    "$HAPROXY" -c -q -f "$d/haproxy.cfg"
    setsid "$HAPROXY" -db -f "$d/haproxy.cfg" >>"$d/haproxy.log" 2>&1 </dev/null &
    echo $! >"$d/pid"
}

routed() {
    local conn="host=127.0.0.1 port=$BASE user=postgres dbname=postgres"
    [[ -z $TLS_DIR ]] || conn="$conn sslmode=verify-full sslrootcert=$TLS_DIR/ca.pem"
    # Four connections in a row on the primary: HAProxy starts every server as up
    # until its checks say otherwise, so one success may be luck while the standby
    # still gets its turn.
    local i
    for i in 1 2 3 4; do
        "$PG_BIN/psql" "$conn" -tAc "select not pg_is_in_recovery()" | grep -q t || return 1
    done
}

stop_pid() {
    local file=$1 sig=${2:-TERM}
    if pid_alive "$file"; then
        local pid
        pid=$(<"$file")
        kill "-$sig" "$pid" 2>/dev/null || true
        for _ in $(seq 1 100); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$file"
}

kill_node() {
    local n=$1 d=$DIR/pg$1 pm
    stop_pid "$d/patroni.pid" KILL
    if [[ -f $d/data/postmaster.pid ]]; then
        pm=$(head -n 1 "$d/data/postmaster.pid")
        kill -KILL "$pm" 2>/dev/null || true
        # The backends die with their postmaster's children's pipe; do not wait long.
        for _ in $(seq 1 50); do
            kill -0 "$pm" 2>/dev/null || break
            sleep 0.1
        done
    fi
}

case $CMD in
start)
    start_etcd
    start_node 1
    wait_for "pg1 running" "$WAIT" node_running 1 || { tail -n 30 "$DIR/pg1/patroni.log" >&2; exit 1; }
    start_node 2
    wait_for "pg2 streaming" "$WAIT" node_running 2 || { tail -n 30 "$DIR/pg2/patroni.log" >&2; exit 1; }
    wait_for "a synchronous standby" "$WAIT" has_sync_standby || { curl -s "http://127.0.0.1:$(rest_port 1)/cluster" >&2; exit 1; }
    start_haproxy
    wait_for "the primary through HAProxy on $BASE" 30 routed || { tail -n 20 "$DIR/haproxy/haproxy.log" >&2; exit 1; }
    echo "postgres: pg1 (primary) on $(pg_port 1), pg2 (synchronous standby) on $(pg_port 2), HAProxy on $BASE, etcd on $(etcd_port); logs in $DIR" >&2
    if [[ -n $TLS_DIR ]]; then
        echo "postgres://postgres@127.0.0.1:$BASE/postgres?sslmode=verify-full&sslrootcert=$TLS_DIR/ca.pem"
    else
        echo "postgres://postgres@127.0.0.1:$BASE/postgres"
    fi
    ;;
stop)
    stop_pid "$DIR/haproxy/pid"
    for n in 1 2; do
        stop_pid "$DIR/pg$n/patroni.pid"
        kill_node "$n"
    done
    stop_pid "$DIR/etcd/pid"
    ;;
kill-node)
    [[ $# -eq 3 ]] || usage
    kill_node "$3"
    ;;
start-node)
    [[ $# -eq 3 ]] || usage
    start_node "$3"
    wait_for "pg$3 running" "$WAIT" node_running "$3" || { tail -n 30 "$DIR/pg$3/patroni.log" >&2; exit 1; }
    ;;
list)
    patronictl -c "$DIR/pg1/patroni.yml" list
    ;;
*) usage ;;
esac
