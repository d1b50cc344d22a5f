#!/usr/bin/env python3
"""Side-by-side benchmark of ``driftwatch analyze`` against scipy, Evidently and NannyML.

Run it through ``bench/compare`` (which creates the venv); see ``bench/README.md``.

What it does, in one run and on the same files:

1. Generates a deterministic synthetic data set (``generate`` below) into ``bench/out/``, unless the
   same one is already there.
2. Runs every tool as its own subprocess, one after the other (never in parallel), and measures
   wall time (in this process) and peak resident memory (GNU ``/usr/bin/time``; ``wait4`` rusage
   when it is missing). The Python tools run in a child ``compare.py _tool ...``; each reads the
   CSV (or Parquet) files itself, cuts the current data into chunks and writes its per-chunk,
   per-feature statistics and verdicts as JSON, normalised to one shape.
3. Compares the verdicts where the methods are the same (see ``COMPARISONS``) and checks the
   numbers of driftwatch against scipy's (relative 1e-9).
4. Prints a table and writes everything to ``bench/out/results.json``.

Two "suites" are run, each with its own driftwatch baseline, so that every tool does the same work
as the driftwatch run it is compared with:

``tests``
    Kolmogorov-Smirnov for numeric features, chi-square for categorical ones, drift when p < 0.05;
    also the raw Wasserstein distance for numeric features (scipy's loop as the issue names it).
``distances``
    driftwatch's default verdict methods: normalised Wasserstein and Jensen-Shannon at 0.1.

This process itself imports nothing but the standard library, so that it stays small: peak-memory
figures of children started with ``wait4`` would otherwise include this process's memory.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
OUT_DIR = BENCH_DIR / "out"
TOOLS = ("driftwatch", "scipy", "evidently", "nannyml")
SEED = 20240606

# The car_loan data set of the foundation issue (NannyML's synthetic car loan data, 0.13.1).
CAR_LOAN = {
    "reference": REPO / "data" / "car_loan" / "reference.csv",
    "current": REPO / "data" / "car_loan" / "analysis.csv",
    "chunk_size": 5000,
    "numeric": ["car_value", "debt_to_income_ratio", "loan_length", "driver_tenure"],
    "categorical": ["salary_range", "repaid_loan_on_prev_car", "size_of_downpayment"],
}

# What each tool computes in each suite. ``driftwatch`` entries are extra command-line arguments;
# the Python tools read ``suite`` themselves (see ``tool_*``).
DRIFTWATCH_SUITES = {
    "tests": ["--methods", "ks,wasserstein,chi2", "--verdict-methods", "ks,chi2"],
    "distances": ["--methods", "wasserstein,wasserstein_normed,jensen_shannon"],
    # Informational: every statistic with the default verdict methods (what a plain
    # `driftwatch analyze` does). Not a baseline for any ratio.
    "all": [],
}
SUITE_TITLES = {
    "tests": "KS (numeric) + chi-square (categorical), drift when p < 0.05",
    "distances": "normalised Wasserstein (numeric) + Jensen-Shannon (categorical), drift above 0.1",
    "all": "driftwatch with all nine statistics and its default verdicts (informational)",
}
TOOL_LABELS = {
    ("driftwatch", "tests"): "driftwatch analyze --methods ks,wasserstein,chi2",
    ("scipy", "tests"): "scipy loop: ks_2samp, wasserstein_distance, chi2_contingency",
    ("evidently", "tests"): "Evidently DataDriftPreset(num=ks, cat=chisquare)",
    ("nannyml", "tests"): "NannyML UnivariateDriftCalculator(ks, wasserstein | chi2)",
    ("driftwatch", "distances"): "driftwatch analyze --methods wasserstein(_normed),jensen_shannon",
    ("evidently", "distances"): "Evidently DataDriftPreset(num=wasserstein, cat=jensenshannon)",
    ("nannyml", "distances"): "NannyML UnivariateDriftCalculator(wasserstein, js | js)",
    ("driftwatch", "all"): "driftwatch analyze (all statistics, defaults)",
}
# Which tools run in which suite (scipy's loop is defined by the issue: KS, Wasserstein, chi2).
SUITE_TOOLS = {
    "tests": ["driftwatch", "scipy", "evidently", "nannyml"],
    "distances": ["driftwatch", "evidently", "nannyml"],
    "all": ["driftwatch"],
}

LN2_SQRT = math.sqrt(math.log(2.0))

# Verdict and value comparisons with the driftwatch run of the same suite.
#   tool_method / dw_method: method names in the normalised results
#   kind: feature kind the comparison applies to
#   verdict: "same" (identical definition: disagreement is a bug), "different" (same family of test
#            but a different definition: agreement is informational), or None (values only)
#   values: (tool field, driftwatch field, factor) checked at relative 1e-9 (tool * factor == dw)
#   note: shown in the table and in results.json
COMPARISONS = [
    # --- tests suite -------------------------------------------------------------------------
    dict(suite="tests", tool="scipy", tool_method="ks", dw_method="ks", kind="numeric",
         verdict="same", values=[("value", "value", 1.0), ("p_value", "p_value", 1.0)],
         note="ks_2samp(method='auto'), p < 0.05"),
    dict(suite="tests", tool="scipy", tool_method="wasserstein", dw_method="wasserstein",
         kind="numeric", verdict=None, values=[("value", "value", 1.0)],
         note="wasserstein_distance (values only; no threshold in scipy)"),
    dict(suite="tests", tool="scipy", tool_method="chi2", dw_method="chi2", kind="categorical",
         verdict="same",
         values=[("value", "value", 1.0), ("p_value", "p_value", 1.0), ("dof", "dof", 1.0)],
         note="chi2_contingency(2 x k, correction=False), p < 0.05"),
    dict(suite="tests", tool="evidently", tool_method="ks", dw_method="ks", kind="numeric",
         verdict="same", values=[("p_value", "p_value", 1.0)],
         note="stattest 'ks' = scipy ks_2samp p-value, drift when p <= 0.05"),
    dict(suite="tests", tool="evidently", tool_method="chisquare_gof", dw_method="chi2",
         kind="categorical", verdict="different", values=[],
         note="stattest 'chisquare' is a goodness-of-fit test of the current counts against "
              "reference proportions (scipy.stats.chisquare), not the 2 x k homogeneity test"),
    dict(suite="tests", tool="nannyml", tool_method="ks", dw_method="ks", kind="numeric",
         verdict="same", values=[("value", "value", 1.0)],
         note="exact KS D; NannyML alerts on D, so the threshold is set to the D at which "
              "scipy's p-value is 0.05 for these sample sizes (equivalent to p < 0.05)"),
    dict(suite="tests", tool="nannyml", tool_method="wasserstein", dw_method="wasserstein",
         kind="numeric", verdict=None, values=[("value", "value", 1.0)],
         note="calculation_method='exact' (values only; NannyML's thresholds are in the "
              "feature's unit)"),
    dict(suite="tests", tool="nannyml", tool_method="chi2", dw_method="chi2",
         kind="categorical", verdict="same", values=[("value", "value", 1.0)],
         note="chi2_contingency with Yates' correction when dof = 1 (then values differ; "
              "such features are counted separately)"),
    # --- distances suite ---------------------------------------------------------------------
    dict(suite="distances", tool="evidently", tool_method="wasserstein_normed",
         dw_method="wasserstein_normed", kind="numeric", verdict="same",
         values=[("value", "value", 1.0)],
         note="W / max(population std of reference, 0.001), drift when >= 0.1"),
    dict(suite="distances", tool="evidently", tool_method="jensen_shannon_e",
         dw_method="jensen_shannon", kind="categorical", verdict="same",
         values=[("value", "value", 1.0 / LN2_SQRT)],
         note="natural-log JS distance over the union of categories; threshold set to "
              "0.1 * sqrt(ln 2), the same cut as 0.1 in base 2"),
    dict(suite="distances", tool="nannyml", tool_method="jensen_shannon",
         dw_method="jensen_shannon", kind="categorical", verdict="same",
         values=[("value", "value", 1.0)],
         note="base-2 JS over reference categories + one bucket for unseen ones, "
              "ConstantThreshold(upper=0.1)"),
    dict(suite="distances", tool="nannyml", tool_method="jensen_shannon",
         dw_method="jensen_shannon", kind="numeric", verdict="different", values=[],
         note="numeric JS: NannyML bins with Doane's rule on the reference, driftwatch at "
              "reference deciles: informational"),
    dict(suite="distances", tool="nannyml", tool_method="wasserstein",
         dw_method="wasserstein", kind="numeric", verdict=None,
         values=[("value", "value", 1.0)], note="calculation_method='exact' (values only)"),
]

REL_TOL = 1e-9
# p-values below this are compared absolutely (both sides underflow towards 0 differently).
P_FLOOR = 1e-300


# ================================================================================================
# Data generation (runs in a child process with numpy)
# ================================================================================================

NUMERIC_SPECS = [
    # name, base distribution, drift applied in the drifted half (None: never drifts)
    ("num_00", "normal(0, 1)", "mean +0.25 sd"),
    ("num_01", "normal(50, 10)", "sd x1.3"),
    ("num_02", "lognormal(3, 0.5)", "log-mean +0.1"),
    ("num_03", "uniform(0, 1)", "range shifted by +0.05"),
    ("num_04", "exponential(scale 2)", "scale x1.1"),
    ("num_05", "poisson(20) (integers, ties)", "lambda 21"),
    ("num_06", "normal(100, 15)", "gradual mean shift 0 -> +0.2 sd over the drifted half"),
    ("num_07", "normal(0, 1)", "5% outliers at +4 sd"),
    ("num_08", "normal(0, 1)", "mean +0.02 sd (near the detection limit)"),
    ("num_09", "student-t(5)", "student-t(3) (heavier tails)"),
    ("num_10", "normal(0, 1)", None),
    ("num_11", "gamma(2, 3)", None),
    ("num_12", "beta(2, 5)", None),
    ("num_13", "uniform integers 0..50", None),
    ("num_14", "lognormal(10, 1) rounded to cents", None),
    ("num_15", "normal(-5, 0.1)", None),
    ("num_16", "mixture 0.7 normal(0,1) + 0.3 normal(5,1)", None),
    ("num_17", "exponential(scale 0.01)", None),
    ("num_18", "student-t(10)", None),
    ("num_19", "weibull(1.5) x 1000", None),
]
CATEGORICAL_SPECS = [
    ("cat_0", ["low", "medium", "high", "very_high"], [0.4, 0.3, 0.2, 0.1],
     "probabilities -> 0.3, 0.3, 0.25, 0.15"),
    ("cat_1", ["web", "ios", "android", "partner", "store", "phone"],
     [0.35, 0.25, 0.2, 0.1, 0.06, 0.04],
     "a new category 'kiosk' (3%, absent from the reference), the others scaled down"),
    ("cat_2", ["A", "B", "C"], [0.5, 0.3, 0.2], None),
    ("cat_3", [f"R{i:02d}" for i in range(1, 13)], None, None),
    ("cat_4", ["basic", "plus", "pro", "team", "enterprise"], [0.5, 0.2, 0.15, 0.1, 0.05], None),
]


def _numeric_column(rng, name: str, n: int, drifted, ramp):
    """One numeric column of ``n`` rows; ``drifted`` marks drifted rows, ``ramp`` in [0, 1]."""
    import numpy as np

    d = drifted
    if name == "num_00":
        return rng.normal(0, 1, n) + 0.25 * d
    if name == "num_01":
        return 50 + 10 * rng.standard_normal(n) * np.where(d, 1.3, 1.0)
    if name == "num_02":
        return np.exp(3 + 0.1 * d + 0.5 * rng.standard_normal(n))
    if name == "num_03":
        return rng.uniform(0, 1, n) + 0.05 * d
    if name == "num_04":
        return rng.exponential(2.0, n) * np.where(d, 1.1, 1.0)
    if name == "num_05":
        return rng.poisson(np.where(d, 21.0, 20.0)).astype(np.int64)
    if name == "num_06":
        return 100 + 15 * (rng.standard_normal(n) + 0.2 * ramp)
    if name == "num_07":
        x = rng.standard_normal(n)
        outlier = d & (rng.uniform(size=n) < 0.05)
        return np.where(outlier, 4 + 0.5 * rng.standard_normal(n), x)
    if name == "num_08":
        return rng.standard_normal(n) + 0.02 * d
    if name == "num_09":
        return np.where(d, rng.standard_t(3, n), rng.standard_t(5, n))
    if name == "num_10":
        return rng.standard_normal(n)
    if name == "num_11":
        return rng.gamma(2.0, 3.0, n)
    if name == "num_12":
        return rng.beta(2.0, 5.0, n)
    if name == "num_13":
        return rng.integers(0, 51, n)
    if name == "num_14":
        return np.round(np.exp(10 + rng.standard_normal(n)), 2)
    if name == "num_15":
        return -5 + 0.1 * rng.standard_normal(n)
    if name == "num_16":
        return np.where(rng.uniform(size=n) < 0.3, 5.0, 0.0) + rng.standard_normal(n)
    if name == "num_17":
        return rng.exponential(0.01, n)
    if name == "num_18":
        return rng.standard_t(10, n)
    if name == "num_19":
        return 1000 * rng.weibull(1.5, n)
    raise ValueError(name)


def _categorical_column(rng, spec, n: int, drifted):
    """One categorical column of ``n`` rows (strings)."""
    import numpy as np

    name, cats, probs, _ = spec
    cats = list(cats)
    probs = np.full(len(cats), 1.0 / len(cats)) if probs is None else np.asarray(probs)
    base = rng.choice(len(cats), size=n, p=probs)
    if name == "cat_0":
        alt = rng.choice(len(cats), size=n, p=[0.3, 0.3, 0.25, 0.15])
        base = np.where(drifted, alt, base)
    elif name == "cat_1":
        cats = cats + ["kiosk"]
        alt = rng.choice(len(cats), size=n, p=list(np.asarray(probs) * 0.97) + [0.03])
        base = np.where(drifted, alt, base)
    return np.asarray(cats, dtype=object)[base]


def _frame(rng, n: int, drift_from: float | None):
    """A data frame of ``n`` rows; rows at relative position >= ``drift_from`` drift."""
    import numpy as np
    import pandas as pd

    pos = np.arange(n) / max(n, 1)
    if drift_from is None:
        drifted = np.zeros(n, dtype=bool)
        ramp = np.zeros(n)
    else:
        drifted = pos >= drift_from
        ramp = np.clip((pos - drift_from) / (1 - drift_from), 0, 1) * drifted
    cols = {}
    for name, _, _ in NUMERIC_SPECS:
        x = _numeric_column(rng, name, n, drifted, ramp)
        # Six decimals keep the CSV small; the rounded values are what every tool reads.
        cols[name] = x if x.dtype.kind == "i" else np.round(x, 6)
    for spec in CATEGORICAL_SPECS:
        cols[spec[0]] = _categorical_column(rng, spec, n, drifted)
    return pd.DataFrame(cols)


def generate(out: Path, rows: int, reference_rows: int, seed: int) -> dict:
    """Writes reference.{csv,parquet} and current.{csv,parquet} into ``out``.

    The reference and the first half of the current rows come from the same distributions; from
    row ``rows // 2`` on, the 10 features num_00..num_09 and the 2 features cat_0, cat_1 drift
    (12 of 25 features; with the default sizes, chunks 5-9 of 100,000 rows). Everything is drawn
    from ``numpy.random.default_rng(seed)`` (reference first, then current), so the files are the
    same on every machine with the same numpy.
    """
    import numpy as np

    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    ref = _frame(rng, reference_rows, None)
    cur = _frame(rng, rows, 0.5)
    for stem, df in (("reference", ref), ("current", cur)):
        df.to_csv(out / f"{stem}.csv", index=False)
        df.to_parquet(out / f"{stem}.parquet", index=False)
    meta = {
        "seed": seed,
        "rows": rows,
        "reference_rows": reference_rows,
        "drift_from_row": rows // 2,
        "numeric": [n for n, _, _ in NUMERIC_SPECS],
        "categorical": [s[0] for s in CATEGORICAL_SPECS],
        "drifted": [n for n, _, d in NUMERIC_SPECS if d] + [s[0] for s in CATEGORICAL_SPECS if s[3]],
        "numeric_specs": [{"name": n, "distribution": b, "drift": d} for n, b, d in NUMERIC_SPECS],
        "categorical_specs": [
            {"name": s[0], "categories": s[1], "probabilities": s[2], "drift": s[3]}
            for s in CATEGORICAL_SPECS
        ],
        "numpy": np.__version__,
        "seconds": round(time.perf_counter() - t0, 2),
        "files": {
            p.name: p.stat().st_size for p in sorted(out.iterdir()) if p.suffix in (".csv", ".parquet")
        },
    }
    (out / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    return meta


# ================================================================================================
# The Python tools (each runs in its own child process: `compare.py _tool NAME ...`)
# ================================================================================================


def _read(path: str, categorical: list[str]):
    """Reads a CSV or Parquet file with pandas; categorical columns as strings."""
    import pandas as pd

    if path.endswith(".parquet"):
        df = pd.read_parquet(path)
    else:
        df = pd.read_csv(path)
    for c in categorical:
        if df[c].dtype != object:
            df[c] = df[c].astype(str)
    return df


def _chunks(n: int, size: int):
    """(index, start, stop) of consecutive chunks of ``size`` rows (the last may be shorter)."""
    return [(i, s, min(s + size, n)) for i, s in enumerate(range(0, n, size))]


def _f(x):
    """A JSON-safe float (None for NaN / None)."""
    if x is None:
        return None
    x = float(x)
    return None if math.isnan(x) else x


def tool_scipy(args, ref, cur) -> list[dict]:
    """The per-feature scipy loop of the issue: ks_2samp + wasserstein_distance for numeric
    features, chi2_contingency on the 2 x k table (reference counts vs chunk counts over the union
    of categories, no continuity correction, as driftwatch) for categorical ones."""
    import numpy as np
    from scipy.stats import chi2_contingency, ks_2samp, wasserstein_distance

    ref_num = {f: ref[f].to_numpy(dtype=float) for f in args.numeric}
    ref_counts = {f: ref[f].value_counts() for f in args.categorical}
    out = []
    for i, s, e in _chunks(len(cur), args.chunk_size):
        chunk = cur.iloc[s:e]
        feats = {}
        for f in args.numeric:
            x = chunk[f].to_numpy(dtype=float)
            ks = ks_2samp(ref_num[f], x)
            w = wasserstein_distance(ref_num[f], x)
            feats[f] = {
                "ks": {"value": _f(ks.statistic), "p_value": _f(ks.pvalue),
                       "drift": bool(ks.pvalue < 0.05)},
                "wasserstein": {"value": _f(w)},
            }
        for f in args.categorical:
            cc = chunk[f].value_counts()
            keys = sorted(set(ref_counts[f].index) | set(cc.index))
            table = np.array([[ref_counts[f].get(k, 0) for k in keys], [cc.get(k, 0) for k in keys]])
            res = chi2_contingency(table, correction=False)
            feats[f] = {"chi2": {"value": _f(res.statistic), "p_value": _f(res.pvalue),
                                 "dof": int(res.dof), "drift": bool(res.pvalue < 0.05)}}
        out.append({"index": i, "rows": e - s, "features": feats})
    return out


def tool_evidently(args, ref, cur) -> list[dict]:
    """Evidently's DataDriftPreset, one Report per chunk (Evidently has no chunking), with the test
    forced per suite (see COMPARISONS); verdicts are read from the Report's own tests."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    if args.suite == "tests":
        preset_kw = dict(num_method="ks", cat_method="chisquare")
        names = {"ks": "ks", "chisquare": "chisquare_gof"}
        is_p = {"ks": True, "chisquare": True}
    else:
        # Its automatic choice for > 1000 reference rows, made explicit; the categorical threshold
        # is 0.1 in base 2 expressed for Evidently's natural-log distance.
        preset_kw = dict(num_method="wasserstein", cat_method="jensenshannon",
                         num_threshold=0.1, cat_threshold=0.1 * LN2_SQRT)
        names = {"wasserstein": "wasserstein_normed", "jensenshannon": "jensen_shannon_e"}
        is_p = {"wasserstein": False, "jensenshannon": False}
    features = args.numeric + args.categorical
    definition = DataDefinition(numerical_columns=args.numeric, categorical_columns=args.categorical)
    ref_ds = Dataset.from_pandas(ref[features], data_definition=definition)
    out = []
    for i, s, e in _chunks(len(cur), args.chunk_size):
        cur_ds = Dataset.from_pandas(cur.iloc[s:e][features].reset_index(drop=True),
                                     data_definition=definition)
        report = Report([DataDriftPreset(columns=features, **preset_kw)], include_tests=True)
        snap = report.run(cur_ds, ref_ds).dict()
        feats: dict = {}
        ids = {}
        for m in snap["metrics"]:
            cfg = m["config"]
            if cfg.get("type", "").endswith("ValueDrift"):
                method = cfg["method"]
                key = "p_value" if is_p[method] else "value"
                feats.setdefault(cfg["column"], {})[names[method]] = {key: _f(m["value"])}
                ids[m["id"]] = (cfg["column"], names[method])
        for t in snap["tests"]:
            mid = t.get("metric_config", {}).get("metric_id")
            if mid in ids:
                col, name = ids[mid]
                feats[col][name]["drift"] = t["status"] == "FAIL"
        out.append({"index": i, "rows": e - s, "features": feats})
    return out


