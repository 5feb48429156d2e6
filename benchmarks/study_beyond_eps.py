"""Study: does HE fall faster than plain above the training eps? (issue 13, study 5)

One single-seed run had suggested it (PGD-20 at eps 0.15: HE 29.0 % against plain 55.3 %), with masking on the
plain model not ruled out. Here each seed's plain and HE model (the same initial body, batch order and training
attack) is evaluated with ``art_he.evaluation.evaluate`` (the suite of ``art-he eval``) at 0.5x, 1x, 1.5x and 2x the
training eps with

* CE-PGD-20 (``pgd20``: ART's PGD on CE of the attack logits, ``s * cos`` for HE; step eps/10, one random start),
* margin-loss PGD-20 (``cw20``: the C&W margin on the same logits, which no softmax temperature can flatten),
* standard AutoAttack (``autoattack``; for HE with APGD-CE on the raw cosines for the survivors),

so that a gradient-masking effect on either side shows up as a gap between the attacks. The models are the
``plain`` and ``he`` cells of ``study_convergence.py`` (one epoch of PGD-AT on the full training set, saved as run
folders) unless ``--runs`` names others.

Statistics: mean +- sd over seeds per arm, attack and radius; HE minus plain per seed with a paired t interval.

    cd benchmarks && python study_beyond_eps.py [--cells results/study_convergence/cells] [--seeds 0,1,2]
        [--multiples 0.5,1,1.5,2] [--n 2000] [--aa-n 1000] [--shard 0/1] [--out results] [--name study_beyond_eps]

Each (arm, seed, radius) report is cached under ``--work`` (an ``art-he eval`` JSON report); ``--shard i/n`` runs
every n-th missing one.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from _common import device_name, write_markdown
from _stats import paired_t, sd

from art_he.data import load_dataset
from art_he.evaluation import evaluate
from art_he.runs import load_run

HERE = Path(__file__).resolve().parent
ARMS = ("plain", "he")
ATTACKS = {"pgd20": "CE-PGD-20", "cw20": "margin PGD-20", "autoattack": "AutoAttack"}
COLORS = {"plain": "tab:blue", "he": "tab:red"}
STYLES = {"pgd20": "-", "cw20": "--", "autoattack": ":"}


def run_dir(cells: Path, arm: str, seed: int) -> Path:
    found = sorted(p for p in cells.glob(f"{arm}-s{seed}-*") if p.is_dir())
    if not found:
        raise SystemExit(f"no run folder for {arm} seed {seed} in {cells}; run study_convergence.py first")
    return found[0]


def evaluate_cell(run: Path, eps: float, args, autoattack: bool) -> dict:
    """Clean, CE-PGD-20 and margin PGD-20 on ``--n`` test images and (``autoattack``) AutoAttack on the first
    ``--aa-n``."""
    _, classifier, config = load_run(run, device="cpu")
    x, y = load_dataset(config["dataset"], train=False, n=max(args.n, args.aa_n))
    out = {}
    report = evaluate(classifier, x, y, attacks="pgd20,cw20", eps=eps, n=args.n, sweep=(), seed=0)
    for row in report.rows:
        out[row.attack] = {"accuracy": row.accuracy, "n": row.n, "time_s": row.time_s}
    if autoattack and args.aa_n:
        report = evaluate(classifier, x, y, attacks="autoattack", eps=eps, n=args.aa_n, sweep=(), seed=0)
        aa = report.row("autoattack")
        out["autoattack"] = {"accuracy": aa.accuracy, "n": aa.n, "time_s": aa.time_s,
                             "clean": report.row("clean").accuracy}
    return out


def summarise(results: dict, seeds: list[int], multiples: list[float], attacks: list[str]) -> dict:
    cells, tests = {}, {}
    for m in multiples:
        for attack in ["clean", *attacks]:
            if not all(attack in results[(arm, s, m)] for arm in ARMS for s in seeds):
                continue
            for arm in ARMS:
                acc = [100 * results[(arm, s, m)][attack]["accuracy"] for s in seeds]
                cells[f"{arm}/{attack}/{m:g}"] = {"per_seed": acc, "mean": float(np.mean(acc)), "sd": sd(acc)}
            diffs = [a - b for a, b in zip(cells[f"he/{attack}/{m:g}"]["per_seed"],
                                           cells[f"plain/{attack}/{m:g}"]["per_seed"])]
            tests[f"{attack}/{m:g}"] = paired_t(diffs)
    return {"cells": cells, "tests": tests}


def _pm(cell: dict) -> str:
    return f"{cell['mean']:.2f} ± {cell['sd']:.2f}" if cell.get("sd") is not None else f"{cell['mean']:.2f}"


def markdown(payload: dict) -> str:
    s, summary = payload["settings"], payload["summary"]
    attacks = payload["attacks"]
    lines = [f"# {payload['study']}", "",
             f"Models: {payload['models']}. Training eps {s['eps']:g}; seeds {s['seeds']}. CE-PGD-20 and margin "
             f"PGD-20 (step eps/10, one random start) on the first {s['n']:,} test images"
             + (f", standard AutoAttack on the first {s['aa_n']:,} at "
                f"{', '.join(f'{m:g}x' for m in s['aa_multiples'])}" if s["aa_n"] else "") +
             f". Accuracy in %, mean ± sd over seeds. Device: {payload['device']}.", "",
             "| eps (x training) | attack | plain | HE | HE − plain [95 % t interval], p |",
             "| ---: | --- | ---: | ---: | ---: |"]
    for m in s["multiples"]:
        for attack in ["clean", *attacks]:
            if f"{attack}/{m:g}" not in summary["tests"]:
                continue
            t = summary["tests"][f"{attack}/{m:g}"]
            ci = f" [{t['ci95'][0]:+.2f}, {t['ci95'][1]:+.2f}], p = {t['p']:.2g}" if t["ci95"] else ""
            plain, he = (_pm(summary["cells"][f"{arm}/{attack}/{m:g}"]) for arm in ARMS)
            lines.append(f"| {m * s['eps']:g} ({m:g}x) | {ATTACKS.get(attack, 'clean')} | {plain} | {he} | "
                         f"{t['mean']:+.2f}{ci} |")
    return "\n".join(lines) + "\n"


def figure(payload: dict, path: Path) -> None:
    from art_he.plots.figures import new_figure, save

    s, cells = payload["settings"], payload["summary"]["cells"]
    fig = new_figure(figsize=(7.5, 4.8))
    ax = fig.subplots()
    for arm in ARMS:
        for attack in payload["attacks"]:
            ms = [m for m in s["multiples"] if f"{arm}/{attack}/{m:g}" in cells]
            mean = np.array([cells[f"{arm}/{attack}/{m:g}"]["mean"] for m in ms])
            err = np.array([cells[f"{arm}/{attack}/{m:g}"]["sd"] or 0.0 for m in ms])
            ax.errorbar(np.array(ms) * s["eps"], mean, yerr=err, color=COLORS[arm], ls=STYLES[attack], marker="o",
                        ms=4, capsize=3, label=f"{'HE' if arm == 'he' else 'plain'}: {ATTACKS[attack]}")
    ax.axvline(s["eps"], color="grey", lw=1, ls=":")
    ax.set_xlabel("Linf eps (pixel units in [0, 1]); dotted: the training eps")
    ax.set_ylabel("test accuracy under attack (%)")
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(f"Plain vs HE beyond the training eps, mean ± sd over {len(s['seeds'])} seeds", fontsize=10)
    save(fig, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cells", default=str(HERE / "results" / "study_convergence" / "cells"),
                        help="folder with study_convergence.py's run folders")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--eps", type=float, default=0.1, help="the training eps")
    parser.add_argument("--multiples", default="0.5,1,1.5,2")
    parser.add_argument("--n", type=int, default=2000, help="test images of CE-PGD-20 and margin PGD-20")
    parser.add_argument("--aa-n", type=int, default=1000, help="test images of AutoAttack (0: none)")
    parser.add_argument("--aa-multiples", default=None, help="the multiples AutoAttack runs at (default: all)")
    parser.add_argument("--shard", default="0/1")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=str(HERE / "results"))
    parser.add_argument("--name", default="study_beyond_eps")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    seeds = [int(s) for s in args.seeds.split(",")]
    multiples = [float(m) for m in args.multiples.split(",")]
    cells, out = Path(args.cells), Path(args.out)
    aa_multiples = multiples if args.aa_multiples is None else [float(m) for m in args.aa_multiples.split(",")]
    work = out / args.name / f"n{args.n}-aa{args.aa_n}"
    work.mkdir(parents=True, exist_ok=True)

    def path(arm, seed, m):
        return work / f"{arm}-s{seed}-x{m:g}.json"

    todo = [(arm, s, m) for m in multiples for s in seeds for arm in ARMS if not path(arm, s, m).is_file()]
    shard, n_shards = (int(v) for v in args.shard.split("/"))
    for arm, seed, m in todo[shard::n_shards]:
        print(f"{arm} seed {seed} at {m:g}x eps", flush=True)
        result = evaluate_cell(run_dir(cells, arm, seed), m * args.eps, args, m in aa_multiples)
        path(arm, seed, m).write_text(json.dumps(result))
        print("  " + ", ".join(f"{k} {v['accuracy']:.4f}" for k, v in result.items()), flush=True)
    if any(not path(arm, s, m).is_file() for m in multiples for s in seeds for arm in ARMS):
        print("not all cells are there yet; no report written")
        return
    results = {(arm, s, m): json.loads(path(arm, s, m).read_text()) for m in multiples for s in seeds for arm in ARMS}
    attacks = [a for a in ATTACKS if any(a in r for r in results.values())]
    payload = {
        "study": "Study 5: plain vs HE beyond the training eps (issue 13)",
        "device": device_name(torch.device("cpu")),
        "models": f"the plain and he cells of study_convergence.py in {cells.name}/ "
                  f"({', '.join(run_dir(cells, 'he', seeds[0]).name.split('-')[2:])})",
        "settings": {"seeds": seeds, "eps": args.eps, "multiples": multiples, "n": args.n, "aa_n": args.aa_n,
                     "aa_multiples": aa_multiples},
        "attacks": attacks,
        "summary": summarise(results, seeds, multiples, attacks),
        "runtime_s": round(sum(v["time_s"] for r in results.values() for v in r.values()), 1),
    }
    (out / f"{args.name}.json").write_text(json.dumps(payload, indent=1))
    text = write_markdown(out / f"{args.name}.md", markdown(payload))
    figure(payload, out / f"{args.name}.png")
    print(text)


if __name__ == "__main__":
    main()
