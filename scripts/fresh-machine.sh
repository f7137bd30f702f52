#!/usr/bin/env bash
# The README's two commands on a clean Debian 12 machine, for real (not part of CI:
# it downloads a Debian root and builds the workspace twice, 30-60 minutes).
#
#   sudo scripts/fresh-machine.sh [--keep] [--reuse] [--no-second-run] [-- TEST_ARGS...]
#
# --reuse runs on a root kept by an earlier --keep run (no debootstrap, no new clone:
# its services are installed and its target/ is built, so the run phase is the run
# command's second run on that root).
#
# Phases (each prints its time; the disk used is printed after the heavy ones):
#   root      debootstrap a Debian 12 (bookworm) minbase root in $FRESH_DIR/root, plus
#             what a machine that has a Rust toolchain has: gcc and libc6-dev (the
#             linker rustup asks for), curl and ca-certificates (rustup's installer)
#   network   its own network namespace (its services use their standard ports
#             without meeting the host's), joined to the host by a veth pair whose
#             host end only runs an HTTP proxy to the host's Debian mirror (and
#             crates.io): apt inside uses the mirror the host's apt uses
#   mounts    /proc, /dev, the host's Rust toolchain read-only (~/.rustup and
#             ~/.cargo/bin), a copy of the host's ~/.cargo/registry (cache and index:
#             no crate download), a fresh `git clone` of this repository's HEAD
#   run       `scripts/run.sh`, exactly as the README writes it, until /readyz answers
#             (it installs PostgreSQL, RabbitMQ and Redis and builds in release)
#   curl      the curl it printed (a booking of two seats, paid), polled to
#             `confirmed`, the email in the sink, the ticket, the web app's `/`
#   ctrl-c    SIGINT to the run command; it must exit 0 with its processes gone
#   again     the run command a second time on the same root (idempotent: the same
#             migrations, seed and role; another booking), then SIGINT
#   test      `scripts/test.sh` (TEST_ARGS after `--` go to it, e.g. `-- -p sequencer`)
#   cleanup   `scripts/run.sh --stop-services`, every process left in the root ended,
#             everything unmounted, the namespace deleted, the root deleted (--keep
#             keeps it; its logs stay in $FRESH_DIR/logs)
#
# FRESH_DIR (default /var/tmp/booking-fresh). FRESH_TMPFS=SIZE (e.g. 12G) puts the
# root on a tmpfs of that size (when the disk is short: the root takes ~5 GB after the
# release build, more after the test build). Runs as root (debootstrap, mount, ip).
# The heavy phases run under `nice -n 19`.
set -euo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
FRESH_DIR=${FRESH_DIR:-/var/tmp/booking-fresh}
R="$FRESH_DIR/root"
LOGS="$FRESH_DIR/logs"
NS=booking-fresh
VETH_HOST=bfresh-h
VETH_NS=bfresh-n
HOST_IP=10.213.0.1
NS_IP=10.213.0.2
PROXY_PORT=3142
SUITE=bookworm
RUN_READY_MAX_S=5400  # the cold release build alone takes 15-30 minutes on 2 cores
CONFIRM_MAX_S=60
STOP_MAX_S=30
KEEP=0
REUSE=0
SECOND_RUN=1
TEST_ARGS=()
while (($#)); do
    case $1 in
        --keep) KEEP=1 ;;
        --reuse) REUSE=1 ;;
        --no-second-run) SECOND_RUN=0 ;;
        --) shift; TEST_ARGS=("$@"); break ;;
        *) echo "usage: $0 [--keep] [--reuse] [--no-second-run] [-- TEST_ARGS...]" >&2; exit 2 ;;
    esac
    shift
done
[[ $(id -u) -eq 0 ]] || { echo "fresh-machine.sh: run as root (debootstrap, mount, ip netns)" >&2; exit 1; }
if ((REUSE)); then
    [[ -x $R/root/booking/scripts/run.sh ]] || { echo "fresh-machine.sh: --reuse: no kept root in $R" >&2; exit 1; }
else
    [[ ! -e $R ]] || { echo "fresh-machine.sh: $R exists (a kept root? --reuse, or remove it)" >&2; exit 1; }
fi

