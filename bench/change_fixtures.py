#!/usr/bin/env python3
"""Oracle fixtures for the change detectors of ``analyzer/src/change/`` (issue 21, item 5).

Generates input streams with a fixed seed, runs River's ``PageHinkley`` and ``ADWIN`` (and a NumPy
implementation of the two-sided tabular CUSUM, which River does not have) on each of them with
default and non-default parameters, and writes the streams and the indices where each detector
fired to ``analyzer/tests/fixtures/change_river.json``. ``analyzer/tests/change_detectors.rs``
replays the stored streams and asserts identical indices.

Needs River in the bench venv (pinned in ``bench/requirements-change.txt``)::

    bench/.venv/bin/pip install -r bench/requirements-change.txt -c bench/requirements-lock.txt
    bench/.venv/bin/python bench/change_fixtures.py

Every value is rounded (to 4 or 5 decimals) *before* any detector sees it, so the JSON text holds
exactly the floats River was given (Python's ``repr`` and serde_json's ``float_roundtrip`` both
round-trip exactly) and the fixture stays small.
"""

from __future__ import annotations

import json
import platform
import random
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "analyzer" / "tests" / "fixtures" / "change_river.json"
SEED = 20250521

# Parameter sets: name -> keyword arguments (River's names, which are also the Rust settings'
# field names). "default" is the constructor's defaults.
PAGE_HINKLEY_PARAMS = {
    "default": {},
    "sensitive": {"min_instances": 10, "delta": 0.001, "threshold": 5.0, "alpha": 0.999},
    "unit_scale": {"min_instances": 20, "delta": 0.0005, "threshold": 0.5, "alpha": 0.9999},
    "up": {"threshold": 10.0, "mode": "up"},
    "down": {"threshold": 10.0, "mode": "down", "alpha": 1.0},
}
ADWIN_PARAMS = {
    "default": {},
    "clock_1": {"clock": 1},
    "coarse": {"delta": 0.01, "clock": 8, "max_buckets": 2, "min_window_length": 10,
               "grace_period": 50},
    "fine": {"delta": 0.1, "clock": 1, "max_buckets": 1, "min_window_length": 1,
             "grace_period": 5},
    "strict": {"delta": 0.0001, "clock": 4, "max_buckets": 3, "min_window_length": 20,
               "grace_period": 100},
}
CUSUM_DEFAULTS = {"warmup": 30, "k": 0.5, "h": 5.0, "min_sigma": 0.0}
CUSUM_PARAMS = {
    "default": {},
    "tight": {"warmup": 50, "k": 0.25, "h": 8.0},
    "loose": {"warmup": 10, "k": 1.0, "h": 3.0},
    "floor": {"min_sigma": 0.05},
}


def rounded(x, decimals: int) -> list[float]:
    return [round(float(v), decimals) for v in x]


def make_streams() -> list[dict]:
    rng = np.random.default_rng(SEED)
    streams = []

    def add(name: str, description: str, values: list) -> None:
        streams.append({"name": name, "description": description, "values": values})

    add("stationary_normal", "2,000 x normal(0, 1)", rounded(rng.normal(0.0, 1.0, 2000), 4))
    add("abrupt_mean_shift", "normal(0, 1) x 800, then mean +1.5 x 800, then mean -0.5 x 800",
        rounded(np.concatenate([rng.normal(0.0, 1.0, 800), rng.normal(1.5, 1.0, 800),
                                rng.normal(-0.5, 1.0, 800)]), 4))
    ramp = np.concatenate([np.zeros(500), np.linspace(0.0, 2.0, 1000), np.full(500, 2.0)])
    add("gradual_drift", "normal(m, 1), m = 0 x 500, rising linearly to 2 over 1,000, then 2 x 500",
        rounded(ramp + rng.normal(0.0, 1.0, 2000), 4))
    add("variance_change", "normal(0, 1) x 1,000, then normal(0, 3) x 1,000",
        rounded(np.concatenate([rng.normal(0.0, 1.0, 1000), rng.normal(0.0, 3.0, 1000)]), 4))
    # Like a per-window distance: positive, right-skewed, mean 0.03 rising to 0.06.
    mean = np.concatenate([np.full(800, 0.03), np.linspace(0.03, 0.06, 800), np.full(400, 0.06)])
    add("drift_statistic", "beta with concentration 40, mean 0.03 x 800, rising to 0.06 over 800, "
        "then 0.06 x 400 (like a Jensen-Shannon distance per window)",
        rounded(rng.beta(40.0 * mean, 40.0 * (1.0 - mean)), 5))
    p = np.concatenate([np.full(1000, 0.9), np.linspace(0.9, 0.85, 600), np.full(400, 0.85)])
    add("quality_metric", "accuracy of 500 predictions per window: 0.9 x 1,000, falling to 0.85 "
        "over 600, then 0.85 x 400", rounded(rng.binomial(500, p) / 500.0, 4))
    segments = [
        rng.beta(20.0, 80.0, 2000),                                   # mean 0.2
        rng.beta(25.0, 75.0, 2000),                                   # mean 0.25
        rng.beta(100.0 * np.linspace(0.25, 0.5, 2000), 100.0 * (1.0 - np.linspace(0.25, 0.5, 2000))),
        rng.beta(5.0, 5.0, 2000),                                     # mean 0.5, wider
        rng.beta(10.0, 90.0, 2000),                                   # mean 0.1
    ]
    add("long_unit_interval", "10,000 values in [0, 1]: beta means 0.2, 0.25, a ramp to 0.5, 0.5 "
        "with a larger variance, 0.1 (2,000 each)", rounded(np.concatenate(segments), 4))
    pb = np.concatenate([np.full(4000, 0.1), np.linspace(0.1, 0.3, 3000), np.full(3000, 0.3)])
    add("long_binary", "10,000 errors (0/1), rate 0.1 x 4,000, rising to 0.3 over 3,000, then 0.3",
        [int(v) for v in rng.uniform(size=10000) < pb])
    add("large_offset", "normal(1000, 5) x 1,000, then normal(1003, 5) x 500",
        rounded(np.concatenate([rng.normal(1000.0, 5.0, 1000), rng.normal(1003.0, 5.0, 500)]), 3))
    # River's own docstring example (PageHinkley fires at 1006, ADWIN at 1023).
    r = random.Random(12345)
    add("river_docstring", "River's docstring example: random.Random(12345), choices([0, 1], "
        "k=1000) + choices(range(4, 8), k=1000)",
        r.choices([0, 1], k=1000) + r.choices(range(4, 8), k=1000))
    return streams


