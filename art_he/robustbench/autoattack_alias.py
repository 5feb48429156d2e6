"""art_he's AutoAttack adapter as ``autoattack`` while RobustBench is imported, but only where no other
``autoattack`` can be imported.

fra31's AutoAttack (installed from GitHub) owns the top-level name ``autoattack``; where it is importable it is
used and nothing is registered. Otherwise :mod:`art_he.robustbench.autoattack_api` stands in ``sys.modules`` as
``autoattack`` and its ``state`` submodule as ``autoattack.state`` (what RobustBench imports) inside
:func:`autoattack_alias`, and is taken out again when it ends.

A stale copy of the adapter does not count as another ``autoattack``: earlier art_he shipped it as a top-level
package, and an environment can still expose that copy (an editable install made from an older checkout, a
second checkout on ``PYTHONPATH``). It is recognised by its ``ADAPTER = "art_he"`` marker, read from its source
without importing it, and shadowed. Neither does a bare folder named ``autoattack`` (a namespace package, e.g.
in the working directory): it has no ``AutoAttack``.
"""

from __future__ import annotations

import importlib.util
import sys
import types
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.machinery import ModuleSpec
from pathlib import Path
from typing import cast

NAME = "autoattack"
MARKER = 'ADAPTER = "art_he"'
_ABSENT = object()


def _is_adapter(module: types.ModuleType) -> bool:
    """True for art_he's adapter, this one or a stale copy."""
    return getattr(module, "ADAPTER", None) == "art_he"


def _is_namespace(spec: ModuleSpec) -> bool:
    return spec.origin in (None, "namespace")


def _is_stale_adapter(spec: ModuleSpec) -> bool:
    origin = spec.origin
    if origin is None or not origin.endswith(".py"):
        return False
    try:
        return MARKER in Path(origin).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False


def other_autoattack() -> ModuleSpec | types.ModuleType | None:
    """The ``autoattack`` that is not art_he's adapter, imported (the module) or importable (its spec); else None."""
    current = sys.modules.get(NAME)
    if current is not None:
        spec = getattr(current, "__spec__", None)
        return None if _is_adapter(current) or (spec is not None and _is_namespace(spec)) else current
    spec = importlib.util.find_spec(NAME)  # None also where sys.modules[NAME] is None (import blocked)
    return None if spec is None or _is_namespace(spec) or _is_stale_adapter(spec) else spec


@contextmanager
def autoattack_alias() -> Iterator[bool]:
    """Inside: the adapter is ``autoattack`` and ``autoattack.state`` unless another ``autoattack`` is there (yields
    whether the adapter is the one ``import autoattack`` gives); after: ``sys.modules`` as before."""
    if other_autoattack() is not None:
        yield False
        return
    from art_he.robustbench import autoattack_api

    names = {NAME: autoattack_api, f"{NAME}.state": autoattack_api.state}
    before = {name: sys.modules.get(name, _ABSENT) for name in names}
    sys.modules.update(names)
    try:
        yield True
    finally:
        for name, module in before.items():
            if module is _ABSENT:
                sys.modules.pop(name, None)
            else:  # a module, or None where an import was blocked (typeshed types sys.modules as modules only)
                sys.modules[name] = cast("types.ModuleType", module)
