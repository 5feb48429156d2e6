"""Extension in one edit: a framework, an attack family, a model and a data set defined in this file, and nowhere
else, train through ``art-he train``, appear in its listings and ``--help``, get a ``reproduce`` estimate, and
evaluate through ``art-he eval --attacks`` (docs/extending.md)."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from art.attacks.evasion import FastGradientMethod
from torch import nn

from art_he.cli import main
from art_he.config import TrainConfig
from art_he.data import DATASETS, DatasetInfo, load_dataset
from art_he.evaluation import AttackFamily, register_attack
from art_he.models.factory import MODELS
from art_he.models.layers import Normalize
from art_he.reproduce import estimate_hours, get_table, plan_text, row_configs
from art_he.reproduce.cache import RowState
from art_he.reproduce.estimate import train_passes_per_image, training_speed
from art_he.trainers import FRAMEWORKS, PGDATTrainer, register_framework
from art_he.validation import check_probability
from tests.conftest import kept_registries, one_line_error


class MixedATTrainer(PGDATTrainer):
    """alpha * CE_m(x) + (1 - alpha) * CE_m(PGD(x))."""

    name, label = "mixed", "Mixed-AT"
    options = (*PGDATTrainer.options, "alpha")
    clean_forward = False

    def __init__(self, classifier, *, alpha: float = 0.5, **kwargs):
        super().__init__(classifier, **kwargs)
        self.alpha = float(check_probability("alpha", alpha))

    @classmethod
    def passes_per_image(cls, options: dict) -> float:
        return float((options.get("max_iter") or 0) + 2)

    def compute_loss(self, x, x_adv, y):
        out_nat, out_adv = self.train_forward(torch.cat([x, x_adv])).chunk(2)
        loss = self.alpha * self.objective.train_loss(out_nat, y)
        return loss + (1 - self.alpha) * self.objective.train_loss(out_adv, y), out_nat, out_adv


def fgsm_rs(spec, estimator, ctx):
    return FastGradientMethod(estimator, norm=np.inf, eps=spec.eps, eps_step=1.25 * spec.eps, num_random_init=1,
                              batch_size=ctx.batch_size)


FGSM_RS = AttackFamily("fgsm-rs", "white-box", "FGSM-RS", 1, fgsm_rs, views=("ce", "raw"), plain_views=("ce",),
                       stepped=False, takes_step=False)


class MLP(nn.Module):
    def __init__(self, num_classes=10, in_channels=1, mean=(0.5,), std=(0.5,), hidden=64, size=28):
        super().__init__()
        self.normalize = Normalize(mean, std)
        self.features = nn.Sequential(nn.Flatten(), nn.Linear(in_channels * size * size, hidden), nn.ReLU())
        self.linear = nn.Linear(hidden, num_classes)

    def forward(self, x):
        return self.linear(self.features(self.normalize(x)))


def inverted_fashion(train, data_dir=None):
    """Fashion-MNIST in negative."""
    x, y = load_dataset("fashion-mnist", train, data_dir)
    return 1 - x, y


INVERTED = DatasetInfo((1, 28, 28), 10, (0.714,), (0.353,), 0.1, "mlp", sizes=(60_000, 10_000),
                       loader=inverted_fashion)


@pytest.fixture(scope="module")
def extended():
    """The four extensions registered, as their files would register them; gone after this module."""
    with kept_registries():
        register_framework(MixedATTrainer)
        register_attack(FGSM_RS)
        MODELS["mlp"] = MLP
        DATASETS["fashion-inverted"] = INVERTED
        yield
    assert "mixed" not in FRAMEWORKS and "mlp" not in MODELS


@pytest.fixture(scope="module")
def run(extended, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("extended") / "run"
    assert main(["train", "--framework", "mixed", "--alpha", "0.3", "--max-iter", "2", "--head", "he",
                 "--dataset", "fashion-inverted", "--subset", "256", "--batch-size", "64", "--epochs", "2",
                 "--threads", "1", "--quiet", "--out", str(out)]) == 0
    return out


def test_a_framework_model_and_data_set_defined_here_train_through_art_he_train(run):
    config = json.loads((run / "config.json").read_text())
    assert (config["framework"], config["model"], config["dataset"]) == ("mixed", "mlp", "fashion-inverted")
    assert (config["alpha"], config["max_iter"], config["eps_step"]) == (0.3, 2, pytest.approx(0.025))
    assert config["beta"] is None and config["replays"] is None  # others' options stay unset
    epochs = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert len(epochs) == 2 and all(math.isfinite(e["loss"]) for e in epochs)
    assert epochs[1]["loss"] < epochs[0]["loss"]  # it learns
    assert FRAMEWORKS["mixed"] is MixedATTrainer and config["head"] == "he"
    assert TrainConfig.from_record(config).trainer_kwargs()["alpha"] == 0.3  # its options reach its trainer


def test_they_are_listed_and_in_the_help(extended, capsys):
    assert main(["recipes", "--frameworks"]) == 0
    line = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("mixed "))
    assert "Mixed-AT" in line and "--max-iter 10 --num-random-init 1 --alpha 0.5" in line
    assert main(["recipes", "--frameworks", "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert listing["mixed"] == {"label": "Mixed-AT", "schedule": "multistep",
                                "options": {"max_iter": 10, "num_random_init": 1, "alpha": 0.5}}
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = capsys.readouterr().out
    assert "pgd,alp,trades,free,fast,mixed}" in text and "fashion-inverted" in text and "mlp" in text
    assert main(["train", "--framework", "mixed", "--beta", "3", "--print-config"]) == 2
    one_line_error(capsys, "--beta", "--framework mixed")


def test_it_gets_a_reproduce_estimate(extended):
    table = get_table("table2")
    pgd = row_configs(table, {})["table2-pgd-he"]
    mixed = dataclasses.replace(pgd, framework="mixed", recipe=None).resolved()
    assert mixed.alpha == 0.5 and train_passes_per_image(mixed) == 12
    speed = training_speed(mixed)
    assert not speed.measured and "by passes per image" in speed.source
    pgd_hours, mixed_hours = (estimate_hours(table, c, RowState("new"), None, None) for c in (pgd, mixed))
    assert mixed_hours[0] == pytest.approx(pgd_hours[0] * 12 / 11) and mixed_hours[1] == pgd_hours[1]
    plan = plan_text(table, {"mixed-he": mixed}, {"mixed-he": RowState("new")}, Path("out"), {}, None, None)
    assert "mixed-he" in plan and "Mixed-AT 12" in plan and f"{mixed_hours[0]:.2f}" in plan


def test_an_attack_family_defined_here_runs_in_art_he_eval(run, tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["eval", "--help"])
    assert "fgsm-rs" in " ".join(capsys.readouterr().out.split())
    report = tmp_path / "eval.json"
    assert main(["eval", str(run), "--attacks", "fgsm-rs,fgsm", "--n", "64", "--threads", "1", "--quiet",
                 "--json", str(report)]) == 0
    rows = {row["attack"]: row for row in json.loads(report.read_text())["rows"]}
    assert list(rows) == ["clean", "fgsm-rs", "fgsm"]
    assert rows["fgsm-rs"]["label"] == "FGSM-RS" and rows["fgsm-rs"]["n"] == 64
    assert rows["fgsm-rs"]["accuracy"] < rows["clean"]["accuracy"]  # it attacks
    assert rows["fgsm-rs"]["details"]["max_perturbation"] == pytest.approx(0.1, abs=1e-6)  # within eps, at eps


def test_a_framework_registers_once_and_only_the_options_it_takes():
    class Gamma(PGDATTrainer):
        name, options = "gamma", ("gamma",)

        def __init__(self, classifier, *, gamma: float = 1.0, **kwargs):
            super().__init__(classifier, **kwargs)

    with kept_registries():
        with pytest.raises(ValueError, match="'pgd' is registered already"):
            register_framework(type("Other", (PGDATTrainer,), {"name": "pgd"}))
        with pytest.raises(TypeError, match="its constructor does not take"):
            register_framework(type("Beta", (PGDATTrainer,), {"name": "beta", "options": ("beta",)}))
        with pytest.raises(TypeError, match="an ATTrainer subclass with a name"):
            register_framework(type("Nameless", (PGDATTrainer,), {"name": ""}))
        assert register_framework(Gamma) is Gamma and register_framework(Gamma) is Gamma  # again: no change
        with pytest.raises(TypeError, match=r"Gamma.options names \['gamma'\], which TrainConfig lacks"):
            TrainConfig(framework="gamma").resolved()
        with pytest.raises(ValueError, match="ends in digits"):
            register_attack(dataclasses.replace(FGSM_RS, name="fgsm2"))
        with pytest.raises(ValueError, match="in the catalog already"):
            register_attack(dataclasses.replace(FGSM_RS, name="fgsm"))
        with pytest.raises(ValueError, match="attack names are not empty"):
            register_attack(dataclasses.replace(FGSM_RS, name=""))
    assert "gamma" not in FRAMEWORKS
