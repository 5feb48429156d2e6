"""Image folders (torchvision's ``ImageFolder``: ``D/train/<class>/<image>``, ``D/val/<class>/<image>``) and
ImageNet in that layout, with the paper's transforms (App. C.2): RandomResizedCrop and horizontal flip for
training, Resize and CenterCrop for evaluation (crop 224 of 256 by default; ``image_size`` scales both)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch.utils.data import DataLoader, Subset
from torchvision import transforms
from torchvision.datasets import ImageFolder

from art_he.errors import MissingFileError
from art_he.validation import check_data_dir

SPLITS = {True: "train", False: "val"}
LAYOUT = "{root}/{split}/<class>/<image> (one folder per class, as torchvision's ImageFolder reads)"


def split_dir(data_dir: str | os.PathLike[str] | None, train: bool) -> Path:
    """``data_dir/train`` or ``data_dir/val``, which must exist and hold class folders."""
    if data_dir is None:
        raise MissingFileError("image-folder data sets need --data-dir D with " +
                               LAYOUT.format(root="D", split="train|val"))
    check_data_dir(data_dir)
    folder = Path(data_dir) / SPLITS[train]
    if not folder.is_dir() or not any(p.is_dir() for p in folder.iterdir()):
        raise MissingFileError(f"{folder} has no class folders; expected " +
                               LAYOUT.format(root=data_dir, split=SPLITS[train]))
    return folder


def folder_classes(data_dir: str | os.PathLike[str] | None) -> list[str]:
    """The class names: the folders of ``data_dir/train``, sorted (ImageFolder's label order)."""
    return sorted(p.name for p in split_dir(data_dir, True).iterdir() if p.is_dir())


def folder_transform(image_size: int, train: bool, augment: bool) -> transforms.Compose:
    """Training with ``augment``: RandomResizedCrop + flip; otherwise Resize(size * 256 / 224) + CenterCrop."""
    if train and augment:
        steps = [transforms.RandomResizedCrop(image_size), transforms.RandomHorizontalFlip()]
    else:
        steps = [transforms.Resize(round(image_size * 256 / 224)), transforms.CenterCrop(image_size)]
    return transforms.Compose([*steps, transforms.ToTensor()])


def folder_dataset(data_dir: str | os.PathLike[str] | None, train: bool, image_size: int = 224,
                   augment: bool = True) -> ImageFolder:
    return ImageFolder(str(split_dir(data_dir, train)), transform=folder_transform(image_size, train, augment))


def spread(n_total: int, n: int | None) -> list[int]:
    """``n`` indices spread evenly over ``range(n_total)`` (every class, since ImageFolder sorts by class)."""
    if n is None or n >= n_total:
        return list(range(n_total))
    indices: list[int] = np.linspace(0, n_total - 1, n).round().astype(int).tolist()
    return indices


def load_folder(data_dir: str | os.PathLike[str] | None, train: bool = False, image_size: int = 224,
                n: int | None = None) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
    """``(x float32 (N, 3, S, S) in [0, 1], y int64)`` of ``n`` images spread over the split (evaluation
    transforms)."""
    dataset = folder_dataset(data_dir, train, image_size, augment=False)
    items = [dataset[i] for i in spread(len(dataset), n)]
    return torch.stack([x for x, _ in items]).numpy(), np.array([y for _, y in items], dtype=np.int64)


def folder_loader(dataset: ImageFolder, batch_size: int, workers: int, seed: int,
                  subset: int | None = None) -> DataLoader[Any]:
    """A shuffling training ``DataLoader`` (seeded; under DDP the trainer re-makes it with a
    ``DistributedSampler`` for its rank) with ``workers`` processes and pinned memory on CUDA."""
    if subset is not None:
        dataset = Subset(dataset, spread(len(dataset), subset))
    return DataLoader(dataset, batch_size=batch_size, shuffle=True, generator=torch.Generator().manual_seed(seed),
                      num_workers=workers, pin_memory=torch.cuda.is_available(), persistent_workers=workers > 0)
