# shellcheck shell=bash
# Docker engine and sandbox image for the docker sandbox tests. Sourced by scripts/test.sh
# (bash, set -euo pipefail), so it must never exit the caller: every failure ends in a printed
# reason and CLADE_DOCKER_UNAVAILABLE, which makes the docker tests skip with that reason.
# Idempotent: with an engine answering and the image present it costs one probe.
#
#  1. install docker.io and debootstrap with apt-get when missing (root only);
#  2. start dockerd in the background when no engine answers (log: ~/.cache/cladeforge/dockerd.log),
#     retrying without iptables and with the vfs storage driver, which nested machines may need;
#  3. `clade sandbox build` when the image is missing (offline: debootstrap + docker import).

_clade_docker_unavailable() {
    export CLADE_DOCKER_UNAVAILABLE="$1"
    echo "docker tests will be skipped: $1"
}

_clade_engine_answers() {
    python3 -c 'from sandboxes.engine import connect; connect(timeout=5)' >/dev/null 2>&1
}

_clade_start_dockerd() {
    local log="$1"
    shift
    echo "starting dockerd $*"
    setsid nohup dockerd "$@" >>"$log" 2>&1 </dev/null &
    local pid=$!
    local waited=0
    while [ "$waited" -lt 60 ]; do
        if _clade_engine_answers; then
            return 0
        fi
        if ! kill -0 "$pid" 2>/dev/null; then
            return 1
        fi
        sleep 1
        waited=$((waited + 1))
    done
    kill "$pid" 2>/dev/null || true
    return 1
}

_clade_docker_setup() {
    local cache="${XDG_CACHE_HOME:-$HOME/.cache}/cladeforge"
    mkdir -p "$cache"
    if ! command -v dockerd >/dev/null 2>&1 || ! command -v debootstrap >/dev/null 2>&1; then
        if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
            if ! command -v dockerd >/dev/null 2>&1 && ! _clade_engine_answers; then
                _clade_docker_unavailable "no Docker engine, and installing one needs root and apt-get"
                return 0
            fi
        else
            echo "installing docker.io and debootstrap"
            if ! { DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
                DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
                    docker.io debootstrap >"$cache/apt.log" 2>&1; }; then
                _clade_docker_unavailable "apt-get install docker.io debootstrap failed: $(tail -n 1 "$cache/apt.log")"
                return 0
            fi
        fi
    fi
    if ! _clade_engine_answers; then
        if [ "$(id -u)" != 0 ]; then
            _clade_docker_unavailable "no Docker engine answers and starting dockerd needs root"
            return 0
        fi
        local log="$cache/dockerd.log"
        if ! _clade_start_dockerd "$log" &&
            ! _clade_start_dockerd "$log" --iptables=false --ip6tables=false &&
            ! _clade_start_dockerd "$log" --iptables=false --ip6tables=false --storage-driver=vfs; then
            _clade_docker_unavailable "dockerd does not start here: $(grep -i 'level=fatal\|failed to start' "$log" | tail -n 1 | cut -c1-300)"
            return 0
        fi
    fi
    local why
    if why=$(python3 -c 'import sys; from sandboxes.docker_backend import probe; ok, why = probe(); print(why); sys.exit(0 if ok else 1)' 2>&1); then
        echo "docker sandbox ready: $why"
        return 0
    fi
    echo "building the sandbox image ($why)"
    if ! python3 cli.py sandbox build; then
        # An engine that runs but cannot build the image is a failure to see, not a skip:
        # the docker tests then fail with the probe's reason.
        echo "clade sandbox build failed; the docker tests will report it"
    fi
    return 0
}

if ! _clade_docker_setup; then
    _clade_docker_unavailable "the docker setup step failed unexpectedly"
fi
