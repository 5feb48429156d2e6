"""Every weight normalisation of the HE head (``project``, the authors'; ``differentiable``; ``none``) through exact
resume, ART's ``clone_for_refitting``, ``to_hypersphere``, RobustBench export and ``load_at_he``. DDP equals one
process in every mode in ``test_ddp.py``."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision
from torch import nn

from art_he import HEPyTorchClassifier, to_hypersphere
from art_he.defaults import WEIGHT_NORMS
from art_he.errors import UserError
from art_he.heads import HypersphereHead, find_head
from art_he.models import build_model
from art_he.robustbench import import_robustbench
from art_he.robustbench.architectures import to_robustbench, to_robustbench_state_dict
from art_he.robustbench.zoo import AT_HE_MEAN, AT_HE_STD, load_at_he
from art_he.trainers import PGDATTrainer
from tests.conftest import make_classifier

MODES = list(WEIGHT_NORMS)


def he_trainer(weight_norm: str, seed: int = 0) -> PGDATTrainer:
    torch.manual_seed(0)
    model = build_model("small-cnn", in_channels=1, head="he", width=4, weight_norm=weight_norm)
    return PGDATTrainer(make_classifier(model), eps=0.1, max_iter=2, precision="fp32", seed=seed, verbose=False)


@pytest.mark.parametrize("weight_norm", MODES)
def test_resume_is_exact_in_every_mode(weight_norm, fmnist_train, tmp_path):
    x, y = fmnist_train[0][:96], fmnist_train[1][:96]
    reference = he_trainer(weight_norm)
    reference.fit(x, y, batch_size=32, nb_epochs=3)
    first = he_trainer(weight_norm)
    first.fit(x, y, batch_size=32, nb_epochs=2, checkpoint_dir=tmp_path)
    resumed = he_trainer(weight_norm, seed=5)  # everything must come from the checkpoint
    resumed.fit(x, y, batch_size=32, nb_epochs=3, checkpoint_dir=tmp_path, resume=True)
    for (name, a), b in zip(reference.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), name
    head = find_head(resumed.model)
    rows = head.weight.detach().norm(dim=1)
    if weight_norm == "project":  # stepped off the sphere by the last update, back on it at the next forward
        assert not torch.allclose(rows, torch.ones_like(rows), atol=1e-4)
        resumed.model.eval()(torch.as_tensor(x[:2]))
        torch.testing.assert_close(head.weight.detach().norm(dim=1), torch.ones_like(rows), rtol=0, atol=1e-6)


@pytest.mark.parametrize("weight_norm", MODES)
def test_clone_for_refitting_keeps_the_mode_and_starts_afresh(weight_norm):
    torch.manual_seed(0)
    clf = make_classifier(build_model("small-cnn", in_channels=1, head="he", width=4, weight_norm=weight_norm))
    clf.predict(np.random.default_rng(0).random((2, 1, 28, 28), dtype=np.float32))
    clone = clf.clone_for_refitting()
    assert isinstance(clone, HEPyTorchClassifier)
    head = find_head(clone.model)
    assert head.weight_norm == weight_norm and head is not find_head(clf.model)
    assert not torch.equal(head.weight, find_head(clf.model).weight)
    out = clone.predict(np.random.default_rng(1).random((4, 1, 28, 28), dtype=np.float32))
    assert out.shape == (4, 10) and np.abs(out).max() <= (1 + 1e-5 if weight_norm != "none" else np.inf)
    if weight_norm == "project":
        torch.testing.assert_close(head.weight.detach().norm(dim=1), torch.ones(10), rtol=0, atol=1e-6)


@pytest.mark.parametrize("weight_norm", MODES)
@pytest.mark.parametrize("build", [lambda: torchvision.models.resnet18(num_classes=7),
                                   lambda: nn.Sequential(nn.Flatten(), nn.Linear(12, 5), nn.ReLU(), nn.Linear(5, 3))])
def test_to_hypersphere_passes_the_mode(weight_norm, build):
    torch.manual_seed(0)
    model = to_hypersphere(build(), weight_norm=weight_norm)
    head = find_head(model)
    assert head.weight_norm == weight_norm
    x = torch.rand(2, 3, 32, 32) if head.in_features == 512 else torch.rand(2, 3, 2, 2)
    with torch.no_grad():
        cos = model.eval()(x)
    if weight_norm != "none":
        assert cos.abs().max() <= 1 + 1e-6


def sgd_steps(model: nn.Module, steps: int = 3) -> nn.Module:
    """A few SGD steps, so that a projected head's W is off the sphere when the weights are read."""
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
    model.train()
    for _ in range(steps):
        x, y = torch.rand(8, 3, 32, 32), torch.randint(0, 10, (8,))
        optimizer.zero_grad()
        nn.functional.cross_entropy(15 * model(x), y).backward()
        optimizer.step()
    return model.eval()


