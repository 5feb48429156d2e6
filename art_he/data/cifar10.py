"""CIFAR-10 through torchvision (python pickle batches in ``<root>/cifar-10-batches-py``)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torchvision import transforms
from torchvision.datasets import CIFAR10

MISSING = (
    "CIFAR-10 not found under {root} (expected {root}/cifar-10-batches-py/data_batch_1..5 and test_batch) "
    "and it could not be downloaded ({error}). Pass --data-dir or set $ART_HE_DATA."
)


def _root(data_dir: str | os.PathLike | None) -> Path:
    from art_he.data.fashion_mnist import cache_dir

    return Path(data_dir or os.environ.get("ART_HE_DATA") or cache_dir())


def cifar10_dataset(train: bool = True, data_dir=None, augment: bool = False) -> CIFAR10:
    """torchvision's CIFAR10 with ``ToTensor`` (and random crop 4 + flip when ``augment``); downloads if online."""
    steps = [transforms.RandomCrop(32, padding=4), transforms.RandomHorizontalFlip()] if augment else []
    transform = transforms.Compose([*steps, transforms.ToTensor()])
    root = _root(data_dir)
    try:
        return CIFAR10(str(root), train=train, transform=transform, download=False)
    except RuntimeError:
        pass
    try:
        return CIFAR10(str(root), train=train, transform=transform, download=True)
    except Exception as error:  # noqa: BLE001
        raise FileNotFoundError(MISSING.format(root=root, error=type(error).__name__)) from None


def load_cifar10(train: bool = True, data_dir=None) -> tuple[np.ndarray, np.ndarray]:
    """``(x, y)``: float32 images (N, 3, 32, 32) in [0, 1] and int64 labels."""
    dataset = cifar10_dataset(train, data_dir)
    x = torch.from_numpy(dataset.data).permute(0, 3, 1, 2).to(torch.float32).div_(255.0)
    return x.numpy(), np.asarray(dataset.targets, dtype=np.int64)
