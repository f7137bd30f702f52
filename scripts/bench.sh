#!/usr/bin/env bash
# The benchmark of BENCHMARKS.md: release `workers` and `ingress` against local
# PostgreSQL, RabbitMQ and Redis, driven by `loadgen` in two scenarios:
#
#   hot   10,000 POST /v1/bookings on one 500-seat show, 10,000 in flight
#   many  10,000 POST /v1/bookings spread over 1,000 shows of 50 seats
#   ceiling the bare limits of the box in the same run (loadgen/src/ceiling.rs):
#         REQUESTS GET /healthz on ingress at HOT_CONCURRENCY, then REQUESTS persistent
#         messages with confirms through one quorum queue drained in acked batches
#   paid  as `many`, every booking paid with `pm_card_ok` through the bundled local
#         gateway (signed webhooks, saga): adds submit->confirmed and confirmed/s
#   reads (not in the default list) the large catalog (`bookctl seed --catalog
#         large`: 500 movies, ~47,000 shows, 800 screens); READ_CLIENTS (200) clients
#         search movies and read seat maps for READ_SECS (30), once back to back
#         (saturation) and once with READ_THINK_MS (100) between a client's requests
#   reports (not in the default list) the sales reports over a year: `reports` (a
#         binary of loadgen) seeds REPORT_FORTNIGHTS (1: the large catalog, ~47,000
#         shows; 26: a year of shows) two-week schedules of the large catalog and
#         ~24 bookings per show in every final state with their payments, checks the
#         sales rollup against them, and prints p50/p99 of REPORT_ROUNDS (30)
#         requests of each report (platform-wide by day, show, event, theater; one
#         theater's), one at a time
#
#   scripts/bench.sh
#
# It uses its own database (booking_bench, dropped and re-created each run), AMQP
# prefix `bench.` and Redis prefix `bench:`, so it never touches the dev stack. The
# services are restarted before each scenario so that each one's peak memory is its own.
#
# Knobs (environment): CARGO_TARGET_DIR (default target), REQUESTS (10000),
# HOT_CONCURRENCY (10000), MANY_CONCURRENCY (10000), HOT_SEATS (500), SHOWS (1000),
# SCENARIOS ("ceiling hot many paid"; extras: hot-paced, many-primed), PACED_RATE (3000 requests/s
# for hot-paced), COOLDOWN_SECS (5, pause before each scenario), QUIET_WAIT_SECS
# (300) and QUIET_BUSY_PERCENT (15): how long to wait for an idle machine, SKIP_BUILD=1, LOADGEN_ARGS (extra loadgen flags, e.g.
# "--poll-ms 200"), INGRESS_ENV / WORKERS_ENV / GATEWAY_ENV (extra environment of one process only,
# e.g. INGRESS_ENV="MALLOC_ARENA_MAX=2"), and any APP__* setting of the services
# (e.g. APP__WORKERS__BATCH_SIZE_MAX=1000), INGRESS_BIN and WORKERS_BIN (another
# ingress or workers binary, to compare two builds side by side in alternating runs).
set -euo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO_ROOT"

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target}
BIN=$CARGO_TARGET_DIR/release
REQUESTS=${REQUESTS:-10000}
HOT_CONCURRENCY=${HOT_CONCURRENCY:-10000}
MANY_CONCURRENCY=${MANY_CONCURRENCY:-10000}
HOT_SEATS=${HOT_SEATS:-500}
SHOWS=${SHOWS:-1000}
SCENARIOS=${SCENARIOS:-"ceiling hot many paid"}
PACED_RATE=${PACED_RATE:-3000}

# The shipped development secrets (config/development.toml): a local benchmark only.
export APP_ENV=development
export APP__AMQP__PREFIX=bench.
export APP__REDIS__KEY_PREFIX=bench:
export APP__TELEMETRY__FILTER=${APP__TELEMETRY__FILTER:-warn}
export APP__INGRESS__LISTEN=127.0.0.1:18080
export APP__INGRESS__METRICS_LISTEN=127.0.0.1:19102
export APP__WORKERS__METRICS_LISTEN=127.0.0.1:19101
# The bundled local payment gateway, its webhooks to the bench ingress.
export APP__PAYMENTS__GATEWAY_URL=http://127.0.0.1:18090
export GATEWAY_LISTEN=127.0.0.1:18090
export GATEWAY_WEBHOOK_URL=http://127.0.0.1:18080/v1/payments/webhook
# Emails are not part of what is measured here.
export APP__NOTIFIER__ENABLED=false
BASE_URL=http://$APP__INGRESS__LISTEN
RUN_DIR=$REPO_ROOT/.run
mkdir -p "$RUN_DIR"

