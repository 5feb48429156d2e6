"""Small layers shared by the models."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from art_he.errors import UserError


class Normalize(nn.Module):
    """``(x - mean) / std`` per channel, so models take inputs in [0, 1] as ART and RobustBench expect."""

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
