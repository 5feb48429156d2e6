"""Pure loss functions of hypersphere-embedding adversarial training.

Notation: ``cos`` is the (B, L) cosine matrix a :class:`~art_he.heads.HypersphereHead`
returns, ``y`` the (B,) int64 labels, ``s`` the scale, ``m`` the margin.

* HE:    logits ``s * (cos - m * onehot(y))``               (CosFace additive cosine margin)
* m-HE:  logits ``s * (-theta - m * onehot(y))``, ``theta = arccos(clamp(cos, -1+delta, 1-delta))``
* attack objective inside training: the same with ``m = 0``

Every function is differentiable, finite for ``cos = +-1`` and works in float64 (``gradcheck``).
Cross-entropy is torch's log-sum-exp stable ``F.cross_entropy`` (the authors loop over the batch).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from art_he.defaults import MARGINS, SCALE, VARIANTS
from art_he.validation import check_choice

ARCCOS_DELTA = 1e-6


def check_variant(variant: str) -> str:
    """Return ``variant`` if it is ``"he"`` or ``"mhe"``, else raise :class:`~art_he.errors.UserError`."""
    return check_choice("variant", variant, VARIANTS)


def angles(cos: torch.Tensor, delta: float = ARCCOS_DELTA) -> torch.Tensor:
    """``theta = arccos(clamp(cos, -1 + delta, 1 - delta))``: finite values and gradients at +-1.

    The clamp is ``F.hardtanh``: the same values and the same gradient (zero outside ``(-1 + delta, 1 - delta)``)
    as ``Tensor.clamp``, but one backward kernel instead of four (two compares, an ``and`` and a ``where``).
    """
    return torch.arccos(F.hardtanh(cos, -1.0 + delta, 1.0 - delta))


def onehot(y: torch.Tensor, n: int) -> torch.Tensor:
    """``onehot(y)`` as a (B, n) bool mask. ``F.one_hot`` checks the labels' range with a host read on the CPU
    (``.item()``), which a captured step cannot have; the comparison gives the same ones and zeros."""
    return y[:, None] == torch.arange(n, device=y.device)


def scaled_logits(cos: torch.Tensor, scale: float, variant: str = "he") -> torch.Tensor:
    """Attack logits without margin: HE ``s * cos``; m-HE ``-s * theta``."""
    if check_variant(variant) == "mhe":
        return angles(cos) * -scale
    return scale * cos


def margin_logits(
    cos: torch.Tensor, y: torch.Tensor, scale: float, margin: float, variant: str = "he"
) -> torch.Tensor:
    """Training logits with additive margin on the target entry only.

    HE: ``s * (cos - m * onehot(y))``; m-HE: ``s * (-theta - m * onehot(y))``, computed as
    ``(theta + m * onehot(y)) * -s`` (bitwise the same values and gradients, without the negation's two kernels).
    """
    if check_variant(variant) == "mhe":
        if margin == 0:
            return angles(cos) * -scale
        theta = angles(cos)
        return (theta + margin * onehot(y, theta.shape[-1]).to(theta.dtype)) * -scale
    if margin == 0:
        return scale * cos
    return scale * (cos - margin * onehot(y, cos.shape[-1]).to(cos.dtype))


def he_loss(
    cos: torch.Tensor, y: torch.Tensor, scale: float = SCALE, margin: float = MARGINS["he"], reduction: str = "mean",
    variant: str = "he",
) -> torch.Tensor:
    """``CE(margin_logits(cos, y, s, m, variant), y)``: HE ``CE(s * (cos - m * onehot(y)), y)`` (Eq. 6 of the paper);
    ``variant="mhe"``: ``CE(s * (-theta - m * onehot(y)), y)``."""
    return F.cross_entropy(margin_logits(cos, y, scale, margin, variant), y, reduction=reduction)


def mhe_loss(cos: torch.Tensor, y: torch.Tensor, scale: float = SCALE, margin: float = MARGINS["mhe"],
             reduction: str = "mean") -> torch.Tensor:
    """``CE(s * (-theta - m * onehot(y)), y)`` with ``theta = arccos(cos)`` (m-HE, Sec. 3.5): :func:`he_loss`."""
    return he_loss(cos, y, scale, margin, reduction, "mhe")


def margin_score(outputs: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Scale-free C&W margin ``max_{j != y} out_j - out_y`` per sample (> 0 means misclassified)."""
    target = outputs.gather(1, y[:, None]).squeeze(1)
    others = outputs.masked_fill(onehot(y, outputs.shape[-1]), float("-inf"))
    return others.amax(dim=1) - target


def trades_kl(logits_nat: torch.Tensor, logits_adv: torch.Tensor, reduction: str = "batchmean") -> torch.Tensor:
    """``KL(softmax(nat) || softmax(adv))``: sum over classes, mean over the batch (TRADES' direction).

    ``reduction="none"`` returns the per-sample KL.
    """
    kl = F.kl_div(F.log_softmax(logits_adv, dim=1), F.log_softmax(logits_nat, dim=1), reduction="none", log_target=True)
    kl = kl.sum(dim=1)
    if reduction == "none":
        return kl
    if reduction in ("batchmean", "mean"):
        return kl.mean()
    if reduction == "sum":
        return kl.sum()
    raise ValueError(f"unknown reduction {reduction!r}")


def safe_l2_norm(v: torch.Tensor, eps: float = 1e-12, dim: int = -1) -> torch.Tensor:
    """``max(||v||_2, eps)`` along ``dim`` with a finite gradient at ``v = 0``."""
    return torch.sqrt((v * v).sum(dim).clamp_min(eps * eps))


PAIRINGS = ("mse", "l2")


def alp_pairing(out_nat: torch.Tensor, out_adv: torch.Tensor, kind: str = "mse") -> torch.Tensor:
    """Logit pairing of the raw outputs (logits for plain ALP, cosines for ALP+HE).

    * ``"mse"``: ``mean_{i,j} (out_nat_ij - out_adv_ij)^2``, the authors' code (``nn.MSELoss``)
    * ``"l2"``: ``mean_i ||out_nat_i - out_adv_i||_2``, the paper's Table 1 and Kannan et al.
    """
    if kind == "mse":
        return torch.nn.functional.mse_loss(out_nat, out_adv)
    if kind == "l2":
        return safe_l2_norm(out_nat - out_adv).mean()
    raise ValueError(f"unknown pairing {kind!r}; choose from {PAIRINGS}")


@dataclass(frozen=True)
class Objective:
    """How a model's raw outputs become logits: the identity for a plain head, HE/m-HE for a hypersphere head.

    ``attack_logits`` is the margin-free objective the inner maximisation uses; ``train_logits`` carries the
    additive margin ``m`` on the target class.
    """

    hypersphere: bool = False
    scale: float = 1.0
    margin: float = 0.0
    variant: str = "he"

    def attack_logits(self, outputs: torch.Tensor) -> torch.Tensor:
        return scaled_logits(outputs, self.scale, self.variant) if self.hypersphere else outputs

    def train_logits(self, outputs: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if not self.hypersphere:
            return outputs
        return margin_logits(outputs, y, self.scale, self.margin, self.variant)

    def attack_loss(self, outputs: torch.Tensor, y: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
        """``CE(attack_logits, y)``: HE ``CE(s*cos, y)``, m-HE ``CE(-s*theta, y)``, plain ``CE(logits, y)``."""
        return F.cross_entropy(self.attack_logits(outputs), y, reduction=reduction)

    def train_loss(self, outputs: torch.Tensor, y: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
        """``CE_m``: ``CE(train_logits, y)``."""
        return F.cross_entropy(self.train_logits(outputs, y), y, reduction=reduction)


def trades_loss(
    out_nat: torch.Tensor, out_adv: torch.Tensor, y: torch.Tensor, objective: Objective, beta: float = 6.0
) -> torch.Tensor:
    """TRADES(+HE): ``CE_m(nat, y) + beta * KL(softmax(a(nat)) || softmax(a(adv)))``.

    ``a`` is the margin-free attack logit map (plain: identity; HE: ``s*cos``; m-HE: ``-s*theta``), so the
    margin sits on the natural term only.
    """
    kl = trades_kl(objective.attack_logits(out_nat), objective.attack_logits(out_adv))
    return objective.train_loss(out_nat, y) + beta * kl


def alp_loss(
    out_nat: torch.Tensor,
    out_adv: torch.Tensor,
    y: torch.Tensor,
    objective: Objective,
    alpha: float = 0.5,
    pairing_weight: float = 0.5,
    pairing: str = "mse",
) -> torch.Tensor:
    """ALP(+HE): ``alpha*CE_m(nat) + (1-alpha)*CE_m(adv) + lambda * pairing(out_nat, out_adv)``.

    The pairing (:func:`alp_pairing`) acts on the raw outputs: logits for a plain head (``W^T(z - z*)``),
    cosines for HE/m-HE.
    """
    ce = alpha * objective.train_loss(out_nat, y) + (1 - alpha) * objective.train_loss(out_adv, y)
    return ce + pairing_weight * alp_pairing(out_nat, out_adv, pairing)
