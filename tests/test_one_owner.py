"""Facts with one owner, seen from outside: the batch order is drawn like every other stream (seeds s and s + 1 do
not share shifted orders), every run file and checkpoint is written by the one atomic writer, which fsyncs, and
the attack step eps / 4 is one function."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from art_he import HEPyTorchClassifier
from art_he.atomic import write_atomic
from art_he.defaults import pgd_step
from art_he.models import build_model
from art_he.runs import save_run
from art_he.trainers import FastATTrainer, PGDATTrainer
from art_he.trainers.checkpoint import save_checkpoint


def trainer(cls, seed: int, **kwargs):
    torch.manual_seed(0)
    model = build_model("small-cnn", in_channels=1, head="he", width=4)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    classifier = HEPyTorchClassifier(model, None, (1, 28, 28), 10, optimizer, clip_values=(0.0, 1.0),
                                     device_type="cpu")
    return cls(classifier, eps=0.1, precision="fp32", seed=seed, verbose=False, **kwargs)


def batch_orders(seed: int, epochs: int = 3, n: int = 32) -> list[list[int]]:
    """The image indices of each epoch's batches, in training order (image ``i`` is filled with ``i / n``)."""
    x = (np.arange(n, dtype=np.float32) / n)[:, None, None, None] * np.ones((1, 1, 28, 28), np.float32)
    y = np.arange(n) % 10
    run = trainer(PGDATTrainer, seed, max_iter=1)
    seen: list[int] = []
    train_batch = run.train_batch

    def recording(xb, yb):
        seen.extend(torch.round(xb[:, 0, 0, 0] * n).long().tolist())
        return train_batch(xb, yb)

    run.train_batch = recording
    run.fit(x, y, batch_size=8, nb_epochs=epochs)
    return [seen[e * n : (e + 1) * n] for e in range(epochs)]


def test_neighbouring_seeds_do_not_share_shifted_batch_orders():
    s0, s1 = batch_orders(0), batch_orders(1)
    assert all(sorted(order) == list(range(32)) for order in s0 + s1)  # each epoch sees every image once
    assert s0[1] != s1[0] and s0[2] != s1[1]  # seed + epoch made these equal
    assert batch_orders(0) == s0  # and a seed still gives its orders


@pytest.fixture
def fsyncs(monkeypatch):
    """The paths ``os.fsync`` is called on, in order."""
    calls: list[Path] = []
    fsync = os.fsync

    def recording(fd):
        calls.append(Path(os.readlink(f"/proc/self/fd/{fd}")))
        return fsync(fd)

    monkeypatch.setattr(os, "fsync", recording)
    return calls


def test_the_atomic_writer_syncs_the_file_then_its_folder(tmp_path, fsyncs):
    path = write_atomic(tmp_path / "a.bin", lambda f: f.write(b"data"))
    assert path.read_bytes() == b"data"
    assert fsyncs == [tmp_path / f".a.bin.{os.getpid()}.tmp", tmp_path]


def test_run_files_and_checkpoints_go_through_the_atomic_writer(tmp_path, fsyncs):
    model = build_model("small-cnn", in_channels=1, head="he", width=4)
    save_run(tmp_path, model, {"dataset": "synthetic", "model": "small-cnn", "head": "he"})
    save_checkpoint(tmp_path / "checkpoint.pt", {"format": 1})
    synced = [p.name for p in fsyncs if p != tmp_path]
    assert synced == [f".{name}.{os.getpid()}.tmp" for name in ("model.safetensors", "config.json", "checkpoint.pt")]
    assert fsyncs.count(tmp_path) == 3  # each rename made durable


def test_the_default_attack_step_is_one_function():
    eps = 8 / 255
    assert pgd_step(eps) == eps / 4
    assert PGDATTrainer.default_eps_step(eps) == pgd_step(eps)
    fast = trainer(FastATTrainer, 0)
    assert fast.validation_attack()["eps_step"] == pgd_step(fast.eps)
