"""The upstream versions art_he's patches were written for, and the guard each patch goes through first.

art_he changes internals of three packages: robustbench 1.1.1 (loader tables), imagecorruptions 1.1.2 (module
globals) and pyautoattack 0.2.x (the adapter relies on its signatures). Before a patch is applied:

* what it replaces must be there, with the signature it relies on; otherwise :class:`UpstreamChangedError` (a
  :class:`~art_he.errors.UserError`) names the package, both versions and what changed, and nothing is patched:
  a patch applied to something else would fail later and obscurely.
* if the installed version is not the one the patch was written for, but everything it replaces is there, the
  patch is applied and one :class:`UntestedUpstreamWarning` per package and process names both versions and the
  pinned requirement to install if results look wrong.

Versions are read with ``importlib.metadata.version``; "0.2" matches any 0.2.x release, "1.1.1" also matches
post-releases such as 1.1.1.post1.
"""

from __future__ import annotations

import importlib.metadata
import inspect
import warnings

from art_he.errors import UserError

WRITTEN_FOR = {"robustbench": "1.1.1", "imagecorruptions": "1.1.2", "pyautoattack": "0.2"}
REQUIREMENT = {"robustbench": "robustbench==1.1.1", "imagecorruptions": "imagecorruptions==1.1.2",
               "pyautoattack": "pyautoattack>=0.2,<0.3"}
_WARNED: set[str] = set()


class UpstreamChangedError(UserError):
    """An upstream package no longer has what an art_he patch replaces."""


class UntestedUpstreamWarning(UserWarning):
    """An art_he patch is applied to an upstream version it was not written for."""


def installed_version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def matches(installed: str | None, written_for: str) -> bool:
    """True if ``installed`` is ``written_for`` or a release under it ("0.2" covers "0.2.0", "0.2.3")."""
    if installed is None:
        return False
    want = written_for.split(".")
    return installed.split(".")[: len(want)] == want


def binds(func, *args, **kwargs) -> bool:
    """True if ``func`` can be called with these arguments (by its signature; nothing is called)."""
    try:
        inspect.signature(func).bind(*args, **kwargs)
    except (TypeError, ValueError):
        return False
    return True


def guard(dist: str, problems: list[str]) -> None:
    """Refuse (``problems`` non-empty) or warn once (another version) before patching ``dist``."""
    installed = installed_version(dist)
    shown = installed or "(version unknown)"
    if problems:
        raise UpstreamChangedError(
            f"art_he cannot patch {dist} {shown} (its fixes were written for {dist} {WRITTEN_FOR[dist]}); changed "
            f"or missing: {'; '.join(problems)}. Install the version art_he supports: pip install '{REQUIREMENT[dist]}'"
        )
    if not matches(installed, WRITTEN_FOR[dist]) and dist not in _WARNED:
        _WARNED.add(dist)
        warnings.warn(
            f"art_he's fixes to {dist} were written for {dist} {WRITTEN_FOR[dist]} and {dist} {shown} is installed; "
            f"what they replace is still there, so they are applied. If results look wrong, "
            f"pip install '{REQUIREMENT[dist]}'",
            UntestedUpstreamWarning,
            stacklevel=3,
        )
