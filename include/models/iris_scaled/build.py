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

import runpy
from pathlib import Path

from sklearn import __version__ as sklearn_version
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

# The champion's build: its dataset reader, model-folder writer and handler.
IRIS = runpy.run_path(str(Path(__file__).resolve().parent.parent / "iris" / "build.py"))


def main(argv: list[str] | None = None) -> None:
    args = IRIS["parse_args"](__doc__, argv)
    features, labels = IRIS["load_dataset"](args.data)
    # The same fit as ../iris_features/build.py: StandardScaler on the same rows is deterministic.
    scaled = StandardScaler().fit_transform(features)
    model = LogisticRegression(C=1.0, max_iter=1000, solver="lbfgs", random_state=0).fit(scaled, labels)
    accuracy = float(model.score(scaled, labels))
    info = {"features": [f"{name}_standardised" for name in IRIS["FEATURES"]],
            "classes": [str(c) for c in model.classes_],
            "training_accuracy": round(accuracy, 4), "sklearn_version": sklearn_version,
            "estimator": "LogisticRegression(C=1.0) on StandardScaler output"}
    IRIS["write_model_folder"](model, info, args.output)
    print(f"trained on {len(labels)} standardised rows, training accuracy {accuracy:.3f}; wrote {args.output}")


if __name__ == "__main__":
    main()
