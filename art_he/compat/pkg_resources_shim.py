"""A stand-in ``pkg_resources`` for where setuptools (>= 82) no longer has one.

robustbench 1.1.1 (``robustbench/loaders.py``) and imagecorruptions 1.1.2 (``imagecorruptions/corruptions.py``)
import ``pkg_resources`` and call ``resource_filename`` only, so that is all the stand-in has. The
``robustbench`` extra pins ``setuptools<82``; the stand-in is installed only where ``import pkg_resources``
fails anyway. It is written for those two callers: their version guards (:mod:`art_he.compat.upstream`) cover it.
"""

from __future__ import annotations

import importlib
import importlib.resources
import sys
import types
import warnings
from pathlib import Path


def resource_filename(package_or_requirement, resource_name: str) -> str:
    """The path of ``resource_name`` inside an installed package (a module name or the module itself)."""
    package = package_or_requirement if isinstance(package_or_requirement, str) else package_or_requirement.__name__
    module = importlib.import_module(package)
    base = Path(module.__file__).parent if getattr(module, "__file__", None) else importlib.resources.files(package)
    return str(Path(base) / resource_name)


def ensure_pkg_resources() -> bool:
    """Install the stand-in as ``pkg_resources`` if setuptools does not provide one; True if it was needed."""
    try:
        with warnings.catch_warnings():  # setuptools 81 warns that pkg_resources is deprecated
            warnings.simplefilter("ignore", UserWarning)
            import pkg_resources  # noqa: F401

        return False
    except ImportError:
        pass
    shim = types.ModuleType("pkg_resources")
    shim.__doc__ = "art_he stand-in for setuptools' pkg_resources (resource_filename only)."
    shim.resource_filename = resource_filename
    sys.modules["pkg_resources"] = shim
    return True
