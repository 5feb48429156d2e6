"""Where art_he computes: the one parser of device strings, and the one place ART estimators are put on a device.

Every ``device`` argument and ``--device`` flag (``load_run``, ``HEPyTorchClassifier(device=...)``, the zoo,
``art-he train/eval/plot``, ``init_distributed``) goes through :func:`parse_device`, which accepts ``"cpu"``,
``"cuda"`` (the current CUDA device), ``"cuda:N"``, ``"gpu"`` (ART's name for CUDA), a ``torch.device``, and
``None`` or ``"auto"``: ``$ART_HE_DEVICE`` when set, else CUDA when available, else the CPU. A device that is not
there is a one-line :class:`~art_he.errors.UserError`, never a silent fall-back to the CPU.

ART's estimators take only ``device_type="cpu"|"gpu"`` and put a ``"gpu"`` estimator (and its preprocessing) on
``torch.cuda.current_device()``; :func:`art_current` makes that the wanted device while one is built, so that
``cuda:1`` means ``cuda:1``. torch is imported on first use, so that command-line parsers can import
:data:`DEVICE_HELP` without it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

from art_he.errors import UserError

if TYPE_CHECKING:
    import torch

#: the default device of every art_he object when set (``cpu``, ``cuda``, ``cuda:N``); the test suite sets ``cpu``
DEVICE_ENV = "ART_HE_DEVICE"
DEVICE_HELP = "cpu, cuda, cuda:N or gpu (default: $ART_HE_DEVICE, else CUDA when available)"
_CHOICES = "'cpu', 'cuda', 'cuda:N', 'gpu' or 'auto'"


def parse_device(device: str | torch.device | None = None) -> torch.device:
    """The ``torch.device`` named by ``device`` (see the module docstring); CUDA devices always carry their index."""
    import torch

    if device is None or (isinstance(device, str) and device.strip().lower() == "auto"):
        name = os.environ.get(DEVICE_ENV, "").strip()
        if name and name.lower() != "auto":
            try:
                return parse_device(name)
            except UserError as error:
                raise UserError(f"${DEVICE_ENV}: {error}") from None
        return parse_device("cuda") if torch.cuda.is_available() else torch.device("cpu")
    if not isinstance(device, (str, torch.device)):
        raise TypeError(f"device must be a string or a torch.device, got {type(device).__name__}")
    name = str(device).strip().lower()
    try:
        parsed = torch.device("cuda" + name[3:] if name.startswith("gpu") else name)
    except RuntimeError:
        raise UserError(f"unknown device {device!r}; use {_CHOICES}") from None
    if parsed.type == "cpu":
        return torch.device("cpu")
    if parsed.type != "cuda":
        raise UserError(f"device {device!r} is not supported; use {_CHOICES}")
    if not torch.cuda.is_available():
        build = "a CPU-only build" if torch.version.cuda is None else f"built for CUDA {torch.version.cuda}"
        raise UserError(f"device {device!r} asked for, but CUDA is not available here (torch {torch.__version__}, "
                        f"{build}); use device 'cpu'")
    count = torch.cuda.device_count()
    index = torch.cuda.current_device() if parsed.index is None else parsed.index
    if index >= count:
        raise UserError(f"device {device!r} asked for, but {count} CUDA device{'s' if count > 1 else ''} "
                        f"{'are' if count > 1 else 'is'} visible (cuda:0 to cuda:{count - 1})")
    return torch.device("cuda", index)


def art_device_type(device: torch.device) -> str:
    """ART's ``device_type`` for ``device``: ``"cpu"`` or ``"gpu"``."""
    return "cpu" if device.type == "cpu" else "gpu"


@contextmanager
def art_current(device: torch.device | None) -> Iterator[None]:
    """Make ``device`` CUDA's current device while an ART estimator is built on it (no-op for the CPU or ``None``)."""
    import torch

    if device is not None and device.type == "cuda":
        with torch.cuda.device(device):
            yield
    else:
        yield


_E = TypeVar("_E")


def art_estimator(cls: Callable[..., _E], *args: Any, device: str | torch.device | None = None, **kwargs: Any) -> _E:
    """``cls(*args, **kwargs)`` (an ART PyTorch estimator class) built on ``device`` (:func:`parse_device`)."""
    dev = parse_device(device)
    with art_current(dev):
        return cls(*args, device_type=art_device_type(dev), **kwargs)
