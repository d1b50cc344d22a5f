#!/usr/bin/env python3
"""Detection-quality harness: how often ``driftwatch analyze`` and NannyML (its defaults) flag known,
injected drift, and how often they flag clean data.

Run it through ``bench/detection`` (which creates the venv); see ``bench/README.md``.

1. Generates known-truth data sets (``generate_set``) into ``bench/out/detection/data-...``: per set a
   reference CSV and, per chunk size n, a current CSV of C chunks of n rows. The first half of the
   chunks is clean; in the second half some features get an effect of a stated size (in standard
   units), the others stay clean. ``truth-<n>.json`` beside each current file says, for every
   (chunk, feature), whether it is clean or which effect it has. A separate long clean stream
   measures false alarms.
2. Runs ``driftwatch analyze`` (one process per set and chunk size, default settings except
   ``--min-samples 100``) and NannyML's ``UnivariateDriftCalculator`` with its defaults on the same
   chunks (and Evidently's ``DataDriftPreset`` with ``--with-evidently``).
3. Scores each tool per (effect, size, chunk size): hit rate on drifted cells, false-alarm rate on
   clean cells and clean chunks, missing-rate effects separately; prints a side-by-side table and
   writes ``bench/out/detection/results.json``.

``--self-test`` checks the harness itself (the generator's effects are measured back; fake
detectors score 0% / 100%); it needs neither driftwatch nor NannyML.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

BENCH_DIR = Path(__file__).resolve().parent
OUT_DIR = BENCH_DIR / "out" / "detection"
SEED = 20250611
# Bumped whenever the generator changes what it writes, so that cached files are regenerated.
GENERATOR_VERSION = 1

SIZES = (500, 2000, 5000, 20000)
QUICK_SIZES = (2000, 5000)
# Chunks C per current file of the effect sets, by chunk size (the first C/2 are clean).
SET_CHUNKS = {500: 40, 2000: 20, 5000: 12, 20000: 8}
# Chunks of the long clean stream, by chunk size.
STREAM_CHUNKS = {500: 200, 2000: 100, 5000: 40, 20000: 20}
REFERENCE_ROWS = 50_000
MIN_SAMPLES = 100
BASE_MISSING = 0.05
# driftwatch runs: tool name -> extra arguments (after the defaults).
# "driftwatch" is the binary's defaults; "driftwatch-<mode>" adds --thresholds <mode>
# (--driftwatch-thresholds).
DW_MODES = ("adaptive", "fixed", "calibrated")
DW_VARIANTS = {"driftwatch": [], **{f"driftwatch-{m}": ["--thresholds", m] for m in DW_MODES}}
SHORT_NAMES = {"driftwatch": "dw", "driftwatch-adaptive": "dw-ad", "driftwatch-fixed": "dw-fx",
               "driftwatch-calibrated": "dw-cal", "nannyml": "nml", "evidently": "evid"}

# ================================================================================================
# Distributions and effects
# ================================================================================================

# Numeric bases: name -> (description, true mean, true standard deviation, integer values).
NUMERIC_BASES = {
    "normal": ("normal(50, 10)", 50.0, 10.0, False),
    "lognormal": ("lognormal(mu 3, sigma 0.5)", math.exp(3.125),
                  math.exp(3.125) * math.sqrt(math.exp(0.25) - 1.0), False),
    "uniform": ("uniform(0, 100)", 50.0, 100.0 / math.sqrt(12.0), False),
    "exponential": ("exponential(scale 2)", 2.0, 2.0, False),
    "poisson": ("poisson(20), integers with ties", 20.0, math.sqrt(20.0), True),
    "student_t": ("student-t(df 5)", 0.0, math.sqrt(5.0 / 3.0), False),
}
# Categorical bases: name -> (labels, probabilities). Labels are text that no tool reads as a
# number or as a missing value.
CATEGORICAL_BASES = {
    "cat3": (["a", "b", "c"], [0.6, 0.3, 0.1]),
    "cat5": (["a", "b", "c", "d", "e"], [0.4, 0.25, 0.15, 0.12, 0.08]),
    "cat8": (list("abcdefgh"), [0.3, 0.2, 0.15, 0.1, 0.09, 0.07, 0.05, 0.04]),
    "cat12": (list("abcdefghijkl"), list(np.round((1.0 / np.arange(1, 13)) /
                                                  np.sum(1.0 / np.arange(1, 13)), 6))),
}
CATEGORICAL_BASES["cat12"][1][-1] = round(1.0 - sum(CATEGORICAL_BASES["cat12"][1][:-1]), 6)
NEW_CATEGORY = "new"

# Effect types and sizes.
EFFECTS = {
    "mean_shift": (0.05, 0.1, 0.2, 0.3, 0.5),   # mean + d standard deviations
    "scale": (1.1, 1.25, 1.5),                   # standard deviation x k, mean kept
    "tails": (0.02, 0.05),                       # fraction f replaced by draws at mean + 3 sd
    "cat_shift": (0.02, 0.05, 0.1),              # total-variation distance tv moved
    "new_category": (0.01, 0.03, 0.1),           # a category absent from the reference, share s
    "missing": (0.10, 0.20),                     # missing rate 5% -> r (empty cells)
}
EFFECT_LABELS = {
    "mean_shift": lambda s: f"mean +{s:g} sd",
    "scale": lambda s: f"sd x{s:g}",
    "tails": lambda s: f"{s:.0%} at +3 sd",
    "cat_shift": lambda s: f"TV {s:g}",
    "new_category": lambda s: f"new cat {s:.0%}",
    "missing": lambda s: f"missing 5% -> {s:.0%}",
}
EFFECT_DEFINITIONS = {
    "mean_shift": "x + d * sd (Poisson: lambda + d * sqrt(lambda), still integers)",
    "scale": "mean + k * (x - mean) (Poisson: negative binomial of the same mean, variance "
             "k^2 * lambda)",
    "tails": "each value replaced with probability f by mean + 3 sd + 0.5 sd * z, z standard "
             "normal (Poisson: rounded)",
    "cat_shift": "probability tv moved from the most frequent category to the least frequent",
    "new_category": "a category 'new' with share s, the others scaled by (1 - s)",
    "missing": "missing rate raised from 5% to r (empty CSV cells); the values present keep "
               "their distribution",
}

# The effect sets: name -> list of (feature base, effect or None). Every set has one clean
# control feature per base. Missing-rate sets use bases with a 5% missing rate throughout.
def _sets() -> dict:
    num = list(NUMERIC_BASES)
    cat = list(CATEGORICAL_BASES)
    sets = {
        "mean_shift": [(b, ("mean_shift", d)) for b in num for d in EFFECTS["mean_shift"]]
        + [(b, None) for b in num],
        "scale_tails": [(b, ("scale", k)) for b in num for k in EFFECTS["scale"]]
        + [(b, ("tails", f)) for b in num for f in EFFECTS["tails"]]
        + [(b, None) for b in num],
        "categorical": [(b, ("cat_shift", t)) for b in cat for t in EFFECTS["cat_shift"]]
        + [(b, ("new_category", s)) for b in cat for s in EFFECTS["new_category"]]
        + [(b, None) for b in cat],
        "missing": [(f"{b}+missing", ("missing", r)) for b in MISSING_BASES
                    for r in EFFECTS["missing"]]
        + [(f"{b}+missing", None) for b in MISSING_BASES],
    }
    return sets


MISSING_BASES = ("normal", "lognormal", "poisson", "cat5", "cat12")
# The long clean stream: every base once, plus the bases with 5% missing values.
STREAM_FEATURES = list(NUMERIC_BASES) + list(CATEGORICAL_BASES) + [f"{b}+missing"
                                                                    for b in MISSING_BASES]
SETS = _sets()
STREAM = "clean_stream"


def feature_names(bases: list[str]) -> list[str]:
    """Neutral column names (the truth is in the meta files, not in the names)."""
    return [f"f{i:02d}_{b.replace('+missing', '_m')}" for i, b in enumerate(bases)]


def _draw_numeric(rng, base: str, n: int, effect) -> np.ndarray:
    """``n`` values of a numeric base with an effect (None: clean), as float (NaN never here)."""
    _, mean, sd, integer = NUMERIC_BASES[base]
    etype, size = effect if effect else (None, None)
    if base == "poisson":
        lam = 20.0
        if etype == "mean_shift":
            return rng.poisson(lam + size * sd, n).astype(float)
        if etype == "scale":
            var = (size * sd) ** 2
            p = lam / var
            r = lam * p / (1.0 - p)
            return rng.negative_binomial(r, p, n).astype(float)
        x = rng.poisson(lam, n).astype(float)
    elif base == "normal":
        x = rng.normal(50.0, 10.0, n)
    elif base == "lognormal":
        x = rng.lognormal(3.0, 0.5, n)
    elif base == "uniform":
        x = rng.uniform(0.0, 100.0, n)
    elif base == "exponential":
        x = rng.exponential(2.0, n)
    elif base == "student_t":
        x = rng.standard_t(5.0, n)
    else:
        raise ValueError(base)
    if etype == "mean_shift":
        x = x + size * sd
    elif etype == "scale":
        x = mean + size * (x - mean)
    elif etype == "tails":
        out = rng.uniform(size=n) < size
        far = mean + 3.0 * sd + 0.5 * sd * rng.standard_normal(n)
        if integer:
            far = np.round(far)
        x = np.where(out, far, x)
    elif etype is not None:
        raise ValueError(f"effect {etype} does not apply to numeric {base}")
    return x


def _draw_categorical(rng, base: str, n: int, effect) -> np.ndarray:
    """``n`` labels of a categorical base with an effect (None: clean), as an object array."""
    labels, probs = CATEGORICAL_BASES[base]
    labels, probs = list(labels), np.asarray(probs, dtype=float)
    etype, size = effect if effect else (None, None)
    if etype == "cat_shift":
        probs = probs.copy()
        probs[np.argmax(probs)] -= size
        probs[np.argmin(CATEGORICAL_BASES[base][1])] += size
    elif etype == "new_category":
        labels = labels + [NEW_CATEGORY]
        probs = np.append(probs * (1.0 - size), size)
    elif etype is not None:
        raise ValueError(f"effect {etype} does not apply to categorical {base}")
    probs = probs / probs.sum()
    return np.asarray(labels, dtype=object)[rng.choice(len(labels), size=n, p=probs)]


def draw_column(rng, base: str, n: int, effect):
    """``n`` values of feature base ``base`` (``name+missing``: 5% missing) with an effect.

    Returns numpy arrays: float with NaN for numeric bases, object with None for categorical ones.
    """
    missing_rate = 0.0
    if base.endswith("+missing"):
        base = base[: -len("+missing")]
        missing_rate = BASE_MISSING
        if effect and effect[0] == "missing":
            missing_rate = effect[1]
            effect = None
    elif effect and effect[0] == "missing":
        raise ValueError("missing-rate effects need a base with missing values")
    if base in NUMERIC_BASES:
        x = _draw_numeric(rng, base, n, effect)
    else:
        x = _draw_categorical(rng, base, n, effect)
    if missing_rate:
        gone = rng.uniform(size=n) < missing_rate
        x = x.copy()
        x[gone] = np.nan if x.dtype.kind == "f" else None
    return x


def base_kind(base: str) -> str:
    return "numeric" if base.replace("+missing", "") in NUMERIC_BASES else "categorical"


# ================================================================================================
# Writing the sets
# ================================================================================================


def _frame(columns: dict, bases: dict) -> pd.DataFrame:
    """A data frame ready for CSV: floats rounded to 6 decimals, integers without '.0', missing
    values as empty cells."""
    out = {}
    for name, x in columns.items():
        b = bases[name].replace("+missing", "")
        if b in NUMERIC_BASES:
            if NUMERIC_BASES[b][3]:
                out[name] = pd.array(x, dtype="Float64").astype("Int64")
            else:
                out[name] = np.round(x, 6)
        else:
            out[name] = x
    return pd.DataFrame(out)


def set_features(set_name: str) -> list[tuple[str, str, object]]:
    """(column name, base, effect) of a set's features."""
    if set_name == STREAM:
        spec = [(b, None) for b in STREAM_FEATURES]
    else:
        spec = SETS[set_name]
    names = feature_names([b for b, _ in spec])
    return [(name, b, e) for name, (b, e) in zip(names, spec)]


