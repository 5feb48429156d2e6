"""Evaluation throughput: PGD-20 through ``art_he.evaluation`` against ART's ProjectedGradientDescent on the same
images, and SPSA/NES queries per second.

PGD-20 (eps 0.1, step 0.01, one random start, batch size 128) on the first ``--n`` Fashion-MNIST test images with
a PGD-AT small CNN trained briefly here (plain head: one view). The suite attacks only the images the model
classifies correctly (a misclassified image counts as broken already), so ART is given exactly those images too:

* ``art_same_images``: ``predict`` on all images (clean accuracy; keeps the correctly classified ones),
  ``ProjectedGradientDescent(..., batch_size=128).generate`` on those, ``predict`` on the result; the same seed as
  the suite, so the adversarial accuracy must come out identical (``same_accuracy``);
* ``suite``: ``evaluate(classifier, x, y, attacks="pgd20", batch_size=128, sweep=())``: the same attack on the same
  images, plus a second clean ``predict``, a ``predict`` of all final images, the sanity checks and the report.
  ``suite_over_art_same_images`` is therefore the suite's own overhead (goal: about 1; > 1 is bookkeeping);
* ``art_all_images`` (reference, more work): ART attacking all ``--n`` images, the way the old benchmark called
  it; ``art_all_images_over_art_same_images`` is the saving of skipping the misclassified images, a property
  of the protocol (AutoAttack's too), not of a faster attack;
* ``suite_he``: the suite on the HE model (two views, CE(s cos) then CE(cos) on the survivors), for reference.

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
from art_he.rng import global_seed
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

    def art(same_images: bool):
        def run():
            correct = plain.predict(x, batch_size=128).argmax(1) == y
            idx = np.flatnonzero(correct) if same_images else np.arange(len(x))
            attack = ProjectedGradientDescent(plain, eps=EPS, eps_step=STEP, max_iter=20, num_random_init=1,
                                              batch_size=128, verbose=False)
            with global_seed(0):  # the suite's seed: same random starts on the same images
                x_adv = attack.generate(x[idx], y[idx])
            robust = plain.predict(x_adv, batch_size=128).argmax(1) == y[idx]
            acc["art_same_images" if same_images else "art_all_images"] = float(robust.sum() / len(x))
        return run

    def suite(clf, key):
        def run():
            acc[key] = evaluate(clf, x, y, attacks="pgd20", eps=EPS, eps_step=STEP, batch_size=128,
                                sweep=()).accuracy("pgd20")
        return run

    runs = {"art_same_images": art(True), "suite": suite(plain, "suite"), "art_all_images": art(False),
            "suite_he": suite(he, "suite_he")}
    interleaved(runs, 1, plain.device)  # warm-up
    times = interleaved(runs, args.repeats, plain.device)
    med = {k: median(v) for k, v in times.items()}
    attacked = int((plain.predict(x, batch_size=128).argmax(1) == y).sum())

    xq, yq = x[: args.query_images], y[: args.query_images]
    qps = {}
    for cls in (SPSA, NES):
        for numpy_path in (False, True):
            key = f"{cls.__name__}_{'predict_numpy' if numpy_path else 'torch_device'}"
            qps[key] = round(median([queries_per_second(cls, plain, xq, yq, numpy_path)
                                     for _ in range(args.repeats)]), 1)

    report("Evaluation throughput: PGD-20 through the suite vs ART on the same images, SPSA/NES queries per second", {
        "device": device_name(plain.device), "images": args.n, "attacked_images": attacked,
        "repeats": args.repeats, "width": args.width, "batch_size": 128,
        "compared": "PGD-20 (1 random start) on the same correctly classified images, same seed, batch 128",
        "median_s": {k: round(v, 3) for k, v in med.items()},
        "suite_over_art_same_images": round(med["suite"] / med["art_same_images"], 3),
        "art_all_images_over_art_same_images": round(med["art_all_images"] / med["art_same_images"], 3),
        "suite_he_over_suite_plain": round(med["suite_he"] / med["suite"], 3),
        "pgd20_accuracy": {k: round(v, 4) for k, v in acc.items()},
        "same_accuracy": acc["suite"] == acc["art_same_images"],
        "queries_per_s": qps,
        "queries_per_s_speedup_torch_over_numpy": {
            c: round(qps[f"{c}_torch_device"] / qps[f"{c}_predict_numpy"], 2) for c in ("SPSA", "NES")},
    }, args.json)


if __name__ == "__main__":
    np.set_printoptions(precision=4)
    main()
