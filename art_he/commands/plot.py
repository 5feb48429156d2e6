"""``art-he plot KIND INPUT... --out FILE.png|svg``: figures of runs and evaluation reports.

    art-he plot curves runs/plain runs/he --out curves.png
    art-he plot eps plain.json he.json --out eps.svg
    art-he plot attacks plain.json he.json --label PGD-AT --label PGD-AT+HE --out attacks.png
    art-he plot corruptions corr-plain.json corr-he.json --out corruptions.png
    art-he plot diagnostics runs/plain runs/he --n 500 --data-dir data --out diagnostics.png

The arguments are built without importing torch or matplotlib (``art-he plot --help`` stays fast).
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import TYPE_CHECKING

from art_he.argtypes import positive_int
from art_he.devices import DEVICE_HELP
from art_he.errors import UserError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: kind -> what its inputs are
KINDS = {
    "curves": "run directories (or their metrics.jsonl): loss, clean and adversarial accuracy per epoch",
    "eps": "evaluation reports (art-he eval --json) with an eps sweep: accuracy against eps",
    "attacks": "evaluation reports: accuracy per attack, one bar per report",
    "corruptions": "corruptions-suite reports: corruption x severity heatmap with mCA",
    "diagnostics": "run directories: feature norms, cos(theta_y), class weight norms, input-gradient ratios",
}
SUFFIXES = (".png", ".svg")


def add_plot_arguments(p: argparse.ArgumentParser) -> None:
    """Add the ``plot`` arguments to ``p``."""
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.epilog = "kinds:\n" + "\n".join(f"  {k:<12} {v}" for k, v in KINDS.items())
    p.add_argument("kind", metavar="KIND", help=f"the figure: {', '.join(KINDS)}")
    p.add_argument("inputs", metavar="INPUT", nargs="+", help="run directories or report JSON files (see kinds)")
    p.add_argument("--out", metavar="FILE", default=None, help="the figure to write: FILE.png or FILE.svg")
    p.add_argument("--label", dest="labels", action="append", metavar="TEXT", default=None,
                   help="legend entry of the next INPUT, once per INPUT (default: run folder or report name)")
    p.add_argument("--title", default=None, help="figure title (default: one naming the figure)")
    p.add_argument("--attacks", default=None,
                   help="attacks: comma-separated attack keys to show, in order (default: every attack row)")
    p.add_argument("--dpi", type=positive_int, default=150, help="resolution of a PNG (default: 150)")
    group = p.add_argument_group("diagnostics")
    group.add_argument("--n", type=positive_int, default=500, help="test images to measure (default: 500)")
    group.add_argument("--data-dir", default=None, help="data root of the runs' data set")
    group.add_argument("--eps", type=float, default=None, help="Linf radius of the PGD (default: the runs' eps)")
    group.add_argument("--eps-step", type=float, default=None, help="PGD step (default: eps / 4)")
    group.add_argument("--steps", type=positive_int, default=10, help="PGD iterations (default: 10)")
    group.add_argument("--batch-size", type=positive_int, default=256)
    group.add_argument("--seed", type=int, default=0)
    group.add_argument("--device", default=None, help=DEVICE_HELP)


def check_output(out: str | None) -> Path:
    if out is None:
        raise UserError("--out FILE.png or --out FILE.svg is required (the figure to write)")
    path = Path(out)
    if path.suffix.lower() not in SUFFIXES:
        raise UserError(f"cannot write {path}: the file name must end in .png or .svg")
    return path


def _diagnostics(args: argparse.Namespace) -> Figure:
    import numpy as np

    from art_he.data import dataset_info, load_dataset
    from art_he.evaluation.diagnostics import he_diagnostics
    from art_he.plots.diagnostics import diagnostics_figure
    from art_he.runs import load_run

    loaded = [load_run(run, device=args.device) for run in args.inputs]
    datasets = {config["dataset"] for _, _, config in loaded}
    if len(datasets) > 1:
        raise UserError(f"the runs are trained on different data sets ({', '.join(sorted(datasets))}); "
                        "diagnostics compares runs on one")
    config = loaded[0][2]
    eps = args.eps
    if eps is None:
        found = {c.get("eps") or dataset_info(c["dataset"]).eps for _, _, c in loaded}
        if len(found) > 1:
            raise UserError(f"the runs are trained with different eps ({', '.join(map(str, sorted(found)))}); "
                            "give the one to attack with, --eps")
        eps = found.pop()
    if not (math.isfinite(eps) and eps > 0):
        raise UserError(f"--eps must be > 0, got {eps}")
    x, y = load_dataset(config["dataset"], train=False, data_dir=args.data_dir, image_size=config.get("image_size"),
                        n=args.n)
    x, y = np.asarray(x[: args.n]), np.asarray(y[: args.n])
    results = [he_diagnostics(model, x, y, eps=eps, eps_step=args.eps_step, steps=args.steps,
                              batch_size=args.batch_size, seed=args.seed) for model, _, _ in loaded]
    names = args.labels or [Path(run).resolve().name for run in args.inputs]
    return diagnostics_figure(results, names, title=args.title)


def make_figure(args: argparse.Namespace) -> Figure:
    """The figure ``args`` ask for (parsed ``art-he plot`` arguments)."""
    from art_he.plots import figures

    if args.kind == "diagnostics":
        return _diagnostics(args)
    if args.attacks is not None and args.kind != "attacks":
        raise UserError("--attacks applies to `art-he plot attacks` only")
    if args.kind == "curves":
        return figures.curves_figure(args.inputs, args.labels, title=args.title)
    if args.kind == "eps":
        return figures.eps_figure(args.inputs, args.labels, title=args.title)
    if args.kind == "attacks":
        attacks = None if args.attacks is None else [a.strip() for a in args.attacks.split(",") if a.strip()]
        return figures.attacks_figure(args.inputs, args.labels, attacks=attacks, title=args.title)
    return figures.corruptions_figure(args.inputs, args.labels, title=args.title)


def run_plot(args: argparse.Namespace) -> int:
    """Run ``art-he plot`` with parsed ``args``: draw the figure and write it to ``--out``."""
    if args.kind not in KINDS:
        raise UserError(f"unknown plot kind {args.kind!r}; choose from {', '.join(KINDS)}")
    out = check_output(args.out)
    if not out.parent.is_dir():
        raise UserError(f"cannot write {out}: the directory {out.parent} does not exist")
    if args.labels is not None and len(args.labels) != len(args.inputs):
        raise UserError(f"{len(args.labels)} --label(s) for {len(args.inputs)} input(s); give one per INPUT")
    from art_he.plots.figures import save

    fig = make_figure(args)
    print(f"wrote {save(fig, out, dpi=args.dpi)}")
    return 0
