"""Build a model by name, with a plain, HE or m-HE head."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from art_he.defaults import HEADS, head_defaults
from art_he.errors import UserError
from art_he.heads import to_hypersphere
from art_he.models.preact_resnet import PreActResNet18
from art_he.models.small_cnn import SmallCNN
from art_he.models.wide_resnet import WideResNet

MODELS: dict[str, Callable[..., nn.Module]] = {
    "small-cnn": SmallCNN,
    "small-cnn-nobn": lambda **kw: SmallCNN(batch_norm=False, **kw),
    "preact-resnet18": PreActResNet18,
    "wrn-34-10": lambda **kw: WideResNet(34, 10, **kw),
    "wrn-34-20": lambda **kw: WideResNet(34, 20, **kw),
}
HEAD_OPTIONS = ("scale", "margin", "feature_norm", "weight_norm")


def build_model(
    name: str,
    *,
    num_classes: int = 10,
    in_channels: int = 3,
    mean=None,
    std=None,
    head: str = "plain",
    **kwargs,
) -> nn.Module:
    """``build_model("small-cnn", in_channels=1, head="he", scale=15, margin=0.2, width=16)``.

    ``head`` is ``"plain"`` (nn.Linear), ``"he"`` or ``"mhe"`` (HypersphereHead; paper defaults for s and m
    unless given). Keyword arguments named in ``HEAD_OPTIONS`` go to the head, the others to the model
    (e.g. ``width`` of the small CNN). ``mean``/``std``: the input normalisation inside the model.
    """
    if name not in MODELS:
        raise UserError(f"unknown model {name!r}; choose from {sorted(MODELS)}")
    if head not in HEADS:
        raise UserError(f"unknown head {head!r}; choose from {HEADS}")
    head_kwargs = {k: kwargs.pop(k) for k in HEAD_OPTIONS if k in kwargs}
    if head == "plain" and head_kwargs:
        raise UserError(f"head options {sorted(head_kwargs)} need head='he' or 'mhe'")
    kwargs.update(num_classes=num_classes, in_channels=in_channels)
    if mean is not None:
        kwargs["mean"] = tuple(mean)
    if std is not None:
        kwargs["std"] = tuple(std)
    model = MODELS[name](**kwargs)
    if head != "plain":
        model = to_hypersphere(model, **{**head_defaults(head), "variant": head, **head_kwargs})
    return model
