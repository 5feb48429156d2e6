"""PGDATTrainer (default settings) against ART's AdversarialTrainerMadryPGD: one PGD-10 epoch, same work.

Same model and initial weights, same data, eps 0.1, step 0.025, 10 steps, batch 128, uniform random start.
Interleaved repeats; the ratio is ART time / our time. Goal >= 1.5 on CPU.
    python benchmarks/vs_art.py [--n 2048] [--repeats 3] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse

import torch
from _common import classifier_for, clone, device_name, fmnist, interleaved, median, report, small_cnn
from art.defences.trainer import AdversarialTrainerMadryPGD
from art.estimators.classification import PyTorchClassifier

from art_he.devices import art_estimator
from art_he.trainers import PGDATTrainer

EPS, STEP, ITERS, BATCH = 0.1, 0.025, 10, 128


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--n", type=int, default=2048)
    p.add_argument("--width", type=int, default=16)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--json", default=None)
    args = p.parse_args()
    x, y = fmnist(args.n)
    base = small_cnn("plain", args.width)

    art_model = clone(base)
    art_clf = art_estimator(
        PyTorchClassifier, art_model, torch.nn.CrossEntropyLoss(), (1, 28, 28), 10,
        optimizer=torch.optim.SGD(art_model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4),
        clip_values=(0.0, 1.0), device=args.device,
    )
    art_trainer = AdversarialTrainerMadryPGD(art_clf, nb_epochs=1, batch_size=BATCH, eps=EPS, eps_step=STEP,
                                             max_iter=ITERS, num_random_init=1)
    ours = PGDATTrainer(classifier_for(clone(base), args.device), eps=EPS, eps_step=STEP, max_iter=ITERS,
                        num_random_init=1, seed=0, verbose=False)
    ours_fp32 = PGDATTrainer(classifier_for(clone(base), args.device), eps=EPS, eps_step=STEP, max_iter=ITERS,
                             seed=0, verbose=False, precision="fp32", channels_last=False)
    runs = {
        "art_madry_pgd": lambda: art_trainer.fit(x, y),
        "art_he_default": lambda: ours.fit(x, y, batch_size=BATCH, nb_epochs=1),
        "art_he_fp32_no_channels_last": lambda: ours_fp32.fit(x, y, batch_size=BATCH, nb_epochs=1),
    }
    interleaved(runs, 1, ours.device)  # warm-up
    times = interleaved(runs, args.repeats, ours.device)
    med = {k: median(v) for k, v in times.items()}
    report("PGDATTrainer vs ART AdversarialTrainerMadryPGD (PGD-10 epoch)", {
        "device": device_name(ours.device), "images": args.n, "repeats": args.repeats,
        "our_defaults": {"precision": ours.precision, "channels_last": ours.channels_last},
        "median_epoch_s": {k: round(v, 3) for k, v in med.items()},
        "speedup_default": round(med["art_madry_pgd"] / med["art_he_default"], 3),
        "speedup_fp32_no_channels_last": round(med["art_madry_pgd"] / med["art_he_fp32_no_channels_last"], 3),
        "goal": ">= 1.5 (CPU)",
    }, args.json)


if __name__ == "__main__":
    main()
