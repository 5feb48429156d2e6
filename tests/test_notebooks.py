"""The notebooks run: each executes top to bottom in a fresh kernel (nbclient) within its time limit, with no
error, warning or local path in its outputs; the committed copies carry such outputs, and ``notebooks/README.md``
lists every notebook with its picture."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import nbformat
import pytest

FOLDER = Path(__file__).resolve().parent.parent / "notebooks"
_spec = importlib.util.spec_from_file_location("notebooks_run", FOLDER / "run.py")
run = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(run)
NOTEBOOKS = run.notebooks()


def test_the_six_notebooks_are_there():
    assert [p.name[:2] for p in NOTEBOOKS] == ["01", "02", "03", "04", "05", "06"], [p.name for p in NOTEBOOKS]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_committed_outputs_are_complete_and_clean(path):
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(c.get("execution_count") for c in code), f"{path.name} is not saved executed"
    assert [c.execution_count for c in code] == list(range(1, len(code) + 1)), "executed out of order"
    assert not run.problems(nb)


@pytest.fixture(scope="module")
def executions(request):
    """The selected notebooks, all started at the first use, one per CPU core at a time (the slowest part of the
    suite); ``{path: future}``."""
    selected = [item.callspec.params["path"] for item in request.session.items
                if getattr(item, "originalname", None) == "test_notebook_executes"]
    return run.execute_all(selected)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_executes(path, executions):
    # raises on an error, a warning or a local path in the outputs, or past the limit
    nb, elapsed = executions[path].result()
    assert elapsed <= run.TIME_LIMIT


@pytest.mark.parametrize("jobs", [0, -1, 1.5, True])
def test_execute_all_refuses_a_bad_number_of_jobs(jobs):
    with pytest.raises(ValueError, match="jobs must be"):
        run.execute_all(NOTEBOOKS[:1], jobs=jobs)


def test_readme_lists_every_notebook_with_its_picture():
    text = (FOLDER / "README.md").read_text()
    for path in NOTEBOOKS:
        assert f"]({path.name})" in text, path.name
        picture = re.search(rf"!\[[^\]]*\]\((images/{path.stem}\.png)\)", text)
        assert picture and (FOLDER / picture[1]).is_file(), path.stem
