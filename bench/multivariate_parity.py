#!/usr/bin/env python3
"""Oracle of driftwatch's multivariate drift (PCA reconstruction error, issue 21 item 4).

Runs NannyML 0.13.1's ``DataReconstructionDriftCalculator`` (default settings: most-frequent and
mean imputers, ``CountEncoder(normalize=True)``, ``StandardScaler``, ``PCA(n_components=0.65)``,
``StandardDeviationThreshold`` of 3 standard deviations) on two data sets and writes what it finds
per chunk, reference and analysis, to ``tests/fixtures/multivariate_nannyml.json``, which
``analyzer/tests/multivariate.rs`` compares driftwatch with.

1. ``car_loan``: ``data/car_loan/reference.csv`` against ``analysis.csv``, chunks of 5,000 rows,
   the seven features of the foundation issue.
2. ``correlated``: a generated set (``tests/fixtures/multivariate_corr_{reference,analysis}.csv``,
   written here, deterministic seed): ``a`` and ``b`` standard normal with correlation 0.9 in the
   reference and the first half of the analysis file, and independent in its second half (so the
   marginals of both stay N(0, 1)); ``c`` Gamma(2, 1) and ``d`` a category of three levels, both
   independent of everything and unchanged. Chunks of 1,000 rows.

Run with the bench venv (it has NannyML 0.13.1)::

    bench/.venv/bin/python bench/multivariate_parity.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures"
SEED = 20261208

CAR_LOAN_FEATURES = [
    "car_value",
    "salary_range",
    "debt_to_income_ratio",
    "loan_length",
    "repaid_loan_on_prev_car",
    "size_of_downpayment",
    "driver_tenure",
]
CORRELATED_FEATURES = ["a", "b", "c", "d"]


def generate_correlated(rows: int = 10_000) -> tuple[Path, Path]:
    """Writes the correlated set; values are rounded to 6 decimals so that both readers parse the
    same text."""
    rng = np.random.default_rng(SEED)

    def table(n: int, rho: np.ndarray) -> pd.DataFrame:
        a = rng.standard_normal(n)
        e = rng.standard_normal(n)
        b = rho * a + np.sqrt(1.0 - rho**2) * e
        c = rng.gamma(2.0, 1.0, n)
        d = rng.choice(["red", "green", "blue"], size=n, p=[0.5, 0.3, 0.2])
        return pd.DataFrame({"a": a.round(6), "b": b.round(6), "c": c.round(6), "d": d})

    reference = table(rows, np.full(rows, 0.9))
    rho = np.where(np.arange(rows) < rows // 2, 0.9, 0.0)
    analysis = table(rows, rho)
    ref_path = FIXTURES / "multivariate_corr_reference.csv"
    ana_path = FIXTURES / "multivariate_corr_analysis.csv"
    reference.to_csv(ref_path, index=False, float_format="%.6f")
    analysis.to_csv(ana_path, index=False, float_format="%.6f")
    return ref_path, ana_path


def run(reference: Path, analysis: Path, features: list[str], chunk_size: int) -> dict:
    import nannyml as nml

    ref = pd.read_csv(reference)
    ana = pd.read_csv(analysis)
    calc = nml.DataReconstructionDriftCalculator(column_names=features, chunk_size=chunk_size)
    calc.fit(ref)
    result = calc.calculate(ana).to_df()
    rows = []
    for _, r in result.iterrows():
        rows.append(
            {
                "period": r[("chunk", "period")],
                "chunk": int(r[("chunk", "chunk_index")]),
                "rows": int(r[("chunk", "end_index")] - r[("chunk", "start_index")] + 1),
                "reconstruction_error": float(r[("reconstruction_error", "value")]),
                "sampling_error": float(r[("reconstruction_error", "sampling_error")]),
                "alert": bool(r[("reconstruction_error", "alert")]),
            }
        )
    lower = calc.lower_threshold_value
    upper = calc.upper_threshold_value
    return {
        "reference": str(reference.relative_to(REPO)),
        "analysis": str(analysis.relative_to(REPO)),
        "features": features,
        "chunk_size": chunk_size,
        "continuous": calc.continuous_column_names,
        "categorical": calc.categorical_column_names,
        "n_components": int(calc._pca.n_components_),
        "explained_variance_ratio": [float(v) for v in calc._pca.explained_variance_ratio_],
        "scaler_mean": [float(v) for v in calc._scaler.mean_],
        "scaler_scale": [float(v) for v in calc._scaler.scale_],
        "lower_threshold": None if lower is None else float(lower),
        "upper_threshold": None if upper is None else float(upper),
        "chunks": rows,
    }


def main() -> int:
    import nannyml
    import sklearn

    ref_path, ana_path = generate_correlated()
    out = {
        "generator": "bench/multivariate_parity.py",
        "nannyml": nannyml.__version__,
        "scikit_learn": sklearn.__version__,
        "numpy": np.__version__,
        "sets": {
            "car_loan": run(
                REPO / "data" / "car_loan" / "reference.csv",
                REPO / "data" / "car_loan" / "analysis.csv",
                CAR_LOAN_FEATURES,
                5000,
            ),
            "correlated": run(ref_path, ana_path, CORRELATED_FEATURES, 1000),
        },
    }
    path = FIXTURES / "multivariate_nannyml.json"
    path.write_text(json.dumps(out, indent=1) + "\n")
    for name, s in out["sets"].items():
        alerts = [c["chunk"] for c in s["chunks"] if c["period"] == "analysis" and c["alert"]]
        print(
            f"{name}: {s['n_components']} components, band ({s['lower_threshold']}, "
            f"{s['upper_threshold']}), alerts in analysis chunks {alerts}"
        )
    print(f"wrote {path.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
