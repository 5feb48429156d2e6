"""CIFAR-10/100 python batches read without running code, and checked before use.

The batches are pickles, and a pickle can name any importable function to call. :func:`read_pickle` resolves
only what genuine files and re-packed copies need: numpy's array reconstruction (``_reconstruct``, and
``_frombuffer`` of protocol 5), ``ndarray``, ``dtype``, numpy scalars and ``_codecs.encode`` to latin-1 (how
Python 3 writes ``bytes`` at protocol 2). Dicts, lists, tuples, strings and numbers need no global at all.
Anything else is refused before it is resolved, so nothing in the file runs, with one line naming the file and
the global. :func:`read_batch` and :func:`read_label_names` then check what the file holds.
"""

from __future__ import annotations

import codecs
import os
import pickle
from pathlib import Path
from typing import BinaryIO

import numpy as np
import numpy.typing as npt

from art_he.errors import UserError

ROW = 3 * 32 * 32


def _numpy_globals() -> dict[tuple[str, str], object]:
    try:  # numpy >= 2 keeps its internals in numpy._core; files name numpy.core (numpy 1) or numpy._core
        from numpy._core import multiarray, numeric
    except ImportError:  # numpy 1.x
        from numpy.core import multiarray, numeric  # type: ignore[no-redef]
    found = {}
    for package in ("numpy.core", "numpy._core"):
        found[(f"{package}.multiarray", "_reconstruct")] = multiarray._reconstruct
        found[(f"{package}.multiarray", "scalar")] = multiarray.scalar
        found[(f"{package}.numeric", "_frombuffer")] = numeric._frombuffer  # type: ignore[attr-defined]  # private: absent from numpy's stubs
    return {**found, ("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype}


def _latin1_encode(text: str, encoding: str = "utf-8") -> bytes:
    """``_codecs.encode`` as protocol-2 pickles of ``bytes`` call it, and only that way."""
    if encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError(f"_codecs.encode to {encoding!r} (only latin1 is allowed)")
    return codecs.encode(text, "latin1")


class _Unpickler(pickle.Unpickler):
    def __init__(self, file: BinaryIO, path: Path) -> None:
        super().__init__(file, encoding="latin1")  # Python 2 strings of the official release
        self.path = path
        self.allowed = {**_numpy_globals(), ("_codecs", "encode"): _latin1_encode}

    def find_class(self, module: str, name: str) -> object:
        found = self.allowed.get((module, name))
        if found is None:
            raise UserError(f"{self.path}: refused to load: it asks for the Python global {module}.{name}, which a "
                            "CIFAR batch never needs (only numpy arrays, dtypes and builtin containers are "
                            "allowed); nothing from the file was run")
        return found


def read_pickle(path: str | os.PathLike[str]) -> object:
    """The object in the pickle at ``path``, unpickled with the allow-list of the module docstring.

    A refused global or a damaged file raises :class:`~art_he.errors.UserError` naming the file."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            return _Unpickler(f, path).load()
    except UserError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError,
            UnicodeDecodeError, OverflowError, MemoryError) as error:  # what a truncated or foreign file raises
        reason = " ".join(str(error).split())[:200] or "no detail"
        raise UserError(f"{path} is truncated or not a CIFAR pickle ({type(error).__name__}: {reason})") from None


def read_batch(path: str | os.PathLike[str], nb_classes: int) -> tuple[npt.NDArray[np.uint8], list[int]]:
    """``(data uint8 (N, 3072), labels)`` of one batch (``labels``, or CIFAR-100's ``fine_labels``), checked."""
    path = Path(path)
    entry = read_pickle(path)
    if not isinstance(entry, dict):
        raise UserError(f"{path} is not a CIFAR batch: it holds a {type(entry).__name__}, not a dict")
    if "data" not in entry:
        raise UserError(f"{path} is not a CIFAR batch: it has no 'data' key (keys: {sorted(map(str, entry))})")
    data = entry["data"]
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != ROW:
        held = (f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__)
        raise UserError(f"{path}: 'data' is {held}; a CIFAR batch holds uint8 rows of 3 * 32 * 32 values "
                        f"(N, {ROW})")
    key = "labels" if "labels" in entry else "fine_labels"
    if key not in entry:
        raise UserError(f"{path} is not a CIFAR batch: it has no 'labels' (CIFAR-10) or 'fine_labels' (CIFAR-100) "
                        "key")
    labels = entry[key]
    if isinstance(labels, np.ndarray) and labels.ndim == 1 and labels.dtype.kind in "iu":
        labels = labels.tolist()
    if not isinstance(labels, (list, tuple)) or not all(_is_int(v) for v in labels):
        raise UserError(f"{path}: '{key}' must be a list of integers, got {_describe(labels)}")
    labels = [int(v) for v in labels]
    if len(labels) != len(data):
        raise UserError(f"{path}: {len(labels)} '{key}' for {len(data)} images")
    bad = next((v for v in labels if not 0 <= v < nb_classes), None)
    if bad is not None:
        raise UserError(f"{path}: label {bad} in '{key}' is out of range (0 to {nb_classes - 1})")
    return data, labels


def read_label_names(path: str | os.PathLike[str], key: str) -> list[str]:
    """The class names under ``key`` of a meta file (``batches.meta``, ``meta``), checked."""
    path = Path(path)
    meta = read_pickle(path)
    names = meta.get(key) if isinstance(meta, dict) else None
    if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) for n in names):
        raise UserError(f"{path} is not a CIFAR meta file: no list of class names under '{key}'")
    return list(names)


def _is_int(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _describe(value: object) -> str:
    if isinstance(value, (list, tuple)):
        odd = next((v for v in value if not _is_int(v)), None)
        return f"a {type(value).__name__} holding a {type(odd).__name__}"
    return f"a {type(value).__name__}"
