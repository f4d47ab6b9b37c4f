#!/usr/bin/env bash
# scripts/serve.sh — build ogx and its plugins, and start the gateway on port 8321 with
# config/example.yaml. Extra arguments go to `ogx run`.
#
#   1. In the background, scripts/build-plugins.sh: first scripts/setup.sh wasm, the wasm
#      toolchain for the plugins, wasm32-wasip2 only (path A or B; see that script; run in the
#      foreground instead when sudo would ask for a password), then the provider plugins only
#      (not the test fixtures), installed next to the binary in
#      ${CARGO_TARGET_DIR:-target}/<profile>/plugins/; its output goes to
#      .ogx/serve-plugins.log and is shown if it fails. Nothing else is installed: no Debian
#      packages for the tests (python3 is enough for the demo upstream), no cargo-component, no
#      test virtualenv.
#   2. Meanwhile, in the foreground: `cargo build --profile quick -p ogx`, the profile that is
#      optimised but quick to build from scratch (root Cargo.toml; OGX_PROFILE=release builds the
#      fastest binary, as the benchmark and distribution use, several times slower to build;
#      OGX_PROFILE=debug an unoptimised one).
#   3. Unless OGX_EXAMPLE_UPSTREAM is set, a demo OpenAI-compatible upstream
#      (tests/mock_openai.py, standard library only) on 127.0.0.1:8000, which config/example.yaml
#      points at by default; it is stopped when ogx exits.
#   4. ogx run --port 8321 config/example.yaml, in the foreground; Ctrl-C stops both.
# Then: curl localhost:8321/v1/models
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PROFILE="${OGX_PROFILE:-quick}"
PORT=8321
CONFIG="config/example.yaml"
UPSTREAM_PORT=8000
MOCK="tests/mock_openai.py"
MOCK_PID=""
OGX_PID=""
PLUGINS_PID=""
PLUGINS_LOG="$OGX_STATE_DIR/serve-plugins.log"

# port_open PORT: is something listening on 127.0.0.1:PORT?
port_open() {
    python3 -c 'import socket, sys
s = socket.socket(); s.settimeout(0.5)
sys.exit(0 if s.connect_ex(("127.0.0.1", int(sys.argv[1]))) == 0 else 1)' "$1"
}

stop_children() {
    trap - EXIT INT TERM
    if [[ -n "$PLUGINS_PID" ]] && kill -0 "$PLUGINS_PID" 2>/dev/null; then
        info "stopping the plugin build (process group $PLUGINS_PID)"
        kill -TERM -- "-$PLUGINS_PID" 2>/dev/null || true
        wait "$PLUGINS_PID" 2>/dev/null || true
    fi
    if [[ -n "$OGX_PID" ]] && kill -0 "$OGX_PID" 2>/dev/null; then
        info "stopping ogx (pid $OGX_PID)"
        kill -TERM "$OGX_PID" 2>/dev/null || true
        wait "$OGX_PID" 2>/dev/null || true
    fi
    if [[ -n "$MOCK_PID" ]] && kill -0 "$MOCK_PID" 2>/dev/null; then
        info "stopping the demo upstream (pid $MOCK_PID)"
        kill -TERM "$MOCK_PID" 2>/dev/null || true
        wait "$MOCK_PID" 2>/dev/null || true
    fi
}

check_profile() {
    case "$PROFILE" in
        quick | release | debug) ;;
        *) die "OGX_PROFILE must be quick (the default), release or debug (got '$PROFILE')" ;;
    esac
}

# Builds the host into $OGX_HOST_TARGET_DIR/$PROFILE/ogx (cargo's profile `dev` is the folder debug).
build_host() {
    local cargo_profile="$PROFILE"
    case "$PROFILE" in
        quick) step "host: cargo build --profile quick -p ogx (optimised, quick to build: a few minutes the first time)" ;;
        release) step "host: cargo build --profile release -p ogx (the fastest binary: LTO across every crate; the first build takes long)" ;;
        debug) cargo_profile=dev; step "host: cargo build -p ogx (unoptimised)" ;;
    esac
    local started
    started="$(now)"
    (cd "$OGX_ROOT" && run cargo build --profile "$cargo_profile" -p ogx)
    info "host built in $(($(now) - started))s"
}

