#!/usr/bin/env bash
# HAProxy (Debian's package) in front of several ingress processes: the load
# balancer of a multi-ingress deployment, for `INGRESS_COUNT=N scripts/run.sh` and
# the multi-node tests. It never touches an HAProxy it did not start.
#
#   scripts/cluster/haproxy.sh start DIR LISTEN BACKEND...  # e.g. 127.0.0.1:8080 127.0.0.1:8081 127.0.0.1:8082
#   scripts/cluster/haproxy.sh stop  DIR
#
# What makes a rolling restart lose nothing:
# - each ingress is health-checked on `/readyz` every 500 ms and taken out after two
#   failures; ingress answers 503 there as soon as it gets SIGTERM and keeps serving
#   for `ingress.drain_delay_ms` before it closes its listener (set it above the
#   1-1.5 s this takes; the run command gives its ingress 3 s), so the balancer has
#   stopped sending it new requests by then;
# - a request that an ingress never answered (the connection refused, or closed
#   before a byte of an answer, as an idle keep-alive connection is when it stops) is
#   sent to another one (`retry-on conn-failure empty-response`, `option redispatch`).
#   A booking carries its `Idempotency-Key`, so even a resend books once.
# The stats page (`/haproxy?stats`, `;csv` for machines) is on the same listener,
# bound to loopback by default like the rest of the run command.
# Its log (one line per request) is DIR/haproxy.log.
set -euo pipefail

usage() {
    echo "usage: $0 start DIR LISTEN BACKEND... | stop DIR" >&2
    exit 2
}
[[ $# -ge 2 ]] || usage
CMD=$1
DIR=$(mkdir -p "$2" && cd "$2" && pwd)
shift 2

HAPROXY=${HAPROXY_BIN:-$(command -v haproxy || echo /usr/sbin/haproxy)}
[[ -x $HAPROXY ]] || {
    echo "haproxy.sh: haproxy not found: apt-get install haproxy (or set HAPROXY_BIN)" >&2
    exit 1
}

running() { [[ -f $DIR/haproxy.pid ]] && kill -0 "$(<"$DIR/haproxy.pid")" 2>/dev/null; }

write_config() {
    local listen=$1
    shift
    # Two descriptors per proxied connection: as many as the process may open.
    local fds maxconn
    fds=$(ulimit -n)
    [[ $fds == unlimited ]] && fds=40000
    maxconn=$(((fds - 64) / 2))
    ((maxconn > 20000)) && maxconn=20000
    cat <<CONF
global
    maxconn $maxconn
    log stdout format raw local0 info

defaults
    mode http
    log global
    option httplog
    option dontlognull
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    timeout http-request 10s
    timeout http-keep-alive 10s
    timeout check 2s
    retries 3
    option redispatch 1
    retry-on conn-failure empty-response

frontend api
    bind $listen
    # The client's address for ingress's rate limits (ingress.trust_forwarded_for
    # takes the first entry): set, not appended, so a client cannot put its own first.
    http-request set-header X-Forwarded-For %[src]
    stats enable
    stats uri /haproxy?stats
    stats refresh 5s
    default_backend ingress

backend ingress
    balance leastconn
    option httpchk GET /readyz
    http-check expect status 200
    default-server check inter 500ms fall 2 rise 2
CONF
    local n=0 backend
    for backend in "$@"; do
        n=$((n + 1))
        echo "    server ingress$n $backend"
    done
}

case $CMD in
start)
    [[ $# -ge 2 ]] || usage
    if running; then
        echo "haproxy already running (pid $(<"$DIR/haproxy.pid"))" >&2
        exit 0
    fi
    write_config "$@" >"$DIR/haproxy.cfg"
    "$HAPROXY" -c -q -f "$DIR/haproxy.cfg"
    # -db: in the foreground (its log on stdout); setsid: it outlives this script.
    setsid "$HAPROXY" -db -f "$DIR/haproxy.cfg" >>"$DIR/haproxy.log" 2>&1 </dev/null &
    echo $! >"$DIR/haproxy.pid"
    listen=$1
    for _ in $(seq 1 50); do
        if bash -c 'exec 3<>"/dev/tcp/${0%:*}/${0##*:}"' "$listen" 2>/dev/null; then
            echo "haproxy on $listen in front of ${*:2} (pid $(<"$DIR/haproxy.pid"), log $DIR/haproxy.log)" >&2
            exit 0
        fi
        running || break
        sleep 0.1
    done
    echo "haproxy.sh: haproxy did not listen on $listen; its log:" >&2
    tail -n 20 "$DIR/haproxy.log" >&2 || true
    exit 1
    ;;
stop)
    if running; then
        pid=$(<"$DIR/haproxy.pid")
        kill "$pid"
        for _ in $(seq 1 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
    fi
    rm -f "$DIR/haproxy.pid"
    ;;
*) usage ;;
esac
