"""Fashion-MNIST in CIFAR-10's on-disk format, so that every CIFAR-10 command can be tried without CIFAR-10
(``art-he data fashion-as-cifar10 OUT``; notebook 04 and ``benchmarks/robustbench_suite.py`` use it)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from art_he.errors import UserError


def rgb32(x: np.ndarray) -> np.ndarray:
    """Fashion-MNIST images ``(N, 1, 28, 28)`` as CIFAR-10's ``(N, 3, 32, 32)``: zero-padded by 2 pixels on every
    side, the grey channel copied into three."""
    return np.repeat(np.pad(x, ((0, 0), (0, 0), (2, 2), (2, 2))), 3, axis=1)


def fashion_as_cifar10(out: str | os.PathLike[str], *, n_train: int | None = None, n_test: int | None = None,
                       data_dir: str | os.PathLike[str] | None = None,
                       overwrite: bool = False) -> tuple[Path, int, int]:
    """Write the first ``n_train`` training and ``n_test`` test images of Fashion-MNIST (default: all) as
    ``out/cifar-10-batches-py``, with Fashion-MNIST's class names in ``batches.meta``. They load with
    ``--dataset cifar10 --data-dir OUT --no-verify-data``. Returns ``(folder, n_train, n_test)``."""
    from torchvision.datasets import FashionMNIST

    from art_he.data import load_dataset
    from art_he.data.cifar10 import save_cifar10

    if not overwrite and (Path(out) / "cifar-10-batches-py").exists():
        raise UserError(f"{Path(out) / 'cifar-10-batches-py'} exists already; give another folder or remove it")
    x, y = load_dataset("fashion-mnist", train=True, data_dir=data_dir)
    x_test, y_test = load_dataset("fashion-mnist", train=False, data_dir=data_dir)
    x, y, x_test, y_test = x[:n_train], y[:n_train], x_test[:n_test], y_test[:n_test]
    folder = save_cifar10(out, (rgb32(x), y), (rgb32(x_test), y_test), label_names=FashionMNIST.classes)
    return folder, len(x), len(x_test)
