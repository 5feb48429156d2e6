"""Data sets as numpy arrays in [0, 1] (ART's convention), plus their metadata."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from art_he.data.cifar10 import cifar10_dataset, load_cifar10
from art_he.data.fashion_mnist import load_fashion_mnist
from art_he.data.synthetic import load_synthetic
from art_he.errors import MissingFileError, UserError
from art_he.models.layers import CIFAR10_MEAN, CIFAR10_STD


@dataclass(frozen=True)
class DatasetInfo:
    input_shape: tuple[int, int, int]
    nb_classes: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    eps: float  # the usual Linf training radius
    model: str  # default model
    augment: bool = False  # random crop (pad 4) and flip when training (App. C.2 for CIFAR)


DATASETS: dict[str, DatasetInfo] = {
    "fashion-mnist": DatasetInfo((1, 28, 28), 10, (0.2860,), (0.3530,), 0.1, "small-cnn"),
    "cifar10": DatasetInfo((3, 32, 32), 10, CIFAR10_MEAN, CIFAR10_STD, 8 / 255, "preact-resnet18", augment=True),
    "synthetic": DatasetInfo((1, 28, 28), 10, (0.5,), (0.5,), 0.1, "small-cnn"),
}


def dataset_info(name: str) -> DatasetInfo:
    if name not in DATASETS:
        raise UserError(f"unknown dataset {name!r}; choose from {sorted(DATASETS)}")
    return DATASETS[name]


def load_dataset(
    name: str, train: bool = True, data_dir: str | os.PathLike | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``(x float32 (N, C, H, W) in [0, 1], y int64)`` for ``"fashion-mnist"``, ``"cifar10"`` or ``"synthetic"``."""
    dataset_info(name)
    if data_dir is not None and not Path(data_dir).is_dir():
        raise MissingFileError(f"data directory {data_dir} does not exist")
    if name == "fashion-mnist":
        return load_fashion_mnist(train, data_dir)
    if name == "cifar10":
        return load_cifar10(train, data_dir)
    return load_synthetic(train)


__all__ = ["DATASETS", "DatasetInfo", "cifar10_dataset", "dataset_info", "load_cifar10", "load_dataset",
           "load_fashion_mnist", "load_synthetic"]
