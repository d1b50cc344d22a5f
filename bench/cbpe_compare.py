"""driftwatch's label-free quality estimate (CBPE) against NannyML 0.13.1's CBPE on car_loan,
chunks of 5,000: the per-chunk estimates of ROC AUC, accuracy and F1 and each tool's mean absolute
error against the realized values (labels from data/car_loan/analysis_target.csv).

    bench/.venv/bin/python bench/cbpe_compare.py [--driftwatch PATH]

(bench/compare creates bench/.venv.) Prints a markdown table for BENCHMARKS.md.
"""
import argparse
import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn import metrics

os.environ.setdefault("NML_DISABLE_USAGE_LOGGING", "1")
import nannyml as nml  # noqa: E402

root = Path(__file__).resolve().parents[1]
parser = argparse.ArgumentParser()
default_bin = Path.home() / ".cache/driftwatch/target/release/driftwatch"
if not default_bin.exists():
    default_bin = Path.home() / ".cache/driftwatch/target/debug/driftwatch"
parser.add_argument("--driftwatch", default=os.environ.get("DRIFTWATCH_BIN", str(default_bin)))
args = parser.parse_args()

data = root / "data/car_loan"
reference = pd.read_csv(data / "reference.csv")
analysis = pd.read_csv(data / "analysis.csv")
target = pd.read_csv(data / "analysis_target.csv")
joined = analysis.merge(target, on="id", how="left")
metric_names = ["roc_auc", "accuracy", "f1"]

realized = []
for start in range(0, len(joined), 5000):
    c = joined.iloc[start:start + 5000]
    y, p, s = c["repaid"].astype(int), c["y_pred"].astype(int), c["y_pred_proba"]
    realized.append({"roc_auc": metrics.roc_auc_score(y, s), "accuracy": metrics.accuracy_score(y, p),
                     "f1": metrics.f1_score(y, p)})

est = nml.CBPE(y_pred_proba="y_pred_proba", y_pred="y_pred", y_true="repaid",
               problem_type="classification_binary", metrics=metric_names, chunk_size=5000)
est.fit(reference)
res = est.estimate(analysis).filter(period="analysis").to_df()
nannyml = [{m: float(res[(m, "value")].iloc[i]) for m in metric_names} for i in range(len(res))]

out = subprocess.run([args.driftwatch, "analyze", "--quiet", "--format", "json",
                      "--reference", str(data / "reference.csv"), "--current", str(data / "analysis.csv"),
                      "--chunk-size", "5000", "--problem-type", "binary", "--target-column", "repaid"],
                     check=True, capture_output=True, text=True).stdout
driftwatch = [c["estimated_quality"] for c in json.loads(out)["chunks"]]

print("| chunk | " + " | ".join(f"{m} realized | driftwatch | NannyML" for m in metric_names) + " |")
print("|---|" + "---:|" * (3 * len(metric_names)))
for i, r in enumerate(realized):
    cells = []
    for m in metric_names:
        cells += [f"{r[m]:.4f}", f"{driftwatch[i][m]:.4f}", f"{nannyml[i][m]:.4f}"]
    print(f"| {i} | " + " | ".join(cells) + " |")
print()
print("| metric | driftwatch MAE | NannyML MAE | driftwatch max error | NannyML max error |")
print("|---|---:|---:|---:|---:|")
for m in metric_names:
    d = np.array([driftwatch[i][m] - realized[i][m] for i in range(len(realized))])
    n = np.array([nannyml[i][m] - realized[i][m] for i in range(len(realized))])
    print(f"| {m} | {np.abs(d).mean():.4f} | {np.abs(n).mean():.4f} | {np.abs(d).max():.4f} | {np.abs(n).max():.4f} |")
print(f"\ncommand: bench/.venv/bin/python bench/cbpe_compare.py (driftwatch {args.driftwatch}, NannyML {nml.__version__})")
