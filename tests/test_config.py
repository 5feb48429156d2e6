"""One source of configuration: the CLI is generated from TrainConfig, Python and the CLI resolve the same
defaults (owned by the frameworks), recipes carry the paper's values with their sources."""

from __future__ import annotations

import argparse
import dataclasses
import json

import pytest
import torch

from art_he.cli import build_parser, main
from art_he.config import TrainConfig, add_config_arguments, cli_fields, config_from_arguments, framework_options
from art_he.recipes import RECIPES
from art_he.trainers import FRAMEWORKS

TINY = ["--dataset", "synthetic", "--subset", "64", "--width", "4", "--batch-size", "32", "--quiet"]


def parse(*flags: str) -> TrainConfig:
    parser = argparse.ArgumentParser()
    add_config_arguments(parser)
    return config_from_arguments(parser.parse_args(list(flags)))


def test_every_option_is_a_flag_with_the_registries_as_choices():
    from art_he.data import DATASETS
    from art_he.models import MODELS

    parser = build_parser(["train"])
    train = next(a for a in parser._subparsers._group_actions if isinstance(a, argparse._SubParsersAction))
    actions = {a.dest: a for a in train.choices["train"]._actions}
    for f in cli_fields():
        assert f.name in actions, f.name
    assert set(actions["dataset"].choices) == set(DATASETS)
    assert all(name in actions["model"].choices for name in [*MODELS, "wrn-10-1", "wrn-28-4"])
    assert "wrn-11-1" not in actions["model"].choices and "resnet50" in MODELS
    assert list(actions["framework"].choices) == list(FRAMEWORKS)
    assert "--no-channels-last" in actions["channels_last"].option_strings


@pytest.mark.parametrize("flags", [
    [], ["--framework", "fast"], ["--framework", "fast", "--schedule", "constant"],
    ["--framework", "free", "--epochs", "10", "--replays", "3"], ["--framework", "alp", "--pairing", "l2"],
    ["--framework", "trades", "--dataset", "cifar10", "--head", "he"],
])
def test_python_and_the_cli_resolve_the_same_configuration(flags):
    given = {}
    for name, value in zip(flags[::2], flags[1::2]):
        key = name[2:].replace("-", "_")
        field_type = {f.name: f.type for f in dataclasses.fields(TrainConfig)}[key]
        given[key] = int(value) if field_type.startswith("int") else value
    assert parse(*flags).resolved() == TrainConfig(**given).resolved()


