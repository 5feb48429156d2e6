"""One owner per version pin: ``art_he/upstream.txt`` (what :mod:`art_he.upstream`'s guards read) and
``pyproject.toml`` (what pip installs) name the same requirements, and the file ships with the package."""

from __future__ import annotations

from pathlib import Path

import pytest

from art_he import upstream

ROOT = Path(__file__).resolve().parents[1]


def pyproject() -> dict:
    tomllib = pytest.importorskip("tomllib")
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_pyproject_pins_what_upstream_txt_pins():
    project = pyproject()["project"]
    pins = upstream.requirements()
    assert set(pins) == {"pyautoattack", "robustbench", "imagecorruptions", "setuptools"}
    extra = project["optional-dependencies"]["robustbench"]
    core = [req for req in project["dependencies"] if req.startswith("pyautoattack")]
    assert sorted(extra + core) == sorted(pins.values())
    assert "art-he[robustbench]" in project["optional-dependencies"]["test"]  # tested with the same pins


def test_upstream_txt_ships_with_the_package():
    assert "upstream.txt" in pyproject()["tool"]["setuptools"]["package-data"]["art_he"]
    assert upstream.PINS_FILE == Path(upstream.__file__).with_name("upstream.txt") and upstream.PINS_FILE.is_file()


def test_every_guarded_package_has_a_pin_and_messages_name_it():
    with pytest.raises(upstream.UpstreamChangedError, match=r"^art_he cannot fix imagecorruptions .*: gone\. .*"
                                                            r"pip install 'imagecorruptions==1\.1\.2'$"):
        upstream.guard("imagecorruptions", ["gone"])
