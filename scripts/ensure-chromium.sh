#!/usr/bin/env bash
# Make sure a headless-capable Chromium is installed (the report's rendering test needs it).
# Idempotent and quiet when Chromium is already there; installs it with apt-get otherwise.
# Usage: scripts/ensure-chromium.sh [--print-path]   (exit 0 when Chromium is usable; --print-path prints it)
# Honors CHROMIUM=/path/to/binary to use another build.
set -euo pipefail

print_path=false
case "${1:-}" in
    --print-path) print_path=true ;;
    "") ;;
    *) echo "usage: $0 [--print-path]" >&2; exit 2 ;;
esac

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
    if $print_path; then echo "$bin"; fi
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
    echo "ensure-chromium: installed $bin" >&2
    if $print_path; then echo "$bin"; fi
else
    echo "ensure-chromium: apt-get finished but no chromium binary was found in /usr/bin" >&2
    exit 1
fi
