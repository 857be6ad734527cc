"""Fit the feature stage of the iris inference pipeline (a StandardScaler) and lay out its model folder.

    python build.py --output OUT [--data include/data/iris.csv]

writes OUT/scaler.joblib, OUT/model_info.json and OUT/code/. It is the first container of a Serial
multi-container endpoint (``include/pipelines/iris-serial.yaml``): it turns raw measurements
(CSV rows, or JSON rows/records with named features) into standardised features as CSV, the
input of the second container (``../iris_scaled``, a classifier trained on the same scaling).
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
from pathlib import Path

import joblib
import numpy as np
from sklearn import __version__ as sklearn_version
from sklearn.preprocessing import StandardScaler

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = HERE.parents[1] / "data" / "iris.csv"
FEATURES = ("sepal_length", "sepal_width", "petal_length", "petal_width")


def load_features(path: Path) -> np.ndarray:
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return np.array([[float(row[name]) for name in FEATURES] for row in rows], dtype=np.float64)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", required=True, type=Path, help="folder to write the model into")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="training CSV")
    args = parser.parse_args(argv)
    scaler = StandardScaler().fit(load_features(args.data))
    args.output.mkdir(parents=True, exist_ok=True)
    joblib.dump(scaler, args.output / "scaler.joblib", compress=3)
    info = {"features": list(FEATURES), "mean": [round(float(v), 6) for v in scaler.mean_],
            "scale": [round(float(v), 6) for v in scaler.scale_], "sklearn_version": sklearn_version}
    (args.output / "model_info.json").write_text(json.dumps(info, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    code_dir = args.output / "code"
    if code_dir.exists():
        shutil.rmtree(code_dir)
    shutil.copytree(HERE / "code", code_dir, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    print(f"fitted the scaler on {int(scaler.n_samples_seen_)} rows; wrote {args.output}")


if __name__ == "__main__":
    main()
