# shellcheck shell=bash
# bubblewrap (bwrap) for the process sandbox (sandboxes/bwrap.py). Sourced by scripts/test.sh
# (bash, set -euo pipefail), so it never exits the caller: without bwrap the process backend is
# weak, `clade run` refuses it without --allow-weak-sandbox, and the isolation tests fail with
# the reason. Idempotent: with bwrap installed it costs one `command -v`.
_clade_bubblewrap_setup() {
    if command -v bwrap >/dev/null 2>&1; then
        return 0
    fi
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        echo "bubblewrap is missing and installing it needs root and apt-get (package: bubblewrap)"
        return 0
    fi
    echo "installing bubblewrap"
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q bubblewrap >/dev/null 2>&1; then
        apt-get update -q >/dev/null 2>&1 || true
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q bubblewrap >/dev/null 2>&1 ||
            echo "could not install bubblewrap with apt-get"
    fi
}
_clade_bubblewrap_setup
