"""What the epoch loop checks after every batch: a non-finite loss or parameter, a stop signal, a periodic
checkpoint that is due.

After batch ``i`` the loop hands :meth:`BatchWatch.push` the batch's loss; the watch computes, on the device,
whether the loss and each parameter are finite (one fused max-abs per parameter: no overflow, NaN and inf
propagate), adds two host bits (a SIGTERM/SIGUSR1 arrived; ``checkpoint_every`` has elapsed), sums the flags
over the ranks under DDP and copies them to the host without waiting. It reads them one batch late, after batch
``i + 1`` has been queued, so the host never waits for the batch the device is computing (no sync in the step);
the flags name their own batch, so a divergence is reported at the batch where it happened. :meth:`flush`
reads the last batch's flags at once: the loop calls it before anything is saved, so no checkpoint ever holds
non-finite weights. All ranks see the same summed flags, so they stop, or checkpoint, after the same batch.
"""

from __future__ import annotations

import math
import signal
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

import torch

from art_he.errors import TrainingDiverged
from art_he.trainers import distributed

#: the signals that stop training after the current batch with a checkpoint (SLURM's warning signal is SIGUSR1)
STOP_SIGNALS = (signal.SIGTERM, signal.SIGUSR1)
#: a signal handler as ``signal.signal`` takes and returns it
_Handler = Callable[[int, FrameType | None], Any] | int | signal.Handlers | None
#: a pushed batch whose flags are not read yet: epoch, batch, the flags on the host and the event of their copy
_Pending = tuple[int, int, torch.Tensor, torch.cuda.Event | None]


class BatchWatch:
    """Per-batch checks of one ``fit`` (see the module docstring).

    :param model: whose parameters are checked.
    :param dist: the trainer's :class:`~art_he.trainers.distributed.DistContext`.
    :param checkpoint_every_s: seconds between periodic mid-epoch checkpoints (``None``: none).
    :param kept: what a divergence leaves behind, for the message (e.g. the checkpoint's path).
    """

    def __init__(self, model: torch.nn.Module, dist: distributed.DistContext, device: torch.device, *,
                 checkpoint_every_s: float | None = None, kept: str = "") -> None:
        named = list(model.named_parameters())
        self.names = [name for name, _ in named]
        self.params: list[torch.Tensor] = [p for _, p in named]
        self.dist, self.device, self.kept = dist, device, kept
        self.every_s = checkpoint_every_s
        self.last_save = time.monotonic()
        #: the signal this process received (set by the handler)
        self.signal: int | None = None
        #: agreed over the ranks: stop after the current batch (sticky), or write a periodic checkpoint now
        self.stop = self.due = False
        self._bits = {(s, d): torch.tensor([s, d], dtype=torch.float32, device=device)
                      for s in (False, True) for d in (False, True)}
        self._pending: _Pending | None = None
        self._previous: dict[signal.Signals, _Handler] = {}

    def catch_signals(self) -> None:
        """From now on SIGTERM and SIGUSR1 only set :attr:`signal` (main thread only; elsewhere a no-op)."""
        if threading.current_thread() is threading.main_thread():
            self._previous = {sig: signal.signal(sig, self._on_signal) for sig in STOP_SIGNALS}

    def release_signals(self) -> None:
        """Put back the handlers :meth:`catch_signals` replaced."""
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.signal = signum

    def push(self, epoch: int, batch: int, loss: torch.Tensor) -> None:
        """Record batch ``batch`` (0-based) of ``epoch`` (0-based) and read the previous batch's flags."""
        due = self.every_s is not None and time.monotonic() - self.last_save >= self.every_s
        # max |p| of each parameter in one fused kernel on CUDA (the private op torch's clip_grad_norm_ uses; the
        # inf-norm cannot overflow, and NaN and inf propagate into it)
        norms = torch._foreach_norm(self.params, math.inf)
        flags = torch.cat([(~torch.isfinite(loss.detach())).reshape(1).float(),
                           (~torch.isfinite(torch.stack(norms))).float(),
                           self._bits[self.signal is not None, due]])
        distributed.all_reduce_sum(flags, self.dist)
        event = None
        if flags.device.type == "cuda":  # read without draining the queue: a pinned copy and an event
            host = flags.to("cpu", non_blocking=True)
            event = torch.cuda.Event()  # type: ignore[no-untyped-call]  # torch leaves it unannotated
            event.record()
        else:
            host = flags
        previous, self._pending = self._pending, (epoch, batch, host, event)
        if previous is not None:
            self._read(previous)

    def flush(self) -> None:
        """Read the last pushed batch's flags now (before a checkpoint, at the end of an epoch)."""
        previous, self._pending = self._pending, None
        if previous is not None:
            self._read(previous)

    def saved(self) -> None:
        """A checkpoint was written: the periodic timer starts again."""
        self.last_save = time.monotonic()
        self.due = False

    def _read(self, pending: _Pending) -> None:
        epoch, batch, host, event = pending
        if event is not None:
            event.synchronize()
        values = host.tolist()
        params = [name for name, v in zip(self.names, values[1:-2]) if v]
        if values[0] or params:
            raise TrainingDiverged(f"training diverged at epoch {epoch + 1}, batch {batch + 1}: "
                                   f"{_quantities(bool(values[0]), params)} not finite, so training stopped there"
                                   f"{self.kept}; lower the learning rate (--lr)")
        self.stop = self.stop or bool(values[-2])
        self.due = self.due or bool(values[-1])

    def signal_name(self) -> str:
        """The stop signal's name, or that another rank received it."""
        return signal.Signals(self.signal).name if self.signal is not None else "a signal to another rank"


def _quantities(loss: bool, params: list[str]) -> str:
    """``"the loss is"``, ``"parameter w is"``, ``"the loss and 3 parameters (w, ...) are"``."""
    named = [] if not params else [f"parameter {params[0]}" if len(params) == 1 else
                                   f"{len(params)} parameters ({params[0]}, ...)"]
    items = ["the loss"] * loss + named
    return " and ".join(items) + (" is" if len(items) == 1 and (loss or len(params) == 1) else " are")
