"""The hypersphere-embedding head and the function that puts it on any classifier."""

from __future__ import annotations

import math
import warnings
from typing import Any

import torch
from torch import nn

from art_he.defaults import MARGINS, SCALE, WEIGHT_NORM, WEIGHT_NORMS
from art_he.errors import UserError
from art_he.losses import Objective, check_variant
from art_he.validation import check_choice, check_number

NORM_EPS = 1e-12
#: how far (in units of the dtype's eps) ``‖W_l‖²`` of a projected row may be from 1: normalising leaves at most 6
ON_SPHERE_ULPS = 16
#: what ``weight_norm=True``/``False`` meant before it took a mode name (runs written then store the bool)
LEGACY_WEIGHT_NORM = {True: "differentiable", False: "none"}


def normalize_rows(v: torch.Tensor, eps: float = NORM_EPS) -> torch.Tensor:
    """``v / max(||v||, eps)`` row-wise, with finite values and gradients for zero rows.

    Written as ``v * rsqrt(max(||v||^2, eps^2))`` because the gradient of ``||v||`` is 0/0 at ``v = 0``.
    """
    return v * torch.rsqrt((v * v).sum(dim=-1, keepdim=True).clamp_min(eps * eps))


class HypersphereHead(nn.Module):
    """Last layer of HE (Pang et al., 2020): ``cos = FN(z) @ WN(W).T``, no bias.

    FN: ``z~ = z / max(||z||, eps)``. WN: ``W~_l = W_l / max(||W_l||, eps)``, in one of three ways
    (``weight_norm``):

    * ``"project"`` (default, the authors' code): ``W`` itself is kept on the unit sphere. Whenever it has
      changed since the last projection (an optimizer step, ``load_state_dict``, initialisation), ``forward``
      overwrites it in place with its row-normalised copy, without gradient, and then uses it as a plain linear
      layer. The authors overwrite ``fc.weight.data`` at *every* forward; ``W`` changes only between forwards
      and the projection is idempotent, so projecting at the first forward after each change is the same
      optimiser: the gradient is a plain linear layer's at unit rows, the SGD step moves ``W`` off the sphere,
      the next forward puts it back. (Skipping the re-projection of an already projected ``W`` also keeps the
      rows bit-stable across the forwards of an attack, and the weights saved for backward unmodified.)
    * ``"differentiable"``: ``W~ = W / ||W||`` inside the graph; every step is orthogonal to ``W``, so ``||W||``
      grows and the head's effective learning rate ``lr / ||W||^2`` falls (``benchmarks/study_weight_norm.py``).
    * ``"none"``: no WN (ablation).

    ``forward`` returns the (B, L) cosine matrix; ``scale``, ``margin`` and ``variant`` ("he" or "mhe", the
    arccos form of Sec. 3.5) are read by the losses and trainers. ``feature_norm=False`` switches FN off for
    ablations. The head always computes in float32 (or float64), also under autocast.
    """

    def __init__(
        self,
        in_features: int,
        num_classes: int,
        *,
        scale: float = SCALE,
        margin: float = MARGINS["he"],
        variant: str = "he",
        feature_norm: bool = True,
        weight_norm: str | bool = WEIGHT_NORM,
    ) -> None:
        super().__init__()
        check_number("in_features", in_features, low=1, integer=True)
        check_number("num_classes", num_classes, low=2, integer=True)
        check_number("scale", scale, low=0.0, strict=True)
        check_number("margin", margin, low=0.0)
        self.in_features = int(in_features)
        self.num_classes = int(num_classes)
        self.scale = float(scale)
        self.margin = float(margin)
        self.variant = check_variant(variant)
        self.feature_norm = bool(feature_norm)
        self.weight_norm = check_weight_norm(weight_norm)
        self.weight = nn.Parameter(torch.empty(num_classes, in_features))
        self._projected: tuple[int, int] | None = None  # (storage, version) of W when last projected
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """nn.Linear's initialisation (ART's ``clone_for_refitting`` calls this); projected at the next forward."""
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))

    @torch.no_grad()
    def project_(self) -> None:
        """``W <- W / max(||W_l||, eps)`` row-wise, in place and without gradient (the authors' WN).

        Rows already on the sphere (``|‖W_l‖² − 1| <= 16 ulp``, what normalising leaves) stay bit-for-bit as they
        are: normalising a normalised row moves its last bits, and a run resumed from a checkpoint of projected
        weights must continue exactly as the uninterrupted run did. A step changes ``‖W_l‖²`` by far more.
        """
        w = self.weight
        on_sphere = ((w * w).sum(dim=-1, keepdim=True) - 1).abs() <= ON_SPHERE_ULPS * torch.finfo(w.dtype).eps
        w.copy_(torch.where(on_sphere, w, normalize_rows(w)))
        self._projected = self._weight_key()

    def _weight_key(self) -> tuple[int, int]:
        """Changes whenever ``W`` may have: in-place updates bump the version; ``.to()`` and the like move storage."""
        return self.weight.data_ptr(), self.weight._version

    @property
    def objective(self) -> Objective:
        return Objective(hypersphere=True, scale=self.scale, margin=self.margin, variant=self.variant)

    def head_kwargs(self) -> dict[str, float | str | bool]:
        """The keyword arguments that rebuild this head (stored in run configs)."""
        return {
            "scale": self.scale,
            "margin": self.margin,
            "variant": self.variant,
            "feature_norm": self.feature_norm,
            "weight_norm": self.weight_norm,
        }

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if z.dim() != 2 or z.shape[1] != self.in_features:
            raise ValueError(f"HypersphereHead expects features of shape (B, {self.in_features}), got {tuple(z.shape)}")
        if self.weight_norm == "project" and self._weight_key() != self._projected:
            self.project_()
        with torch.autocast(device_type=z.device.type, enabled=False):
            z = z.float() if z.dtype in (torch.float16, torch.bfloat16) else z
            w = self.weight.to(z.dtype)
            if self.feature_norm:
                z = normalize_rows(z)
            if self.weight_norm == "differentiable":
                w = normalize_rows(w)
            return z @ w.t()

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, num_classes={self.num_classes}, scale={self.scale}, "
            f"margin={self.margin}, variant={self.variant!r}, feature_norm={self.feature_norm}, "
            f"weight_norm={self.weight_norm!r}"
        )


