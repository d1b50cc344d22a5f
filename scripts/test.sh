#!/usr/bin/env bash
# The test suite, from a fresh machine: installs and starts every service the tests need, then runs
# every test of the workspace. Usage: scripts/test.sh [extra cargo test arguments]
#
# Build outputs go to $CARGO_TARGET_DIR (default: $HOME/.cache/driftwatch/target) so repeated runs
# reuse the build and the clone stays clean.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/driftwatch/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
# Two cores: one build job per core, tests in one process per binary.
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}"

scripts/install-test-services.sh
export DRIFTWATCH_TANSU_BIN="${DRIFTWATCH_TANSU_BIN:-${DRIFTWATCH_TOOLS:-$HOME/.cache/driftwatch/tools}/bin/tansu}"

echo "== Prometheus rules (promtool check and test)"
scripts/check-rules.sh

echo "== building tests"
cargo test --workspace --no-run --locked "$@"
echo "== running tests"
cargo test --workspace --locked "$@"
