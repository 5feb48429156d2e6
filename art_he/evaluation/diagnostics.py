"""The mechanisms of Sec. 3 of the paper measured on a model: feature norms, angles, weight norms, input gradients.

:func:`he_diagnostics` computes, for clean inputs ``x`` and adversarial ones (given, or crafted with the project's
PGD, :func:`art_he.attacks.pgd`, on the model's margin-free attack loss as in training):

* ``feature_norm_clean`` / ``feature_norm_adv``: ``||z||`` of the features ``z`` entering the final layer (the
  :class:`~art_he.heads.HypersphereHead` or the last ``nn.Linear``, read by a forward hook on that layer);
* ``cos_y_clean`` / ``cos_y_adv``: ``cos(theta_y) = z . W_y / (||z|| ||W_y||)``, the cosine to the true class's
  weight, computed the same way for a plain head (bias left out) and an HE head (where it is the head's output at
  ``y``), so both are comparable;
* ``weight_norm``: ``||W_l||`` of each class ``l`` (L,);
* ``grad_norm_clean`` / ``grad_norm_adv``: the L2 norm of the input gradient of the model's training objective
  (:func:`art_he.heads.objective_of`: CE on the logits for a plain head, ``CE_m`` with scale and margin for HE)
  per input, and ``grad_ratio = grad_norm_adv / grad_norm_clean`` (the paper's Fig. 3; ``inf`` where the clean
  gradient underflows to 0);
* ``correct_clean`` / ``correct_adv`` (bool), ``y``, and ``eps`` (0-d; NaN when ``x_adv`` was given).

:func:`art_he.plots.diagnostics_figure` draws them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from art_he.defaults import pgd_step
from art_he.errors import UserError
from art_he.validation import check_number

if TYPE_CHECKING:
    import torch
    from torch import nn

KEYS = ("feature_norm_clean", "feature_norm_adv", "cos_y_clean", "cos_y_adv", "weight_norm", "grad_norm_clean",
        "grad_norm_adv", "grad_ratio", "correct_clean", "correct_adv", "y", "eps")


def _module(model: object) -> nn.Module:
    from torch import nn

    if isinstance(model, nn.Module):
        return model
    inner = getattr(model, "model", None)  # an ART classifier
    if isinstance(inner, nn.Module):
        return inner
    raise UserError(f"he_diagnostics needs a torch.nn.Module or an ART PyTorch classifier, got {type(model).__name__}")


def he_diagnostics(model: object, x: npt.ArrayLike | torch.Tensor, y: npt.ArrayLike | torch.Tensor,
                   x_adv: npt.ArrayLike | torch.Tensor | None = None, *, eps: float | None = None,
                   eps_step: float | None = None, steps: int = 10, batch_size: int = 256,
                   seed: int = 0) -> dict[str, np.ndarray]:
    """The HE diagnostics of ``model`` on ``(x, y)`` (see the module docstring for the keys).

    ``x``: images (N, C, H, W) in [0, 1] (numpy or torch), ``y``: class indices (N,). ``x_adv``: adversarial
    versions of ``x``; without it, Linf PGD with ``eps`` (required then), ``eps_step`` (default ``eps / 4``, the
    training attack's), ``steps`` iterations and a uniform random start seeded by ``seed``. ``model``: a
    ``torch.nn.Module`` (or an ART classifier, whose ``.model`` is used) returning logits or HE cosines; it is
    evaluated in eval mode and left in the mode it was in.
    """
    import torch

    from art_he.attacks import pgd
    from art_he.evaluation.views import penultimate_layer
    from art_he.heads import normalize_rows, objective_of

    module = _module(model)
    layer = penultimate_layer(module)
    objective = objective_of(module)
    try:
        param = next(module.parameters())
        device = param.device
    except StopIteration:
        device = torch.device("cpu")
    x_t = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x).float()
    y_t = torch.as_tensor(np.asarray(y) if not isinstance(y, torch.Tensor) else y).long().reshape(-1)
    if len(x_t) != len(y_t) or len(x_t) == 0:
        raise UserError(f"he_diagnostics needs as many labels as images (at least one), got {len(x_t)} images and "
                        f"{len(y_t)} labels")
    if x_adv is not None:
        xa_t = torch.as_tensor(np.asarray(x_adv) if not isinstance(x_adv, torch.Tensor) else x_adv).float()
        if xa_t.shape != x_t.shape:
            raise UserError(f"x_adv has shape {tuple(xa_t.shape)}, x has {tuple(x_t.shape)}")
    elif eps is None:
        raise UserError("he_diagnostics needs x_adv or eps (the Linf radius of the PGD that crafts them)")
    else:
        check_number("eps", eps, low=0.0, strict=True)
    check_number("steps", steps, low=1, integer=True)

    captured: list[torch.Tensor] = []
    handle = layer.register_forward_hook(lambda _m, args, _out: captured.append(args[0].detach()))
    was_training = module.training
    module.eval()
    generator = torch.Generator(device=device).manual_seed(seed)
    weight = layer.weight.detach().float()

    def features(xb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        captured.clear()
        with torch.no_grad():
            out = module(xb)
        return captured[-1].float(), out

    def grad_norms(xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        xb = xb.detach().requires_grad_(True)
        loss = objective.train_loss(module(xb), yb, reduction="sum")  # per-sample gradients: the rows are independent
        (grad,) = torch.autograd.grad(loss, xb)
        norms: torch.Tensor = grad.flatten(1).norm(dim=1)
        return norms

    parts: dict[str, list[torch.Tensor]] = {f"{key}_{tag}": []
                                            for key in ("feature_norm", "cos_y", "correct", "grad_norm")
                                            for tag in ("clean", "adv")}
    try:
        for start in range(0, len(x_t), batch_size):
            xb = x_t[start : start + batch_size].to(device)
            yb = y_t[start : start + batch_size].to(device)
            if x_adv is None:
                assert eps is not None  # checked above: PGD runs only with an eps
                xab = pgd(module, xb, yb, objective.attack_loss, eps=float(eps),
                          eps_step=float(eps_step if eps_step is not None else pgd_step(eps)), max_iter=steps,
                          generator=generator)
            else:
                xab = xa_t[start : start + batch_size].to(device)
            for tag, inputs in (("clean", xb), ("adv", xab)):
                z, out = features(inputs)
                cos = (normalize_rows(z) * normalize_rows(weight)[yb]).sum(dim=1)
                parts[f"feature_norm_{tag}"].append(z.norm(dim=1))
                parts[f"cos_y_{tag}"].append(cos)
                parts[f"correct_{tag}"].append(out.argmax(dim=1) == yb)
                parts[f"grad_norm_{tag}"].append(grad_norms(inputs, yb))
    finally:
        handle.remove()
        module.train(was_training)
    result = {k: torch.cat(v).cpu().numpy() for k, v in parts.items()}
    with np.errstate(divide="ignore", invalid="ignore"):
        result["grad_ratio"] = result["grad_norm_adv"].astype(np.float64) / result["grad_norm_clean"]
    result["weight_norm"] = weight.norm(dim=1).cpu().numpy()
    result["y"] = y_t.numpy()
    result["eps"] = np.array(np.nan if x_adv is not None or eps is None else float(eps))
    return {k: result[k] for k in KEYS}
