"""Input checks that fail early, before torch does, with a clear :class:`~art_he.errors.UserError` (a
``ValueError``) or ``TypeError``."""

from __future__ import annotations

import math
import os
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any, TypeVar, cast

import numpy as np
import numpy.typing as npt
import torch

from art_he.errors import MissingFileError, UserError

ArrayLike = npt.NDArray[Any] | torch.Tensor

T = TypeVar("T")


def check_number(name: str, value: T, *, low: float | None = None, strict: bool = False, integer: bool = False) -> T:
    """Check that ``value`` is a finite (integer) number ``>= low`` (``> low`` when ``strict``); return it."""
    kind = "an int" if integer else "a number"
    ok_type = isinstance(value, (int, np.integer)) if integer else isinstance(value, (int, float, np.number))
    if isinstance(value, bool) or not ok_type:
        raise TypeError(f"{name} must be {kind}, got {type(value).__name__}")
    number = cast(float, value)  # checked above: an int, a float or a numpy number
    if not math.isfinite(float(number)):
        raise UserError(f"{name} must be finite, got {value}")
    if low is not None and (number <= low if strict else number < low):
        raise UserError(f"{name} must be {'>' if strict else '>='} {low}, got {value}")
    return value


def check_choice(name: str, value: T, choices: Collection[object]) -> T:
    """Check that ``value`` is one of ``choices``; return it."""
    if value not in choices:
        raise UserError(f"unknown {name} {value!r}; choose from {tuple(choices)}")
    return value


def check_data_dir(data_dir: str | os.PathLike[str] | None) -> None:
    """A ``--data-dir`` must be an existing folder (``None``: the default data root, see ``art_he.data.layout``)."""
    if data_dir is not None and not Path(data_dir).is_dir():
        raise MissingFileError(f"data directory {data_dir} does not exist")


def check_probability(name: str, value: float) -> float:
    check_number(name, value, low=0.0)
    if value > 1:
        raise UserError(f"{name} must be in [0, 1], got {value}")
    return value


def labels_to_indices(y: ArrayLike, nb_classes: int) -> ArrayLike:
    """Accept integer labels (N,) or one-hot/probability labels (N, nb_classes); return integer labels."""
    if y.ndim == 2 and y.shape[1] == nb_classes:
        return y.argmax(1) if isinstance(y, torch.Tensor) else np.argmax(y, axis=1)
    if y.ndim != 1:
        raise UserError(f"labels must have shape (N,) or (N, {nb_classes}), got {tuple(y.shape)}")
    return y


def check_xy(x: ArrayLike, y: ArrayLike | None, input_shape: Sequence[int], nb_classes: int,
             name: str = "x") -> tuple[ArrayLike, ArrayLike | None]:
    """Validate a data set: array types, ``x.shape[1:] == input_shape``, no NaN/inf, same length as ``y``,
    integer labels in ``[0, nb_classes)``. Returns ``(x, y)`` with ``y`` as integer labels."""
    if not isinstance(x, (np.ndarray, torch.Tensor)):
        raise TypeError(f"{name} must be a numpy array or torch tensor, got {type(x).__name__}")
    if tuple(x.shape[1:]) != tuple(input_shape):
        raise UserError(f"{name} must have shape (N, {', '.join(map(str, input_shape))}), got {tuple(x.shape)}")
    if x.shape[0] == 0:
        raise UserError(f"{name} is empty")
    finite = torch.isfinite(x).all() if isinstance(x, torch.Tensor) else np.isfinite(x).all()
    if not bool(finite):
        raise UserError(f"{name} contains NaN or infinite values")
    if y is None:
        return x, None
    if not isinstance(y, (np.ndarray, torch.Tensor)):
        raise TypeError(f"labels must be a numpy array or torch tensor, got {type(y).__name__}")
    y = labels_to_indices(y, nb_classes)
    if len(y) != len(x):
        raise UserError(f"{name} and labels differ in length: {len(x)} != {len(y)}")
    is_int = not y.dtype.is_floating_point if isinstance(y, torch.Tensor) else np.issubdtype(y.dtype, np.integer)
    if not is_int:
        if not bool((y == y.round()).all()):
            raise UserError("labels must be integers (or one-hot rows)")
    low, high = int(y.min()), int(y.max())
    if low < 0 or high >= nb_classes:
        raise UserError(f"labels must be in [0, {nb_classes - 1}], got values in [{low}, {high}]")
    return x, y