def run_river(detector, values) -> list[int]:
    fired = []
    for i, x in enumerate(values):
        detector.update(x)
        if detector.drift_detected:
            fired.append(i)
    return fired


def cusum_oracle(values, warmup: int, k: float, h: float, min_sigma: float) -> list[int]:
    """Two-sided tabular CUSUM (Montgomery sec. 9.1), mu0 and sigma from the first ``warmup``
    values with NumPy (mean, std with ddof=1), restarted with a new warm-up after each alarm."""
    x = [float(v) for v in values]
    fired, start = [], 0
    while start + warmup <= len(x):
        window = np.asarray(x[start:start + warmup])
        mu0 = float(np.mean(window))
        sigma = max(float(np.std(window, ddof=1)), min_sigma)
        big_k, big_h = k * sigma, h * sigma
        c_plus = c_minus = 0.0
        alarm = None
        for j in range(start + warmup, len(x)):
            c_plus = max(0.0, x[j] - (mu0 + big_k) + c_plus)
            c_minus = max(0.0, (mu0 - big_k) - x[j] + c_minus)
            if c_plus > big_h or c_minus > big_h:
                alarm = j
                break
        if alarm is None:
            break
        fired.append(alarm)
        start = alarm + 1
    return fired


def main() -> int:
    import river
    from river import drift

    streams = make_streams()
    ph_defaults = {"min_instances": 30, "delta": 0.005, "threshold": 50.0, "alpha": 1 - 0.0001,
                   "mode": "both"}
    adwin_defaults = {"delta": 0.002, "clock": 32, "max_buckets": 5, "min_window_length": 5,
                      "grace_period": 10}
    # The defaults written above must be River's (the Rust side's Default is checked against them).
    probe = drift.PageHinkley()
    assert {k: getattr(probe, k) for k in ph_defaults} == ph_defaults, "PageHinkley defaults"
    probe = drift.ADWIN()
    assert {k: getattr(probe, k) for k in adwin_defaults} == adwin_defaults, "ADWIN defaults"

    params = {
        "page_hinkley": {n: {**ph_defaults, **p} for n, p in PAGE_HINKLEY_PARAMS.items()},
        "adwin": {n: {**adwin_defaults, **p} for n, p in ADWIN_PARAMS.items()},
        "cusum": {n: {**CUSUM_DEFAULTS, **p} for n, p in CUSUM_PARAMS.items()},
    }
    results, errors = [], []
    for s in streams:
        for name, p in params["page_hinkley"].items():
            results.append({"stream": s["name"], "detector": "page_hinkley", "params": name,
                            "indices": run_river(drift.PageHinkley(**p), s["values"])})
        for name, p in params["adwin"].items():
            try:
                idx = run_river(drift.ADWIN(**p), s["values"])
            except BaseException as e:  # River's Rust core panics (PanicException) on some inputs
                errors.append({"stream": s["name"], "detector": "adwin", "params": name,
                               "error": f"{type(e).__name__}: {e}"})
                continue
            results.append({"stream": s["name"], "detector": "adwin", "params": name,
                            "indices": idx})
        for name, p in params["cusum"].items():
            results.append({"stream": s["name"], "detector": "cusum", "params": name,
                            "indices": cusum_oracle(s["values"], **p)})

    doc = {name: r["indices"] for r in results if r["stream"] == "river_docstring"
           and r["params"] == "default" for name in [r["detector"]]}
    assert doc["page_hinkley"][:1] == [1006], doc
    assert doc["adwin"][:1] == [1023], doc

    fixture = {
        "generator": "bench/change_fixtures.py",
        "river_version": river.__version__,
        "numpy_version": np.__version__,
        "python_version": platform.python_version(),
        "seed": SEED,
        "oracles": {
            "page_hinkley": "river.drift.PageHinkley (river/drift/page_hinkley.py)",
            "adwin": "river.drift.ADWIN (river/drift/adwin.py over rust_src/adwin.rs)",
            "cusum": "NumPy: two-sided tabular CUSUM, Montgomery sec. 9.1 (River has none)",
        },
        "params": params,
        "streams": streams,
        "detections": results,
        "river_errors": errors,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(fixture, separators=(",", ":")) + "\n")
    fired = sum(1 for r in results if r["indices"])
    print(f"wrote {OUT.relative_to(REPO)} ({OUT.stat().st_size / 1024:.0f} KiB): "
          f"{len(streams)} streams, {len(results)} runs ({fired} with a detection, "
          f"{sum(len(r['indices']) for r in results)} detections), {len(errors)} River errors")
    for r in results:
        print(f"  {r['stream']:20} {r['detector']:13} {r['params']:11} {len(r['indices']):4} "
              f"{r['indices'][:6]}")
    for e in errors:
        print(f"  River error: {e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
