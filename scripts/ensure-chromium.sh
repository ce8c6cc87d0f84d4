#!/usr/bin/env bash
# Make sure a headless-capable Chromium is installed (the report's rendering test needs it).
# Idempotent and quiet when Chromium is already there; installs it with apt-get otherwise.
# Usage: scripts/ensure-chromium.sh            (prints the binary path on success)
# Honors CHROMIUM=/path/to/binary to use another build.
set -euo pipefail

find_chromium() {
    if [[ -n "${CHROMIUM:-}" && -x "${CHROMIUM}" ]]; then
        echo "${CHROMIUM}"
        return 0
    fi
    local c
    for c in /usr/bin/chromium /usr/bin/chromium-browser; do
        if [[ -x "$c" ]]; then
            echo "$c"
            return 0
        fi
    done
    return 1
}

if bin=$(find_chromium); then
    echo "$bin"
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "ensure-chromium: chromium is not installed and apt-get is unavailable; install Chromium and/or set CHROMIUM=/path/to/chromium" >&2
    exit 1
fi

sudo=""
if [[ "$(id -u)" != 0 ]]; then
    if command -v sudo >/dev/null 2>&1; then
        sudo="sudo"
    else
        echo "ensure-chromium: chromium is not installed and installing it needs root (no sudo); run: apt-get install -y chromium" >&2
        exit 1
    fi
fi

echo "ensure-chromium: installing chromium with apt-get (one time)..." >&2
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! { $sudo apt-get update -q && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends chromium; } >"$log" 2>&1; then
    tail -n 20 "$log" >&2
    echo "ensure-chromium: apt-get install chromium failed (log above)" >&2
    exit 1
fi

if bin=$(find_chromium); then
    echo "$bin"
else
    echo "ensure-chromium: apt-get finished but no chromium binary was found in /usr/bin" >&2
    exit 1
fi