def tool_nannyml(args, ref, cur) -> list[dict]:
    """NannyML's UnivariateDriftCalculator with chunk_size, exact KS / Wasserstein (its default for
    >= 10,000 reference rows is a 10,000-bin approximation; ``--nannyml-computation auto`` keeps
    it), and constant thresholds that make its verdicts comparable (see COMPARISONS)."""
    import nannyml as nml
    from nannyml.thresholds import ConstantThreshold
    from scipy.stats import kstwo

    if args.suite == "tests":
        cont, cat = ["kolmogorov_smirnov", "wasserstein"], ["chi2"]
    else:
        cont, cat = ["wasserstein", "jensen_shannon"], ["jensen_shannon"]
    # NannyML alerts on the KS statistic D, not on its p-value. For fixed sample sizes scipy's
    # asymptotic p-value, kstwo.sf(D, round(n m / (n + m))), decreases with D, so "p < 0.05" is
    # "D > kstwo.isf(0.05, round(n m / (n + m)))". Valid when every chunk has chunk_size rows and
    # max(n, m) > 10,000 (scipy's 'auto' mode is then asymptotic), as in both data sets here.
    n, m = float(len(ref)), float(min(args.chunk_size, len(cur)))
    d_crit = float(kstwo.isf(0.05, round(n * m / (n + m))))
    d_crit_valid = max(n, m) > 10_000 and len(cur) % args.chunk_size == 0
    thresholds = {
        "kolmogorov_smirnov": ConstantThreshold(lower=None, upper=d_crit),
        "jensen_shannon": ConstantThreshold(lower=None, upper=0.1),
    }
    params = {}
    if args.nannyml_computation == "exact":
        # The documented form is {"kolmogorov_smirnov": {"calculation_method": "exact"}, ...};
        # NannyML 0.13.1 checks that the method's key is present but then reads
        # "calculation_method" from the top level of the dict, so both are given.
        params = {"kolmogorov_smirnov": {"calculation_method": "exact"},
                  "wasserstein": {"calculation_method": "exact"},
                  "calculation_method": "exact"}
    features = args.numeric + args.categorical
    calc = nml.UnivariateDriftCalculator(
        column_names=features,
        treat_as_numerical=args.numeric,
        treat_as_categorical=args.categorical,
        continuous_methods=cont,
        categorical_methods=cat,
        chunk_size=args.chunk_size,
        thresholds=thresholds,
        computation_params=params,
    )
    calc.fit(ref[features])
    df = calc.calculate(cur[features]).filter(period="analysis").to_df()
    rename = {"kolmogorov_smirnov": "ks"}
    out = []
    for i, row in enumerate(df.itertuples(index=False)):
        rec = dict(zip(df.columns, row))
        feats: dict = {}
        for f in features:
            for meth in (cont if f in args.numeric else cat):
                feats.setdefault(f, {})[rename.get(meth, meth)] = {
                    "value": _f(rec[(f, meth, "value")]),
                    "drift": bool(rec[(f, meth, "alert")]),
                }
        s, e = int(rec[("chunk", "chunk", "start_index")]), int(rec[("chunk", "chunk", "end_index")])
        out.append({"index": i, "rows": e - s + 1, "features": feats})
    return out, {"ks_d_crit": d_crit, "ks_d_crit_valid": d_crit_valid}


