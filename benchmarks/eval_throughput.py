"""Evaluation throughput: PGD-20 through ``art_he.evaluation`` against ART's ProjectedGradientDescent called the
plain way, on the same model and images; and SPSA/NES queries per second.

PGD-20 (eps 0.1, step 0.01, one random start) on the first ``--n`` Fashion-MNIST test images with a PGD-AT
small CNN trained briefly here (plain head: one view, so the work is the same as ART's):

* ``art_plain``: ``ProjectedGradientDescent(classifier, eps=..., eps_step=..., max_iter=20, num_random_init=1)``
  with ART's default batch size (32), then one ``predict`` for the accuracy;
* ``art_batch128``: the same with ``batch_size=128``;
* ``suite``: ``evaluate(classifier, x, y, attacks="pgd20", batch_size=128, sweep=())`` (clean accuracy,
  attack on the correctly classified images, sanity checks, the report);
* ``suite_he``: the suite on the HE model (two views, CE(s cos) then CE(cos) on the survivors) for reference.

Queries per second: SPSA and NES (q = 128, no early stop) with the queries batched on the torch device, and
the same attacks forced through ART's numpy ``predict`` path.
Interleaved repeats; ratios of medians.
    python benchmarks/eval_throughput.py [--n 512] [--repeats 3] [--json FILE]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from _common import classifier_for, device_name, fmnist, interleaved, median, report, small_cnn
from art.attacks.evasion import ProjectedGradientDescent

from art_he.attacks import NES, SPSA
from art_he.data import load_dataset
from art_he.evaluation import evaluate
from art_he.trainers import PGDATTrainer

EPS, STEP = 0.1, 0.01


def trained(head: str, width: int, device: str, n_train: int):
    x, y = fmnist(n_train)
    clf = classifier_for(small_cnn(head, width), device)
    PGDATTrainer(clf, eps=EPS, eps_step=0.025, max_iter=3, seed=0, verbose=False).fit(x, y, batch_size=128,
                                                                                        nb_epochs=1)
    clf.model.eval()
    return clf


def queries_per_second(cls, clf, x, y, numpy_path: bool) -> float:
    attack = cls(clf, eps=EPS, eps_step=STEP, max_iter=3, early_stop=False, seed=0)
    if numpy_path:
        attack._torch_path = lambda: False
    start = time.perf_counter()
    attack.generate(x, y)
    return attack.nb_queries_ / (time.perf_counter() - start)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--n", type=int, default=512)
    p.add_argument("--n-train", type=int, default=4000)
    p.add_argument("--width", type=int, default=16)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--query-images", type=int, default=16)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--json", default=None)
    args = p.parse_args()
    plain = trained("plain", args.width, args.device, args.n_train)
    he = trained("he", args.width, args.device, args.n_train)
    x, y = load_dataset("fashion-mnist", train=False)
    x, y = x[: args.n], y[: args.n]
    acc = {}

    def art(batch_size):
        def run():
            attack = ProjectedGradientDescent(plain, eps=EPS, eps_step=STEP, max_iter=20, num_random_init=1,
                                              batch_size=batch_size, verbose=False)
            x_adv = attack.generate(x, y)
            acc[f"art_{batch_size}"] = float((plain.predict(x_adv).argmax(1) == y).mean())
        return run

    def suite(clf, key):
        def run():
            acc[key] = evaluate(clf, x, y, attacks="pgd20", eps=EPS, eps_step=STEP, batch_size=128,
                                sweep=()).accuracy("pgd20")
        return run

    runs = {"art_plain": art(32), "art_batch128": art(128), "suite": suite(plain, "suite"),
            "suite_he": suite(he, "suite_he")}
    interleaved(runs, 1, plain.device)  # warm-up
    times = interleaved(runs, args.repeats, plain.device)
    med = {k: median(v) for k, v in times.items()}

    xq, yq = x[: args.query_images], y[: args.query_images]
    qps = {}
    for cls in (SPSA, NES):
        for numpy_path in (False, True):
            key = f"{cls.__name__}_{'predict_numpy' if numpy_path else 'torch_device'}"
            qps[key] = round(median([queries_per_second(cls, plain, xq, yq, numpy_path)
                                     for _ in range(args.repeats)]), 1)

    report("Evaluation throughput: PGD-20 through the suite vs ART, and SPSA/NES queries per second", {
        "device": device_name(plain.device), "images": args.n, "repeats": args.repeats, "width": args.width,
        "median_s": {k: round(v, 3) for k, v in med.items()},
        "images_per_s": {k: round(args.n / v, 1) for k, v in med.items()},
        "ratio_art_plain_over_suite": round(med["art_plain"] / med["suite"], 3),
        "ratio_art_batch128_over_suite": round(med["art_batch128"] / med["suite"], 3),
        "ratio_suite_he_over_suite_plain": round(med["suite_he"] / med["suite"], 3),
        "pgd20_accuracy": {k: round(v, 4) for k, v in acc.items()},
        "queries_per_s": qps,
        "queries_per_s_speedup_torch_over_numpy": {
            c: round(qps[f"{c}_torch_device"] / qps[f"{c}_predict_numpy"], 2) for c in ("SPSA", "NES")},
    }, args.json)


if __name__ == "__main__":
    np.set_printoptions(precision=4)
    main()
