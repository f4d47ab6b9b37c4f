#!/usr/bin/env bash
# scripts/build-plugins.sh — build the plugins of the plugins/ workspace for wasm32-wasip2
# (release) and install the provider plugins as ogx's built-in plugins: the folder `plugins/`
# next to the ogx binary, i.e. ${CARGO_TARGET_DIR:-target}/<profile>/plugins/.
#
# Usage: scripts/build-plugins.sh [--profile debug|quick|release] [--with-fixtures] [--no-install]
#   --profile        which host build (the folder under target/) gets the plugins (default: debug)
#   --with-fixtures  also build the test plugins of plugins/fixtures/ and install them there
#                    (scripts/test.sh does, for the end-to-end tests); without it only the
#                    provider plugins are built
#   --no-install     build only (the whole workspace, fixtures included)
#
# Installs nothing itself except through scripts/setup.sh's `wasm` step (path A: rustup targets;
# path B: Debian's toolchain with build-std; see that script). Every built plugin stays in the
# wasm target folder printed at the end (OGX_PLUGINS_TARGET_DIR in scripts/lib.sh).
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

WASM_TARGET=wasm32-wasip2

usage() { sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; }

# build_plugins SELECTION...: `--workspace`, or `-p <package>` for each plugin to build.
build_plugins() {
    step "plugins: cargo build --target $WASM_TARGET --release (path $OGX_WASM_PATH)"
    local started
    started="$(now)"
    # shellcheck disable=SC2086
    (cd "$OGX_ROOT/plugins" &&
        CARGO_TARGET_DIR="$OGX_PLUGINS_TARGET_DIR" run cargo $OGX_PLUGIN_CARGO_FLAGS build "$@" --target "$WASM_TARGET" --release)
    info "plugins built in $(($(now) - started))s"
}

install_plugins() {
    local profile="$1" kinds="$2"
    local dest="$OGX_HOST_TARGET_DIR/$profile/plugins"
    local out="$OGX_PLUGINS_TARGET_DIR/$WASM_TARGET/release"
    step "plugins: installing the ${kinds/|/ and } plugins into ${dest}"
    local libs
    libs="$(plugin_members | awk -F'\t' -v kinds="^($kinds)\$" '$4 ~ kinds { print $2 }')"
    [[ -n "$libs" ]] || die "plugins/ has no provider plugin (a member with crate-type cdylib outside fixtures/)"
    mkdir -p "$dest"
    # The folder belongs to the set-up: drop plugins that are no longer built.
    find "$dest" -maxdepth 1 -name '*.wasm' -delete
    local lib
    while IFS= read -r lib; do
        [[ -f "$out/$lib.wasm" ]] || die "expected $out/$lib.wasm after the build"
        cp "$out/$lib.wasm" "$dest/"
        info "installed $lib.wasm ($(wc -c <"$dest/$lib.wasm") bytes)"
    done <<<"$libs"
}

main() {
    local profile=debug install=1 kinds=provider
    while [[ $# -gt 0 ]]; do
        case "$1" in
            --profile) profile="${2:?--profile needs debug, quick or release}"; shift 2 ;;
            --profile=*) profile="${1#--profile=}"; shift ;;
            --no-install) install=0; shift ;;
            --with-fixtures) kinds="provider|fixture"; shift ;;
            -h | --help) usage; exit 0 ;;
            *) usage >&2; die "unknown argument '$1'" ;;
        esac
    done
    [[ -f "$OGX_ROOT/plugins/Cargo.toml" ]] || die "plugins/Cargo.toml not found: the plugins workspace is missing"

    bash "$OGX_ROOT/scripts/setup.sh" wasm
    load_wasm_toolchain
    if [[ $install == 1 ]]; then
        # Only what gets installed: serving does not need the test fixtures built.
        local selection=() package
        while IFS= read -r package; do selection+=(-p "$package"); done < <(
            plugin_members | awk -F'\t' -v kinds="^($kinds)\$" '$4 ~ kinds { print $1 }')
        [[ ${#selection[@]} -gt 0 ]] || die "plugins/ has no plugin of kind $kinds (a member with crate-type cdylib)"
        build_plugins "${selection[@]}"
        install_plugins "$profile" "$kinds"
    else
        build_plugins --workspace
    fi
    info "built plugins: $OGX_PLUGINS_TARGET_DIR/$WASM_TARGET/release/"
}

main "$@"
