#!/usr/bin/env bash
# A 3-node RabbitMQ cluster of the real server on ports and directories of its own,
# for the multi-node tests and for trying the cluster by hand. It never touches a
# broker it did not start (the shared one on 5672 keeps running).
#
#   scripts/cluster/rabbitmq.sh start  DIR   # start bk1..bk3, join them, print AMQP_URL
#   scripts/cluster/rabbitmq.sh status DIR   # cluster status as bk1 sees it
#   scripts/cluster/rabbitmq.sh stop   DIR   # stop the nodes (and the epmd) it started
#   scripts/cluster/rabbitmq.sh stop-node  DIR N   # stop node N (1..3) gracefully
#   scripts/cluster/rabbitmq.sh kill-node  DIR N   # kill -9 node N's VM
#   scripts/cluster/rabbitmq.sh start-node DIR N   # start node N again (rejoins)
#   scripts/cluster/rabbitmq.sh queues DIR [N]     # queues, leaders, replicas (JSON)
#   scripts/cluster/rabbitmq.sh connections DIR [N]  # client connections, TLS or not (JSON)
#
# Each node: name bkN@localhost, AMQP port BASE+N (BASE from RABBIT_CLUSTER_BASE,
# default 5780, so 5781..5783), distribution port 25780+N, its own mnesia, log and
# config under DIR/bkN, no plugins (no management port). The Erlang cookie is the
# cluster's own (DIR/home/.erlang.cookie, HOME=DIR/home for the servers and the CLI),
# and the nodes register with an epmd of their own (ERL_EPMD_PORT, default 4380), so
# nothing is shared with the system's broker. The last line of `start` is the
# comma-separated URL list for `amqp.url`.
#
# RABBIT_CLUSTER_TLS_DIR=DIR (a folder with ca.pem, server.pem and server.key): the
# nodes take AMQP over TLS only (`listeners.tcp = none`, `listeners.ssl`), clients are
# not asked for a certificate, and the printed URLs are `amqps://` with
# `cacertfile=DIR/ca.pem` (the query parameter RabbitMQ's clients take). The nodes'
# own traffic to each other (Erlang distribution, here on 127.0.0.1) stays as it is.
set -euo pipefail