def set_seed(seed: int, set_name: str, n: int) -> np.random.Generator:
    """The generator of one file: the same files for the same seed whatever else is generated."""
    idx = ([STREAM] + list(SETS)).index(set_name)
    return np.random.default_rng(np.random.SeedSequence([seed, idx, n]))


def chunk_count(set_name: str, n: int) -> int:
    table = STREAM_CHUNKS if set_name == STREAM else SET_CHUNKS
    if n in table:
        return table[n]
    # Other sizes (--sizes): about 100,000 rows, between 8 and 40 chunks.
    return max(8, min(40, 100_000 // n)) // 2 * 2


def generate_set(data_dir: Path, set_name: str, sizes, reference_rows: int, seed: int,
                 log=print) -> dict:
    """Writes ``reference.csv``, ``current-<n>.csv`` and ``truth-<n>.json`` of one set (files that
    already exist with the same generator version and parameters are kept)."""
    d = data_dir / set_name
    d.mkdir(parents=True, exist_ok=True)
    feats = set_features(set_name)
    bases = {name: b for name, b, _ in feats}
    meta_path = d / "meta.json"
    meta = {
        "generator_version": GENERATOR_VERSION, "set": set_name, "seed": seed,
        "reference_rows": reference_rows, "numpy": np.__version__,
        "features": [{"name": name, "base": b, "kind": base_kind(b),
                      "distribution": describe_base(b),
                      "effect": list(e) if e else None} for name, b, e in feats],
    }
    old = json.loads(meta_path.read_text()) if meta_path.exists() else None
    same = old is not None and all(old.get(k) == meta[k] for k in
                                   ("generator_version", "seed", "reference_rows", "features"))
    if not same:
        for p in d.iterdir():
            p.unlink()
    ref_path = d / "reference.csv"
    if not ref_path.exists():
        t0 = time.perf_counter()
        rng = set_seed(seed, set_name, 0)
        cols = {name: draw_column(rng, b, reference_rows, None) for name, b, _ in feats}
        _frame(cols, bases).to_csv(ref_path, index=False)
        log(f"  wrote {ref_path.relative_to(data_dir.parent)} ({time.perf_counter() - t0:.1f} s)")
    meta["files"] = old.get("files", {}) if same else {}
    for n in sizes:
        cur_path, truth_path = d / f"current-{n}.csv", d / f"truth-{n}.json"
        if cur_path.exists() and truth_path.exists() and \
                json.loads(truth_path.read_text()).get("chunks") == chunk_count(set_name, n):
            continue
        t0 = time.perf_counter()
        rng = set_seed(seed, set_name, n)
        c = chunk_count(set_name, n)
        clean_chunks = c if set_name == STREAM else c // 2
        cols = {}
        for name, b, e in feats:
            first = draw_column(rng, b, clean_chunks * n, None)
            second = draw_column(rng, b, (c - clean_chunks) * n, e)
            cols[name] = np.concatenate([first, second])
        _frame(cols, bases).to_csv(cur_path, index=False)
        truth = []
        for i in range(c):
            truth.append({name: (list(e) if (e and i >= clean_chunks) else None)
                          for name, _, e in feats})
        truth_path.write_text(json.dumps({
            "set": set_name, "chunk_size": n, "chunks": c, "clean_chunks": clean_chunks,
            "rows": c * n, "truth": truth}) + "\n")
        meta["files"][str(n)] = {"chunks": c, "clean_chunks": clean_chunks, "rows": c * n}
        log(f"  wrote {cur_path.relative_to(data_dir.parent)}: {c} chunks of {n:,} rows "
            f"({time.perf_counter() - t0:.1f} s)")
    meta_path.write_text(json.dumps(meta, indent=1) + "\n")
    return meta


def describe_base(b: str) -> str:
    plain = b.replace("+missing", "")
    if plain in NUMERIC_BASES:
        s = NUMERIC_BASES[plain][0]
    else:
        labels, probs = CATEGORICAL_BASES[plain]
        s = f"{len(labels)} categories, p = {', '.join(f'{p:g}' for p in probs)}"
    return s + (f", {BASE_MISSING:.0%} missing" if b.endswith("+missing") else "")


# ================================================================================================
# Running the tools
# ================================================================================================


# The binary lookup is bench/compare's ($DRIFTWATCH_BIN, else release, else debug).
from compare import find_driftwatch  # noqa: E402


def driftwatch_command(dw: Path, ref: Path, cur: Path, n: int, out: Path, extra=()) -> list[str]:
    return [str(dw), "analyze", "--quiet", "--reference", str(ref), "--current", str(cur),
            "--chunk-size", str(n), "--format", "json", "--min-samples", str(MIN_SAMPLES),
            *extra, "--output", str(out)]


def read_driftwatch(path: Path, kinds: dict, n: int) -> tuple[list[dict], list[dict] | None,
                                                              list[str]]:
    """Per chunk: feature -> verdict (True / False / None); per chunk: feature ->
    ``quality.missing_surge`` (None when the report has no ``quality``, older builds); warnings
    about the report."""
    rep = json.loads(path.read_text())
    warnings = []
    got = {f["name"]: f["kind"] for f in rep.get("features", [])}
    for name, kind in kinds.items():
        if name not in got:
            warnings.append(f"driftwatch did not analyse {name}")
        elif got[name] != kind:
            warnings.append(f"driftwatch typed {name} as {got[name]} (it is {kind})")
    out, surges, has_quality = [], [], False
    for i, ch in enumerate(rep["chunks"]):
        if ch["index"] != i or ch["rows"] != n or ch.get("first_row", i * n) != i * n:
            warnings.append(f"chunk {i}: index {ch['index']}, rows {ch['rows']}, first_row "
                            f"{ch.get('first_row')} (expected rows {n} from row {i * n})")
        v, q = {}, {}
        for fe in ch["features"]:
            v[fe["feature"]] = fe["drift"] if fe["status"] == "ok" else None
            if fe["status"] == "ok" and fe["drift"] is None:
                warnings.append(f"chunk {ch['index']} {fe['feature']}: status ok but drift null")
            if "quality" in fe:
                has_quality = True
                q[fe["feature"]] = fe["quality"].get("missing_surge")
        out.append(v)
        surges.append(q)
    return out, (surges if has_quality else None), warnings


def _file_id(path: Path) -> str:
    """Size and modification time of a file, to notice a binary replaced during a run."""
    st = path.stat()
    return f"{st.st_size} bytes, modified {time.strftime('%H:%M:%S', time.localtime(st.st_mtime))}"


def describe_dw_settings(st: dict) -> str:
    """The verdict rule of a driftwatch report's ``settings``, in one line."""
    drift = st.get("drift", {})
    mode = st.get("threshold_mode", "?")
    parts = [f"threshold mode {mode}",
             f"numeric verdict {'+'.join(drift.get('numeric_verdict', []))}",
             f"categorical verdict {'+'.join(drift.get('categorical_verdict', []))}"]
    ad = drift.get("adaptive") or {}
    if mode == "adaptive" and ad:
        parts.append(f"adaptive: chunk false-alarm rate {ad.get('false_alarm_rate')}, floors "
                     + ", ".join(f"{k[4:]} {v}" for k, v in ad.items() if k.startswith("min_")))
    elif mode == "fixed":
        parts.append("0.1 for distances, 0.05 for p-values")
    elif mode == "calibrated":
        parts.append("mean + 3 std over reference chunks of the same size")
    if drift.get("thresholds"):
        parts.append(f"explicit thresholds {drift['thresholds']}")
    return "; ".join(parts)


def nannyml_defaults() -> dict:
    """NannyML's default methods and thresholds, read from the installed version."""
    import nannyml as nml
    from nannyml.drift.univariate import calculator as cm

    calc = nml.UnivariateDriftCalculator(column_names=["x"], chunk_size=1000)
    return {
        "version": nml.__version__,
        "continuous_methods": list(calc.continuous_method_names),
        "categorical_methods": list(calc.categorical_method_names),
        "thresholds": {k: _describe_threshold(t) for k, t in cm.DEFAULT_THRESHOLDS.items()},
        "computation_params": calc.computation_params,
    }


def _describe_threshold(t) -> str:
    attrs = {k: v for k, v in vars(t).items() if not callable(v)}
    return f"{type(t).__name__}({', '.join(f'{k}={v}' for k, v in attrs.items())})"


def run_nannyml(ref: pd.DataFrame, cur: pd.DataFrame, n: int, kinds: dict) -> tuple:
    """NannyML's UnivariateDriftCalculator with its defaults; a feature's cell drifts when any of
    its methods alerts (no verdict when every method's value is NaN)."""
    import nannyml as nml

    import warnings as pywarnings

    features = list(kinds)
    calc = nml.UnivariateDriftCalculator(column_names=features, chunk_size=n)
    with pywarnings.catch_warnings(record=True) as caught:
        pywarnings.simplefilter("always")
        calc.fit(ref[features])
        df = calc.calculate(cur[features]).filter(period="analysis").to_df()
    mine = [str(c.message) for c in caught if "nannyml" in str(c.filename)]
    warnings = sorted(f"NannyML warned ({mine.count(m)}x): {m}" for m in set(mine))
    cont, cat = set(calc.continuous_column_names), set(calc.categorical_column_names)
    for f, k in kinds.items():
        mine = "numeric" if f in cont else ("categorical" if f in cat else None)
        if mine != k:
            warnings.append(f"NannyML typed {f} as {mine} (it is {k})")
    out = []
    for row in df.itertuples(index=False):
        rec = dict(zip(df.columns, row))
        v = {}
        for f in features:
            methods = calc.continuous_method_names if f in cont else calc.categorical_method_names
            vals = [rec[(f, m, "value")] for m in methods]
            if all(x is None or (isinstance(x, float) and math.isnan(x)) for x in vals):
                v[f] = None
            else:
                v[f] = any(bool(rec[(f, m, "alert")]) for m in methods)
        out.append(v)
    thresholds = {}
    for f, models in calc._column_to_models_mapping.items():
        for m in models:
            thresholds[f"{f}/{m.column_name}"] = m.upper_threshold_value
    return out, warnings, thresholds


def run_evidently(ref: pd.DataFrame, cur: pd.DataFrame, n: int, kinds: dict) -> tuple:
    """Evidently's DataDriftPreset with its defaults, one Report per chunk; a cell drifts when
    its column's drift test fails."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    features = list(kinds)
    num = [f for f, k in kinds.items() if k == "numeric"]
    cat = [f for f, k in kinds.items() if k == "categorical"]
    definition = DataDefinition(numerical_columns=num, categorical_columns=cat)
    ref_ds = Dataset.from_pandas(ref[features], data_definition=definition)
    out, methods = [], {}
    for s in range(0, len(cur), n):
        cur_ds = Dataset.from_pandas(cur.iloc[s:s + n][features].reset_index(drop=True),
                                     data_definition=definition)
        report = Report([DataDriftPreset(columns=features)], include_tests=True)
        snap = report.run(cur_ds, ref_ds).dict()
        ids, v = {}, {f: None for f in features}
        for m in snap["metrics"]:
            cfg = m["config"]
            if cfg.get("type", "").endswith("ValueDrift"):
                ids[m["id"]] = cfg["column"]
                methods[cfg["column"]] = cfg.get("method")
        for t in snap["tests"]:
            col = ids.get(t.get("metric_config", {}).get("metric_id"))
            if col is not None:
                v[col] = bool(v[col]) or t["status"] == "FAIL"
        out.append(v)
    return out, [], methods


# ================================================================================================
# Scoring
# ================================================================================================


def score(cells) -> dict:
    """Aggregates verdict cells into rates.

    ``cells``: iterable of dicts with ``tool``, ``source`` ("halves" for the clean chunks and
    clean features of the effect sets, "stream" for the long clean stream), ``n`` (chunk size),
    ``set``, ``chunk``, ``base``, ``truth`` (None or (effect, size)) and ``verdict`` (True, False
    or None = no verdict).

    Returns ``hits`` (effect, size, n, tool) -> counts, ``clean_cells`` (source, n, tool),
    ``clean_chunks`` (source, n, tool) and ``clean_by_base`` (base, n, tool); counts are
    ``{"cells", "flagged", "no_verdict"}`` (``chunks`` / ``flagged`` for chunks). A drifted cell
    without a verdict is a miss; a clean chunk is flagged when any of its features is.
    """
    hits, clean_cells, clean_by_base, chunk_flags = {}, {}, {}, {}
    chunk_clean = {}

    def add(d, key, flagged, none):
        c = d.setdefault(key, {"cells": 0, "flagged": 0, "no_verdict": 0})
        c["cells"] += 1
        c["flagged"] += bool(flagged)
        c["no_verdict"] += none

    for c in cells:
        v = c["verdict"]
        flagged, none = v is True, v is None
        ck = (c["source"], c["n"], c["tool"], c["set"], c["chunk"])
        if c["truth"] is None:
            add(clean_cells, (c["source"], c["n"], c["tool"]), flagged, none)
            add(clean_by_base, (c["base"], c["n"], c["tool"]), flagged, none)
            chunk_flags[ck] = chunk_flags.get(ck, False) or flagged
            chunk_clean.setdefault(ck, True)
        else:
            etype, size = c["truth"]
            add(hits, (etype, size, c["n"], c["tool"]), flagged, none)
            chunk_clean[ck] = False
    clean_chunks = {}
    for ck, clean in chunk_clean.items():
        if not clean:
            continue
        key = ck[:3]
        d = clean_chunks.setdefault(key, {"chunks": 0, "flagged": 0})
        d["chunks"] += 1
        d["flagged"] += chunk_flags.get(ck, False)
    return {"hits": hits, "clean_cells": clean_cells, "clean_chunks": clean_chunks,
            "clean_by_base": clean_by_base}


def cells_of(tool: str, set_name: str, n: int, truth: dict, verdicts: list[dict], bases: dict):
    """The scored cells of one tool on one (set, chunk size)."""
    if len(verdicts) != truth["chunks"]:
        raise RuntimeError(f"{tool} on {set_name}/{n}: {len(verdicts)} chunks, expected "
                           f"{truth['chunks']}")
    source = "stream" if set_name == STREAM else "halves"
    for i, (t, v) in enumerate(zip(truth["truth"], verdicts)):
        for f, eff in t.items():
            yield {"tool": tool, "source": source, "n": n, "set": set_name, "chunk": i,
                   "base": bases[f], "truth": tuple(eff) if eff else None,
                   "verdict": v.get(f)}


def wilson(k: int, n: int, z: float = 1.96) -> list[float] | None:
    """The Wilson score interval (95%) of a rate k / n."""
    if not n:
        return None
    p = k / n
    d = 1 + z * z / n
    mid = (p + z * z / (2 * n)) / d
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return [round(max(0.0, mid - half), 4), round(min(1.0, mid + half), 4)]


def _rate(c: dict, key="cells") -> float | None:
    return c["flagged"] / c[key] if c and c[key] else None


def _pct(x, digits=0) -> str:
    return "-" if x is None else f"{100 * x:.{digits}f}%"


def render(sc: dict, tools: list[str], sizes: list[int], stream_features: int,
           set_widths: dict) -> str:
    """The side-by-side tables."""
    short = dict(SHORT_NAMES)
    short.update({t: t[:5] for t in tools if t not in short})
    lines = []
    w = max(6, max(len(short.get(t, t)) for t in tools) + 1)
    group = lambda: "".join(f"{short[t]:>{w}}" for t in tools)  # noqa: E731
    head1 = f"{'':<24}" + "".join(f"|{('chunk ' + format(n, ',')):^{7 + w * len(tools)}}"
                                  for n in sizes)
    head2 = f"{'effect':<24}" + "".join(f"|{'cells':>7}{group()}" for _ in sizes)

    def table(title, keys):
        lines.append("")
        lines.append(title)
        lines.append(head1)
        lines.append(head2)
        lines.append("-" * len(head2))
        for etype, size in keys:
            row = f"{EFFECT_LABELS[etype](size):<24}"
            for n in sizes:
                first = sc["hits"].get((etype, size, n, tools[0]))
                row += f"|{(first['cells'] if first else 0):>7}"
                for t in tools:
                    row += f"{_pct(_rate(sc['hits'].get((etype, size, n, t)))):>{w}}"
            lines.append(row)

    keys = sorted({(e, s) for (e, s, _, _) in sc["hits"]},
                  key=lambda k: (list(EFFECTS).index(k[0]), k[1]))
    table("HIT RATE: share of drifted (chunk, feature) cells flagged (no verdict = miss)",
          [k for k in keys if k[0] != "missing"])
    mk = [k for k in keys if k[0] == "missing"]
    if mk:
        table("MISSING-RATE EFFECTS: share of cells flagged (values present are unchanged)", mk)

    lines.append("")
    lines.append("FALSE ALARMS on clean data")
    lines.append(head1)
    lines.append(f"{'':<24}" + "".join(f"|{'n':>7}{group()}" for _ in sizes))
    lines.append("-" * len(head2))
    rows = [("per cell, clean halves", "clean_cells", "halves", "cells", 1),
            ("per cell, clean stream", "clean_cells", "stream", "cells", 1),
            ("per chunk, clean halves", "clean_chunks", "halves", "chunks", 1),
            ("per chunk, clean stream", "clean_chunks", "stream", "chunks", 1),
            ("per chunk, both", "clean_chunks", "both", "chunks", 1)]
    both = {}
    for (src, n, t), c in sc["clean_chunks"].items():
        d = both.setdefault(("both", n, t), {"chunks": 0, "flagged": 0})
        d["chunks"] += c["chunks"]
        d["flagged"] += c["flagged"]
    sc = dict(sc, clean_chunks={**sc["clean_chunks"], **both})
    for label, table_key, source, count_key, digits in rows:
        row = f"{label:<24}"
        for n in sizes:
            first = sc[table_key].get((source, n, tools[0]))
            row += f"|{(first[count_key] if first else 0):>7}"
            for t in tools:
                row += f"{_pct(_rate(sc[table_key].get((source, n, t)), count_key), digits):>{w}}"
        lines.append(row)
    lines.append(f"(a chunk counts when any of its features is flagged: {stream_features} features "
                 f"per clean-stream chunk; clean halves: the first half of each effect set, "
                 + ", ".join(f"{k} {v}" for k, v in set_widths.items()) + " features)")
    lines.append("all chunk sizes pooled, clean chunks flagged (95% Wilson interval): " + "; ".join(
        f"{t} {k}/{m} = {_pct(k / m if m else None, 1)} "
        f"[{_pct(ci[0], 1)}, {_pct(ci[1], 1)}]"
        for t in tools
        for k, m in [(sum(c["flagged"] for (src, n, tt), c in both.items() if tt == t),
                      sum(c["chunks"] for (src, n, tt), c in both.items() if tt == t))]
        for ci in [wilson(k, m) or [None, None]]))

    lines.append("")
    lines.append("FALSE ALARMS per clean cell, by base distribution (clean halves + clean stream)")
    lines.append(head1)
    lines.append(f"{'base':<24}" + "".join(f"|{'cells':>7}{group()}" for _ in sizes))
    lines.append("-" * len(head2))
    bases = sorted({b for (b, _, _) in sc["clean_by_base"]},
                   key=lambda b: (base_kind(b), "+missing" in b, b))
    for b in bases:
        row = f"{b:<24}"
        for n in sizes:
            first = sc["clean_by_base"].get((b, n, tools[0]))
            row += f"|{(first['cells'] if first else 0):>7}"
            for t in tools:
                row += f"{_pct(_rate(sc['clean_by_base'].get((b, n, t))), 1):>{w}}"
        lines.append(row)

    nv = []
    for t in tools:
        for n in sizes:
            d = sum(c["no_verdict"] for (e, s, nn, tt), c in sc["hits"].items()
                    if tt == t and nn == n)
            cl = sum(c["no_verdict"] for (src, nn, tt), c in sc["clean_cells"].items()
                     if tt == t and nn == n)
            if d or cl:
                nv.append(f"  {t} chunk {n:,}: {d} drifted cells, {cl} clean cells")
    lines.append("")
    if nv:
        lines.append("cells without a verdict (counted as misses / not flagged):")
        lines.extend(nv)
    else:
        lines.append("cells without a verdict: none")
    return "\n".join(lines)


def render_surge(sc: dict, tools: list[str], sizes: list[int]) -> str:
    """driftwatch's data-quality verdict (``quality.missing_surge``, reported beside ``drift``):
    missing-rate cells flagged, and false alarms on clean cells and chunks."""
    lines = ["", "DRIFTWATCH quality.missing_surge (a data-quality verdict reported beside `drift`, "
             "not part of it)"]
    head = f"{'':<24}" + "".join(f"|{('chunk ' + format(n, ',')):^{7 + 7 * len(tools)}}"
                                 for n in sizes)
    lines.append(head)
    lines.append(f"{'':<24}" + "".join(f"|{'n':>7}" + "".join(f"{'surge':>7}" for _ in tools)
                                       for _ in sizes))
    lines.append("-" * len(head))
    rows = [(EFFECT_LABELS["missing"](r), "hits", ("missing", r), "cells", 0)
            for r in EFFECTS["missing"]]
    rows += [("clean, per cell", "clean_cells", None, "cells", 1),
             ("clean, per chunk", "clean_chunks", None, "chunks", 1)]
    for label, key, eff, count_key, digits in rows:
        row = f"{label:<24}"
        for n in sizes:
            counts = []
            for t in tools:
                if key == "hits":
                    c = sc["hits"].get((eff[0], eff[1], n, t))
                else:
                    parts = [v for (src, nn, tt), v in sc[key].items() if nn == n and tt == t]
                    c = {count_key: sum(p[count_key] for p in parts),
                         "flagged": sum(p["flagged"] for p in parts)} if parts else None
                counts.append(c)
            row += f"|{(counts[0][count_key] if counts[0] else 0):>7}"
            row += "".join(f"{_pct(_rate(c, count_key), digits):>7}" for c in counts)
        lines.append(row)
    by_base = {}
    for (b, n, t), c in sc["clean_by_base"].items():
        if "+missing" in b:
            d = by_base.setdefault((n, t), {"cells": 0, "flagged": 0})
            d["cells"] += c["cells"]
            d["flagged"] += c["flagged"]
    row = f"{'clean, 5% missing bases':<24}"
    for n in sizes:
        first = by_base.get((n, tools[0]))
        row += f"|{(first['cells'] if first else 0):>7}"
        row += "".join(f"{_pct(_rate(by_base.get((n, t))), 1):>7}" for t in tools)
    lines.append(row)
    if len(tools) > 1:
        lines.append("columns: " + ", ".join(tools))
    return "\n".join(lines)


def _json_key(k) -> str:
    return "|".join(str(x) for x in k)


# ================================================================================================
# Self-test
# ================================================================================================


def self_test() -> int:
    """Checks of the harness itself: effects measured back, fake detectors scored."""
    failures = []
    checks = 0

    def check(ok: bool, what: str):
        nonlocal checks
        checks += 1
        print(f"  {'ok  ' if ok else 'FAIL'} {what}")
        if not ok:
            failures.append(what)

    rng = np.random.default_rng(12345)
    n = 20_000
    print(f"generator: effects measured back at {n:,} rows (numeric, against the true mean/sd)")
    for b, (_, mean, sd, integer) in NUMERIC_BASES.items():
        clean = draw_column(rng, b, n, None)
        m0 = (clean.mean() - mean) / sd
        check(abs(m0) < 0.03, f"{b:<11} clean: mean shift {m0:+.4f} sd (0 +- 0.03)")
        for d in (0.3, 0.05):
            x = draw_column(rng, b, n, ("mean_shift", d))
            m = (x.mean() - mean) / sd
            check(abs(m - d) < 0.03, f"{b:<11} mean_shift {d}: measured {m:.4f} sd ({d} +- 0.03)")
        x = draw_column(rng, b, n, ("scale", 1.5))
        r = x.std() / sd
        check(abs(r - 1.5) < 0.05 and abs((x.mean() - mean) / sd) < 0.03,
              f"{b:<11} scale 1.5: sd ratio {r:.4f} (1.5 +- 0.05), mean kept "
              f"({(x.mean() - mean) / sd:+.4f} sd)")
        x = draw_column(rng, b, n, ("tails", 0.05))
        m = (x.mean() - mean) / sd
        far = np.mean(x > mean + 2.0 * sd) - np.mean(clean > mean + 2.0 * sd)
        check(abs(m - 0.15) < 0.03 and abs(far - 0.05) < 0.015,
              f"{b:<11} tails 0.05: mean shift {m:.4f} sd (3 x 0.05 = 0.15 +- 0.03), extra share "
              f"above mean + 2 sd {far:.4f} (0.05 +- 0.015)")
        if integer:
            ints = all(np.all(draw_column(rng, b, 1000, e) % 1 == 0)
                       for e in (None, ("mean_shift", 0.3), ("scale", 1.25), ("tails", 0.05)))
            check(ints, f"{b:<11} stays integer under every effect")
    nc = 100_000
    print(f"generator: categorical effects at {nc:,} rows (against the true proportions)")
    for b, (labels, probs) in CATEGORICAL_BASES.items():
        p = dict(zip(labels, probs))
        for etype, size in (("cat_shift", 0.05), ("cat_shift", 0.1), ("new_category", 0.03)):
            x = draw_column(rng, b, nc, (etype, size))
            vals, counts = np.unique(x.astype(str), return_counts=True)
            q = dict(zip(vals, counts / nc))
            tv = 0.5 * sum(abs(q.get(k, 0.0) - p.get(k, 0.0)) for k in set(p) | set(q))
            check(abs(tv - size) < 0.01, f"{b:<6} {etype} {size}: measured TV {tv:.4f} "
                  f"({size} +- 0.01)")
            if etype == "new_category":
                s = q.get(NEW_CATEGORY, 0.0)
                check(abs(s - size) < 0.005, f"{b:<6} new category share {s:.4f} ({size} +- 0.005)")
        x = draw_column(rng, b, nc, None)
        vals, counts = np.unique(x.astype(str), return_counts=True)
        q = dict(zip(vals, counts / nc))
        tv = 0.5 * sum(abs(q.get(k, 0.0) - p.get(k, 0.0)) for k in set(p) | set(q))
        check(tv < 0.01, f"{b:<6} clean: measured TV {tv:.4f} (< 0.01)")
    print(f"generator: missing rates at {n:,} rows")
    for b in MISSING_BASES:
        for eff, want in ((None, BASE_MISSING), (("missing", 0.1), 0.1), (("missing", 0.2), 0.2)):
            x = draw_column(rng, f"{b}+missing", n, eff)
            miss = np.mean(pd.isna(x))
            check(abs(miss - want) < 0.01, f"{b:<11} missing {want:.0%}: measured {miss:.4f} "
                  f"(+- 0.01)")
        x = draw_column(rng, f"{b}+missing", n, ("missing", 0.2))
        present = x[~pd.isna(x)]
        if base_kind(b) == "numeric":
            _, mean, sd, _ = NUMERIC_BASES[b]
            m = (present.astype(float).mean() - mean) / sd
            check(abs(m) < 0.03, f"{b:<11} values present under missing 20% keep the mean "
                  f"({m:+.4f} sd)")

    print("files: a small set written and read back")
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        logs = []
        for s in list(SETS) + [STREAM]:
            generate_set(data, s, [500], 2_000, 7, log=logs.append)
        for s in list(SETS) + [STREAM]:
            truth = json.loads((data / s / "truth-500.json").read_text())
            df = pd.read_csv(data / s / "current-500.csv", keep_default_na=False,
                             na_values=[""])
            feats = set_features(s)
            c = truth["chunks"]
            check(len(df) == c * 500 and list(df.columns) == [f for f, _, _ in feats],
                  f"{s}: {len(df)} rows = {c} chunks x 500, columns as in meta.json")
            drifted_chunks = {i for i, t in enumerate(truth["truth"]) if any(t.values())}
            want = set() if s == STREAM else set(range(c // 2, c))
            check(drifted_chunks == want, f"{s}: truth marks chunks {sorted(drifted_chunks)[:1]}"
                  f"..{sorted(drifted_chunks)[-1:]} as drifted (the second half)"
                  if want else f"{s}: truth marks no chunk as drifted")
            num = [f for f, b, _ in feats if base_kind(b) == "numeric"]
            decimals = max((len(str(v).split(".")[1]) for f in num for v in df[f].dropna()[:200]
                            if "." in str(v)), default=0)
            check(decimals <= 6, f"{s}: numeric values have at most 6 decimals ({decimals})")
            if s == "missing":
                f10 = [f for f, b, e in feats if e == ("missing", 0.2)][0]
                second = df[f10].iloc[(c // 2) * 500:]
                first = df[f10].iloc[: (c // 2) * 500]
                check(abs(second.isna().mean() - 0.2) < 0.03 and abs(first.isna().mean() - 0.05)
                      < 0.02, f"missing: empty cells read back as missing ({first.isna().mean():.3f}"
                      f" clean half, {second.isna().mean():.3f} drifted half of a 20% feature)")
            ref = pd.read_csv(data / s / "reference.csv")
            check(len(ref) == 2_000, f"{s}: reference has 2,000 rows")
        # The same seed writes the same files.
        a = (data / "mean_shift" / "current-500.csv").read_bytes()
        (data / "mean_shift" / "current-500.csv").unlink()
        generate_set(data, "mean_shift", [500], 2_000, 7, log=logs.append)
        check(a == (data / "mean_shift" / "current-500.csv").read_bytes(),
              "the same seed regenerates byte-identical files")

        print("scorer: fake detectors on the truth of that set")
        cells_by = {}
        for name, fake in (("all", lambda t: True), ("none", lambda t: False),
                           ("oracle", lambda t: t is not None), ("silent", lambda t: None)):
            cells = []
            for s in list(SETS) + [STREAM]:
                truth = json.loads((data / s / "truth-500.json").read_text())
                bases = {f: b for f, b, _ in set_features(s)}
                verdicts = [{f: fake(t) for f, t in ch.items()} for ch in truth["truth"]]
                cells.extend(cells_of(name, s, 500, truth, verdicts, bases))
            cells_by[name] = cells
        sc = score(c for cells in cells_by.values() for c in cells)
        for name, hit, fa in (("all", 1.0, 1.0), ("none", 0.0, 0.0), ("oracle", 1.0, 0.0),
                              ("silent", 0.0, 0.0)):
            hits = [_rate(v) for (e, s, nn, t), v in sc["hits"].items() if t == name]
            fac = [_rate(v) for (src, nn, t), v in sc["clean_cells"].items() if t == name]
            fach = [_rate(v, "chunks") for (src, nn, t), v in sc["clean_chunks"].items()
                    if t == name]
            ok = (hits and all(h == hit for h in hits) and len(fac) == 2
                  and all(f == fa for f in fac) and len(fach) == 2 and all(f == fa for f in fach))
            check(bool(ok), f"detector '{name}': hit rate {hit:.0%} in all {len(hits)} (effect, "
                  f"size) groups, false alarms {fa:.0%} per clean cell and per clean chunk "
                  f"(halves and stream)")
        nv = sum(v["no_verdict"] for (e, s, nn, t), v in sc["hits"].items() if t == "silent")
        total = sum(v["cells"] for (e, s, nn, t), v in sc["hits"].items() if t == "silent")
        check(nv == total > 0, f"detector 'silent' (no verdicts): {nv}/{total} drifted cells "
              "reported as no verdict, scored as misses")
        n_hits_cells = sum(v["cells"] for (e, s, nn, t), v in sc["hits"].items() if t == "all")
        want_cells = sum((chunk_count(s, 500) // 2) * sum(1 for _, _, e in set_features(s) if e)
                         for s in SETS)
        check(n_hits_cells == want_cells, f"scorer counts {n_hits_cells} drifted cells "
              f"({want_cells} expected)")
        text = render(sc, ["all", "none", "oracle", "silent"], [500], len(STREAM_FEATURES),
                      {s: len(set_features(s)) for s in SETS})
        w0, w1 = wilson(0, 100), wilson(100, 100)
        check(w0[0] == 0.0 and 0.03 < w0[1] < 0.04 and w1[1] == 1.0 and 0.96 < w1[0] < 0.97,
              f"Wilson 95% intervals: 0/100 -> {w0}, 100/100 -> {w1}")
        st = render_surge(sc, ["all", "none"], [500])
        check("100%" in st and "0%" in st, "the missing-surge table renders")
        fake = {"features": [{"name": "a", "kind": "numeric"}, {"name": "b", "kind": "numeric"}],
                "chunks": [{"index": i, "rows": 500, "first_row": 500 * i, "features": [
                    {"feature": "a", "status": "ok", "drift": i == 1,
                     "quality": {"missing_surge": i == 0}},
                    {"feature": "b", "status": "insufficient_data", "drift": None,
                     "quality": {"missing_surge": None}}]} for i in range(2)]}
        fp = data / "fake-report.json"
        fp.write_text(json.dumps(fake))
        v, q, w = read_driftwatch(fp, {"a": "numeric", "b": "categorical"}, 500)
        check(v == [{"a": False, "b": None}, {"a": True, "b": None}]
              and q == [{"a": True, "b": None}, {"a": False, "b": None}]
              and len(w) == 1 and "typed b as numeric" in w[0],
              "a driftwatch report is read: drift, no verdict (insufficient_data), missing_surge, "
              "a wrongly typed feature warned")
        check("100%" in text and "0%" in text and "silent chunk 500" in text,
              "the tables render (fake detectors side by side)")
    print(f"\nself-test: {checks - len(failures)}/{checks} checks passed"
          + ("" if not failures else f"; FAILED: {len(failures)}"))
    return 1 if failures else 0


# ================================================================================================
# Main
# ================================================================================================


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        prog="bench/detection",
        description="Detection quality of driftwatch analyze and NannyML's defaults on generated "
                    "data with known, injected drift (see bench/README.md).")
    p.add_argument("--self-test", action="store_true",
                   help="check the harness itself (generator, scorer); no driftwatch needed")
    p.add_argument("--quick", action="store_true",
                   help=f"chunk sizes {', '.join(map(str, QUICK_SIZES))} only (about a minute)")
    p.add_argument("--sizes", type=lambda s: [int(x) for x in s.split(",")],
                   help=f"chunk sizes (default {','.join(map(str, SIZES))})")
    p.add_argument("--reference-rows", type=int, default=REFERENCE_ROWS,
                   help=f"reference rows per set (default {REFERENCE_ROWS:,})")
    p.add_argument("--skip", type=lambda s: [x for x in s.split(",") if x], default=[],
                   help="tools to leave out: nannyml (driftwatch always runs)")
    p.add_argument("--with-evidently", action="store_true",
                   help="also score Evidently's DataDriftPreset defaults (slow: one Report per "
                        "chunk)")
    p.add_argument("--driftwatch-thresholds", type=lambda s: [x for x in s.split(",") if x],
                   default=[], metavar="MODES",
                   help="also score driftwatch with --thresholds MODE for each of these modes "
                        f"(comma-separated: {', '.join(DW_MODES)})")
    p.add_argument("--jobs", type=int, default=2,
                   help="driftwatch processes at a time (default 2)")
    p.add_argument("--seed", type=int, default=SEED)
    p.add_argument("--out", type=Path, default=OUT_DIR, help=f"work directory (default {OUT_DIR})")
    args = p.parse_args(argv)
    if args.self_test:
        return self_test()
    sizes = args.sizes or (list(QUICK_SIZES) if args.quick else list(SIZES))
    tools = ["driftwatch"]
    bad = [m for m in args.driftwatch_thresholds if m not in DW_MODES]
    if bad:
        p.error(f"--driftwatch-thresholds: unknown mode(s) {bad}; choose from {', '.join(DW_MODES)}")
    tools.extend(f"driftwatch-{m}" for m in args.driftwatch_thresholds)
    if "nannyml" not in args.skip:
        tools.append("nannyml")
    if args.with_evidently:
        tools.append("evidently")

    started = time.time()
    dw, profile = find_driftwatch()
    dw_before = _file_id(dw)
    dw_version = subprocess.run([str(dw), "--version"], capture_output=True, text=True,
                                check=True).stdout.strip()
    print(f"driftwatch: {dw} ({profile} build, {dw_version}); settings: defaults + --min-samples "
          f"{MIN_SAMPLES}")
    nml_defaults = None
    if "nannyml" in tools:
        nml_defaults = nannyml_defaults()
        print(f"NannyML {nml_defaults['version']} defaults: continuous_methods="
              f"{nml_defaults['continuous_methods']}, categorical_methods="
              f"{nml_defaults['categorical_methods']}, computation_params="
              f"{nml_defaults['computation_params']}")
        for m in sorted(set(nml_defaults["continuous_methods"] +
                            nml_defaults["categorical_methods"])):
            print(f"  threshold {m}: {nml_defaults['thresholds'].get(m)} (fitted on the reference "
                  "cut into chunks of the same size: mean + 3 std of the method's values)")
    versions = {"numpy": np.__version__, "pandas": pd.__version__}
    if "nannyml" in tools:
        versions["nannyml"] = nml_defaults["version"]
    if "evidently" in tools:
        import evidently
        versions["evidently"] = evidently.__version__

    data_dir = args.out / f"data-s{args.seed}-r{args.reference_rows}"
    runs_dir = args.out / "runs"
    runs_dir.mkdir(parents=True, exist_ok=True)
    print(f"data: {data_dir}")
    t0 = time.perf_counter()
    metas = {}
    for s in list(SETS) + [STREAM]:
        metas[s] = generate_set(data_dir, s, sizes, args.reference_rows, args.seed)
    gen_s = time.perf_counter() - t0
    print(f"generated / checked the data in {gen_s:.1f} s")

    # Every driftwatch process is started up front on a pool of --jobs workers (largest files
    # first) while this thread runs the Python tools set by set; verdicts are joined afterwards.
    dw_tools = [t for t in tools if t.startswith("driftwatch")]
    py_tools = [t for t in tools if not t.startswith("driftwatch")]
    jobs = []
    for s in list(SETS) + [STREAM]:
        for n in sizes:
            for t in dw_tools:
                jobs.append((s, n, t))
    size_of = lambda j: (data_dir / j[0] / f"current-{j[1]}.csv").stat().st_size  # noqa: E731
    dw_results: dict = {}

    def run_dw(job):
        s, n, t = job
        out = runs_dir / f"{t}-{s}-{n}.json"
        log = runs_dir / f"{t}-{s}-{n}.log"
        cmd = driftwatch_command(dw, data_dir / s / "reference.csv",
                                 data_dir / s / f"current-{n}.csv", n, out, DW_VARIANTS[t])
        t0 = time.perf_counter()
        with open(log, "w") as logf:
            proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT)
            _, status, ru = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        return {"exit": os.waitstatus_to_exitcode(status), "wall_s": time.perf_counter() - t0,
                "cpu_s": ru.ru_utime + ru.ru_stime, "out": out, "log": log, "command": cmd}

    pool = ThreadPoolExecutor(max_workers=max(1, args.jobs))
    futures = {j: pool.submit(run_dw, j) for j in sorted(jobs, key=size_of, reverse=True)}
    print(f"driftwatch: {len(jobs)} runs started in the background ({args.jobs} at a time)")

    cells, warnings = [], []
    timings = {t: {"wall_s": 0.0, "cpu_s": 0.0} for t in tools}
    nml_thresholds, evid_methods = {}, {}
    per_run = []
    results: dict = {}
    for s in list(SETS) + [STREAM]:
        if not py_tools:
            break
        feats = set_features(s)
        kinds = {f: base_kind(b) for f, b, _ in feats}
        bases = {f: b for f, b, _ in feats}
        ref_df = pd.read_csv(data_dir / s / "reference.csv")
        for n in sizes:
            cur_df = pd.read_csv(data_dir / s / f"current-{n}.csv")
            msg = [f"{s} chunk {n:,}:"]
            for t in py_tools:
                tc, tw = time.process_time(), time.perf_counter()
                if t == "nannyml":
                    v, w, thr = run_nannyml(ref_df, cur_df, n, kinds)
                    nml_thresholds[f"{s}/{n}"] = thr
                else:
                    v, w, meth = run_evidently(ref_df, cur_df, n, kinds)
                    evid_methods.update({bases[f]: m for f, m in meth.items()})
                wall, cpu = time.perf_counter() - tw, time.process_time() - tc
                timings[t]["wall_s"] += wall
                timings[t]["cpu_s"] += cpu
                per_run.append({"tool": t, "set": s, "chunk_size": n, "wall_s": wall,
                                "cpu_s": cpu})
                results[(t, s, n)] = v
                warnings.extend(f"{t} {s}/{n}: {x}" for x in w)
                msg.append(f"{t} {wall:.1f} s")
            print(" ".join(msg), flush=True)
    if py_tools:
        print("waiting for driftwatch ...", flush=True)
    failed = False
    dw_settings: dict = {}
    for (s, n, t), fut in futures.items():
        r = fut.result()
        kinds = {f: base_kind(b) for f, b, _ in set_features(s)}
        if r["exit"] != 0:
            print(f"{t} failed (exit {r['exit']}): {' '.join(r['command'])}\n"
                  f"{r['log'].read_text()[-3000:]}")
            failed = True
            continue
        v, q, w = read_driftwatch(r["out"], kinds, n)
        if q is not None:
            results[(t + ":missing_surge", s, n)] = q
        dw_settings.setdefault(t, json.loads(r["out"].read_text()).get("settings", {}))
        results[(t, s, n)] = v
        warnings.extend(f"{t} {s}/{n}: {x}" for x in w)
        timings[t]["wall_s"] += r["wall_s"]
        timings[t]["cpu_s"] += r["cpu_s"]
        per_run.append({"tool": t, "set": s, "chunk_size": n, "wall_s": r["wall_s"],
                        "cpu_s": r["cpu_s"], "command": r["command"]})
    pool.shutdown()
    if failed:
        return 1
    surge_tools = [t + ":missing_surge" for t in dw_tools
                   if all((t + ":missing_surge", s, n) in results
                          for s in list(SETS) + [STREAM] for n in sizes)]
    surge_cells = []
    for s in list(SETS) + [STREAM]:
        bases = {f: b for f, b, _ in set_features(s)}
        for n in sizes:
            truth = json.loads((data_dir / s / f"truth-{n}.json").read_text())
            for t in tools:
                cells.extend(cells_of(t, s, n, truth, results[(t, s, n)], bases))
            for t in surge_tools:
                surge_cells.extend(cells_of(t, s, n, truth, results[(t, s, n)], bases))
    dw_after = _file_id(dw)
    if dw_after != dw_before:
        warnings.insert(0, f"the driftwatch binary changed during the run ({dw_before} -> "
                           f"{dw_after}): the runs may mix two builds; run again")

    sc = score(cells)
    set_widths = {s: len(set_features(s)) for s in SETS}
    text = render(sc, tools, sizes, len(STREAM_FEATURES), set_widths)
    sc_surge = score(surge_cells) if surge_tools else None
    if sc_surge:
        text += "\n" + render_surge(sc_surge, surge_tools, sizes)
    header = []
    for t in dw_tools:
        st = dw_settings.get(t, {})
        header.append(f"{t} ({SHORT_NAMES[t]}): {profile} build ({dw_version}), `analyze` "
                      + ("defaults" if not DW_VARIANTS[t] else " ".join(DW_VARIANTS[t]))
                      + f" + --min-samples {MIN_SAMPLES}: " + describe_dw_settings(st))
    if nml_defaults:
        thr = nml_defaults["thresholds"].get("jensen_shannon")
        header.append(f"NannyML {nml_defaults['version']}: UnivariateDriftCalculator defaults "
                      f"(continuous {nml_defaults['continuous_methods']}, categorical "
                      f"{nml_defaults['categorical_methods']}, threshold {thr}: mean + 3 std of "
                      "the reference's chunks of the same size)")
        # Median fitted JS threshold per chunk size, numeric vs categorical.
        parts = []
        for n in sizes:
            num, cat = [], []
            for key, thr_map in nml_thresholds.items():
                if not key.endswith(f"/{n}"):
                    continue
                s = key.split("/")[0]
                kinds = {f: base_kind(b) for f, b, _ in set_features(s)}
                for fm, val in thr_map.items():
                    if val is not None:
                        (num if kinds[fm.split("/")[0]] == "numeric" else cat).append(val)
            if num or cat:
                parts.append(f"chunk {n:,}: numeric {np.median(num):.3f}, categorical "
                             f"{np.median(cat):.3f}")
        header.append("  NannyML's fitted JS thresholds (median over features): " + "; ".join(parts))
    if "evidently" in tools:
        header.append(f"Evidently {versions['evidently']}: DataDriftPreset() defaults, one Report "
                      "per chunk; methods chosen: " + ", ".join(
                          f"{b}={m}" for b, m in sorted(evid_methods.items())))
    header.append("Effects: " + "; ".join(f"{k}: {v}" for k, v in EFFECT_DEFINITIONS.items()))
    header.append(f"Reference: {args.reference_rows:,} rows per set. Chunks per current file: "
                  + ", ".join(f"{n:,} rows x {chunk_count('mean_shift', n)} (stream "
                              f"{chunk_count(STREAM, n)})" for n in sizes)
                  + "; the first half of each effect set is clean.")
    full = "\n".join(header) + "\n" + text
    if warnings:
        full += "\n\nwarnings:\n" + "\n".join(f"  {w}" for w in warnings[:40])
        if len(warnings) > 40:
            full += f"\n  ... {len(warnings) - 40} more (results.json)"
    elapsed = time.time() - started
    full += ("\n\ntime: " + ", ".join(f"{t} {timings[t]['wall_s']:.1f} s wall / "
                                    f"{timings[t]['cpu_s']:.1f} s CPU" for t in tools)
             + f" (summed over runs; driftwatch runs {args.jobs} at a time beside the Python "
               f"tools), data {gen_s:.1f} s, total {elapsed:.1f} s wall")
    print("\n" + full)

    doc = {
        "generated_by": "bench/detection " + " ".join(argv),
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "seconds": round(elapsed, 1),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "python": platform.python_version()},
        "driftwatch": {"binary": str(dw), "profile": profile, "version": dw_version,
                       "settings": dw_settings,
                       "command": driftwatch_command(dw, Path("REFERENCE"), Path("CURRENT"), 0,
                                                     Path("OUT"))},
        "versions": versions,
        "nannyml_defaults": nml_defaults,
        "nannyml_fitted_thresholds": nml_thresholds,
        "evidently_methods": evid_methods,
        "settings": {"sizes": sizes, "reference_rows": args.reference_rows, "seed": args.seed,
                     "min_samples": MIN_SAMPLES, "set_chunks": {n: chunk_count("mean_shift", n)
                                                                for n in sizes},
                     "stream_chunks": {n: chunk_count(STREAM, n) for n in sizes}},
        "data_dir": str(data_dir),
        "sets": {s: metas[s]["features"] for s in metas},
        "effects": EFFECT_DEFINITIONS,
        "hits": [dict(zip(("effect", "size", "chunk_size", "tool"), k), **v, hit_rate=_rate(v),
                      ci95=wilson(v["flagged"], v["cells"]))
                 for k, v in sorted(sc["hits"].items(), key=str)],
        "clean_cells": [dict(zip(("source", "chunk_size", "tool"), k), **v,
                             false_alarm_rate=_rate(v), ci95=wilson(v["flagged"], v["cells"]))
                        for k, v in sorted(sc["clean_cells"].items(), key=str)],
        "clean_chunks": [dict(zip(("source", "chunk_size", "tool"), k), **v,
                              false_alarm_rate=_rate(v, "chunks"),
                              ci95=wilson(v["flagged"], v["chunks"]))
                         for k, v in sorted(sc["clean_chunks"].items(), key=str)],
        "missing_surge": None if not sc_surge else {
            "hits": [dict(zip(("effect", "size", "chunk_size", "tool"), k), **v,
                          rate=_rate(v), ci95=wilson(v["flagged"], v["cells"]))
                     for k, v in sorted(sc_surge["hits"].items(), key=str)],
            "clean_cells": [dict(zip(("source", "chunk_size", "tool"), k), **v, rate=_rate(v))
                            for k, v in sorted(sc_surge["clean_cells"].items(), key=str)],
            "clean_chunks": [dict(zip(("source", "chunk_size", "tool"), k), **v,
                                  rate=_rate(v, "chunks"))
                             for k, v in sorted(sc_surge["clean_chunks"].items(), key=str)]},
        "clean_by_base": [dict(zip(("base", "chunk_size", "tool"), k), **v,
                               false_alarm_rate=_rate(v))
                          for k, v in sorted(sc["clean_by_base"].items(), key=str)],
        "timings": timings,
        "runs": per_run,
        "warnings": warnings,
        "table": full,
    }
    res = args.out / "results.json"
    res.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"results: {res}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
