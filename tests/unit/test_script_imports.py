"""The demo and benchmark scripts import project names inside functions (to keep start-up cheap), so a
renamed or removed helper only shows when that code path runs. Check every such import up front."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PROJECT_PACKAGES = ("sagemaker_ops", "sagemaker_emulator", "data_quality")
SCRIPTS = sorted([*(REPO / "scripts").glob("*.py"), *(REPO / "bench").glob("*.py")])


def project_imports(path: Path) -> list[tuple[str, str, int]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in PROJECT_PACKAGES:
            found += [(node.module, alias.name, node.lineno) for alias in node.names]
    return found


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda path: f"{path.parent.name}/{path.name}")
def test_every_project_name_a_script_imports_exists(script):
    missing = [f"line {line}: from {module} import {name}" for module, name, line in project_imports(script)
               if not hasattr(importlib.import_module(module), name)
               and importlib.util.find_spec(f"{module}.{name}") is None]
    assert missing == [], f"{script.name} imports names that do not exist: {missing}"
