"""Per-epoch training checkpoints, written atomically and loadable with ``torch.load(weights_only=True)``.

A checkpoint is one ``torch.save`` dict of tensors and plain types: model, optimizer, scheduler, grad scaler,
the RNG states of every rank (torch CPU and CUDA, numpy, python, the trainer's generator), the epoch and the
metrics history. It is written to a temporary file in the same folder, flushed to disk, then renamed over
the previous one (``os.replace``), so a process killed at any moment leaves either the old or the new
checkpoint, never a torn one.
"""

from __future__ import annotations

import os
import pickle
import random
import zipfile
from pathlib import Path
from typing import Any, BinaryIO, cast

import numpy as np
import numpy.typing as npt
import torch

from art_he.atomic import write_atomic
from art_he.errors import UserError

CHECKPOINT_FILE = "checkpoint.pt"
FORMAT = 1


def checkpoint_path(checkpoint_dir: str | os.PathLike[str]) -> Path:
    return Path(checkpoint_dir) / CHECKPOINT_FILE


def save_checkpoint(path: str | os.PathLike[str], state: dict[str, Any]) -> Path:
    """Write ``state`` to ``path`` atomically (:func:`~art_he.atomic.write_atomic`); a failed write (disk full)
    raises a one-line :class:`~art_he.errors.UserError` and leaves the previous checkpoint as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)

    def write(f: BinaryIO) -> None:
        recording = _RecordingWriter(f)
        try:
            torch.save(state, recording)  # type: ignore[arg-type]  # torch.save takes any object with write and flush
        except RuntimeError:
            # torch's zip writer reports a failed f.write (ENOSPC) as "unexpected pos ...": give back the OSError
            if recording.error is not None:
                raise recording.error from None
            raise

    return write_atomic(path, write)


class _RecordingWriter:
    """A file's ``write`` and ``flush``, remembering the ``OSError`` a write raised."""

    f: BinaryIO
    error: OSError | None

    def __init__(self, f: BinaryIO) -> None:
        self.f, self.error = f, None

    def write(self, data: bytes | memoryview) -> int:
        try:
            return self.f.write(data)
        except OSError as error:
            self.error = error
            raise

    def flush(self) -> None:
        self.f.flush()


def load_checkpoint(path: str | os.PathLike[str], map_location: str | torch.device = "cpu", *,
                    mmap: bool = False) -> dict[str, Any] | None:
    """The checkpoint at ``path`` (``None`` if there is none), loaded with ``weights_only=True``.

    ``mmap=True`` maps the tensors instead of reading them (a cheap look at the epoch and metadata). A truncated,
    corrupt or foreign file raises :class:`~art_he.errors.UserError` naming the file; torch's own message is not
    relayed, since it suggests ``weights_only=False``, which would run arbitrary code from the file.
    """
    path = Path(path)
    if not path.is_file():
        return None
    try:
        state = torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)
    except (RuntimeError, pickle.UnpicklingError, EOFError, zipfile.BadZipFile, OSError) as error:
        raise UserError(f"{path} is damaged or not a checkpoint art_he wrote ({type(error).__name__}); "
                        "delete it, or start the run afresh") from error
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise UserError(f"{path} is not an art_he training checkpoint (format {FORMAT})")
    return state


def rng_state(generator: torch.Generator | None = None) -> dict[str, Any]:
    """Every RNG a training step touches, as tensors and plain types."""
    # the legacy tuple: legacy=True is the default (numpy's stubs type the call without it as legacy=False's dict)
    kind, keys, pos, has_gauss, cached = cast("tuple[str, npt.NDArray[np.uint32], int, int, float]",
                                              np.random.get_state())
    version, internal, gauss_next = random.getstate()
    cuda = torch.cuda.is_initialized()  # type: ignore[no-untyped-call]  # torch leaves it unannotated
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "cuda": list(torch.cuda.get_rng_state_all()) if cuda else [],
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached": float(cached)},
        "python": {"version": version, "state": torch.tensor(internal, dtype=torch.int64), "gauss": gauss_next},
    }
    if generator is not None:
        state["generator"] = generator.get_state()
    return state


def set_rng_state(state: dict[str, Any], generator: torch.Generator | None = None) -> None:
    """Restore what :func:`rng_state` saved."""
    torch.set_rng_state(state["torch"].cpu())
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    p = state["python"]
    random.setstate((p["version"], tuple(int(v) for v in p["state"].tolist()), p["gauss"]))
    if generator is not None and "generator" in state:
        generator.set_state(state["generator"].cpu())
