"""CIFAR-10 through torchvision (python pickle batches in ``<root>/cifar-10-batches-py``)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torchvision import transforms
from torchvision.datasets import CIFAR10

from art_he.errors import MissingFileError, UserError

MISSING = (
    "CIFAR-10 not found under {root} (expected {root}/cifar-10-batches-py/data_batch_1..5, test_batch and "
    "batches.meta) and it could not be downloaded ({error}). Pass --data-dir or set $ART_HE_DATA."
)


class LocalCIFAR10(CIFAR10):
    """torchvision's ``CIFAR10``; with ``verify=False`` it accepts batches whose md5 differs from the official
    release (a re-packed or subsampled copy in the same pickle format) instead of refusing them.

    The batches are pickles, as in torchvision: only point it at copies of CIFAR-10 you trust.
    """

    def __init__(self, *args, verify: bool = True, **kwargs) -> None:
        self.verify = verify
        super().__init__(*args, **kwargs)

    def _check_integrity(self) -> bool:
        if self.verify:
            return super()._check_integrity()
        folder = Path(self.root, self.base_folder)
        return all((folder / name).is_file() for name, _ in self.train_list + self.test_list + [
            (self.meta["filename"], None)])

    def _load_meta(self) -> None:
        if self.verify:
            return super()._load_meta()
        import pickle

        with open(Path(self.root, self.base_folder, self.meta["filename"]), "rb") as f:
            data = pickle.load(f, encoding="latin1")
        self.classes = data[self.meta["key"]]
        self.class_to_idx = {name: i for i, name in enumerate(self.classes)}


def _root(data_dir: str | os.PathLike | None) -> Path:
    from art_he.data.fashion_mnist import cache_dir

    return Path(data_dir or os.environ.get("ART_HE_DATA") or cache_dir())


def cifar10_dataset(train: bool = True, data_dir=None, augment: bool = False, verify: bool = True) -> CIFAR10:
    """torchvision's CIFAR10 with ``ToTensor`` (and random crop 4 + flip when ``augment``); downloads if online."""
    steps = [transforms.RandomCrop(32, padding=4), transforms.RandomHorizontalFlip()] if augment else []
    transform = transforms.Compose([*steps, transforms.ToTensor()])
    root = _root(data_dir)
    folder = root / LocalCIFAR10.base_folder
    if folder.is_dir():
        try:
            return LocalCIFAR10(str(root), train=train, transform=transform, download=False, verify=verify)
        except RuntimeError as error:  # torchvision's "Dataset not found or corrupted": a damaged local copy
            raise UserError(f"{folder} is incomplete or differs from the official CIFAR-10 release ({error}); "
                            "replace it, or load a re-packed copy with verify=False") from None
    try:
        return LocalCIFAR10(str(root), train=train, transform=transform, download=True, verify=verify)
    except Exception as error:  # noqa: BLE001 - any download failure ends in the same advice
        raise MissingFileError(MISSING.format(root=root, error=f"{type(error).__name__}: {error}")) from None


def load_cifar10(train: bool = True, data_dir=None, verify: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """``(x, y)``: float32 images (N, 3, 32, 32) in [0, 1] and int64 labels."""
    dataset = cifar10_dataset(train, data_dir, verify=verify)
    x = torch.from_numpy(dataset.data).permute(0, 3, 1, 2).to(torch.float32).div_(255.0)
    return x.numpy(), np.asarray(dataset.targets, dtype=np.int64)
