#!/usr/bin/env python3
"""Change detectors on the window series: detection delay on gradual drift and false alarms on
clean windows (issue 21, item 5), with each detector's default parameters.

    bench/.venv/bin/pip install -r bench/requirements-change.txt -c bench/requirements-lock.txt
    bench/.venv/bin/python bench/change_eval.py            # ~1 minute on 2 cores
    bench/.venv/bin/python bench/change_eval.py --quick    # fewer replicates, a few seconds

The series are what driftwatch emits once per window and feature:

- ``js``: the Jensen-Shannon distance (base 2) of a numeric feature, normal(0, 1), between a
  window of n values and a reference of 50,000: 10 bins at the reference deciles plus an
  underflow and an overflow bin (driftwatch's profile), the reference's own bin proportions on
  one side. A window's bin counts are drawn as multinomial(n, p) with p the bin probabilities of
  normal(d, 1): the same law as binning n drawn values, without drawing them.
- ``accuracy``: a quality metric, the accuracy of n predictions (binomial(n, p) / n), p = 0.90.

Clean series have d = 0 (p = 0.90) throughout: false alarms per 1,000 windows. Gradual drift: clean
for ``ONSET`` windows, then d rises linearly from 0 to ``d_max`` over ``RAMP`` windows (accuracy
falls by ``drop``) and stays there for ``HOLD`` windows; the delay is the number of windows from the
onset to the first detection at or after it, and a replicate without one is a miss. The same
measured on series without drift (``d_max = 0``) is the "delay" that false alarms alone give: a
detector helps only where its delay is well below that.

Detectors (every one resets after a detection, as River's do): River 0.26.1's ``PageHinkley`` and
``ADWIN`` with their defaults (``analyzer/src/change`` matches them index for index:
``analyzer/tests/change_detectors.rs``), ADWIN with ``clock=1`` as a variant (the default checks
every 32 values, which on a window series is up to 31 windows of waiting), and the two-sided
tabular CUSUM of ``analyzer/src/change/cusum.rs`` (its NumPy oracle from ``change_fixtures.py``;
warm-up 30, k = 0.5, h = 5), plus one non-default CUSUM (warm-up 200, k = 0.25, h = 8). For
comparison, the single-window verdict: a window flagged when its
value is beyond the clean series' 99th (99.7th, 99.9th) percentile at that window size, about what
an adaptive threshold at 1% (0.3%, 0.1%) per window does (for accuracy: below the 1st, 0.3th,
0.1th percentile; accuracy is discrete, so slightly fewer windows are flagged).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
from scipy.stats import norm

sys.path.insert(0, str(Path(__file__).resolve().parent))
from change_fixtures import cusum_oracle  # noqa: E402

OUT = Path(__file__).resolve().parent / "out" / "change_eval"
SEED = 20250522
REFERENCE_ROWS = 50_000
SIZES = (500, 2000, 5000)
ONSET, RAMP, HOLD = 300, 300, 300
CLEAN_WINDOWS = 1000
JS_SHIFTS = (0.0, 0.05, 0.1, 0.2)          # d_max, in standard deviations (0: no drift)
ACCURACY_DROPS = (0.0, 0.01, 0.02, 0.05)   # 0.90 -> 0.90 - drop (0: no drift)
BASE_ACCURACY = 0.90
# Not a default: a longer warm-up (a better sigma), tuned for small shifts (Montgomery: k = 1/4,
# h = 8), to see whether a CUSUM can beat the single-window verdict at all.
TUNED_CUSUM = "cusum w=200 k=0.25 h=8"
# Single-window verdicts: the share of clean windows flagged.
WINDOW_RATES = (0.01, 0.003, 0.001)


def detectors() -> dict:
    from river import drift

    def river(make):
        def run(values):
            d, fired = make(), []
            for i, x in enumerate(values):
                d.update(x)
                if d.drift_detected:
                    fired.append(i)
            return fired
        return run

    return {
        "page_hinkley": river(drift.PageHinkley),
        "cusum": lambda v: cusum_oracle(v, warmup=30, k=0.5, h=5.0, min_sigma=0.0),
        TUNED_CUSUM: lambda v: cusum_oracle(v, warmup=200, k=0.25, h=8.0, min_sigma=0.0),
        "adwin": river(drift.ADWIN),
        "adwin clock=1": river(lambda: drift.ADWIN(clock=1)),
    }


class JsSeries:
    """Per-window Jensen-Shannon distances of a normal(0, 1) feature against a fixed reference."""

    def __init__(self, rng: np.random.Generator):
        ref = rng.normal(0.0, 1.0, REFERENCE_ROWS)
        cuts = np.quantile(ref, np.arange(1, 10) / 10.0)
        self.edges = np.concatenate([[ref.min()], cuts, [ref.max()]])
        idx = np.searchsorted(self.edges, ref, side="right")   # 0 .. 11; 0 and 11 outside
        idx[ref == ref.max()] = 10                              # the maximum is in the last bin
        counts = np.bincount(idx, minlength=12).astype(float)
        self.ref_p = counts / counts.sum()

    def probabilities(self, shift: np.ndarray) -> np.ndarray:
        """Bin probabilities of normal(shift, 1), one row per window."""
        cdf = norm.cdf(self.edges[None, :] - shift[:, None])
        return np.diff(np.concatenate([np.zeros((len(shift), 1)), cdf,
                                       np.ones((len(shift), 1))], axis=1), axis=1)

    def series(self, rng, n: int, shift: np.ndarray) -> np.ndarray:
        probs = self.probabilities(shift)
        counts = rng.multinomial(n, probs)
        q = counts / float(n)
        p = np.broadcast_to(self.ref_p, q.shape)
        m = 0.5 * (p + q)
        with np.errstate(divide="ignore", invalid="ignore"):
            kp = np.where(p > 0, p * np.log2(p / m), 0.0).sum(axis=1)
            kq = np.where(q > 0, q * np.log2(q / m), 0.0).sum(axis=1)
        return np.sqrt(np.maximum(0.5 * (kp + kq), 0.0))


def accuracy_series(rng, n: int, p: np.ndarray) -> np.ndarray:
    return rng.binomial(n, p) / float(n)


def ramp(level: float) -> np.ndarray:
    return np.concatenate([np.zeros(ONSET), np.linspace(0.0, level, RAMP + 1)[1:],
                           np.full(HOLD, level)])


def first_after(indices, onset: int):
    later = [i for i in indices if i >= onset]
    return later[0] - onset if later else None


def summarize_delays(delays: list) -> dict:
    hit = [d for d in delays if d is not None]
    out = {"replicates": len(delays), "detected": len(hit)}
    if hit:
        q = np.percentile(hit, [25, 50, 75])
        out.update({"median_delay": float(q[1]), "q25": float(q[0]), "q75": float(q[2])})
    return out


def run(replicates: int, clean_replicates: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    dets = detectors()
    js = JsSeries(rng)
    results = {"false_alarms": {}, "delays": {}, "thresholds": {}}
    for n in SIZES:
        # Clean series: false alarms per 1,000 windows, and the single-window thresholds.
        clean = {
            "js": [js.series(rng, n, np.zeros(CLEAN_WINDOWS)) for _ in range(clean_replicates)],
            "accuracy": [accuracy_series(rng, n, np.full(CLEAN_WINDOWS, BASE_ACCURACY))
                         for _ in range(clean_replicates)],
        }
        for kind, series in clean.items():
            allv = np.concatenate(series)
            thr = {f"{a:.1%}".replace(".0%", "%"): float(np.quantile(allv, 1.0 - a if kind == "js"
                                                                      else a))
                   for a in WINDOW_RATES}
            results["thresholds"][f"{kind}/{n}"] = thr
            windows = len(allv)
            for name, det in dets.items():
                alarms = sum(len(det(list(map(float, s)))) for s in series)
                results["false_alarms"].setdefault(f"{kind}/{n}", {})[name] = {
                    "alarms": alarms, "windows": windows, "per_1000": 1000.0 * alarms / windows}
            for label, t in thr.items():
                flagged = int(sum(((s > t) if kind == "js" else (s < t)).sum() for s in series))
                results["false_alarms"][f"{kind}/{n}"][f"window {label}"] = {
                    "alarms": flagged, "windows": windows, "per_1000": 1000.0 * flagged / windows}
        # Gradual drift.
        for kind, levels in (("js", JS_SHIFTS), ("accuracy", ACCURACY_DROPS)):
            thr = results["thresholds"][f"{kind}/{n}"]
            for level in levels:
                delays = {name: [] for name in [*dets, *(f"window {t}" for t in thr)]}
                for _ in range(replicates):
                    if kind == "js":
                        s = js.series(rng, n, ramp(level))
                    else:
                        s = accuracy_series(rng, n, BASE_ACCURACY - ramp(level))
                    values = list(map(float, s))
                    for name, det in dets.items():
                        delays[name].append(first_after(det(values), ONSET))
                    for label, t in thr.items():
                        flags = np.flatnonzero((s > t) if kind == "js" else (s < t))
                        delays[f"window {label}"].append(first_after(list(flags), ONSET))
                key = f"{kind}/{n}/{level:g}"
                results["delays"][key] = {name: summarize_delays(d) for name, d in delays.items()}
    return results


def render(results: dict, names: list[str]) -> str:
    lines = []
    head = "| series | window n | " + " | ".join(names) + " |"
    lines += ["False alarms per 1,000 clean windows:", "", head,
              "|---|---:|" + "---:|" * len(names)]
    for key, row in results["false_alarms"].items():
        kind, n = key.split("/")
        lines.append(f"| {kind} | {int(n):,} | "
                     + " | ".join(f"{row[m]['per_1000']:.1f}" for m in names) + " |")
    lines += ["", f"Gradual drift: median delay in windows after the onset (detected / replicates; "
              f"ramp {RAMP} windows, then {HOLD} more; '-' = never):", "", head.replace(
                  "| series | window n |", "| series, drift at the end of the ramp | window n |"),
              "|---|---:|" + "---:|" * len(names)]
    for key, row in results["delays"].items():
        kind, n, level = key.split("/")
        if float(level) == 0.0:
            what = f"{kind}, no drift (first false alarm)"
        else:
            what = f"js, mean +{level} sd" if kind == "js" else f"accuracy -{level}"
        cells = []
        for m in names:
            r = row[m]
            if r["detected"] == 0:
                cells.append(f"- (0/{r['replicates']})")
            else:
                cells.append(f"{r['median_delay']:.0f} ({r['detected']}/{r['replicates']})")
        lines.append(f"| {what} | {int(n):,} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="10 replicates, 3 clean series")
    ap.add_argument("--replicates", type=int, default=100)
    ap.add_argument("--clean-replicates", type=int, default=20,
                    help="clean series of 1,000 windows per series kind and window size")
    ap.add_argument("--seed", type=int, default=SEED)
    args = ap.parse_args(argv)
    if args.quick:
        args.replicates, args.clean_replicates = 10, 3
    import river

    t0 = time.time()
    results = run(args.replicates, args.clean_replicates, args.seed)
    elapsed = time.time() - t0
    names = ["page_hinkley", "cusum", TUNED_CUSUM, "adwin", "adwin clock=1", "window 1%",
             "window 0.3%", "window 0.1%"]
    table = render(results, names)
    print(table)
    print(f"\n{elapsed:.0f} s; River {river.__version__}, NumPy {np.__version__}, "
          f"seed {args.seed}, {args.replicates} drift replicates, "
          f"{args.clean_replicates} x {CLEAN_WINDOWS} clean windows per series and size")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "results.json").write_text(json.dumps({
        "command": "bench/.venv/bin/python bench/change_eval.py " + " ".join(argv),
        "river_version": river.__version__, "numpy_version": np.__version__,
        "python_version": platform.python_version(), "seed": args.seed,
        "replicates": args.replicates, "clean_replicates": args.clean_replicates,
        "onset": ONSET, "ramp": RAMP, "hold": HOLD, "elapsed_s": elapsed,
        "results": results, "table": table}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