def run_tool(args) -> None:
    """Entry point of the child process: import, read, compute, write JSON."""
    t0 = time.perf_counter()
    timings = {}
    if args.tool == "scipy":
        import scipy  # noqa: F401  (import time is part of the measurement)
        fn = tool_scipy
    elif args.tool == "evidently":
        import evidently  # noqa: F401
        from evidently.presets import DataDriftPreset  # noqa: F401
        fn = tool_evidently
    elif args.tool == "nannyml":
        import nannyml  # noqa: F401
        fn = tool_nannyml
    else:
        raise SystemExit(f"unknown tool {args.tool}")
    import pandas  # noqa: F401
    t1 = time.perf_counter()
    timings["import_s"] = t1 - t0
    ref = _read(args.reference, args.categorical)
    cur = _read(args.current, args.categorical)
    t2 = time.perf_counter()
    timings["read_s"] = t2 - t1
    res = fn(args, ref, cur)
    extra = {}
    if isinstance(res, tuple):
        res, extra = res
    timings["compute_s"] = time.perf_counter() - t2
    versions = {}
    for mod in ("numpy", "pandas", "scipy", "evidently", "nannyml"):
        if mod in sys.modules:
            versions[mod] = getattr(sys.modules[mod], "__version__", "?")
    Path(args.out).write_text(json.dumps(
        {"tool": args.tool, "suite": args.suite, "timings": timings, "versions": versions,
         "extra": extra, "chunks": res}, indent=1))


