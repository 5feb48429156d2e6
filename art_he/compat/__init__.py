"""Make RobustBench (1.1.1) and imagecorruptions (1.1.2) work in this environment.

``import robustbench`` needs two things upstream does not give (see docs/environment.md):

1. a module named ``autoattack`` with the GitHub AutoAttack API. art_he ships one: the top-level package
   ``autoattack`` in this distribution adapts that API onto ``pyautoattack`` (installed with art_he).
2. ``pkg_resources``, which setuptools >= 82 no longer has. The ``robustbench`` extra pins ``setuptools<82``;
   where a newer setuptools is installed anyway, :func:`ensure_pkg_resources` installs a minimal stand-in
   (``resource_filename`` only, all that robustbench and imagecorruptions call).

:func:`enable_robustbench` does both and fixes RobustBench's data loaders:

* ``benchmark(threat_model="corruptions")`` calls the CIFAR corruption loaders with ``prepr=``, which they do not
  accept (a ``TypeError``): the loaders are wrapped to take it, and to raise :class:`MissingDataError` naming
  the expected layout instead of trying to download from Zenodo.
* with ``local_data=True`` the clean CIFAR-10/100 test sets are read from ``<data_dir>/cifar-10-batches-py``
  (``cifar-100-python``) with torchvision's reader but without its md5 check or download, so ``benchmark`` runs
  offline and on small files in the real format.

Usage::

    from art_he.compat import enable_robustbench
    robustbench = enable_robustbench()
    clean, robust = robustbench.eval.benchmark(model, dataset="cifar10", threat_model="Linf", eps=8 / 255, ...)

``benchmark(threat_model="corruptions")`` also needs ``model_info/<dataset>/corruptions/unaggregated_results.csv``
(with AlexNet's accuracies, for mCE) from RobustBench's GitHub repository, which the wheel does not ship; use
``art_he.evaluation``'s ``corruptions`` suite for accuracy per corruption and mCA instead.

Conflict: the GitHub AutoAttack package also installs a top-level ``autoattack``; install one or the other.
"""

from __future__ import annotations

import importlib
import importlib.resources
import os
import sys
import types
import warnings
from pathlib import Path

from art_he.errors import MissingFileError

CIFAR_C_DIRS = {"cifar10": "CIFAR-10-C", "cifar100": "CIFAR-100-C"}


class MissingDataError(MissingFileError):
    """A data file is missing; the message names the expected layout (a :class:`~art_he.errors.UserError`
    and a ``FileNotFoundError``, so either ``except`` catches it)."""
CLEAN_DIRS = {"cifar10": "cifar-10-batches-py", "cifar100": "cifar-100-python"}
CLEAN_TEST_FILES = {"cifar10": "test_batch", "cifar100": "test"}


def ensure_pkg_resources() -> bool:
    """Install a minimal ``pkg_resources`` if setuptools does not provide one; True if the stand-in was needed."""
    try:
        with warnings.catch_warnings():  # setuptools 81 warns that pkg_resources is deprecated
            warnings.simplefilter("ignore", UserWarning)
            import pkg_resources  # noqa: F401

        return False
    except ImportError:
        pass
    shim = types.ModuleType("pkg_resources")
    shim.__doc__ = "art_he stand-in for setuptools' pkg_resources (resource_filename only)."

    def resource_filename(package_or_requirement, resource_name: str) -> str:
        package = package_or_requirement if isinstance(package_or_requirement, str) else package_or_requirement.__name__
        module = importlib.import_module(package)
        base = Path(module.__file__).parent if getattr(module, "__file__", None) else importlib.resources.files(package)
        return str(Path(base) / resource_name)

    shim.resource_filename = resource_filename
    sys.modules["pkg_resources"] = shim
    return True


def cifar_c_layout(dataset: str, data_dir) -> str:
    root = Path(data_dir) / CIFAR_C_DIRS[dataset]
    return (f"{root}/<corruption>.npy (uint8, (50000, 32, 32, 3): severity s is rows (s-1)*10000 to s*10000) "
            f"and {root}/labels.npy (50000 labels)")


def check_cifar_c(dataset: str, data_dir, corruptions) -> Path:
    """Raise :class:`MissingDataError` naming the expected layout if a CIFAR-10-C/100-C file is missing."""
    root = Path(data_dir) / CIFAR_C_DIRS[dataset]
    missing = [p for p in [root / "labels.npy", *(root / f"{c}.npy" for c in corruptions)] if not p.is_file()]
    if missing:
        raise MissingDataError(
            f"{CIFAR_C_DIRS[dataset]} files missing: {', '.join(str(p) for p in missing)}. Expected layout: "
            f"{cifar_c_layout(dataset, data_dir)}; download it from https://zenodo.org/record/"
            f"{'2535967' if dataset == 'cifar10' else '3555552'} and unpack it into {data_dir}."
        )
    return root


