"""Study: does HE fall faster than plain above the training eps? (issue 13, study 5)

One single-seed run had suggested it (PGD-20 at eps 0.15: HE 29.0 % against plain 55.3 %), with masking on the
plain model not ruled out. Here each seed's plain and HE model (the same initial body, batch order and training
attack) is evaluated with ``art_he.evaluation.evaluate`` (the suite of ``art-he eval``) at 0.5x, 1x, 1.5x and 2x the
training eps with

* CE-PGD-20 (``pgd20``: ART's PGD on CE of the attack logits, ``s * cos`` for HE; step eps/10, one random start),
* margin-loss PGD-20 (``cw20``: the C&W margin on the same logits, which no softmax temperature can flatten),
* standard AutoAttack on the first ``--aa-n`` images, stage by stage (``_cells.autoattack_cells``: APGD-CE,
  APGD-T, FAB-T, Square, and for HE APGD-CE on the raw cosines for the survivors), cached beside each cell
  (at 1x the cache is study 6's); the report shows APGD-CE+T once the first two stages are done and AutoAttack
  once all are,

so that a gradient-masking effect on either side shows up as a gap between the attacks. The models are the
``plain`` and ``he`` cells of ``study_convergence.py`` (one epoch of PGD-AT on the full training set, saved as run
folders) unless ``--runs`` names others.

Statistics: mean +- sd over seeds per arm, attack and radius; HE minus plain per seed with a paired t interval.

    cd benchmarks && python study_beyond_eps.py [--cells results/study_convergence/cells] [--seeds 0,1,2]
        [--multiples 0.5,1,1.5,2] [--n 2000] [--aa-n 1000] [--aa-multiples 1.5,2] [--aa-stages apgd-ce,apgd-t]
        [--shard 0/1] [--report-only] [--out results] [--name study_beyond_eps]

Each (arm, seed, radius) PGD report is cached under ``<out>/<name>/`` (an ``art-he eval`` JSON report);
``--shard i/n`` runs every n-th missing one. AutoAttack's stages are shared under locks: start one worker per core.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from _cells import (
    AA_STAGES,
    TRAIN_STEPS,
    aa_path,
    aa_stages,
    add_aa_stages_argument,
    add_cell_arguments,
    autoattack_cells,
    autoattack_results,
    cell_name,
)
from _common import device_name, publish
from _stats import paired_t, pm, sd

from art_he.data import load_dataset
from art_he.evaluation import evaluate
from art_he.runs import load_run

HERE = Path(__file__).resolve().parent
ARMS = ("plain", "he")
ATTACKS = {"pgd20": "CE-PGD-20", "cw20": "margin PGD-20", "apgd": "APGD-CE+T", "autoattack": "AutoAttack"}
#: the table's row names: CE-PGD-20 attacks HE in two views (CE on s*cos and on the raw cosines) and keeps each
#: image's worse result, plain in one; margin PGD and AutoAttack attack both in one view
ROWS = {**ATTACKS, "pgd20": "CE-PGD-20 (HE: worse of 2 views, s·cos and raw cosines; plain: 1 view)"}
COLORS = {"plain": "tab:blue", "he": "tab:red"}
STYLES = {"pgd20": "-", "cw20": "--", "apgd": "-.", "autoattack": ":"}


def run_dir(cells: Path, arm: str, seed: int) -> Path:
    """The run folder of study 6's ``arm`` cell for ``seed`` (the cells' default settings, PGD-3 in training), as
    this study attacked them: the cells from before issue 34 (no hidden BatchNorm, WN inside the graph)."""
    parser = argparse.ArgumentParser()
    add_cell_arguments(parser)
    legacy = parser.parse_args(["--no-hidden-norm", "--weight-norm", "differentiable"])
    run = cells / cell_name(arm, seed, TRAIN_STEPS, "pgd", legacy)
    if not run.is_dir():
        raise SystemExit(f"no run folder {run.name} in {cells} (git keeps the cells' JSON, not their weights); "
                         "retrain it with `python _cells.py --arms plain,he "
                         "--no-hidden-norm --weight-norm differentiable --autoattack 1000 --aa-stages apgd-ce "
                         "--replace-unreproduced`")
    return run


def evaluate_cell(run: Path, eps: float, n: int) -> dict:
    """Clean, CE-PGD-20 and margin PGD-20 accuracy on the first ``n`` test images."""
    _, classifier, config = load_run(run, device="cpu")
    x, y = load_dataset(config["dataset"], train=False)
    report = evaluate(classifier, x[:n], y[:n], attacks="pgd20,cw20", eps=eps, n=n, sweep=(), seed=0)
    return {row.attack: {"accuracy": row.accuracy, "n": row.n, "time_s": row.time_s} for row in report.rows}


def eps_tag(multiple: float) -> str:
    """The AutoAttack cache's tag at ``multiple`` x the training eps (none at 1x: study 6's own cache)."""
    return "" if multiple == 1 else f"-x{multiple:g}"


def autoattack_of(cells: Path, arm: str, seed: int, multiple: float, n: int) -> dict:
    """APGD-CE+T and AutoAttack accuracy (those whose stages are done) of a cell at ``multiple`` x eps."""
    cached = aa_path(cell_json(cells, arm, seed), n, eps_tag(multiple))
    if not cached.is_file():
        return {}
    aa = json.loads(cached.read_text())
    return {attack: {"accuracy": float(np.mean(robust)), "n": len(robust),
                     "time_s": sum(aa["time_s"].values())} for attack, robust in autoattack_results(aa).items()}


def cell_json(cells: Path, arm: str, seed: int) -> Path:
    run = run_dir(cells, arm, seed)
    return run.parent / f"{run.name}.json"


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


def markdown(payload: dict) -> str:
    s, summary = payload["settings"], payload["summary"]
    attacks = payload["attacks"]
    lines = [f"# {payload['study']}", "", "Generated by `benchmarks/study_beyond_eps.py`.",
             f"Models: {payload['models']}. Training eps {s['eps']:g}; seeds {s['seeds']}. CE-PGD-20 and margin "
             f"PGD-20 (step eps/10, one random start) on the first {s['n']:,} test images"
             + (f"; AutoAttack's stages on the first {s['aa_n']:,} at "
                f"{', '.join(f'{m:g}x' for m in s['aa_multiples'])} (APGD-CE+T: APGD-CE, then APGD-T on the "
                f"survivors; AutoAttack: all stages; a row appears once its stages are done for every model)"
                if s["aa_n"] else "") +
             f". Accuracy in %, mean ± sd over seeds. Device: {payload['device']}.", "",
             "| eps (x training) | attack | plain | HE | HE − plain [95 % t interval], p |",
             "| ---: | --- | ---: | ---: | ---: |"]
    for m in s["multiples"]:
        for attack in ["clean", *attacks]:
            if f"{attack}/{m:g}" not in summary["tests"]:
                continue
            t = summary["tests"][f"{attack}/{m:g}"]
            ci = f" [{t['ci95'][0]:+.2f}, {t['ci95'][1]:+.2f}], p = {t['p']:.2g}" if t["ci95"] else ""
            plain, he = (pm(summary["cells"][f"{arm}/{attack}/{m:g}"]) for arm in ARMS)
            lines.append(f"| {m * s['eps']:g} ({m:g}x) | {ROWS.get(attack, 'clean')} | {plain} | {he} | "
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
    add_aa_stages_argument(parser)
    parser.add_argument("--shard", default="0/1")
    parser.add_argument("--report-only", action="store_true", help="attack nothing: report what is cached")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=str(HERE / "results"))
    parser.add_argument("--name", default="study_beyond_eps")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    seeds = [int(s) for s in args.seeds.split(",")]
    multiples = [float(m) for m in args.multiples.split(",")]
    cells, out = Path(args.cells), Path(args.out)
    aa_multiples = multiples if args.aa_multiples is None else [float(m) for m in args.aa_multiples.split(",")]
    stages = aa_stages(args.aa_stages)
    work = out / args.name

    def path(arm, seed, m):
        return work / f"pgd-n{args.n}" / f"{arm}-s{seed}-x{m:g}.json"

    jobs = [(arm, s, m) for m in multiples for s in seeds for arm in ARMS]
    shard, n_shards = (int(v) for v in args.shard.split("/"))
    for arm, seed, m in [] if args.report_only else [job for job in jobs if not path(*job).is_file()][shard::n_shards]:
        print(f"pgd: {arm} seed {seed} at {m:g}x eps", flush=True)
        result = evaluate_cell(run_dir(cells, arm, seed), m * args.eps, args.n)
        path(arm, seed, m).parent.mkdir(parents=True, exist_ok=True)
        path(arm, seed, m).write_text(json.dumps(result))
        print("  " + ", ".join(f"{k} {v['accuracy']:.4f}" for k, v in result.items()), flush=True)
    if args.aa_n and not args.report_only:
        paths = [cell_json(cells, arm, s) for s in seeds for arm in ARMS]
        for stage in (s for s in AA_STAGES if s in stages):  # stage-major: the gradient attacks everywhere first
            for m in aa_multiples:
                autoattack_cells(paths, args.aa_n, m * args.eps, "cpu", stages=(stage,), eps_tag=eps_tag(m))
    if any(not path(*job).is_file() for job in jobs):
        print("not all PGD cells are there yet; no report written")
        return
    results = {(arm, s, m): json.loads(path(arm, s, m).read_text()) for arm, s, m in jobs}
    for arm, s, m in jobs:
        if args.aa_n and m in aa_multiples:
            results[(arm, s, m)].update(autoattack_of(cells, arm, s, m, args.aa_n))
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
    publish(out, args.name, payload, markdown, figure)


if __name__ == "__main__":
    main()
