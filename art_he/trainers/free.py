"""Free adversarial training (Shafahi et al., 2019) and FreeAT+HE / +m-HE."""

from __future__ import annotations

from typing import Any, cast

import torch
from art.estimators.classification import PyTorchClassifier

from art_he.trainers.base import ATTrainer
from art_he.validation import check_number


class FreeATTrainer(ATTrainer):
    """Replay every minibatch ``replays`` times; each replay is one forward/backward of ``CE_m(f(x + delta), y)``
    that gives both the weight gradient (optimizer step) and the input gradient for
    ``delta <- clip_[-eps, eps](delta + eps_step * sign(grad_delta))``.

    ``delta`` starts at 0 and is carried over from one minibatch to the next (and across epochs), as in
    Shafahi et al.'s Algorithm 1; ``x + delta`` is clipped to the classifier's box. The model stays in train
    mode (the attack *is* the update pass). ART has no FreeAT trainer. Its optimizer steps lie inside the step, so
    ``capture`` does not apply.

    :param eps: Linf radius.
    :param eps_step: perturbation step per replay (default ``eps``, as in the paper).
    :param replays: minibatch replays m >= 1 (paper: 4 on ImageNet, Sec. 4).

    One pass over the data makes ``replays`` optimizer steps per minibatch, so an epoch budget of E (Shafahi et
    al.'s and the authors' ``--epochs``) is ``ceil(E / replays)`` passes (:meth:`passes`); ``fit``'s
    ``nb_epochs`` counts passes.
    """

    name, label, options = "free", "FreeAT", ("replays",)
    capturable = False

    def __init__(
        self,
        classifier: PyTorchClassifier,
        eps: float = 8 / 255,
        eps_step: float | None = None,
        replays: int = 4,
        **kwargs: Any,
    ) -> None:
        super().__init__(classifier, **kwargs)
        self.set_radius(eps, eps_step)
        self.replays = int(check_number("replays", replays, low=1, integer=True))
        #: the carried perturbation, shaped like the largest local minibatch seen
        self.delta: torch.Tensor | None = None

    @classmethod
    def default_eps_step(cls, eps: float) -> float:
        """``eps``: Shafahi et al.'s FGSM step of the full radius."""
        return eps

    @classmethod
    def _replays(cls, options: dict[str, Any]) -> int:
        """``options``' replays, or the constructor's default."""
        return int(options.get("replays") or cast(int, cls.option_defaults()["replays"]))

    @classmethod
    def passes(cls, epochs: int, options: dict[str, Any]) -> int:
        """``ceil(epochs / replays)``: the paper's epoch budget in passes over the data."""
        return -(-epochs // cls._replays(options))

    @classmethod
    def passes_per_image(cls, options: dict[str, Any]) -> float:
        """``replays``: each replay is one forward+backward pass."""
        return float(cls._replays(options))

    def _carried_delta(self, x: torch.Tensor) -> torch.Tensor:
        if self.delta is None or self.delta.shape[1:] != x.shape[1:] or len(self.delta) < len(x):
            fresh = torch.zeros_like(x)
            if self.delta is not None and self.delta.shape[1:] == x.shape[1:]:
                fresh[: len(self.delta)] = self.delta
            self.delta = fresh
        return self.delta[: len(x)]

    def train_batch(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        with torch.no_grad(), self.autocast():
            self.model.eval()
            clean_pred = self.forward(x).argmax(1)
        self.model.train()
        delta = self._carried_delta(x).clone()
        loss_sum = torch.zeros((), dtype=torch.float64, device=x.device)
        adv_correct = torch.zeros((), dtype=torch.float64, device=x.device)
        for _ in range(self.replays):
            delta.requires_grad_(True)
            with self.autocast():
                out = self.train_forward((x + delta).clamp(*self.clip))
                loss = self.objective.train_loss(out, y)
            self.backward(loss)
            with torch.no_grad():
                assert delta.grad is not None  # the backward above gives it
                grad = torch.nan_to_num(delta.grad)  # fp16: a scaled gradient may overflow; its sign is what counts
                delta = (delta.detach() + self.eps_step * grad.sign()).clamp_(-self.eps, self.eps)
            self.step()
            loss_sum += loss.detach().double()
            adv_correct += (out.detach().argmax(1) == y).sum().double()
        assert self.delta is not None  # made by _carried_delta
        self.delta[: len(x)] = delta
        b = float(len(y))
        return torch.stack([loss_sum / self.replays * b, (clean_pred == y).sum().double(), adv_correct / self.replays,
                            loss_sum.new_full((), b)])

    def rank_state(self) -> dict[str, Any]:
        return {"delta": self.delta}

    def load_rank_state(self, state: dict[str, Any]) -> None:
        delta = state.get("delta")
        self.delta = delta.to(self.device) if delta is not None else None
