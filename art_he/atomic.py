"""Files written whole or not at all: a temporary file in the same folder, flushed to disk, renamed over the old one.

A process killed at any moment leaves the old file or the new one, never a torn one. A write that fails (disk
full, quota, permissions) leaves the old file too, and is reported as one line naming the file.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from art_he.errors import UserError


def write_atomic(path: str | os.PathLike[str], write: Callable[[BinaryIO], object]) -> Path:
    """Write ``path`` with ``write(f)`` on a temporary file, ``fsync`` it and rename it over ``path``.

    An ``OSError`` on the way (ENOSPC, EDQUOT, EACCES...) becomes a :class:`~art_he.errors.UserError` naming the
    file; ``path`` is then unchanged and the temporary file removed."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as error:
        code = f", {errno.errorcode.get(error.errno, error.errno)}" if error.errno else ""
        raise UserError(f"could not write {path} ({error.strerror or error}{code}); {path.name} is left as it was: "
                        "make room or fix the folder, then continue the run with --resume") from error
    finally:
        tmp.unlink(missing_ok=True)
    _sync_folder(path.parent)
    return path


def _sync_folder(folder: Path) -> None:
    """Make a rename durable (``fsync`` of the folder; not every file system allows it)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
