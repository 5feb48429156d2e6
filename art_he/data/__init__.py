"""Data sets as numpy arrays in [0, 1] (ART's convention), plus their metadata."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from art_he.data.cifar10 import cifar10_dataset, load_cifar, load_cifar10, save_cifar10
from art_he.data.fashion_mnist import load_fashion_mnist
from art_he.data.folder import load_folder
from art_he.data.synthetic import load_synthetic
from art_he.errors import UserError
from art_he.models.layers import CIFAR10_MEAN, CIFAR10_STD, CIFAR100_MEAN, CIFAR100_STD
from art_he.models.torchvision_models import IMAGENET_MEAN, IMAGENET_STD
from art_he.validation import check_data_dir


@dataclass(frozen=True)
class DatasetInfo:
    input_shape: tuple[int, int, int]
    nb_classes: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    eps: float  # the usual Linf training radius
    model: str  # default model
    augment: bool = False  # random crop (pad 4) and flip when training (App. C.2 for CIFAR)
    folder: bool = False  # an ImageFolder tree read through a DataLoader; nb_classes 0: from its folders
    sizes: tuple[int, int] | None = None  # (training, test) images of the full data set; None: the folder's
    #: ``(train, data_dir) -> (x, y)``: how a data set added outside this module is read (docs/extending.md)
    loader: Callable[[bool, str | os.PathLike[str] | None], tuple[np.ndarray, np.ndarray]] | None = None


DATASETS: dict[str, DatasetInfo] = {
    "fashion-mnist": DatasetInfo((1, 28, 28), 10, (0.2860,), (0.3530,), 0.1, "small-cnn", sizes=(60_000, 10_000)),
    "cifar10": DatasetInfo((3, 32, 32), 10, CIFAR10_MEAN, CIFAR10_STD, 8 / 255, "preact-resnet18", augment=True,
                           sizes=(50_000, 10_000)),
    "cifar100": DatasetInfo((3, 32, 32), 100, CIFAR100_MEAN, CIFAR100_STD, 8 / 255, "preact-resnet18",
                            augment=True, sizes=(50_000, 10_000)),
    "synthetic": DatasetInfo((1, 28, 28), 10, (0.5,), (0.5,), 0.1, "small-cnn", sizes=(2048, 2048)),
    "imagefolder": DatasetInfo((3, 224, 224), 0, IMAGENET_MEAN, IMAGENET_STD, 4 / 255, "resnet50", augment=True,
                               folder=True),
    # ILSVRC-2012: 1,281,167 training images, 50,000 validation images (the test split of the paper's Table 4)
    "imagenet": DatasetInfo((3, 224, 224), 1000, IMAGENET_MEAN, IMAGENET_STD, 4 / 255, "resnet50", augment=True,
                            folder=True, sizes=(1_281_167, 50_000)),
}


def dataset_info(name: str) -> DatasetInfo:
    if name not in DATASETS:
        raise UserError(f"unknown dataset {name!r}; choose from {sorted(DATASETS)}")
    return DATASETS[name]


def load_dataset(
    name: str, train: bool = True, data_dir: str | os.PathLike[str] | None = None, *, image_size: int | None = None,
    n: int | None = None, verify: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """``(x float32 (N, C, H, W) in [0, 1], y int64)`` of a data set. Image folders (``imagefolder``,
    ``imagenet``) are read at ``image_size`` with the evaluation transforms, ``n`` images spread over the split
    (all without ``n``); the other data sets ignore both. ``verify=False`` reads CIFAR-10 files whose md5
    differs from the official release (see ``load_cifar10``)."""
    info = dataset_info(name)
    check_data_dir(data_dir)
    if info.loader is not None:
        return info.loader(train, data_dir)
    if name == "fashion-mnist":
        return load_fashion_mnist(train, data_dir)
    if name in ("cifar10", "cifar100"):
        return load_cifar(name, train, data_dir, verify=verify)
    if info.folder:
        return load_folder(data_dir, train, image_size or info.input_shape[-1], n)
    return load_synthetic(train)


__all__ = ["DATASETS", "DatasetInfo", "cifar10_dataset", "dataset_info", "load_cifar", "load_cifar10", "load_dataset",
           "load_fashion_mnist", "load_synthetic", "save_cifar10"]