mkdir -p "$LOGS"
START=$SECONDS
PHASE_START=$SECONDS
PHASE=""
phase() {
    if [[ -n $PHASE ]]; then
        printf '== %-8s done in %4ds\n' "$PHASE" $((SECONDS - PHASE_START))
    fi
    PHASE=$1
    PHASE_START=$SECONDS
    [[ -z $PHASE ]] || printf '== %-8s %s\n' "$PHASE" "$2"
}
disk() {
    # Without the mounts: the toolchain is the host's, /proc and /dev are not files.
    local skip=(--exclude="$R/root/.rustup" --exclude="$R/root/.cargo/bin" --exclude="$R/proc" --exclude="$R/dev" --exclude="$R/run")
    echo "   disk: root $(du -shx "${skip[@]}" "$R" 2>/dev/null | cut -f1) (of it target/ $(du -sh "$R/root/booking/target" 2>/dev/null | cut -f1 || echo -)), free on $(df -h --output=target "$R" | tail -1): $(df -h --output=avail "$R" | tail -1 | tr -d ' ')"
}
fail() {
    echo "FAIL ($PHASE): $*" >&2
    exit 1
}

# --- cleanup (always) ---------------------------------------------------------
PROXY_PID=""
RUN_PID=""
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    phase cleanup "stopping what the root started, unmounting, deleting the namespace"
    if [[ -n $RUN_PID ]] && kill -0 "$RUN_PID" 2>/dev/null; then
        kill -INT "$RUN_PID" 2>/dev/null || true
        sleep 3
    fi
    if [[ -x $R/root/booking/scripts/run.sh ]] && [[ -d $R/proc/1 ]]; then
        in_root "cd /root/booking && scripts/run.sh --stop-services" 2>&1 | sed 's/^/   /' || true
    fi
    # Whatever still runs with the root as its / (epmd, a stuck server): ours.
    local pid left=()
    for pid in $(ls /proc | grep -E '^[0-9]+$'); do
        [[ $(readlink "/proc/$pid/root" 2>/dev/null) == "$R" ]] && left+=("$pid")
    done
    if ((${#left[@]})); then
        echo "   ending processes left in the root: ${left[*]}"
        kill -TERM "${left[@]}" 2>/dev/null || true
        sleep 2
        kill -KILL "${left[@]}" 2>/dev/null || true
    fi
    [[ -z $PROXY_PID ]] || kill "$PROXY_PID" 2>/dev/null || true
    local m
    for m in $(awk -v r="$R" 'index($2, r) == 1 { print $2 }' /proc/mounts | sort -r); do
        [[ $m != "$R" || $KEEP == 0 ]] || continue # a kept root on a tmpfs stays mounted
        umount "$m" 2>/dev/null || umount -l "$m" || echo "   could not unmount $m" >&2
    done
    ip link del "$VETH_HOST" 2>/dev/null || true
    ip netns del "$NS" 2>/dev/null || true
    if ((KEEP)); then
        echo "   kept the root: $R (delete: rm -rf $R)"
    elif [[ -d $R ]]; then
        if awk -v r="$R" 'index($2, r) == 1 { found = 1 } END { exit !found }' /proc/mounts; then
            echo "   NOT deleting $R: something is still mounted under it" >&2
        else
            rm -rf --one-file-system "$R"
        fi
    fi
    phase "" ""
    echo "== total    $((SECONDS - START))s; logs in $LOGS"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The environment of every command in the root: a login's (HOME, PATH with cargo),
# and the host's proxy, the root's only way out, for what downloads: cargo (crates)
# and pip (the manifests test's kubernetes-validate, from PyPI). apt has its own
# setting (below). Nothing else gets it: the tests' HTTP clients talk to 127.0.0.1.
ROOT_ENV=(HOME=/root TERM=dumb LANG=C.UTF-8
    PATH=/root/.cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
    CARGO_HTTP_PROXY="http://$HOST_IP:$PROXY_PORT"
    PIP_PROXY="http://$HOST_IP:$PROXY_PORT")

# in_root CMD: bash -c CMD inside the namespace and the root, with ROOT_ENV.
in_root() {
    ip netns exec "$NS" chroot "$R" /usr/bin/env -i "${ROOT_ENV[@]}" /bin/bash -c "$1"
}

# --- root ---------------------------------------------------------------------
# The host's Debian mirror (deb822 or one-line sources).
MIRROR=$(sed -n 's/^URIs: *\([^ ]*\/debian\)$/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -1)
[[ -n $MIRROR ]] || MIRROR=$(awk '$1 == "deb" && $2 ~ /\/debian\/?$/ { print $2; exit }' /etc/apt/sources.list 2>/dev/null)
MIRROR=${MIRROR:-http://deb.debian.org/debian}
if ((REUSE == 0)); then
phase root "debootstrap $SUITE (minbase + gcc libc6-dev curl ca-certificates)"
if ! command -v debootstrap >/dev/null; then
    echo "   installing debootstrap on the host (apt-get install debootstrap)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >"$LOGS/host-apt.log" 2>&1
fi
echo "   mirror: $MIRROR"
mkdir -p "$R"
if [[ -n ${FRESH_TMPFS:-} ]]; then
    mount -t tmpfs -o "size=$FRESH_TMPFS,mode=755" fresh-root "$R"
    echo "   on a tmpfs of $FRESH_TMPFS"
fi
nice -n 19 debootstrap --variant=minbase --include=gcc,libc6-dev,curl,ca-certificates \
    "$SUITE" "$R" "$MIRROR" >"$LOGS/debootstrap.log" 2>&1 || { tail -20 "$LOGS/debootstrap.log"; fail "debootstrap"; }
# The certificate authorities this host's administrator added
# (/usr/local/share/ca-certificates): a machine behind a TLS-inspecting proxy, as
# this one, has them too, or nothing it fetches over HTTPS verifies (pip found no
# PyPI without them in the eighth run). Debian's own bundle is the root's already.
if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
    mkdir -p "$R/usr/local/share/ca-certificates"
    cp /usr/local/share/ca-certificates/*.crt "$R/usr/local/share/ca-certificates/"
    if chroot "$R" update-ca-certificates >"$LOGS/update-ca.log" 2>&1; then
        echo "   the host's added CAs trusted in the root: $(cd /usr/local/share/ca-certificates && echo *.crt)"
    else
        echo "   WARNING: update-ca-certificates failed in the root (see $LOGS/update-ca.log); HTTPS through a TLS-inspecting proxy will not verify"
    fi
fi
# The host's apt sources and its Acquire settings (mirror, proxy, date checks).
rm -f "$R/etc/apt/sources.list"
cp /etc/apt/sources.list.d/*.sources "$R/etc/apt/sources.list.d/" 2>/dev/null || true
[[ ! -s /etc/apt/sources.list ]] || cp /etc/apt/sources.list "$R/etc/apt/sources.list"
grep -l '^Acquire::' /etc/apt/apt.conf.d/* 2>/dev/null | grep -v docker | xargs -r cp -t "$R/etc/apt/apt.conf.d/"
printf '127.0.0.1 localhost\n::1 localhost\n' >"$R/etc/hosts"
disk
fi

# --- network ------------------------------------------------------------------
phase network "namespace $NS, veth $VETH_HOST ($HOST_IP) <-> $VETH_NS ($NS_IP), HTTP proxy on $HOST_IP:$PROXY_PORT"
ip netns add "$NS"
ip link add "$VETH_HOST" type veth peer name "$VETH_NS"
ip link set "$VETH_NS" netns "$NS"
ip addr add "$HOST_IP/30" dev "$VETH_HOST"
ip link set "$VETH_HOST" up
ip netns exec "$NS" ip addr add "$NS_IP/30" dev "$VETH_NS"
ip netns exec "$NS" ip link set "$VETH_NS" up
ip netns exec "$NS" ip link set lo up
python3 "$REPO_ROOT/scripts/fresh-machine-proxy.py" "$HOST_IP" "$PROXY_PORT" >"$LOGS/proxy.log" 2>&1 &
PROXY_PID=$!
cat >"$R/etc/apt/apt.conf.d/00fresh-machine-proxy" <<EOF
// fresh-machine.sh: the only way out of the namespace is the host's proxy.
Acquire::http::Proxy "http://$HOST_IP:$PROXY_PORT";
Acquire::https::Proxy "http://$HOST_IP:$PROXY_PORT";
Acquire::http::Pipeline-Depth "0";
EOF
for _ in $(seq 1 50); do
    ip netns exec "$NS" bash -c "exec 3<>/dev/tcp/$HOST_IP/$PROXY_PORT" 2>/dev/null && break
    sleep 0.2
done
ip netns exec "$NS" curl -fsS -o /dev/null -x "http://$HOST_IP:$PROXY_PORT" "$MIRROR/dists/$SUITE/Release" \
    || fail "the mirror does not answer through the proxy"
if ip netns exec "$NS" curl -fsS -m 5 -o /dev/null "$MIRROR/dists/$SUITE/Release" 2>/dev/null; then
    fail "the namespace reaches the mirror without the proxy: not isolated"
fi

# --- mounts -------------------------------------------------------------------
phase mounts "proc, dev, toolchain (read-only), registry copy, a fresh clone"
mount -t proc proc "$R/proc"
mount --bind /dev "$R/dev"
mount -t devpts -o newinstance,ptmxmode=0666 devpts "$R/dev/pts"
mount -t tmpfs -o mode=1777 shm "$R/dev/shm"
mount -t tmpfs -o mode=755 run "$R/run"
mkdir -p "$R/root/.rustup" "$R/root/.cargo/bin" "$R/root/.cargo/registry"
for d in .rustup .cargo/bin; do
    mount --bind "$HOME/$d" "$R/root/$d"
    mount -o remount,bind,ro "$R/root/$d"
done
if ((REUSE == 0)); then
    for d in cache index; do
        [[ ! -d $HOME/.cargo/registry/$d ]] || cp -a "$HOME/.cargo/registry/$d" "$R/root/.cargo/registry/"
    done
    git clone -q "$REPO_ROOT" "$R/root/booking"
else
    # The kept clone brought up to this repository's HEAD.
    git -C "$R/root/booking" pull -q --ff-only "$REPO_ROOT" HEAD
fi
echo "   project: $(git -C "$R/root/booking" log --oneline -1)"
in_root 'cargo --version && rustc --version && cc --version | head -1' | sed 's/^/   /'

# --- run ----------------------------------------------------------------------
SIGINT_DEFAULT='import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execvp(sys.argv[1], sys.argv[1:])'
# start_run LOG: the README's run command, in the background (its pid in RUN_PID).
start_run() {
    # A background job of a script starts with SIGINT ignored, and bash cannot trap
    # a signal ignored on entry: python resets it to the default, so that the run
    # command gets SIGINT as it does from a terminal's Ctrl-C.
    ip netns exec "$NS" python3 -c "$SIGINT_DEFAULT" nice -n 19 chroot "$R" /usr/bin/env -i "${ROOT_ENV[@]}" /bin/bash -c 'cd /root/booking && exec scripts/run.sh' >"$1" 2>&1 &
    RUN_PID=$!
}
# wait_ready LOG MAX_S: until the run command prints its banner and /readyz answers.
wait_ready() {
    local deadline=$((SECONDS + $2))
    until grep -q '^Press Ctrl-C to stop' "$1" && ip netns exec "$NS" curl -fsS -o /dev/null http://127.0.0.1:8080/readyz; do
        kill -0 "$RUN_PID" 2>/dev/null || { tail -30 "$1"; fail "the run command exited"; }
        ((SECONDS < deadline)) || { tail -30 "$1"; fail "not ready within $2 s"; }
        sleep 2
    done
}
phase run "scripts/run.sh (install, release build, migrate, seed, start) until /readyz"
start_run "$LOGS/run-1.log"
wait_ready "$LOGS/run-1.log" "$RUN_READY_MAX_S"
grep -E '^(services\.sh|postgres|rabbitmq|redis):|^   |Finished|^The booking platform' "$LOGS/run-1.log" | sed 's/^/   /'
disk

# --- curl ---------------------------------------------------------------------
# book LOG: the curl the run command printed, as printed; polls the booking to
# confirmed; checks the email and the ticket. Prints the booking.
book() {
    local log=$1 post get id body deadline state
    post=$(sed -n '/^curl -s -X POST/,/}'"'"'$/p' "$log")
    get=$(grep -m1 '^curl -s .*/v1/bookings/<booking_id> ' "$log")
    [[ -n $post && -n $get ]] || fail "no curl in the run command's output"
    body=$(in_root "$post")
    echo "   POST /v1/bookings -> $body"
    id=$(grep -o '"booking_id":"[^"]*"' <<<"$body" | head -1 | cut -d'"' -f4)
    [[ -n $id ]] || id=$(grep -o '"id":"[^"]*"' <<<"$body" | head -1 | cut -d'"' -f4)
    [[ -n $id ]] || fail "no booking id in: $body"
    deadline=$((SECONDS + CONFIRM_MAX_S))
    while :; do
        body=$(in_root "${get//<booking_id>/$id}")
        state=$(grep -o '"status":"[^"]*"' <<<"$body" | head -1 | cut -d'"' -f4)
        [[ $state == confirmed ]] && break
        [[ $state != rejected ]] || fail "booking $id is rejected: $body"
        ((SECONDS < deadline)) || fail "booking $id is $state after ${CONFIRM_MAX_S}s: $body"
        sleep 0.5
    done
    echo "   GET  /v1/bookings/$id -> $body"
    deadline=$((SECONDS + CONFIRM_MAX_S))
    until in_root "grep -l '$id' /root/booking/.run/mail/*.eml" >"$LOGS/mail-$id.txt" 2>/dev/null; do
        ((SECONDS < deadline)) || fail "no email about $id in .run/mail within ${CONFIRM_MAX_S}s"
        sleep 0.5
    done
    echo "   email: $(head -1 "$LOGS/mail-$id.txt") ($(in_root "grep -m1 '^Subject:' $(head -1 "$LOGS/mail-$id.txt")"))"
    local ticket
    ticket=$(sed -n 's/^and the ticket itself: //p' "$log")
    if [[ -n $ticket ]]; then
        echo "   ticket: $(in_root "${ticket//<booking_id>/$id}" | head -c 300)"
    fi
}
phase curl "the printed curl: book and pay, poll to confirmed, email, ticket, /"
book "$LOGS/run-1.log"
home=$(ip netns exec "$NS" curl -s -o "$LOGS/home.html" -w '%{http_code} %{content_type}' http://127.0.0.1:8080/)
echo "   GET / -> $home ($(wc -c <"$LOGS/home.html") bytes)"

# --- ctrl-c -------------------------------------------------------------------
# interrupt LOG: SIGINT to the run command; it exits 0 and port 8080 closes.
interrupt() {
    kill -INT "$RUN_PID"
    local deadline=$((SECONDS + STOP_MAX_S)) rc=0
    while kill -0 "$RUN_PID" 2>/dev/null; do
        ((SECONDS < deadline)) || fail "the run command still runs ${STOP_MAX_S}s after SIGINT"
        sleep 0.5
    done
    wait "$RUN_PID" || rc=$?
    RUN_PID=""
    ((rc == 0)) || { tail -20 "$1"; fail "the run command exited $rc after SIGINT"; }
    if ip netns exec "$NS" curl -fsS -o /dev/null http://127.0.0.1:8080/healthz 2>/dev/null; then
        fail "something still answers on :8080 after Ctrl-C"
    fi
    echo "   exit 0; its last words:"
    tail -3 "$1" | sed 's/^/     /'
}
phase ctrl-c "SIGINT to the run command"
interrupt "$LOGS/run-1.log"

# --- again --------------------------------------------------------------------
if ((SECOND_RUN)); then
    phase again "the run command a second time on the same root"
    start_run "$LOGS/run-2.log"
    wait_ready "$LOGS/run-2.log" 1800
    grep -E '^(services\.sh|postgres|rabbitmq|redis):' "$LOGS/run-2.log" | sed 's/^/   /'
    book "$LOGS/run-2.log"
    interrupt "$LOGS/run-2.log"
fi

# --- test ---------------------------------------------------------------------
phase test "scripts/test.sh ${TEST_ARGS[*]}"
if ((${#TEST_ARGS[@]})); then
    # test.sh runs it only for the whole suite.
    in_root "cd /root/booking && scripts/tests/services-keeps-passwords.sh" 2>&1 | sed 's/^/   /' \
        || fail "services-keeps-passwords"
fi
args=""
((${#TEST_ARGS[@]} == 0)) || args=$(printf ' %q' "${TEST_ARGS[@]}")
set +e
ip netns exec "$NS" nice -n 19 chroot "$R" /usr/bin/env -i "${ROOT_ENV[@]}" /bin/bash -c "cd /root/booking && exec scripts/test.sh$args" >"$LOGS/test.log" 2>&1
test_rc=$?
set -e
grep -E '^ok services-keeps|^FAIL|^test result:|FAILED|panicked' "$LOGS/test.log" | sort | uniq -c | sed 's/^/   /'
disk
((test_rc == 0)) || { tail -30 "$LOGS/test.log"; fail "scripts/test.sh exited $test_rc"; }
echo "   scripts/test.sh passed"
