"""art_he.robustbench.zoo: RobustBench zoo entries and the authors' AT_HE checkpoints as ART classifiers, from local
files only.

The checkpoints are written here, at small depth and width, with the real key layouts (TRADES WideResNet keys,
``sub_block1``, ``fc`` without bias, ``module.`` prefixes, RobustBench's ``mu``/``sigma``)."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest
import torch
from art.estimators.classification import PyTorchClassifier
from torch import nn

from art_he import HEPyTorchClassifier
from art_he.errors import MissingFileError, UserError
from art_he.heads import find_head
from art_he.models import build_model
from art_he.models.wide_resnet import WideResNet
from art_he.robustbench import import_robustbench
from art_he.robustbench.architectures import to_robustbench_state_dict
from art_he.robustbench.zoo import AT_HE_MEAN, AT_HE_STD, load_at_he, load_robustbench, zoo_classifier_for_eval

rb = import_robustbench()
from robustbench.model_zoo.architectures.boosting_wide_resnet import BoostingWideResNet  # noqa: E402
from robustbench.model_zoo.cifar10 import Rice2020OverfittingNet  # noqa: E402
from robustbench.model_zoo.enums import BenchmarkDataset, ThreatModel  # noqa: E402

NAME = "ArtHeZooTest2099Local"


def randomised(model: nn.Module, seed: int = 0) -> nn.Module:
    """``model`` with random BN statistics and affine parameters (a fresh BN is the identity in eval mode, which
    would hide a wrong key map), in eval mode."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                c = module.num_features
                module.running_mean.copy_(0.2 * torch.randn(c, generator=gen))
                module.running_var.copy_(0.5 + torch.rand(c, generator=gen))
                module.weight.copy_(0.5 + torch.rand(c, generator=gen))
                module.bias.copy_(0.2 * torch.randn(c, generator=gen))
                module.num_batches_tracked.fill_(int(torch.randint(1, 1000, (1,), generator=gen)))
    return model.eval()


def he_wrn(name: str, seed: int = 0, **kwargs) -> nn.Module:
    torch.manual_seed(seed)
    return randomised(build_model(name, head="he", **kwargs), seed)


def images(n: int = 6) -> np.ndarray:
    return torch.rand(n, 3, 32, 32, generator=torch.Generator().manual_seed(1)).numpy()


