#!/usr/bin/env bash
# Installs (if missing) every service the tests use, into places later runs reuse:
#   - tansu 0.6, a Kafka-protocol broker from crates.io, into $HOME/.cache/driftwatch/tools/bin
#     (about 15 minutes of compiling the first time, seconds after);
#   - Prometheus 2.42 with promtool, Alertmanager 0.25 and Chromium, from Debian's packages.
# kubectl (for the kustomize render test) comes with the machine image; the test says how to
# install it where it is missing.
# The tests start their own instances on free loopback ports; nothing is started here.
set -euo pipefail
TOOLS="${DRIFTWATCH_TOOLS:-$HOME/.cache/driftwatch/tools}"

need_apt=()
command -v promtool >/dev/null 2>&1 || need_apt+=(prometheus)
command -v prometheus-alertmanager >/dev/null 2>&1 || need_apt+=(prometheus-alertmanager)
# Headless Chromium for the status page test (tests/status_page.rs).
[ -n "${DRIFTWATCH_CHROMIUM_BIN:-}" ] || [ -x /usr/bin/chromium ] || [ -x /usr/bin/chromium-browser ] \
  || need_apt+=(chromium)
if [ "${#need_apt[@]}" -gt 0 ]; then
  echo "== installing ${need_apt[*]} (Debian packages)"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
  # Where an init system runs, the packages start their services; the tests start their own.
  $SUDO systemctl stop prometheus prometheus-alertmanager prometheus-node-exporter 2>/dev/null || true
fi

if [ ! -x "$TOOLS/bin/tansu" ]; then
  echo "== installing tansu 0.6 into $TOOLS (cargo install, about 15 minutes once)"
  mkdir -p "$TOOLS"
  # A separate target dir, removed afterwards: the broker's build is not reused.
  CARGO_TARGET_DIR="$TOOLS/tansu-build" cargo install tansu --version '~0.6' --locked \
    --features dynostore,libsql --root "$TOOLS" --quiet
  rm -rf "$TOOLS/tansu-build"
fi
echo "== test services: $("$TOOLS/bin/tansu" --version 2>/dev/null || echo tansu), $(promtool --version 2>&1 | head -1), $(prometheus-alertmanager --version 2>&1 | head -1)"
