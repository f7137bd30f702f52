#!/usr/bin/env bash
# Make PostgreSQL (15+), RabbitMQ and Redis answer for the app and the tests.
#
#   scripts/services.sh ensure         # probe, start, install what is missing
#   scripts/services.sh stop-started   # stop what `ensure` started (nothing else)
#
# For each service: already answering -> leave it; installed but stopped -> start it;
# not installed -> apt-get install it (or, without apt-get, `docker compose up -d` it
# when a container engine runs), then wait a bounded time until it answers. It says
# which packages it installs before installing them, and at the end which services
# it started and leaves running (recorded in .run/services-started, which
# `stop-started`, i.e. `scripts/run.sh --stop-services`, reads).
#
# Defaults: 127.0.0.1:5432 (PostgreSQL), :5672 (RabbitMQ), :6379 (Redis).
# DATABASE_URL, AMQP_URL and REDIS_URL override the address; one that points to a
# host other than 127.0.0.1/localhost/::1 is only probed, never started or installed.
#
# The PostgreSQL login (only when DATABASE_URL is unset; an explicit one is used as
# given): it never changes the password of a role it did not create. It writes the
# URL to use (without the database) to .run/database-url, which run.sh and test.sh
# read: the one already there if it still logs in; else postgres/postgres if that
# logs in as the server is set up (trust, or that really is its password; skipped
# with BOOKING_PG_OWN_ROLE=1); else a role of the platform's own (`booking`, LOGIN
# CREATEDB, a generated password), created through the local socket as the
# postgres OS user or, where the server trusts it, over TCP as postgres.
#
# systemd does not run in the CI containers, so services are started with their own
# commands (pg_ctlcluster, redis-server, rabbitmq-server), and `service X start` only
# when those are missing. Runs as root; otherwise uses sudo when it exists.
set -euo pipefail

usage() {
    echo "usage: $0 ensure|stop-started" >&2
    exit 2
}

