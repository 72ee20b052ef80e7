#!/usr/bin/env bash
# The soak (benches/soak.rs): 30 minutes at 20,000 lines/s with a rotation every minute, the
# model tier on and a 100 ms LLM; then a plot of the agent's memory over time into
# BENCHMARKS-soak.png. Not part of the test suite. Run it on a quiet machine.
# Env: LOGSIEVE_SOAK_SECS (1800), LOGSIEVE_SOAK_RATE (20000).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/fetch-models.sh
if ! command -v gnuplot >/dev/null; then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq gnuplot-nox
fi
cargo bench --bench soak | tee target/soak-report.md
gnuplot <<GNUPLOT
set terminal pngcairo size 900,420 font ",10"
set output "BENCHMARKS-soak.png"
set datafile separator ","
set title "logsieve soak: resident memory, ${LOGSIEVE_SOAK_RATE:-20000} lines/s, rotation every minute, model + 100 ms LLM"
set xlabel "minutes"
set ylabel "RSS (MiB)"
set yrange [0:*]
set grid
plot "target/soak/rss.csv" using (\$1/60):2 every ::1 with lines lw 2 title "VmRSS"
GNUPLOT
echo "plot: BENCHMARKS-soak.png; report: target/soak-report.md"
