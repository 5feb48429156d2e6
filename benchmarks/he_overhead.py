"""HE overhead: PGD-AT epoch time with a HypersphereHead over the same epoch with a plain head.

One run, interleaved repeats, same model body, data and attack. Goal <= 1.02 (paper: +0.6 to +0.9 %).
    python benchmarks/he_overhead.py [--n 2048] [--repeats 5] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse

import torch
from _common import classifier_for, device_name, fmnist, interleaved, median, report, small_cnn

from art_he.trainers import PGDATTrainer


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--n", type=int, default=2048)
    p.add_argument("--width", type=int, default=16)
    p.add_argument("--max-iter", type=int, default=10)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--json", default=None)
    args = p.parse_args()
    x, y = fmnist(args.n)
    trainers = {}
    for head in ("plain", "he", "mhe"):
        clf = classifier_for(small_cnn(head, args.width), args.device)
        trainers[head] = PGDATTrainer(clf, eps=0.1, eps_step=0.025, max_iter=args.max_iter, seed=0, verbose=False)
    device = trainers["plain"].device
    runs = {head: (lambda t=t: t.fit(x, y, batch_size=128, nb_epochs=1)) for head, t in trainers.items()}
    interleaved(runs, 1, device)  # warm-up
    times = interleaved(runs, args.repeats, device)
    med = {head: median(v) for head, v in times.items()}
    report("HE overhead (PGD-AT epoch time ratio)", {
        "device": device_name(device), "images": args.n, "pgd_steps": args.max_iter, "repeats": args.repeats,
        "precision": trainers["plain"].precision, "median_epoch_s": {k: round(v, 3) for k, v in med.items()},
        "he_over_plain": round(med["he"] / med["plain"], 4), "mhe_over_plain": round(med["mhe"] / med["plain"], 4),
        "goal": "<= 1.02",
    }, args.json)


if __name__ == "__main__":
    main()
