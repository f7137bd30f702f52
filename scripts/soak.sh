#!/usr/bin/env bash
# The fault-injection soak (docs/reliability.md): the release `ingress` and `workers`
# on a PostgreSQL cluster, a RabbitMQ node and a Redis of its own (own ports and
# folders under /tmp: the shared servers are never touched), customers booking,
# paying, being declined and cancelling, a seeded fault schedule, then the checks.
#
#   scripts/soak.sh --seed 3 --minutes 10            # every fault kind
#   scripts/soak.sh --seed 3 --minutes 3 --faults kill-workers,pg-outage
#   scripts/soak.sh --help                           # every knob
#
# The same seed with the same --minutes/--faults/--gap replays the same schedule
# (printed at the start). Exit status: 0 every invariant held, 1 one broke (its
# figures are printed and the run's folder kept), 2 the soak itself failed.
# SKIP_BUILD=1 uses the binaries already built; SOAK_PROFILE=dev runs the debug
# binaries (those `cargo test` builds) instead of the release ones.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target}

# The servers' programs (not the shared servers themselves): services.sh installs
# what is missing.
if ! compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || ! command -v redis-server >/dev/null ||
    ! command -v rabbitmq-server >/dev/null; then
    scripts/services.sh ensure
fi
PROFILE=${SOAK_PROFILE:-release}
DIR=$PROFILE
[[ $PROFILE == dev ]] && DIR=debug
if [[ ${SKIP_BUILD:-0} != 1 ]]; then
    cargo build --locked --profile "$PROFILE" -p soak -p ingress -p workers
fi
exec "$CARGO_TARGET_DIR/$DIR/soak" --bin-dir "$CARGO_TARGET_DIR/$DIR" "$@"