@pytest.mark.parametrize("forced", ["bf16", "fp32"])
def test_print_config_shows_the_resolved_head_and_precision(forced, capsys, auto_precision):
    auto_precision(forced)  # what "auto" gives on a CPU with or without native bf16
    assert main(["train", "--head", "mhe", "--print-config"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert (printed["scale"], printed["margin"], printed["precision"]) == (15.0, 0.1, forced)
    assert main(["train", "--head", "he", "--margin", "0.3", "--precision", "fp32", "--print-config"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert (printed["scale"], printed["margin"], printed["precision"]) == (15.0, 0.3, "fp32")


def test_fp16_is_a_python_option_only(capsys):
    from art_he.precision import PRECISIONS

    parser = build_parser(["train"])
    train = next(a for a in parser._subparsers._group_actions if isinstance(a, argparse._SubParsersAction))
    choices = {a.dest: a for a in train.choices["train"]._actions}["precision"].choices
    assert set(choices) == set(PRECISIONS) - {"fp16"}
    with pytest.raises(SystemExit) as stop:
        main(["train", "--precision", "fp16", "--print-config"])
    assert stop.value.code == 2 and "invalid choice: 'fp16'" in capsys.readouterr().err
    with pytest.raises(ValueError, match="unknown precision 'fp16'"):
        TrainConfig(precision="fp16").resolved()


@pytest.mark.parametrize("recipe", ["table2-alp-he", "table3-free-mhe", "table3-fast-plain"])
def test_a_recorded_configuration_resolves_to_itself(recipe):
    resolved = RECIPES[recipe].config().resolved()
    record = json.loads(resolved.to_json())
    assert TrainConfig.from_record({**record, "head_kwargs": {}}).resolved() == resolved


def test_framework_defaults_come_from_the_trainers():
    for name, cls in FRAMEWORKS.items():
        cfg = TrainConfig(framework=name, dataset="cifar10").resolved()
        defaults = cls.option_defaults()
        for option in framework_options():
            assert getattr(cfg, option) == defaults.get(option), (name, option)
        assert cfg.schedule == cls.default_schedule and cfg.eps_step == cls.default_eps_step(cfg.eps)
    assert TrainConfig(framework="fast").resolved().schedule == "cyclic"
    assert TrainConfig(framework="pgd", dataset="cifar10").resolved().eps_step == pytest.approx(2 / 255)
    assert TrainConfig(framework="free", epochs=10).resolved().passes == 3  # ceil(10 / 4)


def test_fast_with_a_constant_schedule_keeps_its_learning_rate(tmp_path):
    assert main(["train", *TINY, "--framework", "fast", "--schedule", "constant", "--lr", "0.03", "--epochs", "2",
                 "--out", str(tmp_path / "run")]) == 0
    lrs = [json.loads(line)["lr"] for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert lrs == [0.03, 0.03]


def test_free_epochs_are_the_budget_in_passes(tmp_path):
    assert main(["train", *TINY, "--framework", "free", "--epochs", "4", "--replays", "2",
                 "--out", str(tmp_path / "run")]) == 0
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert len(lines) == 2 and config["passes"] == 2 and config["epochs"] == 4


def test_recipes_name_a_source_for_every_value_and_resolve():
    assert len(RECIPES) >= 18
    for name, recipe in RECIPES.items():
        assert all(source.strip() for source in recipe.sources().values()), name
        if name.startswith("table4"):  # ImageNet: resolving counts the classes in --data-dir
            continue
        cfg = recipe.config().resolved()
        assert cfg.recipe == name and cfg.dataset == "cifar10"
        assert cfg.framework in FRAMEWORKS and cfg.model in ("wrn-34-10", "wrn-34-20", "preact-resnet18")
    imagenet = RECIPES["table4-free-he"].config()
    assert (imagenet.dataset, imagenet.model, imagenet.replays, imagenet.batch_size) == ("imagenet", "resnet50", 4, 256)
    # the authors' ImageNet config trains with fgsm_step 4/255; the paper's 1/255 is the evaluation PGD's step
    assert (imagenet.eps, imagenet.eps_step, imagenet.scale, imagenet.schedule) == (4 / 255, 4 / 255, 10.0, "step")
    table4 = {name: r.config() for name, r in RECIPES.items() if name.startswith("table4")}
    assert sorted((c.model, c.head) for c in table4.values()) == sorted(
        (m, h) for m in ("resnet50", "resnet152", "wide_resnet50_2", "wide_resnet101_2") for h in ("plain", "he"))
    # Sec. 4: s = 15, m = 0.2 for every CIFAR-10 framework; the authors' README's ALP values are a named variant
    alp = RECIPES["table2-alp-he"].config().resolved()
    assert (alp.scale, alp.margin, alp.pairing) == (15.0, 0.2, "mse")
    readme = RECIPES["table2-alp-he-readme"].config().resolved()
    assert (readme.scale, readme.margin) == (20.0, 0.3)
    for name, recipe in RECIPES.items():  # the paper's rows take the README only where the paper is silent
        if name.startswith("table2-") and not name.endswith("-readme"):
            assert not any("README" in source for source in recipe.sources().values()), name
    assert RECIPES["table2-trades-he"].config().resolved().beta == 6.0
    # the authors' projected WN in every HE row, whatever the package's default
    assert all(r.config().weight_norm == "project" for r in RECIPES.values() if r.config().head != "plain")
    table6 = RECIPES["table6-pgd-he-wrn34-20"]
    assert (table6.config().weight_decay, table6.config().scale) == (5e-4, 10.0)
    assert "README" in table6.sources()["scale"]
    # Table 3 follows Wong et al.'s train_fgsm.py and train_free.py
    fast = RECIPES["table3-fast-he"].config().resolved()
    assert (fast.model, fast.epochs, fast.lr, fast.schedule, fast.fgsm_mode, fast.early_stop) == (
        "preact-resnet18", 30, 0.2, "cyclic", "train", False)
    assert (fast.weight_decay, fast.eps_step) == (5e-4, pytest.approx(10 / 255))
    free = RECIPES["table3-free-he"].config().resolved()
    assert (free.model, free.replays, free.passes, free.lr, free.schedule) == ("preact-resnet18", 8, 10, 0.04, "cyclic")
    assert (free.weight_decay, free.eps_step) == (5e-4, pytest.approx(8 / 255))


def test_recipes_command_and_print_config(capsys):
    assert main(["recipes"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == len(RECIPES) and all(line.split()[0] in RECIPES for line in lines)
    assert main(["recipes", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed["table2-pgd-he"]["values"]["scale"] == 15.0 and "Sec. 4" in listed["table2-pgd-he"]["sources"]["lr"]
    assert main(["train", "--recipe", "table2-trades-he", "--epochs", "2", "--print-config"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["epochs"] == 2 and printed["beta"] == 6.0 and printed["recipe"] == "table2-trades-he"
    assert printed["max_iter"] == 10 and printed["lr"] == 0.1
    assert main(["train", "--recipe", "nope", "--print-config"]) == 2


def test_config_json_records_the_recipe_and_every_final_value(tmp_path):
    out = tmp_path / "run"
    assert main(["train", "--recipe", "table2-pgd-he", *TINY, "--model", "small-cnn", "--epochs", "1",
                 "--max-iter", "1", "--out", str(out)]) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["recipe"] == "table2-pgd-he" and config["scale"] == 15.0 and config["lr"] == 0.1
    assert config["num_random_init"] == 1 and config["eps_step"] == pytest.approx(2 / 255)
    assert {f.name for f in dataclasses.fields(TrainConfig)} - {"data_dir"} <= set(config)


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_fast_crafts_its_fgsm_step_in_the_mode_asked(mode):
    from art_he import HEPyTorchClassifier
    from art_he.models import build_model

    torch.manual_seed(0)
    model = build_model("small-cnn", in_channels=1, width=4)
    classifier = HEPyTorchClassifier(model, None, (1, 28, 28), 10, torch.optim.SGD(model.parameters(), lr=0.01),
                                     clip_values=(0.0, 1.0), device_type="cpu")
    trainer = FRAMEWORKS["fast"](classifier, eps=0.1, fgsm_mode=mode, guard_drop=None, precision="fp32",
                                 verbose=False)
    seen = []
    perturb = trainer.perturb
    trainer.perturb = lambda x, y: (seen.append(model.training), perturb(x, y))[1]
    trainer.train_batch(torch.rand(8, 1, 28, 28), torch.randint(0, 10, (8,)))
    assert seen == [mode == "train"]
    with pytest.raises(ValueError, match="fgsm_mode"):
        FRAMEWORKS["fast"](classifier, fgsm_mode="test")
