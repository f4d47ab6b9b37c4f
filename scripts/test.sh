#!/usr/bin/env bash
# scripts/test.sh — set up, build everything, run every test. Exits non-zero on any failure;
# the last lines are the summary of step 7 (OGX 1.5.0's own tests).
#
#   1. scripts/setup.sh: Debian packages, the wasm toolchain (path A or B), cargo-component
#      0.21.1 in ~/.cargo/bin, .venv with tests/requirements*.txt, and Claude Code from npm
#      into ~/.cache/ogx-tests (see that script).
#   2. host: `cargo build` of the root workspace (debug profile); its `cargo test` runs after
#      step 3, because the runtime's tests load the fixture plugins built there, and inside
#      tests/postgres_server.py, which starts a private PostgreSQL cluster on 127.0.0.1 for it
#      (OGX_TEST_POSTGRES_URL) and stops it afterwards, also on failure.
#   3. plugins: scripts/build-plugins.sh (`cargo build --target wasm32-wasip2 --release` of the
#      plugins/ workspace), installed with the test fixtures into
#      ${CARGO_TARGET_DIR:-target}/debug/plugins/; then `ogx plugins list` must load every
#      provider plugin (fixtures excluded: some of them must fail to load).
#   4. plugins: their unit tests, the `cargo test` lines of plugins/README.md (see below).
#   5. cargo-component: `cargo component build --release` of one provider plugin; the component
#      it produces must load in `ogx plugins list --plugins-dir <dir>`.
#   6. end to end: `python3 -m pytest -q -n 3 --dist loadfile tests/` in .venv (pytest-xdist;
#      OGX_TEST_WORKERS sets the number of workers, 0 for none) against the built binary and
#      plugins (exit code 5, "no tests collected", is a failure); its `postgres` fixture starts
#      and stops its own private PostgreSQL cluster (one per worker).
#   7. OGX 1.5.0's own integration tests, unmodified, over HTTP against the built binary and
#      plugins: tests/ogx_suite/run.py (a Python >= 3.12 virtualenv and OGX's sdist in
#      ${XDG_CACHE_HOME:-~/.cache}/ogx-tests, a loopback upstream replaying OGX's recordings;
#      see tests/README.md). Its last line is its summary: `ogx-suite OK|FAILED: ...`.
#
# Environment passed to pytest: OGX_BIN (the debug binary), OGX_PLUGINS_DIR (the built-in
# folder: provider plugins and test fixtures), OGX_ROOT.
# Options (environment): OGX_COMPONENT_CHECK_PACKAGE=<package> picks the cargo-component plugin;
# OGX_PLUGIN_TEST_CMD overrides the plugin unit-test command; PYTEST_ADDOPTS works as usual.
# All test traffic stays on 127.0.0.1.
set -Eeuo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PROFILE=debug
OGX_BIN="$OGX_HOST_TARGET_DIR/$PROFILE/ogx"
BUILTIN_PLUGINS_DIR="$OGX_HOST_TARGET_DIR/$PROFILE/plugins"
TIMINGS=()
CURRENT_STEP="setup"

# Names the failed step, except after the test suites, whose own summaries must stay the last lines.
on_exit() {
    local rc=$?
    if [[ $rc != 0 && "$CURRENT_STEP" != "end-to-end tests" && "$CURRENT_STEP" != "OGX 1.5.0 tests" ]]; then
        printf '\n%sFAILED%s (exit %s) in step: %s\n' "$_R" "$_N" "$rc" "$CURRENT_STEP" >&2
    fi
}
trap on_exit EXIT

# timed NAME CMD...: runs a step and records how long it took.
timed() {
    local name="$1" started
    shift
    CURRENT_STEP="$name"
    started="$(now)"
    "$@"
    TIMINGS+=("$(printf '%-28s %5ss' "$name" "$(($(now) - started))")")
}

host_build() {
    step "host: cargo build --workspace (debug)"
    (cd "$OGX_ROOT" && run cargo build --workspace)
    [[ -x "$OGX_BIN" ]] || die "the build did not produce $OGX_BIN"
}

# The runtime's tests load the fixture plugins (trap, spin, hog, ...) from the plugins build; the
# storage tests use a private PostgreSQL cluster that postgres_server.py runs around cargo test.
host_tests() {
    step "host: cargo test --workspace (fixture plugins from $BUILTIN_PLUGINS_DIR, a private PostgreSQL)"
    (cd "$OGX_ROOT" && OGX_TEST_PLUGINS_DIR="$BUILTIN_PLUGINS_DIR" run "$OGX_ROOT/.venv/bin/python" \
        "$OGX_ROOT/tests/postgres_server.py" run -- cargo test --workspace)
}

