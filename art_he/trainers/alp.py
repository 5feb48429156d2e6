"""Adversarial logit pairing (Kannan et al., 2018) with untargeted PGD, and ALP+HE / +m-HE."""

from __future__ import annotations

from typing import Any

import torch
from art.estimators.classification import PyTorchClassifier

from art_he.losses import PAIRINGS, alp_loss
from art_he.trainers.base import LossOutputs
from art_he.trainers.pgd import PGDATTrainer
from art_he.validation import check_choice, check_number, check_probability


class ALPTrainer(PGDATTrainer):
    """``alpha*CE_m(f(x), y) + (1-alpha)*CE_m(f(x*), y) + lambda * pairing(f(x), f(x*))`` (:func:`alp_loss`).

    ``x*`` is untargeted PGD on ``CE(s*cos, y)`` (plain head: ``CE(logits, y)``), as the HE paper substitutes
    for ALP's targeted attack; the pairing is on logits (plain) or cosines (HE, m-HE). Clean and adversarial
    inputs go through the model as one mixed batch. ART has no ALP trainer.

    :param alpha: weight of the clean cross-entropy, in [0, 1] (paper: 0.5).
    :param pairing_weight: the logit-pairing weight lambda >= 0 (paper: 0.5).
    :param pairing: ``"mse"``, the mean squared difference of the authors' code (default), or ``"l2"``, the
        mean per-sample L2 distance of the paper's Table 1 (see :func:`~art_he.losses.alp_pairing`).
    Other parameters as :class:`PGDATTrainer`.
    """

    name, label, options = "alp", "ALP", (*PGDATTrainer.options, "alpha", "pairing_weight", "pairing")
    clean_forward = False

    def __init__(
        self,
        classifier: PyTorchClassifier,
        *,
        alpha: float = 0.5,
        pairing_weight: float = 0.5,
        pairing: str = "mse",
        **kwargs: Any,
    ) -> None:
        super().__init__(classifier, **kwargs)
        self.alpha = float(check_probability("alpha", alpha))
        self.pairing_weight = float(check_number("pairing_weight", pairing_weight, low=0.0))
        check_choice("pairing", pairing, PAIRINGS)
        self.pairing = pairing

    def compute_loss(self, x: torch.Tensor, x_adv: torch.Tensor, y: torch.Tensor) -> LossOutputs:
        out_nat, out_adv = self.train_forward(torch.cat([x, x_adv])).chunk(2)
        loss = alp_loss(out_nat, out_adv, y, self.objective, self.alpha, self.pairing_weight, self.pairing)
        return loss, out_nat, out_adv

    @classmethod
    def passes_per_image(cls, options: dict[str, Any]) -> float:
        """``max_iter + 2``: the attack's steps, and the update's forward of clean and adversarial inputs."""
        return float((options.get("max_iter") or 0) + 2)
