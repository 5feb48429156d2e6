"""``import_robustbench``: import ``robustbench`` where it does not import by itself, and change nothing else.

``import robustbench`` needs two things upstream does not give:

1. a module named ``autoattack`` with the GitHub AutoAttack API (``robustbench.eval`` imports ``AutoAttack`` and
   ``autoattack.state.EvaluationState``). fra31's AutoAttack owns that name; where it is importable it is used.
   Otherwise art_he's adapter onto ``pyautoattack`` (:mod:`art_he.robustbench.autoattack_api`) stands in as
   ``autoattack`` while robustbench is imported (:mod:`art_he.robustbench.autoattack_alias`).
2. ``pkg_resources``, which setuptools >= 82 no longer has (the ``robustbench`` extra pins ``setuptools<82``):
   where ``import pkg_resources`` fails, a stand-in with :func:`art_he.upstream.resource_filename` (all that
   robustbench calls) stands in while robustbench is imported.

Both are scoped to the import: robustbench binds what it takes at import time, and afterwards ``sys.modules``
holds neither stand-in, so that the user's ``import autoattack`` or ``import pkg_resources`` behaves as it would
without art_he. Nothing of robustbench itself is changed (its loader tables are fixed only inside
:func:`art_he.robustbench.loaders.fixed_loaders`).

Usage (``import robustbench`` alone fails where only pyautoattack is installed)::

    from art_he.robustbench import import_robustbench
    robustbench = import_robustbench()
    clean, robust = robustbench.eval.benchmark(model, dataset="cifar10", threat_model="Linf", eps=8 / 255, ...)
"""

from __future__ import annotations

import sys
import types
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import cast

from art_he.robustbench.autoattack_alias import autoattack_alias
from art_he.upstream import resource_filename

#: deprecation warnings that robustbench 1.1.1's import raises from its dependencies, not from the user's code;
#: silenced for that import only (pkg_resources in setuptools < 82, timm's moved modules, torch.jit.interface)
IMPORT_NOISE = (r"pkg_resources is deprecated", r"Importing from timm\.", r"`torch\.jit\.interface` is deprecated")
_ABSENT = object()


@contextmanager
def stand_in_pkg_resources() -> Iterator[bool]:
    """Inside: ``import pkg_resources`` works (a stand-in where setuptools has none; yields whether it is one);
    after: ``sys.modules`` as before."""
    try:
        with warnings.catch_warnings():  # setuptools 81 warns that pkg_resources is deprecated
            warnings.simplefilter("ignore", UserWarning)
            import pkg_resources  # noqa: F401
    except ImportError:
        pass
    else:
        yield False
        return
    shim = types.ModuleType("pkg_resources")
    shim.__doc__ = "art_he stand-in for setuptools' pkg_resources (resource_filename only)."
    shim.resource_filename = resource_filename  # type: ignore[attr-defined]
    before = sys.modules.get("pkg_resources", _ABSENT)  # None where an import is blocked
    sys.modules["pkg_resources"] = shim
    try:
        yield True
    finally:
        if before is _ABSENT:
            sys.modules.pop("pkg_resources", None)
        else:  # a module, or None where an import was blocked (typeshed types sys.modules as modules only)
            sys.modules["pkg_resources"] = cast("types.ModuleType", before)


def import_robustbench() -> types.ModuleType:
    """``robustbench`` with ``robustbench.data``, ``.eval``, ``.utils`` and ``.model_zoo`` imported (see the module
    docstring); an installed robustbench that is imported already is returned as it is."""
    if "robustbench.eval" in sys.modules:
        return sys.modules["robustbench"]
    with stand_in_pkg_resources(), autoattack_alias(), warnings.catch_warnings():
        for message in IMPORT_NOISE:
            warnings.filterwarnings("ignore", message=message)
        import robustbench
        import robustbench.data
        import robustbench.eval
        import robustbench.model_zoo
        import robustbench.utils  # noqa: F401
    module: types.ModuleType = robustbench
    return module
