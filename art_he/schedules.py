"""Learning-rate schedules of ``art-he train``, with an optional linear warm-up.

``multistep`` (x0.1 at 75 % and 90 % of the passes, the paper's 75/90 of 100), ``cosine``, ``constant`` (a
scheduler that keeps the LR, so that no trainer substitutes its own default) and ``cyclic`` (FastAT's one-cycle
triangle per step). ``warmup_steps > 0`` multiplies the first three by ``min(1, (t + 1) / warmup_steps)`` at
update ``t`` (Goyal et al., 2017): :class:`WarmupLR`, stepped per batch.

Why a warm-up exists here: HE's loss ``CE(s * (cos - m * onehot(y)), y)`` has gradients ``s`` times those of
the cosines, and every weight in front of FN, WN or BatchNorm is scale-invariant. At ``s = 15`` the first SGD
steps are so large that those weights' norms inflate (the HE head's ``||W||`` grows about fivefold in 25 steps on
Fashion-MNIST, a plain head's by half), which lowers their effective LR ``lr / ||w||^2`` until weight decay
shrinks them again; meanwhile HE trails plain. ``benchmarks/study_convergence.py`` measures it.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable

import torch

from art_he.config import SCHEDULES
from art_he.errors import UserError


def multistep_milestones(epochs: int) -> list[int]:
    """The epochs after which ``multistep`` multiplies the LR by 0.1: 75 % and 90 % of ``epochs``."""
    return sorted({max(1, int(epochs * 0.75)), max(1, int(epochs * 0.9))} - {epochs})


def epoch_factor(name: str, epochs: int) -> Callable[[int], float]:
    """``epoch -> LR / initial LR`` of the per-epoch schedules (the closed forms of the torch schedulers that
    :func:`make_scheduler` builds without a warm-up)."""
    if name == "multistep":
        milestones = multistep_milestones(epochs)
        return lambda epoch: 0.1 ** bisect.bisect_right(milestones, epoch)
    if name == "cosine":
        return lambda epoch: 0.5 * (1.0 + math.cos(math.pi * min(epoch, epochs) / epochs))
    if name == "constant":
        return lambda epoch: 1.0
    raise UserError(f"schedule {name!r} has no warm-up: the cyclic schedule ramps up by itself")


class WarmupLR(torch.optim.lr_scheduler.LambdaLR):
    """Per-batch LR: ``lr * min(1, (t + 1) / warmup_steps) * epoch_factor(t // steps_per_epoch)`` at update ``t``."""

    def __init__(self, optimizer: torch.optim.Optimizer, name: str, epochs: int, steps_per_epoch: int,
                 warmup_steps: int) -> None:
        per_epoch = epoch_factor(name, epochs)
        steps_per_epoch, warmup_steps = max(1, steps_per_epoch), max(1, warmup_steps)

        def factor(t: int) -> float:
            return min(1.0, (t + 1) / warmup_steps) * per_epoch(t // steps_per_epoch)

        super().__init__(optimizer, factor)


def make_scheduler(name: str, optimizer: torch.optim.Optimizer, epochs: int, steps_per_epoch: int, lr: float,
                   warmup_steps: int = 0):
    """The scheduler ``name`` for ``epochs`` passes of ``steps_per_epoch`` updates, peaking at ``lr``; with
    ``warmup_steps > 0`` a :class:`WarmupLR` (stepped per batch) instead of the per-epoch torch scheduler."""
    if name not in SCHEDULES:
        raise UserError(f"unknown schedule {name!r}; choose from {SCHEDULES}")
    if warmup_steps > 0:
        return WarmupLR(optimizer, name, epochs, steps_per_epoch, warmup_steps)
    if name == "multistep":
        return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=multistep_milestones(epochs), gamma=0.1)
    if name == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    if name == "cyclic":
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=lr, total_steps=epochs * steps_per_epoch, pct_start=0.4, anneal_strategy="linear",
            cycle_momentum=False,
        )
    return torch.optim.lr_scheduler.ConstantLR(optimizer, factor=1.0, total_iters=0)
