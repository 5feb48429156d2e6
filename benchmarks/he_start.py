"""HE's start (issue 34): why a hypersphere head trailed a plain one in its first epochs, and what each candidate
remedy does, per seed.

Setup A, as a new user runs it (``art-he train``'s defaults, fp32): PGD-AT on the first 2,000 Fashion-MNIST training
images, small CNN width 16, 3 epochs, lr 0.05 (multistep: x0.1 after epoch 2), PGD-10 in training (eps 0.1, step
eps/4); clean and PGD-10 accuracy on the first 500 test images. Setup B: scikit-learn's 1,797 real 8x8 digits
(1,437 to train, 360 to test, one fixed split), the same small CNN at image size 8, PGD-5 (eps 0.1, step eps/4),
lr 0.05 constant, 10 epochs; the training (clean) accuracy after each epoch.

The arms separate the candidates: the weight normalisation (``differentiable``, the old default, against the
authors' ``project``), an LR warm-up of one pass, the head's initial norm (unit rows from the start), and the
small CNN's hidden layer with and without BatchNorm (``hidden_norm``; without it ``||z||`` grows from 5 to 208 in
48 steps, see :class:`art_he.models.SmallCNN`). ``--probe`` prints ``||z||`` and the weight norms over the first 48
steps of setup A (seed 0) for the arms given.

    python benchmarks/he_start.py                # both setups, every arm; about 25 min on 2 cores
    python benchmarks/he_start.py --setups A --arms plain,he --seeds 0
    python benchmarks/he_start.py --probe --arms plain-old,he-old-project,plain,he
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from _common import write_markdown
from _stats import paired_t

from art_he import HEPyTorchClassifier
from art_he.config import TrainConfig
from art_he.data import dataset_info, load_dataset
from art_he.heads import find_head, normalize_rows
from art_he.models import build_model
from art_he.schedules import make_scheduler

HERE = Path(__file__).resolve().parent
OUT = HERE / "results"
#: arm -> (label, head, options of the head or the model, warm-up passes, unit-norm head rows at initialisation)
ARMS = {
    "plain": ("plain", "plain", {}, 0.0, False),
    "plain-old": ("plain, old CNN", "plain", {"hidden_norm": False}, 0.0, False),
    "he-old": ("HE, old default: differentiable WN, old CNN", "he",
               {"weight_norm": "differentiable", "hidden_norm": False}, 0.0, False),
    "he-old-unit": ("HE, differentiable WN, unit-norm init, old CNN", "he",
                    {"weight_norm": "differentiable", "hidden_norm": False}, 0.0, True),
    "he-old-project": ("HE, projected WN, old CNN", "he", {"weight_norm": "project", "hidden_norm": False}, 0.0,
                       False),
    "he-old-project-warmup": ("HE, projected WN + 1-pass warm-up, old CNN", "he",
                              {"weight_norm": "project", "hidden_norm": False}, 1.0, False),
    "he-diff": ("HE, differentiable WN", "he", {"weight_norm": "differentiable"}, 0.0, False),
    "he": ("HE, new default: projected WN, hidden BatchNorm", "he", {}, 0.0, False),
}
#: the plain head each arm is compared with: the one on the same network
PLAIN = {arm: ("plain-old" if spec[2].get("hidden_norm") is False else "plain") for arm, spec in ARMS.items()}
SETUPS = {
    "A": {"seeds": (0, 1, 2), "epochs": 3},
    "B": {"seeds": tuple(range(10)), "epochs": 10},
}


def config(setup: str, seed: int) -> TrainConfig:
    """The run's configuration, resolved where ``art-he train`` resolves it (trainer options, schedule)."""
    if setup == "A":
        return TrainConfig(dataset="fashion-mnist", subset=2000, width=16, epochs=3, lr=0.05, val_n=500, seed=seed,
                           precision="fp32").resolved()
    return TrainConfig(dataset="fashion-mnist", width=16, epochs=10, lr=0.05, seed=seed, max_iter=5,
                       schedule="constant", precision="fp32").resolved()


def data(setup: str) -> tuple[np.ndarray, ...]:
    if setup == "A":
        x, y = load_dataset("fashion-mnist", train=True)
        xt, yt = load_dataset("fashion-mnist", train=False)
        return x[:2000], y[:2000], xt[:500], yt[:500]
    from sklearn.datasets import load_digits

    digits = load_digits()
    x, y = (digits.images / 16.0).astype(np.float32)[:, None], digits.target.astype(np.int64)
    order = np.random.default_rng(0).permutation(len(x))
    x, y = x[order], y[order]
    return x[:1437], y[:1437], x[1437:], y[1437:]


