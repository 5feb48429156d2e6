"""Study: why does HE learn more slowly at first, and does a learning-rate warm-up fix it? (issue 13, study 6)

The cause, measured at initialisation (``init`` in the JSON): HE's loss ``CE(s * (cos - m * onehot(y)), y)``
back-propagates ``s * (softmax - onehot)`` into the cosines, ``s = 15`` times the size a plain head's CE sends into
its logits, and FN divides it by ``||z||`` on the way into the body. Per layer we report the relative gradient
``||dL/dw|| / ||w||`` of the first SGD step, plain against HE (``m = 0.2``) and HE with ``m = 0``, and the initial
loss and true-class probability. Every weight in front of FN (the last hidden layer), WN (the head) or BatchNorm (the
convolutions) is scale-invariant: a step orthogonal to ``w`` only makes ``||w||`` grow, and the effective LR of
such a weight is ``lr / ||w||^2``. Too large first steps therefore inflate the norms, and the effective LR stays low
until weight decay shrinks them again (a time constant of ``1 / (2 lr wd)`` = 20,000 steps at lr 0.05, wd 5e-4). The
learning curves record the norms of the head and of the last hidden layer, so that this shows.

Learning curves: PGD-AT on the full Fashion-MNIST training set, the dataset's small CNN, batch 128, SGD lr 0.05,
momentum 0.9, weight decay 5e-4, constant LR, Linf eps 0.1, training attack PGD-``--train-steps`` (step eps/4, one
random start), for four arms that share each seed's initial body weights and batch order:

* ``plain``, ``he`` (s = 15, m = 0.2): the package defaults;
* ``plain+warmup``, ``he+warmup``: the same with ``art-he train --warmup W`` (a linear LR warm-up over the first
  ``W`` of an epoch, :class:`art_he.schedules.WarmupLR`), the remedy tested here; the plain arm shows whether the
  warm-up helps HE in particular or any model.

The models are trained by the trainer's own ``fit`` (one call per stretch between two evaluation points, the
scheduler shared across the calls, the validation that ``fit`` runs after each call: clean and PGD-10 accuracy on the
first ``--val-n`` test images). After the last step: clean and PGD-20 accuracy (CE, step eps/4, one random start) on
all 10,000 test images, and with ``--autoattack N`` standard AutoAttack on the first N.

Statistics: mean +- sd over seeds per arm and step; per step the paired difference between arms over seeds (t
interval); at the end, per image pooled over seeds, McNemar's exact test.

    cd benchmarks && python study_convergence.py [--seeds 0,1,2] [--steps 469] [--warmup 0.1] [--train-steps 3]
        [--val-n 1000] [--autoattack 0] [--out results] [--name study_convergence]

Each (arm, seed) is a cell of ``_cells.py``, cached under ``--work`` when finished; workers started side by side
(one per core) share the missing cells; the report is written when all cells are there.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from _cells import (
    DATASET,
    TRAIN_STEPS,
    build,
    diff_text,
    final_table,
    model_text,
    plot_curves,
    run_cells,
    settings_of,
    study_parser,
    summarise,
)
from _common import device_name, publish
from _stats import pm

from art_he.data import dataset_info, load_dataset
from art_he.heads import find_head
from art_he.losses import Objective

HERE = Path(__file__).resolve().parent
ARMS = ("plain", "he", "plain+warmup", "he+warmup")
COMPARISONS = (("he", "plain"), ("he+warmup", "he"), ("he+warmup", "plain+warmup"), ("plain+warmup", "plain"))
COLORS = {"plain": "tab:blue", "he": "tab:red", "plain+warmup": "tab:cyan", "he+warmup": "tab:orange"}


# -- the cause, at initialisation ------------------------------------------------------------------------------


def init_diagnostics(seed: int, x: np.ndarray, y: np.ndarray, args) -> dict:
    """First-step quantities on ``x``: loss, mean true-class probability, per-sample ``||dL/dz||`` and
    ``||dL/dw|| / ||w||`` per weight matrix, for plain, HE (m = 0.2) and HE with m = 0 (the same initial body)."""
    xt, yt = torch.as_tensor(x), torch.as_tensor(y, dtype=torch.long)
    out = {}
    for name, head, margin in (("plain", "plain", None), ("he", "he", None), ("he_m0", "he", 0.0)):
        model = build(head, seed, args).train()
        he = find_head(model)
        if he is not None and margin is not None:
            he.margin = margin
        objective = he.objective if he is not None else Objective()
        grabbed = {}
        layer = he if he is not None else model.linear
        handle = layer.register_forward_hook(lambda m, i, o, store=grabbed: store.__setitem__("z", i[0]))
        raw = model(xt)
        handle.remove()
        z = grabbed["z"]
        z.retain_grad()
        loss = objective.train_loss(raw, yt)
        loss.backward()
        probs = objective.train_logits(raw.detach(), yt).softmax(1)
        layers = {n: float(p.grad.norm() / p.detach().norm()) for n, p in model.named_parameters() if p.dim() > 1}
        out[name] = {"loss": float(loss.detach()), "p_true": float(probs.gather(1, yt[:, None]).mean()),
                     "grad_z_per_sample": float((z.grad.norm(dim=1) * len(xt)).mean()),
                     "z_norm": float(z.detach().norm(dim=1).mean()), "relative_grad": layers}
    return out


# -- statistics ------------------------------------------------------------------------------------------------


# -- output ----------------------------------------------------------------------------------------------------

def markdown(payload: dict) -> str:
    s, summary, init = payload["settings"], payload["summary"], payload["init"]
    steps = summary["steps"]
    lines = [f"# {payload['study']}", "", "Generated by `benchmarks/study_convergence.py`.",
             f"Fashion-MNIST, {model_text(s)}, PGD-AT (training attack PGD-{s['train_steps']}, eps {s['eps']:g}, step "
             f"eps/4), batch {s['batch_size']}, SGD lr {s['lr']:g} constant, momentum 0.9, weight decay 5e-4, "
             f"{s['steps']} steps on the full training set "
             f"({min(s['steps'] * s['batch_size'], s['n_train']):,} images), seeds "
             f"{s['seeds']}; warm-up: linear over the first {s['warmup']:g} epoch ({payload['warmup_steps']} steps). "
             f"Validation: first {s['val_n']} test images, clean and PGD-10. Device: {payload['device']}.", "",
             "## The cause: the first step (mean over seeds)", "",
             "| | loss | p(true class) | ‖z‖ | per-sample ‖dL/dz‖ | " +
             " | ".join(f"‖g‖/‖w‖ {k}" for k in init["layers"]) + " |",
             "| --- | ---: | ---: | ---: | ---: | " + " | ".join("---:" for _ in init["layers"]) + " |"]
    for name, label in (("plain", "plain"), ("he", "HE, s 15, m 0.2"), ("he_m0", "HE, s 15, m 0")):
        row = init["mean"][name]
        lines.append(f"| {label} | {row['loss']:.3f} | {row['p_true']:.3f} | {row['z_norm']:.2f} | "
                     f"{row['grad_z_per_sample']:.3f} | " +
                     " | ".join(f"{row['relative_grad'][k]:.3f}" for k in init["layers"]) + " |")
    lines += ["", "## Learning curves (accuracy in %, mean ± sd over seeds)", "",
              "| step | " + " | ".join(f"{arm} clean | {arm} PGD-10" for arm in ARMS) + " | ‖W‖ head: " +
              " / ".join(ARMS) + " |",
              "| ---: | " + " | ".join("---: | ---:" for _ in ARMS) + " | ---: |"]
    curves = summary["curves"]
    for i, step in enumerate(steps):
        cells = []
        for arm in ARMS:
            for key in ("clean_acc", "adv_acc"):
                c = curves[arm][key]
                cells.append(pm({"mean": c["mean"][i], "sd": c["sd"][i] if c["sd"] else None}))
        head = " / ".join(f"{curves[arm]['head_norm']['mean'][i]:.1f}" for arm in ARMS)
        lines.append(f"| {step} | " + " | ".join(cells) + f" | {head} |")
    lines += ["", "## Paired differences per step (PGD-10 accuracy points; 95 % t interval over seeds)", "",
              "| step | " + " | ".join(f"{a} − {b}" for a, b in COMPARISONS) + " |",
              "| ---: | " + " | ".join("---:" for _ in COMPARISONS) + " |"]
    for i, step in enumerate(steps[1:], start=1):
        lines.append(f"| {step} | " + " | ".join(diff_text(summary["step_tests"][f"{a}-{b}/adv_acc"][i])
                                             for a, b in COMPARISONS) + " |")
    lines += ["", f"## After {s['steps']} steps: the first {s['test_n']:,} test images"] + final_table(
        summary, ARMS, COMPARISONS, s.get("autoattack") or 0)
    return "\n".join(lines) + "\n"


def figure(payload: dict, path: Path) -> None:
    from art_he.plots.figures import new_figure, save

    fig = new_figure(figsize=(14, 4.4))
    axes = fig.subplots(1, 3)
    panels = (("clean_acc", "clean accuracy (%)"), ("adv_acc", "PGD-10 accuracy (%)"), ("head_norm", "‖W‖ of the head"))
    for ax, (key, label) in zip(axes, panels):
        plot_curves(ax, payload["summary"], ARMS, key, COLORS, dashed=[a for a in ARMS if a.endswith("warmup")])
        ax.axvline(payload["warmup_steps"], color="grey", ls=":", lw=1)
        ax.set_ylabel(label)
    axes[1].legend(loc="lower right", fontsize=8)
    s = payload["settings"]
    fig.suptitle(f"PGD-AT on Fashion-MNIST: plain vs HE, with and without a {payload['warmup_steps']}-step LR warm-up "
                 f"(dotted line); mean ± sd over {len(s['seeds'])} seeds, validation on {s['val_n']} test images",
                 fontsize=10)
    save(fig, path)


def main() -> None:
    parser = study_parser(__doc__, "study_convergence")
    parser.add_argument("--train-steps", type=int, default=TRAIN_STEPS, help="PGD steps of the training attack")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    found = run_cells([(arm, s, args.train_steps) for s in seeds for arm in ARMS], args)
    if found is None:
        return
    cells = {(arm, s): cell for (arm, s, _), cell in found.items()}
    x, y = load_dataset(DATASET, train=True)
    init_runs = [init_diagnostics(s, x[:1024], y[:1024], args) for s in seeds]
    layers = list(init_runs[0]["plain"]["relative_grad"])
    init_mean = {name: {k: float(np.mean([r[name][k] for r in init_runs])) for k in ("loss", "p_true", "z_norm",
                                                                                   "grad_z_per_sample")}
                 for name in init_runs[0]}
    for name in init_mean:
        init_mean[name]["relative_grad"] = {k: float(np.mean([r[name]["relative_grad"][k] for r in init_runs]))
                                            for k in layers}
    payload = {
        "study": "Study 6: HE's slow start, its cause and an LR warm-up (issue 13)",
        "device": device_name(torch.device(args.device)),
        "settings": settings_of(args, seeds=seeds, model=dataset_info(DATASET).model, n_train=len(x)),
        "warmup_steps": cells[("he+warmup", seeds[0])]["warmup_steps"],
        "init": {"per_seed": init_runs, "mean": init_mean, "layers": layers},
        "summary": summarise(cells, seeds, ARMS, COMPARISONS),
        "runtime": {f"{arm}/s{s}": cells[(arm, s)]["train_s"] for arm in ARMS for s in seeds},
    }
    publish(Path(args.out), args.name, payload, markdown, figure)


if __name__ == "__main__":
    main()
