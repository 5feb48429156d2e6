""".npy files checked from their header before they are read: dtype, shape and size, one line naming the file.

``np.load`` reads them with ``allow_pickle=False`` (numpy's default, never changed in art_he), so an object array
cannot run code; this check turns such a file, a wrong dtype or shape, or a truncated file into a one-line
:class:`~art_he.errors.UserError` instead of a traceback from deep inside a loader.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from art_he.errors import UserError

_HEADER_READERS = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}


def check_npy(path: str | os.PathLike[str], kinds: str, shape: tuple[int | None, ...],
              expected: str) -> tuple[int, ...]:
    """The shape of the array in ``path`` after checking that its dtype kind is one of ``kinds`` (``"u"``,
    ``"iu"``), that it matches ``shape`` (``None``: any length) and that the file holds all its bytes;
    ``expected`` describes the right content in the error."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            if version not in _HEADER_READERS:
                raise ValueError(f"npy format version {version[0]}.{version[1]}")
            found, _, dtype = _HEADER_READERS[version](f)
            offset = f.tell()
    except (ValueError, OSError, SyntaxError) as error:
        raise UserError(f"{path} is not a readable .npy file ({' '.join(str(error).split())[:150]}); expected "
                        f"{expected}") from None
    if dtype.hasobject:
        raise UserError(f"{path} holds Python objects (a pickle), which art_he never loads; expected {expected}")
    if dtype.kind not in kinds or len(found) != len(shape) or any(w is not None and w != s
                                                                   for w, s in zip(shape, found)):
        raise UserError(f"{path} holds {dtype} {tuple(found)}; expected {expected}")
    size, needed = path.stat().st_size, offset + math.prod(found) * dtype.itemsize
    if size < needed:
        raise UserError(f"{path} is truncated: {size:,} bytes of {needed:,}")
    return tuple(found)
