"""Build a model by name, with a plain, HE or m-HE head."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from torch import nn

from art_he.defaults import HEADS, head_defaults
from art_he.errors import UserError
from art_he.heads import to_hypersphere
from art_he.models.preact_resnet import PreActResNet18
from art_he.models.small_cnn import SmallCNN
from art_he.models.torchvision_models import TORCHVISION_MODELS, torchvision_model
from art_he.models.wide_resnet import WideResNet
from art_he.validation import check_choice

MODELS: dict[str, Callable[..., nn.Module]] = {
    "small-cnn": SmallCNN,
    "small-cnn-nobn": lambda **kw: SmallCNN(batch_norm=False, **kw),
    "preact-resnet18": PreActResNet18,
    "wrn-34-10": lambda **kw: WideResNet(34, 10, **kw),
    "wrn-34-20": lambda **kw: WideResNet(34, 20, **kw),
    **{name: (lambda _name=name, **kw: torchvision_model(_name, **kw)) for name in TORCHVISION_MODELS},
}
#: any WideResNet by depth and widen factor, e.g. ``wrn-10-1`` for fast tests
WRN_PATTERN = re.compile(r"wrn-(\d+)-(\d+)")


def model_builder(name: str) -> Callable[..., nn.Module]:
    """The builder of model ``name``: a :data:`MODELS` entry or ``wrn-<depth>-<widen>``."""
    if name in MODELS:
        return MODELS[name]
    match = WRN_PATTERN.fullmatch(name)
    if match and int(match[1]) >= 10 and (int(match[1]) - 4) % 6 == 0 and int(match[2]) >= 1:
        return lambda **kw: WideResNet(int(match[1]), int(match[2]), **kw)
    raise UserError(f"unknown model {name!r}; choose from {sorted(MODELS)} or wrn-<depth>-<widen> "
                    "(depth = 6n + 4 >= 10, widen >= 1)")


class ModelNames:
    """The model names the CLI accepts: :data:`MODELS` plus the ``wrn-<depth>-<widen>`` pattern."""

    def __contains__(self, name: object) -> bool:
        try:
            return isinstance(name, str) and model_builder(name) is not None
        except UserError:
            return False

    def __iter__(self) -> Iterator[str]:
        return iter([*sorted(MODELS), "wrn-DEPTH-WIDEN"])




HEAD_OPTIONS = ("scale", "margin", "feature_norm", "weight_norm")


def build_model(
    name: str,
    *,
    num_classes: int = 10,
    in_channels: int = 3,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    head: str = "plain",
    **kwargs: Any,
) -> nn.Module:
    """``build_model("small-cnn", in_channels=1, head="he", scale=15, margin=0.2, width=16)``.

    ``head`` is ``"plain"`` (nn.Linear), ``"he"`` or ``"mhe"`` (HypersphereHead; paper defaults for s and m
    unless given). Keyword arguments named in ``HEAD_OPTIONS`` go to the head, the others to the model
    (e.g. ``width`` of the small CNN). ``mean``/``std``: the input normalisation inside the model.
    """
    builder = model_builder(name)
    check_choice("head", head, HEADS)
    head_kwargs = {k: kwargs.pop(k) for k in HEAD_OPTIONS if k in kwargs}
    if head == "plain" and head_kwargs:
        raise UserError(f"head options {sorted(head_kwargs)} need head='he' or 'mhe'")
    kwargs.update(num_classes=num_classes, in_channels=in_channels)
    if mean is not None:
        kwargs["mean"] = tuple(mean)
    if std is not None:
        kwargs["std"] = tuple(std)
    model = builder(**kwargs)
    if head != "plain":
        model = to_hypersphere(model, **{**head_defaults(head), "variant": head, **head_kwargs})
    return model
