"""Learning-rate schedules of ``art-he train``, with an optional linear warm-up.

``multistep`` (x0.1 at 75 % and 90 % of the passes, the paper's 75/90 of 100), ``step`` (x0.1 every
:data:`STEP_EPOCHS` epochs of the budget, ResNet's ImageNet schedule as FreeAT's code applies it: every
``ceil(30 / m)`` passes), ``cosine``, ``constant`` (a scheduler that keeps the LR, so that no trainer substitutes
its own default) and ``cyclic`` (Wong et al.'s triangle per step, :func:`cyclic_scheduler`). ``warmup_steps > 0``
multiplies all but ``cyclic`` by ``min(1, (t + 1) / warmup_steps)`` at update ``t`` (Goyal et al., 2017):
:class:`WarmupLR`, stepped per batch.

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
from typing import cast

import torch

from art_he.errors import UserError
from art_he.validation import check_choice

#: the schedules' names (``art-he train --schedule``)
SCHEDULES = ("multistep", "step", "cosine", "cyclic", "constant")

#: ``step``: x0.1 every 30 epochs of the budget (Shafahi et al.'s ImageNet FreeAT code, ``lib/utils.py``, which the
#: authors' ImageNet code keeps: ``lr * 0.1 ** (epoch // ceil(30 / n_repeats))`` over passes)
STEP_EPOCHS = 30
#: the momentum range of Wong et al.'s ``CyclicLR`` (torch's defaults, which their code keeps): 0.9 at the ends of
#: the cycle, 0.8 at its peak
CYCLIC_MOMENTUM = (0.8, 0.9)


def multistep_milestones(epochs: int) -> list[int]:
    """The epochs after which ``multistep`` multiplies the LR by 0.1: 75 % and 90 % of ``epochs``."""
    return sorted({max(1, int(epochs * 0.75)), max(1, int(epochs * 0.9))} - {epochs})


def epoch_factor(name: str, epochs: int, step_every: int = STEP_EPOCHS) -> Callable[[int], float]:
    """``epoch -> LR / initial LR`` of the per-epoch schedules (the closed forms of the torch schedulers that
    :func:`make_scheduler` builds without a warm-up)."""
    if name == "step":
        return lambda epoch: 0.1 ** (epoch // step_every)
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
                 warmup_steps: int, step_every: int = STEP_EPOCHS) -> None:
        per_epoch = epoch_factor(name, epochs, step_every)
        steps_per_epoch, warmup_steps = max(1, steps_per_epoch), max(1, warmup_steps)

        def factor(t: int) -> float:
            return min(1.0, (t + 1) / warmup_steps) * per_epoch(t // steps_per_epoch)

        super().__init__(optimizer, factor)


#: the schedulers the trainers step after every batch (the others after every epoch)
PER_BATCH = (torch.optim.lr_scheduler.OneCycleLR, torch.optim.lr_scheduler.CyclicLR, WarmupLR)


def cyclic_scheduler(optimizer: torch.optim.Optimizer, total_steps: int) -> torch.optim.lr_scheduler.CyclicLR:
    """Wong et al.'s cycle (``train_fgsm.py``/``train_free.py``): the LR rises linearly from 0 to each group's
    ``lr`` over the first half of the ``total_steps`` updates and falls back to 0 over the second half (torch's
    ``CyclicLR`` with ``base_lr=0`` and ``step_size_up = step_size_down = total/2``, as they build it). With their
    momentum of 0.9 the momentum cycles inversely, 0.9 -> 0.8 -> 0.9 (:data:`CYCLIC_MOMENTUM`, ``CyclicLR``'s
    defaults); any other momentum stays constant."""
    total_steps = max(1, total_steps)
    momenta = {g.get("momentum") for g in optimizer.param_groups}
    cycle_momentum = momenta == {CYCLIC_MOMENTUM[1]}
    half = cast(int, total_steps / 2)  # torch annotates an int but computes with float(): an odd total keeps its .5
    return torch.optim.lr_scheduler.CyclicLR(
        optimizer, base_lr=0.0, max_lr=[g["lr"] for g in optimizer.param_groups], step_size_up=half,
        step_size_down=half, cycle_momentum=cycle_momentum, base_momentum=CYCLIC_MOMENTUM[0],
        max_momentum=CYCLIC_MOMENTUM[1],
    )


def make_scheduler(name: str, optimizer: torch.optim.Optimizer, epochs: int, steps_per_epoch: int,
                   warmup_steps: int = 0, step_every: int = STEP_EPOCHS) -> torch.optim.lr_scheduler.LRScheduler:
    """The scheduler ``name`` for ``epochs`` passes of ``steps_per_epoch`` updates, from the optimizer's LR;
    with ``warmup_steps > 0`` a :class:`WarmupLR` (stepped per batch) instead of the per-epoch torch scheduler.
    ``step_every``: the passes between two x0.1 of ``step`` (the framework's passes for :data:`STEP_EPOCHS`)."""
    check_choice("schedule", name, SCHEDULES)
    if warmup_steps > 0:
        return WarmupLR(optimizer, name, epochs, steps_per_epoch, warmup_steps, step_every)
    if name == "multistep":
        return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=multistep_milestones(epochs), gamma=0.1)
    if name == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=max(1, step_every), gamma=0.1)
    if name == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    if name == "cyclic":
        return cyclic_scheduler(optimizer, epochs * steps_per_epoch)
    return torch.optim.lr_scheduler.ConstantLR(optimizer, factor=1.0, total_iters=0)
