"""Two torchrun launchers on this machine stand for two nodes (c10d rendezvous, one process each): `art-he train`
under them ends with the same weights as one process."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import torch
from safetensors.torch import load_file

TRAIN = ["-m", "art_he", "train", "--subset", "96", "--model", "small-cnn-nobn", "--width", "4", "--epochs", "1",
         "--max-iter", "2", "--batch-size", "32", "--precision", "fp32", "--quiet"]
#: fp32 weights of 2 processes vs 1 differ by reduction order only; issue "Green on every machine" measured up to
#: 1.5e-4 after one epoch on a CPU with native bf16 (1e-5 on ours); 10x that leaves room, a real error is O(lr)
TOLERANCE = 1.5e-3


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_nodes_train_the_weights_of_one_process(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for key in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    one = subprocess.run([sys.executable, *TRAIN, "--out", str(tmp_path / "one")], env=env, capture_output=True,
                         text=True, timeout=300)
    assert one.returncode == 0, one.stderr[-3000:]
    port = free_port()
    nodes = [subprocess.Popen(
        [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--node-rank", str(node),
         "--nproc-per-node", "1", "--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{port}",
         "--rdzv-id", "art-he-test", *TRAIN, "--out", str(tmp_path / "two")],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for node in (0, 1)]
    try:
        outputs = [node.communicate(timeout=300) for node in nodes]
    finally:
        for node in nodes:
            if node.poll() is None:
                node.kill()
    for node, (_, err) in zip(nodes, outputs):
        assert node.returncode == 0, err[-3000:]
    a, b = (load_file(str(tmp_path / run / "model.safetensors")) for run in ("one", "two"))
    assert a.keys() == b.keys()
    diff = max((a[k] - b[k]).abs().max().item() for k in a)
    assert diff <= TOLERANCE, diff
    assert not all(torch.equal(a[k], torch.zeros_like(a[k])) for k in a)
