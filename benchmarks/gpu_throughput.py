"""Throughput of PGD-10 adversarial training, PreAct ResNet-18 on 32x32 inputs: fp32 eager against bf16 autocast +
channels_last, with and without torch.compile. Runs on CUDA when present (the intended setting), else on CPU at
a tiny size (the CPU figures say little about a GPU).

Each configuration trains ``--warmup`` steps (compilation happens there), then ``--steps`` timed steps of the
trainer's own ``train_batch`` (attack + update) on synthetic CIFAR-shaped batches.
    python benchmarks/gpu_throughput.py [--batch 256] [--steps 20] [--warmup 5] [--no-compile] [--json FILE]
"""

from __future__ import annotations

import argparse
import time

import torch
from _common import device_name, report, sync

from art_he import HEPyTorchClassifier
from art_he.models import build_model
from art_he.trainers import PGDATTrainer

CONFIGS = {
    "fp32_eager": {"precision": "fp32", "channels_last": False},
    "fp32_channels_last": {"precision": "fp32", "channels_last": True},
    "bf16_channels_last": {"precision": "bf16", "channels_last": True},
    "bf16_channels_last_compile": {"precision": "bf16", "channels_last": True, "compile": True},
}


def measure(name: str, options: dict, args) -> dict:
    torch.manual_seed(0)
    model = build_model("preact-resnet18", in_channels=3, head=args.head)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    classifier = HEPyTorchClassifier(model, None, (3, 32, 32), 10, optimizer, clip_values=(0.0, 1.0),
                                     device_type="gpu" if args.device == "cuda" else "cpu")
    trainer = PGDATTrainer(classifier, eps=8 / 255, eps_step=2 / 255, max_iter=10, seed=0, verbose=False, **options)
    device = trainer.device
    gen = torch.Generator(device=device).manual_seed(0)
    x = torch.rand((args.batch, 3, 32, 32), generator=gen, device=device)
    y = torch.randint(0, 10, (args.batch,), generator=gen, device=device)
    if trainer.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    for _ in range(args.warmup):
        trainer.train_batch(x, y)
    sync(device)
    warmup_s = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(args.steps):
        stats = trainer.train_batch(x, y)
    sync(device)
    elapsed = time.perf_counter() - start
    result = {"images_per_s": round(args.batch * args.steps / elapsed, 1), "step_s": round(elapsed / args.steps, 4),
              "warmup_s": round(warmup_s, 1), "loss_finite": bool(torch.isfinite(stats[0]).item()),
              "precision": trainer.precision}
    if device.type == "cuda":
        result["peak_mem_gib"] = round(torch.cuda.max_memory_allocated(device) / 2**30, 2)
    print(name, result, flush=True)
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    cuda = torch.cuda.is_available()
    p.add_argument("--device", default="cuda" if cuda else "cpu")
    p.add_argument("--batch", type=int, default=256 if cuda else 8)
    p.add_argument("--steps", type=int, default=20 if cuda else 2)
    p.add_argument("--warmup", type=int, default=5 if cuda else 1)
    p.add_argument("--head", choices=["plain", "he", "mhe"], default="plain")
    p.add_argument("--no-compile", action="store_true", help="skip the torch.compile configuration")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--json", default=None)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device == "cuda":
        torch.backends.cudnn.benchmark = True
    results = {}
    for name, options in CONFIGS.items():
        if args.no_compile and options.get("compile"):
            continue
        results[name] = measure(name, options, args)
    base = results["fp32_eager"]["images_per_s"]
    report("PGD-10 training throughput, PreAct ResNet-18, 32x32", {
        "device": device_name(torch.device(args.device)), "batch": args.batch, "steps": args.steps,
        "head": args.head, "results": results,
        "speedup_over_fp32_eager": {k: round(v["images_per_s"] / base, 2) for k, v in results.items()},
    }, args.json)


if __name__ == "__main__":
    main()
