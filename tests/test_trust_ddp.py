"""Under 2 gloo processes: a SIGTERM that reaches only rank 1 stops both ranks after the same batch with one
mid-epoch checkpoint, and resuming from it ends with exactly the weights of an uninterrupted 2-process run (float64,
augmentation on); a loss that turns NaN on rank 1 only stops both ranks at that batch, without a hang."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

from tests.test_ddp import free_port

WORKER = textwrap.dedent(
    """
    import json, os, random, signal, sys
    import numpy as np
    import torch
    torch.set_num_threads(1)
    from art_he import HEPyTorchClassifier
    from art_he.data import load_dataset
    from art_he.errors import Preempted, TrainingDiverged
    from art_he.models import build_model
    from art_he.trainers import PGDATTrainer, cleanup, init_distributed

    out = sys.argv[1]
    ctx = init_distributed("cpu")
    x, y = load_dataset("fashion-mnist", train=True)
    x, y = x[:128], y[:128]  # global batches of 32: 4 an epoch, 16 images per rank

    def trainer(seed=0):
        torch.manual_seed(0)
        model = build_model("small-cnn-nobn", in_channels=1, head="he", width=4).double()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        classifier = HEPyTorchClassifier(model, None, (1, 28, 28), 10, optimizer, clip_values=(0.0, 1.0),
                                         device_type="cpu")
        return PGDATTrainer(classifier, eps=0.1, eps_step=0.04, max_iter=1, precision="fp32", seed=seed,
                            verbose=False, augment=True)

    def fit(t, folder, **kwargs):
        sched = torch.optim.lr_scheduler.MultiStepLR(t.optimizer, milestones=[2], gamma=0.1)
        return t.fit(x, y, batch_size=32, nb_epochs=3, scheduler=sched, checkpoint_dir=f"{out}/{folder}", **kwargs)

    def counting(t, at=-1, action=None):
        calls, original = [], t.train_batch
        def train_batch(xb, yb):
            calls.append(1)
            if len(calls) == at:
                action()
            return original(xb, yb)
        t.train_batch = train_batch
        return calls

    result = {}
    reference = trainer()
    fit(reference, "reference")

    stopped = trainer()
    calls = counting(stopped, 6, lambda: ctx.rank == 1 and os.kill(os.getpid(), signal.SIGTERM))
    try:
        fit(stopped, "run")
    except Preempted as stop:
        result["stopped"] = str(stop)
    result["batches_before"] = len(calls)
    torch.manual_seed(100 + ctx.rank)
    np.random.seed(200 + ctx.rank)
    random.seed(300 + ctx.rank)
    resumed = trainer(seed=99)
    calls = counting(resumed)
    fit(resumed, "run", resume=True)
    result["batches_after"] = len(calls)
    result["exact"] = all(torch.equal(a, b) for a, b in zip(reference.model.state_dict().values(),
                                                            resumed.model.state_dict().values()))
    strip = lambda h: [{k: v for k, v in m.items() if k not in ("time_s", "images_per_s")} for m in h]
    result["same_history"] = strip(reference.history) == strip(resumed.history)

    diverging = trainer()
    original = diverging.compute_loss
    calls = counting(diverging)
    def compute_loss(xb, xa, yb):  # rank 1's third batch only
        loss, clean, adv = original(xb, xa, yb)
        return (loss * float("nan") if ctx.rank == 1 and len(calls) == 3 else loss), clean, adv
    diverging.compute_loss = compute_loss
    try:
        fit(diverging, "diverged")
    except TrainingDiverged as error:
        result["diverged"] = str(error)
    result["batches_diverging"] = len(calls)
    with open(f"{out}/rank{ctx.rank}.json", "w") as f:
        json.dump(result, f)
    cleanup()
    """
)


def test_two_gloo_processes_stop_together_and_resume_exactly(tmp_path):
    worker = tmp_path / "worker.py"
    worker.write_text(WORKER)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "ART_HE_DIST_TIMEOUT": "60"}
    env.pop("WORLD_SIZE", None)
    ddp = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
                          str(free_port()), str(worker), str(tmp_path)], env=env, capture_output=True, text=True,
                         timeout=600)
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    path = tmp_path / "run" / "checkpoint.pt"
    tail = f"after batch 3 of epoch 2: {path} holds the run up to that batch; continue it with --resume"
    assert ranks[0]["stopped"] == f"stopped by a signal to another rank {tail}"
    assert ranks[1]["stopped"] == f"stopped by SIGTERM {tail}"
    for r in ranks:
        assert r["batches_before"] == 7 and r["batches_after"] == 12 - 7
        assert r["exact"] is True and r["same_history"] is True
        assert r["diverged"].startswith("training diverged at epoch 1, batch 3: the loss and ")
        assert r["batches_diverging"] <= 4
    assert ranks[0]["diverged"] == ranks[1]["diverged"]
    assert not (tmp_path / "diverged" / "checkpoint.pt").exists()  # diverged in epoch 1: nothing was saved
