"""Augmentation overhead: PGD-AT epoch time with on-device random crop (zero padding 4) and horizontal flip
(``PGDATTrainer(..., augment=True)``) over the same epoch without it. Goal <= 1.03.

One run, interleaved repeats, two trainers on copies of one model with the same seed and data: CIFAR-shaped
synthetic images (``torch.rand``, 3x32x32, random labels), so only the time means anything. The default model,
``small-cnn`` (width 16, 3 channels, 32x32), runs an epoch in seconds on a CPU; ``--model preact-resnet18`` and the
other names of ``art_he.models`` work too (use them on a GPU).
    python benchmarks/augment_overhead.py [--n 2048] [--max-iter 10] [--repeats 5] [--model small-cnn] [--device cuda]
"""

from __future__ import annotations

import argparse

import torch
from _common import classifier_for, clone, device_name, interleaved, median, report

from art_he.models import build_model
from art_he.models.factory import MODELS
from art_he.trainers import PGDATTrainer


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=2048)
    p.add_argument("--model", default="small-cnn", choices=sorted(MODELS))
    p.add_argument("--width", type=int, default=16, help="small-cnn width")
    p.add_argument("--head", default="he", choices=("plain", "he", "mhe"))
    p.add_argument("--max-iter", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--precision", default="fp32", help="the trainers' precision (auto, fp32, bf16, fp16)")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--json", default=None)
    args = p.parse_args()
    torch.manual_seed(0)
    extra = {"width": args.width, "image_size": 32} if args.model.startswith("small-cnn") else {}
    model = build_model(args.model, in_channels=3, head=args.head, **extra)
    data = torch.Generator().manual_seed(0)
    x = torch.rand(args.n, 3, 32, 32, generator=data).numpy()
    y = torch.randint(0, 10, (args.n,), generator=data).numpy()
    trainers = {
        name: PGDATTrainer(classifier_for(clone(model), args.device, input_shape=(3, 32, 32)), eps=8 / 255,
                           eps_step=2 / 255, max_iter=args.max_iter, seed=0, augment=augment,
                           precision=args.precision, verbose=False)
        for name, augment in (("no_augment", False), ("augment", True))
    }
    device = trainers["no_augment"].device
    runs = {name: (lambda t=t: t.fit(x, y, batch_size=args.batch_size, nb_epochs=1)) for name, t in trainers.items()}
    interleaved(runs, 1, device)  # warm-up
    times = interleaved(runs, args.repeats, device)
    med = {name: median(v) for name, v in times.items()}
    report("Augmentation overhead (PGD-AT epoch time, crop + flip on the device, over none)", {
        "device": device_name(device), "model": args.model, "head": args.head, "images": args.n,
        "input": [3, 32, 32], "batch_size": args.batch_size, "pgd_steps": args.max_iter, "repeats": args.repeats,
        "precision": trainers["no_augment"].precision, "channels_last": trainers["no_augment"].channels_last,
        "median_epoch_s": {k: round(v, 3) for k, v in med.items()},
        "augment_over_no_augment": round(med["augment"] / med["no_augment"], 4), "goal": "<= 1.03",
    }, args.json)


if __name__ == "__main__":
    main()
