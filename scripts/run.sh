#!/usr/bin/env bash
# The run command: services checked (started or installed if needed), release build,
# schema migrated, broker topology declared, demo data and a small catalog seeded,
# workers and ingress started, URL and a ready-to-paste curl printed. Runs in the
# foreground; Ctrl-C stops every process it started. Logs go to .run/*.log.
# The services it started (none if they were running) stay running after Ctrl-C;
# `scripts/run.sh --stop-services` stops them, and only them.
#
# Several processes, as a deployment runs them (see docs/cluster.md):
#   INGRESS_COUNT=N  N ingress on the next N ports after APP__INGRESS__LISTEN's,
#                    behind HAProxy on APP__INGRESS__LISTEN (scripts/cluster/haproxy.sh;
#                    Debian's haproxy, installed if missing), health-checked on /readyz
#   WORKERS_COUNT=M  M workers processes sharing the partitions (each partition is
#                    active on one, standby on the others: `bookctl partitions`)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
RUN_DIR="$ROOT/.run"
mkdir -p "$RUN_DIR"
if [[ ${1:-} == --stop-services ]]; then
    exec scripts/services.sh stop-started
fi

scripts/services.sh ensure

echo "building (release; the first build takes several minutes)..."
cargo build --release --locked --bin ingress --bin workers --bin bookctl --bin gateway --bin smtp-sink --bin sms-sink --bin oidc-provider
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release"

# A developer machine: the shipped development secrets (config/development.toml) are
# used and accepted. Never run a deployment with APP_ENV=development.
export APP_ENV=development
# services.sh wrote the login to use (see there) unless DATABASE_URL is set.
export APP__DATABASE__URL="${APP__DATABASE__URL:-${DATABASE_URL:-$(<"$RUN_DIR/database-url")/booking}}"
export APP__INGRESS__LISTEN="${APP__INGRESS__LISTEN:-127.0.0.1:8080}"
LISTEN="$APP__INGRESS__LISTEN"
URL="http://${LISTEN/0.0.0.0/127.0.0.1}"

if curl -fsS -o /dev/null "$URL/healthz" 2>/dev/null; then
    echo "something already answers on $URL: stop it (a previous run?) or set APP__INGRESS__LISTEN" >&2
    exit 1
fi

"$BIN/bookctl" migrate
"$BIN/bookctl" topology
# The demo show and logins, and a small generated catalog (a few cities, theaters
# and movies, three days of shows) to browse.
"$BIN/bookctl" seed --demo --catalog small > "$RUN_DIR/seed.txt"

INGRESS_COUNT=${INGRESS_COUNT:-1}
WORKERS_COUNT=${WORKERS_COUNT:-1}
[[ $INGRESS_COUNT =~ ^[1-9][0-9]*$ && $WORKERS_COUNT =~ ^[1-9][0-9]*$ ]] ||
    { echo "INGRESS_COUNT and WORKERS_COUNT are counts (1 or more)" >&2; exit 2; }
if ((INGRESS_COUNT > 1)) && ! command -v haproxy >/dev/null && [[ ! -x /usr/sbin/haproxy ]]; then
    echo "installing haproxy (Debian package) for INGRESS_COUNT=$INGRESS_COUNT..."
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq haproxy
fi

