#!/usr/bin/env bash
# End-to-end throughput of the regex path against cat and ripgrep (benches/pipeline.rs); prints a
# Markdown table for BENCHMARKS.md. Input size: LOGSIEVE_BENCH_MB (default 1024). Run it on a quiet
# machine: nothing else building or testing.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v rg >/dev/null; then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  $sudo apt-get update
  $sudo apt-get install -y ripgrep
fi
exec cargo bench --bench pipeline "$@"
