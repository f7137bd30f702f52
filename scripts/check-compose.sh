#!/usr/bin/env bash
# Validate compose.yml without a container engine, with Debian's docker-compose 1.29
# (the same parser CI and older hosts use; it rejects a top-level `name:` key).
#
#   scripts/check-compose.sh
#
# Installs docker-compose with apt-get when it is missing and we run as root. Exits
# non-zero when the file is invalid or when it cannot be validated at all.
set -euo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
COMPOSE_FILE=${COMPOSE_FILE:-$REPO_ROOT/compose.yml}

die() {
    echo "check-compose: $*" >&2
    exit 1
}

[[ -f $COMPOSE_FILE ]] || die "no compose file at $COMPOSE_FILE"

if ! command -v docker-compose >/dev/null 2>&1; then
    if [[ $(id -u) -ne 0 ]]; then
        die "cannot validate: docker-compose is missing and installing it needs root (apt-get install docker-compose)"
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        die "cannot validate: docker-compose is missing and there is no apt-get to install it"
    fi
    log=$(mktemp)
    trap 'rm -f "$log"' EXIT
    echo "check-compose: installing docker-compose with apt-get" >&2
    # --no-install-recommends: only the parser, not docker.io, containerd and friends.
    install() {
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker-compose >>"$log" 2>&1
    }
    if ! install; then
        apt-get update -qq >>"$log" 2>&1 || true
        install || { tail -n 20 "$log" >&2; die "cannot validate: apt-get install docker-compose failed"; }
    fi
fi

# Compose interpolates ${VARS} from the environment and .env; none are required.
docker-compose -f "$COMPOSE_FILE" config -q
echo "check-compose: $(basename "$COMPOSE_FILE") is valid for docker-compose $(docker-compose version --short 2>/dev/null || echo '?')"
