"""Preemption loses nothing: SIGTERM or SIGUSR1 ends training after the current batch with a mid-epoch checkpoint
(exit status 75 from the CLI), and resuming from it ends with exactly the weights of an uninterrupted run (float64,
augmentation on; 2 gloo processes in ``test_trust_ddp.py``); ``checkpoint_every`` writes such checkpoints on a
timer; a full disk while writing a checkpoint or the model gives one line and leaves the previous file intact."""

from __future__ import annotations

import hashlib
import os
import random
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from art_he import HEPyTorchClassifier
from art_he.cli import main
from art_he.errors import PREEMPTED_EXIT, Preempted, UserError
from art_he.models import build_model
from art_he.trainers import FRAMEWORKS, FastATTrainer
from art_he.trainers.base import ATTrainer
from art_he.trainers.checkpoint import CHECKPOINT_FILE, load_checkpoint
from tests.conftest import one_line_error

TRAIN = ["train", "--subset", "192", "--width", "4", "--epochs", "3", "--max-iter", "1", "--batch-size", "64",
         "--precision", "fp32", "--quiet"]
needs_dev_full = pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full to fail a write with")


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def make_trainer(framework: str, seed: int = 0, **kwargs):
    torch.manual_seed(0)
    model = build_model("small-cnn", in_channels=1, head="he", width=4).double()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    classifier = HEPyTorchClassifier(model, None, (1, 28, 28), 10, optimizer, clip_values=(0.0, 1.0),
                                     device_type="cpu")
    options = {"eps": 0.1, "precision": "fp32", "seed": seed, "verbose": False, **kwargs}
    if framework in ("pgd", "alp", "trades"):
        options.update(eps_step=0.04, max_iter=1)
    return FRAMEWORKS[framework](classifier, **options)


def counting(trainer, calls: list, at: int = -1, action=None) -> None:
    """Count the batches ``trainer`` trains; before the ``at``-th (1-based over the run), call ``action()``."""
    original = trainer.train_batch

    def train_batch(x, y):
        calls.append(1)
        if len(calls) == at:
            action()
        return original(x, y)

    trainer.train_batch = train_batch


def comparable(history):
    return [{k: v for k, v in m.items() if k not in ("time_s", "images_per_s")} for m in history]


def fit(trainer, data, loader: bool, epochs: int = 3, **kwargs):
    """3 epochs of batches of 16, FastAT with its per-batch cyclic LR, the others with an epoch schedule."""
    from torch.utils.data import DataLoader, TensorDataset

    x, y = data
    sched = None if isinstance(trainer, FastATTrainer) else torch.optim.lr_scheduler.MultiStepLR(
        trainer.optimizer, milestones=[2], gamma=0.1)
    if loader:  # shuffled by the global torch RNG, which the checkpoint carries
        batches = DataLoader(TensorDataset(torch.as_tensor(x), torch.as_tensor(y)), batch_size=16, shuffle=True)
        return trainer.fit_loader(batches, nb_epochs=epochs, scheduler=sched, **kwargs)
    return trainer.fit(x, y, batch_size=16, nb_epochs=epochs, scheduler=sched, **kwargs)


