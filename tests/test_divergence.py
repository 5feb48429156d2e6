"""Runs that diverge stop at the batch where the loss or a parameter stops being finite, with one line naming the
epoch, the batch and the quantity; the last finite checkpoint stays byte for byte, no model is written from
non-finite weights, and every JSON file art_he writes is strict (no NaN or Infinity literals)."""

from __future__ import annotations

import ast
import hashlib
import json
from pathlib import Path

import pytest
import torch

from art_he import HEPyTorchClassifier
from art_he.cli import main
from art_he.errors import TrainingDiverged
from art_he.models import build_model
from art_he.trainers import FRAMEWORKS
from art_he.trainers.base import ATTrainer
from art_he.trainers.checkpoint import CHECKPOINT_FILE, load_checkpoint
from tests.conftest import one_line_error

ROOT = Path(__file__).resolve().parents[1]
TRAIN = ["train", "--subset", "128", "--width", "4", "--epochs", "3", "--max-iter", "1", "--batch-size", "64",
         "--precision", "fp32", "--quiet"]


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def make_trainer(framework: str = "pgd", **kwargs):
    torch.manual_seed(0)
    model = build_model("small-cnn", in_channels=1, head="he", width=4).double()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    classifier = HEPyTorchClassifier(model, None, (1, 28, 28), 10, optimizer, clip_values=(0.0, 1.0),
                                     device_type="cpu")
    options = {"eps": 0.1, "precision": "fp32", "seed": 0, "verbose": False, **kwargs}
    if framework in ("pgd", "alp", "trades"):
        options.update(eps_step=0.04, max_iter=1)
    return FRAMEWORKS[framework](classifier, **options)


def poison(what: str, at: int, calls: list, hook=None):
    """A ``train_batch`` that makes the ``at``-th batch of the run (1-based) non-finite: its loss, or the first
    parameter after the update; ``calls`` counts the batches run, ``hook()`` runs just before the poison."""

    def train_batch(self, x, y):
        calls.append(1)
        if len(calls) != at:
            return original(self, x, y)
        if hook is not None:
            hook()
        if what == "loss":
            compute = self.compute_loss
            self.compute_loss = lambda *a: (lambda loss, *outs: (loss * float("nan"), *outs))(*compute(*a))
            try:
                return original(self, x, y)
            finally:
                del self.compute_loss
        stats = original(self, x, y)
        with torch.no_grad():
            next(self.model.parameters()).view(-1)[0] = float("inf")
        return stats

    original = ATTrainer.train_batch
    return train_batch


@pytest.mark.parametrize("what, quantity", [("loss", "the loss and {n} parameters (features.0.weight, ...) are"),
                                            ("parameter", "parameter features.0.weight is")])
def test_a_non_finite_loss_or_parameter_stops_at_that_batch_and_keeps_the_checkpoint(
        what, quantity, fmnist_train, tmp_path, monkeypatch):
    x, y = fmnist_train[0][:64], fmnist_train[1][:64]
    calls, saved = [], []
    trainer = make_trainer()
    quantity = quantity.format(n=len(list(trainer.model.parameters())))  # a NaN loss makes every gradient NaN
    trainer.callbacks.append(lambda m: saved.append(sha(tmp_path / CHECKPOINT_FILE)))
    monkeypatch.setattr(ATTrainer, "train_batch", poison(what, 7, calls))  # epoch 2, batch 3 of 4
    with pytest.raises(TrainingDiverged) as error:
        trainer.fit(x, y, batch_size=16, nb_epochs=3, checkpoint_dir=tmp_path)
    message = str(error.value)
    assert message == (f"training diverged at epoch 2, batch 3: {quantity} not finite, so training stopped there; "
                       f"{tmp_path / CHECKPOINT_FILE} keeps the last finite state saved; lower the learning rate "
                       "(--lr)")
    assert len(calls) <= 8  # read one batch late at most: batch 4 of epoch 2 may have run, nothing after it
    assert len(trainer.history) == 1 and saved == [sha(tmp_path / CHECKPOINT_FILE)]  # epoch 1's, untouched
    state = load_checkpoint(tmp_path / CHECKPOINT_FILE)
    assert state["epoch"] == 1 and all(torch.isfinite(v).all() for v in state["model"].values())
    assert [p.name for p in tmp_path.iterdir()] == [CHECKPOINT_FILE]


