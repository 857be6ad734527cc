"""Train a sentiment classifier (English by default) and lay out a SageMaker model folder.

    python build.py --output OUT [--language en|de] [--data include/data/sentiment_<language>.csv]

writes OUT/model.joblib (a scikit-learn Pipeline: TF-IDF over character n-grams, then logistic
regression), OUT/model_info.json and OUT/code/ (inference.py). Character n-grams within words carry
the sentiment of a few hundred short reviews better than whole words, most of which occur once, in
either language; ``../sentiment_de/build.py`` runs this script with ``--language de``. The
result is deterministic: the same data and library versions give the same bytes, so the packaged
model.tar.gz (and its sha256) only changes when the model does.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
from pathlib import Path

import joblib
from sklearn import __version__ as sklearn_version
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import Pipeline

HERE = Path(__file__).resolve().parent
DATA = HERE.parents[1] / "data"
LANGUAGES = ("en", "de")
LABELS = ("negative", "positive")


def load_dataset(path: Path) -> tuple[list[str], list[str]]:
    """Read the CSV (header: text,label; label positive or negative) into texts and labels."""
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    if not rows or {"text", "label"} - set(rows[0]):
        raise SystemExit(f"{path}: expected the columns text,label")
    unknown = {row["label"] for row in rows} - set(LABELS)
    if unknown:
        raise SystemExit(f"{path}: unknown label(s) {sorted(unknown)}; expected {LABELS}")
    return [row["text"] for row in rows], [row["label"] for row in rows]


def new_pipeline() -> Pipeline:
    # lbfgs on fixed data with fixed settings is deterministic; random_state pins the rest.
    return Pipeline([
        ("tfidf", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True)),
        ("classifier", LogisticRegression(C=10.0, max_iter=2000, solver="lbfgs", random_state=0)),
    ])


def held_out_accuracy(texts: list[str], labels: list[str]) -> float:
    """Mean accuracy over five fixed folds: what to expect on sentences the model has not seen."""
    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=0)
    return float(cross_val_score(new_pipeline(), texts, labels, cv=folds).mean())


def write_model_folder(model: Pipeline, info: dict, output: Path) -> None:
    output.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, output / "model.joblib", compress=3)
    (output / "model_info.json").write_text(json.dumps(info, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    code_dir = output / "code"
    if code_dir.exists():
        shutil.rmtree(code_dir)
    shutil.copytree(HERE / "code", code_dir, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


def main(argv: list[str] | None = None, language: str = "en") -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", required=True, type=Path, help="folder to write the model into")
    parser.add_argument("--language", choices=LANGUAGES, default=language, help="which shipped dataset to train on")
    parser.add_argument("--data", type=Path, help="training CSV (default: include/data/sentiment_<language>.csv)")
    args = parser.parse_args(argv)
    texts, labels = load_dataset(args.data or DATA / f"sentiment_{args.language}.csv")
    model = new_pipeline().fit(texts, labels)
    info = {
        "language": args.language,
        "classes": [str(label) for label in model.classes_],
        "training_rows": len(texts),
        "training_accuracy": round(float(model.score(texts, labels)), 4),
        "cross_validated_accuracy": round(held_out_accuracy(texts, labels), 4),
        "sklearn_version": sklearn_version,
        "estimator": "TfidfVectorizer(char_wb, 2-5) + LogisticRegression(C=10)",
    }
    write_model_folder(model, info, args.output)
    print(f"trained on {len(texts)} sentences, training accuracy {info['training_accuracy']:.3f}, "
          f"5-fold accuracy {info['cross_validated_accuracy']:.3f}; wrote {args.output}")


if __name__ == "__main__":
    main()