PIDS=()
cleanup() {
    trap - INT TERM EXIT
    if ((${#PIDS[@]})); then
        echo "stopping..."
        kill -TERM "${PIDS[@]}" 2>/dev/null || true
        wait "${PIDS[@]}" 2>/dev/null || true
        if ((INGRESS_COUNT > 1)); then scripts/cluster/haproxy.sh stop "$RUN_DIR/haproxy"; fi
        if [[ -s $RUN_DIR/services-started ]]; then
            echo "left running (started by this command): $(paste -sd' ' "$RUN_DIR/services-started"); scripts/run.sh --stop-services stops them"
        fi
    fi
}
trap 'cleanup; exit 0' INT TERM
trap cleanup EXIT

# The bundled local payment gateway (a stand-in for a real provider: real HTTP,
# signed webhooks to ingress). Point APP__PAYMENTS__GATEWAY_URL elsewhere for another.
export GATEWAY_LISTEN="${GATEWAY_LISTEN:-127.0.0.1:8090}"
export GATEWAY_WEBHOOK_URL="${GATEWAY_WEBHOOK_URL:-$URL/v1/payments/webhook}"
"$BIN/gateway" >> "$RUN_DIR/gateway.log" 2>&1 &
PIDS+=($!)
# The bundled local SMTP sink: every email the notifier sends lands in .run/mail/
# as a .eml file. Point APP__NOTIFIER__SMTP_HOST/_PORT at a real server for another.
export SMTP_SINK_LISTEN="${SMTP_SINK_LISTEN:-127.0.0.1:2525}"
export SMTP_SINK_DIR="${SMTP_SINK_DIR:-$RUN_DIR/mail}"
export APP__NOTIFIER__SMTP_PORT="${APP__NOTIFIER__SMTP_PORT:-${SMTP_SINK_LISTEN##*:}}"
"$BIN/smtp-sink" >> "$RUN_DIR/smtp-sink.log" 2>&1 &
PIDS+=($!)
# The bundled local SMS provider (Twilio's Messages API shape): booking SMS and phone
# verification codes land in .run/sms/ as .json files. Point APP__NOTIFIER__SMS_URL
# (and _SMS_ACCOUNT_SID, _SMS_AUTH_TOKEN, _SMS_FROM) at a real provider for another.
export SMS_SINK_LISTEN="${SMS_SINK_LISTEN:-127.0.0.1:8093}"
export SMS_SINK_DIR="${SMS_SINK_DIR:-$RUN_DIR/sms}"
export APP__NOTIFIER__SMS_URL="${APP__NOTIFIER__SMS_URL:-http://$SMS_SINK_LISTEN}"
"$BIN/sms-sink" >> "$RUN_DIR/sms-sink.log" 2>&1 &
PIDS+=($!)
# The bundled local OpenID provider (a stand-in for Google and the like: discovery,
# authorize, token with PKCE, JWKS, signed ID tokens): the sign-in page's "Sign in
# with Local ID". It signs in without asking, as the address you give it (login_hint)
# or asha.oidc@example.com. Configure APP__AUTH__OIDC_PROVIDERS__<NAME>__* for others.
export OIDC_LISTEN="${OIDC_LISTEN:-127.0.0.1:8092}"
export APP__AUTH__OIDC_PROVIDERS__LOCAL__ISSUER="${APP__AUTH__OIDC_PROVIDERS__LOCAL__ISSUER:-http://$OIDC_LISTEN}"
export OIDC_REDIRECT_URIS="${OIDC_REDIRECT_URIS:-$URL/v1/auth/oidc/local/callback}"
export APP__INGRESS__PUBLIC_BASE_URL="${APP__INGRESS__PUBLIC_BASE_URL:-$URL}"
"$BIN/oidc-provider" >> "$RUN_DIR/oidc-provider.log" 2>&1 &
PIDS+=($!)
# The first workers and ingress keep the metrics ports; more get free ones (in
# their logs: "metrics on").
for ((i = 1; i <= WORKERS_COUNT; i++)); do
    if ((i == 1)); then log=workers.log; else log=workers$i.log; fi
    if ((i > 1)); then export APP__WORKERS__METRICS_LISTEN=127.0.0.1:0; fi
    "$BIN/workers" >> "$RUN_DIR/$log" 2>&1 &
    PIDS+=($!)
done
unset APP__WORKERS__METRICS_LISTEN
if ((INGRESS_COUNT == 1)); then
    "$BIN/ingress" >> "$RUN_DIR/ingress.log" 2>&1 &
    PIDS+=($!)
else
    # Behind HAProxy: /readyz turns 503 for 3 s after SIGTERM while requests are still
    # served, so the balancer (checks every 500 ms, out after two failures) stops
    # sending before the listener closes; the client address comes from the
    # X-Forwarded-For HAProxy sets.
    export APP__INGRESS__DRAIN_DELAY_MS="${APP__INGRESS__DRAIN_DELAY_MS:-3000}"
    export APP__RATE_LIMIT__TRUST_FORWARDED_FOR=true
    HOST=127.0.0.1 PORT=${LISTEN##*:} BACKENDS=()
    for ((i = 1; i <= INGRESS_COUNT; i++)); do
        BACKENDS+=("$HOST:$((PORT + i))")
        APP__INGRESS__LISTEN="$HOST:$((PORT + i))" \
            APP__INGRESS__METRICS_LISTEN="$([[ $i == 1 ]] && echo "${APP__INGRESS__METRICS_LISTEN:-127.0.0.1:9102}" || echo 127.0.0.1:0)" \
            "$BIN/ingress" >> "$RUN_DIR/ingress$i.log" 2>&1 &
        PIDS+=($!)
    done
    scripts/cluster/haproxy.sh start "$RUN_DIR/haproxy" "$LISTEN" "${BACKENDS[@]}"
fi

for _ in $(seq 1 120); do
    if curl -fsS -o /dev/null "$URL/readyz" 2>/dev/null; then break; fi
    for pid in "${PIDS[@]}"; do
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "a process exited during startup; see $RUN_DIR/workers*.log and $RUN_DIR/ingress*.log" >&2
            exit 1
        fi
    done
    sleep 0.5
done
curl -fsS -o /dev/null "$URL/readyz" || { echo "ingress did not become ready; see $RUN_DIR/ingress*.log" >&2; exit 1; }

SHOW=$(sed -n 's/^demo show: //p' "$RUN_DIR/seed.txt")
CONCERT=$(sed -n 's/^demo concert[^:]*: //p' "$RUN_DIR/seed.txt")
TOKEN=$(sed -n 's/^customer token: //p' "$RUN_DIR/seed.txt")
cat <<MSG

The booking platform is up: $URL
  web app: $URL/   (the demo city: $URL/?city=Mumbai; pay with the test card "Visa ending 4242")
  demo concert (200 seats and a 500-place standing floor): $URL/shows/$CONCERT
  health: $URL/healthz   readiness: $URL/readyz   metrics: http://${APP__INGRESS__METRICS_LISTEN:-127.0.0.1:9102}/metrics
  API docs: $URL/docs   (OpenAPI document: $URL/v1/openapi.json)
  logs:   $RUN_DIR/ingress*.log  $RUN_DIR/workers*.log  $RUN_DIR/gateway.log
  processes: $INGRESS_COUNT ingress$( ((INGRESS_COUNT > 1)) && echo " behind HAProxy (stats: $URL/haproxy?stats)"), $WORKERS_COUNT workers
  payment gateway (local stand-in): http://$GATEWAY_LISTEN
  emails (local SMTP sink):         $SMTP_SINK_DIR/*.eml
  SMS (local SMS provider):         $SMS_SINK_DIR/*.json   (http://$SMS_SINK_LISTEN)
  OpenID provider (local stand-in): http://$OIDC_LISTEN   ("Sign in with Local ID" on $URL/account)
$(grep '^login:' "$RUN_DIR/seed.txt" | sed 's/^/  /')
$(grep '^catalog' "$RUN_DIR/seed.txt" | sed 's/^/  /')

Book and pay the two best seats still free in the demo show (then poll the status URL it returns;
it goes queued -> held -> payment_pending -> confirmed in a moment):

curl -s -X POST $URL/v1/bookings \\
  -H 'Authorization: Bearer $TOKEN' \\
  -H "Idempotency-Key: \$(date +%s%N)" \\
  -H 'Content-Type: application/json' \\
  -d '{"show_id":"$SHOW","quantity":2,"payment_method":"pm_card_ok"}'

curl -s $URL/v1/bookings/<booking_id> -H 'Authorization: Bearer $TOKEN'

Or three places on the demo concert's standing floor with seat A1 (general admission):
  ... -d '{"show_id":"$CONCERT","zone":"floor","quantity":3,"seats":["A1"]}'

Once confirmed, the email with the e-ticket is in $SMTP_SINK_DIR (newest last):
  ls $SMTP_SINK_DIR
and the ticket itself: curl -s $URL/v1/bookings/<booking_id>/ticket -H 'Authorization: Bearer $TOKEN'

Press Ctrl-C to stop.
MSG

wait -n "${PIDS[@]}" || true
echo "a process exited; see $RUN_DIR/*.log" >&2
exit 1