# ================================================================================================
# Orchestration (this process: standard library only)
# ================================================================================================


def find_driftwatch() -> tuple[Path, str]:
    """The binary and its build profile: $DRIFTWATCH_BIN, else release, else debug."""
    env = os.environ.get("DRIFTWATCH_BIN")
    if env:
        p = Path(env)
        profile = "release" if "release" in p.parts else ("debug" if "debug" in p.parts else "?")
        return p, profile
    target = Path(os.environ.get("CARGO_TARGET_DIR", Path.home() / ".cache/driftwatch/target"))
    for profile in ("release", "debug"):
        p = target / profile / "driftwatch"
        if p.exists():
            return p, profile
    raise SystemExit(
        "driftwatch binary not found: set DRIFTWATCH_BIN or run `cargo build --release` "
        f"(looked in {target}/release and {target}/debug)"
    )


def measure(cmd: list[str], log: Path) -> dict:
    """Runs ``cmd`` to completion; returns wall seconds, peak RSS (MiB) and the exit status.

    Peak RSS comes from GNU time's %M (the child's ru_maxrss). Without /usr/bin/time it comes from
    wait4() on the child itself; that figure can include this (small) process's resident size,
    since Linux carries the pre-exec RSS of a vfork'ed child into its maximum.
    """
    gnu_time = Path("/usr/bin/time")
    with tempfile.NamedTemporaryFile(prefix="bench-time-", suffix=".txt", delete=False) as tf:
        tpath = Path(tf.name)
    use_time = gnu_time.exists()
    full = [str(gnu_time), "-f", "%e %M", "-o", str(tpath), *cmd] if use_time else cmd
    with open(log, "w") as logf:
        t0 = time.perf_counter()
        proc = subprocess.Popen(full, stdout=logf, stderr=subprocess.STDOUT)
        _, status, rusage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
    if use_time:
        # GNU time prints "Command exited with non-zero status N" before the numbers on failure.
        last = tpath.read_text().strip().splitlines()[-1].split()
        rss_kib = int(last[1])
        method = "GNU time %M"
    else:
        rss_kib = rusage.ru_maxrss
        method = "wait4 ru_maxrss"
    tpath.unlink(missing_ok=True)
    return {"wall_s": wall, "peak_rss_mib": rss_kib / 1024.0, "exit": proc.returncode,
            "rss_method": method, "command": cmd}


