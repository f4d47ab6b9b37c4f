#!/usr/bin/env bash
# scripts/serve.sh — set up, build ogx and its plugins, and start the gateway on port 8321 with
# config/example.yaml. Extra arguments go to `ogx run`.
#
#   1. scripts/setup.sh apt wasm: Debian packages and the wasm toolchain (path A or B; see that
#      script). cargo-component and the test virtualenv are not needed here.
#   2. `cargo build --release -p ogx` (OGX_PROFILE=debug for a quicker, slower-running build).
#   3. scripts/build-plugins.sh: the plugins, installed next to the binary in
#      ${CARGO_TARGET_DIR:-target}/<profile>/plugins/.
#   4. Unless OGX_EXAMPLE_UPSTREAM is set, a demo OpenAI-compatible upstream
#      (tests/mock_openai.py, standard library only) on 127.0.0.1:8000, which config/example.yaml
#      points at by default; it is stopped when ogx exits.
#   5. ogx run --port 8321 config/example.yaml, in the foreground; Ctrl-C stops both.
# Then: curl localhost:8321/v1/models
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PROFILE="${OGX_PROFILE:-release}"
PORT=8321
CONFIG="config/example.yaml"
UPSTREAM_PORT=8000
MOCK="tests/mock_openai.py"
MOCK_PID=""
OGX_PID=""

# port_open PORT: is something listening on 127.0.0.1:PORT?
port_open() {
    python3 -c 'import socket, sys
s = socket.socket(); s.settimeout(0.5)
sys.exit(0 if s.connect_ex(("127.0.0.1", int(sys.argv[1]))) == 0 else 1)' "$1"
}

stop_children() {
    trap - EXIT INT TERM
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

build_host() {
    local flags=()
    [[ "$PROFILE" == release ]] && flags=(--release)
    [[ "$PROFILE" == release || "$PROFILE" == debug ]] || die "OGX_PROFILE must be release or debug"
    step "host: cargo build ${flags[*]} -p ogx (profile $PROFILE; the first build takes several minutes)"
    (cd "$OGX_ROOT" && run cargo build "${flags[@]}" -p ogx)
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
    bash "$OGX_ROOT/scripts/setup.sh" apt wasm
    build_host
    bash "$OGX_ROOT/scripts/build-plugins.sh" --profile "$PROFILE"
    start_demo_upstream
    run_ogx "$@"
}

main "$@"