usage() {
    echo "usage: $0 start|stop|status DIR | stop-node|kill-node|start-node DIR N" >&2
    exit 2
}
[[ $# -ge 2 ]] || usage
CMD=$1
DIR=$(mkdir -p "$2" && cd "$2" && pwd)
BASE=${RABBIT_CLUSTER_BASE:-5780}
NODES=${RABBIT_CLUSTER_NODES:-3}
RMQ_BIN=${RABBITMQ_BIN:-/usr/lib/rabbitmq/bin}
WAIT=${RABBIT_CLUSTER_WAIT:-120}

[[ -x $RMQ_BIN/rabbitmq-server ]] || {
    echo "rabbitmq.sh: $RMQ_BIN/rabbitmq-server not found: apt-get install rabbitmq-server (or set RABBITMQ_BIN)" >&2
    exit 1
}

export HOME="$DIR/home"
export ERL_EPMD_PORT=${RABBIT_CLUSTER_EPMD_PORT:-4380}
export ERL_EPMD_ADDRESS=127.0.0.1
mkdir -p "$HOME"
if [[ ! -f $HOME/.erlang.cookie ]]; then
    head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$HOME/.erlang.cookie"
    chmod 400 "$HOME/.erlang.cookie"
fi

TLS_DIR=${RABBIT_CLUSTER_TLS_DIR:-}
[[ -z $TLS_DIR ]] || TLS_DIR=$(cd "$TLS_DIR" && pwd)

node_name() { echo "bk$1@localhost"; }
amqp_port() { echo $((BASE + $1)); }

# node_env N: the environment of node N (server and CLI alike).
node_env() {
    local n=$1 d="$DIR/bk$1"
    mkdir -p "$d/mnesia" "$d/log"
    # An env file of our own, so /etc/rabbitmq/rabbitmq-env.conf (the system node's
    # name) is not read.
    : >"$d/rabbitmq-env.conf"
    echo "[]." >"$d/enabled_plugins"
    if [[ -z $TLS_DIR ]]; then
        echo "listeners.tcp.1 = 127.0.0.1:$(amqp_port "$n")" >"$d/rabbitmq.conf"
    else
        cat >"$d/rabbitmq.conf" <<CONF
listeners.tcp = none
listeners.ssl.1 = 127.0.0.1:$(amqp_port "$n")
ssl_options.cacertfile = $TLS_DIR/ca.pem
ssl_options.certfile = $TLS_DIR/server.pem
ssl_options.keyfile = $TLS_DIR/server.key
ssl_options.verify = verify_none
ssl_options.fail_if_no_peer_cert = false
CONF
    fi
    cat >>"$d/rabbitmq.conf" <<CONF
loopback_users = none
disk_free_limit.absolute = 50MB
log.file.level = info
log.console = false
CONF
    export RABBITMQ_CONF_ENV_FILE="$d/rabbitmq-env.conf"
    export RABBITMQ_NODENAME=$(node_name "$n")
    if [[ -z $TLS_DIR ]]; then
        export RABBITMQ_NODE_PORT=$(amqp_port "$n")
    fi
    export RABBITMQ_DIST_PORT=$((20000 + BASE + n))
    export RABBITMQ_MNESIA_BASE="$d/mnesia"
    export RABBITMQ_LOG_BASE="$d/log"
    export RABBITMQ_PID_FILE="$d/pid"
    export RABBITMQ_CONFIG_FILE="$d/rabbitmq.conf"
    export RABBITMQ_ENABLED_PLUGINS_FILE="$d/enabled_plugins"
    export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
    export RABBITMQ_CTL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
}

ctl() {
    local n=$1
    shift
    (node_env "$n" && "$RMQ_BIN/rabbitmqctl" -n "$(node_name "$n")" "$@")
}

running() { [[ -f $DIR/bk$1/pid ]] && kill -0 "$(<"$DIR/bk$1/pid")" 2>/dev/null; }

start_node() {
    local n=$1
    if running "$n"; then
        echo "bk$n already running (pid $(<"$DIR/bk$n/pid"))" >&2
        return 0
    fi
    (
        node_env "$n"
        # setsid: the node outlives this script and the caller's process group.
        setsid "$RMQ_BIN/rabbitmq-server" >"$DIR/bk$n/log/stdout.log" 2>&1 </dev/null &
    )
    local deadline=$((SECONDS + WAIT))
    until ctl "$n" await_startup --timeout 5 >/dev/null 2>&1; do
        if ((SECONDS > deadline)); then
            echo "rabbitmq.sh: bk$n did not start within ${WAIT}s; its log:" >&2
            tail -n 30 "$DIR/bk$n/log/stdout.log" >&2 || true
            exit 1
        fi
        sleep 1
    done
    echo "bk$n up on 127.0.0.1:$(amqp_port "$n") (pid $(<"$DIR/bk$n/pid"))" >&2
}

urls() {
    local out=() n
    for ((n = 1; n <= NODES; n++)); do
        if [[ -z $TLS_DIR ]]; then
            out+=("amqp://guest:guest@127.0.0.1:$(amqp_port "$n")/%2f")
        else
            out+=("amqps://guest:guest@127.0.0.1:$(amqp_port "$n")/%2f?cacertfile=$TLS_DIR/ca.pem")
        fi
    done
    (IFS=,; echo "${out[*]}")
}

case $CMD in
start)
    for ((n = 1; n <= NODES; n++)); do
        start_node "$n"
    done
    for ((n = 2; n <= NODES; n++)); do
        if ! ctl "$n" cluster_status --formatter json 2>/dev/null | grep -q "$(node_name 1)"; then
            ctl "$n" stop_app >/dev/null
            ctl "$n" join_cluster "$(node_name 1)" >/dev/null
            ctl "$n" start_app >/dev/null
            echo "bk$n joined bk1" >&2
        fi
    done
    urls
    ;;
start-node)
    [[ $# -eq 3 ]] || usage
    start_node "$3"
    ;;
stop-node)
    [[ $# -eq 3 ]] || usage
    # With the pid file, rabbitmqctl returns once the VM has exited.
    ctl "$3" stop "$DIR/bk$3/pid" >/dev/null
    echo "bk$3 stopped" >&2
    ;;
kill-node)
    [[ $# -eq 3 ]] || usage
    running "$3" && kill -9 "$(<"$DIR/bk$3/pid")"
    echo "bk$3 killed" >&2
    ;;
status)
    ctl 1 cluster_status
    ;;
queues)
    # JSON: every queue with its leader, replicas, the replicas running and consumer
    # count, as node N (default 1) sees them.
    ctl "${3:-1}" list_queues name leader members online consumers --formatter json --quiet
    ;;
connections)
    # JSON: every client connection (name, TLS or not), as node N (default 1) sees them.
    ctl "${3:-1}" list_connections name ssl --formatter json --quiet
    ;;
stop)
    for ((n = NODES; n >= 1; n--)); do
        if running "$n"; then
            ctl "$n" stop "$DIR/bk$n/pid" >/dev/null 2>&1 || kill -9 "$(<"$DIR/bk$n/pid")" 2>/dev/null || true
        fi
    done
    # The epmd on our own port was started by our nodes.
    /usr/lib/erlang/bin/epmd -port "$ERL_EPMD_PORT" -kill >/dev/null 2>&1 || true
    ;;
*) usage ;;
esac
