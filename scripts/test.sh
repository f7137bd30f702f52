#!/usr/bin/env bash
# The test command: makes sure PostgreSQL, RabbitMQ and Redis answer (starting or
# installing them if needed), then runs every test of the workspace against them.
# Extra arguments go to `cargo test` (e.g. scripts/test.sh -p sequencer).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/services.sh ensure
# The browser tests (tests/tests/browser) drive Debian's headless Chromium through
# chromedriver; install both from Debian's packages when missing (never a browser
# downloaded by a tool).
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
    echo "installing chromium and chromium-driver (Debian packages) for the browser tests..."
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium chromium-driver
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
