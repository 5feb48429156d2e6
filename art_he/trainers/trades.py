"""TRADES (Zhang et al., 2019) and TRADES+HE / +m-HE."""

from __future__ import annotations

from typing import Any

import torch
from art.estimators.classification import PyTorchClassifier

from art_he.losses import trades_kl, trades_loss
from art_he.trainers.base import LossOutputs
from art_he.trainers.pgd import PGDATTrainer
from art_he.validation import check_number


class TRADESTrainer(PGDATTrainer):
    """``CE_m(f(x), y) + beta * KL(softmax(a(f(x))) || softmax(a(f(x*))))`` (:func:`trades_loss`).

    ``a`` is the margin-free logit map (``s*cos`` for HE, ``-s*theta`` for m-HE, identity for a plain head), so
    the HE margin sits on the natural term only. The inner attack maximises the same KL with the natural
    prediction fixed, ``x* = PGD(KL(softmax(a(f(x))) || softmax(a(f(x')))))``, starting from
    ``x + 0.001 * N(0, 1)`` as in the TRADES code (ART's TRADES trainer attacks cross-entropy instead).

    :param beta: weight of the KL term, >= 0 (the paper's ``1/lambda = 6``).
    ``num_random_init``: 1 for TRADES' Gaussian start, 0 to start at ``x``. Others as :class:`PGDATTrainer`.
    """

    name, label, options = "trades", "TRADES", (*PGDATTrainer.options, "beta")
    clean_forward = False

    def __init__(
        self,
        classifier: PyTorchClassifier,
        *,
        beta: float = 6.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(classifier, **kwargs)
        self.beta = float(check_number("beta", beta, low=0.0))

    def attack_objective(self, outputs: torch.Tensor, target_logits: torch.Tensor) -> torch.Tensor:
        """What the inner attack maximises: ``KL(softmax(target_logits) || softmax(a(outputs)))``."""
        return trades_kl(target_logits, self.objective.attack_logits(outputs))

    def perturb(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        with torch.no_grad(), self.autocast():
            target = self.objective.attack_logits(self.forward(x))
        target = target.to(torch.promote_types(target.dtype, torch.float32))  # bf16/fp16 under autocast
        return self.attack(
            x, target, self.attack_objective, eps=self.eps, eps_step=self.eps_step, max_iter=self.max_iter,
            random_init="normal" if self.num_random_init else None,
        )

    def compute_loss(self, x: torch.Tensor, x_adv: torch.Tensor, y: torch.Tensor) -> LossOutputs:
        out_nat = self.train_forward(x)
        out_adv = self.train_forward(x_adv)
        return trades_loss(out_nat, out_adv, y, self.objective, self.beta), out_nat, out_adv

    @classmethod
    def passes_per_image(cls, options: dict[str, Any]) -> float:
        """``max_iter + 2``: the attack's steps, and the update's forwards of clean and adversarial inputs."""
        return float((options.get("max_iter") or 0) + 2)
