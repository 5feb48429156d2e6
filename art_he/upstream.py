"""The upstream versions art_he's fixes are written for, and the guard each fix goes through first.

art_he works around three packages: pyautoattack 0.2.x (the GitHub AutoAttack API on top of it), robustbench 1.1.1
(its import, its loader tables) and imagecorruptions 1.1.2 (two module globals, replaced in our own copy). The
versions live in one file, ``upstream.txt`` beside this module (``pyproject.toml`` repeats them; a test checks
that the two agree). Before a fix is applied:

* what it replaces must be there, with the signature it relies on; otherwise :class:`UpstreamChangedError` (a
  :class:`~art_he.errors.UserError`) names the package, both versions and what changed, and nothing is changed:
  a fix applied to something else would fail later and obscurely.
* if the installed version is not one the fix was written for, but everything it replaces is there, the fix is
  applied and one :class:`UntestedUpstreamWarning` per package and process names both versions and the
  requirement to install if results look wrong.

Versions are read with ``importlib.metadata.version`` (nothing is imported); ``==1.1.1`` also matches
post-releases such as 1.1.1.post1.

:func:`resource_filename` is the one function of setuptools' ``pkg_resources`` that robustbench and imagecorruptions
call, for where setuptools (>= 82) no longer has ``pkg_resources``.
"""

from __future__ import annotations

import functools
import importlib.metadata
import importlib.util
import inspect
import operator
import re
import warnings
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from art_he.errors import UserError

PINS_FILE = Path(__file__).with_name("upstream.txt")
_REQUIREMENT = re.compile(r"([A-Za-z0-9_.-]+)\s*(.*)")
_CLAUSE = re.compile(r"(==|!=|>=|<=|>|<)\s*([0-9][0-9.]*)")
_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "!=": operator.ne, ">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt}
_WARNED: set[str] = set()


class UpstreamChangedError(UserError):
    """An upstream package no longer has what an art_he fix replaces."""


class UntestedUpstreamWarning(UserWarning):
    """An art_he fix is applied to an upstream version it was not written for."""


@functools.cache
def requirements() -> dict[str, str]:
    """``{distribution: requirement}`` of :data:`PINS_FILE`, e.g. ``{"robustbench": "robustbench==1.1.1"}``."""
    lines = (line.split("#")[0].strip() for line in PINS_FILE.read_text().splitlines())
    return {match[1].lower(): line for line in lines if line and (match := _REQUIREMENT.fullmatch(line))}


def installed_version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _release(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version.split("+")[0].split("post")[0].split("rc")[0]))


def satisfies(installed: str | None, requirement: str) -> bool:
    """True if ``installed`` meets every clause of ``requirement`` (release numbers compared; ``==1.1.1`` also
    matches 1.1.1.post1)."""
    match = _REQUIREMENT.fullmatch(requirement)
    if installed is None or match is None:
        return False
    have = _release(installed)
    for op, version in _CLAUSE.findall(match[2]):
        want = _release(version)
        ok = have[: len(want)] == want if op == "==" else _COMPARE[op](have, want)
        if not ok:
            return False
    return True


def binds(func: object, *args: object, **kwargs: object) -> bool:
    """True if ``func`` can be called with these arguments (by its signature; nothing is called)."""
    try:
        inspect.signature(func).bind(*args, **kwargs)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
    return True


def guard(dist: str, problems: list[str]) -> None:
    """Refuse (``problems`` non-empty) or warn once (another version) before a fix to ``dist``."""
    requirement = requirements()[dist]
    installed = installed_version(dist)
    shown = installed or "(version unknown)"
    if problems:
        raise UpstreamChangedError(
            f"art_he cannot fix {dist} {shown} (its fixes were written for {requirement}); changed or missing: "
            f"{'; '.join(problems)}. Install the version art_he supports: pip install '{requirement}'"
        )
    if not satisfies(installed, requirement) and dist not in _WARNED:
        _WARNED.add(dist)
        warnings.warn(
            f"art_he's fixes to {dist} were written for {requirement} and {dist} {shown} is installed; what they "
            f"replace is still there, so they are applied. If results look wrong, pip install '{requirement}'",
            UntestedUpstreamWarning,
            stacklevel=3,
        )


def package_folder(name: str) -> Path:
    """The folder of the installed top-level package ``name`` (found without importing it);
    :class:`ModuleNotFoundError` where it is not installed."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(f"No module named {name!r}", name=name)
    return Path(next(iter(spec.submodule_search_locations)))


def resource_filename(package_or_requirement: str | ModuleType, resource_name: str) -> str:
    """``pkg_resources.resource_filename``: the path of ``resource_name`` beside a module or inside a package (a
    module name or the module itself), found without importing it."""
    name = package_or_requirement if isinstance(package_or_requirement, str) else package_or_requirement.__name__
    parts = name.split(".")
    folder = package_folder(parts[0]).joinpath(*parts[1:])
    return str((folder if folder.is_dir() else folder.parent) / resource_name)
