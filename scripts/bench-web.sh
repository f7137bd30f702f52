#!/usr/bin/env bash
# The web benchmark of BENCHMARKS.md ("Web pages"): the seat page of a 500-seat show,
# the movie page and home in headless Chromium (Debian's, as the browser tests use),
# cold and warm, five loads each; prints first paint, when the seat map is
# interactive, and the JavaScript and CSS each page ships (compressed on the wire,
# and as files), and fails if a page ships more than the budget of 150 KB compressed.
#
#   scripts/bench-web.sh
#
# It is the browser test `weight` (ignored in the test command), on the test build:
# the platform runs in-process in the test profile, as in the browser tests, which
# changes the server's share of the time (a few milliseconds per request), not what
# the browser downloads, parses and draws.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/services.sh ensure
if [[ -z ${DATABASE_URL:-} ]]; then
    DATABASE_URL="$(<.run/database-url)/booking_test"
fi
export DATABASE_URL
export AMQP_URL="${AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}"
export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379}"
export APP__TELEMETRY__FILTER="${APP__TELEMETRY__FILTER:-warn}"
export APP_ENV="${APP_ENV:-development}"
echo "machine: $(nproc) cores, $(free -g | awk '/^Mem:/ {print $2}') GiB, load average $(cut -d' ' -f1-3 /proc/loadavg); $(chromium --version 2>/dev/null)"
exec cargo test -p tests --test browser --locked -- --ignored --nocapture --test-threads 1 web_pages
