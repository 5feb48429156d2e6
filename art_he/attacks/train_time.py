"""Train-time Linf attacks in pure torch: the whole loop stays on the model's device.

Each takes ``loss_fn(outputs, target) -> per-batch scalar`` to *maximise*, so the same code serves
PGD-AT (``CE(s*cos, y)``), ALP and TRADES (KL to the natural prediction). Input gradients are taken with
``torch.autograd.grad`` on the input only, so no parameter gradient is accumulated during the attack.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext

import torch

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
#: what is attacked: a module, or a function of the inputs (a trainer's forward)
Model = Callable[[torch.Tensor], torch.Tensor]
#: a box ``(low, high)``: numbers, or tensors that broadcast against the images
Clip = tuple[float, float] | tuple[torch.Tensor, torch.Tensor]


def _input_grad(model: Model, x_adv: torch.Tensor, target: torch.Tensor, loss_fn: LossFn,
                autocast: AbstractContextManager[object]) -> torch.Tensor:
    x_adv = x_adv.detach().requires_grad_(True)
    with autocast:
        loss = loss_fn(model(x_adv), target)
    (grad,) = torch.autograd.grad(loss, x_adv)
    return grad


def project(x_adv: torch.Tensor, x: torch.Tensor, eps: float, clip: Clip | None) -> torch.Tensor:
    """``clip(min(max(x_adv, x - eps), x + eps), box)``: the Linf ball of radius ``eps`` around ``x`` intersected
    with the box ``clip = (low, high)`` (numbers or tensors; ``None``: no box)."""
    out = torch.min(torch.max(x_adv, x - eps), x + eps)
    return out if clip is None else out.clamp_(*clip)


def pgd(
    model: Model,
    x: torch.Tensor,
    target: torch.Tensor,
    loss_fn: LossFn,
    *,
    eps: float,
    eps_step: float,
    max_iter: int,
    random_init: str | None = "uniform",
    clip: tuple[float, float] = (0.0, 1.0),
    autocast: AbstractContextManager[object] | None = None,
    generator: torch.Generator | None = None,
    noise: torch.Tensor | None = None,
) -> torch.Tensor:
    """Linf PGD (Madry et al.): ``x_{k+1} = Proj(x_k + eps_step * sign(grad loss))``.

    ``random_init``: ``"uniform"`` in the eps-ball, ``"normal"`` as TRADES (``0.001 * N(0, 1)``) or ``None``.
    ``noise``: the start's raw draw shaped like ``x`` (``U[0, 1)`` or ``N(0, 1)``), else drawn from ``generator``.
    """
    autocast = autocast or nullcontext()
    x = x.detach()
    if random_init == "uniform":
        if noise is None:
            noise = torch.rand(x.shape, device=x.device, dtype=x.dtype, generator=generator)
        x_adv = project(x + eps * (2 * noise - 1), x, eps, clip)
    elif random_init == "normal":
        if noise is None:
            noise = torch.randn(x.shape, device=x.device, dtype=x.dtype, generator=generator)
        x_adv = project(x + 0.001 * noise, x, eps, clip)
    elif random_init is None:
        x_adv = x.clone()
    else:
        raise ValueError(f"unknown random_init {random_init!r}")
    low, high = x - eps, x + eps  # the ball's bounds, computed once: the values project() computes every step
    for _ in range(max_iter):
        grad = _input_grad(model, x_adv, target, loss_fn, autocast)
        # x_adv + eps_step * sign(grad) in one kernel: eps_step * (-1, 0 or 1) is exact, so the sum is the same
        x_adv = torch.min(torch.max(torch.add(x_adv.detach(), grad.sign(), alpha=eps_step), low), high)
        x_adv = x_adv if clip is None else x_adv.clamp_(*clip)
    return x_adv.detach()