# plugins_list_isolated WASM...: runs `ogx plugins list --plugins-dir <dir>` on a folder holding
# only these files. The binary is hard-linked into a scratch folder (so its built-in folder is
# empty) and HOME points there (no ~/.ogx/plugins). Fails unless it exits 0 and names every file
# on lines that say no error/failed/refused/rejected/invalid.
plugins_list_isolated() {
    local scratch="$OGX_HOST_TARGET_DIR/ogx-plugins-check"
    local dir="$scratch/plugins-under-test"
    rm -rf "$scratch"
    mkdir -p "$scratch/bin" "$scratch/home" "$dir"
    cp "$@" "$dir/"
    ln "$OGX_BIN" "$scratch/bin/ogx" 2>/dev/null || cp "$OGX_BIN" "$scratch/bin/ogx"
    local output rc=0
    printf '    $ ogx plugins list --plugins-dir %s\n' "$dir" >&2
    output="$(cd "$scratch" && env -u OGX_PLUGINS_DIR HOME="$scratch/home" "$scratch/bin/ogx" plugins list --plugins-dir "$dir" 2>&1)" || rc=$?
    printf '%s\n' "$output" | sed 's/^/    | /' >&2
    rm -rf "$scratch"
    [[ $rc == 0 ]] || die "ogx plugins list exited with $rc"
    local wasm name lines
    for wasm in "$@"; do
        name="$(basename "$wasm")"
        lines="$(printf '%s\n' "$output" | grep -F "$name")" || die "ogx plugins list did not show $name"
        if printf '%s\n' "$lines" | grep -qiwE 'error|failed|refused|rejected|invalid'; then
            die "ogx plugins list did not load $name"
        fi
    done
    info "ogx loaded: $(for wasm in "$@"; do basename "$wasm"; done | tr '\n' ' ')"
}

plugins_build_and_install() {
    run bash "$OGX_ROOT/scripts/build-plugins.sh" --profile "$PROFILE" --with-fixtures
    load_wasm_toolchain
    step "plugins: the provider plugins load in ogx"
    local files=() stem
    while IFS= read -r stem; do
        files+=("$BUILTIN_PLUGINS_DIR/$stem.wasm")
    done < <(plugin_members | awk -F'\t' '$4 == "provider" { print $2 }')
    plugins_list_isolated "${files[@]}"
}

