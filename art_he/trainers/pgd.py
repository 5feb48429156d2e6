"""PGD-AT (Madry et al., 2018) and PGD-AT+HE / +m-HE."""

from __future__ import annotations

from typing import Any

import torch
from art.estimators.classification import PyTorchClassifier

from art_he.errors import UserError
from art_he.trainers.base import ATTrainer, LossOutputs
from art_he.validation import check_number


class PGDATTrainer(ATTrainer):
    """``min E[CE_m(f(x*), y)]`` with ``x* = PGD(CE(s*cos, y))`` (plain head: ``CE(logits, y)`` for both).

    Parameter names follow ART's ``AdversarialTrainerMadryPGD``: ``eps``, ``eps_step``, ``max_iter``,
    ``num_random_init`` (0: start at ``x``; 1: uniform start in the eps-ball).
    """

    options: tuple[str, ...]  # as ATTrainer declares it: subclasses (TRADES, ALP) add options
    name, label, options = "pgd", "PGD-AT", ("max_iter", "num_random_init")

    def __init__(
        self,
        classifier: PyTorchClassifier,
        eps: float = 8 / 255,
        eps_step: float | None = None,
        max_iter: int = 10,
        num_random_init: int = 1,
        **kwargs: Any,
    ) -> None:
        super().__init__(classifier, **kwargs)
        self.set_radius(eps, eps_step)
        self.max_iter = int(check_number("max_iter", max_iter, low=1, integer=True))
        self.num_random_init = int(check_number("num_random_init", num_random_init, low=0, integer=True))
        if self.num_random_init > 1:
            raise UserError("num_random_init > 1 (restarts) is for evaluation; training uses 0 or 1")

    def perturb(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.attack(
            x, y, self.objective.attack_loss, eps=self.eps, eps_step=self.eps_step, max_iter=self.max_iter,
            random_init="uniform" if self.num_random_init else None,
        )

    def compute_loss(self, x: torch.Tensor, x_adv: torch.Tensor, y: torch.Tensor) -> LossOutputs:
        out_adv = self.train_forward(x_adv)
        return self.objective.train_loss(out_adv, y), None, out_adv
