"""Train the challenger iris classifier (a depth-3 decision tree) and lay out a SageMaker model folder.

    python build.py --output OUT [--data include/data/iris.csv]

writes OUT/model.joblib, OUT/model_info.json and OUT/code/. It serves exactly like the champion
(``../iris``): the same request and answer formats, so the two can stand behind one endpoint as
the variants of an A/B test. Deterministic: the same data and library versions give the same bytes.
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
from sklearn.tree import DecisionTreeClassifier

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = HERE.parents[1] / "data" / "iris.csv"
FEATURES = ("sepal_length", "sepal_width", "petal_length", "petal_width")
# The champion's handler reads model.joblib and calls predict(): it serves this model unchanged.
CHAMPION_CODE = HERE.parent / "iris" / "code"


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
    model = DecisionTreeClassifier(max_depth=3, random_state=0).fit(features, labels)
    accuracy = float(model.score(features, labels))
    args.output.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, args.output / "model.joblib", compress=3)
    info = {"features": list(FEATURES), "classes": [str(c) for c in model.classes_],
            "training_accuracy": round(accuracy, 4), "sklearn_version": sklearn_version,
            "estimator": "DecisionTreeClassifier(max_depth=3, random_state=0)"}
    (args.output / "model_info.json").write_text(json.dumps(info, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    code_dir = args.output / "code"
    if code_dir.exists():
        shutil.rmtree(code_dir)
    shutil.copytree(CHAMPION_CODE, code_dir, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    print(f"trained on {len(labels)} rows, training accuracy {accuracy:.3f}; wrote {args.output}")


if __name__ == "__main__":
    main()
