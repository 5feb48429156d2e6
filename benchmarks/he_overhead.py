"""HE overhead: PGD-AT epoch time with a HypersphereHead over the same epoch with a plain head.

One run, interleaved repeats, same model body, data and attack. Goal <= 1.02 (paper: +0.6 to +0.9 %).
    python benchmarks/he_overhead.py [--n 2048] [--repeats 5] [--device cpu|cuda]

m-HE over HE: the only extra work is in the loss, ``theta = arccos(clamp(cos))`` on the (B, 10) cosines. Counted
with the torch profiler, m-HE dispatches 9 more ATen ops than HE per forward+backward of the attack loss and 9 more
of the training loss (13 and 15 before the clamp became ``F.hardtanh``, one backward kernel instead of four, and the
negation was folded into the scale; values and gradients are bitwise the same). What is left is the clamp, arccos
and arccos' backward (6 kernels: torch's formula ``grad * -rsqrt(1 - c^2)``); fusing them would need a custom
autograd Function, whose Python overhead costs about as much. Micro-timed on a shared 2-core CPU (1 thread,
B = 128, loss forward + input gradient, medians): attack loss HE 129 us, m-HE 207 us before and 186 us after;
training loss HE 184 us, m-HE 274 us before and 245 us after; one forward + input-gradient step of the width-16
small CNN takes about 68 ms. m-HE's extra work is thus about 0.1 % of a CPU epoch: an m-HE/plain ratio more than
that above HE/plain on a CPU is timing noise (``mhe_over_he`` shows it directly; a 1-thread check, 512 images,
PGD-3, 12 interleaved epochs each, gave m-HE/HE 1.004 while single epochs scattered by +-4 %). On a GPU, where a
small model is bound by kernel launches, the 9 small kernels can show.
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
        "mhe_over_he": round(med["mhe"] / med["he"], 4), "goal": "<= 1.02",
    }, args.json)


if __name__ == "__main__":
    main()
