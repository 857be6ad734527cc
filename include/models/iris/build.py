"""Train the iris classifier and lay out a SageMaker model folder.

    python build.py --output OUT [--data include/data/iris.csv]

writes OUT/model.joblib, OUT/model_info.json and OUT/code/ (inference.py). The result is
deterministic: the same data and library versions give the same bytes, so the packaged
model.tar.gz (and its sha256, which names it in S3) only changes when the model does.
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

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = HERE.parents[1] / "data" / "iris.csv"
FEATURES = ("sepal_length", "sepal_width", "petal_length", "petal_width")
LABEL = "species"


def load_dataset(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Read the CSV (header: the four features, then species) into features and labels."""
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    missing = set(FEATURES + (LABEL,)) - set(rows[0] if rows else ())
    if missing:
        raise SystemExit(f"{path}: missing column(s) {sorted(missing)}")
    features = np.array([[float(row[name]) for name in FEATURES] for row in rows], dtype=np.float64)
    labels = np.array([row[LABEL] for row in rows])
    return features, labels


def train(features: np.ndarray, labels: np.ndarray) -> LogisticRegression:
    # lbfgs on a fixed dataset with fixed settings is deterministic; random_state pins the rest.
    model = LogisticRegression(C=1.0, max_iter=1000, solver="lbfgs", random_state=0)
    return model.fit(features, labels)


def write_model_folder(artifact, info: dict, output: Path, *, artifact_name: str = "model.joblib",
                       code: Path = HERE / "code") -> None:
    """OUT/<artifact_name>, OUT/model_info.json and OUT/code/ (this handler unless told otherwise).

    The other iris models (../iris_tree, ../iris_scaled, ../iris_features) build through this too."""
    output.mkdir(parents=True, exist_ok=True)
    joblib.dump(artifact, output / artifact_name, compress=3)
    (output / "model_info.json").write_text(json.dumps(info, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    code_dir = output / "code"
    if code_dir.exists():
        shutil.rmtree(code_dir)
    shutil.copytree(code, code_dir, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


def parse_args(description: str, argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", required=True, type=Path, help="folder to write the model into")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="training CSV")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(__doc__, argv)
    features, labels = load_dataset(args.data)
    model = train(features, labels)
    accuracy = float(model.score(features, labels))
    info = {
        "features": list(FEATURES),
        "classes": [str(label) for label in model.classes_],
        "training_accuracy": round(accuracy, 4),
        "sklearn_version": sklearn_version,
        "estimator": "LogisticRegression(C=1.0, max_iter=1000, solver='lbfgs')",
    }
    write_model_folder(model, info, args.output)
    print(f"trained on {len(labels)} rows, training accuracy {accuracy:.3f}; wrote {args.output}")


if __name__ == "__main__":
    main()
