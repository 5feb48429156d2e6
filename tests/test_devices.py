"""Device strings: one parser for every ``device`` argument and ``--device`` flag, with one-line errors for devices
that are not there (``load_run(device="cuda:1")`` used to run on the CPU without a word). CUDA is faked where
the parsing of CUDA strings is tested; ``tests/test_gpu.py`` puts models on real GPUs."""

from __future__ import annotations

import pytest
import torch

from art_he import HEPyTorchClassifier
from art_he.cli import main
from art_he.devices import DEVICE_ENV, parse_device
from art_he.errors import UserError
from art_he.models import build_model
from tests.conftest import one_line_error


@pytest.fixture
def no_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.delenv(DEVICE_ENV, raising=False)


@pytest.fixture
def two_gpus(monkeypatch):
    """What torch reports on a machine with two GPUs, the first one current (nothing is put on them)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.delenv(DEVICE_ENV, raising=False)


@pytest.mark.parametrize("name", ["cpu", "CPU", " cpu ", "cpu:0", torch.device("cpu")])
def test_cpu_strings(name, no_cuda):
    assert parse_device(name) == torch.device("cpu")


@pytest.mark.parametrize("name", [None, "auto", "AUTO"])
def test_the_default_is_the_environment_variable_else_cuda_when_available(name, no_cuda, monkeypatch):
    assert parse_device(name) == torch.device("cpu")
    monkeypatch.setenv(DEVICE_ENV, "cpu")
    assert parse_device(name) == torch.device("cpu")
    monkeypatch.setenv(DEVICE_ENV, "cuda:3")
    with pytest.raises(UserError, match=rf"^\${DEVICE_ENV}: device 'cuda:3' asked for, but CUDA is not available"):
        parse_device(name)


@pytest.mark.parametrize("name, expected", [("cuda", 0), ("gpu", 0), ("CUDA:1", 1), ("gpu:1", 1), ("cuda:0", 0),
                                            (torch.device("cuda", 1), 1), ("auto", 0), (None, 0)])
def test_cuda_strings_carry_their_index(name, expected, two_gpus):
    assert parse_device(name) == torch.device("cuda", expected)


def test_the_environment_variable_picks_a_gpu(two_gpus, monkeypatch):
    monkeypatch.setenv(DEVICE_ENV, "cuda:1")
    assert parse_device(None) == torch.device("cuda", 1)
    assert parse_device("cpu") == torch.device("cpu")  # an explicit device wins


@pytest.mark.parametrize("name, needle", [
    ("cuda:2", "device 'cuda:2' asked for, but 2 CUDA devices are visible (cuda:0 to cuda:1)"),
    ("tpu", "unknown device 'tpu'; use 'cpu', 'cuda', 'cuda:N', 'gpu' or 'auto'"),
    ("cuda:x", "unknown device 'cuda:x'"),
    ("", "unknown device ''"),
    ("mps", "device 'mps' is not supported"),
])
def test_bad_devices_are_one_line_errors(name, needle, two_gpus):
    with pytest.raises(UserError) as error:
        parse_device(name)
    assert needle in str(error.value) and "\n" not in str(error.value)


@pytest.mark.parametrize("name", ["cuda", "gpu", "cuda:0", "cuda:1"])
def test_cuda_without_cuda_is_an_error_not_the_cpu(name, no_cuda):
    with pytest.raises(UserError, match=f"device '{name}' asked for, but CUDA is not available here .*use device"):
        parse_device(name)


def test_a_device_must_be_a_string_or_a_torch_device():
    with pytest.raises(TypeError, match="got int"):
        parse_device(1)


def test_load_run_refuses_a_gpu_it_does_not_have(run_dir, no_cuda):
    from art_he.runs import load_run

    with pytest.raises(UserError, match="device 'cuda:1' asked for, but CUDA is not available"):
        load_run(run_dir, device="cuda:1")
    model, classifier, _ = load_run(run_dir, device="cpu")
    assert classifier.device == torch.device("cpu") and next(model.parameters()).device.type == "cpu"


def test_eval_refuses_a_missing_gpu_in_one_line(run_dir, no_cuda, capsys):
    assert main(["eval", str(run_dir), "--attacks", "fgsm", "--n", "8", "--device", "cuda:1"]) == 2
    one_line_error(capsys, "device 'cuda:1' asked for, but CUDA is not available here")
    assert main(["eval", str(run_dir), "--attacks", "fgsm", "--n", "8", "--device", "tpu"]) == 2
    one_line_error(capsys, "unknown device 'tpu'")


def test_train_refuses_a_missing_gpu_before_reading_data(no_cuda, capsys, tmp_path):
    assert main(["train", "--device", "cuda", "--out", str(tmp_path / "run"), "--data-dir", str(tmp_path)]) == 2
    one_line_error(capsys, "device 'cuda' asked for")


def test_the_classifier_takes_a_device_or_arts_device_type_not_both(no_cuda):
    model = build_model("small-cnn", in_channels=1, width=4, head="he")
    classifier = HEPyTorchClassifier(model, None, (1, 28, 28), 10, device="cpu")
    assert classifier.device == torch.device("cpu") and classifier.device_type == "cpu"
    with pytest.raises(UserError, match="give device or ART's device_type, not both"):
        HEPyTorchClassifier(model, None, (1, 28, 28), 10, device="cpu", device_type="cpu")
    with pytest.raises(UserError, match="CUDA is not available"):
        HEPyTorchClassifier(model, None, (1, 28, 28), 10, device="cuda")


def test_clones_and_views_stay_on_the_classifiers_device(no_cuda):
    from art_he.estimator import classifier_view

    model = build_model("small-cnn", in_channels=1, width=4, head="he")
    classifier = HEPyTorchClassifier(model, None, (1, 28, 28), 10, torch.optim.SGD(model.parameters(), lr=0.1),
                                     device="cpu", attack_loss="margin")
    clone = classifier.clone_for_refitting()
    assert clone.device == classifier.device and clone.attack_loss == "margin"
    assert type(clone.optimizer) is torch.optim.SGD and clone.model is not model
    assert classifier_view(classifier).device == classifier.device
    assert classifier_view(classifier, attack_loss="raw").device == classifier.device
