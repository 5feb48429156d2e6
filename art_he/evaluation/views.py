"""Views of one model for attacks: raw outputs, attack logits (``s * cos``), penultimate features, torch modules.

* :func:`view` gives the ART classifier an attack should run on for a view name (``"ce"``, ``"raw"``,
  ``"adaptive"``, ``"margin"`` select :class:`~art_he.HEAttackLoss`; ``"logits"`` gives a plain
  ``PyTorchClassifier`` whose outputs are ``s * cos`` (m-HE: ``-s * theta``), so that attacks that read the
  outputs themselves (C&W, ZOO, AutoAttack) do not see the small raw cosines).
* :class:`FeatureTap` exposes the penultimate features as a layer named ``"features"`` for ART's
  ``get_activations``: the head's input ``z``, or ``z / ||z||`` for a :class:`~art_he.heads.HypersphereHead`
  (with FN, its prediction depends on nothing else).
  Workaround: ART's ``PyTorchClassifier`` only names a model's top-level children as layers, and the penultimate
  features of most models (ResNets, our small CNN) are not the output of one.
* :class:`ClassifierModule` is a ``torch.nn.Module`` computing what a classifier computes (its torch
  preprocessing, the model, optionally the attack logits), for AutoAttack and RobustBench.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import torch
from art.estimators.classification import PyTorchClassifier
from torch import nn

from art_he.attacks.train_time import project
from art_he.errors import UserError
from art_he.estimator import ATTACK_LOSSES, HEPyTorchClassifier, classifier_view
from art_he.heads import HypersphereHead, find_head, normalize_rows, objective_of
from art_he.losses import Objective

VIEWS = (*ATTACK_LOSSES, "logits")


def objective_for(classifier: object) -> Objective:
    """The head's objective of an ART classifier (plain CE when it has none or is not a torch classifier)."""
    if isinstance(classifier, HEPyTorchClassifier):
        return classifier.objective
    model = getattr(classifier, "model", None)
    return objective_of(model) if isinstance(model, nn.Module) else Objective()


class AttackLogits(nn.Module):
    """``objective.attack_logits(model(x))``: ``s * cos`` (HE), ``-s * theta`` (m-HE), the logits (plain)."""

    def __init__(self, model: nn.Module, objective: Objective) -> None:
        super().__init__()
        self.model = model
        self.objective = objective

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.objective.attack_logits(self.model(x))


def logits_view(classifier: PyTorchClassifier) -> PyTorchClassifier:
    """A ``PyTorchClassifier`` on the same weights whose outputs are the attack logits and whose loss is CE."""
    return classifier_view(classifier, model=AttackLogits(classifier.model, objective_for(classifier)))


def view(classifier: PyTorchClassifier, name: str) -> PyTorchClassifier:
    """The classifier an attack runs on for the view ``name``, one of :data:`VIEWS` (see the module docstring)."""
    if name not in VIEWS:
        raise ValueError(f"unknown view {name!r}; choose from {VIEWS}")
    if name == "logits":
        return logits_view(classifier) if objective_for(classifier).hypersphere else classifier
    if isinstance(classifier, HEPyTorchClassifier) and classifier.attack_loss == name:
        return classifier
    if not isinstance(classifier, HEPyTorchClassifier) and name in ("ce", "raw", "adaptive"):
        return classifier  # a plain ART classifier: its own loss
    return classifier_view(classifier, attack_loss=name)


def penultimate_layer(model: nn.Module) -> HypersphereHead | nn.Linear:
    """The classifier layer whose input is the penultimate feature: the HE head or the last ``nn.Linear``."""
    head = find_head(model)
    if head is not None:
        return head
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise UserError(f"{type(model).__name__} has no HypersphereHead or nn.Linear to read features from")
    return linears[-1]


class FeatureTap(nn.Module):
    """``model`` with its penultimate features exposed as the child layer ``"features"`` (an identity).

    A forward pre-hook on the classifier layer passes its input ``z`` through ``self.features`` (the layer's
    input itself is unchanged): ``z / ||z||`` when the layer is a :class:`~art_he.heads.HypersphereHead` with
    feature normalisation (its prediction depends only on the direction of ``z``, so the feature attack matches
    directions), ``z`` otherwise. Use as a context manager (or call :meth:`close`) to remove the hook from the
    user's model.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.features = nn.Identity()
        layer = penultimate_layer(model)
        self.normalized = isinstance(layer, HypersphereHead) and layer.feature_norm
        self._handle = layer.register_forward_pre_hook(self._expose)

    def _expose(self, _layer: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
        self.features(normalize_rows(args[0]) if self.normalized else args[0])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outputs: torch.Tensor = self.model(x)
        return outputs

    def close(self) -> None:
        self._handle.remove()

    def __enter__(self) -> FeatureTap:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def feature_classifier(classifier: PyTorchClassifier, tap: FeatureTap) -> PyTorchClassifier:
    return classifier_view(classifier, model=tap)


class ClassifierModule(nn.Module):
    """``x -> model(preprocess(x))`` (``logits=True``: the attack logits) as a torch module on inputs in [0, 1].

    The classifier's preprocessing must be torch-native (mean/std or PyTorch preprocessors).
    """

    def __init__(self, classifier: PyTorchClassifier, logits: bool = True) -> None:
        super().__init__()
        if not isinstance(classifier, PyTorchClassifier):
            raise TypeError(f"expected an ART PyTorchClassifier, got {type(classifier).__name__}")
        if classifier.preprocessing_operations and not classifier.all_framework_preprocessing:
            raise UserError("the classifier's preprocessing is not torch-native; it cannot run inside a torch module")
        self.model = classifier.model
        self.objective = objective_for(classifier) if logits else Objective()
        self._classifier = [classifier]  # not a submodule

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        classifier = self._classifier[0]
        if classifier.preprocessing_operations:
            x, _ = classifier._apply_preprocessing(x, None, fit=False, no_grad=False)
        return self.objective.attack_logits(self.model(x))


def as_torch_module(classifier: PyTorchClassifier, logits: bool = True) -> ClassifierModule:
    """The classifier as an ``nn.Module`` in eval mode (for AutoAttack, RobustBench's ``benchmark``)."""
    module = ClassifierModule(classifier, logits)
    module.eval()
    return module


def project_linf(x_adv: np.ndarray, x: np.ndarray, eps: float,
                 clip_values: tuple[npt.ArrayLike, npt.ArrayLike] | None) -> npt.NDArray[np.float32]:
    """:func:`~art_he.attacks.project` on numpy arrays, as float32: minimum-norm attacks (DeepFool, C&W, ZOO) held
    to eps and the classifier's ``clip_values``."""
    clip = None if clip_values is None else (torch.as_tensor(np.asarray(clip_values[0])),
                                             torch.as_tensor(np.asarray(clip_values[1])))
    return project(torch.as_tensor(x_adv), torch.as_tensor(x), eps, clip).numpy().astype(np.float32)
