"""Shared fixtures: small real data (Fashion-MNIST subsets) and tiny trained models, built once per session."""

from __future__ import annotations

import numpy as np
import pytest
import torch

torch.set_num_threads(max(1, torch.get_num_threads()))


@pytest.fixture(scope="session")
def fmnist_train():
    from art_he.data import load_dataset

    x, y = load_dataset("fashion-mnist", train=True)
    return x[:4000], y[:4000]


@pytest.fixture(scope="session")
def fmnist_test():
    from art_he.data import load_dataset

    x, y = load_dataset("fashion-mnist", train=False)
    return x[:500], y[:500]


def make_classifier(model, lr=0.05, **kwargs):
    from art_he import HEPyTorchClassifier

    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    return HEPyTorchClassifier(model, None, (1, 28, 28), 10, optimizer, clip_values=(0.0, 1.0), device_type="cpu",
                               **kwargs)


@pytest.fixture(scope="session")
def trained_he_classifier(fmnist_train):
    """A small-cnn with an HE head trained (clean, CE_m) for 2 epochs on 4,000 Fashion-MNIST images."""
    from art_he.models import build_model

    torch.manual_seed(0)
    model = build_model("small-cnn", in_channels=1, head="he", width=8)
    classifier = make_classifier(model)
    x, y = fmnist_train
    classifier.fit(x, y, batch_size=64, nb_epochs=2, verbose=False)
    model.eval()
    return classifier


def accuracy(classifier, x, y) -> float:
    return float((np.argmax(classifier.predict(x), axis=1) == y).mean())


def one_line_error(capsys, *needles) -> str:
    """The captured stderr: one line, no traceback, naming every one of ``needles``."""
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in err, (needle, err)
    return err
