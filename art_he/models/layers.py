"""Small layers shared by the models: input normalisation and the pre-activation residual block."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from art_he.errors import UserError

#: CIFAR-10 channel statistics, the input normalisation of the CIFAR models
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2471, 0.2435, 0.2616)
CIFAR100_MEAN = (0.5071, 0.4865, 0.4409)
CIFAR100_STD = (0.2673, 0.2564, 0.2762)


class Normalize(nn.Module):
    """``(x - mean) / std`` per channel, so models take inputs in [0, 1] as ART and RobustBench expect."""

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        if len(mean) != len(std):
            raise UserError(f"mean and std differ in length: {len(mean)} != {len(std)}")
        if any(s <= 0 for s in std):
            raise UserError(f"std must be > 0, got {list(std)}")
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class PreActBlock(nn.Module):
    """Pre-activation residual block (He et al., 2016) of PreAct ResNet and WRN:
    ``conv2(relu(bn2(conv1(relu(bn1(x)))))) + shortcut``, the shortcut ``x`` or, when the shape changes, a strided
    1x1 conv of ``relu(bn1(x))``."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, stride=1, padding=1, bias=False)
        self.shortcut = None if c_in == c_out and stride == 1 else nn.Conv2d(c_in, c_out, 1, stride, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(x))
        shortcut = x if self.shortcut is None else self.shortcut(out)
        residual: torch.Tensor = self.conv2(F.relu(self.bn2(self.conv1(out))))
        return residual + shortcut
