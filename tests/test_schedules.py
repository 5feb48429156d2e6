"""LR schedules: the warm-up is the per-epoch schedule times a linear ramp, stepped per batch, resumable and a
one-line error where it does not apply."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from art_he.cli import main
from art_he.errors import UserError
from art_he.models import build_model
from art_he.runs import make_classifier
from art_he.schedules import WarmupLR, make_scheduler
from art_he.trainers import PGDATTrainer
from art_he.trainers.base import ATTrainer
from tests.conftest import one_line_error

TRAIN = ["train", "--dataset", "synthetic", "--subset", "96", "--width", "4", "--batch-size", "32", "--epochs", "4",
         "--max-iter", "1", "--quiet"]


def optimizer(lr: float = 0.1) -> torch.optim.SGD:
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(2))], lr=lr, momentum=0.9)


def lrs_per_batch(scheduler, opt, updates: int) -> list[float]:
    out = []
    for _ in range(updates):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        scheduler.step()
    return out


@pytest.mark.parametrize("name", ["multistep", "cosine", "constant"])
def test_warmup_is_a_linear_ramp_then_the_per_epoch_schedule(name):
    epochs, steps, warm = 8, 5, 7
    opt = optimizer()
    got = lrs_per_batch(make_scheduler(name, opt, epochs, steps, warmup_steps=warm), opt, epochs * steps)
    ref_opt = optimizer()
    reference = make_scheduler(name, ref_opt, epochs, steps)  # the torch scheduler, stepped per epoch
    per_epoch = []
    for _ in range(epochs):
        per_epoch.append(ref_opt.param_groups[0]["lr"])
        ref_opt.step()
        reference.step()
    expected = [min(1.0, (t + 1) / warm) * per_epoch[t // steps] for t in range(epochs * steps)]
    assert got == pytest.approx(expected, rel=1e-12, abs=1e-15)
    assert got[0] == pytest.approx(0.1 / warm) and got[warm - 1] == pytest.approx(per_epoch[1])


def test_warmup_refuses_the_cyclic_schedule():
    with pytest.raises(UserError, match="cyclic"):
        make_scheduler("cyclic", optimizer(), 2, 5, warmup_steps=3)


def test_the_trainer_steps_the_warmup_per_batch(fmnist_train):
    model = build_model("small-cnn", in_channels=1, width=4, head="he")
    clf = make_classifier(model, "fashion-mnist", lr=0.1, device="cpu")
    trainer = PGDATTrainer(clf, eps=0.1, max_iter=1, precision="fp32", seed=0, verbose=False)
    scheduler = make_scheduler("constant", clf.optimizer, 2, 4, warmup_steps=6)
    assert isinstance(scheduler, WarmupLR)
    history = trainer.fit(fmnist_train[0][:128], fmnist_train[1][:128], batch_size=32, nb_epochs=2,
                          scheduler=scheduler)
    assert scheduler.last_epoch == 8  # 2 epochs x 4 batches
    assert [m["lr"] for m in history] == pytest.approx([0.1 * 4 / 6, 0.1])  # the last update's LR of each epoch


def test_train_warmup_flag_records_the_ramp_and_resumes_exactly(tmp_path, monkeypatch):
    straight = tmp_path / "straight"
    assert main([*TRAIN, "--warmup", "1.5", "--out", str(straight)]) == 0
    lrs = [json.loads(line)["lr"] for line in (straight / "metrics.jsonl").read_text().splitlines()]
    assert lrs == pytest.approx([0.05 * 3 / 5, 0.05, 0.05, 0.005])  # 3 batches a pass: 5 warm-up steps, then x0.1
    assert json.loads((straight / "config.json").read_text())["warmup"] == 1.5

    resumed = tmp_path / "resumed"
    save = ATTrainer.save_checkpoint

    def save_then_interrupt(self, path, scheduler=None):
        save(self, path, scheduler)
        if len(self.history) == 1:  # stopped inside the warm-up
            raise KeyboardInterrupt

    monkeypatch.setattr(ATTrainer, "save_checkpoint", save_then_interrupt)
    assert main([*TRAIN, "--warmup", "1.5", "--out", str(resumed)]) == 130
    monkeypatch.undo()
    assert main([*TRAIN, "--warmup", "1.5", "--out", str(resumed), "--resume"]) == 0
    assert (resumed / "model.safetensors").read_bytes() == (straight / "model.safetensors").read_bytes()


@pytest.mark.parametrize("flags, text", [(["--warmup", "-1"], "warmup must be >= 0"),
                                         (["--warmup", "nan"], "warmup must be finite"),
                                         (["--warmup", "1", "--schedule", "cyclic"], "cyclic")])
def test_bad_warmup_is_one_line(tmp_path, flags, text, capsys):
    assert main([*TRAIN, *flags, "--out", str(tmp_path / "run")]) == 2
    one_line_error(capsys, text)


def test_warmup_is_zero_by_default_and_changes_nothing():
    opt_a, opt_b = optimizer(), optimizer()
    a = lrs_per_batch(make_scheduler("multistep", opt_a, 4, 1, warmup_steps=0), opt_a, 4)
    b = lrs_per_batch(torch.optim.lr_scheduler.MultiStepLR(opt_b, milestones=[3], gamma=0.1), opt_b, 4)
    assert a == b and not math.isnan(np.sum(a))


def test_cyclic_is_wong_et_als_triangle_with_momentum_cycling():
    """0 -> lr at half of the updates -> 0 (torch's CyclicLR as Wong et al. build it); momentum 0.9 -> 0.8 -> 0.9."""
    opt = optimizer(0.2)
    scheduler = make_scheduler("cyclic", opt, 2, 5)
    lrs, momenta = [], []
    for _ in range(10):
        lrs.append(opt.param_groups[0]["lr"])
        momenta.append(opt.param_groups[0]["momentum"])
        opt.step()
        scheduler.step()
    assert lrs == pytest.approx([0.0, 0.04, 0.08, 0.12, 0.16, 0.2, 0.16, 0.12, 0.08, 0.04])
    assert momenta == pytest.approx([0.9, 0.88, 0.86, 0.84, 0.82, 0.8, 0.82, 0.84, 0.86, 0.88])
    assert opt.param_groups[0]["lr"] == pytest.approx(0.0)
    other = torch.optim.SGD([torch.nn.Parameter(torch.zeros(2))], lr=0.2, momentum=0.5)
    scheduler = make_scheduler("cyclic", other, 2, 5)
    other.step()
    scheduler.step()
    assert other.param_groups[0]["momentum"] == 0.5  # only Wong et al.'s 0.9 cycles


def test_step_divides_the_lr_every_30_epochs_of_budget(tmp_path):
    """``step``: x0.1 every ceil(30 / m) passes for FreeAT (Shafahi et al.'s ImageNet code), every 30 otherwise."""
    opt = optimizer()
    scheduler = make_scheduler("step", opt, 20, 3, step_every=8)
    lrs = []
    for _ in range(20):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        scheduler.step()
    assert lrs == pytest.approx([0.1] * 8 + [0.01] * 8 + [0.001] * 4)
    out = tmp_path / "free"
    assert main(["train", "--dataset", "synthetic", "--subset", "32", "--width", "4", "--batch-size", "32", "--quiet",
                 "--framework", "free", "--replays", "4", "--schedule", "step", "--epochs", "36",
                 "--out", str(out)]) == 0
    lrs = [json.loads(line)["lr"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert lrs == pytest.approx([0.05] * 8 + [0.005])  # 36 epochs of budget = 9 passes; ceil(30 / 4) = 8
