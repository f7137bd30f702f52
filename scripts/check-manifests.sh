#!/usr/bin/env bash
# Validate the Kubernetes manifests offline, without a cluster:
#
#   scripts/check-manifests.sh [DIR]        (default deploy/k8s)
#
# 1. every manifest in DIR against the Kubernetes schemas, strictly (unknown fields
#    refused), with the `kubernetes-validate` tool from PyPI, installed once into a
#    virtualenv under .run/; the operator resources in DIR/references (CRDs, which
#    those schemas do not know) are parsed and must name apiVersion, kind and name;
# 2. every APP__SECTION__KEY variable the manifests set names a real setting of
#    config/default.toml (a typo would otherwise be ignored at run time).
# Exits non-zero on the first problem.
set -euo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DIR=${1:-$REPO_ROOT/deploy/k8s}
VERSION=1.37.0
VENV=$REPO_ROOT/.run/k8s-validate-$VERSION

die() {
    echo "check-manifests: $*" >&2
    exit 1
}

[[ -d $DIR ]] || die "no manifest folder at $DIR"
mkdir -p "$REPO_ROOT/.run"
# One install at a time (the tests run this script in parallel).
exec 9>"$VENV.lock"
flock 9
if [[ ! -x $VENV/bin/kubernetes-validate ]]; then
    echo "check-manifests: installing kubernetes-validate $VERSION into $VENV" >&2
    rm -rf "$VENV"
    python3 -m venv "$VENV" || die "python3 -m venv failed (Debian: apt-get install python3-venv)"
    "$VENV/bin/pip" install -q "kubernetes-validate==$VERSION" || die "pip install kubernetes-validate failed"
fi
flock -u 9

shopt -s nullglob
manifests=("$DIR"/*.yaml)
((${#manifests[@]})) || die "no manifests in $DIR"
"$VENV/bin/kubernetes-validate" --strict --quiet "${manifests[@]}"

"$VENV/bin/python" - "$DIR" "$REPO_ROOT/config/default.toml" <<'PY'
import pathlib, re, sys, tomllib, yaml

folder, defaults = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
settings = tomllib.loads(defaults.read_text())
problems = []

def known(var):
    """APP__A__B names settings[a][b]; below a map setting (an empty table in the
    defaults, such as the ticket keys by key id) any key is allowed."""
    node = settings
    for part in var.split("__")[1:]:
        if not isinstance(node, dict):
            return False
        if part.lower() in node:
            node = node[part.lower()]
        else:
            return node == {}
    return not isinstance(node, dict) or node == {}

def walk(x, where):
    if isinstance(x, dict):
        for k, v in x.items():
            if isinstance(k, str) and k.startswith("APP__"):
                yield k, where
            if k in ("name", "secretKey") and isinstance(v, str) and v.startswith("APP__"):
                yield v, where
            yield from walk(v, where)
    elif isinstance(x, list):
        for v in x:
            yield from walk(v, where)

files = sorted(folder.glob("*.yaml")) + sorted(folder.glob("references/*.yaml"))
for f in files:
    for doc in yaml.safe_load_all(f.read_text()):
        if doc is None:
            continue
        name = doc.get("metadata", {}).get("name")
        if not (doc.get("apiVersion") and doc.get("kind") and name):
            problems.append(f"{f.name}: a document without apiVersion, kind or metadata.name")
        for var, where in walk(doc, f.name):
            if not known(var):
                problems.append(f"{where}: {var} is not a setting of config/default.toml")
for p in problems:
    print(f"check-manifests: {p}", file=sys.stderr)
if problems:
    sys.exit(1)
print(f"check-manifests: {len(files)} files valid (Kubernetes schemas, strict; settings names)")
PY
