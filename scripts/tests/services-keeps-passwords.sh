#!/usr/bin/env bash
# A test of scripts/services.sh: no password of an existing role changes.
#
# On the PostgreSQL of 127.0.0.1 (superuser access without a password: the local
# socket as the postgres OS user, or trust over TCP) it creates two roles with known
# passwords (one of them named like the platform's role would be), runs
# `services.sh ensure` the ways it chooses a login, and compares every pre-existing
# role's password hash (pg_authid.rolpassword) before and after: a password check
# would prove nothing on a server that trusts 127.0.0.1. Its roles are dropped at
# the end. Takes a few seconds; scripts/test.sh runs it before `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/../.."
PG_PORT=5432

fail() {
    echo "FAIL services-keeps-passwords: $*" >&2
    exit 1
}

admin() {
    local opts=(-qXtA -v ON_ERROR_STOP=1 -p "$PG_PORT" -d postgres -c "$1")
    if [[ $(id -u) -eq 0 ]] && (cd / && su postgres -s /bin/bash -c "exec psql $(printf '%q ' "${opts[@]}")") 2>/dev/null; then
        return 0
    fi
    PGCONNECT_TIMEOUT=5 psql -w -h 127.0.0.1 -U postgres "${opts[@]}"
}

admin 'select 1' >/dev/null || fail "no superuser access without a password to the PostgreSQL of 127.0.0.1:$PG_PORT"

suffix=$(od -An -tx1 -N4 /dev/urandom | tr -d ' \n')
user_role="pwtest_user_$suffix"   # someone's role with a password
clash_role="pwtest_clash_$suffix" # someone's role that has the platform role's name
own_role="pwtest_own_$suffix"     # the platform's role, for this test
state=$(mktemp -d "${TMPDIR:-/tmp}/pwtest.XXXXXX")
cleanup() {
    admin "drop role if exists $user_role; drop role if exists $clash_role; drop role if exists $own_role" >/dev/null || true
    rm -rf "$state"
}
trap cleanup EXIT

admin "create role $user_role login password 'user-password'" >/dev/null
admin "create role $clash_role login password 'clash-password'" >/dev/null

hashes() {
    admin "select rolname || ' ' || coalesce(rolpassword, '-') from pg_authid order by rolname"
}
before=$(hashes)

# Every role of BEFORE that still exists has the same hash now.
same_hashes() {
    local now name hash
    now=$(hashes)
    while read -r name hash; do
        local after
        after=$(awk -v n="$name" '$1 == n { print $2 }' <<<"$now")
        [[ -z $after || $after == "$hash" ]] || fail "$1: the password of the role $name changed"
    done <<<"$before"
}

services() {
    env -u DATABASE_URL SERVICES_STATE_DIR="$state" "$@" scripts/services.sh ensure >"$state/out" 2>&1
}

# 1. The login it chooses by itself (postgres where the server lets it in as it is,
# else a role of its own).
services SERVICES_PG_ROLE="$own_role" || { cat "$state/out" >&2; fail "ensure failed"; }
same_hashes "ensure"

# 2. The platform's role name is taken by someone's role: it refuses, touches nothing.
if services BOOKING_PG_OWN_ROLE=1 SERVICES_PG_ROLE="$clash_role"; then
    fail "ensure accepted a role it did not create: $(cat "$state/out")"
fi
grep -q "did not create" "$state/out" || fail "no word about the existing role: $(cat "$state/out")"
same_hashes "ensure with a clashing role name"

# 3. A role of its own: created, marked, its URL stored for run.sh/test.sh only.
rm -f "$state/database-url"
services BOOKING_PG_OWN_ROLE=1 SERVICES_PG_ROLE="$own_role" || { cat "$state/out" >&2; fail "ensure with its own role failed"; }
same_hashes "ensure with its own role"
[[ $(admin "select shobj_description(oid, 'pg_authid') from pg_roles where rolname = '$own_role'") == *"scripts/services.sh"* ]] \
    || fail "the role $own_role was not created with its mark"
[[ $(<"$state/database-url") == "postgres://$own_role:"*"@127.0.0.1:$PG_PORT" ]] || fail "the stored URL is not the own role's"
[[ $(stat -c %a "$state/database-url") == 600 ]] || fail "the stored URL is readable by others"

# 4. Again: the stored login still works, so even its own role's password stays.
own_hash=$(admin "select rolpassword from pg_authid where rolname = '$own_role'")
services BOOKING_PG_OWN_ROLE=1 SERVICES_PG_ROLE="$own_role" || { cat "$state/out" >&2; fail "a second ensure failed"; }
same_hashes "a second ensure"
[[ $(admin "select rolpassword from pg_authid where rolname = '$own_role'") == "$own_hash" ]] \
    || fail "a second ensure changed the password of its own role"

echo "ok services-keeps-passwords: no password of an existing role changed (4 runs of services.sh ensure)"
