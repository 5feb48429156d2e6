"""Our models in RobustBench's architectures and back: which architecture has the identical forward, and the
state-dict key maps.

RobustBench (1.1.1) has three architectures whose forward is exactly one of ours, input normalisation included:

========================================  ==================================================================
ours                                      RobustBench (``robustbench.model_zoo``)
========================================  ==================================================================
WRN-D-W with an HE head (FN and WN on)    ``architectures.boosting_wide_resnet.BoostingWideResNet(D, W)``
WRN-D-W with a plain head                 ``cifar10.Rice2020OverfittingNet(D, W)`` (TRADES WRN + mu/sigma)
PreAct ResNet-18 with a plain head        ``cifar10.Rice2020OverfittingNetL2`` (``PreActBlockV2``, final BN)
========================================  ==================================================================

TRADES' ``BasicBlock`` is our :class:`~art_he.models.layers.PreActBlock`: the shortcut is ``x`` or a 1x1 conv of
``relu(bn1(x))``; RobustBench pools with ``avg_pool2d(8)`` (``4`` for the ResNet), which is our global pooling on
32x32 inputs. ``BoostingWideResNet`` returns the raw cosines ``FN(z) @ WN(W).T``, which is what our
:class:`~art_he.heads.HypersphereHead` returns (the scale s only enters the loss). It also holds ``sub_block1``,
built but never used in ``forward``; RobustBench loads strictly, so the export fills it with ``block1``'s tensors.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import torch
from torch import nn

from art_he.errors import UserError
from art_he.heads import find_head
from art_he.models.layers import PreActBlock
from art_he.models.preact_resnet import PreActResNet18
from art_he.models.wide_resnet import WideResNet

SUPPORTED = ("WideResNet-D-W with an HE head (BoostingWideResNet) or a plain head (Rice2020OverfittingNet), "
             "PreAct ResNet-18 with a plain head (Rice2020OverfittingNetL2); 3-channel 32x32 inputs, 10 classes")


@dataclass(frozen=True)
class Architecture:
    """A RobustBench architecture: where its class lives, its arguments, and the name a model card gives it."""

    module: str  # e.g. "robustbench.model_zoo.architectures.boosting_wide_resnet"
    cls: str
    kwargs: tuple[tuple[str, int], ...]
    label: str  # model card's ``architecture``, e.g. "WideResNet-34-20"
    hypersphere: bool

    def build(self) -> nn.Module:
        """RobustBench's own module, built by RobustBench's own class."""
        from importlib import import_module

        from art_he.robustbench.imports import import_robustbench

        import_robustbench()
        module: nn.Module = getattr(import_module(self.module), self.cls)(**dict(self.kwargs))
        return module

    def factory(self) -> Callable[[], nn.Module]:
        """A zero-argument constructor, as RobustBench's model zoo holds them."""
        return self.build

    def to_json(self) -> dict[str, Any]:
        return {"module": self.module, "class": self.cls, "kwargs": dict(self.kwargs), "label": self.label,
                "hypersphere": self.hypersphere}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Architecture:
        return cls(data["module"], data["class"], tuple(sorted(data["kwargs"].items())), data["label"],
                   bool(data["hypersphere"]))


def wrn_shape(model: WideResNet) -> tuple[int, int]:
    """``(depth, widen_factor)`` of one of our WideResNets."""
    n = len(model.blocks) // 3
    first = cast(PreActBlock, model.blocks[0])  # nn.Sequential types its items as nn.Module
    return 6 * n + 4, first.conv1.out_channels // 16


def architecture_of(model: nn.Module) -> Architecture:
    """The RobustBench architecture whose forward equals ``model``'s, or a one-line error naming what is supported."""
    head = find_head(model)
    if head is not None and not (head.feature_norm and head.weight_norm != "none"):
        off = " and ".join(n for n, on in (("FN", head.feature_norm), ("WN", head.weight_norm != "none")) if not on)
        raise UserError(f"the model's HE head has {off} turned off; RobustBench's BoostingWideResNet always "
                        "normalises features and weights, so it would compute another function")
    if not isinstance(model, (WideResNet, PreActResNet18)):
        raise UserError(f"RobustBench has no architecture with the forward of {type(model).__name__}; supported: "
                        f"{SUPPORTED}")
    if model.conv1.in_channels != 3:
        raise UserError(f"RobustBench's CIFAR architectures take 3-channel images, the model takes "
                        f"{model.conv1.in_channels}; supported: {SUPPORTED}")
    classes = head.num_classes if head is not None else (model.fc if isinstance(model, WideResNet)
                                                          else model.linear).out_features
    if classes != 10:
        raise UserError(f"RobustBench's CIFAR-10 architectures have 10 classes, the model has {classes}")
    if isinstance(model, PreActResNet18):
        if head is not None:
            raise UserError(f"RobustBench has no PreAct ResNet-18 with a hypersphere head; supported: {SUPPORTED}")
        return Architecture("robustbench.model_zoo.cifar10", "Rice2020OverfittingNetL2", (), "PreActResNet-18",
                            False)
    depth, widen = wrn_shape(model)
    kwargs = (("depth", depth), ("widen_factor", widen))
    if head is not None:
        return Architecture("robustbench.model_zoo.architectures.boosting_wide_resnet", "BoostingWideResNet",
                            kwargs, f"WideResNet-{depth}-{widen}", True)
    return Architecture("robustbench.model_zoo.cifar10", "Rice2020OverfittingNet", kwargs,
                        f"WideResNet-{depth}-{widen}", False)


