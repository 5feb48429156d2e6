"""A small 4-conv CNN for 28x28 grey images (Fashion-MNIST, MNIST)."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from art_he.errors import UserError
from art_he.models.layers import Normalize


def _conv_block(c_in: int, c_out: int, batch_norm: bool) -> list[nn.Module]:
    layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, 3, padding=1, bias=not batch_norm)]
    if batch_norm:
        layers.append(nn.BatchNorm2d(c_out))
    layers.append(nn.ReLU(inplace=True))
    return layers


class SmallCNN(nn.Module):
    """conv-conv-pool-conv-conv-pool, then ``fc`` (hidden) and the final ``linear``.

    ``batch_norm=False`` gives a model whose forward does not depend on the batch (DDP equivalence tests).
    """

    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 1,
        width: int = 32,
        hidden: int = 128,
        image_size: int = 28,
        batch_norm: bool = True,
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
            nn.Linear(2 * width * (image_size // 4) ** 2, hidden),
            nn.ReLU(inplace=True),
        )
        self.linear = nn.Linear(hidden, num_classes)

    def forward(self, x):
        return self.linear(self.features(self.normalize(x)))
