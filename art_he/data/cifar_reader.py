"""torchvision's CIFAR-10/100 dataset, read safely and made to accept local copies that are not byte-identical to
the release.

torchvision unpickles the batches with ``pickle.load``, which runs whatever a file asks for. This subclass
replaces ``CIFAR10.__init__`` and ``_load_meta`` so that every batch and meta file goes through
:mod:`art_he.data.cifar_pickle` (nothing in a file runs; a malformed batch gets one line naming the file and the
problem), with or without verification. ``verify=True`` keeps torchvision's md5 checks and download;
``verify=False`` checks no md5: the ``required`` files (default: every file of the release) only have to exist,
and the meta file is read as it is, or skipped (no class names) where it is absent and not required. That reads
re-packed, recompressed or subsampled copies in the same pickle format.

What it relies on of ``torchvision.datasets.CIFAR10`` (the class attributes ``base_folder``, ``train_list``,
``test_list``, ``meta``, and ``_check_integrity`` and ``download``) is checked by
``tests/test_robustbench_interop.py``.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np


@functools.cache
def local_cifar_class(dataset: str = "cifar10") -> type[Any]:
    """A ``CIFAR10`` / ``CIFAR100`` subclass taking ``verify`` and ``required`` (see the module docstring)."""
    from torchvision.datasets import CIFAR10, CIFAR100, VisionDataset
    from torchvision.datasets import cifar as torchvision_cifar

    from art_he.data.cifar_pickle import read_batch, read_label_names

    base = CIFAR10 if dataset == "cifar10" else CIFAR100
    nb_classes = 10 if dataset == "cifar10" else 100

    class LocalCIFAR(base):  # type: ignore[misc,valid-type]  # torchvision is untyped; the base is chosen here
        def __init__(self, root: str | os.PathLike[str], train: bool = True,
                     transform: Callable[[Any], Any] | None = None,
                     target_transform: Callable[[Any], Any] | None = None, download: bool = False,
                     *, verify: bool = True, required: Sequence[str] | None = None) -> None:
            VisionDataset.__init__(self, root, transform=transform, target_transform=target_transform)
            self.train, self.verify, self.required = train, verify, required
            if download:
                self.download()
            if not self._check_integrity():
                raise RuntimeError("Dataset not found or corrupted. You can use download=True to download it")
            folder = Path(self.root, self.base_folder)
            batches = [read_batch(folder / name, nb_classes) for name, _ in (self.train_list if train
                                                                            else self.test_list)]
            self.data = np.vstack([data for data, _ in batches]).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
            self.targets = [label for _, labels in batches for label in labels]
            self._load_meta()

        def _check_integrity(self) -> bool:
            if self.verify:
                intact: bool = super()._check_integrity()
                return intact
            release = [name for name, _ in self.train_list + self.test_list] + [self.meta["filename"]]
            folder = Path(self.root, self.base_folder)
            return all((folder / name).is_file() for name in (release if self.required is None else self.required))

        def _load_meta(self) -> None:
            path = Path(self.root, self.base_folder, self.meta["filename"])
            if self.verify and not torchvision_cifar.check_integrity(str(path), self.meta["md5"]):
                raise RuntimeError("Dataset metadata file not found or corrupted. You can use download=True to "
                                   "download it")
            if not path.is_file():  # allowed only when not required: the images do not need the class names
                self.classes, self.class_to_idx = [], {}
                return
            self.classes = read_label_names(path, self.meta["key"])
            self.class_to_idx = {name: i for i, name in enumerate(self.classes)}

    LocalCIFAR.__name__ = LocalCIFAR.__qualname__ = f"Local{base.__name__}"
    return LocalCIFAR
