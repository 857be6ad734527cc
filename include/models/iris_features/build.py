"""Fit the feature stage of the iris inference pipeline (a StandardScaler) and lay out its model folder.

    python build.py --output OUT [--data include/data/iris.csv]

writes OUT/scaler.joblib, OUT/model_info.json and OUT/code/. It is the first container of a Serial
multi-container endpoint (``include/pipelines/iris-serial.yaml``): it turns raw measurements
(CSV rows, or JSON rows/records with named features) into standardised features as CSV, the
input of the second container (``../iris_scaled``, a classifier trained on the same scaling).
"""

from __future__ import annotations

import runpy
from pathlib import Path

from sklearn import __version__ as sklearn_version
from sklearn.preprocessing import StandardScaler

HERE = Path(__file__).resolve().parent
# The champion's build: its dataset reader and model-folder writer (with this folder's own handler).
IRIS = runpy.run_path(str(HERE.parent / "iris" / "build.py"))


def main(argv: list[str] | None = None) -> None:
    args = IRIS["parse_args"](__doc__, argv)
    features, _ = IRIS["load_dataset"](args.data)
    scaler = StandardScaler().fit(features)
    info = {"features": list(IRIS["FEATURES"]), "mean": [round(float(v), 6) for v in scaler.mean_],
            "scale": [round(float(v), 6) for v in scaler.scale_], "sklearn_version": sklearn_version}
    IRIS["write_model_folder"](scaler, info, args.output, artifact_name="scaler.joblib", code=HERE / "code")
    print(f"fitted the scaler on {int(scaler.n_samples_seen_)} rows; wrote {args.output}")


if __name__ == "__main__":
    main()
