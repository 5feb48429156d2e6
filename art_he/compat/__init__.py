"""Make RobustBench (1.1.1) and imagecorruptions (1.1.2) work in this environment.

``import robustbench`` needs two things upstream does not give:

1. a module named ``autoattack`` with the GitHub AutoAttack API. art_he has an adapter of that API onto
   ``pyautoattack`` (installed with art_he), :mod:`art_he.compat.autoattack_api`, but installs no top-level
   ``autoattack``: that name belongs to fra31's AutoAttack. :func:`enable_robustbench` registers the adapter as
   ``autoattack`` only where no other ``autoattack`` can be imported (:mod:`art_he.compat.autoattack_alias`).
2. ``pkg_resources``, which setuptools >= 82 no longer has. The ``robustbench`` extra pins ``setuptools<82``;
   where a newer setuptools is installed anyway, :func:`ensure_pkg_resources` installs a minimal stand-in
   (``resource_filename`` only, all that robustbench and imagecorruptions call).

:func:`enable_robustbench` does both and fixes RobustBench's data loaders (:mod:`art_he.compat.robustbench_loaders`):
CIFAR-10-C/100-C loaders that accept ``prepr=`` and name the expected layout of missing files, and clean
CIFAR-10/100 test sets read offline from local pickle batches. :func:`ensure_imagecorruptions` fixes
imagecorruptions for numpy 2 and current scikit-image (:mod:`art_he.compat.imagecorruptions_patch`).

Each patch is written for one upstream version (robustbench 1.1.1, imagecorruptions 1.1.2, pyautoattack 0.2.x) and
guarded (:mod:`art_he.compat.upstream`): if what it replaces has changed it refuses with
:class:`UpstreamChangedError`; on another version that still has it, it is applied with one
:class:`UntestedUpstreamWarning`.

Usage (``import robustbench`` alone fails where only pyautoattack is installed)::

    from art_he.compat import enable_robustbench; enable_robustbench()
    import robustbench
    clean, robust = robustbench.eval.benchmark(model, dataset="cifar10", threat_model="Linf", eps=8 / 255, ...)

``benchmark(threat_model="corruptions")`` also needs ``model_info/<dataset>/corruptions/unaggregated_results.csv``
(with AlexNet's accuracies, for mCE) from RobustBench's GitHub repository, which the wheel does not ship; use
``art_he.evaluation``'s ``corruptions`` suite for accuracy per corruption and mCA instead.
"""

from art_he.compat.enable import enable_robustbench
from art_he.compat.imagecorruptions_patch import ensure_imagecorruptions
from art_he.compat.layout import (
    CIFAR_C_DIRS,
    CLEAN_DIRS,
    CLEAN_TEST_FILES,
    MissingDataError,
    check_cifar_c,
    check_clean_cifar,
    cifar_c_layout,
    data_root,
)
from art_he.compat.pkg_resources_shim import ensure_pkg_resources
from art_he.compat.robustbench_loaders import load_clean_cifar
from art_he.compat.upstream import UntestedUpstreamWarning, UpstreamChangedError

__all__ = [
    "CIFAR_C_DIRS", "CLEAN_DIRS", "CLEAN_TEST_FILES", "MissingDataError", "check_cifar_c", "check_clean_cifar",
    "cifar_c_layout", "data_root", "enable_robustbench", "ensure_imagecorruptions", "ensure_pkg_resources",
    "load_clean_cifar", "UntestedUpstreamWarning", "UpstreamChangedError",
]
