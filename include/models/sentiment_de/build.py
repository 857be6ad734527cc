"""Train the German sentiment classifier and lay out a SageMaker model folder.

    python build.py --output OUT [--data include/data/sentiment_de.csv]

The English model's build (``../sentiment_en/build.py``) with ``--language de``: the same character
n-gram pipeline, trained on ``include/data/sentiment_de.csv``, served by the same ``code/inference.py``
(copied into the model folder, so the archive stays self-contained).
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

ENGLISH_BUILD = Path(__file__).resolve().parent.parent / "sentiment_en" / "build.py"

if __name__ == "__main__":
    runpy.run_path(str(ENGLISH_BUILD))["main"](sys.argv[1:], language="de")
