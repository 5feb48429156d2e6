"""Study 3 follow-up: is a collapsed final model a lasting failure or a dip caught at the last step? (issue 13)

One TRADES+HE cell of study 3 (s = 15, m = 0.5, seed 2) ends 18.8 PGD-20 points below plain TRADES while the other
two seeds of that setting are the best of the grid. The cells train at a constant LR and keep only the last step's
model, so a short dip at the end is kept as the result. Two measurements:

1. **Late swings**, from the cells' own learning curves (no training; PGD-AT and TRADES cells of study 3's grid that
   are there): per arm and seed, the validation PGD-10
   accuracy (first ``--val-n`` test images) at the checkpoints from step 250 to the end: its lowest and highest
   value, and how far the final value is below the highest.
2. **Continuation probe**: the final model of each chosen cell trained ``--extra`` more steps by its framework on a
   fresh batch order (seed + 1; a fresh SGD momentum) at the cells' LR, at a tenth of it and at 0 (where only
   BatchNorm's running statistics move), with the validation after every ``--every`` steps. A dip that the next
   steps at the same LR undo is a transient of the constant-LR schedule; one that LR 0 undoes lies in BatchNorm's
   statistics, not in the weights.

    cd benchmarks && python study_late_instability.py [--arms plain,he-s15-m0.5] [--framework trades] [--seeds 0,1,2]
        [--extra 10] [--every 2] [--lrs 0.05,0.005,0]

Probes are cached in ``results/study_late_instability/``; one not cached yet needs its cell's run folder
(``_cells.py`` trains it).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from _cells import DATASET, TRAIN_STEPS, cell_name, he_arm, load_data, settings_of, study_parser
from _common import device_name, publish
from study_scale_margin import FRAMEWORK_NAMES, settings

from art_he.runs import load_run, make_classifier
from art_he.schedules import make_scheduler
from art_he.trainers import FRAMEWORKS

LATE = 250  # first checkpoint step of the "late" window


def grid_arms() -> list[str]:
    """Plain and every HE setting of study 3's grid."""
    return ["plain"] + [he_arm(s, m) for s, m in settings()]


def late_swings(framework: str, seeds: list[int], args) -> dict[str, list[dict]]:
    """Per arm of the grid trained by ``framework`` (all seeds there), per seed: final, lowest and highest validation
    PGD-10 accuracy (%) from step ``LATE``."""
    out = {}
    for arm in grid_arms():
        paths = [Path(args.work) / f"{cell_name(arm, seed, TRAIN_STEPS, framework, args)}.json" for seed in seeds]
        if not all(p.is_file() for p in paths):
            continue
        out[arm] = []
        for seed, path in zip(seeds, paths):
            late = [100 * p["adv_acc"] for p in json.loads(path.read_text())["curve"] if p["step"] >= LATE]
            out[arm].append({"seed": seed, "final": late[-1], "low": min(late), "high": max(late)})
    return out


def continue_cell(run: Path, framework: str, seed: int, lr: float, data: dict, args) -> list[dict]:
    """Validation clean and PGD-10 accuracy (%) of the run's model before and after every ``--every`` of
    ``--extra`` more training steps at ``lr`` (constant), on a batch order drawn from ``seed + 1``."""
    model, _, _ = load_run(run, device=args.device)
    classifier = make_classifier(model, DATASET, lr=lr, device=args.device)
    trainer = FRAMEWORKS[framework](classifier, eps=args.eps, max_iter=TRAIN_STEPS, precision="fp32", seed=seed + 1,
                                    verbose=False)
    scheduler = make_scheduler("constant", classifier.optimizer, 1, args.extra, lr)
    order = np.random.default_rng(seed + 1).permutation(len(data["x"]))
    xv, yv = data["xv"], data["yv"]
    points = [{"step": 0, **{k: 100 * v for k, v in trainer.evaluate(xv, yv).items()}}]
    for start in range(0, args.extra, args.every):
        idx = order[start * args.batch_size : min(start + args.every, args.extra) * args.batch_size]
        trainer.fit(data["x"][idx], data["y"][idx], batch_size=args.batch_size, nb_epochs=1, scheduler=scheduler)
        points.append({"step": min(start + args.every, args.extra),
                       **{k: 100 * v for k, v in trainer.evaluate(xv, yv).items()}})
    return points


def probes(arms: list[str], framework: str, seeds: list[int], lrs: list[float], args) -> dict[str, list[dict]]:
    """The continuation curves, keyed ``arm/seed/lr``, each cached in ``--out``/study_late_instability/."""
    cache = Path(args.out) / "study_late_instability"
    cache.mkdir(parents=True, exist_ok=True)
    data = None
    out = {}
    for arm in arms:
        for seed in seeds:
            cell = cell_name(arm, seed, TRAIN_STEPS, framework, args)
            for lr in lrs:
                path = cache / f"{cell}-plus{args.extra}-every{args.every}-lr{lr:g}.json"
                if not path.is_file():
                    run = Path(args.work) / cell
                    if not run.is_dir():
                        raise SystemExit(f"no run folder for {cell} in {args.work}; train the cell with _cells.py")
                    data = data or load_data(args)
                    print(f"continuing {cell} at lr {lr:g}", flush=True)
                    path.write_text(json.dumps(continue_cell(run, framework, seed, lr, data, args)))
                out[f"{arm}/{seed}/{lr:g}"] = json.loads(path.read_text())
    return out


