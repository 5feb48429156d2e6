"""A small 4-conv CNN for 28x28 grey images (Fashion-MNIST, MNIST)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from art_he.errors import UserError
from art_he.models.layers import Normalize


def _conv_block(c_in: int, c_out: int, batch_norm: bool) -> list[nn.Module]:
    layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, 3, padding=1, bias=not batch_norm)]
    if batch_norm:
        layers.append(nn.BatchNorm2d(c_out))
    layers.append(nn.ReLU(inplace=True))
    return layers


def _hidden_block(n_in: int, n_out: int, batch_norm: bool) -> list[nn.Module]:
    layers: list[nn.Module] = [nn.Linear(n_in, n_out, bias=not batch_norm)]
    if batch_norm:
        layers.append(nn.BatchNorm1d(n_out))
    layers.append(nn.ReLU(inplace=True))
    return layers


def legacy_kwargs(state: Mapping[str, object]) -> dict[str, bool]:
    """``{"hidden_norm": False}`` for the weights of a SmallCNN with BatchNorm in its conv layers but none in its
    hidden layer (the model before ``hidden_norm`` existed), else ``{}``."""
    conv_bn = "features.1.running_mean" in state
    hidden_bn = any(k.startswith("features.16.") and k.endswith("running_mean") for k in state)
    return {"hidden_norm": False} if conv_bn and not hidden_bn else {}


class SmallCNN(nn.Module):
    """conv-conv-pool-conv-conv-pool, then a hidden layer (linear, BatchNorm, ReLU) and the final ``linear``.

    The hidden layer's BatchNorm (``hidden_norm``) is there for HE: like the authors' networks (WRN, ResNet:
    BN-ReLU-pool before FN), the features ``z`` entering the head then keep the scale BatchNorm gives them.
    Without it, one SGD step of the hidden linear layer moves every ``z`` along the batch's mean gradient with a
    gain ``||h||^2`` (``h`` the flattened conv features), ``||z||`` grows fortyfold within 48 steps, and since
    FN divides the body's gradient by ``||z||`` the HE model barely learns in its first epochs
    (``benchmarks/he_start.py``). ``hidden_norm=False`` is the model of the studies made before (and of run
    folders written before; :func:`legacy_kwargs` recognises their weights).

    ``batch_norm=False`` gives a model whose forward does not depend on the batch (DDP equivalence tests); it has
    no BatchNorm anywhere.
    """

    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 1,
        width: int = 32,
        hidden: int = 128,
        image_size: int = 28,
        batch_norm: bool = True,
        hidden_norm: bool = True,
        mean: Sequence[float] = (0.5,),
        std: Sequence[float] = (0.5,),
    ) -> None:
        super().__init__()
        if image_size % 4:
            raise UserError(f"image_size must be divisible by 4, got {image_size}")
        self.normalize = Normalize(mean, std)
        self.features = nn.Sequential(
            *_conv_block(in_channels, width, batch_norm),
            *_conv_block(width, width, batch_norm),
            nn.MaxPool2d(2),
            *_conv_block(width, 2 * width, batch_norm),
            *_conv_block(2 * width, 2 * width, batch_norm),
            nn.MaxPool2d(2),
            nn.Flatten(),
            *_hidden_block(2 * width * (image_size // 4) ** 2, hidden, batch_norm and hidden_norm),
        )
        self.linear = nn.Linear(hidden, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits: torch.Tensor = self.linear(self.features(self.normalize(x)))
        return logits
