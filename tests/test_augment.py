"""On-device random crop (pad 4) and horizontal flip: torchvision's transforms, batched, drawn from the seed."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision.transforms.functional as TF

from art_he import HEPyTorchClassifier
from art_he.config import TrainConfig
from art_he.data.augment import crop_flip, draw_crop_flip
from art_he.models import build_model
from art_he.trainers import PGDATTrainer


def test_crop_flip_is_torchvisions_crop_of_the_padded_image_then_flip():
    x = torch.rand(16, 3, 32, 32, dtype=torch.float64)
    dy, dx, flip = draw_crop_flip(16, 4, torch.Generator().manual_seed(0))
    assert 0 <= int(dy.min()) and int(dy.max()) <= 8 and 0 < int(flip.sum()) < 16
    out = crop_flip(x, dy, dx, flip, 4)
    for i in range(16):
        expected = TF.crop(TF.pad(x[i], 4), int(dy[i]), int(dx[i]), 32, 32)
        assert torch.equal(out[i], TF.hflip(expected) if flip[i] else expected)


def _trainer(augment: bool, seed: int = 0) -> PGDATTrainer:
    torch.manual_seed(0)
    model = build_model("small-cnn", in_channels=1, width=4)
    classifier = HEPyTorchClassifier(model, None, (1, 28, 28), 10, torch.optim.SGD(model.parameters(), lr=0.01),
                                     clip_values=(0.0, 1.0), device_type="cpu")
    return PGDATTrainer(classifier, eps=0.1, max_iter=1, seed=seed, augment=augment, precision="fp32",
                        verbose=False)


def _seen(trainer: PGDATTrainer, x: np.ndarray, y: np.ndarray, epochs: int = 1) -> list[torch.Tensor]:
    seen = []
    train_batch = trainer.train_batch
    trainer.train_batch = lambda xb, yb: (seen.append(xb.clone()), train_batch(xb, yb))[1]
    trainer.fit(x, y, batch_size=16, nb_epochs=epochs)
    return seen


def test_fit_augments_every_batch_reproducibly_from_the_seed():
    x = np.random.default_rng(0).random((32, 1, 28, 28), dtype=np.float32)
    y = np.arange(32) % 10
    plain, augmented = _seen(_trainer(False), x, y), _seen(_trainer(True), x, y)
    assert all(not torch.equal(a, b) for a, b in zip(plain, augmented))
    # each augmented image is a shifted (and maybe flipped) copy of the image the plain run saw
    for a, b in zip(plain, augmented):  # a crop of the zero-padded image loses mass, never gains it
        assert bool((b.sum((1, 2, 3)) <= a.sum((1, 2, 3)) + 1e-4).all())
    again = _seen(_trainer(True), x, y)
    assert all(torch.equal(a, b) for a, b in zip(augmented, again))
    other_seed = _seen(_trainer(True, seed=1), x, y)
    assert not all(torch.equal(a, b) for a, b in zip(augmented, other_seed))


def test_loaders_bring_their_own_transforms():
    from torch.utils.data import DataLoader, TensorDataset

    loader = DataLoader(TensorDataset(torch.rand(8, 1, 28, 28), torch.zeros(8, dtype=torch.long)), batch_size=4)
    with pytest.raises(ValueError, match="augment=True applies to fit"):
        _trainer(True).fit_loader(loader, nb_epochs=1)


def test_augmentation_defaults_per_dataset():
    assert TrainConfig(dataset="cifar10").resolved().augment is True
    assert TrainConfig(dataset="fashion-mnist").resolved().augment is False
    assert TrainConfig(dataset="cifar10", augment=False).resolved().augment is False
