"""CIFAR-10 and CIFAR-100 through torchvision (python pickle batches in ``<root>/cifar-10-batches-py`` or
``<root>/cifar-100-python``, root as :func:`~art_he.data.layout.data_root`); ``verify=False`` reads re-packed
copies (:func:`~art_he.data.cifar_reader.local_cifar_class`)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torchvision import transforms
from torchvision.datasets import CIFAR10

from art_he.data.cifar_reader import local_cifar_class
from art_he.data.layout import data_root
from art_he.errors import MissingFileError, UserError

#: the files each release holds, named in the error when they are missing
LAYOUTS = {"cifar10": "data_batch_1..5, test_batch and batches.meta", "cifar100": "train, test and meta"}
NAMES = {"cifar10": "CIFAR-10", "cifar100": "CIFAR-100"}
ARCHIVES = {"cifar10": "cifar-10-python.tar.gz", "cifar100": "cifar-100-python.tar.gz"}
MISSING = ("{name} not found under {root} (expected {folder}/{files}) and it could not be downloaded ({error}). "
           "Unpack {archive} (https://www.cs.toronto.edu/~kriz/cifar.html) into {root}{elsewhere}.")
ELSEWHERE = ", or pass --data-dir D (or set $ART_HE_DATA) where D holds {folder_name}"
OFFLINE = "; offline, `art-he data fashion-as-cifar10 D` writes Fashion-MNIST in CIFAR-10's format to try the commands"


def cifar_dataset(dataset: str = "cifar10", train: bool = True, data_dir: str | os.PathLike[str] | None = None,
                  augment: bool = False, verify: bool = True) -> CIFAR10:
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
        elsewhere = "" if data_dir is not None else ELSEWHERE.format(folder_name=folder.name)
        elsewhere += OFFLINE if dataset == "cifar10" else ""
        raise MissingFileError(MISSING.format(name=NAMES[dataset], root=root, folder=folder, files=LAYOUTS[dataset],
                                              error=f"{type(error).__name__}: {error}", archive=ARCHIVES[dataset],
                                              elsewhere=elsewhere)) from None


def load_cifar(dataset: str = "cifar10", train: bool = True, data_dir: str | os.PathLike[str] | None = None,
               verify: bool = True) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
    """``(x, y)``: float32 images (N, 3, 32, 32) in [0, 1] and int64 labels (CIFAR-100: the 100 fine labels)."""
    data = cifar_dataset(dataset, train, data_dir, verify=verify)
    x = torch.from_numpy(data.data).permute(0, 3, 1, 2).to(torch.float32).div_(255.0)
    return x.numpy(), np.asarray(data.targets, dtype=np.int64)


def cifar10_dataset(train: bool = True, data_dir: str | os.PathLike[str] | None = None, augment: bool = False,
                    verify: bool = True) -> CIFAR10:
    return cifar_dataset("cifar10", train, data_dir, augment, verify)


def load_cifar10(train: bool = True, data_dir: str | os.PathLike[str] | None = None,
                 verify: bool = True) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
    return load_cifar("cifar10", train, data_dir, verify)


def save_cifar10(root: str | os.PathLike[str], train: tuple[npt.NDArray[Any], npt.NDArray[Any]],
                 test: tuple[npt.NDArray[Any], npt.NDArray[Any]],
                 label_names: Iterable[str] | None = None) -> Path:
    """Write images in CIFAR-10's on-disk format: ``root/cifar-10-batches-py/data_batch_1..5`` (the training set
    split in five), ``test_batch`` and ``batches.meta``, python pickles of uint8 rows ``(N, 3 * 32 * 32)``
    (channel-major) and ``labels``. ``train``/``test``: ``(x, y)``, x uint8 ``(N, 3, 32, 32)`` or float in [0, 1].
    Such copies load with ``verify=False`` (``--no-verify-data``); returns the folder."""
    import pickle

    def rows(x: npt.ArrayLike) -> npt.NDArray[np.uint8]:
        x = np.asarray(x)
        if x.shape[1:] != (3, 32, 32):
            raise UserError(f"CIFAR-10 images are (N, 3, 32, 32), got {x.shape}")
        x = x if x.dtype == np.uint8 else np.rint(np.clip(x, 0, 1) * 255).astype(np.uint8)
        return x.reshape(len(x), -1)

    folder = Path(root) / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    (x, y), (x_test, y_test) = train, test
    for i, part in enumerate(np.array_split(np.arange(len(x)), 5), start=1):
        with open(folder / f"data_batch_{i}", "wb") as f:
            pickle.dump({"batch_label": f"training batch {i} of 5", "data": rows(x[part]),
                         "labels": [int(v) for v in np.asarray(y)[part]]}, f)
    with open(folder / "test_batch", "wb") as f:
        pickle.dump({"batch_label": "testing batch 1 of 1", "data": rows(x_test),
                     "labels": [int(v) for v in y_test]}, f)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": list(label_names or [str(i) for i in range(10)])}, f)
    return folder
