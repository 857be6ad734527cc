"""Train the classifier stage of the iris inference pipeline on standardised features.

    python build.py --output OUT [--data include/data/iris.csv]

writes OUT/model.joblib, OUT/model_info.json and OUT/code/. The second container of the Serial
multi-container endpoint (``include/pipelines/iris-serial.yaml``): it expects the answer of the
feature stage (``../iris_features``), i.e. measurements standardised with the scaler fitted on the
same data, and serves them with the champion's handler (``../iris/code``: CSV in, species names
out). Sent raw measurements it answers wrongly (the sample's setosa comes out versicolor), which
is why it sits behind the feature stage.
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
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = HERE.parents[1] / "data" / "iris.csv"
FEATURES = ("sepal_length", "sepal_width", "petal_length", "petal_width")
HANDLER_CODE = HERE.parent / "iris" / "code"


def load_dataset(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    features = np.array([[float(row[name]) for name in FEATURES] for row in rows], dtype=np.float64)
    return features, np.array([row["species"] for row in rows])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", required=True, type=Path, help="folder to write the model into")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="training CSV")
    args = parser.parse_args(argv)
    features, labels = load_dataset(args.data)
    # The same fit as ../iris_features/build.py: StandardScaler on the same rows is deterministic.
    scaled = StandardScaler().fit_transform(features)
    model = LogisticRegression(C=1.0, max_iter=1000, solver="lbfgs", random_state=0).fit(scaled, labels)
    accuracy = float(model.score(scaled, labels))
    args.output.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, args.output / "model.joblib", compress=3)
    info = {"features": [f"{name}_standardised" for name in FEATURES], "classes": [str(c) for c in model.classes_],
            "training_accuracy": round(accuracy, 4), "sklearn_version": sklearn_version,
            "estimator": "LogisticRegression(C=1.0) on StandardScaler output"}
    (args.output / "model_info.json").write_text(json.dumps(info, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    code_dir = args.output / "code"
    if code_dir.exists():
        shutil.rmtree(code_dir)
    shutil.copytree(HANDLER_CODE, code_dir, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    print(f"trained on {len(labels)} standardised rows, training accuracy {accuracy:.3f}; wrote {args.output}")


if __name__ == "__main__":
    main()