def test_the_cli_stops_a_diverging_run_in_one_line_and_writes_no_model(tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    calls, seen = [], {}
    monkeypatch.setattr(ATTrainer, "train_batch", poison("parameter", 3, calls,
                                                         hook=lambda: seen.update(sha=sha(out / CHECKPOINT_FILE))))
    assert main([*TRAIN, "--out", str(out)]) == 2  # 2 batches an epoch: epoch 2, batch 1
    one_line_error(capsys, "training diverged at epoch 2, batch 1: parameter features.0.weight is not finite",
                   str(out / CHECKPOINT_FILE))
    assert sha(out / CHECKPOINT_FILE) == seen["sha"] and not (out / "model.safetensors").exists()
    assert load_checkpoint(out / CHECKPOINT_FILE)["epoch"] == 1
    lines = (out / "metrics.jsonl").read_text().splitlines()
    assert [strict_json(line)["epoch"] for line in lines] == [1]
    monkeypatch.undo()

    # a real divergence: a learning rate of 1e8 (the case) gives one line, exit 2, no model
    diverged = tmp_path / "lr"
    assert main([*TRAIN, "--lr", "1e8", "--out", str(diverged)]) == 2
    one_line_error(capsys, "training diverged at epoch", "not finite", "lower the learning rate")
    assert not (diverged / "model.safetensors").exists()
    for line in (diverged / "metrics.jsonl").read_text().splitlines():
        strict_json(line)
    state = load_checkpoint(diverged / CHECKPOINT_FILE)
    assert state is None or all(torch.isfinite(v).all() for v in state["model"].values())
    strict_json((diverged / "config.json").read_text())


def strict_json(text: str):
    def refuse(constant):
        raise AssertionError(f"{constant} in {text[:80]}")

    return json.loads(text, parse_constant=refuse)


def test_the_fast_at_guard_still_rolls_back_with_the_watch(fmnist_train, monkeypatch):
    """The guard stops a run by itself (no exception) and rolls back to its best, finite, weights; the watch leaves
    it be. The collapse is forced: after the 5th batch the head's weights are negated (finite, all wrong)."""
    x, y = fmnist_train[0][:128], fmnist_train[1][:128]
    trainer = make_trainer("fast", guard_every=2, guard_iter=2, guard_drop=0.05, cyclic_lr=False)
    head = list(trainer.model.parameters())[-1]
    calls, original = [], ATTrainer.train_batch

    def train_batch(self, xb, yb):
        stats = original(self, xb, yb)
        calls.append(1)
        if len(calls) == 5:
            with torch.no_grad():
                head.neg_()
        return stats

    monkeypatch.setattr(ATTrainer, "train_batch", train_batch)
    with pytest.warns(UserWarning, match="catastrophic overfitting"):
        trainer.fit(x, y, batch_size=32, nb_epochs=2)
    assert trainer.guard_tripped and trainer.stop_training and trainer.history[-1]["guard_tripped"] is True
    assert len(calls) == 6 and len(trainer.history) == 2  # stopped in epoch 2 by the check after batch 6
    assert all(torch.equal(v, trainer.best_state[k]) for k, v in trainer.model.state_dict().items())


def test_every_json_art_he_writes_is_strict():
    """Every ``json.dump`` / ``json.dumps`` in art_he passes ``allow_nan=False``: a NaN is a bug with a traceback,
    never a ``NaN`` literal in a file."""
    loose = []
    for path in sorted(ROOT.glob("art_he/**/*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and ast.unparse(node.func) in ("json.dump", "json.dumps"):
                if not any(k.arg == "allow_nan" and ast.unparse(k.value) == "False" for k in node.keywords):
                    loose.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert loose == []