def warm_cache(paths: list[Path]) -> None:
    """Reads the input files once so that every tool finds them in the page cache."""
    for p in paths:
        with open(p, "rb") as f:
            while f.read(1 << 24):
                pass


def load_driftwatch_report(path: Path) -> list[dict]:
    """The driftwatch JSON report, normalised to the shape the Python tools write."""
    rep = json.loads(path.read_text())
    out = []
    for ch in rep["chunks"]:
        feats = {}
        for fe in ch["features"]:
            feats[fe["feature"]] = {
                m["method"]: {k: m.get(k) for k in ("value", "p_value", "dof", "drift")}
                for m in fe["methods"]
            }
            feats[fe["feature"]]["_status"] = fe["status"]
            feats[fe["feature"]]["_drift"] = fe["drift"]
        out.append({"index": ch["index"], "rows": ch["rows"], "features": feats})
    return out


def _close(a, b, tol=REL_TOL, floor=0.0) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if a == b:
        return True
    return abs(a - b) <= max(tol * max(abs(a), abs(b)), floor)


def compare(dw: list[dict], other: list[dict], spec: dict, kinds: dict) -> dict:
    """Verdict agreement and value check of one COMPARISONS entry over all (chunk, feature)."""
    agree = total = 0
    disagreements = []
    value_checks = {f"{tf}": {"n": 0, "fail": 0, "max_rel": 0.0} for tf, _, _ in spec["values"]}
    value_failures = []
    skipped_dof1 = 0
    if len(dw) != len(other):
        return {"error": f"chunk count differs: driftwatch {len(dw)}, tool {len(other)}"}
    for cd, co in zip(dw, other):
        for feat, kind in kinds.items():
            if kind != spec["kind"]:
                continue
            md = cd["features"].get(feat, {}).get(spec["dw_method"])
            mo = co["features"].get(feat, {}).get(spec["tool_method"])
            if md is None or mo is None:
                continue
            # NannyML applies Yates' correction when dof = 1: a different statistic there.
            if spec["tool"] == "nannyml" and spec["dw_method"] == "chi2" and md.get("dof") == 1:
                skipped_dof1 += 1
                continue
            if spec["verdict"] and md.get("drift") is not None and mo.get("drift") is not None:
                total += 1
                if bool(md["drift"]) == bool(mo["drift"]):
                    agree += 1
                else:
                    disagreements.append({
                        "chunk": cd["index"], "feature": feat,
                        "driftwatch": {k: md.get(k) for k in ("value", "p_value", "drift")},
                        spec["tool"]: {k: mo.get(k) for k in ("value", "p_value", "drift")},
                    })
            for tf, df_, factor in spec["values"]:
                a, b = mo.get(tf), md.get(df_)
                if a is None and b is None:
                    continue
                chk = value_checks[tf]
                chk["n"] += 1
                if a is not None:
                    a = a * factor
                floor = P_FLOOR if tf == "p_value" else 0.0
                if not _close(a, b, floor=floor):
                    chk["fail"] += 1
                    value_failures.append({"chunk": cd["index"], "feature": feat, "field": tf,
                                           spec["tool"]: a, "driftwatch": b})
                if a is not None and b is not None and max(abs(a), abs(b)) > 0:
                    chk["max_rel"] = max(chk["max_rel"], abs(a - b) / max(abs(a), abs(b)))
    res = {"agree": agree, "total": total, "disagreements": disagreements[:50],
           "values": value_checks, "value_failures": value_failures[:50]}
    if skipped_dof1:
        res["skipped_dof1"] = skipped_dof1
    return res


