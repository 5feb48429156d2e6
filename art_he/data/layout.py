"""Where the data sets live on disk, and the error that names the expected layout.

The one data-root rule, for every loader (Fashion-MNIST, CIFAR-10, CIFAR-10-C/100-C, ImageNet-C, locally corrupted
sets): the ``data_dir`` it is given (``--data-dir``), else ``$ART_HE_DATA``, else the cache, ``$ART_HE_CACHE``
(default ``~/.cache/art_he``); downloads go there too. :func:`data_root` applies it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from art_he.errors import MissingFileError, UserError

CIFAR_C_DIRS = {"cifar10": "CIFAR-10-C", "cifar100": "CIFAR-100-C"}
CLEAN_DIRS = {"cifar10": "cifar-10-batches-py", "cifar100": "cifar-100-python"}
CLEAN_TEST_FILES = {"cifar10": "test_batch", "cifar100": "test"}
ZENODO_RECORDS = {"cifar10": "2535967", "cifar100": "3555552"}


class MissingDataError(MissingFileError):
    """A data file is missing; the message names the expected layout (a :class:`~art_he.errors.UserError`
    and a ``FileNotFoundError``, so either ``except`` catches it)."""


def cache_dir() -> Path:
    """``$ART_HE_CACHE``, else ``~/.cache/art_he``: downloads and prepared copies (gunzipped Fashion-MNIST)."""
    return Path(os.environ.get("ART_HE_CACHE", Path.home() / ".cache" / "art_he"))


def data_root(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """``data_dir``, else ``$ART_HE_DATA``, else :func:`cache_dir`: the one data root (see the module docstring)."""
    return Path(data_dir or os.environ.get("ART_HE_DATA") or cache_dir())


def cifar_c_layout(dataset: str, data_dir: str | os.PathLike[str]) -> str:
    """The CIFAR-10-C / CIFAR-100-C layout under ``data_dir``, in words."""
    root = Path(data_dir) / CIFAR_C_DIRS[dataset]
    return (f"{root}/<corruption>.npy (uint8, (50000, 32, 32, 3): severity s is rows (s-1)*10000 to s*10000) "
            f"and {root}/labels.npy (50000 labels)")


def check_cifar_c(dataset: str, data_dir: str | os.PathLike[str], corruptions: Iterable[str]) -> Path:
    """Raise :class:`MissingDataError` naming the expected layout if a CIFAR-10-C/100-C file is missing, and a
    :class:`~art_he.errors.UserError` naming the file if one is malformed (dtype, shape, truncated, labels out of
    range: checked from the headers and the labels before RobustBench reads them)."""
    import numpy as np

    from art_he.data.npy_check import check_npy

    root = Path(data_dir) / CIFAR_C_DIRS[dataset]
    missing = [p for p in [root / "labels.npy", *(root / f"{c}.npy" for c in corruptions)] if not p.is_file()]
    if missing:
        raise MissingDataError(
            f"{CIFAR_C_DIRS[dataset]} files missing: {', '.join(str(p) for p in missing)}. Expected layout: "
            f"{cifar_c_layout(dataset, data_dir)}; download it from https://zenodo.org/record/"
            f"{ZENODO_RECORDS[dataset]} and unpack it into {data_dir}."
        )
    layout = cifar_c_layout(dataset, data_dir)
    (rows,) = check_npy(root / "labels.npy", "iu", (None,), layout)
    for corruption in corruptions:
        check_npy(root / f"{corruption}.npy", "u", (rows, 32, 32, 3), layout)
    labels = np.load(root / "labels.npy")
    classes = 10 if dataset == "cifar10" else 100
    bad = labels[(labels < 0) | (labels >= classes)]
    if len(bad):
        raise UserError(f"{root / 'labels.npy'}: label {bad[0]} is out of range (0 to {classes - 1})")
    return root


def check_clean_cifar(dataset: str, data_dir: str | os.PathLike[str]) -> Path:
    """Raise :class:`MissingDataError` if the clean CIFAR test batch is missing; return its folder."""
    root = Path(data_dir) / CLEAN_DIRS[dataset]
    if not (root / CLEAN_TEST_FILES[dataset]).is_file():
        archive = "cifar-10-python.tar.gz" if dataset == "cifar10" else "cifar-100-python.tar.gz"
        raise MissingDataError(
            f"{dataset} test set not found: expected {root / CLEAN_TEST_FILES[dataset]} (python pickle batches "
            f"as in {archive})"
        )
    return root
