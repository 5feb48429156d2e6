"""Fast adversarial training, "fast is better than free" (Wong et al., 2020), and FastAT+HE / +m-HE."""

from __future__ import annotations

import warnings
from typing import Any

import torch
from art.estimators.classification import PyTorchClassifier
from torch.optim.lr_scheduler import LRScheduler

from art_he.defaults import pgd_step
from art_he.errors import UserError
from art_he.schedules import make_scheduler
from art_he.trainers.base import ATTrainer, Batch, LossOutputs
from art_he.validation import ArrayLike, check_number, check_probability

FGSM_MODES = ("train", "eval")


class FastATTrainer(ATTrainer):
    """``min E[CE_m(f(x*), y)]`` with ``x*`` one FGSM step of ``eps_step`` from a uniform start in the eps-ball,
    on ``CE(s*cos, y)`` (plain head: ``CE(logits, y)``).

    By default the learning rate follows Wong et al.'s cycle (``fit`` without a scheduler:
    :func:`~art_he.schedules.cyclic_scheduler`, linear from 0 up to the optimizer's ``lr`` at half of the
    steps, then down to 0), and a guard watches for catastrophic overfitting: PGD accuracy on a held-out batch
    is measured after every epoch (or every ``guard_every`` batches); when it falls more than ``guard_drop``
    below its best value the model is rolled back to that best state and training stops
    (``metrics["guard_tripped"]``). Wong et al.'s ``--early-stop`` is off unless asked for; here it is on unless
    ``early_stop=False`` (the Table 3 recipes follow their code and switch it off).

    :param eps: Linf radius.
    :param eps_step: FGSM step (default ``1.25 * eps``, Wong et al.).
    :param fgsm_mode: ``"train"`` crafts the FGSM step with the model in train mode (BatchNorm on batch
        statistics), as Wong et al.'s code does; ``"eval"`` uses the running statistics like the other trainers.
    :param cyclic_lr: use the cyclic schedule when ``fit`` gets ``scheduler=None``.
    :param early_stop: run the overfitting guard.
    :param guard_drop: accuracy drop in [0, 1] that trips the guard (``None`` switches the guard off).
    :param guard_every: check every this many batches (``None``: after every epoch).
    :param guard_iter: PGD steps of the guard's attack (step :func:`~art_he.defaults.pgd_step`).
    :param guard_data: ``(x, y)`` held-out batch; default the first training batch, as in Wong et al.
    """

    name, label, options = "fast", "FastAT", ("fgsm_mode", "early_stop")
    default_schedule = "cyclic"

    def __init__(
        self,
        classifier: PyTorchClassifier,
        eps: float = 8 / 255,
        eps_step: float | None = None,
        cyclic_lr: bool = True,
        early_stop: bool = True,
        guard_drop: float | None = 0.2,
        guard_every: int | None = None,
        guard_iter: int = 10,
        guard_data: tuple[ArrayLike, ArrayLike] | None = None,
        fgsm_mode: str = "train",
        **kwargs: Any,
    ) -> None:
        super().__init__(classifier, **kwargs)
        self.set_radius(eps, eps_step)
        if fgsm_mode not in FGSM_MODES:
            raise UserError(f"fgsm_mode must be one of {FGSM_MODES}, got {fgsm_mode!r}")
        self.fgsm_mode = fgsm_mode
        self.attack_train_mode = fgsm_mode == "train"
        self.cyclic_lr = bool(cyclic_lr)
        self.early_stop = bool(early_stop)
        self.guard_drop = (None if guard_drop is None or not self.early_stop
                           else float(check_probability("guard_drop", guard_drop)))
        self.guard_every = None if guard_every is None else int(check_number("guard_every", guard_every, low=1,
                                                                             integer=True))
        self.guard_iter = int(check_number("guard_iter", guard_iter, low=1, integer=True))
        self._guard_batch: Batch | None = None
        if guard_data is not None:  # under DDP each rank checks its share; the counts are summed
            gx, gy = self._as_tensors(*guard_data)
            self._guard_batch = (gx[self.dist.rank :: self.dist.world_size], gy[self.dist.rank :: self.dist.world_size])
        self.guard_acc: float | None = None
        self.best_acc: float | None = None
        self.best_state: dict[str, torch.Tensor] | None = None
        self.guard_tripped = False
        self._steps = 0

    @classmethod
    def default_eps_step(cls, eps: float) -> float:
        """``1.25 * eps`` from a uniform start (Wong et al.)."""
        return 1.25 * eps

    def perturb(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.attack(x, y, self.objective.attack_loss, eps=self.eps, eps_step=self.eps_step, max_iter=1,
                           random_init="uniform")

    def compute_loss(self, x: torch.Tensor, x_adv: torch.Tensor, y: torch.Tensor) -> LossOutputs:
        out_adv = self.train_forward(x_adv)
        return self.objective.train_loss(out_adv, y), None, out_adv

    def default_scheduler(self, nb_epochs: int, steps_per_epoch: int | None) -> LRScheduler | None:
        if not self.cyclic_lr:
            return None
        if steps_per_epoch is None:
            raise UserError("the cyclic LR needs the number of batches per epoch; pass a scheduler or a sized loader")
        return make_scheduler(self.default_schedule, self.optimizer, nb_epochs, steps_per_epoch)

    # -- the catastrophic-overfitting guard ----------------------------------------------------------------------

    def train_batch(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.guard_drop is not None and self._guard_batch is None:
            self._guard_batch = (x.detach().clone(), y.detach().clone())
        stats = super().train_batch(x, y)
        self._steps += 1
        if self.guard_every is not None and self._steps % self.guard_every == 0:
            self.check_guard()
        return stats

    def check_guard(self) -> float | None:
        """PGD accuracy on the guard batch; trips the guard (roll back, stop) when it collapsed."""
        if self.guard_drop is None or self._guard_batch is None or self.guard_tripped:
            return None
        x, y = self._guard_batch
        _, adv, n = self.correct_counts(x, y, eps=self.eps, eps_step=pgd_step(self.eps), max_iter=self.guard_iter,
                                        generator=self.eval_generator(self._steps)).tolist()
        self.guard_acc = adv / n
        if self.best_acc is None or self.guard_acc >= self.best_acc:
            self.best_acc = self.guard_acc
            self.best_state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        elif self.guard_acc < self.best_acc - self.guard_drop:
            assert self.best_state is not None  # saved with best_acc
            self.model.load_state_dict(self.best_state)
            self.guard_tripped = self.stop_training = True
            if self.dist.is_main:
                warnings.warn(f"catastrophic overfitting: PGD accuracy on the guard batch fell from "
                              f"{self.best_acc:.3f} to {self.guard_acc:.3f} after {self._steps} batches; rolled back "
                              "to the best state and stopped", stacklevel=2)
        return self.guard_acc

    def on_epoch_end(self, metrics: dict[str, Any]) -> None:
        if self.guard_every is None:
            self.check_guard()
        if self.guard_acc is not None:
            metrics["guard_adv_acc"] = round(self.guard_acc, 4)
        if self.guard_tripped:
            metrics["guard_tripped"] = True

    def extra_state(self) -> dict[str, Any]:
        return {"guard_acc": self.guard_acc, "best_acc": self.best_acc, "best_state": self.best_state,
                "guard_tripped": self.guard_tripped, "steps": self._steps}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.guard_acc, self.best_acc = state["guard_acc"], state["best_acc"]
        self.best_state, self.guard_tripped, self._steps = state["best_state"], state["guard_tripped"], state["steps"]

    def rank_state(self) -> dict[str, Any]:
        return {"guard_batch": self._guard_batch}  # each rank's own first batch (or the given held-out data)

    def load_rank_state(self, state: dict[str, Any]) -> None:
        batch = state["guard_batch"]
        self._guard_batch = tuple(t.to(self.device) for t in batch) if batch is not None else None