@pytest.mark.parametrize("weight_norm", ["project", "differentiable"])
def test_robustbench_export_gives_the_same_logits_in_every_mode(weight_norm):
    import_robustbench()
    torch.manual_seed(0)
    model = sgd_steps(build_model("wrn-10-1", head="he", weight_norm=weight_norm))
    rows = find_head(model).weight.detach().norm(dim=1)
    assert not torch.allclose(rows, torch.ones_like(rows), atol=1e-3)  # the exported W is not on the sphere
    state = to_robustbench_state_dict(model)
    rb_model = to_robustbench(model)  # RobustBench's BoostingWideResNet, loaded strictly
    assert type(rb_model).__name__ == "BoostingWideResNet"
    assert torch.equal(rb_model.state_dict()["fc.weight"], state["fc.weight"])
    x = torch.rand(5, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(rb_model(x), model(x), rtol=0, atol=1e-5)


def test_robustbench_export_refuses_a_head_without_wn():
    with pytest.raises(UserError, match="WN turned off"):
        to_robustbench(build_model("wrn-10-1", head="he", weight_norm="none"))


@pytest.mark.parametrize("weight_norm", ["project", "differentiable"])
def test_load_at_he_gives_the_authors_predictions_in_every_mode(weight_norm, tmp_path):
    """The authors' files hold W as their last SGD step left it (off the sphere); their forward normalises it."""
    torch.manual_seed(0)
    model = sgd_steps(build_model("wrn-10-1", head="he", mean=AT_HE_MEAN, std=AT_HE_STD))
    state = {k: v for k, v in to_robustbench_state_dict(model).items() if k not in ("mu", "sigma")}
    path = tmp_path / "model-wideres-pgdHE.pt"
    torch.save({"state_dict": {"module." + k: v for k, v in state.items()}, "test_acc": 0.5}, path)
    classifier = load_at_he(path, device="cpu", weight_norm=weight_norm)
    head = find_head(classifier.model)
    assert head.weight_norm == weight_norm
    x = torch.rand(4, 3, 32, 32).numpy()
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(classifier.predict(x), expected, atol=1e-5)
    with pytest.raises(UserError, match="weight_norm='none'"):
        load_at_he(path, device="cpu", weight_norm="none")


def test_a_run_written_with_a_bool_weight_norm_loads_in_its_mode(tmp_path):
    """Run folders from before the modes store ``"weight_norm": true``: they load as ``differentiable``, with no
    deprecation warning for the user's file."""
    import json
    import warnings

    from art_he.runs import load_run, save_run

    torch.manual_seed(0)
    model = build_model("small-cnn", in_channels=1, head="he", width=4, weight_norm="differentiable")
    run = save_run(tmp_path / "run", model, {"dataset": "fashion-mnist", "model": "small-cnn", "head": "he",
                                              "model_kwargs": {"width": 4}})
    config = json.loads((run / "config.json").read_text())
    config["head_kwargs"]["weight_norm"] = True
    (run / "config.json").write_text(json.dumps(config))
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        loaded, _, _ = load_run(run, device="cpu")
    assert find_head(loaded).weight_norm == "differentiable"
    assert isinstance(find_head(loaded), HypersphereHead)