def build(arm: str, setup: str, cfg: TrainConfig, x: np.ndarray):
    _, head, options, warmup, unit_init = ARMS[arm]
    torch.manual_seed(cfg.seed)
    info = dataset_info(cfg.dataset)
    mean, std = (info.mean, info.std) if setup == "A" else ((float(x.mean()),), (float(x.std()),))
    model = build_model("small-cnn", in_channels=1, width=16, image_size=x.shape[-1], head=head, mean=mean, std=std,
                        **options)
    if unit_init:
        with torch.no_grad():
            find_head(model).weight.copy_(normalize_rows(find_head(model).weight))
    optimizer = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    classifier = HEPyTorchClassifier(model, None, tuple(x.shape[1:]), 10, optimizer, clip_values=(0.0, 1.0),
                                     device_type="cpu")
    trainer = cfg.framework_class()(classifier, **{**cfg.trainer_kwargs(), "verbose": False})
    steps = -(-len(x) // cfg.batch_size)
    scheduler = make_scheduler(cfg.schedule, classifier.optimizer, cfg.passes, steps,
                               warmup_steps=int(np.ceil(warmup * steps)))
    return model, trainer, scheduler


def run(arm: str, setup: str, seed: int, arrays) -> dict:
    cfg = config(setup, seed)
    x, y, xv, yv = arrays
    _, trainer, scheduler = build(arm, setup, cfg, x)
    start = time.perf_counter()
    history = trainer.fit(x, y, validation_data=(xv, yv), batch_size=cfg.batch_size, nb_epochs=cfg.passes,
                          scheduler=scheduler)
    return {"train_acc": [m["clean_acc"] for m in history], "clean": history[-1]["val_clean_acc"],
            "pgd10": history[-1]["val_adv_acc"], "seconds": round(time.perf_counter() - start, 1)}


def norms(arm: str, step: int, model: torch.nn.Module, probe_x: torch.Tensor) -> str:
    """``||z||`` (mean over the probe images) and the hidden and head weight norms, as one line."""
    with torch.no_grad():
        model.eval()
        z = model.features(model.normalize(probe_x))
    hidden = [m for m in model.features if isinstance(m, torch.nn.Linear)][-1]
    head = find_head(model) or model.linear
    return (f"{arm} | step {step:2d} | ||z|| {float(z.norm(dim=1).mean()):7.2f} | hidden ||W|| "
            f"{float(hidden.weight.norm()):6.2f} | head ||W|| {float(head.weight.detach().norm()):5.2f}")


def probe(arms: list[str]) -> None:
    """``||z||`` over 256 training images and the weight norms after each of setup A's passes (16 steps each)."""
    x, y, _, _ = data("A")
    probe_x = torch.as_tensor(x[:256])
    for arm in arms:
        cfg = config("A", 0)
        model, trainer, _ = build(arm, "A", cfg, x)
        print(norms(arm, 0, model, probe_x))
        for epoch in range(cfg.passes):
            trainer.fit(x, y, batch_size=cfg.batch_size, nb_epochs=1)
            print(norms(arm, 16 * (epoch + 1), model, probe_x))


def summarise(results: dict) -> dict:
    """Per setup and arm: means, and the paired difference to the plain head on the same network."""
    summary = {}
    for setup, arms in results.items():
        summary[setup] = {}
        for arm, seeds in arms.items():
            keys = sorted(seeds, key=int)
            row = {"seeds": [int(s) for s in keys], "clean": [100 * seeds[s]["clean"] for s in keys],
                   "pgd10": [100 * seeds[s]["pgd10"] for s in keys],
                   "train_acc": [seeds[s]["train_acc"] for s in keys]}
            plain = arms.get(PLAIN[arm])
            if plain is not None and ARMS[arm][1] != "plain" and set(keys) <= set(plain):
                for metric in ("clean", "pgd10"):
                    row[f"{metric}_vs_plain"] = paired_t([100 * (seeds[s][metric] - plain[s][metric]) for s in keys])
            summary[setup][arm] = row
    return summary


def _interval(cell: dict | None) -> str:
    if cell is None:
        return "–"
    if cell["ci95"] is None:
        return f"{cell['mean']:+.2f}"
    low, high = cell["ci95"]
    return f"{cell['mean']:+.2f} [{low:+.2f}, {high:+.2f}]"


def markdown(summary: dict, seconds: float) -> str:
    lines = ["# HE's start: the old default, each candidate and the new default (issue 34)", "",
             "Generated by `benchmarks/he_start.py`; the setups and arms are in its docstring. Accuracy in %. "
             "Each HE arm is compared with the plain head on the same network (the old small CNN without hidden "
             "BatchNorm, or the new one), paired by seed (same initial body weights and batch order), 95 % t "
             f"interval over seeds. CPU, fp32, one thread; {seconds / 60:.0f} min of training in all.", ""]
    if "A" in summary:
        lines += ["## Setup A: Fashion-MNIST, 2,000 images, 3 epochs (the issue's table)", "",
                  "| arm | clean, by seed | PGD-10, by seed | clean | PGD-10 | clean − plain | PGD-10 − plain |",
                  "| --- | --- | --- | ---: | ---: | ---: | ---: |"]
        for arm, row in summary["A"].items():
            lines.append(f"| {ARMS[arm][0]} | {' / '.join(f'{v:.1f}' for v in row['clean'])} | "
                         f"{' / '.join(f'{v:.1f}' for v in row['pgd10'])} | {np.mean(row['clean']):.1f} | "
                         f"{np.mean(row['pgd10']):.1f} | {_interval(row.get('clean_vs_plain'))} | "
                         f"{_interval(row.get('pgd10_vs_plain'))} |")
        lines.append("")
    if "B" in summary:
        lines += ["## Setup B: scikit-learn digits, PGD-5, training accuracy by epoch", "",
                  "| arm | seeds | after epoch 1: mean (min) | after epoch 3: mean (min) | runs < 50 % after 3 | "
                  "after epoch 10: mean (min) | test clean | test PGD-10 |",
                  "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for arm, row in summary["B"].items():
            acc = 100 * np.asarray(row["train_acc"])
            cells = [f"{acc[:, e].mean():.1f} ({acc[:, e].min():.1f})" for e in (0, 2)]
            low = int((acc[:, 2] < 50).sum())
            lines.append(f"| {ARMS[arm][0]} | {len(acc)} | {cells[0]} | {cells[1]} | {low} | {acc[:, -1].mean():.1f} "
                         f"({acc[:, -1].min():.1f}) | {np.mean(row['clean']):.1f} | {np.mean(row['pgd10']):.1f} |")
        lines += ["", "Training accuracy after epoch 3, per seed:", "", "| arm | " + " | ".join(
            f"s{s}" for s in next(iter(summary["B"].values()))["seeds"]) + " |",
            "| --- |" + " ---: |" * len(next(iter(summary["B"].values()))["seeds"])]
        for arm, row in summary["B"].items():
            lines.append(f"| {ARMS[arm][0]} | " + " | ".join(f"{100 * a[2]:.1f}" for a in row["train_acc"]) + " |")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--setups", default="A,B")
    parser.add_argument("--arms", default=",".join(ARMS), help=f"comma-separated, from {', '.join(ARMS)}")
    parser.add_argument("--seeds", default=None, help="override the setups' seeds, e.g. 0,1")
    parser.add_argument("--probe", action="store_true", help="print ||z|| and weight norms over setup A's steps")
    parser.add_argument("--out", default=str(OUT))
    args = parser.parse_args()
    torch.set_num_threads(1)
    arms = [a.strip() for a in args.arms.split(",") if a.strip()]
    unknown = [a for a in arms if a not in ARMS]
    if unknown:
        raise SystemExit(f"unknown arms {unknown}; choose from {list(ARMS)}")
    if args.probe:
        probe(arms)
        return
    out = Path(args.out)
    cache = out / "he_start.json"
    results = json.loads(cache.read_text())["results"] if cache.is_file() else {}
    for setup in args.setups.split(","):
        arrays = data(setup)
        seeds = [int(s) for s in args.seeds.split(",")] if args.seeds else SETUPS[setup]["seeds"]
        for seed in seeds:
            for arm in arms:
                cell = results.setdefault(setup, {}).setdefault(arm, {})
                if str(seed) in cell:
                    continue
                cell[str(seed)] = run(arm, setup, seed, arrays)
                print(setup, arm, seed, cell[str(seed)], flush=True)
                out.mkdir(parents=True, exist_ok=True)
                cache.write_text(json.dumps({"results": results}, indent=1))
    summary = summarise(results)
    seconds = sum(c["seconds"] for arms_ in results.values() for seeds_ in arms_.values() for c in seeds_.values())
    cache.write_text(json.dumps({"results": results, "summary": summary}, indent=1))
    print(write_markdown(out / "he_start.md", markdown(summary, seconds)))


if __name__ == "__main__":
    main()
