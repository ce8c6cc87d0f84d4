#!/usr/bin/env bash
# Local cloud emulators for the S3 / Azure Blob / Step Functions tests:
#   Azurite (npm azurite@3.35.0, blob service only) and moto_server (PyPI moto[server] 5.2.x: S3 + Step Functions).
#
#   scripts/emulators.sh start   install (cached) and start both, wait until they listen, write the env file
#   scripts/emulators.sh env     print the env file (`eval "$(scripts/emulators.sh env)"`)
#   scripts/emulators.sh stop    stop both (by the pids this script recorded)
#   scripts/emulators.sh install install only
#
# Installs are cached under ${CPO_CACHE:-$HOME/.cache/cpo} (outside the clone) so a second run does not download
# again; runtime state (pids, data, logs, env file) lives under $CPO_CACHE/emulators.
set -euo pipefail

CACHE="${CPO_CACHE:-$HOME/.cache/cpo}"
AZURITE_VERSION="3.35.0"
MOTO_SPEC='moto[server]>=5.2,<5.3'
NPM_PREFIX="$CACHE/npm-azurite-$AZURITE_VERSION"
VENV="$CACHE/venv-moto-5.2"
STATE="$CACHE/emulators"
ENV_FILE="$STATE/env"
AZURITE_PORT="${CPO_AZURITE_PORT:-10000}"
MOTO_PORT="${CPO_MOTO_PORT:-5000}"
# Azurite's well-known development account (public, documented by Microsoft; not a secret).
AZ_ACCOUNT="devstoreaccount1"
AZ_KEY="Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

TEST_BUCKET="cpo-test"

log() { echo "emulators: $*" >&2; }
die() { echo "emulators: ERROR: $*" >&2; exit 1; }

install_azurite() {
    if [[ -x "$NPM_PREFIX/bin/azurite-blob" ]]; then return; fi
    command -v npm >/dev/null || die "npm not found: install Node.js 20 (apt-get install nodejs npm) to run Azurite"
    log "installing azurite@$AZURITE_VERSION into $NPM_PREFIX"
    mkdir -p "$NPM_PREFIX"
    npm install --no-audit --no-fund --loglevel=error --prefix "$NPM_PREFIX" -g "azurite@$AZURITE_VERSION" >&2 \
        || die "npm install azurite@$AZURITE_VERSION failed"
}

install_moto() {
    if [[ -x "$VENV/bin/moto_server" ]]; then return; fi
    command -v python3 >/dev/null || die "python3 not found: install python3 and python3-venv to run moto"
    log "installing $MOTO_SPEC into $VENV"
    rm -rf "$VENV"
    python3 -m venv "$VENV" || die "python3 -m venv failed (apt-get install python3-venv)"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "$MOTO_SPEC" >&2 || die "pip install $MOTO_SPEC failed"
}

# Wait until something accepts TCP connections on 127.0.0.1:$1 (bash's /dev/tcp: no extra tool needed).
wait_port() {
    local port=$1 name=$2 pid=$3 i
    for i in $(seq 1 150); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
        kill -0 "$pid" 2>/dev/null || die "$name exited during start-up; see $STATE/$name.log"
        sleep 0.2
    done
    die "$name did not listen on 127.0.0.1:$port within 30 s; see $STATE/$name.log"
}

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

running() { [[ -f "$STATE/$1.pid" ]] && kill -0 "$(cat "$STATE/$1.pid")" 2>/dev/null; }

