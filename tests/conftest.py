"""Shared fixtures: small real data (Fashion-MNIST subsets) and tiny trained models, built once per session; the
state of the git checkout before the suite, which its last test compares with the state after it."""

from __future__ import annotations

import os
import subprocess
from contextlib import contextmanager
from pathlib import Path

from art_he.threads import prefer_passive_wait

prefer_passive_wait()  # as every art-he command: before torch is imported, so that a busy core does not stall it

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from art_he.devices import DEVICE_ENV  # noqa: E402

#: the suite computes on the CPU, where its bitwise and tolerance checks hold on every machine (subprocesses and
#: notebook kernels inherit it); the tests marked gpu (tests/test_gpu.py) name their CUDA devices
os.environ[DEVICE_ENV] = "cpu"
#: cuBLAS is deterministic only with a fixed workspace, set before CUDA starts (the gpu tests compare bitwise)
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")

ROOT = Path(__file__).resolve().parent.parent
#: what Python, pytest, ruff and pip write into any checkout (never the suite's own files)
CACHES = ("__pycache__/", ".pytest_cache/", ".ruff_cache/", ".egg-info/", ".venv/")
TREE = pytest.StashKey[list]()
LAST = "test_the_suite_leaves_the_tree_as_it_found_it"


def tree_state(root: Path = ROOT) -> list[str] | None:
    """``git status --porcelain --ignored`` of the checkout (changed, new and ignored files), caches left out;
    ``None`` where the tree is not a git checkout."""
    try:
        done = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--ignored"], capture_output=True,
                              text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode:
        return None
    return sorted(line for line in done.stdout.splitlines() if not any(cache in line for cache in CACHES))


def pytest_addoption(parser) -> None:
    parser.addoption("--auto-precision", choices=("bf16", "fp32"), default=None,
                     help="what precision='auto' resolves to in this process, whatever the CPU (default: bf16 where "
                          "it has native bf16): run the suite both ways on one machine")


@pytest.fixture
def auto_precision(monkeypatch):
    """``auto_precision("bf16")`` or ``("fp32")``: what ``precision="auto"`` resolves to from then on in this test."""

    def force(precision: str) -> None:
        monkeypatch.setattr("art_he.precision.native_bf16", lambda device: precision == "bf16")

    return force


@pytest.fixture(scope="session", autouse=True)
def _auto_precision_option(request):
    """``pytest --auto-precision P`` forces ``precision="auto"`` to ``P`` for the whole session (in this process,
    session fixtures included)."""
    forced = request.config.getoption("--auto-precision")
    with pytest.MonkeyPatch.context() as patch:
        if forced:
            patch.setattr("art_he.precision.native_bf16", lambda device: forced == "bf16")
        yield


def pytest_sessionstart(session) -> None:
    session.config.stash[TREE] = tree_state()


def pytest_collection_modifyitems(session, config, items) -> None:
    items.sort(key=lambda item: item.name == LAST)  # stable: the tree check runs after every other test


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


def make_classifier(model=None, lr: float = 0.05, *, head: str = "plain", width: int = 8, name: str = "small-cnn",
                    seed: int = 0, **model_kwargs):
    """An HEPyTorchClassifier of 28x28 grey images in [0, 1] on the CPU, with SGD (momentum 0.9), around ``model``;
    by default a ``name`` model with ``head``, built after ``torch.manual_seed(seed)``."""
    from art_he import HEPyTorchClassifier
    from art_he.models import build_model

    if model is None:
        torch.manual_seed(seed)
        model = build_model(name, in_channels=1, head=head, width=width, **model_kwargs)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    return HEPyTorchClassifier(model, None, (1, 28, 28), 10, optimizer, clip_values=(0.0, 1.0), device_type="cpu")


def make_trainer(framework: str, head: str = "he", model_kwargs: dict | None = None, *, pgd_steps: int = 2,
                 seed: int = 0, width: int = 8, **options):
    """A ``framework`` trainer of a fresh :func:`make_classifier` (its model from seed 0): eps 0.1, fp32, silent,
    ``seed``; a framework that takes ``max_iter`` attacks with ``pgd_steps`` steps of 0.04. ``options`` override
    these; ``model_kwargs`` go to the model."""
    from art_he.trainers import FRAMEWORKS

    cls = FRAMEWORKS[framework]
    defaults = {"eps": 0.1, "precision": "fp32", "seed": seed, "verbose": False}
    if "max_iter" in cls.options:
        defaults.update(eps_step=0.04, max_iter=pgd_steps)
    return cls(make_classifier(head=head, width=width, **(model_kwargs or {})), **{**defaults, **options})


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


@contextmanager
def kept_registries():
    """The registries of frameworks, attacks, models and data sets as they were before, once the block is left
    (what an extension registers in a test stays in that test)."""
    from art_he.data import DATASETS
    from art_he.evaluation.catalog import CATALOG
    from art_he.models.factory import MODELS
    from art_he.trainers import FRAMEWORKS

    saved = [(registry, dict(registry)) for registry in (FRAMEWORKS, CATALOG, MODELS, DATASETS)]
    try:
        yield
    finally:
        for registry, before in saved:
            registry.clear()
            registry.update(before)


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
    """CIFAR-10 in its real on-disk format (``art_he.data.cifar10.save_cifar10``): five training batches and a test
    batch of ``n`` random images each (``test_images`` uint8 (N, 3, 32, 32) and ``test_labels`` replace the test
    batch). Returns ``{file: (data uint8 (n, 3072), labels)}``."""
    from art_he.data.cifar10 import save_cifar10

    rng = np.random.default_rng(seed)
    x, y = rng.integers(0, 256, (5 * n, 3, 32, 32), dtype=np.uint8), rng.integers(0, 10, 5 * n)
    if test_images is None:
        test_images, test_labels = rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8), rng.integers(0, 10, n)
    save_cifar10(root, (x, y), (np.asarray(test_images, dtype=np.uint8), test_labels),
                 label_names=[f"c{i}" for i in range(10)])
    batches = {f"data_batch_{i + 1}": (x[i * n:(i + 1) * n].reshape(n, -1), y[i * n:(i + 1) * n].tolist())
               for i in range(5)}
    batches["test_batch"] = (np.asarray(test_images, dtype=np.uint8).reshape(len(test_images), -1),
                             list(map(int, test_labels)))
    return batches


@pytest.fixture
def run_dir(tmp_path):
    """A saved run folder of a small HE model (width 4, Fashion-MNIST shapes), for loading it on some device."""
    from art_he.models import build_model
    from art_he.runs import save_run

    torch.manual_seed(0)
    model = build_model("small-cnn", in_channels=1, width=4, head="he").eval()
    return save_run(tmp_path / "run", model, {"dataset": "fashion-mnist", "model": "small-cnn", "head": "he",
                                              "model_kwargs": {"width": 4}})
