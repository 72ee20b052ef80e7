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
# A regex-only agent builds without librdkafka and ONNX Runtime (features `kafka`, `model`).
cargo clippy --no-default-features -- -D warnings

# Ports of their own, so a broker or LLM server someone runs on the default ports is left alone.
# (Not exported: LOGSIEVE_LLM_* variables are config overrides, so the scripts take other names.)
LLM_PORT="${LLM_SERVER_PORT:-18180}"
KAFKA_PORT="${KAFKA_BROKER_PORT:-19192}"
stop_services() {
  LLM_SERVER_PORT="$LLM_PORT" ./scripts/llm-server.sh stop || true
  KAFKA_BROKER_PORT="$KAFKA_PORT" ./scripts/kafka-broker.sh stop || true
}
trap stop_services EXIT
LOGSIEVE_TEST_LLM_URL="$(LLM_SERVER_PORT="$LLM_PORT" ./scripts/llm-server.sh start)"
LOGSIEVE_TEST_KAFKA="$(KAFKA_BROKER_PORT="$KAFKA_PORT" ./scripts/kafka-broker.sh start)"
export LOGSIEVE_TEST_LLM_URL LOGSIEVE_TEST_KAFKA

cargo test --release

# deploy/ with real tools (podman, kubernetes-validate, systemd-analyze, promtool): a few
# minutes the first time (installs, a debootstrap base image), cached afterwards.
./scripts/deploy-test.sh