def markdown(payload: dict) -> str:
    st = payload["settings"]
    name = FRAMEWORK_NAMES[st["framework"]]
    lines = [f"# {payload['study']}", "", "Generated by `benchmarks/study_late_instability.py`.",
             f"Cells of study 3 (Fashion-MNIST, small CNN, {st['steps']} steps at SGD lr {st['lr']:g} constant, "
             f"PGD-{TRAIN_STEPS} in training, eps {st['eps']:g}; seeds {st['seeds']}); validation: clean and PGD-10 "
             f"on the first {st['val_n']:,} test images. Continuation probe: {name}. Device: {payload['device']}.", "",
             f"## Late swings of the learning curves (validation PGD-10 %, steps {LATE} to {st['steps']})", "",
             "Per seed: final (lowest–highest in the window); last column: the largest fall of a final value below "
             "its window's highest."]
    for framework, swings in payload["swings"].items():
        if not swings:
            continue
        lines += ["", f"### {FRAMEWORK_NAMES[framework]}", "",
                  "| arm | " + " | ".join(f"seed {s}" for s in st["seeds"]) + " | largest final fall |",
                  "| --- | " + " | ".join("---:" for _ in st["seeds"]) + " | ---: |"]
        for arm, rows in swings.items():
            lines.append(f"| {arm} | " + " | ".join(f"{r['final']:.1f} ({r['low']:.1f}–{r['high']:.1f})" for r in rows)
                         + f" | {max(r['high'] - r['final'] for r in rows):.1f} |")
    lines += ["", f"## Continuation probe: {st['extra']} more steps from the final model (validation PGD-10 %, "
              "clean in brackets)", "",
              "| arm | seed | lr | " + " | ".join(f"+{p['step']}" for p in next(iter(payload["probes"].values())))
              + " |", "| --- | ---: | ---: | " + " | ".join("---:" for _ in next(iter(payload["probes"].values())))
              + " |"]
    for key, points in payload["probes"].items():
        arm, seed, lr = key.split("/")
        lines.append(f"| {arm} | {seed} | {lr} | "
                     + " | ".join(f"{p['adv_acc']:.1f} ({p['clean_acc']:.1f})" for p in points) + " |")
    return "\n".join(lines) + "\n"


def figure(payload: dict, path: Path) -> None:
    from art_he.plots.figures import new_figure, save

    fig = new_figure(figsize=(11, 4))
    left, right = fig.subplots(1, 2)
    swings = payload["swings"][payload["settings"]["framework"]]
    for i, rows in enumerate(swings.values()):
        for j, r in enumerate(rows):
            x = i + (j - (len(rows) - 1) / 2) * 0.2
            left.plot([x, x], [r["low"], r["high"]], color="tab:gray", lw=2)
            left.plot(x, r["final"], "o", color="tab:red" if r["high"] - r["final"] > 10 else "tab:blue", ms=4)
    left.set_xticks(range(len(swings)), list(swings), rotation=45, ha="right", fontsize=7)
    left.set_ylabel(f"validation PGD-10 (%), steps {LATE}-end")
    left.set_title(f"{FRAMEWORK_NAMES[payload['settings']['framework']]}: late swings per seed (bar: range; dot: "
                   "final model, red: > 10 below the range's top)", fontsize=8)
    colors = dict(zip(sorted({k.split("/")[2] for k in payload["probes"]}, key=float, reverse=True),
                      ("tab:red", "tab:blue", "tab:green")))
    for key, points in payload["probes"].items():
        arm, seed, lr = key.split("/")
        right.plot([p["step"] for p in points], [p["adv_acc"] for p in points], marker="o", ms=3, color=colors[lr],
                   ls="-" if arm == "plain" else "--", label=f"{arm} s{seed} lr {lr}")
    right.set_xlabel("extra training steps")
    right.set_ylabel("validation PGD-10 (%)")
    right.set_title("continuation from the final model", fontsize=9)
    right.legend(fontsize=6, ncol=2)
    for ax in (left, right):
        ax.grid(alpha=0.3)
    save(fig, path)


def main() -> None:
    parser = study_parser(__doc__, "study_late_instability")
    parser.add_argument("--framework", default="trades", choices=tuple(FRAMEWORK_NAMES))
    parser.add_argument("--arms", default="plain,he-s15-m0.5", help="the cells to continue (study 3's arm names)")
    parser.add_argument("--extra", type=int, default=10, help="training steps added to each final model")
    parser.add_argument("--every", type=int, default=2, help="steps between two validations of the probe")
    parser.add_argument("--lrs", default="0.05,0.005,0",
                        help="LRs of the continuation, comma-separated (0: only BatchNorm's running statistics move)")
    args = parser.parse_args()
    if args.extra < 1 or args.every < 1:
        parser.error("--extra and --every must be >= 1")
    torch.set_num_threads(args.threads)
    seeds = [int(s) for s in args.seeds.split(",")]
    lrs = [float(v) for v in args.lrs.split(",")]
    arms = args.arms.split(",")
    payload = {
        "study": "Study 3 follow-up: late swings of the learning curves, and the collapsed TRADES+HE cell (issue 13)",
        "device": device_name(torch.device(args.device)),
        "settings": settings_of(args, seeds=seeds),
        "swings": {f: late_swings(f, seeds, args) for f in FRAMEWORK_NAMES},
        "probes": probes(arms, args.framework, seeds, lrs, args),
    }
    publish(Path(args.out), args.name, payload, markdown, figure)


if __name__ == "__main__":
    main()
