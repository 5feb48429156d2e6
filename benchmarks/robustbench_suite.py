"""``--suite robustbench`` (RobustBench's own ``benchmark``) against our AutoAttack row, same model, same images.

No CIFAR-10 is on these machines, so the benchmark writes Fashion-MNIST in CIFAR-10's on-disk format (28x28 padded
to 32x32, grey copied to 3 channels; the first ``--n-train`` training images over the five batches and the first
``--n`` test images as ``test_batch``) and trains a small HE WideResNet on it with PGD-AT (``art-he train``).
Then, on the same ``--n`` test images at eps 0.1 (training and evaluation):

* ``robustbench``: ``art-he eval RUN --suite robustbench`` (:func:`art_he.robustbench.benchmark.benchmark_run`):
  the model converted into RobustBench's ``BoostingWideResNet``, RobustBench's data loading, its clean accuracy
  and AutoAttack standard on the raw cosines;
* ``ours``: ``evaluate(..., attacks="autoattack")``: AutoAttack standard on ``s * cos``, then APGD-CE on the raw
  cosines on the survivors (the row reports the per-image worst case).

Reported: each one's time, the ratio, both robust accuracies and their difference in points (the issue's bar:
within 0.5 points at n >= 200).
    python benchmarks/robustbench_suite.py [--n 200] [--n-train 10000] [--epochs 2] [--json FILE]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from _common import device_name, report

from art_he.cli import main as art_he
from art_he.data import load_dataset
from art_he.data.convert import fashion_as_cifar10
from art_he.evaluation import evaluate
from art_he.robustbench.benchmark import benchmark_run
from art_he.runs import load_run

EPS = 0.1  # Fashion-MNIST's usual eps (8/255 leaves most images robust, and AutoAttack slow, on this data)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])  # benchmark argparse boilerplate
    p.add_argument("--n", type=int, default=200)
    p.add_argument("--n-train", type=int, default=5000)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--model", default="wrn-10-1")
    p.add_argument("--batch-size", type=int, default=200)
    p.add_argument("--json", default=None)
    args = p.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        data, run = Path(tmp) / "data", Path(tmp) / "run"
        fashion_as_cifar10(data, n_train=args.n_train, n_test=args.n)
        start = time.perf_counter()
        assert art_he(["train", "--dataset", "cifar10", "--model", args.model, "--head", "he", "--framework", "pgd",
                       "--epochs", str(args.epochs), "--max-iter", "3", "--eps", str(EPS), "--eps-step", str(EPS / 2),
                       "--no-augment", "--precision", "fp32", "--no-verify-data", "--workers", "0",
                       "--data-dir", str(data), "--out", str(run), "--quiet"]) == 0
        train_s = time.perf_counter() - start

        start = time.perf_counter()
        rb = benchmark_run(run, data_dir=data, n=args.n, eps=EPS, batch_size=args.batch_size, device="cpu")
        rb_s = time.perf_counter() - start

        _, classifier, _ = load_run(run, device="cpu")
        x, y = load_dataset("cifar10", train=False, data_dir=data, verify=False)
        start = time.perf_counter()
        ours = evaluate(classifier, x[: args.n], y[: args.n], attacks="autoattack", eps=EPS,
                        batch_size=args.batch_size, sweep=())
        ours_s = time.perf_counter() - start

    ours_aa, ours_clean = ours.accuracy("autoattack"), ours.clean_accuracy
    report("--suite robustbench against our AutoAttack row", {
        "device": device_name(torch.device("cpu")),
        "workload": f"{args.model} HE, PGD-AT (3 steps) {args.epochs} epochs on {args.n_train} Fashion-MNIST "
                    f"images as CIFAR-10 files ({train_s:.0f} s); AutoAttack standard, eps {EPS}, n = {args.n}",
        "robustbench_s": round(rb_s, 2), "ours_s": round(ours_s, 2),
        "robustbench_over_ours": round(rb_s / ours_s, 3),
        "clean": {"robustbench": rb.clean_acc, "ours": ours_clean},
        "autoattack": {"robustbench": rb.autoattack_acc, "ours": ours_aa},
        "difference_points": round(100 * abs(rb.autoattack_acc - ours_aa), 2),
        "within_half_a_point": bool(100 * abs(rb.autoattack_acc - ours_aa) <= 0.5),
    }, args.json)


if __name__ == "__main__":
    main()