def fmt_mib(x: float) -> str:
    return f"{x:,.0f}" if x >= 100 else f"{x:,.1f}"


def fmt_s(x: float) -> str:
    return f"{x:,.1f}" if x >= 100 else (f"{x:.2f}" if x >= 1 else f"{x:.3f}")


def run_dataset(name: str, ds: dict, args, dw_bin: Path, profile: str) -> dict:
    """Runs every tool of every suite on one data set; returns its results dict."""
    work = OUT_DIR / "runs" / f"{name}-{ds['rows']}-{ds['reference_rows']}-{ds['chunk_size']}"
    work.mkdir(parents=True, exist_ok=True)
    features = ds["numeric"] + ds["categorical"]
    kinds = {f: "numeric" for f in ds["numeric"]} | {f: "categorical" for f in ds["categorical"]}
    warm_cache([ds["reference"], ds["current"]])
    results = {"dataset": name, "reference": str(ds["reference"]), "current": str(ds["current"]),
               "current_rows": ds["rows"], "reference_rows": ds["reference_rows"],
               "features": len(features), "numeric": ds["numeric"],
               "categorical": ds["categorical"], "chunk_size": ds["chunk_size"], "runs": [],
               "comparisons": []}
    print(f"\n== {name}: {ds['rows']:,} current rows x {len(features)} features "
          f"({len(ds['numeric'])} numeric, {len(ds['categorical'])} categorical), reference "
          f"{ds['reference_rows']:,} rows, chunks of {ds['chunk_size']:,}", flush=True)
    normalised: dict = {}
    extras: dict = {}
    for suite in ("tests", "distances", "all"):
        for tool in SUITE_TOOLS[suite]:
            if tool in args.skip:
                continue
            out = work / f"{tool}-{suite}.json"
            log = work / f"{tool}-{suite}.log"
            if tool == "driftwatch":
                cmd = [str(dw_bin), "analyze", "--reference", str(ds["reference"]),
                       "--current", str(ds["current"]), "--chunk-size", str(ds["chunk_size"]),
                       "--features", ",".join(features),
                       "--categorical", ",".join(ds["categorical"]),
                       "--numeric", ",".join(ds["numeric"]),
                       *DRIFTWATCH_SUITES[suite], "--format", "json", "--output", str(out),
                       "--quiet"]
                if ds["reference_rows"] > 100_000:
                    # driftwatch keeps a sample of 100,000 reference values for KS / Wasserstein
                    # by default; the whole reference keeps them exact, as scipy's.
                    cmd[-5:-5] = ["--sample-size", str(ds["reference_rows"])]
                reps = args.driftwatch_repeat
            else:
                cmd = [sys.executable, str(Path(__file__).resolve()), "_tool", tool,
                       "--suite", suite, "--reference", str(ds["reference"]),
                       "--current", str(ds["current"]), "--chunk-size", str(ds["chunk_size"]),
                       "--numeric", ",".join(ds["numeric"]),
                       "--categorical", ",".join(ds["categorical"]),
                       "--nannyml-computation", args.nannyml_computation, "--out", str(out)]
                reps = args.repeat
            print(f"   {suite:9s} {tool:10s} ...", end="", flush=True)
            ms = [measure(cmd, log) for _ in range(reps)]
            run = {"tool": tool, "suite": suite, "label": TOOL_LABELS[(tool, suite)],
                   "command": " ".join(cmd), "repeats": reps,
                   "wall_s": statistics.median(m["wall_s"] for m in ms),
                   "wall_s_all": [m["wall_s"] for m in ms],
                   "peak_rss_mib": max(m["peak_rss_mib"] for m in ms),
                   "rss_method": ms[0]["rss_method"], "exit": ms[-1]["exit"],
                   "log": str(log)}
            if run["exit"] != 0:
                print(f" FAILED (exit {run['exit']}, see {log})", flush=True)
                run["error"] = log.read_text()[-2000:]
                results["runs"].append(run)
                continue
            if tool == "driftwatch":
                normalised[(tool, suite)] = load_driftwatch_report(out)
            else:
                doc = json.loads(out.read_text())
                normalised[(tool, suite)] = doc["chunks"]
                run["timings"] = doc["timings"]
                run["versions"] = doc["versions"]
                run["extra"] = doc["extra"]
                extras[(tool, suite)] = doc["extra"]
            print(f" {fmt_s(run['wall_s'])} s, {fmt_mib(run['peak_rss_mib'])} MiB", flush=True)
            results["runs"].append(run)
    # Ratios against the driftwatch run of the same suite.
    base = {r["suite"]: r for r in results["runs"] if r["tool"] == "driftwatch" and r["exit"] == 0}
    for r in results["runs"]:
        b = base.get(r["suite"])
        if b and r["exit"] == 0:
            r["time_ratio"] = r["wall_s"] / b["wall_s"]
            r["memory_ratio"] = r["peak_rss_mib"] / b["peak_rss_mib"]
    if "tests" in base:
        b = base["tests"]
        results["driftwatch_cells_per_s"] = ds["rows"] * len(features) / b["wall_s"]
    for suite, b in base.items():
        b["cells_per_s"] = ds["rows"] * len(features) / b["wall_s"]
    # Verdicts and values.
    for spec in COMPARISONS:
        dw = normalised.get(("driftwatch", spec["suite"]))
        other = normalised.get((spec["tool"], spec["suite"]))
        if dw is None or other is None:
            continue
        res = compare(dw, other, spec, kinds)
        extra = extras.get((spec["tool"], spec["suite"]), {})
        if spec["tool"] == "nannyml" and spec["tool_method"] == "ks" and \
                not extra.get("ks_d_crit_valid", True):
            res.update(agree=0, total=0, disagreements=[],
                       verdict_skipped="D threshold not equivalent to p < 0.05 here (scipy's "
                                       "exact mode, or chunks of unequal size)")
        res.update({k: spec[k] for k in ("suite", "tool", "tool_method", "dw_method", "kind",
                                         "verdict", "note")})
        results["comparisons"].append(res)
    # Which features driftwatch's verdict (KS / chi2, p < 0.05) flags in which chunk, and, for the
    # synthetic set, how that matches the injected drift.
    dw = normalised.get(("driftwatch", "tests"))
    if dw is not None:
        results["driftwatch_drifted"] = {
            f: [c["index"] for c in dw if c["features"].get(f, {}).get("_drift")] for f in features
        }
        meta = ds.get("meta")
        if meta:
            truth = {"detected": 0, "drifted_cells": 0, "false_alarms": 0, "undrifted_cells": 0}
            for c in dw:
                first_row = c["index"] * ds["chunk_size"]
                for f in features:
                    flagged = bool(c["features"].get(f, {}).get("_drift"))
                    if f in meta["drifted"] and first_row >= meta["drift_from_row"]:
                        truth["drifted_cells"] += 1
                        truth["detected"] += flagged
                    elif f not in meta["drifted"] or first_row + c["rows"] <= meta["drift_from_row"]:
                        truth["undrifted_cells"] += 1
                        truth["false_alarms"] += flagged
            results["driftwatch_vs_injected_drift"] = truth
    return results


