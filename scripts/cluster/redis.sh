#!/usr/bin/env bash
# Redis with automatic failover on one machine: 1 primary, 1 replica and 3 Sentinels of
# the real server (Debian's redis-server; a Sentinel is `redis-server --sentinel`), on
# ports and directories of their own. The Redis on 6379 is never touched.
#
#   scripts/cluster/redis.sh start  DIR   # start all five, print the sentinel addresses
#   scripts/cluster/redis.sh status DIR   # the primary the Sentinels name, and roles
#   scripts/cluster/redis.sh stop   DIR   # stop what it started
#   scripts/cluster/redis.sh primary DIR        # the port of the primary the Sentinels name
#   scripts/cluster/redis.sh kill-primary DIR   # kill -9 of the current primary
#
# Ports: data nodes REDIS_CLUSTER_BASE+1 and +2 (default 6391, 6392), Sentinels
# 26391..26393 (20000 above the base's +1..+3). Master name: REDIS_MASTER_NAME (default
# `booking`). The Sentinels declare the primary down after 1 s without an answer and
# need 2 of 3 to agree (quorum 2), so a failover takes a few seconds.
#
# REDIS_CLUSTER_TLS_DIR=DIR (a folder with ca.pem, server.pem and server.key): every
# node and Sentinel speaks TLS only (`port 0`, `tls-port`), replication and the
# Sentinels' own connections included (`tls-replication yes`); clients are not asked
# for a certificate. The printed sentinel addresses are then `rediss://...`, to go
# with `redis.tls_ca_path = DIR/ca.pem`.
set -euo pipefail

usage() {
    echo "usage: $0 start|stop|status|primary|kill-primary DIR" >&2
    exit 2
}
[[ $# -eq 2 ]] || usage
CMD=$1
DIR=$(mkdir -p "$2" && cd "$2" && pwd)
BASE=${REDIS_CLUSTER_BASE:-6390}
MASTER=${REDIS_MASTER_NAME:-booking}
SERVER=${REDIS_SERVER:-$(command -v redis-server || echo /usr/bin/redis-server)}
CLI=${REDIS_CLI:-$(command -v redis-cli || echo /usr/bin/redis-cli)}
[[ -x $SERVER ]] || {
    echo "redis.sh: redis-server not found: apt-get install redis-server" >&2
    exit 1
}

TLS_DIR=${REDIS_CLUSTER_TLS_DIR:-}
CLI_TLS=()
if [[ -n $TLS_DIR ]]; then
    TLS_DIR=$(cd "$TLS_DIR" && pwd)
    CLI_TLS=(--tls --cacert "$TLS_DIR/ca.pem")
fi

# listen PORT: the config lines that make a node or Sentinel listen on PORT, in the
# clear or, with REDIS_CLUSTER_TLS_DIR, over TLS only.
listen() {
    if [[ -z $TLS_DIR ]]; then
        echo "port $1"
        return
    fi
    cat <<CONF
port 0
tls-port $1
tls-cert-file $TLS_DIR/server.pem
tls-key-file $TLS_DIR/server.key
tls-ca-cert-file $TLS_DIR/ca.pem
tls-auth-clients no
tls-replication yes
CONF
}

cli() { "$CLI" "${CLI_TLS[@]}" "$@"; }

data_port() { echo $((BASE + $1)); }
sentinel_port() { echo $((20000 + BASE + $1)); }

wait_ping() {
    local port=$1 deadline=$((SECONDS + 30))
    until cli -p "$port" ping >/dev/null 2>&1; do
        ((SECONDS < deadline)) || { echo "redis.sh: nothing answers on $port" >&2; exit 1; }
        sleep 0.2
    done
}

start_data() {
    local n=$1 d="$DIR/r$1" extra=""
    mkdir -p "$d"
    [[ $n -gt 1 ]] && extra="replicaof 127.0.0.1 $(data_port 1)"
    cat >"$d/redis.conf" <<CONF
bind 127.0.0.1
$(listen "$(data_port "$n")")
daemonize yes
pidfile $d/pid
logfile $d/log
dir $d
save ""
appendonly no
$extra
CONF
    "$SERVER" "$d/redis.conf"
    wait_ping "$(data_port "$n")"
}

start_sentinel() {
    local n=$1 d="$DIR/s$1"
    mkdir -p "$d"
    cat >"$d/sentinel.conf" <<CONF
bind 127.0.0.1
$(listen "$(sentinel_port "$n")")
daemonize yes
pidfile $d/pid
logfile $d/log
dir $d
sentinel monitor $MASTER 127.0.0.1 $(data_port 1) 2
sentinel down-after-milliseconds $MASTER 1000
sentinel failover-timeout $MASTER 5000
sentinel parallel-syncs $MASTER 1
CONF
    "$SERVER" "$d/sentinel.conf" --sentinel
    wait_ping "$(sentinel_port "$n")"
}

stop_pidfile() {
    local f=$1
    if [[ -f $f ]] && kill -0 "$(<"$f")" 2>/dev/null; then
        local pid
        pid=$(<"$f")
        kill "$pid"
        # Gone before the caller removes DIR.
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
    fi
}

primary_port() {
    cli -p "$(sentinel_port 1)" sentinel get-master-addr-by-name "$MASTER" | sed -n 2p
}

case $CMD in
start)
    start_data 1
    start_data 2
    for n in 1 2 3; do start_sentinel "$n"; done
    echo "redis primary 127.0.0.1:$(data_port 1), replica :$(data_port 2), sentinels :$(sentinel_port 1)..$(sentinel_port 3), master name $MASTER" >&2
    # The value of redis.sentinels.
    scheme=${TLS_DIR:+rediss://}
    echo "${scheme}127.0.0.1:$(sentinel_port 1),${scheme}127.0.0.1:$(sentinel_port 2),${scheme}127.0.0.1:$(sentinel_port 3)"
    ;;
status)
    echo "primary (as the Sentinels say): 127.0.0.1:$(primary_port)"
    for n in 1 2; do
        echo "127.0.0.1:$(data_port "$n"): $(cli -p "$(data_port "$n")" role 2>/dev/null | head -1 || echo down)"
    done
    ;;
primary)
    primary_port
    ;;
kill-primary)
    port=$(primary_port)
    for n in 1 2; do
        if [[ $(data_port "$n") == "$port" ]]; then
            kill -9 "$(<"$DIR/r$n/pid")"
            echo "killed the primary on $port" >&2
        fi
    done
    ;;
stop)
    for f in "$DIR"/s*/pid "$DIR"/r*/pid; do stop_pidfile "$f"; done
    ;;
*) usage ;;
esac
