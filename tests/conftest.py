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


def write_cifar10(root, n: int = 10, seed: int = 0, test_images=None, test_labels=None) -> dict:
    """CIFAR-10 in its real on-disk format under ``root/cifar-10-batches-py``: five training batches and a test
    batch of ``n`` random images each (``test_images`` uint8 (N, 3, 32, 32) and ``test_labels`` replace the test
    batch), plus ``batches.meta``. Returns ``{file: (data uint8 (n, 3072), labels)}``."""
    import pickle
    from pathlib import Path

    rng = np.random.default_rng(seed)
    folder = Path(root) / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    batches = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        labels = rng.integers(0, 10, n).tolist()
        if name == "test_batch" and test_images is not None:
            data, labels = np.asarray(test_images, dtype=np.uint8).reshape(len(test_images), -1), list(test_labels)
        with open(folder / name, "wb") as f:
            pickle.dump({"batch_label": name, "data": data, "labels": labels}, f)
        batches[name] = (data, labels)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": [f"c{i}" for i in range(10)]}, f)
    return batches