def logits(model: nn.Module, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model.eval()(torch.from_numpy(x)).numpy()


def at_he_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The TRADES keys of the authors' files: RobustBench's minus mu/sigma (their forward normalises itself)."""
    return {k: v for k, v in to_robustbench_state_dict(model).items() if k not in ("mu", "sigma")}


def assert_one_line(error: BaseException, *needles: str) -> str:
    text = str(error)
    assert "\n" not in text, text
    for needle in needles:
        assert needle in text, (needle, text)
    assert "weights_only=False" not in text and "weights_only` set to `False" not in text, text
    return text


# ---- the authors' checkpoints ----------------------------------------------------------------------------
@pytest.mark.parametrize("name, released", [("wrn-10-1", True), ("wrn-16-2", True), ("wrn-10-1", False)])
def test_load_at_he_gives_the_original_predictions(tmp_path, name, released):
    model = he_wrn(name, mean=AT_HE_MEAN, std=AT_HE_STD)
    state = at_he_state(model)
    assert any(k.startswith("sub_block1.") for k in state) and "fc.bias" not in state
    path = tmp_path / "model-wideres-pgdHE.pt"
    if released:
        torch.save({"state_dict": {"module." + k: v for k, v in state.items()}, "test_acc": 0.5,
                    "test_robust_acc": 0.3}, path)
    else:  # what their train_adv_cifar10.py writes every epoch: model.module.state_dict()
        torch.save(state, path)
    x = images()
    classifier = load_at_he(path, device="cpu")
    assert isinstance(classifier, HEPyTorchClassifier) and isinstance(classifier.model, WideResNet)
    assert not classifier.model.training
    np.testing.assert_allclose(classifier.predict(x), logits(model, x), atol=1e-5)
    head = find_head(classifier.model)
    assert (head.scale, head.margin) == (15.0, 0.2)
    # s and m only enter the loss: same predictions, another attack loss
    other = load_at_he(path, scale=10.0, margin=0.3, device="cpu")
    assert (other.objective.scale, other.objective.margin) == (10.0, 0.3)
    np.testing.assert_allclose(other.predict(x), logits(model, x), atol=1e-5)


def test_load_at_he_uses_the_cifar10_normalisation(tmp_path):
    """Their forward normalises with CIFAR-10's mean/std: a model with other statistics gives other outputs."""
    model = he_wrn("wrn-10-1", mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    torch.save({"state_dict": at_he_state(model)}, tmp_path / "m.pt")
    loaded = load_at_he(tmp_path / "m.pt", device="cpu").model
    assert torch.allclose(loaded.normalize.mean.flatten(), torch.tensor(AT_HE_MEAN))
    assert torch.allclose(loaded.normalize.std.flatten(), torch.tensor(AT_HE_STD))
    assert not np.allclose(logits(loaded, images()), logits(model, images()), atol=1e-3)


def test_load_at_he_baseline_with_fc_bias_gets_a_plain_head(tmp_path):
    torch.manual_seed(0)
    model = randomised(build_model("wrn-10-1"))
    torch.save({"state_dict": {"module." + k: v for k, v in at_he_state(model).items()}}, tmp_path / "pgd.pt")
    classifier = load_at_he(tmp_path / "pgd.pt", device="cpu")
    assert find_head(classifier.model) is None
    np.testing.assert_allclose(classifier.predict(images()), logits(model, images()), atol=1e-5)
    with pytest.raises(UserError) as info:
        load_at_he(tmp_path / "pgd.pt", scale=10.0)
    assert_one_line(info.value, "pgd.pt", "fc.bias")


def _truncated(path: Path) -> None:
    torch.save({"state_dict": at_he_state(he_wrn("wrn-10-1"))}, path)
    path.write_bytes(path.read_bytes()[:5000])


@pytest.mark.parametrize("write, words", [
    (_truncated, "damaged or truncated"),
    (lambda p: p.write_text("<html>not found</html>"), "cannot be read"),
    (lambda p: p.write_bytes(b""), "ends early"),
    (lambda p: torch.save({"state_dict": {}, "args": argparse.Namespace(s=10)}, p), "argparse.Namespace"),
    (lambda p: torch.save({"state_dict": {"conv.weight": torch.ones(2)}}, p), "WideResNet"),
    (lambda p: torch.save([torch.ones(2)], p), "not an AT_HE checkpoint"),
])
def test_damaged_or_foreign_at_he_file_is_one_line_naming_it(tmp_path, write, words):
    path = tmp_path / "broken.pt"
    write(path)
    with pytest.raises(UserError) as info:
        load_at_he(path)
    assert_one_line(info.value, str(path), words)


def test_at_he_file_of_another_shape_names_the_keys(tmp_path):
    state = at_he_state(he_wrn("wrn-10-1"))
    state["block2.layer.0.conv1.weight"] = torch.zeros(3, 3, 3, 3)
    torch.save(state, tmp_path / "odd.pt")
    with pytest.raises(UserError) as info:
        load_at_he(tmp_path / "odd.pt")
    assert_one_line(info.value, "odd.pt", "block2.layer.0.conv1.weight", "wrong shape")


def test_missing_at_he_file(tmp_path):
    with pytest.raises(MissingFileError) as info:
        load_at_he(tmp_path / "nope.pt")
    assert_one_line(info.value, str(tmp_path / "nope.pt"))


def test_a_bug_while_reading_a_checkpoint_keeps_its_traceback(tmp_path, monkeypatch):
    """Only what the file can cause becomes a one-line UserError; an error of the code stays what it is."""
    path = tmp_path / "model.pt"
    torch.save({"state_dict": at_he_state(he_wrn("wrn-10-1"))}, path)

    def broken_load(*args, **kwargs):
        raise TypeError("load() got an unexpected keyword argument")

    monkeypatch.setattr(torch, "load", broken_load)
    with pytest.raises(TypeError, match="unexpected keyword") as info:
        load_at_he(path)
    assert not isinstance(info.value, UserError)


# ---- RobustBench's zoo -------------------------------------------------------------------------------------
@pytest.fixture
def register():
    """``register(name, factory)`` adds a cifar10/Linf zoo entry (the checkpoint is local); removed afterwards."""
    models = rb.utils.all_models[BenchmarkDataset.cifar_10][ThreatModel.Linf]
    added = []

    def add(name, factory):
        assert name not in models
        models[name] = {"model": factory, "gdrive_id": "local"}
        added.append(name)

    yield add
    for name in added:
        models.pop(name, None)


@pytest.fixture
def no_download(monkeypatch):
    """Any download RobustBench could start fails the test."""
    import gdown

    def fail(*args, **kwargs):
        pytest.fail(f"a download was attempted: {args}")

    for target in (rb.utils, gdown):
        for attr in ("download_gdrive_new", "download_gdrive", "download"):
            if hasattr(target, attr):
                monkeypatch.setattr(target, attr, fail)


def test_boosting_wide_resnet_becomes_our_he_model(tmp_path, register, no_download):
    model = he_wrn("wrn-10-1", seed=3, mean=(0.5, 0.45, 0.4), std=(0.2, 0.3, 0.25))
    register(NAME, lambda: BoostingWideResNet(10, 1))
    path = tmp_path / "cifar10" / "Linf" / f"{NAME}.pt"
    path.parent.mkdir(parents=True)
    torch.save(to_robustbench_state_dict(model), path)
    x = images()
    classifier = load_robustbench(NAME, tmp_path, device="cpu")
    assert isinstance(classifier, HEPyTorchClassifier) and isinstance(classifier.model, WideResNet)
    assert not classifier.model.training
    np.testing.assert_allclose(classifier.predict(x), logits(model, x), atol=1e-5)
    assert torch.allclose(classifier.model.normalize.std.flatten(), torch.tensor([0.2, 0.3, 0.25]))
    assert classifier.objective.scale == 15.0
    classifier, meta = zoo_classifier_for_eval(NAME, tmp_path, "cpu", scale=10.0)
    assert classifier.objective.scale == 10.0
    np.testing.assert_allclose(classifier.predict(x), logits(model, x), atol=1e-5)
    assert meta["name"] == NAME and meta["dataset"] == "cifar10" and meta["threat_model"] == "Linf"
    assert (meta["model"], meta["head"], meta["architecture"]) == ("wrn-10-1", "he", "BoostingWideResNet")


def test_other_zoo_models_are_plain_art_classifiers(tmp_path, register, no_download):
    torch.manual_seed(0)
    model = randomised(build_model("wrn-10-1"), seed=5)
    register(NAME, lambda: Rice2020OverfittingNet(10, 1))
    path = tmp_path / "cifar10" / "Linf" / f"{NAME}.pt"
    path.parent.mkdir(parents=True)
    torch.save(to_robustbench_state_dict(model), path)
    classifier = load_robustbench(NAME, tmp_path, device="cpu")
    assert type(classifier) is PyTorchClassifier and isinstance(classifier.model, Rice2020OverfittingNet)
    assert classifier.input_shape == (3, 32, 32) and classifier.nb_classes == 10
    assert classifier.clip_values is not None and tuple(classifier.clip_values) == (0.0, 1.0)
    assert not classifier.model.training
    np.testing.assert_allclose(classifier.predict(images()), logits(model, images()), atol=1e-5)
    with pytest.raises(UserError) as info:
        load_robustbench(NAME, tmp_path, scale=10.0)
    assert_one_line(info.value, "Rice2020OverfittingNet")


@pytest.mark.parametrize("name", ["Pang2020Boosting", NAME])
def test_missing_checkpoint_is_one_line_and_never_downloads(tmp_path, register, no_download, name):
    if name == NAME:
        register(NAME, lambda: BoostingWideResNet(10, 1))
    with pytest.raises(MissingFileError) as info:
        load_robustbench(name, tmp_path / "models")
    assert_one_line(info.value, str(tmp_path / "models" / "cifar10" / "Linf" / f"{name}.pt"), "never downloads")
    assert not (tmp_path / "models").exists()


def test_damaged_or_mismatched_zoo_checkpoint(tmp_path, register, no_download):
    register(NAME, lambda: BoostingWideResNet(10, 1))
    path = tmp_path / "cifar10" / "Linf" / f"{NAME}.pt"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"\x80\x02garbage")
    with pytest.raises(UserError) as info:
        load_robustbench(NAME, tmp_path)
    assert_one_line(info.value, str(path))
    torch.save(to_robustbench_state_dict(he_wrn("wrn-16-1")), path)  # deeper than the registered WRN-10-1
    with pytest.raises(UserError) as info:
        load_robustbench(NAME, tmp_path)
    assert_one_line(info.value, str(path), "does not fit")


def test_unknown_names_dataset_and_threat_model_have_hints(tmp_path):
    with pytest.raises(UserError) as info:
        load_robustbench("Pang2020Bosting", tmp_path)
    assert_one_line(info.value, "Pang2020Bosting", "did you mean", "Pang2020Boosting")
    zoo = rb.utils.all_models[BenchmarkDataset.cifar_10]
    only_l2 = next(n for n in zoo[ThreatModel.L2] if n not in zoo[ThreatModel.Linf])
    with pytest.raises(UserError) as info:
        load_robustbench(only_l2, tmp_path)
    assert_one_line(info.value, only_l2, "cifar10/L2")
    with pytest.raises(UserError) as info:
        load_robustbench("Pang2020Boosting", tmp_path, dataset="imagenet")
    assert_one_line(info.value, "imagenet", "cifar100")
    with pytest.raises(UserError) as info:
        load_robustbench("Pang2020Boosting", tmp_path, threat_model="L1")
    assert_one_line(info.value, "L1", "Linf")


def test_the_real_zoo_entry_of_the_paper_is_a_boosting_wide_resnet():
    """``Pang2020Boosting`` (read from RobustBench's registry, nothing built or downloaded) is the class
    :func:`load_robustbench` converts to our HE model."""
    entry = rb.utils.all_models[BenchmarkDataset.cifar_10][ThreatModel.Linf]["Pang2020Boosting"]
    assert entry["model"] is BoostingWideResNet
    assert entry["gdrive_id"]


def test_pang2020boosting_in_the_authors_format_loads_through_robustbench(tmp_path, monkeypatch, no_download):
    """The zoo's own name with a file like the authors' (``module.`` keys, no mu/sigma: RobustBench lists
    Pang2020Boosting among the models it loads leniently for that), at WRN-10-1 instead of WRN-34-20."""
    entry = rb.utils.all_models[BenchmarkDataset.cifar_10][ThreatModel.Linf]["Pang2020Boosting"]
    monkeypatch.setitem(entry, "model", lambda: BoostingWideResNet(10, 1))
    model = he_wrn("wrn-10-1", seed=7)
    path = tmp_path / "cifar10" / "Linf" / "Pang2020Boosting.pt"
    path.parent.mkdir(parents=True)
    torch.save({"state_dict": {"module." + k: v for k, v in at_he_state(model).items()}, "test_acc": 0.85}, path)
    classifier = load_robustbench("Pang2020Boosting", tmp_path, device="cpu")
    assert isinstance(classifier, HEPyTorchClassifier)
    np.testing.assert_allclose(classifier.predict(images()), logits(model, images()), atol=1e-5)
