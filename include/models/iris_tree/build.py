"""Train the challenger iris classifier (a depth-3 decision tree) and lay out a SageMaker model folder.

    python build.py --output OUT [--data include/data/iris.csv]

writes OUT/model.joblib, OUT/model_info.json and OUT/code/. It serves exactly like the champion
(``../iris``): the same request and answer formats, so the two can stand behind one endpoint as
the variants of an A/B test. Deterministic: the same data and library versions give the same bytes.
"""

from __future__ import annotations

import runpy
from pathlib import Path

from sklearn import __version__ as sklearn_version
from sklearn.tree import DecisionTreeClassifier

# The champion's build: its dataset reader, model-folder writer and handler (which reads model.joblib
# and calls predict(): it serves this model unchanged).
IRIS = runpy.run_path(str(Path(__file__).resolve().parent.parent / "iris" / "build.py"))


def main(argv: list[str] | None = None) -> None:
    args = IRIS["parse_args"](__doc__, argv)
    features, labels = IRIS["load_dataset"](args.data)
    model = DecisionTreeClassifier(max_depth=3, random_state=0).fit(features, labels)
    accuracy = float(model.score(features, labels))
    info = {"features": list(IRIS["FEATURES"]), "classes": [str(c) for c in model.classes_],
            "training_accuracy": round(accuracy, 4), "sklearn_version": sklearn_version,
            "estimator": "DecisionTreeClassifier(max_depth=3, random_state=0)"}
    IRIS["write_model_folder"](model, info, args.output)
    print(f"trained on {len(labels)} rows, training accuracy {accuracy:.3f}; wrote {args.output}")


if __name__ == "__main__":
    main()
