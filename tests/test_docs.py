"""Every Python snippet of README.md and docs/*.md runs, as written, at a tiny size: the data sets they load are cut
to a few hundred images, and they run in a folder holding what the commands they follow write (the quickstart's
two runs). The links between the pages lead to files that exist."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

import art_he.data
from art_he.cli import main
from tests.conftest import kept_registries

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SNIPPET = re.compile(r"^( *)```python\n(.*?)^\1```", re.MULTILINE | re.DOTALL)
SNIPPETS = [(page, i, textwrap.dedent(match[2])) for page in PAGES
            for i, match in enumerate(SNIPPET.finditer(page.read_text()))]
#: images a snippet gets of each split
TINY = {True: 256, False: 64}


def tiny_load_dataset(name, train=True, *args, **kwargs):
    x, y = LOAD_DATASET(name, train, *args, **kwargs)
    return x[: TINY[train]], y[: TINY[train]]


LOAD_DATASET = art_he.data.load_dataset


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A folder with ``runs/quickstart/plain`` and ``runs/quickstart/he``, as ``art-he quickstart`` leaves it."""
    folder = tmp_path_factory.mktemp("world")
    assert main(["quickstart", "--subset", "128", "--n", "16", "--out", str(folder / "runs" / "quickstart"),
                 "--quiet"]) == 0
    return folder


def test_the_pages_have_snippets():
    assert {page.name for page, _, _ in SNIPPETS} >= {"README.md", "python.md"}


@pytest.mark.parametrize("page, index, code", SNIPPETS, ids=[f"{p.name}-{i}" for p, i, _ in SNIPPETS])
def test_snippet_runs(page, index, code, world, monkeypatch, capsys):
    monkeypatch.chdir(world)
    monkeypatch.setattr(art_he.data, "load_dataset", tiny_load_dataset)
    with kept_registries():  # docs/extending.md's snippets register extensions
        exec(compile(code, f"{page.name} snippet {index}", "exec"), {"__name__": "__snippet__"})


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_links_lead_to_files(page):
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
        if not target.startswith(("http://", "https://")):
            assert (page.parent / target).exists(), f"{page.name} links to {target}"
