#!/usr/bin/env bash
# scripts/bench.sh — the load benchmark: ogx (release) in front of a fast OpenAI-compatible
# upstream, against that upstream directly (the floor), with oha at fixed rates and at
# saturation. Prints one table of medians (see README, "Performance").
#
# Usage: scripts/bench.sh [--quick] [--rounds N] [--seconds S] [--rates 100,500,...]
#   --quick    one round of 3 s loads (a few minutes in all)
#   (default)  3 rounds of 10 s loads at 100, 500, 1000, 2000, 5000 req/s and 256 concurrent
#
# Does its own set-up: release builds of ogx and of bench/upstream, the release plugins,
# `cargo install oha --locked` when oha is missing. Starts everything on 127.0.0.1 and stops
# every process it started when it ends, fails or is interrupted.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# oha's release the table was made with; another version may print other JSON.
OHA_VERSION="${OGX_BENCH_OHA_VERSION:-1}"

usage() { sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; }

find_oha() {
    if command -v oha >/dev/null 2>&1; then
        command -v oha
    elif [[ -x "$HOME/.cargo/bin/oha" ]]; then
        echo "$HOME/.cargo/bin/oha"
    fi
}

peer_notes() {
    # OGX (PyPI `ogx`) needs Python >= 3.12; LiteLLM's proxy pulls hundreds of packages. Neither
    # is installed by this script: each line says why the peer is not in the table.
    local py found=""
    for py in python3.14 python3.13 python3.12; do
        if command -v "$py" >/dev/null 2>&1 && "$py" -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then
            found="$py"
            break
        fi
    done
    if [[ -z "$found" ]]; then
        echo "OGX: skipped: it needs Python >= 3.12 and this machine has $(python3 --version 2>&1)"
    else
        echo "OGX: skipped: $found is here, but installing OGX from PyPI is not part of this run; see the issue's reference numbers in the README"
    fi
    echo "LiteLLM: skipped: not installed by this script (its proxy pulls hundreds of packages)"
}

main() {
    local args=()
    while [[ $# -gt 0 ]]; do
        case "$1" in
            -h | --help) usage; exit 0 ;;
            *) args+=("$1"); shift ;;
        esac
    done

    step "bench: release build of ogx and of the benchmark upstream"
    (cd "$OGX_ROOT" && run cargo build --release -p ogx -p ogx-bench-upstream)
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

    local notes=() note
    while IFS= read -r note; do notes+=(--peer-note "$note"); done < <(peer_notes)

    step "bench: running (progress on stderr, the table on stdout)"
    # OGX_BENCH_OGX may name another ogx binary (an earlier build, to compare).
    export OGX_BENCH_OGX="${OGX_BENCH_OGX:-$OGX_HOST_TARGET_DIR/release/ogx}"
    export OGX_BENCH_PLUGINS="$OGX_HOST_TARGET_DIR/release/plugins"
    export OGX_BENCH_UPSTREAM="$OGX_HOST_TARGET_DIR/release/ogx-bench-upstream"
    export OGX_BENCH_OHA="$oha"
    # exec: Ctrl-C and SIGTERM reach run.py, which stops what it started.
    exec python3 "$OGX_ROOT/bench/run.py" "${notes[@]}" "${args[@]}"
}

main "$@"