def check_weight_norm(weight_norm: str | bool) -> str:
    """One of :data:`~art_he.defaults.WEIGHT_NORMS`; the old bools still work: ``True`` is ``"differentiable"``
    (what it meant before), ``False`` is ``"none"``, each with a ``DeprecationWarning``."""
    if isinstance(weight_norm, bool):
        mode = LEGACY_WEIGHT_NORM[weight_norm]
        hint = " (the authors' projection is weight_norm='project', the default)" if weight_norm else ""
        warnings.warn(f"weight_norm={weight_norm} is deprecated; it means weight_norm={mode!r}{hint}",
                      DeprecationWarning, stacklevel=3)
        return mode
    return check_choice("weight_norm", weight_norm, WEIGHT_NORMS)


def find_head(model: nn.Module) -> HypersphereHead | None:
    """The model's :class:`HypersphereHead`, or ``None`` when it has an ordinary head."""
    heads = [m for m in model.modules() if isinstance(m, HypersphereHead)]
    return heads[-1] if heads else None


def objective_of(model: nn.Module) -> Objective:
    """The :class:`~art_he.losses.Objective` a model trains with: HE/m-HE if it has a head, else plain CE."""
    head = find_head(model)
    return head.objective if head is not None else Objective()


def _last_linear(model: nn.Module) -> tuple[nn.Module, str, nn.Linear]:
    """The last ``nn.Linear`` in registration order (the classifier layer), with its parent and attribute name."""
    linears = [name for name, module in model.named_modules() if isinstance(module, nn.Linear)]
    if not linears:
        raise UserError(f"{type(model).__name__} has no nn.Linear layer to replace with a HypersphereHead")
    parent_name, _, attr = linears[-1].rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    return parent, attr, getattr(parent, attr)


def to_hypersphere(model: nn.Module, **head_kwargs: Any) -> nn.Module:
    """Replace the final ``nn.Linear`` of ``model`` (in place) with a :class:`HypersphereHead`; return ``model``.

    Works on torchvision ResNets (``fc``), WideResNets, ``nn.Sequential`` stacks and art_he's models.
    The new head takes the linear layer's ``in_features``/``out_features``, device and dtype.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"to_hypersphere expects a torch.nn.Module, got {type(model).__name__}")
    if find_head(model) is not None:
        raise UserError("model already has a HypersphereHead")
    parent, name, linear = _last_linear(model)
    head = HypersphereHead(linear.in_features, linear.out_features, **head_kwargs)
    head.to(device=linear.weight.device, dtype=linear.weight.dtype)
    setattr(parent, name, head)
    return model
