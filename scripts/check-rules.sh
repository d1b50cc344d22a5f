#!/usr/bin/env bash
# Checks the Prometheus alerting rules and runs their unit tests with promtool:
#   promtool check rules rules/*.yaml            (syntax, PromQL, templates)
#   promtool test rules rules/tests/*.yaml       (the alerts' behaviour over time)
# Runs from the repository root whatever the current directory; exits non-zero when either fails.
# Usage: scripts/check-rules.sh   (PROMTOOL=/path/to/promtool to use another binary)
set -euo pipefail
cd "$(dirname "$0")/.."

promtool="${PROMTOOL:-promtool}"
if ! command -v "$promtool" >/dev/null 2>&1; then
    echo "error: promtool not found (looked for '$promtool' in PATH)." >&2
    echo "Install it with the Prometheus package, e.g. on Debian or Ubuntu:" >&2
    echo "    apt-get install -y prometheus" >&2
    echo "or download a release from https://prometheus.io/download/ and set PROMTOOL=/path/to/promtool." >&2
    exit 1
fi

shopt -s nullglob
rule_files=(rules/*.yaml)
test_files=(rules/tests/*.yaml)
if ((${#rule_files[@]} == 0)); then
    echo "error: no rule files in rules/*.yaml" >&2
    exit 1
fi
if ((${#test_files[@]} == 0)); then
    echo "error: no rule tests in rules/tests/*.yaml" >&2
    exit 1
fi

echo "== $("$promtool" --version 2>&1 | head -n 1)"
echo "== $promtool check rules ${rule_files[*]}"
"$promtool" check rules "${rule_files[@]}"
echo "== $promtool test rules ${test_files[*]}"
"$promtool" test rules "${test_files[@]}"
echo "== rules OK"