# Builds and installs the plugins in the background (its own process group, so that Ctrl-C
# stops the whole build), while the host builds: on 2 cores the host's build leaves a core idle
# for much of its end (its last crates, the link).
start_plugin_build() {
    mkdir -p "$OGX_STATE_DIR"
    step "plugins: building in the background while the host builds (log: ${PLUGINS_LOG#"$OGX_ROOT"/})"
    setsid bash "$OGX_ROOT/scripts/build-plugins.sh" --profile "$PROFILE" >"$PLUGINS_LOG" 2>&1 &
    PLUGINS_PID=$!
}

wait_plugin_build() {
    local rc=0
    wait "$PLUGINS_PID" || rc=$?
    PLUGINS_PID=""
    if [[ $rc != 0 ]]; then
        tail -n 40 "$PLUGINS_LOG" >&2
        die "the plugin build failed (exit $rc); its whole log: $PLUGINS_LOG"
    fi
    grep -E 'plugins built in|installed .*\.wasm' "$PLUGINS_LOG" | sed 's/^ *//; s/^/    /' >&2 || true
}

start_demo_upstream() {
    if [[ -n "${OGX_EXAMPLE_UPSTREAM:-}" ]]; then
        step "upstream: OGX_EXAMPLE_UPSTREAM=$OGX_EXAMPLE_UPSTREAM (no demo upstream started)"
        return 0
    fi
    step "upstream: demo OpenAI-compatible server ($MOCK) on 127.0.0.1:$UPSTREAM_PORT"
    if port_open "$UPSTREAM_PORT"; then
        warn "127.0.0.1:$UPSTREAM_PORT is already in use; using whatever listens there as the upstream"
        return 0
    fi
    [[ -f "$OGX_ROOT/$MOCK" ]] || die "$MOCK is missing; set OGX_EXAMPLE_UPSTREAM to a real OpenAI-compatible server"
    local python=python3
    [[ -x "$OGX_ROOT/.venv/bin/python" ]] && python="$OGX_ROOT/.venv/bin/python"
    (cd "$OGX_ROOT" && exec "$python" "$MOCK" --port "$UPSTREAM_PORT") &
    MOCK_PID=$!
    local _
    for _ in $(seq 1 100); do
        port_open "$UPSTREAM_PORT" && break
        kill -0 "$MOCK_PID" 2>/dev/null || die "the demo upstream exited before listening"
        sleep 0.1
    done
    port_open "$UPSTREAM_PORT" || die "the demo upstream did not listen on 127.0.0.1:$UPSTREAM_PORT within 10s"
    info "demo upstream listening (pid $MOCK_PID); stopped when ogx exits"
}

run_ogx() {
    local bin="$OGX_HOST_TARGET_DIR/$PROFILE/ogx"
    step "ogx: $bin run --port $PORT $CONFIG $*"
    info "then, from another terminal: curl localhost:$PORT/v1/models   (Ctrl-C here stops it)"
    # In the background plus `wait`, so that the traps below run as soon as a signal arrives.
    (cd "$OGX_ROOT" && exec "$bin" run --port "$PORT" "$CONFIG" "$@") &
    OGX_PID=$!
    local rc=0
    wait "$OGX_PID" || rc=$?
    OGX_PID=""
    return "$rc"
}

main() {
    trap stop_children EXIT
    trap 'stop_children; exit 130' INT
    trap 'stop_children; exit 143' TERM
    check_profile
    command -v python3 >/dev/null || die "python3 is missing (the demo upstream and this script use it): bash scripts/setup.sh apt"
    # Serving needs the wasm32-wasip2 target only (wasm32-wasip1 is for cargo-component's check
    # in scripts/test.sh).
    export OGX_WASM_TARGETS=wasm32-wasip2
    if [[ "$(id -u)" == 0 ]] || sudo -n true 2>/dev/null; then
        info "the wasm set-up runs with the plugin build, in the background (no password to ask)"
    else
        # Path B installs Debian packages through sudo, which may ask for a password here.
        bash "$OGX_ROOT/scripts/setup.sh" wasm
    fi
    # build-plugins.sh runs the wasm set-up itself (which only checks, once it is done).
    start_plugin_build
    build_host
    wait_plugin_build
    start_demo_upstream
    run_ogx "$@"
}

main "$@"
