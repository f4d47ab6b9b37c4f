# shellcheck shell=bash
# scripts/lib.sh — helpers shared by the ogx scripts (sourced, never run). Installs nothing.
#
# Defines: the repo root, the host and plugin target directories, and step/log printing.

OGX_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export OGX_ROOT

# Where cargo puts the host build: honour CARGO_TARGET_DIR (CI may keep it outside the clone).
OGX_HOST_TARGET_DIR="${CARGO_TARGET_DIR:-$OGX_ROOT/target}"
# The plugins are a separate cargo workspace; with CARGO_TARGET_DIR set they build in a
# subfolder of it, otherwise in plugins/target.
if [[ -n "${CARGO_TARGET_DIR:-}" ]]; then
    OGX_PLUGINS_TARGET_DIR="$CARGO_TARGET_DIR/wasm-plugins"
else
    OGX_PLUGINS_TARGET_DIR="$OGX_ROOT/plugins/target"
fi
export OGX_HOST_TARGET_DIR OGX_PLUGINS_TARGET_DIR

# Written by setup.sh: which way plugins are built on this machine (path A or B).
OGX_STATE_DIR="$OGX_ROOT/.ogx"
OGX_WASM_ENV_FILE="$OGX_STATE_DIR/wasm-toolchain.env"

# Colours only on a terminal (CI logs get plain text).
if [[ -t 2 ]]; then
    _B=$'\033[1m' _Y=$'\033[33m' _R=$'\033[31m' _N=$'\033[0m'
else
    _B='' _Y='' _R='' _N=''
fi
step() { printf '\n%s==> %s%s\n' "$_B" "$*" "$_N" >&2; }
info() { printf '    %s\n' "$*" >&2; }
warn() { printf '%sWARNING:%s %s\n' "$_Y" "$_N" "$*" >&2; }
die()  { printf '%sERROR:%s %s\n' "$_R" "$_N" "$*" >&2; exit 1; }

# Print a command, then run it.
run() { printf '    $ %s\n' "$*" >&2; "$@"; }

# Seconds since the epoch, for the timings printed at the end of each script.
now() { date +%s; }

# Load the plugin toolchain decision made by setup.sh (running the wasm step if needed).
load_wasm_toolchain() {
    if [[ ! -f "$OGX_WASM_ENV_FILE" ]]; then
        bash "$OGX_ROOT/scripts/setup.sh" wasm
    fi
    # shellcheck source=/dev/null
    source "$OGX_WASM_ENV_FILE"
}

# Lists the plugins/ workspace members that build a component (crate-type cdylib), one per line:
# <package name> TAB <wasm file stem> TAB <folder under plugins/> TAB provider|fixture
# (fixture = under plugins/fixtures/: test plugins, never installed as built-ins).
# Needs load_wasm_toolchain first (cargo runs with the plugin toolchain's flags).
plugin_members() {
    # shellcheck disable=SC2086 # OGX_PLUGIN_CARGO_FLAGS is a list of words
    (cd "$OGX_ROOT/plugins" && cargo $OGX_PLUGIN_CARGO_FLAGS metadata --format-version 1 --no-deps) |
        python3 -c '
import json, os, sys
meta = json.load(sys.stdin)
root = meta["workspace_root"]
members = set(meta["workspace_members"])
for pkg in meta["packages"]:
    if pkg["id"] not in members:
        continue
    rel = os.path.relpath(os.path.dirname(pkg["manifest_path"]), root)
    kind = "fixture" if rel == "fixtures" or rel.startswith("fixtures" + os.sep) else "provider"
    for target in pkg["targets"]:
        if "cdylib" in target["kind"]:
            print("\t".join([pkg["name"], target["name"].replace("-", "_"), rel, kind]))
'
}
