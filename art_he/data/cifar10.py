"""CIFAR-10 and CIFAR-100 through torchvision (python pickle batches in ``<root>/cifar-10-batches-py`` or
``<root>/cifar-100-python``, root as :func:`~art_he.compat.layout.data_root`); ``verify=False`` reads re-packed
copies (:func:`~art_he.compat.cifar_reader.local_cifar_class`)."""

from __future__ import annotations

import numpy as np
import torch
from torchvision import transforms
from torchvision.datasets import CIFAR10

from art_he.compat.cifar_reader import local_cifar_class
from art_he.compat.layout import data_root
from art_he.errors import MissingFileError, UserError

#: the files each release holds, named in the error when they are missing
LAYOUTS = {"cifar10": "data_batch_1..5, test_batch and batches.meta", "cifar100": "train, test and meta"}
NAMES = {"cifar10": "CIFAR-10", "cifar100": "CIFAR-100"}
MISSING = ("{name} not found under {root} (expected {folder}/{files}) and it could not be downloaded ({error}). "
           "Pass --data-dir or set $ART_HE_DATA.")


def cifar_dataset(dataset: str = "cifar10", train: bool = True, data_dir=None, augment: bool = False,
                  verify: bool = True) -> CIFAR10:
    """torchvision's CIFAR10/CIFAR100 with ``ToTensor`` (and random crop 4 + flip when ``augment``); downloads if
    online and the folder is absent (a present but damaged folder is an error, never replaced)."""
    steps = [transforms.RandomCrop(32, padding=4), transforms.RandomHorizontalFlip()] if augment else []
    transform = transforms.Compose([*steps, transforms.ToTensor()])
    root = data_root(data_dir)
    reader = local_cifar_class(dataset)
    folder = root / reader.base_folder
    if folder.is_dir():
        try:
            return reader(str(root), train=train, transform=transform, download=False, verify=verify)
        except RuntimeError as error:  # torchvision's "Dataset not found or corrupted": a damaged local copy
            raise UserError(f"{folder} is incomplete or differs from the official {NAMES[dataset]} release ({error}); "
                            "replace it, or load a re-packed copy with verify=False (--no-verify-data)") from None
    try:
        return reader(str(root), train=train, transform=transform, download=True, verify=verify)
    except Exception as error:  # noqa: BLE001 - any download failure ends in the same advice
        raise MissingFileError(MISSING.format(name=NAMES[dataset], root=root, folder=folder, files=LAYOUTS[dataset],
                                              error=f"{type(error).__name__}: {error}")) from None


def load_cifar(dataset: str = "cifar10", train: bool = True, data_dir=None,
               verify: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """``(x, y)``: float32 images (N, 3, 32, 32) in [0, 1] and int64 labels (CIFAR-100: the 100 fine labels)."""
    data = cifar_dataset(dataset, train, data_dir, verify=verify)
    x = torch.from_numpy(data.data).permute(0, 3, 1, 2).to(torch.float32).div_(255.0)
    return x.numpy(), np.asarray(data.targets, dtype=np.int64)


def cifar10_dataset(train: bool = True, data_dir=None, augment: bool = False, verify: bool = True) -> CIFAR10:
    return cifar_dataset("cifar10", train, data_dir, augment, verify)


def load_cifar10(train: bool = True, data_dir=None, verify: bool = True) -> tuple[np.ndarray, np.ndarray]:
    return load_cifar("cifar10", train, data_dir, verify)
