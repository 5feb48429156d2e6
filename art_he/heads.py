"""The hypersphere-embedding head and the function that puts it on any classifier."""

from __future__ import annotations

import math

import torch
from torch import nn

from art_he.defaults import MARGINS, SCALE
from art_he.errors import UserError
from art_he.losses import Objective, check_variant

NORM_EPS = 1e-12


def normalize_rows(v: torch.Tensor, eps: float = NORM_EPS) -> torch.Tensor:
    """``v / max(||v||, eps)`` row-wise, with finite values and gradients for zero rows.

    Written as ``v * rsqrt(max(||v||^2, eps^2))`` because the gradient of ``||v||`` is 0/0 at ``v = 0``.
    """
    return v * torch.rsqrt((v * v).sum(dim=-1, keepdim=True).clamp_min(eps * eps))


class HypersphereHead(nn.Module):
    """Last layer of HE (Pang et al., 2020): ``cos = FN(z) @ WN(W).T``, no bias.

    FN: ``z~ = z / max(||z||, eps)``; WN: ``W~_l = W_l / max(||W_l||, eps)``, differentiable inside
    ``forward`` (the authors overwrite ``weight.data`` instead). ``forward`` returns the (B, L) cosine
    matrix; ``scale``, ``margin`` and ``variant`` ("he" or "mhe", the arccos form of Sec. 3.5) are
    read by the losses and trainers. ``feature_norm``/``weight_norm`` switch FN/WN off for ablations.
    The head always computes in float32, also under autocast.
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
        weight_norm: bool = True,
    ) -> None:
        super().__init__()
        for name, value in (("in_features", in_features), ("num_classes", num_classes)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise UserError(f"{name} must be a positive int, got {value!r}")
        if num_classes < 2:
            raise UserError(f"num_classes must be >= 2, got {num_classes}")
        if not (isinstance(scale, (int, float)) and math.isfinite(scale) and scale > 0):
            raise UserError(f"scale must be a finite number > 0, got {scale!r}")
        if not (isinstance(margin, (int, float)) and math.isfinite(margin) and margin >= 0):
            raise UserError(f"margin must be a finite number >= 0, got {margin!r}")
        self.in_features = in_features
        self.num_classes = num_classes
        self.scale = float(scale)
        self.margin = float(margin)
        self.variant = check_variant(variant)
        self.feature_norm = bool(feature_norm)
        self.weight_norm = bool(weight_norm)
        self.weight = nn.Parameter(torch.empty(num_classes, in_features))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """nn.Linear's initialisation (ART's ``clone_for_refitting`` calls this)."""
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))

    @property
    def objective(self) -> Objective:
        return Objective(hypersphere=True, scale=self.scale, margin=self.margin, variant=self.variant)

    def head_kwargs(self) -> dict:
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
            raise UserError(f"HypersphereHead expects features of shape (B, {self.in_features}), got {tuple(z.shape)}")
        with torch.autocast(device_type=z.device.type, enabled=False):
            z = z.float() if z.dtype in (torch.float16, torch.bfloat16) else z
            w = self.weight.to(z.dtype)
            if self.feature_norm:
                z = normalize_rows(z)
            if self.weight_norm:
                w = normalize_rows(w)
            return z @ w.t()

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, num_classes={self.num_classes}, scale={self.scale}, "
            f"margin={self.margin}, variant={self.variant!r}, feature_norm={self.feature_norm}, "
            f"weight_norm={self.weight_norm}"
        )


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


def to_hypersphere(model: nn.Module, **head_kwargs) -> nn.Module:
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
