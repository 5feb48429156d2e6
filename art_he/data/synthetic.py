"""A learnable synthetic image data set for smoke tests: class-dependent blobs plus noise."""

from __future__ import annotations

import numpy as np


def load_synthetic(
    train: bool = True, n: int = 2048, shape: tuple[int, int, int] = (1, 28, 28), nb_classes: int = 10, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """``(x, y)`` with ``x`` in [0, 1]: each class is a fixed random template, images are template + noise."""
    rng = np.random.default_rng(seed)
    templates = rng.random((nb_classes, *shape), dtype=np.float32)
    rng = np.random.default_rng(seed + (1 if train else 2))
    y = rng.integers(0, nb_classes, n)
    x = 0.6 * templates[y] + 0.4 * rng.random((n, *shape), dtype=np.float32)
    return x.astype(np.float32), y.astype(np.int64)
