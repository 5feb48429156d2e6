"""RobustBench submissions: our models in RobustBench's own architectures, ``--suite robustbench``, ``art-he export``.

Every check loads through RobustBench's own code (``robustbench.utils.load_model``, strict), on CIFAR-10 files
the tests write in the real pickle format.
"""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pytest
import torch
from torch import nn

from art_he.cli import main
from art_he.errors import UserError
from art_he.models import build_model
from art_he.robustbench import import_robustbench
from art_he.robustbench.architectures import (
    architecture_of,
    from_trades_state_dict,
    to_robustbench,
    to_robustbench_state_dict,
)
from art_he.robustbench.benchmark import eps_text
from art_he.runs import load_run
from tests.conftest import one_line_error, write_cifar10

NAME = "Tiny2026Hypersphere"


def randomise_batchnorm(model: nn.Module, seed: int = 0) -> nn.Module:
    """Non-trivial BN statistics and affine parameters, so that a wrong key map changes the outputs."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            c = m.num_features
            m.running_mean.copy_(torch.rand(c, generator=g) - 0.5)
            m.running_var.copy_(torch.rand(c, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(c, generator=g) + 0.5)
            m.bias.data.copy_(torch.rand(c, generator=g) - 0.5)
    return model.eval()


@pytest.mark.parametrize("name,head,cls", [
    ("wrn-10-1", "he", "BoostingWideResNet"),  # block1 without a shortcut conv (16 -> 16 channels)
    ("wrn-16-2", "he", "BoostingWideResNet"),
    ("wrn-10-2", "plain", "Rice2020OverfittingNet"),
    ("preact-resnet18", "plain", "Rice2020OverfittingNetL2"),
])
def test_robustbench_architecture_computes_our_forward(name, head, cls):
    torch.manual_seed(0)
    model = randomise_batchnorm(build_model(name, head=head))
    rb_model = to_robustbench(model)  # strict load into RobustBench's own class
    assert type(rb_model).__name__ == cls
    x = torch.rand(6, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(rb_model(x), model(x), atol=1e-5)
    assert set(to_robustbench_state_dict(model)) == set(rb_model.state_dict())


def test_trades_keys_map_back_to_ours():
    model = randomise_batchnorm(build_model("wrn-16-2", head="he"))
    trades = {"module." + k: v for k, v in to_robustbench_state_dict(model).items()}
    back = from_trades_state_dict(trades)
    assert back.keys() == model.state_dict().keys()
    assert all(torch.equal(back[k], v) for k, v in model.state_dict().items())


@pytest.mark.parametrize("build,needle", [
    (lambda: build_model("small-cnn", head="he"), "no architecture with the forward of SmallCNN"),
    (lambda: build_model("wrn-10-1", head="he", feature_norm=False), "FN turned off"),
    (lambda: build_model("wrn-10-1", head="he", weight_norm="none"), "WN turned off"),
    (lambda: build_model("preact-resnet18", head="he"), "no PreAct ResNet-18 with a hypersphere head"),
    (lambda: build_model("wrn-10-1", head="he", in_channels=1), "3-channel"),
    (lambda: build_model("wrn-10-1", head="he", num_classes=100), "10 classes"),
])
def test_what_robustbench_cannot_hold_is_refused(build, needle):
    with pytest.raises(UserError, match=re.escape(needle)):
        architecture_of(build())


def test_eps_text():
    assert eps_text(8 / 255) == "8/255" and eps_text(4 / 255) == "4/255" and eps_text(0.1) == "1/10"


# ---- the whole path: train, --suite robustbench, export, load through RobustBench ------------------------------

@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("rb")
    data, run, out = root / "data", root / "run", root / "out"
    write_cifar10(data, n=32)
    common = ["--data-dir", str(data), "--quiet"]
    assert main(["train", "--dataset", "cifar10", "--model", "wrn-10-1", "--head", "he", "--epochs", "1",
                 "--batch-size", "16", "--max-iter", "2", "--precision", "fp32", "--no-verify-data", "--workers", "0",
                 "--out", str(run), *common]) == 0
    assert main(["eval", str(run), "--suite", "robustbench", "--n", "16", "--batch-size", "16", *common]) == 0
    assert main(["export", str(run), "--robustbench", str(out), "--name", NAME, "--footnote", "a test"]) == 0
    return data, run, out


def test_registered_adds_the_export_for_the_block_only(exported):
    """``verify_export`` (run by every export) registers NAME through :func:`registered`: afterwards RobustBench's
    zoo holds what it held before (nothing, or what an earlier ``register`` put there)."""
    from robustbench.model_zoo.enums import BenchmarkDataset, ThreatModel

    from art_he.robustbench import registered

    _, _, out = exported
    zoo = import_robustbench().utils.all_models[BenchmarkDataset.cifar_10][ThreatModel.Linf]
    absent = object()
    before = zoo.get(NAME, absent)
    with registered(NAME, out) as model_dir:
        assert zoo[NAME] is not before and zoo[NAME]["gdrive_id"] == "local"
        assert (model_dir / f"cifar10/Linf/{NAME}.pt").is_file()
    assert zoo.get(NAME, absent) is before
    with pytest.raises(UserError, match="holds no export named"), registered("Other2026Name", out):
        pass
    assert "Other2026Name" not in zoo


def test_export_writes_the_submission_files(exported):
    _, _, out = exported
    for rel in (f"models/cifar10/Linf/{NAME}.pt", f"model_info/cifar10/Linf/{NAME}.json", "SUBMISSION.md",
                "autoattack.log", "art_he_export.json"):
        assert (out / rel).is_file(), rel
    state = torch.load(out / f"models/cifar10/Linf/{NAME}.pt", weights_only=True)  # plain tensors only
    assert all(isinstance(v, torch.Tensor) for v in state.values())
    assert {"mu", "sigma", "fc.weight", "sub_block1.layer.0.conv1.weight"} <= set(state) and "fc.bias" not in state
    assert "robust accuracy" in (out / "autoattack.log").read_text()


def test_robustbench_load_model_loads_the_export_strictly_and_agrees(exported):
    from robustbench.utils import load_model

    from art_he.robustbench import register

    _, run, out = exported
    model, classifier, _ = load_run(run, device="cpu")
    rb_model = load_model(NAME, model_dir=str(register(NAME, out)), dataset="cifar10", threat_model="Linf")
    assert type(rb_model).__name__ == "BoostingWideResNet"
    x = torch.rand(16, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        theirs = rb_model.eval()(x)
        assert torch.allclose(theirs, model(x), atol=1e-5)  # raw cosines, as our head returns them
    assert np.array_equal(theirs.argmax(1).numpy(), classifier.predict(x.numpy()).argmax(1))


def test_model_card_has_robustbench_fields_and_types(exported):
    _, run, out = exported
    card = json.loads((out / f"model_info/cifar10/Linf/{NAME}.json").read_text())
    report = json.loads((run / "robustbench" / "report.json").read_text())
    types = {"link": str, "name": str, "authors": str, "additional_data": bool, "number_forward_passes": int,
             "dataset": str, "venue": str, "architecture": str, "eps": str, "clean_acc": str, "reported": str,
             "autoattack_acc": str, "unreliable": bool, "footnote": str}
    assert set(card) == set(types)
    assert all(isinstance(card[k], t) for k, t in types.items())
    assert card["eps"] == "8/255" and card["dataset"] == "cifar10" and card["architecture"] == "WideResNet-10-1"
    assert card["clean_acc"] == f"{100 * report['clean_acc']:.2f}"
    assert card["autoattack_acc"] == card["reported"] == f"{100 * report['autoattack_acc']:.2f}"
    assert all(re.fullmatch(r"\d{1,3}\.\d\d", card[k]) for k in ("clean_acc", "autoattack_acc"))
    text = (out / "SUBMISSION.md").read_text()
    assert f"[New Model] {NAME}" in text and f"{card['clean_acc']}%" in text and "16 of the 10000" in text


def test_suite_robustbench_reads_the_same_images_as_we_do(exported):
    from art_he.data import load_cifar

    data, run, _ = exported
    report = json.loads((run / "robustbench" / "report.json").read_text())
    _, classifier, _ = load_run(run, device="cpu")
    x, y = load_cifar("cifar10", train=False, data_dir=data, verify=False)
    ours = float((classifier.predict(x[:16]).argmax(1) == y[:16]).mean())
    assert report["n_examples"] == 16 and report["clean_acc"] == pytest.approx(ours)
    assert 0 <= report["autoattack_acc"] <= report["clean_acc"]


def test_export_refuses_bad_input(exported, tmp_path, capsys):
    _, run, out = exported
    assert main(["export", str(run), "--robustbench", str(out), "--name", NAME]) == 2
    one_line_error(capsys, str(out), "--overwrite")
    assert main(["export", str(run), "--robustbench", str(tmp_path / "o1"), "--name", "model.bad"]) == 2
    one_line_error(capsys, "--name")
    bare = tmp_path / "bare"
    shutil.copytree(run, bare, ignore=shutil.ignore_patterns("robustbench"))
    assert main(["export", str(bare), "--robustbench", str(tmp_path / "o2"), "--name", NAME]) == 2
    one_line_error(capsys, "--suite robustbench")
    assert main(["eval", str(run), "--suite", "robustbench", "--attacks", "pgd20"]) == 2
    one_line_error(capsys, "--suite robustbench")


def test_export_overwrite_replaces(exported, tmp_path):
    _, run, _ = exported
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_text("x")
    assert main(["export", str(run), "--robustbench", str(out), "--name", "Other2026Name", "--overwrite"]) == 0
    assert not (out / "old.txt").exists() and (out / "models/cifar10/Linf/Other2026Name.pt").is_file()


def test_register_needs_an_export(tmp_path):
    from art_he.robustbench import register

    import_robustbench()
    with pytest.raises(UserError, match="not an `art-he export` folder"):
        register(NAME, tmp_path)


def test_export_then_load_robustbench_predicts_the_same(exported):
    from art_he.estimator import HEPyTorchClassifier
    from art_he.robustbench import register
    from art_he.robustbench.zoo import load_robustbench

    _, run, out = exported
    _, ours, _ = load_run(run, device="cpu")
    loaded = load_robustbench(NAME, register(NAME, out))
    assert isinstance(loaded, HEPyTorchClassifier)
    x = torch.rand(16, 3, 32, 32, generator=torch.Generator().manual_seed(2)).numpy()
    assert np.allclose(loaded.predict(x), ours.predict(x), atol=1e-5)


def test_eval_a_zoo_model_with_our_suites(exported, tmp_path, capsys):
    from art_he.evaluation.report import Report
    from art_he.robustbench import register

    data, run, out = exported
    report = tmp_path / "zoo.json"
    assert main(["eval", "--robustbench", NAME, "--model-dir", str(register(NAME, out)), "--attacks", "fgsm",
                 "--n", "16", "--data-dir", str(data), "--no-verify-data", "--json", str(report), "--quiet"]) == 0
    zoo = Report.from_json(report)
    assert main(["eval", str(run), "--attacks", "fgsm", "--n", "16", "--data-dir", str(data), "--quiet"]) == 0
    _, classifier, _ = load_run(run, device="cpu")
    from art_he.data import load_cifar

    x, y = load_cifar("cifar10", train=False, data_dir=data, verify=False)
    assert zoo.clean_accuracy == pytest.approx(float((classifier.predict(x[:16]).argmax(1) == y[:16]).mean()))
    assert zoo.meta["head"] == "he" and zoo.name == NAME
    capsys.readouterr()
    assert main(["eval", "--robustbench", NAME]) == 2
    one_line_error(capsys, "--model-dir")
    assert main(["eval", str(run), "--robustbench", NAME, "--model-dir", "x"]) == 2
    one_line_error(capsys, "one of them")
