#!/usr/bin/env python3
"""Print every query expression of the driftwatch Grafana dashboard, ready to send to Prometheus.

Usage: scripts/dashboard-queries.py [DASHBOARD_JSON]   (default: dashboards/driftwatch.json)

Prints one PromQL expression per line, in panel order (rows' nested panels included), for every
target of every panel, with Grafana's template references replaced as follows:

    $__rate_interval            -> 1m
    $model, $version, $variant  -> .*   (they only appear as regex matchers: model=~"$model")

Line breaks inside an expression are replaced by spaces so that each expression is one line.
The dashboard's contract is that its target expressions use no other template reference; the
script exits with status 1 (and a message on stderr) when one does, when a target has no `expr`,
or when the dashboard has no target at all. Python 3 standard library only.

An end-to-end test can apply the same substitution and require at least one series per
expression from a Prometheus that scrapes a driftwatch which has processed events.
"""

import json
import re
import sys
from pathlib import Path

# Order matters only for readability: no name is a prefix of another.
SUBSTITUTIONS = {
    "$__rate_interval": "1m",
    "$model": ".*",
    "$version": ".*",
    "$variant": ".*",
}
# Any Grafana template reference left after substitution: $name, ${name}, [[name]].
LEFTOVER = re.compile(r"\$\{?\w+|\[\[\w+")


def panels(items):
    """Yield every panel, descending into rows' nested `panels`."""
    for panel in items:
        yield panel
        yield from panels(panel.get("panels", []))


def main(argv):
    root = Path(__file__).resolve().parent.parent
    path = Path(argv[1]) if len(argv) > 1 else root / "dashboards" / "driftwatch.json"
    dashboard = json.loads(path.read_text(encoding="utf-8"))
    errors = []
    exprs = []
    for panel in panels(dashboard.get("panels", [])):
        for target in panel.get("targets", []):
            where = f"panel {panel.get('id')} ({panel.get('title')!r}) target {target.get('refId')}"
            expr = target.get("expr")
            if not expr or not expr.strip():
                errors.append(f"{where}: no expr")
                continue
            for name, value in SUBSTITUTIONS.items():
                expr = expr.replace(name, value)
            expr = " ".join(expr.splitlines()).strip()
            leftover = LEFTOVER.findall(expr)
            if leftover:
                errors.append(f"{where}: unsupported template reference(s) {leftover}: {expr}")
                continue
            exprs.append(expr)
    if not exprs and not errors:
        errors.append(f"{path}: no panel target")
    for error in errors:
        print(f"error: {error}", file=sys.stderr)
    if errors:
        return 1
    for expr in exprs:
        print(expr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