[[ $# -eq 1 && ($1 == ensure || $1 == stop-started) ]] || usage
COMMAND=$1

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PG_WAIT=${PG_WAIT:-60}
REDIS_WAIT=${REDIS_WAIT:-60}
RABBIT_WAIT=${RABBIT_WAIT:-120}
# Where the login URL and the list of started services live (git-ignored).
STATE_DIR=${SERVICES_STATE_DIR:-$REPO_ROOT/.run}
URL_FILE="$STATE_DIR/database-url"
STARTED_FILE="$STATE_DIR/services-started"
# The platform's own PostgreSQL role, and the comment that marks it as ours: the
# only role whose password this script ever sets is one carrying that comment.
PG_ROLE=${SERVICES_PG_ROLE:-booking}
ROLE_MARK="created by scripts/services.sh for the booking platform"
[[ $PG_ROLE =~ ^[a-z_][a-z0-9_]*$ ]] || { echo "services.sh: bad SERVICES_PG_ROLE: $PG_ROLE" >&2; exit 2; }

SUDO=()
if [[ $(id -u) -ne 0 ]] && command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo)
fi

LOG_DIR=$(mktemp -d "${TMPDIR:-/tmp}/services.XXXXXX")
trap 'rm -rf "$LOG_DIR"' EXIT

have() { command -v "$1" >/dev/null 2>&1; }

# with_timeout SECONDS CMD...: bound CMD when coreutils' timeout exists.
with_timeout() {
    local secs=$1
    shift
    if have timeout; then
        timeout "$secs" "$@"
    else
        "$@"
    fi
}

die() {
    echo "services.sh: $*" >&2
    exit 1
}

# Print the tail of a captured log to stderr (used before failing).
show_log() {
    local f=$1
    if [[ -s $f ]]; then
        echo "--- last lines of $(basename "$f") ---" >&2
        tail -n 20 "$f" >&2
    fi
}

# Run a command as root (directly, or through sudo when we are not root).
as_root() {
    "${SUDO[@]}" "$@"
}

# --- addresses -------------------------------------------------------------

# parse_url URL DEFAULT_PORT -> prints "host port"
parse_url() {
    local url=$1 default_port=$2 rest host port
    rest=${url#*://}
    rest=${rest%%/*}
    rest=${rest%%\?*}
    rest=${rest##*@}
    if [[ $rest == \[* ]]; then          # [ipv6]:port
        host=${rest%%]*}
        host=${host#[}
        port=${rest#*]}
        port=${port#:}
    else
        host=${rest%%:*}
        port=${rest#"$host"}
        port=${port#:}
    fi
    [[ -n $host ]] || host=127.0.0.1
    [[ -n $port ]] || port=$default_port
    echo "$host $port"
}

is_local() {
    case $1 in
        127.0.0.1 | localhost | ::1) return 0 ;;
        *) return 1 ;;
    esac
}

read -r PG_HOST PG_PORT < <(parse_url "${DATABASE_URL:-postgres://127.0.0.1:5432/}" 5432)
read -r AMQP_HOST AMQP_PORT < <(parse_url "${AMQP_URL:-amqp://127.0.0.1:5672/}" 5672)
read -r REDIS_HOST REDIS_PORT < <(parse_url "${REDIS_URL:-redis://127.0.0.1:6379}" 6379)

# --- probes ----------------------------------------------------------------

tcp_probe() {
    local host=$1 port=$2
    with_timeout 3 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$host" "$port" 2>/dev/null
}

probe_postgres() {
    if have pg_isready; then
        pg_isready -q -h "$PG_HOST" -p "$PG_PORT" -t 3
    else
        tcp_probe "$PG_HOST" "$PG_PORT"
    fi
}

# The broker answers the AMQP 0-9-1 protocol header with a frame (connection.start)
# within 5 s. An open port is not enough: a node can keep its listener open and
# answer no handshake (seen on a shared test broker; every client then times out).
probe_rabbitmq() {
    with_timeout 5 bash -c 'exec 3<>"/dev/tcp/$1/$2" && printf "AMQP\0\0\11\1" >&3 &&
        [[ $(head -c 1 <&3 | od -An -tx1) == *01 ]]' _ "$AMQP_HOST" "$AMQP_PORT" 2>/dev/null
}

probe_redis() {
    if have redis-cli; then
        local out
        out=$(with_timeout 3 redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" ping 2>&1) || true
        # A server that wants a password still answers.
        [[ $out == PONG || $out == *NOAUTH* || $out == *WRONGPASS* ]]
    else
        tcp_probe "$REDIS_HOST" "$REDIS_PORT"
    fi
}

# wait_until NAME SECONDS PROBE_FN [STEP_FN]: poll until PROBE_FN succeeds.
# STEP_FN (optional) runs between probes instead of `sleep 1` (it may block).
wait_until() {
    local name=$1 limit=$2 probe=$3 step=${4:-}
    local deadline=$((SECONDS + limit))
    while ! "$probe"; do
        if ((SECONDS >= deadline)); then
            return 1
        fi
        if [[ -n $step ]]; then
            "$step" || sleep 1
        else
            sleep 1
        fi
    done
}

# --- install ---------------------------------------------------------------

APT_UPDATED=0
COMPOSE_DONE=0

pg_installed() { compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null; }
rabbitmq_installed() { have rabbitmq-server || [[ -x /usr/sbin/rabbitmq-server ]]; }
redis_installed() { have redis-server || [[ -x /usr/bin/redis-server ]]; }

apt_install() {
    local log="$LOG_DIR/apt.log"
    if ((APT_UPDATED == 0)); then
        as_root apt-get update -qq >"$log" 2>&1 || { show_log "$log"; die "apt-get update failed"; }
        APT_UPDATED=1
    fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >>"$log" 2>&1 \
        || { show_log "$log"; die "apt-get install $* failed"; }
}

compose_up() {
    local log="$LOG_DIR/compose.log"
    echo "services.sh: no apt-get; using the container engine: docker compose up -d $*" >&2
    if docker compose version >/dev/null 2>&1; then
        (cd "$REPO_ROOT" && docker compose up -d "$@") >"$log" 2>&1
    elif have docker-compose; then
        (cd "$REPO_ROOT" && docker-compose up -d "$@") >"$log" 2>&1
    else
        die "docker runs but neither 'docker compose' nor 'docker-compose' is available"
    fi || { show_log "$log"; die "docker compose up -d $* failed"; }
}

# Install the local services that are neither answering nor installed, with one
# apt-get call (or one compose call). Sets *_VIA_COMPOSE for what compose runs.
PG_VIA_COMPOSE=0
RABBIT_VIA_COMPOSE=0
REDIS_VIA_COMPOSE=0
PG_INSTALLED_NOW=0
RABBIT_INSTALLED_NOW=0
REDIS_INSTALLED_NOW=0

install_missing() {
    local pkgs=() svcs=()
    if is_local "$PG_HOST" && ! pg_installed && ! probe_postgres; then
        pkgs+=(postgresql) svcs+=(postgres)
    fi
    if is_local "$AMQP_HOST" && ! rabbitmq_installed && ! probe_rabbitmq; then
        pkgs+=(rabbitmq-server) svcs+=(rabbitmq)
    fi
    if is_local "$REDIS_HOST" && ! redis_installed && ! probe_redis; then
        pkgs+=(redis-server) svcs+=(redis)
    fi
    ((${#pkgs[@]} > 0)) || return 0

    if have apt-get && { [[ $(id -u) -eq 0 ]] || ((${#SUDO[@]} > 0)); }; then
        echo "services.sh: not installed: ${svcs[*]}; installing them from Debian's packages: apt-get install ${pkgs[*]}" >&2
        echo "services.sh:   (a few hundred MB with their dependencies; they stay installed, and this script starts them; remove them with: apt-get purge ${pkgs[*]} && apt-get autoremove --purge)" >&2
        apt_install "${pkgs[@]}"
        local s
        for s in "${svcs[@]}"; do
            case $s in
                postgres) PG_INSTALLED_NOW=1 ;;
                rabbitmq) RABBIT_INSTALLED_NOW=1 ;;
                redis) REDIS_INSTALLED_NOW=1 ;;
            esac
        done
    elif have docker && docker info >/dev/null 2>&1; then
        compose_up "${svcs[@]}"
        COMPOSE_DONE=1
        local s
        for s in "${svcs[@]}"; do
            case $s in
                postgres) PG_VIA_COMPOSE=1 ;;
                rabbitmq) RABBIT_VIA_COMPOSE=1 ;;
                redis) REDIS_VIA_COMPOSE=1 ;;
            esac
        done
    else
        die "not installed and no way to install: ${svcs[*]} (no usable apt-get, no running docker engine)"
    fi
}

how() {
    # how INSTALLED_NOW VIA_COMPOSE -> words for the status line
    if (($2)); then
        echo "started with docker compose"
    elif (($1)); then
        echo "installed and started"
    else
        echo "started"
    fi
}

# --- what this script started -----------------------------------------------

# record_started NAME: remember that this script started NAME (postgres, rabbitmq,
# redis, compose:SERVICE) so that stop-started stops it, and only it.
record_started() {
    mkdir -p "$STATE_DIR"
    grep -qxF "$1" "$STARTED_FILE" 2>/dev/null || echo "$1" >>"$STARTED_FILE"
}

pg_cluster_version() {
    { ls /etc/postgresql 2>/dev/null || true; } | sort -V | tail -1
}

stop_started() {
    if [[ ! -s $STARTED_FILE ]]; then
        echo "services.sh: nothing to stop: this script started no service (it leaves alone the ones it found running)"
        return 0
    fi
    local name ver rc=0
    # fd 3: the stop commands (su, rabbitmqctl) would read the rest of the list.
    while read -r name <&3; do
        case $name in
            postgres)
                ver=$(pg_cluster_version)
                if have pg_ctlcluster && [[ -n $ver ]]; then
                    as_root pg_ctlcluster --skip-systemctl-redirect "$ver" main stop
                else
                    as_root service postgresql stop
                fi
                ;;
            rabbitmq)
                if have rabbitmqctl; then as_root rabbitmqctl -q stop; else as_root service rabbitmq-server stop; fi
                ;;
            redis)
                if have redis-cli; then redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" shutdown >/dev/null; else as_root service redis-server stop; fi
                ;;
            compose:*)
                (cd "$REPO_ROOT" && docker compose stop "${name#compose:}")
                ;;
            *) echo "services.sh: unknown entry in $STARTED_FILE: $name" >&2 ;;
        esac && echo "services.sh: stopped $name" || { rc=1; echo "services.sh: could not stop $name" >&2; }
    done 3<"$STARTED_FILE"
    ((rc)) || rm -f "$STARTED_FILE"
    return "$rc"
}

# --- PostgreSQL ------------------------------------------------------------

# psql as a superuser without any password, SQL on stdin, tuples only. The local
# socket as the postgres OS user (peer, Debian's default) or, where the server
# trusts it, TCP as postgres. Never prompts.
pg_admin() {
    local opts=(-qXtA -v ON_ERROR_STOP=1 -p "$PG_PORT" -d postgres)
    if [[ -z ${PG_ADMIN_HOW:-} ]]; then
        if pg_admin_socket "${opts[@]}" -c 'select 1' >/dev/null 2>&1; then
            PG_ADMIN_HOW=socket
        elif PGCONNECT_TIMEOUT=5 psql -w -h 127.0.0.1 -U postgres "${opts[@]}" -c 'select 1' >/dev/null 2>&1; then
            PG_ADMIN_HOW=tcp
        else
            PG_ADMIN_HOW=none
        fi
    fi
    case $PG_ADMIN_HOW in
        socket) pg_admin_socket "${opts[@]}" ;;
        tcp) PGCONNECT_TIMEOUT=5 psql -w -h 127.0.0.1 -U postgres "${opts[@]}" ;;
        *) return 1 ;;
    esac
}

pg_admin_socket() {
    if [[ $(id -u) -eq 0 ]]; then
        # su would read psql's options as its own: pass them quoted in the command.
        (cd / && su postgres -s /bin/bash -c "exec psql $(printf '%q ' "$@")")
    elif [[ $(id -un) == postgres ]]; then
        psql "$@"
    elif ((${#SUDO[@]} > 0)); then
        (cd / && sudo -n -u postgres psql "$@")
    else
        return 1
    fi
}

# pg_can_login BASE_URL: a login with that URL (no database) works, without a prompt.
pg_can_login() {
    PGCONNECT_TIMEOUT=5 psql "$1/postgres" -wqXtAc 'select 1' >/dev/null 2>&1
}

save_url() {
    mkdir -p "$STATE_DIR"
    (umask 077 && printf '%s\n' "$1" >"$URL_FILE.tmp") && mv "$URL_FILE.tmp" "$URL_FILE"
}

# The role of the platform's own: created if missing; an existing one of ours (the
# comment) gets a new password only because its old one is lost; anyone else's is
# never touched.
pg_own_role() {
    local mark url pw
    mark=$(pg_admin <<<"select coalesce(shobj_description(oid, 'pg_authid'), '') from pg_roles where rolname = '$PG_ROLE'") || {
        die "postgres: no superuser access without a password (neither the local socket as the postgres OS user nor trust over TCP) to create the role $PG_ROLE; create one yourself and set DATABASE_URL=postgres://USER:PASSWORD@127.0.0.1:$PG_PORT/booking"
    }
    pw=$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')
    url="postgres://$PG_ROLE:$pw@127.0.0.1:$PG_PORT"
    if [[ -z $(pg_admin <<<"select 1 from pg_roles where rolname = '$PG_ROLE'") ]]; then
        echo "services.sh: postgres: creating the role $PG_ROLE (login, createdb) for the platform; its password goes to $URL_FILE" >&2
        pg_admin <<<"create role $PG_ROLE login createdb password '$pw'; comment on role $PG_ROLE is '$ROLE_MARK';" >/dev/null
    elif [[ $mark == "$ROLE_MARK" ]]; then
        echo "services.sh: postgres: the role $PG_ROLE (created by this script earlier) gets a new password: $URL_FILE was missing or stale" >&2
        pg_admin <<<"alter role $PG_ROLE password '$pw'" >/dev/null
    else
        die "postgres: a role named $PG_ROLE exists that this script did not create; its password is left alone. Set DATABASE_URL=postgres://$PG_ROLE:PASSWORD@127.0.0.1:$PG_PORT/booking, or SERVICES_PG_ROLE=another_name"
    fi
    pg_can_login "$url" || die "postgres: cannot log in as $PG_ROLE with its password on 127.0.0.1:$PG_PORT (check pg_hba.conf: a 'host ... 127.0.0.1/32 scram-sha-256' line)"
    save_url "$url"
}

# Which login run.sh and test.sh use (see the header); writes $URL_FILE.
pg_login() {
    if [[ -n ${DATABASE_URL:-} ]]; then
        return 0
    fi
    have psql || die "postgres: psql is missing (Debian: apt-get install postgresql-client)"
    local url
    if [[ -s $URL_FILE ]]; then
        url=$(<"$URL_FILE")
        PG_LOGIN=${url#postgres://}
        PG_LOGIN=${PG_LOGIN%%:*}
        if [[ ${BOOKING_PG_OWN_ROLE:-0} != 1 || $PG_LOGIN == "$PG_ROLE" ]] && pg_can_login "$url"; then
            return 0
        fi
    fi
    url="postgres://postgres:postgres@127.0.0.1:$PG_PORT"
    if [[ ${BOOKING_PG_OWN_ROLE:-0} != 1 ]] && pg_can_login "$url"; then
        save_url "$url"
        PG_LOGIN=postgres
        return 0
    fi
    pg_own_role
    PG_LOGIN=$PG_ROLE
}

pg_start() {
    local log="$LOG_DIR/postgres-start.log" ver=""
    ver=$(pg_cluster_version)
    if [[ -z $ver || ! -d /etc/postgresql/$ver/main ]] && have pg_createcluster; then
        # Installed without a cluster: create the default one.
        ver=$(ls /usr/lib/postgresql | sort -V | tail -1)
        as_root pg_createcluster "$ver" main >"$log" 2>&1 || { show_log "$log"; die "postgres: pg_createcluster $ver main failed"; }
    fi
    if [[ $ver =~ ^[0-9]+ ]] && ((BASH_REMATCH[0] < 15)); then
        echo "services.sh: warning: PostgreSQL $ver is older than 15" >&2
    fi
    if have pg_ctlcluster && [[ -n $ver ]]; then
        as_root pg_ctlcluster --skip-systemctl-redirect "$ver" main start >>"$log" 2>&1 || true
    elif have service; then
        as_root service postgresql start >>"$log" 2>&1 || true
    else
        die "postgres: installed but neither pg_ctlcluster nor service is available to start it"
    fi
}

ensure_postgres() {
    local addr="$PG_HOST:$PG_PORT" what
    if ! is_local "$PG_HOST"; then
        wait_until postgres "$PG_WAIT" probe_postgres || die "postgres: external $addr does not answer (DATABASE_URL)"
        echo "postgres: external, answering on $addr"
        return
    fi
    if probe_postgres; then
        what="running"
        if ((PG_INSTALLED_NOW)); then
            what="installed, running"
            record_started postgres
        fi
    else
        if ((PG_VIA_COMPOSE == 0)); then
            pg_installed || die "postgres: not installed"
            pg_start
        fi
        wait_until postgres "$PG_WAIT" probe_postgres || {
            show_log "$LOG_DIR/postgres-start.log"
            die "postgres: did not answer on $addr within ${PG_WAIT}s"
        }
        what=$(how "$PG_INSTALLED_NOW" "$PG_VIA_COMPOSE")
        if (($PG_VIA_COMPOSE)); then record_started compose:postgres; else record_started postgres; fi
    fi
    PG_LOGIN=""
    pg_login
    echo "postgres: $what on $addr${PG_LOGIN:+ (login: $PG_LOGIN, URL in ${URL_FILE#"$REPO_ROOT"/})}"
}

# --- RabbitMQ --------------------------------------------------------------

# Between probes: block until the node has booted (returns fast once it has).
rabbit_step() {
    if have rabbitmqctl; then
        with_timeout 20 "${SUDO[@]}" rabbitmqctl -q await_startup --timeout 15 >/dev/null 2>&1 && sleep 0.5 && return 0
        sleep 1
        return 0
    fi
    return 1
}

rabbit_start() {
    local log="$LOG_DIR/rabbitmq-start.log"
    # A node that is up but still booting answers ping: do not start a second one.
    if have rabbitmqctl && with_timeout 20 "${SUDO[@]}" rabbitmqctl -q ping >/dev/null 2>&1; then
        return 0
    fi
    if have rabbitmq-server || [[ -x /usr/sbin/rabbitmq-server ]]; then
        as_root rabbitmq-server -detached >"$log" 2>&1 || true
    elif have service; then
        as_root service rabbitmq-server start >"$log" 2>&1 || true
    else
        die "rabbitmq: installed but neither rabbitmq-server nor service is available to start it"
    fi
}

ensure_rabbitmq() {
    local addr="$AMQP_HOST:$AMQP_PORT" what
    if ! is_local "$AMQP_HOST"; then
        wait_until rabbitmq "$RABBIT_WAIT" probe_rabbitmq || die "rabbitmq: external $addr does not answer (AMQP_URL)"
        echo "rabbitmq: external, answering on $addr"
        return
    fi
    if ! probe_rabbitmq && tcp_probe "$AMQP_HOST" "$AMQP_PORT" && ! wait_until rabbitmq 10 probe_rabbitmq; then
        # Listening but silent for 15 s: hung, not booting (a booting node has no
        # listener yet). A restart is what brings such a node back.
        echo "rabbitmq: $addr accepts connections but answers no AMQP handshake: restarting the hung node" >&2
        have rabbitmqctl || die "rabbitmq: hung on $addr and no rabbitmqctl to restart it"
        with_timeout 60 "${SUDO[@]}" rabbitmqctl -q stop >/dev/null 2>&1 ||
            die "rabbitmq: hung on $addr and 'rabbitmqctl stop' failed; restart it by hand (see /var/log/rabbitmq)"
    fi
    if probe_rabbitmq; then
        what="running"
        if ((RABBIT_INSTALLED_NOW)); then
            what="installed, running"
            record_started rabbitmq
        fi
    else
        if ((RABBIT_VIA_COMPOSE == 0)); then
            rabbitmq_installed || die "rabbitmq: not installed"
            rabbit_start
        fi
        wait_until rabbitmq "$RABBIT_WAIT" probe_rabbitmq rabbit_step || {
            show_log "$LOG_DIR/rabbitmq-start.log"
            show_log /var/log/rabbitmq/startup_err
            die "rabbitmq: did not answer on $addr within ${RABBIT_WAIT}s"
        }
        what=$(how "$RABBIT_INSTALLED_NOW" "$RABBIT_VIA_COMPOSE")
        if (($RABBIT_VIA_COMPOSE)); then record_started compose:rabbitmq; else record_started rabbitmq; fi
    fi
    echo "rabbitmq: $what on $addr"
}

# --- Redis -----------------------------------------------------------------

redis_start() {
    local log="$LOG_DIR/redis-start.log"
    if have redis-server || [[ -x /usr/bin/redis-server ]]; then
        as_root mkdir -p /var/lib/redis /var/log/redis
        as_root redis-server --daemonize yes --bind 127.0.0.1 -::1 --port "$REDIS_PORT" \
            --save "" --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log \
            >"$log" 2>&1 || true
    elif have service; then
        as_root service redis-server start >"$log" 2>&1 || true
    else
        die "redis: installed but neither redis-server nor service is available to start it"
    fi
}

ensure_redis() {
    local addr="$REDIS_HOST:$REDIS_PORT" what
    if ! is_local "$REDIS_HOST"; then
        wait_until redis "$REDIS_WAIT" probe_redis || die "redis: external $addr does not answer (REDIS_URL)"
        echo "redis: external, answering on $addr"
        return
    fi
    if probe_redis; then
        what="running"
        if ((REDIS_INSTALLED_NOW)); then
            what="installed, running"
            record_started redis
        fi
    else
        if ((REDIS_VIA_COMPOSE == 0)); then
            redis_installed || die "redis: not installed"
            redis_start
        fi
        wait_until redis "$REDIS_WAIT" probe_redis || {
            show_log "$LOG_DIR/redis-start.log"
            show_log /var/log/redis/ci.log
            die "redis: did not answer on $addr within ${REDIS_WAIT}s"
        }
        what=$(how "$REDIS_INSTALLED_NOW" "$REDIS_VIA_COMPOSE")
        if (($REDIS_VIA_COMPOSE)); then record_started compose:redis; else record_started redis; fi
    fi
    echo "redis: $what on $addr"
}

# --- main ------------------------------------------------------------------

if [[ $COMMAND == stop-started ]]; then
    stop_started
    exit
fi
install_missing
ensure_postgres
ensure_rabbitmq
ensure_redis
if [[ -s $STARTED_FILE ]]; then
    echo "services.sh: started by this script and left running when the platform stops: $(paste -sd' ' "$STARTED_FILE"); stop them with scripts/run.sh --stop-services"
fi
