#!/usr/bin/env bash
# The workspace's structure rules (issue "One spine"), checked in CI:
# - no cycle between the modules of any crate (scripts/module-cycles.py, after its self-test);
# - collector, alerting and controller build without DataFusion, and the controller without
#   alerting (the contracts they share live in driftwatch-types).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 scripts/module-cycles.py --self-test
python3 scripts/module-cycles.py
fail=0
for crate in driftwatch-collector driftwatch-alerting driftwatch-controller; do
  if cargo tree -p "$crate" -e normal --locked --prefix none | grep -q '^datafusion '; then
    echo "error: $crate depends on datafusion (cargo tree -p $crate -i datafusion)" >&2
    fail=1
  fi
done
if cargo tree -p driftwatch-controller -e normal --locked --prefix none | grep -q '^driftwatch-alerting '; then
  echo "error: driftwatch-controller depends on driftwatch-alerting" >&2
  fail=1
fi
[ "$fail" = 0 ] && echo "ok: collector, alerting and controller build without datafusion; the controller without alerting"
exit "$fail"
