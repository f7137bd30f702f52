#!/usr/bin/env bash
# The test command: makes sure PostgreSQL, RabbitMQ and Redis answer (starting or
# installing them if needed), then runs every test of the workspace against them.
# Extra arguments go to `cargo test` (e.g. scripts/test.sh -p sequencer).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/services.sh ensure
# What some tests need besides the services, from Debian's packages when missing:
# the browser tests (tests/tests/browser) drive headless Chromium through
# chromedriver (never a browser downloaded by a tool), and the manifests test
# installs `kubernetes-validate` into a Python virtualenv (python3-venv; a fresh
# Debian has python3 without `ensurepip`), the multi-ingress test puts HAProxy in
# front of two ingress (tests/tests/cluster/balancer.rs), and the failover test runs
# PostgreSQL under Patroni with etcd (tests/tests/cluster/failover.rs).
missing=()
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
    missing+=(chromium chromium-driver)
fi
if ! python3 -c 'import ensurepip' >/dev/null 2>&1; then
    missing+=(python3 python3-venv)
fi
if ! command -v haproxy >/dev/null 2>&1 && [[ ! -x /usr/sbin/haproxy ]]; then
    missing+=(haproxy)
fi
if ! command -v patroni >/dev/null 2>&1 || ! command -v etcd >/dev/null 2>&1; then
    missing+=(patroni etcd-server)
fi
if ((${#missing[@]})); then
    echo "installing ${missing[*]} (Debian packages) for the browser, manifest and multi-node tests..."
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi
if [[ -z ${DATABASE_URL:-} ]]; then
    # The whole suite also checks that services.sh changed no role's password.
    (($#)) || scripts/tests/services-keeps-passwords.sh
    # The login services.sh chose (see there); each test makes its own database.
    DATABASE_URL="$(<.run/database-url)/booking_test"
fi
export DATABASE_URL
export AMQP_URL="${AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}"
export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379}"
export APP__TELEMETRY__FILTER="${APP__TELEMETRY__FILTER:-warn}"
# The development secrets (config/development.toml); production refuses them.
export APP_ENV="${APP_ENV:-development}"
exec cargo test --workspace --locked "$@"
