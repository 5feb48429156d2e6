"""A small version of the paper's Tables 2 and 3 on Fashion-MNIST: every framework with a plain, HE and m-HE head.

Same budget within a framework (data, epochs, attack, optimizer, seeds); clean and PGD-20 accuracy on held-out
test images, and time per epoch; mean and standard deviation over seeds.
    python benchmarks/frameworks_table.py [--n-train 6000] [--epochs 2] [--seeds 3] [--n-test 1000] [--width 16]
        [--warmup 0] [--threads 1] [--json FILE] [--md FILE]   (default: benchmarks/results/frameworks_table.{json,md})
    python benchmarks/frameworks_table.py --render [--json FILE] [--md FILE]   (rewrite the table from the runs)
The HE and m-HE rows give their PGD-20 minus plain's, paired by seed (same initial body and batch order).
``frameworks_table_warmup.*``: ``--n-train 3000 --frameworks pgd,alp,trades --warmup 0.5`` (12 of the 48 steps).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from pathlib import Path

import torch
from _common import classifier_for, device_name, fmnist, small_cnn
from _stats import paired_t

from art_he.data import load_dataset
from art_he.schedules import make_scheduler
from art_he.trainers import FRAMEWORKS

HEADS = ("plain", "he", "mhe")


def framework_options(name: str, eps: float, pgd_steps: int) -> dict:
    """The paper's recipes scaled to eps: PGD-k with step eps/4, TRADES beta 6, ALP alpha 0.5 lambda 0.5,
    FreeAT m = 4 with step eps, FastAT step 1.25 eps with its cyclic LR and overfitting guard."""
    if "max_iter" in FRAMEWORKS[name].options:
        return {"eps": eps, "eps_step": eps / 4, "max_iter": pgd_steps}
    if name == "free":
        return {"eps": eps, "replays": 4}
    return {"eps": eps}


def run_one(name: str, head: str, seed: int, args, data, test) -> dict:
    x, y = data
    clf = classifier_for(small_cnn(head, args.width, seed), args.device, lr=args.lr)
    trainer = FRAMEWORKS[name](clf, seed=seed, verbose=False, precision="fp32",
                               **framework_options(name, args.eps, args.pgd_steps))
    scheduler = None  # the trainer's default
    if args.warmup and name != "fast":  # FastAT's cyclic LR ramps up by itself
        steps = -(-len(x) // args.batch_size)
        scheduler = make_scheduler("constant", clf.optimizer, args.epochs, steps, args.lr,
                                   warmup_steps=math.ceil(args.warmup * steps))
    start = time.perf_counter()
    history = trainer.fit(x, y, batch_size=args.batch_size, nb_epochs=args.epochs, scheduler=scheduler)
    train_s = time.perf_counter() - start
    generator = torch.Generator(device=trainer.device).manual_seed(10_000 + seed)
    clean, adv = trainer.correct(*test, eps=args.eps, eps_step=args.eps / 8, max_iter=20, generator=generator)
    return {"framework": name, "head": head, "seed": seed, "clean": 100 * int(clean.sum()) / len(clean),
            "pgd20": 100 * int(adv.sum()) / len(adv),
            "epoch_s": sum(m["time_s"] for m in history) / len(history), "train_s": train_s,
            "epochs_run": len(history), "guard_tripped": bool(getattr(trainer, "guard_tripped", False))}


def summarise(rows: list[dict]) -> list[dict]:
    table = []
    for name in FRAMEWORKS:
        for head in HEADS:
            sel = [r for r in rows if r["framework"] == name and r["head"] == head]
            if not sel:
                continue
            entry = {"framework": name, "head": head, "seeds": len(sel)}
            for key in ("clean", "pgd20", "epoch_s"):
                values = [r[key] for r in sel]
                entry[key] = statistics.mean(values)
                entry[key + "_sd"] = statistics.stdev(values) if len(values) > 1 else 0.0
            plain = {r["seed"]: r["pgd20"] for r in rows if r["framework"] == name and r["head"] == "plain"}
            diffs = [r["pgd20"] - plain[r["seed"]] for r in sel if r["seed"] in plain]
            if head != "plain" and diffs:  # paired by seed: the same initial body and batch order
                entry["pgd20_minus_plain"] = paired_t(diffs)
            table.append(entry)
    return table


def markdown(table: list[dict], meta: dict) -> str:
    lines = [f"Fashion-MNIST, eps = {meta['eps']}, {meta['n_train']} training images, {meta['epochs']} epochs, "
             f"small-cnn width {meta['width']}, {meta['seeds']} seeds, PGD-20 (step eps/8) on {meta['n_test']} "
             f"test images; {meta['device']}. Mean +- sd over seeds."
             + (f" LR warm-up over the first {meta['warmup']:g} epoch (FastAT: its cyclic LR)." if meta.get("warmup")
                else ""), "",
             "| defense | clean % | PGD-20 % | PGD-20 minus plain, paired by seed [95 % t interval] | s / epoch |",
             "| --- | --- | --- | --- | --- |"]
    for e in table:
        label = FRAMEWORKS[e["framework"]].label + {"plain": "", "he": " + HE", "mhe": " + m-HE"}[e["head"]]
        t = e.get("pgd20_minus_plain")
        diff = ""
        if t:
            diff = f"{t['mean']:+.1f}" + (f" [{t['ci95'][0]:+.1f}, {t['ci95'][1]:+.1f}]" if t["ci95"] else "")
        lines.append(f"| {label} | {e['clean']:.1f} +- {e['clean_sd']:.1f} | {e['pgd20']:.1f} +- {e['pgd20_sd']:.1f} "
                     f"| {diff} | {e['epoch_s']:.1f} +- {e['epoch_s_sd']:.1f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--n-train", type=int, default=6000)
    p.add_argument("--n-test", type=int, default=1000)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--width", type=int, default=16)
    p.add_argument("--eps", type=float, default=0.1)
    p.add_argument("--pgd-steps", type=int, default=7)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--warmup", type=float, default=0.0,
                   help="linear LR warm-up over this many epochs (not FastAT, whose cyclic LR ramps up)")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--frameworks", default=",".join(FRAMEWORKS))
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    results = Path(__file__).resolve().parent / "results"
    p.add_argument("--json", default=str(results / "frameworks_table.json"))
    p.add_argument("--md", default=str(results / "frameworks_table.md"))
    p.add_argument("--render", action="store_true", help="only rewrite --md from the runs in --json")
    args = p.parse_args()
    if args.render:
        saved = json.loads(Path(args.json).read_text())
        table = summarise(saved["runs"])
        Path(args.json).write_text(json.dumps({**saved, "table": table}, indent=2))
        Path(args.md).write_text(markdown(table, saved["meta"]))
        return
    if args.threads:
        torch.set_num_threads(args.threads)
    data = fmnist(args.n_train)
    xt, yt = load_dataset("fashion-mnist", train=False)
    test = (xt[: args.n_test], yt[: args.n_test])
    meta = {"eps": args.eps, "n_train": args.n_train, "n_test": args.n_test, "epochs": args.epochs,
            "seeds": args.seeds, "width": args.width, "pgd_steps": args.pgd_steps, "batch_size": args.batch_size,
            "lr": args.lr, "warmup": args.warmup, "device": device_name(torch.device(args.device))}
    rows: list[dict] = []
    for seed in range(args.seeds):  # seeds outermost: a partial run still covers every configuration
        for name in args.frameworks.split(","):
            for head in HEADS:
                row = run_one(name, head, seed, args, data, test)
                rows.append(row)
                print(json.dumps({k: round(v, 2) if isinstance(v, float) else v for k, v in row.items()}), flush=True)
                if args.json:
                    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
                    table = summarise(rows)
                    Path(args.json).write_text(json.dumps({"meta": meta, "table": table, "runs": rows}, indent=2))
                    if args.md:
                        Path(args.md).write_text(markdown(table, meta))
    print(markdown(summarise(rows), meta))


if __name__ == "__main__":
    main()
