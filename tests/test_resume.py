"""Per-epoch checkpoints and exact resume: a run killed with SIGKILL mid-epoch and resumed ends with the same
weights as an uninterrupted run; checkpoints are atomic and load with ``weights_only=True``."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from art_he.trainers.checkpoint import CHECKPOINT_FILE, load_checkpoint, save_checkpoint
from tests.conftest import make_trainer

CHILD = textwrap.dedent(
    """
    import sys
    import time
    import torch
    torch.set_num_threads(1)
    from art_he import HEPyTorchClassifier
    from art_he.data import load_dataset
    from art_he.models import build_model
    from art_he.trainers import FastATTrainer

    out, resume, mark = sys.argv[1], sys.argv[2] == "1", int(sys.argv[3])
    x, y = load_dataset("fashion-mnist", train=True)
    x, y = x[:320], y[:320]
    torch.manual_seed(0)
    model = build_model("small-cnn", in_channels=1, head="he", width=8)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    classifier = HEPyTorchClassifier(model, None, (1, 28, 28), 10, optimizer, clip_values=(0.0, 1.0),
                                     device_type="cpu")
    trainer = FastATTrainer(classifier, eps=0.1, precision="fp32", seed=3, verbose=False)
    batches = [0]
    train_batch = trainer.train_batch

    def counting(xb, yb):
        stats = train_batch(xb, yb)
        batches[0] += 1
        if batches[0] == mark:
            print("MARK", flush=True)
            time.sleep(60)  # the parent's SIGKILL lands here, in the middle of the epoch
        return stats

    trainer.train_batch = counting
    history = trainer.fit(x, y, batch_size=32, nb_epochs=3, validation_data=(x[:64], y[:64]),
                          checkpoint_dir=out, resume=resume)
    torch.save({"model": model.state_dict(), "history": history}, out + "/final.pt")
    """
)


def child(script, out, resume: bool, mark: int = -1) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, str(script), str(out), "1" if resume else "0", str(mark)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def comparable(history):
    return [{k: v for k, v in m.items() if k not in ("time_s", "images_per_s")} for m in history]


def test_sigkill_mid_epoch_then_resume_gives_the_same_weights(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(CHILD)
    full, killed = tmp_path / "full", tmp_path / "killed"

    proc = child(script, full, resume=False)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err

    # 10 batches per epoch: the mark is the 3rd batch of epoch 2; the kill lands while epoch 2 runs
    proc = child(script, killed, resume=False, mark=13)
    assert proc.stdout.readline().strip() == "MARK"
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    state = load_checkpoint(killed / CHECKPOINT_FILE)
    assert state["epoch"] == 1 and not (killed / "final.pt").exists()
    assert [p.name for p in killed.iterdir()] == [CHECKPOINT_FILE]  # no temporary file left behind

    proc = child(script, killed, resume=True)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err

    a = torch.load(full / "final.pt", weights_only=True)
    b = torch.load(killed / "final.pt", weights_only=True)
    for name, value in a["model"].items():
        assert torch.equal(value, b["model"][name]), name
    assert len(b["history"]) == 3
    assert comparable(a["history"]) == comparable(b["history"])


def scramble_global_rngs():
    """What a fresh process would have: other global RNG states than the ones the run left."""
    torch.manual_seed(12345)
    np.random.seed(54321)
    random.seed(999)


@pytest.mark.parametrize("framework, loader, augment", [("free", False, False), ("trades", False, False),
                                                       ("alp", True, False), ("pgd", False, True)])
def test_resume_from_a_checkpoint_continues_exactly(framework, loader, augment, fmnist_train, tmp_path):
    from torch.utils.data import DataLoader, TensorDataset

    x, y = fmnist_train[0][:96], fmnist_train[1][:96]

    def fit(trainer, epochs, **kwargs):
        sched = torch.optim.lr_scheduler.MultiStepLR(trainer.optimizer, milestones=[2], gamma=0.1)
        if loader:  # shuffled by the global torch RNG, which the checkpoint carries
            data = DataLoader(TensorDataset(torch.as_tensor(x), torch.as_tensor(y)), batch_size=32, shuffle=True)
            return trainer.fit_loader(data, nb_epochs=epochs, scheduler=sched, **kwargs)
        return trainer.fit(x, y, batch_size=32, nb_epochs=epochs, scheduler=sched, **kwargs)

    torch.manual_seed(7)
    reference = make_trainer(framework, "mhe", augment=augment)
    fit(reference, 3)

    torch.manual_seed(7)
    first = make_trainer(framework, "mhe", augment=augment)
    fit(first, 2, checkpoint_dir=tmp_path)
    scramble_global_rngs()
    resumed = make_trainer(framework, "mhe", seed=99, augment=augment)  # another seed: all from the checkpoint
    history = fit(resumed, 3, checkpoint_dir=tmp_path, resume=True)
    assert [m["epoch"] for m in history] == [1, 2, 3]
    assert comparable(history) == comparable(reference.history)
    for a, b in zip(reference.model.state_dict().values(), resumed.model.state_dict().values()):
        assert torch.equal(a, b)
    if framework == "free":
        assert torch.equal(reference.delta, resumed.delta)


def test_resume_without_a_checkpoint_warns_and_starts_fresh(fmnist_train, tmp_path):
    x, y = fmnist_train[0][:64], fmnist_train[1][:64]
    trainer = make_trainer("pgd", "mhe")
    with pytest.warns(UserWarning, match="from scratch"):
        history = trainer.fit(x, y, batch_size=32, nb_epochs=1, checkpoint_dir=tmp_path / "new", resume=True)
    assert len(history) == 1 and (tmp_path / "new" / CHECKPOINT_FILE).is_file()
    # resuming a finished run trains nothing more
    again = make_trainer("pgd", "mhe")
    assert len(again.fit(x, y, batch_size=32, nb_epochs=1, checkpoint_dir=tmp_path / "new", resume=True)) == 1


def test_checkpoint_content_loads_weights_only_and_holds_the_full_state(fmnist_train, tmp_path):
    x, y = fmnist_train[0][:64], fmnist_train[1][:64]
    trainer = make_trainer("fast", "mhe", precision="fp16")
    trainer.fit(x, y, batch_size=32, nb_epochs=1, checkpoint_dir=tmp_path)
    state = torch.load(tmp_path / CHECKPOINT_FILE, weights_only=True)
    assert state["epoch"] == 1 and state["framework"] == "FastATTrainer"
    assert set(state) >= {"model", "optimizer", "scheduler", "scaler", "ranks", "history", "trainer"}
    assert state["scheduler"] is not None and state["scaler"]["scale"] > 0  # cyclic LR and the fp16 grad scaler
    assert set(state["ranks"][0]["rng"]) >= {"torch", "numpy", "python", "generator"}
    assert state["ranks"][0]["state"]["guard_batch"] is not None and state["trainer"]["best_state"] is not None


def test_checkpoint_writes_are_atomic(tmp_path, monkeypatch):
    path = tmp_path / CHECKPOINT_FILE
    save_checkpoint(path, {"format": 1, "epoch": 1, "w": torch.ones(3)})

    def broken_save(obj, f, *args, **kwargs):
        f.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(ValueError, match=r"could not write .*checkpoint.pt \(disk full\); checkpoint.pt is left"):
        save_checkpoint(path, {"format": 1, "epoch": 2, "w": torch.zeros(3)})
    monkeypatch.undo()
    state = load_checkpoint(path)
    assert state["epoch"] == 1 and torch.equal(state["w"], torch.ones(3))
    assert [p.name for p in tmp_path.iterdir()] == [CHECKPOINT_FILE]
    (tmp_path / "other.pt").write_bytes(b"")
    torch.save({"something": 1}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not an art_he"):
        load_checkpoint(tmp_path / "other.pt")
