"""HE training starts (issue 34): a default HE model leaves chance within its first epoch; the small CNN's hidden
BatchNorm keeps ``||z||`` in check; run folders of the small CNN from before it still load."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from art_he.heads import find_head
from art_he.models import build_model
from art_he.runs import load_run, make_classifier, save_run
from art_he.trainers import PGDATTrainer

#: training accuracy of the first epoch below which HE counts as stuck (chance is 0.10). Measured on 1,024 images,
#: 16 steps, seeds 0-5: the default HE model 0.41-0.52 in fp32 and 0.39-0.53 in bf16 (plain 0.43-0.50); the old
#: default (WN inside the graph, no hidden BatchNorm) 0.15-0.23, which this test fails
LEFT_CHANCE = 0.30


def first_epoch(seed: int, fmnist, **model_kwargs) -> float:
    (x, y), (xt, yt) = fmnist
    torch.manual_seed(seed)
    model = build_model("small-cnn", in_channels=1, width=8, mean=(0.286,), std=(0.353,), head="he", **model_kwargs)
    trainer = PGDATTrainer(make_classifier(model, "fashion-mnist", lr=0.05, device="cpu"), eps=0.1, max_iter=3,
                           seed=seed, verbose=False)  # precision "auto": bf16 on a CPU with native bf16
    history = trainer.fit(x[:1024], y[:1024], batch_size=64, nb_epochs=1)
    return history[-1]["clean_acc"]


@pytest.fixture(scope="module")
def fmnist():
    from art_he.data import load_dataset

    return load_dataset("fashion-mnist", train=True), load_dataset("fashion-mnist", train=False)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_default_he_model_leaves_chance_within_its_first_epoch(seed, fmnist):
    assert first_epoch(seed, fmnist) >= LEFT_CHANCE


def test_the_hidden_batchnorm_keeps_the_features_norm_in_check(fmnist):
    """One HE step on the small CNN without hidden BatchNorm multiplies ``||z||`` several times (the step of the
    hidden layer moves every ``z`` along the batch's mean gradient with gain ``||h||^2``); with it, ``||z||`` stays
    within a factor of 1.5. Measured here (seed 0, batch statistics): x5.2 without, x1.01 with."""
    (x, y), _ = fmnist
    growth = {}
    for hidden_norm in (True, False):
        torch.manual_seed(0)
        model = build_model("small-cnn", in_channels=1, width=16, head="he", hidden_norm=hidden_norm)
        trainer = PGDATTrainer(make_classifier(model, "fashion-mnist", lr=0.05, device="cpu"), eps=0.1, max_iter=3,
                               precision="fp32", seed=0, verbose=False)
        probe = torch.as_tensor(x[:256])

        def z_norm(model=model, probe=probe) -> float:
            with torch.no_grad():
                return float(model.train().features(model.normalize(probe)).norm(dim=1).mean())  # batch statistics

        before = z_norm()
        trainer.fit(x[:128], y[:128], batch_size=128, nb_epochs=1)
        growth[hidden_norm] = z_norm() / before
    assert growth[True] < 1.5 and growth[False] > 3, growth


def test_a_small_cnn_run_from_before_the_hidden_batchnorm_loads(tmp_path):
    torch.manual_seed(0)
    old = build_model("small-cnn", in_channels=1, width=4, head="he", hidden_norm=False).eval()
    run = save_run(tmp_path / "run", old, {"dataset": "fashion-mnist", "model": "small-cnn", "head": "he",
                                            "model_kwargs": {"width": 4}})
    model, classifier, _ = load_run(run, device="cpu")
    assert not any(isinstance(m, torch.nn.BatchNorm1d) for m in model.modules())
    x = np.random.default_rng(0).random((3, 1, 28, 28), dtype=np.float32)
    with torch.no_grad():
        np.testing.assert_allclose(classifier.predict(x), old(torch.from_numpy(x)).numpy(), atol=1e-6)
    new = build_model("small-cnn", in_channels=1, width=4, head="he")
    assert any(isinstance(m, torch.nn.BatchNorm1d) for m in new.modules()) and find_head(new) is not None
