"""Against a minimal loop: the epoch time of ``PGDATTrainer.fit`` over a hand-written PGD-AT epoch in plain torch
that makes the same passes on the same model, data and batches. Goal ours/minimal <= 1.03.

Both, per epoch: the numpy arrays copied to the device once, one random permutation, ``--batches`` batches of 128;
per batch: a uniform random start in the eps-ball, K PGD steps (forward + input gradient, model in eval mode,
projection onto the eps-ball and [0, 1]), one no-grad clean forward (clean accuracy), then in train mode one
forward, the HE/m-HE margin cross-entropy (plain CE for ``--head plain``), ``zero_grad``, backward and an SGD step;
the loss and both accuracies are summed on the device and read once per epoch. Same initial weights, SGD settings,
fp32 without autocast (``precision="fp32"``), the same channels_last setting, no augmentation. The minimal loop
writes the HE logits by hand and projects with precomputed bounds. Interleaved repeats, ratio of medians.
    python benchmarks/vs_limit.py [--k 10] [--batches 16] [--head he] [--repeats 5] [--no-channels-last]
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F
from _common import classifier_for, clone, device_name, fmnist, interleaved, median, report, small_cnn

from art_he.heads import find_head
from art_he.trainers import PGDATTrainer

EPS, STEP, BATCH = 0.1, 0.025, 128


def minimal_epoch(model, optimizer, x_np, y_np, *, k: int, channels_last: bool, device: torch.device,
                  generator: torch.Generator, order: torch.Generator) -> list[float]:
    """One PGD-AT epoch, nothing but its passes; returns ``[loss, clean acc, adversarial acc]``."""
    head = find_head(model)

    def logits(out, y=None):  # plain: the outputs; HE: s * (cos - m onehot); m-HE: s * (-arccos(cos) - m onehot)
        if head is None:
            return out
        base = -torch.arccos(out.clamp(-1 + 1e-6, 1 - 1e-6)) if head.variant == "mhe" else out
        if y is not None:
            base = base - head.margin * F.one_hot(y, base.shape[1])
        return head.scale * base

    x_all, y_all = torch.from_numpy(x_np).to(device), torch.from_numpy(y_np).long().to(device)
    perm = torch.randperm(len(x_all), generator=order).to(device)
    totals = torch.zeros(3, dtype=torch.float64, device=device)
    for start in range(0, len(x_all), BATCH):
        idx = perm[start : start + BATCH]
        x, y = x_all[idx], y_all[idx]
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        lo, hi = (x - EPS).clamp_(min=0), (x + EPS).clamp_(max=1)
        model.eval()
        x_adv = (x + EPS * (2 * torch.rand(x.shape, generator=generator, device=device) - 1)).clamp_(0, 1)
        for _ in range(k):
            x_adv.requires_grad_(True)
            (grad,) = torch.autograd.grad(F.cross_entropy(logits(model(x_adv)), y), x_adv)
            x_adv = torch.clamp(x_adv.detach() + STEP * grad.sign(), lo, hi)
        with torch.no_grad():
            clean_correct = (model(x).argmax(1) == y).sum()
        model.train()
        out = model(x_adv)
        loss = F.cross_entropy(logits(out, y), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        totals += torch.stack([loss.detach() * len(y), clean_correct, (out.detach().argmax(1) == y).sum()])
    model.eval()
    return [v / len(x_all) for v in totals.tolist()]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--batches", type=int, default=16)
    p.add_argument("--width", type=int, default=16)
    p.add_argument("--head", default="he", choices=("plain", "he", "mhe"))
    p.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--json", default=None)
    args = p.parse_args()
    model = small_cnn(args.head, args.width)
    trainer = PGDATTrainer(classifier_for(clone(model), args.device), eps=EPS, eps_step=STEP, max_iter=args.k, seed=0,
                           precision="fp32", channels_last=args.channels_last, verbose=False)
    dev = trainer.device
    mini = clone(model).to(dev)
    if args.channels_last:
        mini.to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(mini.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)  # as classifier_for
    generator = torch.Generator(device=dev).manual_seed(0)
    order = torch.Generator().manual_seed(0)
    x, y = fmnist(BATCH * args.batches)
    metrics = {}

    def ours():
        metrics["ours"] = trainer.fit(x, y, batch_size=BATCH, nb_epochs=1)[-1]

    def minimal():
        loss, clean, adv = minimal_epoch(mini, optimizer, x, y, k=args.k, channels_last=args.channels_last,
                                         device=dev, generator=generator, order=order)
        metrics["minimal"] = {"loss": round(loss, 4), "clean_acc": round(clean, 4), "adv_acc": round(adv, 4)}

    runs = {"ours": ours, "minimal": minimal}
    interleaved(runs, 1, dev)  # warm-up
    times = interleaved(runs, args.repeats, dev)
    med = {k: median(v) for k, v in times.items()}
    report(f"PGD-{args.k} AT epoch: PGDATTrainer.fit vs a minimal plain-torch loop", {
        "device": device_name(dev), "head": args.head, "pgd_steps": args.k, "batches": args.batches,
        "batch_size": BATCH, "precision": trainer.precision, "channels_last": trainer.channels_last,
        "repeats": args.repeats, "median_epoch_s": {k: round(v, 4) for k, v in med.items()},
        "ours_over_minimal": round(med["ours"] / med["minimal"], 4), "goal": "<= 1.03",
        "last_epoch": {"ours": {k: metrics["ours"][k] for k in ("loss", "clean_acc", "adv_acc")},
                       "minimal": metrics["minimal"]},
    }, args.json)


if __name__ == "__main__":
    main()
