"""torchvision's ImageNet ResNets (the paper's Table 4: ResNet-50, ResNet-152, WRN-50-2, WRN-101-2) with input
normalisation inside."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torchvision
from torch import nn

from art_he.models.layers import Normalize

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
TORCHVISION_MODELS = ("resnet18", "resnet50", "resnet152", "wide_resnet50_2", "wide_resnet101_2")


class Normalized(nn.Module):
    """``model(normalize(x))``: a torchvision classifier on inputs in [0, 1]."""

    def __init__(self, model: nn.Module, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        self.normalize = Normalize(mean, std)
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits: torch.Tensor = self.model(self.normalize(x))
        return logits


def torchvision_model(name: str, num_classes: int = 1000, in_channels: int = 3,
                      mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD) -> nn.Module:
    """``torchvision.models.<name>(num_classes=...)``, randomly initialised, behind a :class:`Normalize`."""
    model = getattr(torchvision.models, name)(weights=None, num_classes=num_classes)
    if in_channels != 3:
        conv = model.conv1
        model.conv1 = nn.Conv2d(in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                                bias=False)
    return Normalized(model, mean, std)