# ---- PLUGIN UNIT TESTS: the plugins' pure logic -------------------------------------------------
# The commands are the lines of plugins/README.md that start with `cargo test` (today:
# `cargo test --target x86_64-unknown-linux-gnu -p ogx-provider-sdk` and the same for
# `-p ogx-plugin-openai --lib`: native, no wasm runtime needed); each runs in plugins/.
# OGX_PLUGIN_TEST_CMD (one shell command) replaces them. None documented: the step is skipped.
plugin_unit_tests() {
    local cmds=()
    if [[ -n "${OGX_PLUGIN_TEST_CMD:-}" ]]; then
        cmds=("$OGX_PLUGIN_TEST_CMD")
    elif [[ -f "$OGX_ROOT/plugins/README.md" ]]; then
        mapfile -t cmds < <(sed -nE 's/^[[:space:]]*(\$[[:space:]]+)?(cargo test[^#`]*).*$/\2/p' "$OGX_ROOT/plugins/README.md")
    fi
    if [[ ${#cmds[@]} -eq 0 ]]; then
        step "plugins: unit tests SKIPPED: plugins/README.md documents no 'cargo test' line"
        return 0
    fi
    step "plugins: unit tests (the 'cargo test' lines of plugins/README.md)"
    local cmd
    for cmd in "${cmds[@]}"; do
        (cd "$OGX_ROOT/plugins" && CARGO_TARGET_DIR="$OGX_PLUGINS_TARGET_DIR" run bash -c "$cmd")
    done
}
# -------------------------------------------------------------------------------------------------

# Builds one provider plugin with `cargo component build --release` (which targets wasm32-wasip1
# and adapts it into a component) and checks that ogx loads the result.
cargo_component_check() {
    load_wasm_toolchain
    local members pkg stem
    members="$(plugin_members)"
    if [[ -n "${OGX_COMPONENT_CHECK_PACKAGE:-}" ]]; then
        pkg="$OGX_COMPONENT_CHECK_PACKAGE"
    else
        # the OpenAI-compatible plugin if there is one, else the first provider plugin
        pkg="$(awk -F'\t' '$4 == "provider" && $3 == "openai" { print $1 }' <<<"$members")"
        [[ -n "$pkg" ]] || pkg="$(awk -F'\t' '$4 == "provider" { print $1; exit }' <<<"$members")"
    fi
    stem="$(awk -F'\t' -v p="$pkg" '$1 == p { print $2 }' <<<"$members")"
    [[ -n "$stem" ]] || die "no plugin package '$pkg' with a cdylib in plugins/"

    step "cargo-component: cargo component build --release -p $pkg (path $OGX_WASM_PATH)"
    local out="$OGX_PLUGINS_TARGET_DIR/wasm32-wasip1/release"
    rm -f "$out/$stem.wasm"
    # cargo-component writes src/bindings.rs into a package that has a wit/ folder; remove what
    # it adds so the work tree stays clean.
    local before
    before="$(cd "$OGX_ROOT/plugins" && find . -path '*/src/bindings.rs' -not -path './target/*' | sort)"
    # shellcheck disable=SC2086
    (cd "$OGX_ROOT/plugins" &&
        CARGO_TARGET_DIR="$OGX_PLUGINS_TARGET_DIR" run cargo component build --release -p "$pkg" $OGX_PLUGIN_CARGO_FLAGS)
    local added
    added="$(cd "$OGX_ROOT/plugins" && find . -path '*/src/bindings.rs' -not -path './target/*' | sort | comm -13 <(printf '%s\n' "$before") -)"
    if [[ -n "$added" ]]; then
        info "removing what cargo-component generated: $(tr '\n' ' ' <<<"$added")"
        (cd "$OGX_ROOT/plugins" && xargs rm -f <<<"$added")
    fi
    [[ -f "$out/$stem.wasm" ]] || die "cargo component did not produce $out/$stem.wasm"
    local magic
    magic="$(head -c 8 "$out/$stem.wasm" | od -An -tx1 | tr -d ' \n')"
    [[ "$magic" == 0061736d0d000100 ]] || die "$out/$stem.wasm is not a component (header $magic)"
    info "$stem.wasm is a component ($(wc -c <"$out/$stem.wasm") bytes)"

    step "cargo-component: the component loads in ogx"
    plugins_list_isolated "$out/$stem.wasm"
}

# The tests mostly wait (servers starting, upstreams answering, timeouts running out), so they
# run in OGX_TEST_WORKERS pytest-xdist workers (default 3), each test file in one worker (its
# module fixtures shared); OGX_TEST_WORKERS=0 runs them in this process.
e2e_tests() {
    local workers="${OGX_TEST_WORKERS:-3}"
    step "end to end: python -m pytest -q tests/ ($workers workers)"
    [[ -d "$OGX_ROOT/tests" ]] || die "tests/ does not exist"
    export OGX_BIN OGX_ROOT
    export OGX_PLUGINS_DIR="$BUILTIN_PLUGINS_DIR"
    local rc=0 parallel=()
    [[ "$workers" == 0 ]] || parallel=(-n "$workers" --dist loadfile)
    (cd "$OGX_ROOT" && run "$OGX_ROOT/.venv/bin/python" -m pytest -q "${parallel[@]}" tests/) || rc=$?
    case $rc in
        0) ;;
        5) printf 'pytest collected no tests: counted as a failure\n' >&2; exit 5 ;;
        *) exit "$rc" ;;
    esac
}

# OGX 1.5.0's integration tests against the same binary and plugins (OGX_BIN, OGX_PLUGINS_DIR
# exported by e2e_tests); the runner prints its own summary last and exits non-zero on a failure.
ogx_suite() {
    step "OGX 1.5.0's integration tests: python tests/ogx_suite/run.py"
    (cd "$OGX_ROOT" && run "$OGX_ROOT/.venv/bin/python" tests/ogx_suite/run.py)
}

print_timings() {
    step "timings"
    local t
    for t in "${TIMINGS[@]}"; do info "$t"; done
}

main() {
    local started
    started="$(now)"
    timed "setup" bash "$OGX_ROOT/scripts/setup.sh" apt wasm cargo-component venv claude-code
    timed "host build" host_build
    timed "plugins build + install" plugins_build_and_install
    timed "host tests" host_tests
    timed "plugins unit tests" plugin_unit_tests
    timed "cargo-component check" cargo_component_check
    TIMINGS+=("$(printf '%-28s %5ss' "total before pytest" "$(($(now) - started))")")
    print_timings
    CURRENT_STEP="end-to-end tests"
    e2e_tests
    CURRENT_STEP="OGX 1.5.0 tests"
    ogx_suite
}

main "$@"