# ---- key maps: ours <-> TRADES/RobustBench names -------------------------------------------------------------
_COMMON = {"normalize.mean": "mu", "normalize.std": "sigma", "conv1.weight": "conv1.weight"}


def wrn_key(ours: str, n: int) -> str:
    match = re.fullmatch(r"blocks\.(\d+)\.(.+)", ours)
    if match:
        k, rest = int(match[1]), match[2].replace("shortcut.", "convShortcut.")
        return f"block{k // n + 1}.layer.{k % n}.{rest}"
    if ours.startswith("bn."):
        return "bn1." + ours[3:]
    return _COMMON.get(ours, ours)


def _preact_key(ours: str) -> str:
    match = re.fullmatch(r"layers\.(\d+)\.(.+)", ours)
    if match:
        k, rest = int(match[1]), match[2].replace("shortcut.", "shortcut.0.")
        return f"layer{k // 2 + 1}.{k % 2}.{rest}"
    return _COMMON.get(ours, ours)


def to_robustbench_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """``model``'s tensors under RobustBench's key names for :func:`architecture_of` (plain CPU tensors)."""
    arch = architecture_of(model)
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    if isinstance(model, PreActResNet18):
        return {_preact_key(k): v for k, v in state.items()}
    n = len(cast(WideResNet, model).blocks) // 3  # architecture_of: not a PreActResNet18, so a WideResNet
    out = {wrn_key(k, n): v for k, v in state.items()}
    if arch.hypersphere:  # built and never used by BoostingWideResNet's forward; strict loading wants it
        out.update({"sub_" + k: v.clone() for k, v in list(out.items()) if k.startswith("block1.")})
    return out


def from_trades_state_dict(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A TRADES/RobustBench WideResNet state dict (``module.`` prefixes, ``sub_block1`` and ``mu``/``sigma``
    allowed) under our :class:`~art_he.models.wide_resnet.WideResNet` names."""
    state = {k.removeprefix("module."): v for k, v in state.items()}
    n = len({k.split(".")[2] for k in state if k.startswith("block1.layer.")})
    if n == 0:
        raise UserError("not a WideResNet state dict: it has no block1.layer.* tensors")
    out = {}
    for key, value in state.items():
        match = re.fullmatch(r"block([123])\.layer\.(\d+)\.(.+)", key)
        if match:
            rest = match[3].replace("convShortcut.", "shortcut.")
            out[f"blocks.{(int(match[1]) - 1) * n + int(match[2])}.{rest}"] = value
        elif key.startswith("bn1."):
            out["bn." + key[4:]] = value
        elif key in ("mu", "sigma"):
            out["normalize." + ("mean" if key == "mu" else "std")] = value
        elif not key.startswith("sub_block1."):
            out[key] = value
    return out


def wrn_shape_of_state(state: dict[str, torch.Tensor]) -> tuple[int, int, int]:
    """``(depth, widen_factor, num_classes)`` of a TRADES/RobustBench WideResNet state dict."""
    state = {k.removeprefix("module."): v for k, v in state.items()}
    blocks = {k.split(".")[2] for k in state if k.startswith("block1.layer.")}
    if not blocks or "fc.weight" not in state or "block1.layer.0.conv1.weight" not in state:
        raise UserError("not a TRADES/RobustBench WideResNet state dict (needs block1.layer.0.conv1.weight and "
                        "fc.weight)")
    return 6 * len(blocks) + 4, state["block1.layer.0.conv1.weight"].shape[0] // 16, state["fc.weight"].shape[0]


def to_robustbench(model: nn.Module) -> nn.Module:
    """``model`` as RobustBench sees it: RobustBench's own architecture, loaded strictly, in eval mode."""
    rb_model = architecture_of(model).build()
    rb_model.load_state_dict(to_robustbench_state_dict(model), strict=True)
    return rb_model.eval()