start() {
    install_azurite
    install_moto
    mkdir -p "$STATE"
    if ! running azurite; then
        port_busy "$AZURITE_PORT" && die "port $AZURITE_PORT is taken; set CPO_AZURITE_PORT"
        rm -rf "$STATE/azurite-data" && mkdir -p "$STATE/azurite-data"
        setsid "$NPM_PREFIX/bin/azurite-blob" --silent --location "$STATE/azurite-data" --blobHost 127.0.0.1 \
            --blobPort "$AZURITE_PORT" --disableTelemetry --skipApiVersionCheck \
            >"$STATE/azurite.log" 2>&1 </dev/null &
        echo $! >"$STATE/azurite.pid"
        wait_port "$AZURITE_PORT" azurite "$(cat "$STATE/azurite.pid")"
        log "azurite-blob listening on 127.0.0.1:$AZURITE_PORT"
    fi
    if ! running moto; then
        port_busy "$MOTO_PORT" && die "port $MOTO_PORT is taken; set CPO_MOTO_PORT"
        setsid "$VENV/bin/moto_server" -H 127.0.0.1 -p "$MOTO_PORT" >"$STATE/moto.log" 2>&1 </dev/null &
        echo $! >"$STATE/moto.pid"
        wait_port "$MOTO_PORT" moto "$(cat "$STATE/moto.pid")"
        log "moto_server listening on 127.0.0.1:$MOTO_PORT"
    fi
    create_test_buckets
    cat >"$ENV_FILE" <<EOF
export CPO_TEST_S3_ENDPOINT=http://127.0.0.1:$MOTO_PORT
export CPO_TEST_SFN_ENDPOINT=http://127.0.0.1:$MOTO_PORT
export CPO_TEST_AZURE_CONNECTION_STRING='DefaultEndpointsProtocol=http;AccountName=$AZ_ACCOUNT;AccountKey=$AZ_KEY;BlobEndpoint=http://127.0.0.1:$AZURITE_PORT/$AZ_ACCOUNT;'
export CPO_TEST_AWS_ACCESS_KEY_ID=testing
export CPO_TEST_AWS_SECRET_ACCESS_KEY=testing
export CPO_TEST_AWS_REGION=us-east-1
export CPO_TEST_S3_BUCKET=$TEST_BUCKET
export CPO_TEST_AZ_CONTAINER=$TEST_BUCKET
EOF
    log "env written to $ENV_FILE"
}

# The S3 bucket (boto3 ships with moto) and the Azure container the tests write under (one prefix per test).
# Azure's container creation is signed by hand (Shared Key) with Python's standard library: no Azure SDK needed.
create_test_buckets() {
    "$VENV/bin/python" - "$MOTO_PORT" "$AZURITE_PORT" "$TEST_BUCKET" "$AZ_ACCOUNT" "$AZ_KEY" <<'PY' \
        || die "could not create the test bucket/container; see the error above"
import base64, datetime, hashlib, hmac, sys, urllib.error, urllib.request
import boto3
moto_port, az_port, name, account, key = sys.argv[1:]
s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{moto_port}", region_name="us-east-1",
                  aws_access_key_id="testing", aws_secret_access_key="testing")
try:
    s3.create_bucket(Bucket=name)
except s3.exceptions.BucketAlreadyOwnedByYou:
    pass
date = datetime.datetime.now(datetime.timezone.utc).strftime("%a, %d %b %Y %H:%M:%S GMT")
version = "2021-08-06"
# Shared Key string to sign: verb, 11 standard headers (all empty here), canonical x-ms headers, resource.
to_sign = "PUT\n" + "\n" * 11 + f"x-ms-date:{date}\nx-ms-version:{version}\n" \
    + f"/{account}/{account}/{name}\nrestype:container"
sig = base64.b64encode(hmac.new(base64.b64decode(key), to_sign.encode(), hashlib.sha256).digest()).decode()
req = urllib.request.Request(f"http://127.0.0.1:{az_port}/{account}/{name}?restype=container", method="PUT",
                             headers={"x-ms-date": date, "x-ms-version": version, "Content-Length": "0",
                                      "Authorization": f"SharedKey {account}:{sig}"})
try:
    urllib.request.urlopen(req)
except urllib.error.HTTPError as e:
    if e.code != 409:  # 409 ContainerAlreadyExists
        sys.exit(f"azurite: create container {name}: HTTP {e.code} {e.read()[:300]!r}")
PY
    log "bucket s3://$TEST_BUCKET and container az://$TEST_BUCKET ready"
}

stop_one() {
    local name=$1 pid
    [[ -f "$STATE/$name.pid" ]] || return 0
    pid=$(cat "$STATE/$name.pid")
    if kill -0 "$pid" 2>/dev/null; then
        # setsid made the emulator a process-group leader: end its group (npm/python wrappers and children).
        kill -- "-$pid" 2>/dev/null || kill "$pid" 2>/dev/null || true
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        log "stopped $name (pid $pid)"
    fi
    rm -f "$STATE/$name.pid"
}

stop() {
    stop_one azurite
    stop_one moto
    rm -f "$ENV_FILE"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    install) install_azurite; install_moto ;;
    env) [[ -f "$ENV_FILE" ]] || die "no $ENV_FILE: run 'scripts/emulators.sh start' first"; cat "$ENV_FILE" ;;
    *) echo "usage: $0 start|stop|env|install" >&2; exit 2 ;;
esac
