"""The notebooks stay in step with the API: every code cell parses and every import in them resolves.

Executing them (minutes of training) is left to ``jupyter nbconvert --execute``; the committed copies carry the
outputs of such a run.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_code_cells_parse_and_imports_resolve(path):
    cells = [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]
    assert cells, f"{path.name} has no code cells"
    for cell in cells:
        tree = ast.parse("".join(cell["source"]))
        imports = [node for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))]
        exec(compile(ast.Module(body=imports, type_ignores=[]), path.name, "exec"), {})