@pytest.mark.parametrize("framework, loader, augment, sig", [
    ("pgd", False, True, signal.SIGTERM),  # on-device crop and flip, epoch scheduler
    ("fast", False, True, signal.SIGUSR1),  # per-batch cyclic LR, the guard's state
    ("free", False, False, signal.SIGTERM),  # the carried perturbation
    ("alp", True, False, signal.SIGUSR1),  # a DataLoader shuffled by the global RNG
])
def test_a_signal_stops_after_the_batch_and_resume_ends_with_the_same_weights(framework, loader, augment, sig,
                                                                             fmnist_train, tmp_path):
    data = fmnist_train[0][:64], fmnist_train[1][:64]  # 4 batches an epoch
    torch.manual_seed(7)
    reference = make_trainer(framework, augment=augment)
    fit(reference, data, loader, checkpoint_dir=tmp_path / "reference")

    torch.manual_seed(7)
    stopped, calls = make_trainer(framework, augment=augment), []
    counting(stopped, calls, at=6, action=lambda: os.kill(os.getpid(), sig))  # during epoch 2, batch 2
    with pytest.raises(Preempted) as stop:
        fit(stopped, data, loader, checkpoint_dir=tmp_path / "run")
    path = tmp_path / "run" / CHECKPOINT_FILE
    # the flags are read one batch late: batch 3 of epoch 2 runs too, then the checkpoint is written
    assert str(stop.value) == (f"stopped by {sig.name} after batch 3 of epoch 2: {path} holds the run up to that "
                               "batch; continue it with --resume")
    assert len(calls) == 7 and signal.getsignal(sig) is signal.SIG_DFL  # the handlers are put back
    state = load_checkpoint(path)
    assert (state["epoch"], state["batch"]) == (1, 3) and [p.name for p in path.parent.iterdir()] == [path.name]

    torch.manual_seed(12345)  # a fresh process: other global RNG states, another seed (all come from the checkpoint)
    np.random.seed(54321)
    random.seed(999)
    resumed, more = make_trainer(framework, seed=99, augment=augment), []
    counting(resumed, more)
    history = fit(resumed, data, loader, checkpoint_dir=tmp_path / "run", resume=True)
    assert len(more) == 12 - 7  # no batch trained twice, none skipped
    assert comparable(history) == comparable(reference.history)
    for (name, a), b in zip(reference.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), name
    if framework == "free":
        assert torch.equal(reference.delta, resumed.delta)


@pytest.mark.parametrize("crash", [4, 5])  # after batch 2 of epoch 2; after its last batch, before its end
def test_checkpoint_every_writes_mid_epoch_checkpoints_that_resume_exactly(crash, fmnist_train, tmp_path,
                                                                          monkeypatch):
    data = fmnist_train[0][:64], fmnist_train[1][:64]
    reference = make_trainer("pgd", augment=True)
    fit(reference, data, False)

    positions = []
    save = ATTrainer.save_checkpoint

    def save_then_crash(self, path, scheduler=None, position=None):
        save(self, path, scheduler, position)
        positions.append((len(self.history), position["batch"] if position else 0))
        if len(positions) == crash:
            raise KeyboardInterrupt  # the process dies right after a periodic checkpoint

    monkeypatch.setattr(ATTrainer, "save_checkpoint", save_then_crash)
    crashed = make_trainer("pgd", augment=True, checkpoint_every=1e-9)  # due after every batch
    with pytest.raises(KeyboardInterrupt):
        fit(crashed, data, False, checkpoint_dir=tmp_path)
    monkeypatch.undo()
    # due at once, read one batch late: every second batch, and at every epoch end
    assert positions == [(0, 2), (0, 4), (1, 0), (1, 2), (1, 4)][:crash]
    resumed = make_trainer("pgd", seed=5, augment=True)
    fit(resumed, data, False, checkpoint_dir=tmp_path, resume=True)
    assert comparable(resumed.history) == comparable(reference.history)
    for a, b in zip(reference.model.state_dict().values(), resumed.model.state_dict().values()):
        assert torch.equal(a, b)


CHILD = textwrap.dedent(
    """
    import sys, time
    from art_he.cli import main
    from art_he.trainers.watch import BatchWatch

    mark = int(sys.argv[1])
    push, seen = BatchWatch.push, [0]

    def waiting(self, epoch, batch, loss):
        seen[0] += 1
        if seen[0] == mark:
            print("MARK", flush=True)
            for _ in range(600):  # until the parent's signal lands
                if self.signal is not None:
                    break
                time.sleep(0.1)
        return push(self, epoch, batch, loss)

    BatchWatch.push = waiting
    sys.exit(main(sys.argv[2:]))
    """
)