def render(results: dict, profile: str, dw_version: str) -> str:
    """The plain-text table of one data set."""
    lines = []
    r0 = results
    nchunks = math.ceil(r0["current_rows"] / r0["chunk_size"])
    lines.append(f"{r0['dataset']}: {r0['current_rows']:,} current rows x {r0['features']} features,"
                 f" reference {r0['reference_rows']:,} rows, {nchunks} chunks of "
                 f"{r0['chunk_size']:,} rows; driftwatch {profile} build ({dw_version})")
    head = (f"{'tool':<64} {'wall s':>9} {'peak RSS MiB':>12} {'time x dw':>10} "
            f"{'mem x dw':>9}  verdicts vs driftwatch (same method)")
    by_suite: dict = {}
    for c in r0["comparisons"]:
        by_suite.setdefault((c["suite"], c["tool"]), []).append(c)
    for suite in ("tests", "distances", "all"):
        runs = [r for r in r0["runs"] if r["suite"] == suite]
        if not runs:
            continue
        lines.append("")
        lines.append(f"[{suite}] {SUITE_TITLES[suite]}")
        lines.append(head)
        lines.append("-" * len(head))
        for r in runs:
            if r["exit"] != 0:
                lines.append(f"{r['label']:<64} FAILED (exit {r['exit']}; log {r['log']})")
                continue
            tr = f"{r['time_ratio']:.1f}x" if "time_ratio" in r else "-"
            mr = f"{r['memory_ratio']:.1f}x" if "memory_ratio" in r else "-"
            verd = []
            comps = by_suite.get((suite, r["tool"]), [])
            for c in comps:
                if "error" in c:
                    verd.append(f"{c['tool_method']}: {c['error']}")
                    continue
                if not c.get("verdict"):
                    continue
                tag = c["tool_method"]
                if sum(1 for o in comps if o["tool_method"] == tag and o.get("verdict")) > 1:
                    tag += f" ({c['kind'][:3]})"
                if c.get("verdict_skipped"):
                    verd.append(f"{tag} not compared")
                    continue
                s = f"{tag} {c['agree']}/{c['total']}"
                if c.get("skipped_dof1"):
                    s += f" (+{c['skipped_dof1']} with dof 1 not compared)"
                if c["verdict"] == "different":
                    s += " (different definition)"
                verd.append(s)
            if r["tool"] == "driftwatch" and suite == "tests":
                verd.append(f"{r0['current_rows'] * r0['features'] / r['wall_s']:,.0f} cells/s")
            lines.append(f"{r['label']:<64} {fmt_s(r['wall_s']):>9} "
                         f"{fmt_mib(r['peak_rss_mib']):>12} {tr:>10} {mr:>9}  {'; '.join(verd)}")
    # Value checks.
    checks = []
    for c in r0["comparisons"]:
        for field, v in c.get("values", {}).items():
            if v["n"]:
                status = "OK" if v["fail"] == 0 else f"{v['fail']} FAIL"
                checks.append(f"  {c['suite']:<9} {c['tool']:<9} {c['tool_method']:<18} "
                              f"{field:<7} vs driftwatch {c['dw_method']:<18} n={v['n']:<4} "
                              f"max rel diff {v['max_rel']:.1e}  {status}")
    t = r0.get("driftwatch_vs_injected_drift")
    if t:
        lines.append("")
        lines.append(f"driftwatch verdicts (KS / chi2, p < 0.05) vs the injected drift: "
                     f"{t['detected']}/{t['drifted_cells']} drifted (chunk, feature) cells flagged, "
                     f"{t['false_alarms']}/{t['undrifted_cells']} false alarms in undrifted cells "
                     f"(about 5% expected at p < 0.05)")
    sc = [c for c in r0["comparisons"] if c["tool"] == "scipy"]
    if sc:
        n = sum(v["n"] for c in sc for v in c["values"].values())
        fails = sum(v["fail"] for c in sc for v in c["values"].values())
        worst = max((v["max_rel"] for c in sc for v in c["values"].values()), default=0.0)
        lines.append("")
        lines.append(f"check: driftwatch vs scipy (KS D and p, Wasserstein, chi-square statistic, p "
                     f"and dof), {n} values, max relative difference {worst:.1e}: "
                     + ("OK" if fails == 0 else f"{fails} outside {REL_TOL:g}"))
    if checks:
        lines.append("")
        lines.append(f"value checks (relative {REL_TOL:g}; p-values below {P_FLOOR:g} compared "
                     "absolutely):")
        lines.extend(checks)
    dis = [c for c in r0["comparisons"] if c.get("disagreements")]
    if dis:
        lines.append("")
        lines.append("verdict disagreements (first 5 per comparison):")
        for c in dis:
            lines.append(f"  {c['suite']} {c['tool']} {c['tool_method']} ({c['note']}):")
            for d in c["disagreements"][:5]:
                lines.append(f"    chunk {d['chunk']} {d['feature']}: driftwatch "
                             f"{d['driftwatch']} vs {c['tool']} {d[c['tool']]}")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    if argv and argv[0] == "_tool":
        p = argparse.ArgumentParser(prog="compare.py _tool")
        p.add_argument("tool")
        p.add_argument("--suite", required=True)
        p.add_argument("--reference", required=True)
        p.add_argument("--current", required=True)
        p.add_argument("--chunk-size", type=int, required=True)
        p.add_argument("--numeric", type=lambda s: s.split(","), required=True)
        p.add_argument("--categorical", type=lambda s: s.split(","), required=True)
        p.add_argument("--nannyml-computation", default="exact")
        p.add_argument("--out", required=True)
        run_tool(p.parse_args(argv[1:]))
        return 0
    if argv and argv[0] == "_generate":
        p = argparse.ArgumentParser(prog="compare.py _generate")
        p.add_argument("--out", required=True)
        p.add_argument("--rows", type=int, required=True)
        p.add_argument("--reference-rows", type=int, required=True)
        p.add_argument("--seed", type=int, default=SEED)
        a = p.parse_args(argv[1:])
        generate(Path(a.out), a.rows, a.reference_rows, a.seed)
        return 0

    p = argparse.ArgumentParser(
        prog="bench/compare",
        description="Benchmark driftwatch analyze against scipy, Evidently and NannyML on a "
                    "synthetic data set and on car_loan (see bench/README.md).")
    p.add_argument("--rows", type=int, default=1_000_000, help="current rows (default 1,000,000)")
    p.add_argument("--reference-rows", type=int, default=100_000,
                   help="reference rows (default 100,000)")
    p.add_argument("--chunk-size", type=int, default=100_000,
                   help="rows per chunk of the synthetic set (default 100,000; car_loan: 5,000)")
    p.add_argument("--skip", type=lambda s: [x for x in s.split(",") if x], default=[],
                   help="tools to leave out, comma-separated: scipy,evidently,nannyml")
    p.add_argument("--only", choices=["car_loan", "synthetic"], help="run one data set only")
    p.add_argument("--file-format", choices=["csv", "parquet"], default="csv",
                   help="which synthetic files every tool reads (default csv)")
    p.add_argument("--repeat", type=int, default=1, help="runs per Python tool (median wall)")
    p.add_argument("--driftwatch-repeat", type=int, default=3,
                   help="runs per driftwatch command (median wall; default 3)")
    p.add_argument("--nannyml-computation", choices=["exact", "auto"], default="exact",
                   help="NannyML KS/Wasserstein: exact (scipy, default) or auto (its binned "
                        "estimate for >= 10,000 reference rows)")
    p.add_argument("--seed", type=int, default=SEED)
    p.add_argument("--results", type=Path, default=OUT_DIR / "results.json")
    args = p.parse_args(argv)
    bad = [t for t in args.skip if t not in TOOLS[1:]]
    if bad:
        p.error(f"--skip: unknown tool(s) {bad}; choose from scipy, evidently, nannyml")

    dw_bin, profile = find_driftwatch()
    dw_version = subprocess.run([str(dw_bin), "--version"], capture_output=True, text=True,
                                check=True).stdout.strip()
    print(f"driftwatch: {dw_bin} ({profile} build, {dw_version})")
    if profile != "release":
        print("note: not a release build; report release-build numbers only")
    if not Path("/usr/bin/time").exists():
        print("note: /usr/bin/time missing; peak RSS from wait4() (may include ~10 MiB of this "
              "process)")

    OUT_DIR.mkdir(parents=True, exist_ok=True)
    started = time.time()
    doc = {"generated_by": "bench/compare " + " ".join(argv),
           "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
           "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                       "python": platform.python_version(),
                       "memory_gib": _mem_gib()},
           "driftwatch": {"binary": str(dw_bin), "profile": profile, "version": dw_version},
           "datasets": []}

    if args.only in (None, "synthetic"):
        syn_dir = OUT_DIR / f"synthetic-{args.rows}-{args.reference_rows}-{args.seed}"
        meta_path = syn_dir / "meta.json"
        if not meta_path.exists():
            print(f"generating {syn_dir} ...", end="", flush=True)
            m = measure([sys.executable, str(Path(__file__).resolve()), "_generate",
                         "--out", str(syn_dir), "--rows", str(args.rows),
                         "--reference-rows", str(args.reference_rows), "--seed", str(args.seed)],
                        OUT_DIR / "generate.log")
            if m["exit"] != 0:
                print((OUT_DIR / "generate.log").read_text())
                return 1
            print(f" {m['wall_s']:.1f} s")
        meta = json.loads(meta_path.read_text())
        ext = args.file_format
        ds = {"reference": syn_dir / f"reference.{ext}", "current": syn_dir / f"current.{ext}",
              "rows": meta["rows"], "reference_rows": meta["reference_rows"],
              "chunk_size": args.chunk_size, "numeric": meta["numeric"],
              "categorical": meta["categorical"], "meta": meta}
        res = run_dataset("synthetic", ds, args, dw_bin, profile)
        res["generator"] = meta
        doc["datasets"].append(res)

    if args.only in (None, "car_loan"):
        ds = dict(CAR_LOAN)
        ds["rows"] = _count_rows(ds["current"])
        ds["reference_rows"] = _count_rows(ds["reference"])
        doc["datasets"].append(run_dataset("car_loan", ds, args, dw_bin, profile))

    doc["seconds"] = round(time.time() - started, 1)
    versions = {}
    for d in doc["datasets"]:
        for r in d["runs"]:
            versions.update(r.get("versions", {}))
    doc["versions"] = versions
    text = "\n\n".join(render(d, profile, dw_version) for d in doc["datasets"])
    doc["table"] = text
    print("\n" + text)
    print(f"\nlibrary versions: {', '.join(f'{k} {v}' for k, v in sorted(versions.items()))}")
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"results: {args.results}")
    return 0


def _count_rows(path: Path) -> int:
    with open(path, "rb") as f:
        return sum(1 for _ in f) - 1


def _mem_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return None


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
