"""``enable_robustbench``: make ``import robustbench`` work and apply art_he's fixes to it."""

from __future__ import annotations

import warnings

from art_he.compat.autoattack_alias import register_autoattack
from art_he.compat.pkg_resources_shim import ensure_pkg_resources
from art_he.compat.robustbench_loaders import patch_loaders

#: deprecation warnings that robustbench 1.1.1's import raises from its dependencies, not from the user's code;
#: silenced for that import only (pkg_resources in setuptools < 82, timm's moved modules, torch.jit.interface)
IMPORT_NOISE = (r"pkg_resources is deprecated", r"Importing from timm\.", r"`torch\.jit\.interface` is deprecated")


def enable_robustbench(local_data: bool = True):
    """Import and return ``robustbench`` with the fixes of :mod:`art_he.compat` (idempotent).

    Call it before anything imports ``robustbench``: it provides the ``autoattack`` module RobustBench imports
    (fra31's where installed, else art_he's adapter) and ``pkg_resources`` where setuptools lacks it.
    """
    ensure_pkg_resources()
    register_autoattack()
    with warnings.catch_warnings():
        for message in IMPORT_NOISE:
            warnings.filterwarnings("ignore", message=message)
        import robustbench
        import robustbench.data as rb_data
        import robustbench.eval as rb_eval

    if getattr(robustbench, "_art_he_enabled", False):
        return robustbench
    patch_loaders(rb_data, rb_eval, local_data)
    robustbench._art_he_enabled = True
    return robustbench
