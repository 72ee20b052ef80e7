#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run calls this): fetch the model assets (cached),
# formatting, lints, then every unit and integration test against the release build (the
# integration tests start the real binary and load the real model).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/fetch-models.sh
cargo fmt --all -- --check
cargo clippy --all-targets --release -- -D warnings
cargo test --release
