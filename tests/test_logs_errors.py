"""Library code logs through ``logging.getLogger("art_he")`` and never prints (``verbose=False``: nothing at all);
``art-he`` shows the records as lines. A user's mistake is one line from the CLI; a programming error keeps its
traceback."""

from __future__ import annotations

import logging
import subprocess
import sys

import pytest
import torch

from art_he import HEPyTorchClassifier, UserError
from art_he.attacks.train_time import pgd
from art_he.config import TrainConfig
from art_he.heads import HypersphereHead
from art_he.losses import alp_pairing, trades_kl
from art_he.models import build_model
from art_he.runs import train_run
from art_he.trainers import PGDATTrainer

TINY = {"dataset": "synthetic", "subset": 64, "width": 4, "batch_size": 32, "epochs": 1, "max_iter": 1,
        "precision": "fp32"}


@pytest.fixture
def no_handler(monkeypatch):
    """art_he's logger as in a fresh Python process: no handler of its own (``art-he`` adds one)."""
    monkeypatch.setattr(logging.getLogger("art_he"), "handlers", [])


def trainer(verbose: bool) -> PGDATTrainer:
    torch.manual_seed(0)
    model = build_model("small-cnn", in_channels=1, head="he", width=4)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    classifier = HEPyTorchClassifier(model, None, (1, 28, 28), 10, optimizer, clip_values=(0.0, 1.0),
                                     device_type="cpu")
    return PGDATTrainer(classifier, eps=0.1, max_iter=1, precision="fp32", seed=0, verbose=verbose)


def test_a_trainer_logs_its_epoch_line_and_prints_nothing(fmnist_train, no_handler, caplog, capsys):
    x, y = fmnist_train[0][:64], fmnist_train[1][:64]
    with caplog.at_level(logging.INFO, logger="art_he"):
        trainer(verbose=True).fit(x, y, batch_size=32, nb_epochs=1)
    assert [r.name for r in caplog.records] == ["art_he.trainers.base"]
    assert caplog.records[0].getMessage().startswith("epoch=1 loss=")
    assert capsys.readouterr().out == ""
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="art_he"):
        trainer(verbose=False).fit(x, y, batch_size=32, nb_epochs=1)
    assert caplog.records == [] and capsys.readouterr() == ("", "")  # silent: no record, no bar


def test_train_run_logs_the_resume_and_verbose_false_is_silent(tmp_path, no_handler, caplog, capsys):
    out = tmp_path / "run"
    with caplog.at_level(logging.DEBUG, logger="art_he"):
        train_run(TrainConfig(**TINY), out, verbose=False)
        train_run(TrainConfig(**TINY), out, resume=True, verbose=False)
    assert caplog.records == [] and capsys.readouterr() == ("", "")
    with caplog.at_level(logging.INFO, logger="art_he"):
        train_run(TrainConfig(**TINY), out, resume=True)
    assert [(r.name, r.getMessage()) for r in caplog.records] == [("art_he.runs", "resuming from epoch 1 of 1")]
    assert capsys.readouterr().out == ""


def test_the_cli_shows_the_log_once_as_plain_lines(tmp_path, capsys):
    from art_he.cli import main

    flags = ["--dataset", "synthetic", "--subset", "64", "--width", "4", "--batch-size", "32", "--max-iter", "1"]
    assert main(["train", *flags, "--out", str(tmp_path / "run")]) == 0
    assert main(["train", *flags, "--out", str(tmp_path / "run"), "--resume"]) == 0  # a second handler would double
    lines = capsys.readouterr().out.splitlines()
    assert [ln for ln in lines if ln.startswith("resuming")] == ["resuming from epoch 1 of 1"]
    assert sum(ln.startswith("epoch=1 ") for ln in lines) == 1


@pytest.mark.parametrize("call, match", [
    (lambda: pgd(torch.nn.Flatten(), torch.zeros(1, 2), torch.zeros(1), lambda o, t: o.sum(), eps=0.1,
                 eps_step=0.1, max_iter=1, random_init="gauss"), "random_init"),
    (lambda: trades_kl(torch.zeros(2, 3), torch.zeros(2, 3), reduction="max"), "reduction"),
    (lambda: alp_pairing(torch.zeros(2, 3), torch.zeros(2, 3), kind="l1"), "pairing"),
    (lambda: HypersphereHead(8, 3)(torch.zeros(2, 5)), "features of shape"),
])
def test_programming_errors_are_not_user_errors(call, match):
    with pytest.raises(ValueError, match=match) as error:
        call()
    assert not isinstance(error.value, UserError)


CHILD = """
import sys
from art_he.attacks import train_time
from art_he.cli import main
from art_he.trainers import PGDATTrainer

def perturb(self, x, y):  # a bug: an argument no attack takes
    return train_time.pgd(self.model, x, y, self.objective.attack_loss, eps=0.1, eps_step=0.1, max_iter=1,
                          random_init="gauss")

PGDATTrainer.perturb = perturb
sys.exit(main(sys.argv[1:]))
"""


def test_a_programming_error_keeps_its_traceback_through_the_cli(tmp_path):
    flags = ["train", "--dataset", "synthetic", "--subset", "64", "--width", "4", "--batch-size", "32", "--quiet"]
    proc = subprocess.run([sys.executable, "-c", CHILD, *flags, "--out", str(tmp_path / "run")], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.startswith("Traceback") and "train_time.py" in proc.stderr
    assert proc.stderr.strip().endswith("ValueError: unknown random_init 'gauss'")
