"""Against the limit: one PGD-K training step of PGDATTrainer over K attack steps plus one update step,
each timed alone (nothing but the algorithm's own passes). Goal >= 0.95.
    python benchmarks/vs_limit.py [--k 10] [--batches 16] [--head he]
"""

from __future__ import annotations

import argparse

import torch
from _common import classifier_for, device_name, fmnist, interleaved, median, report, small_cnn

from art_he.trainers import PGDATTrainer


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--batches", type=int, default=16)
    p.add_argument("--width", type=int, default=16)
    p.add_argument("--head", default="he")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--json", default=None)
    args = p.parse_args()
    trainer = PGDATTrainer(classifier_for(small_cnn(args.head, args.width), args.device), eps=0.1, eps_step=0.025,
                           max_iter=args.k, seed=0, verbose=False)
    dev = trainer.device
    x_np, y_np = fmnist(128 * args.batches)
    x = torch.from_numpy(x_np).to(dev).contiguous(memory_format=torch.channels_last)
    y = torch.from_numpy(y_np).to(dev)
    batches = [(x[i : i + 128], y[i : i + 128]) for i in range(0, len(x), 128)]
    model, objective = trainer.model, trainer.objective

    def full_steps():
        for xb, yb in batches:
            trainer.train_batch(xb, yb)

    def attack_steps():  # K single PGD steps, each one forward + input-gradient backward, eval mode
        model.eval()
        for xb, yb in batches:
            for _ in range(args.k):
                trainer.attack(xb, yb, objective.attack_loss, eps=0.1, eps_step=0.025, max_iter=1, random_init=None)

    def update_steps():  # one forward + backward + optimizer step on fixed inputs, train mode
        model.train()
        for xb, yb in batches:
            with trainer.autocast():
                loss = objective.train_loss(trainer.forward(xb), yb)
            trainer.optimizer_step(loss)

    runs = {"full": full_steps, "attack": attack_steps, "update": update_steps}
    interleaved(runs, 1, dev)
    times = interleaved(runs, args.repeats, dev)
    med = {k: median(v) for k, v in times.items()}
    limit = med["attack"] + med["update"]
    report(f"PGD-{args.k} training step vs its own passes", {
        "device": device_name(dev), "batches": args.batches, "batch_size": 128, "head": args.head,
        "precision": trainer.precision, "median_s": {k: round(v, 4) for k, v in med.items()},
        "limit_s": round(limit, 4), "ratio_limit_over_full": round(limit / med["full"], 4), "goal": ">= 0.95",
    }, args.json)


if __name__ == "__main__":
    main()
