#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run calls this): fetch the model assets (cached),
# formatting, lints, start the real services the end-to-end tests talk to (a local llama.cpp
# LLM server and a Kafka-protocol broker, both installed on first use and cached under
# ~/.cache/logsieve), then every unit and integration test against the release build (the
# integration tests start the real binary and load the real model). The services are stopped
# on exit, whatever the outcome.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/fetch-models.sh
cargo fmt --all -- --check
cargo clippy --all-targets --release -- -D warnings

# Ports of their own, so a broker or LLM server someone runs on the default ports is left alone.
export LOGSIEVE_LLM_PORT="${LOGSIEVE_LLM_PORT:-18180}"
export LOGSIEVE_KAFKA_PORT="${LOGSIEVE_KAFKA_PORT:-19192}"
stop_services() {
  ./scripts/llm-server.sh stop || true
  ./scripts/kafka-broker.sh stop || true
}
trap stop_services EXIT
LOGSIEVE_TEST_LLM_URL="$(./scripts/llm-server.sh start)"
LOGSIEVE_TEST_KAFKA="$(./scripts/kafka-broker.sh start)"
export LOGSIEVE_TEST_LLM_URL LOGSIEVE_TEST_KAFKA
# The Kafka tests stop and start the broker through this script.
export LOGSIEVE_TEST_KAFKA_SCRIPT="$PWD/scripts/kafka-broker.sh"

cargo test --release