log() { echo "bench.sh: $*" >&2; }

# --- stores and binaries -------------------------------------------------------

scripts/services.sh ensure
# The login scripts/services.sh chose for the run and test commands, when there is one
# (services.sh writes it unless DATABASE_URL is set).
PG_BASE=$(cat "$REPO_ROOT/.run/database-url" 2>/dev/null || echo postgres://postgres:postgres@127.0.0.1:5432)
PG_ADMIN_URL=${BENCH_PG_ADMIN_URL:-$PG_BASE/postgres}
# Plain TCP on loopback, as the figures in BENCHMARKS.md were measured (sqlx now
# speaks TLS, and Debian's server offers it: `sslmode=prefer` would add the cipher).
export APP__DATABASE__URL=${BENCH_DATABASE_URL:-$PG_BASE/booking_bench?sslmode=disable}
BENCH_DB=${APP__DATABASE__URL##*/}
BENCH_DB=${BENCH_DB%%\?*}

if [[ ${SKIP_BUILD:-0} != 1 ]]; then
    log "building release binaries into $CARGO_TARGET_DIR"
    cargo build --release -p loadgen -p ingress -p workers -p bookctl -p local-gateway
fi

# Many sockets: one per in-flight request on each side, plus the stores.
ulimit -n 65535 2>/dev/null || ulimit -n "$(ulimit -Hn)"
log "open files limit: $(ulimit -n)"

# --- a clean slate -------------------------------------------------------------

log "re-creating database $BENCH_DB"
psql -q "$PG_ADMIN_URL" -v ON_ERROR_STOP=1 \
    -c "drop database if exists \"$BENCH_DB\" with (force)"
"$BIN/bookctl" migrate

# Leftover queues of an earlier run: their messages would be decided against the new
# database, and a queue declared with older arguments (delivery limit) would refuse
# the services' declaration. Delete them; the services declare them afresh.
if command -v rabbitmqctl >/dev/null 2>&1; then
    # (stdin from /dev/null: rabbitmqctl would otherwise eat the rest of the list)
    rabbitmqctl -q list_queues name </dev/null |
        awk -v p="$APP__AMQP__PREFIX" 'index($1, p) == 1 { print $1 }' |
        while read -r q; do
            rabbitmqctl -q delete_queue "$q" </dev/null >/dev/null
        done
fi
if command -v redis-cli >/dev/null 2>&1; then
    redis-cli --scan --pattern "${APP__REDIS__KEY_PREFIX}*" | xargs -r -n 500 redis-cli del >/dev/null
fi

# --- the services under test ----------------------------------------------------

WORKERS_PID=
INGRESS_PID=
GATEWAY_PID=

stop_one() {
    local pid=$1
    [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 150); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    log "pid $pid did not stop in 15 s; killing it"
    kill -KILL "$pid" 2>/dev/null || true
}

stop_services() {
    stop_one "$INGRESS_PID"
    stop_one "$WORKERS_PID"
    stop_one "$GATEWAY_PID"
    INGRESS_PID=
    WORKERS_PID=
    GATEWAY_PID=
}
trap stop_services EXIT

start_services() {
    local tag=$1
    # The gateway logs at the services' level (it logged every intent and webhook at
    # info before, a cost of the stand-in, not of the system); GATEWAY_ENV overrides.
    # shellcheck disable=SC2086
    env RUST_LOG="$APP__TELEMETRY__FILTER" ${GATEWAY_ENV:-} "$BIN/gateway" >"$RUN_DIR/bench-gateway-$tag.log" 2>&1 &
    GATEWAY_PID=$!
    # shellcheck disable=SC2086 # word splitting of the *_ENV knobs is wanted
    env ${WORKERS_ENV:-} "${WORKERS_BIN:-$BIN/workers}" >"$RUN_DIR/bench-workers-$tag.log" 2>&1 &
    WORKERS_PID=$!
    # shellcheck disable=SC2086
    env ${SCENARIO_ENV:-} ${INGRESS_ENV:-} "${INGRESS_BIN:-$BIN/ingress}" >"$RUN_DIR/bench-ingress-$tag.log" 2>&1 &
    INGRESS_PID=$!
    for _ in $(seq 1 600); do
        if curl -fsS -o /dev/null "$BASE_URL/readyz" 2>/dev/null; then
            log "ingress ($INGRESS_PID) and workers ($WORKERS_PID) up for $tag"
            return 0
        fi
        kill -0 "$INGRESS_PID" 2>/dev/null || { tail -n 20 "$RUN_DIR/bench-ingress-$tag.log" >&2; exit 1; }
        kill -0 "$WORKERS_PID" 2>/dev/null || { tail -n 20 "$RUN_DIR/bench-workers-$tag.log" >&2; exit 1; }
        sleep 0.1
    done
    log "ingress did not become ready in 60 s"
    exit 1
}

# PERF_DATA=<prefix>: a system-wide `perf record` (PERF_FREQ samples/s, 299) from
# loadgen's warm-up to its end, into <prefix>-<tag>.data; see BENCHMARKS.md for how
# it is read (per process with `perf report --sort comm`).
PERF_PID=
perf_start() {
    local tag=$1 log=$2
    [[ -n ${PERF_DATA:-} ]] || return 0
    local ctl=$RUN_DIR/perf-ctl-$tag
    rm -f "$ctl" && mkfifo "$ctl"
    perf record -a -F "${PERF_FREQ:-299}" ${PERF_ARGS:-} -D -1 --control "fifo:$ctl" \
        -o "$PERF_DATA-$tag.data" >"$RUN_DIR/perf-$tag.log" 2>&1 &
    PERF_PID=$!
    # The clock starts when loadgen has held its connections (and primed, if asked).
    (
        for _ in $(seq 1 3000); do
            grep -q '^warm-up:' "$log" 2>/dev/null && break
            sleep 0.1
        done
        echo enable >"$ctl"
    ) &
}
perf_stop() {
    [[ -n $PERF_PID ]] || return 0
    kill -INT "$PERF_PID" 2>/dev/null || true
    wait "$PERF_PID" 2>/dev/null || true
    PERF_PID=
}

# pg_counters: the bench database's committed and rolled back transactions and rows
# written so far, and the server's WAL position.
pg_counters() {
    psql -At -F ' ' "$APP__DATABASE__URL" -c "select xact_commit + xact_rollback,
        tup_inserted + tup_updated + tup_deleted, pg_current_wal_lsn()
        from pg_stat_database where datname = current_database()"
}

# pg_cost BEFORE: what the scenario cost PostgreSQL since BEFORE (pg_counters, taken
# when loadgen's warm-up ended, as perf's clock), per request (the statistics are
# flushed within a second of a backend going idle).
pg_cost() {
    local before=$1 x0 r0 l0 x1 r1 l1 wal
    sleep 1.5
    read -r x0 r0 l0 <<<"$before"
    read -r x1 r1 l1 <<<"$(pg_counters)"
    wal=$(psql -At "$APP__DATABASE__URL" -c "select pg_wal_lsn_diff('$l1', '$l0')")
    awk -v x=$((x1 - x0)) -v r=$((r1 - r0)) -v w="$wal" -v n="$REQUESTS" 'BEGIN {
        printf "postgres: %d transactions, %d rows written, %.1f MB of WAL; per request: %.2f transactions, %.1f rows, %.0f bytes of WAL\n",
            x, r, w / 1048576, x / n, r / n, w / n }'
}

run_loadgen() {
    local scenario=$1
    shift
    local tag=${CURRENT_TAG:-$scenario}
    local log=$RUN_DIR/bench-loadgen-$tag.log pg_mark=$RUN_DIR/pg-before-$tag
    : >"$log"
    pg_counters >"$pg_mark"
    (
        for _ in $(seq 1 3000); do
            grep -q '^warm-up:' "$log" 2>/dev/null && break
            sleep 0.1
        done
        pg_counters >"$pg_mark.new" && mv "$pg_mark.new" "$pg_mark"
    ) &
    local pg_watch=$!
    perf_start "$tag" "$log"
    # Operator accounts: exempt from the rate limits (rate_limit.exempt_roles), which
    # would otherwise answer most of 10,000 requests from 200 users with 429.
    "$BIN/loadgen" --base-url "$BASE_URL" --scenario "$scenario" --requests "$REQUESTS" --role operator \
        --pid "ingress=$INGRESS_PID" --pid "workers=$WORKERS_PID" --pid "gateway=$GATEWAY_PID" \
        --pids-of postgres,beam.smp,redis-server \
        --metrics-url "http://$APP__INGRESS__METRICS_LISTEN/metrics,http://$APP__WORKERS__METRICS_LISTEN/metrics" \
        "$@" ${LOADGEN_ARGS:-} 2>&1 | tee "$RUN_DIR/bench-loadgen-$tag.log"
    local rc=${PIPESTATUS[0]}
    perf_stop
    kill "$pg_watch" 2>/dev/null || true
    wait "$pg_watch" 2>/dev/null || true
    pg_cost "$(<"$pg_mark")" | tee -a "$log"
    return "$rc"
}

echo "== bench: $(date -u +%FT%TZ), $(nproc) cores, commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
status=0
# busy_percent: CPU busy share of the whole machine over the next 2 seconds.
busy_percent() {
    local a b
    read -r _ a1 a2 a3 a4 a5 a6 a7 a8 _ </proc/stat
    sleep 2
    read -r _ b1 b2 b3 b4 b5 b6 b7 b8 _ </proc/stat
    a=$((a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8))
    b=$((b1 + b2 + b3 + b4 + b5 + b6 + b7 + b8))
    echo $((100 - 100 * ((b4 + b5) - (a4 + a5)) / (b - a)))
}

# Other work on this machine (a compiler, a test suite) skews every figure: wait up to
# QUIET_WAIT_SECS for the CPUs to be idle, then go on anyway and say so (loadgen
# also reports the CPU time of everything else during the run).
wait_quiet() {
    local deadline=$((SECONDS + ${QUIET_WAIT_SECS:-300})) busy
    while true; do
        busy=$(busy_percent)
        ((busy <= ${QUIET_BUSY_PERCENT:-15})) && return 0
        if ((SECONDS >= deadline)); then
            log "machine still ${busy}% busy after ${QUIET_WAIT_SECS:-300} s; running anyway"
            return 0
        fi
        log "machine ${busy}% busy; waiting for it to be quiet"
        sleep 3
    done
}

for scenario in $SCENARIOS; do
    CURRENT_TAG=$scenario
    # Start each scenario from a quiet machine: flush dirty pages now rather than in
    # the middle of the run, and let the previous run's stragglers settle.
    psql -q "$APP__DATABASE__URL" -c checkpoint
    sleep "${COOLDOWN_SECS:-5}"
    wait_quiet
    # The reports are requested back to back by one admin: past the per-user budget.
    case $scenario in
        reports) SCENARIO_ENV=APP__RATE_LIMIT__PER_MINUTE__DEFAULT=1000000 ;;
        *) SCENARIO_ENV= ;;
    esac
    start_services "$scenario"
    case $scenario in
        ceiling) run_loadgen ceiling --concurrency "$HOT_CONCURRENCY" || status=$? ;;
        hot) run_loadgen hot --concurrency "$HOT_CONCURRENCY" --seats "$HOT_SEATS" || status=$? ;;
        many) run_loadgen many --concurrency "$MANY_CONCURRENCY" --shows "$SHOWS" || status=$? ;;
        paid) run_loadgen many --concurrency "$MANY_CONCURRENCY" --shows "$SHOWS" --payment-method pm_card_ok || status=$? ;;
        # Extras (not in the default list): the hot show at a steady arrival rate over
        # the same 10,000 open connections, and `many` with every show already loaded.
        hot-paced) run_loadgen hot --concurrency "$HOT_CONCURRENCY" --seats "$HOT_SEATS" --rate "$PACED_RATE" || status=$? ;;
        many-primed) run_loadgen many --concurrency "$MANY_CONCURRENCY" --shows "$SHOWS" --prime || status=$? ;;
        reads)
            "$BIN/bookctl" seed --catalog large
            psql -q "$APP__DATABASE__URL" -c "vacuum analyze"
            for think in 0 "${READ_THINK_MS:-100}"; do
                "$BIN/reads" --base-url "$BASE_URL" --concurrency "${READ_CLIENTS:-200}" \
                    --duration-secs "${READ_SECS:-30}" --think-ms "$think" 2>&1 |
                    tee "$RUN_DIR/bench-reads-think$think.log" || status=$?
            done
            ;;
        reports)
            "$BIN/reports" --base-url "$BASE_URL" --fortnights "${REPORT_FORTNIGHTS:-1}" \
                --rounds "${REPORT_ROUNDS:-30}" 2>&1 | tee "$RUN_DIR/bench-reports.log" || status=$?
            ;;
        *) log "unknown scenario $scenario"; status=2 ;;
    esac
    stop_services
done
exit "$status"