def _local_cifar(dataset: str):
    from torchvision.datasets import CIFAR10, CIFAR100

    base = CIFAR10 if dataset == "cifar10" else CIFAR100

    class LocalCIFAR(base):
        """torchvision's reader without md5 checks or download: the test batch only has to exist."""

        def _check_integrity(self) -> bool:
            return (Path(self.root) / self.base_folder / CLEAN_TEST_FILES[dataset]).is_file()

        def _load_meta(self) -> None:  # class names are not needed for evaluation; the meta file is optional
            if (Path(self.root) / self.base_folder / self.meta["filename"]).is_file():
                super()._load_meta()
            else:
                self.classes, self.class_to_idx = [], {}

    return LocalCIFAR


def load_clean_cifar(dataset: str, n_examples, data_dir, transform):
    """Clean CIFAR test set ``(x, y)`` tensors through RobustBench's ``_load_dataset``, from local files only."""
    from robustbench.data import _load_dataset

    root = Path(data_dir) / CLEAN_DIRS[dataset]
    if not (root / CLEAN_TEST_FILES[dataset]).is_file():
        raise MissingDataError(
            f"{dataset} test set not found: expected {root / CLEAN_TEST_FILES[dataset]} (python pickle batches "
            f"as in {'cifar-10-python.tar.gz' if dataset == 'cifar10' else 'cifar-100-python.tar.gz'})"
        )
    data = _local_cifar(dataset)(root=str(data_dir), train=False, transform=transform, download=False)
    return _load_dataset(data, n_examples)


def _corruption_loader(dataset: str, upstream):
    def load(n_examples, severity=5, data_dir="./data", shuffle=False, corruptions=None, prepr=None, *args):
        from robustbench.data import CORRUPTIONS

        corruptions = list(corruptions) if corruptions is not None else list(CORRUPTIONS)
        check_cifar_c(dataset, data_dir, corruptions)
        return upstream(n_examples, severity, str(data_dir), shuffle, corruptions)

    load.__wrapped__ = upstream
    load.__doc__ = f"RobustBench's {upstream.__name__}, accepting ``prepr`` and naming the layout of missing files."
    return load


def enable_robustbench(local_data: bool = True):
    """Import and return ``robustbench`` with the fixes above (idempotent)."""
    ensure_pkg_resources()
    import robustbench
    import robustbench.data as rb_data
    import robustbench.eval as rb_eval
    from robustbench.model_zoo.enums import BenchmarkDataset, ThreatModel

    import autoattack  # noqa: F401  (ours, or GitHub's if installed instead)

    if getattr(robustbench, "_art_he_enabled", False):
        return robustbench
    names = {BenchmarkDataset.cifar_10: "cifar10", BenchmarkDataset.cifar_100: "cifar100"}
    for bench, name in names.items():
        upstream = rb_data.CORRUPTION_DATASET_LOADERS[bench][ThreatModel.corruptions]
        rb_data.CORRUPTION_DATASET_LOADERS[bench][ThreatModel.corruptions] = _corruption_loader(name, upstream)
        if local_data:
            rb_data._clean_dataset_loaders[bench] = (
                lambda n, data_dir, prepr, _name=name: load_clean_cifar(_name, n, data_dir, prepr))
    rb_eval.CORRUPTION_DATASET_LOADERS = rb_data.CORRUPTION_DATASET_LOADERS
    robustbench._art_he_enabled = True
    return robustbench


def ensure_imagecorruptions():
    """Import ``imagecorruptions`` with two fixes for current numpy and scikit-image; return the module.

    * ``fog`` builds its plasma fractal with ``np.float_`` (removed in numpy 2): the module gets a numpy that still
      has it, without touching the global ``numpy``.
    * ``glass_blur`` and ``gaussian_blur`` call ``skimage.filters.gaussian(..., multichannel=True)`` (removed in
      scikit-image 0.19): translated to ``channel_axis=-1``.
    """
    ensure_pkg_resources()
    import imagecorruptions
    import imagecorruptions.corruptions as ic
    import numpy
    from skimage.filters import gaussian as sk_gaussian

    if getattr(ic, "_art_he_patched", False):
        return imagecorruptions
    if not hasattr(numpy, "float_"):
        class _Numpy(types.ModuleType):
            float_ = numpy.float64

            def __getattr__(self, name):
                return getattr(numpy, name)

        ic.np = _Numpy("numpy")

    def gaussian(image, sigma=1, multichannel=None, **kwargs):
        if multichannel is not None and "channel_axis" not in kwargs:
            kwargs["channel_axis"] = -1 if multichannel else None
        return sk_gaussian(image, sigma=sigma, **kwargs)

    ic.gaussian = gaussian
    ic._art_he_patched = True
    return imagecorruptions


def data_root(data_dir=None) -> Path:
    """``data_dir``, else ``$ART_HE_DATA``, else ``./data`` (RobustBench's default)."""
    return Path(data_dir or os.environ.get("ART_HE_DATA") or "./data")