def test_sigusr1_to_the_cli_exits_75_and_resume_gives_the_uninterrupted_model(tmp_path):
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[1])}

    def run(mark: int, *args, train=TRAIN):
        return subprocess.Popen([sys.executable, str(script), str(mark), *train, *args], env=env, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    reference = run(-1, "--out", str(tmp_path / "reference"))
    out, err = reference.communicate(timeout=600)
    assert reference.returncode == 0, err

    run_dir = tmp_path / "run"
    child = run(4, "--out", str(run_dir))  # 3 batches an epoch: epoch 2, batch 1
    assert child.stdout.readline().strip() == "MARK"
    child.send_signal(signal.SIGUSR1)
    _, err = child.communicate(timeout=600)
    assert child.returncode == PREEMPTED_EXIT
    assert err.strip() == (f"art-he train: stopped by SIGUSR1 after batch 2 of epoch 2: {run_dir / CHECKPOINT_FILE} "
                           "holds the run up to that batch; continue it with --resume")
    state = load_checkpoint(run_dir / CHECKPOINT_FILE)
    assert (state["epoch"], state["batch"]) == (1, 2) and not (run_dir / "model.safetensors").exists()
    assert sorted(p.name for p in run_dir.iterdir()) == ["checkpoint.pt", "config.json", "metrics.jsonl"]

    resumed = run(-1, "--out", str(run_dir), "--resume", train=TRAIN[:-1])  # not --quiet: says from where
    out, err = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, err
    assert "resuming from epoch 1 of 3, after batch 2 of epoch 2" in out
    assert sha(run_dir / "model.safetensors") == sha(tmp_path / "reference" / "model.safetensors")
    assert (run_dir / "metrics.jsonl").read_text().count('"epoch"') == 3


@needs_dev_full
def test_a_full_disk_while_writing_a_checkpoint_keeps_the_previous_one(fmnist_train, tmp_path):
    data = fmnist_train[0][:32], fmnist_train[1][:32]
    trainer, kept = make_trainer("pgd"), {}
    tmp = tmp_path / f".{CHECKPOINT_FILE}.{os.getpid()}.tmp"  # where the next checkpoint is written first

    def fill_the_disk(metrics):
        kept["sha"] = sha(tmp_path / CHECKPOINT_FILE)
        tmp.symlink_to("/dev/full")  # every write to it fails with ENOSPC

    trainer.callbacks.append(fill_the_disk)
    with pytest.raises(UserError) as error:
        fit(trainer, data, False, checkpoint_dir=tmp_path)
    assert str(error.value) == (f"could not write {tmp_path / CHECKPOINT_FILE} (No space left on device, ENOSPC); "
                                f"{CHECKPOINT_FILE} is left as it was: make room or fix the folder, then continue "
                                "the run with --resume")
    assert sha(tmp_path / CHECKPOINT_FILE) == kept["sha"] and load_checkpoint(tmp_path / CHECKPOINT_FILE)["epoch"] == 1
    assert [p.name for p in tmp_path.iterdir()] == [CHECKPOINT_FILE]  # the temporary file is gone


@needs_dev_full
def test_a_full_disk_while_writing_the_model_loses_nothing(tmp_path, capsys):
    reference = tmp_path / "reference"
    assert main([*TRAIN, "--out", str(reference)]) == 0
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / f".model.safetensors.{os.getpid()}.tmp").symlink_to("/dev/full")
    assert main([*TRAIN, "--out", str(run_dir)]) == 2
    one_line_error(capsys, f"could not write {run_dir / 'model.safetensors'} (No space left on device, ENOSPC)")
    assert sorted(p.name for p in run_dir.iterdir()) == ["checkpoint.pt", "config.json", "metrics.jsonl"]
    assert load_checkpoint(run_dir / CHECKPOINT_FILE)["epoch"] == 3
    assert main([*TRAIN[:-1], "--out", str(run_dir), "--resume"]) == 0  # trains nothing, writes the model
    assert "resuming from epoch 3 of 3" in capsys.readouterr().out
    assert sha(run_dir / "model.safetensors") == sha(reference / "model.safetensors")
