"""``HEPyTorchClassifier``: ART's ``PyTorchClassifier`` that knows about the hypersphere head."""

from __future__ import annotations

import copy
from typing import Any, overload

import numpy as np
import torch
from art.estimators.classification import PyTorchClassifier
from torch import nn

from art_he.devices import art_current, art_device_type, art_estimator, parse_device
from art_he.errors import UserError
from art_he.heads import find_head, objective_of
from art_he.losses import Objective, margin_score
from art_he.validation import check_choice, check_number, check_xy

ATTACK_LOSSES = ("ce", "raw", "adaptive", "margin")


class HEAttackLoss(nn.CrossEntropyLoss):
    """The loss ART's attacks maximise on a model's raw outputs (cosines for HE, logits for plain).

    * ``"ce"``: ``CE(s * cos, y)`` (m-HE: ``CE(-s * theta, y)``; plain: ``CE(logits, y)``)
    * ``"raw"``: ``CE(cos, y)``, the unscaled outputs (s = 1)
    * ``"adaptive"``: the training loss ``CE(s * (cos - m * onehot(y)), y)`` (the paper's adaptive attack)
    * ``"margin"``: scale-free C&W margin ``mean(max_{j != y} out_j - out_y)``

    It subclasses ``nn.CrossEntropyLoss`` only so that ART hands it integer labels.
    """

    def __init__(self, objective: Objective, kind: str = "ce") -> None:
        super().__init__()
        check_choice("attack_loss", kind, ATTACK_LOSSES)
        self.objective = objective
        self.kind = kind

    def forward(self, outputs: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        y = y.long()
        if self.kind == "ce":
            return self.objective.attack_loss(outputs, y)
        if self.kind == "raw":
            return nn.functional.cross_entropy(outputs, y)
        if self.kind == "adaptive":
            return self.objective.train_loss(outputs, y)
        return margin_score(outputs, y).mean()


class HEPyTorchClassifier(PyTorchClassifier):  # type: ignore[misc]  # ART ships no type information
    """An ART ``PyTorchClassifier`` for models with (or without) a :class:`~art_he.heads.HypersphereHead`.

    Arguments are ``PyTorchClassifier``'s, in the same order, with ``loss`` optional: when it is ``None``
    the loss is derived from the head and ``attack_loss`` picks what ART's attacks see (see
    :class:`HEAttackLoss`); ``fit`` then trains on the head's training loss ``CE_m`` (with margin).
    Predictions are the raw head outputs (cosines for HE); ``argmax`` is the predicted class for HE and m-HE.
    ``device`` (``"cpu"``, ``"cuda:1"``, ...; :func:`~art_he.devices.parse_device`) replaces ART's
    ``device_type``; without either, the default device of :mod:`art_he.devices`.
    """

    estimator_params = PyTorchClassifier.estimator_params + ["attack_loss"]

    def __init__(
        self,
        model: nn.Module,
        loss: nn.Module | None = None,
        input_shape: tuple[int, ...] | None = None,
        nb_classes: int | None = None,
        optimizer: torch.optim.Optimizer | None = None,
        *args: Any,
        attack_loss: str = "ce",
        device: str | torch.device | None = None,
        **kwargs: Any,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        if input_shape is None or nb_classes is None:
            raise UserError("input_shape and nb_classes are required")
        check_number("nb_classes", nb_classes, low=2, integer=True)
        head = find_head(model)
        if head is not None and head.num_classes != nb_classes:
            raise UserError(f"nb_classes={nb_classes} but the HypersphereHead has {head.num_classes} classes")
        self._objective = objective_of(model)
        self._derived_loss = loss is None or isinstance(loss, HEAttackLoss)
        if loss is None:
            loss = HEAttackLoss(self._objective, attack_loss)
        elif isinstance(loss, HEAttackLoss):
            attack_loss = loss.kind
        place = None
        if "device_type" not in kwargs:
            place = parse_device(device)
            kwargs["device_type"] = art_device_type(place)
        elif device is not None:
            raise UserError("give device or ART's device_type, not both")
        with art_current(place):
            super().__init__(model, loss, tuple(input_shape), nb_classes, optimizer, *args, **kwargs)
        self._attack_loss = attack_loss if self._derived_loss else "custom"

    @property
    def objective(self) -> Objective:
        """The head's objective (scale, margin, variant; plain for an ordinary head)."""
        return self._objective

    @property
    def attack_loss(self) -> str:
        return self._attack_loss

    @attack_loss.setter
    def attack_loss(self, kind: str) -> None:
        if kind == "custom" and not self._derived_loss:
            return
        self._loss = HEAttackLoss(self._objective, kind)
        self._derived_loss = True
        self._attack_loss = kind

    def with_attack_loss(self, kind: str) -> HEPyTorchClassifier:
        """A classifier on the same model (shared weights) whose attacks see ``kind``; see :func:`classifier_view`."""
        return classifier_view(self, attack_loss=kind)

    def clone_for_refitting(self) -> HEPyTorchClassifier:
        """ART's clone (the architecture, a fresh optimizer of the same type, weights reset, the same parameters) on
        this classifier's device: ART's own builds it on the current CUDA device, whatever this one's is."""
        if self.optimizer is None:
            raise UserError("clone_for_refitting needs an optimizer; build the classifier with optimizer=...")
        model = copy.deepcopy(self.model)
        optimizer = type(self.optimizer)(model.parameters(), **self.optimizer.defaults)
        clone: HEPyTorchClassifier = type(self)(model, self._loss, self.input_shape, self.nb_classes, optimizer,
                                                device=self.device)
        clone.reset()
        clone.set_params(**{k: v for k, v in self.get_params().items()
                            if k not in ("model", "optimizer", "device_type")})
        return clone

    def predict(self, x: np.ndarray, batch_size: int = 128, training_mode: bool = False, **kwargs: Any) -> np.ndarray:
        check_xy(x, None, self.input_shape, self.nb_classes)
        predictions: np.ndarray = super().predict(x, batch_size=batch_size, training_mode=training_mode, **kwargs)
        return predictions

    def fit(self, x: np.ndarray, y: np.ndarray, batch_size: int = 128, nb_epochs: int = 10, **kwargs: Any) -> None:
        """ART's ``fit``; with a derived loss it trains on ``CE_m`` (the margin loss) rather than the attack loss."""
        check_xy(x, y, self.input_shape, self.nb_classes)
        if not self._derived_loss:
            super().fit(x, y, batch_size=batch_size, nb_epochs=nb_epochs, **kwargs)
            return
        attack = self._loss
        self._loss = HEAttackLoss(self._objective, "adaptive")
        try:
            super().fit(x, y, batch_size=batch_size, nb_epochs=nb_epochs, **kwargs)
        finally:
            self._loss = attack


@overload
def classifier_view(classifier: PyTorchClassifier, *, model: nn.Module | None = None, loss: nn.Module | None = None,
                    attack_loss: str) -> HEPyTorchClassifier: ...


@overload
def classifier_view(classifier: PyTorchClassifier, *, model: nn.Module | None = None, loss: nn.Module | None = None,
                    attack_loss: None = None) -> PyTorchClassifier: ...


def classifier_view(
    classifier: PyTorchClassifier,
    *,
    model: nn.Module | None = None,
    loss: nn.Module | None = None,
    attack_loss: str | None = None,
) -> PyTorchClassifier:
    """Another ART classifier on ``classifier``'s weights that keeps everything but what is asked to change.

    Kept: input shape, classes, optimizer, channel layout, clip values, preprocessing, pre- and postprocessing
    defences and device, so that an attack on the view attacks the model that is evaluated. With
    ``attack_loss``, an :class:`HEPyTorchClassifier` whose attacks see that loss; otherwise a
    ``PyTorchClassifier`` on ``model`` (default: the same model, e.g. wrapped to expose other outputs) with
    ``loss`` (default: cross-entropy).
    """
    model = classifier.model if model is None else model
    kwargs = dict(
        channels_first=classifier.channels_first, clip_values=classifier.clip_values,
        preprocessing_defences=classifier.preprocessing_defences,
        postprocessing_defences=classifier.postprocessing_defences, preprocessing=classifier.preprocessing,
        device=classifier.device,
    )
    if attack_loss is not None:
        return HEPyTorchClassifier(model, None, classifier.input_shape, classifier.nb_classes, classifier.optimizer,
                                   attack_loss=attack_loss, **kwargs)
    return art_estimator(PyTorchClassifier, model, nn.CrossEntropyLoss() if loss is None else loss,
                         classifier.input_shape, classifier.nb_classes, classifier.optimizer, **kwargs)
