"""Study: does feature normalisation (FN) in the attack objective make PGD more efficient? (Table 7 of Pang et al.)

Sec. 3.3 of the paper argues that with FN the adversary attacks the angle between ``W_y - W_l`` and ``z`` instead of
spending effort on ``||z||``; Table 7 backs it by attacking a *standardly* trained WRN-34-10 (no FN inside) with
PGD-1 and PGD-2 whose objective does or does not normalise the features (CIFAR-10, eps 8/255; PGD-1 67.09 -> 62.89,
PGD-2 50.37 -> 33.75 with FN). This script repeats that on Fashion-MNIST:

* standard models: the Fashion-MNIST small CNN (plain ``nn.Linear`` head) trained with clean cross-entropy on the
  full training set on the project's epoch loop (:class:`StandardTrainer`, an ``ATTrainer`` whose "attack" is the
  identity), SGD 0.05 / momentum 0.9 / weight decay 5e-4, batch 128, multistep schedule, one model per seed;
* attacks: Linf PGD of ``art_he.attacks.train_time.pgd`` (eps = the dataset's 0.1, step eps/4, one uniform random
  start; also PGD-1 with step eps, FGSM-like) maximising one of three objectives, ``z`` being the input of the
  final ``nn.Linear`` (read by a forward hook) and ``W, b`` its weight and bias:

  - ``logits``: ``CE(W z + b, y)``, the model's own logits (no FN);
  - ``fn``: ``CE(W z~, y)`` with ``z~ = z / ||z||`` (Eq. 12, no bias);
  - ``fn_bias``: ``CE(W z~ + b, y)`` (FN, keeping the plain head's bias);
  - ``fn_rescaled`` (not in the paper): ``CE(sg(||z||) W z~ + b, y)``, ``sg`` = no gradient. Its value is the
    model's logits and its gradient is theirs without the radial (``||z||``) component, so it isolates the paper's
    argument (steps along ``grad ||z||`` are wasted) from the change of softmax temperature that ``W z~`` also
    brings (``||z||`` of a standard model is far from 1).

  Accuracy is always that of the model itself (its logits) on the adversarial images. Within a seed the three
  objectives start from the same random noise, so the comparisons are paired per image. PGD-1..PGD-K are read off
  one PGD-K run (the iterates of PGD-K are those of PGD-k for k < K; checked against separate runs on a batch).

Statistics: mean +- sd over seeds; FN minus no FN per seed with a paired t-test (seeds - 1 dof) and its 95 % t
interval; per image, pooled over seeds, McNemar's exact test and a normal 95 % interval of the paired difference
(this one treats the seeds' images as independent pairs, so it ignores model-to-model variation).

    cd benchmarks && python study_fn_attack.py [--seeds 0,1,2] [--epochs 2] [--width 16] [--n 10000] [--eps 0.1]
        [--steps 5] [--out results] [--name study_fn_attack] [--work results/study_fn_attack/runs]

Trained models and per-image results are cached under ``--work``; a rerun skips what is there. A section of the
Markdown report headed ``## Interpretation`` (written by hand) is kept when the report is regenerated.
The reports in benchmarks/results: the defaults (study_fn_attack.*) and
``--eps 0.05 --n 2000 --name study_fn_attack_eps0.05`` (a smaller radius, the same models).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from _common import device_name, fmnist, write_markdown
from _stats import mcnemar_exact, paired_t, pm
from _stats import sd as _sd
from torch import nn

from art_he.attacks.train_time import pgd, project
from art_he.data import dataset_info, load_dataset
from art_he.heads import normalize_rows
from art_he.models import build_model
from art_he.runs import load_run, make_classifier, save_run
from art_he.schedules import make_scheduler
from art_he.trainers import ATTrainer

HERE = Path(__file__).resolve().parent
DATASET = "fashion-mnist"
OBJECTIVES = {
    "logits": "CE(W z + b, y): model logits, no FN",
    "fn": "CE(W z~, y): FN, no bias (Eq. 12)",
    "fn_bias": "CE(W z~ + b, y): FN, bias kept",
    "fn_rescaled": "CE(sg(||z||) W z~ + b, y): FN direction at the logits' scale (sg: no gradient)",
}
COMPARISONS = (("fn", "logits"), ("fn_bias", "logits"), ("fn_rescaled", "logits"))
#: Table 7 of the paper (WRN-34-10, CIFAR-10, eps 8/255): accuracy (%) without / with FN in the objective
PAPER = {"pgd1": (67.09, 62.89), "pgd2": (50.37, 33.75)}


class StandardTrainer(ATTrainer):
    """Standard training: clean cross-entropy on the project's epoch loop (no attack, no clean re-forward)."""

    clean_forward = False

    def perturb(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return x

    def compute_loss(self, x, x_adv, y):
        out = self.train_forward(x)
        return F.cross_entropy(out, y), out, out


def model_tag(seed: int, args) -> str:
    """What names a trained model in the cache: width, epochs, LR, batch size and seed."""
    return f"w{args.width}-e{args.epochs}-lr{args.lr:g}-b{args.batch_size}-s{seed}"


def train(seed: int, args) -> tuple[nn.Module, dict]:
    """The standard model of ``seed`` (trained, or loaded from ``--work``), with its training record."""
    run = Path(args.work) / f"standard-{model_tag(seed, args)}"
    record_path = run / "train.json"
    if record_path.is_file() and (run / "model.safetensors").is_file():
        model, _, _ = load_run(run, device="cpu")
        return model.eval(), json.loads(record_path.read_text())
    x, y = fmnist(60000)
    info = dataset_info(DATASET)
    torch.manual_seed(seed)
    model = build_model("small-cnn", in_channels=1, mean=info.mean, std=info.std, head="plain", width=args.width)
    classifier = make_classifier(model, DATASET, lr=args.lr, device="cpu")
    trainer = StandardTrainer(classifier, precision="fp32", seed=seed, verbose=False)
    steps = -(-len(x) // args.batch_size)
    scheduler = make_scheduler("multistep", classifier.optimizer, args.epochs, steps, args.lr)
    start = time.perf_counter()
    history = trainer.fit(x, y, batch_size=args.batch_size, nb_epochs=args.epochs, scheduler=scheduler)
    train_s = time.perf_counter() - start
    config = {"dataset": DATASET, "model": "small-cnn", "head": "plain", "model_kwargs": {"width": args.width},
              "framework": "standard (clean CE, benchmarks/study_fn_attack.py)", "epochs": args.epochs,
              "batch_size": args.batch_size, "lr": args.lr, "momentum": 0.9, "weight_decay": 5e-4,
              "schedule": "multistep", "seed": seed, "n_train": len(x)}
    save_run(run, model, config)
    record = {"train_s": round(train_s, 1), "history": history}
    record_path.write_text(json.dumps(record, indent=2))
    return model.eval(), record


class Probe:
    """``x -> (logits, z)``: the model's logits and the input ``z`` of its final ``nn.Linear`` (forward hook)."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.linear = [m for m in model.modules() if isinstance(m, nn.Linear)][-1]
        self.linear.register_forward_hook(self._grab)
        self.z: torch.Tensor | None = None

    def _grab(self, module, inputs, output) -> None:
        self.z = inputs[0]

    def __call__(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.model(x)
        return logits, self.z

    def objective_logits(self, name: str, logits: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        if name == "logits":
            return logits
        out = normalize_rows(z) @ self.linear.weight.t()
        if name == "fn_rescaled":  # the logits' value; the gradient loses its component along z (radial)
            out = out * z.detach().norm(dim=1, keepdim=True)
        return out + self.linear.bias if name in ("fn_bias", "fn_rescaled") else out


def attack_batch(probe: Probe, x, y, noise, objective: str, eps: float, eps_step: float, steps: int) -> np.ndarray:
    """Correct (bool, ``(steps + 1, B)``) of the model on every PGD iterate ``x_0`` (random start) .. ``x_steps``.

    ``pgd`` evaluates the loss at ``x_0 .. x_{steps-1}``; the loss function records the model's predictions there,
    and the last iterate is classified after the attack.
    """
    seen: list[torch.Tensor] = []

    def loss_fn(outputs, target):
        logits, z = outputs
        seen.append((logits.detach().argmax(1) == target).cpu())
        return F.cross_entropy(probe.objective_logits(objective, logits, z), target)

    x_adv = pgd(probe, x, y, loss_fn, eps=eps, eps_step=eps_step, max_iter=steps, noise=noise)
    with torch.no_grad():
        seen.append((probe(x_adv)[0].argmax(1) == y).cpu())
    return torch.stack(seen).numpy()


def check_trajectory(probe: Probe, x, y, noise, eps: float, steps: int) -> None:
    """The iterates read off one PGD-K run are the outputs of separate PGD-k runs (same start, k < K)."""
    for objective in OBJECTIVES:
        traj = attack_batch(probe, x, y, noise, objective, eps, eps / 4, steps)
        for k in sorted({1, 2, steps - 1} - {0}):
            x_k = pgd(probe, x, y, lambda o, t, obj=objective: F.cross_entropy(probe.objective_logits(obj, *o), t),
                      eps=eps, eps_step=eps / 4, max_iter=k, noise=noise)
            with torch.no_grad():
                separate = (probe(x_k)[0].argmax(1) == y).numpy()
            if not np.array_equal(separate, traj[k]):
                raise RuntimeError(f"trajectory check failed: {objective} PGD-{k}")


def gradient_diagnostics(probe: Probe, x, y, noise, eps: float) -> dict:
    """At the random start ``x_0``: per objective, the share of images whose input gradient is exactly 0 and the
    mean softmax probability of the top class of the objective's logits (its "temperature"); the share of pixels
    where the gradient's sign with FN equals the one without FN (the direction of the first PGD step); mean
    ``||z||`` and mean ``||W_l||``."""
    x0 = project(x + eps * (2 * noise - 1), x, eps, (0.0, 1.0)).requires_grad_(True)
    signs, out = {}, {}
    for objective in OBJECTIVES:
        logits, z = probe(x0)
        obj_logits = probe.objective_logits(objective, logits, z)
        (grad,) = torch.autograd.grad(F.cross_entropy(obj_logits, y), x0)
        signs[objective] = grad.sign().flatten(1)
        out[f"zero_grad_{objective}"] = float((signs[objective] == 0).all(1).float().mean())
        out[f"top_prob_{objective}"] = float(obj_logits.detach().softmax(1).max(1).values.mean())
    for a, b in COMPARISONS:
        out[f"sign_agree_{a}_vs_{b}"] = float((signs[a] == signs[b]).float().mean())
    out["z_norm"] = float(z.detach().norm(dim=1).mean())
    out["w_norm"] = float(probe.linear.weight.detach().norm(dim=1).mean())
    return out


def evaluate_seed(model: nn.Module, seed: int, x: torch.Tensor, y: torch.Tensor, args) -> dict:
    """Per-image correctness ``{attack: {objective: bool array}}`` and diagnostics of one model (cached)."""
    tag = f"{model_tag(seed, args)}-n{len(x)}-k{args.steps}-eps{args.eps:g}"
    path = Path(args.work) / f"eval-{tag}.npz"
    meta_path = path.with_suffix(".json")
    if path.is_file() and meta_path.is_file():
        with np.load(path) as data:
            correct = {key: data[key] for key in data.files}
        return {"correct": correct, **json.loads(meta_path.read_text())}
    probe = Probe(model)
    generator = torch.Generator().manual_seed(10_000 + seed)
    start = time.perf_counter()
    parts: dict[str, list[np.ndarray]] = {}
    diag_parts = []
    for i in range(0, len(x), args.batch_eval):
        xb, yb = x[i : i + args.batch_eval], y[i : i + args.batch_eval]
        noise = torch.rand(xb.shape, generator=generator)  # one start, shared by every objective and attack
        if i == 0:
            check_trajectory(probe, xb[:200], yb[:200], noise[:200], args.eps, args.steps)
            diag_parts.append(gradient_diagnostics(probe, xb, yb, noise, args.eps))
        with torch.no_grad():
            parts.setdefault("clean", []).append((probe(xb)[0].argmax(1) == yb).numpy())
        for objective in OBJECTIVES:
            traj = attack_batch(probe, xb, yb, noise, objective, args.eps, args.eps / 4, args.steps)
            for k in range(args.steps + 1):
                parts.setdefault(f"pgd{k}/{objective}", []).append(traj[k])
            fgsm_like = attack_batch(probe, xb, yb, noise, objective, args.eps, args.eps, 1)
            parts.setdefault(f"pgd1_step_eps/{objective}", []).append(fgsm_like[1])
    correct = {key: np.concatenate(v) for key, v in parts.items()}
    meta = {"eval_s": round(time.perf_counter() - start, 1), "diagnostics": diag_parts[0],
            "diagnostics_n": min(args.batch_eval, len(x))}
    np.savez_compressed(path, **correct)
    meta_path.write_text(json.dumps(meta, indent=2))
    return {"correct": correct, **meta}


# -- statistics ------------------------------------------------------------------------------------------------


def summarise(results: dict[int, dict], attacks: list[str]) -> dict:
    seeds = sorted(results)
    n = len(results[seeds[0]]["correct"]["clean"])
    cells: dict[str, dict] = {}
    clean = [100 * results[s]["correct"]["clean"].mean() for s in seeds]
    cells["clean"] = {"per_seed": clean, "mean": float(np.mean(clean)), "sd": _sd(clean)}
    for attack in attacks:
        for objective in OBJECTIVES:
            acc = [100 * results[s]["correct"][f"{attack}/{objective}"].mean() for s in seeds]
            cells[f"{attack}/{objective}"] = {"per_seed": acc, "mean": float(np.mean(acc)), "sd": _sd(acc)}
    tests: dict[str, dict] = {}
    for attack in attacks:
        for with_fn, without in COMPARISONS:
            a = [results[s]["correct"][f"{attack}/{without}"] for s in seeds]
            w = [results[s]["correct"][f"{attack}/{with_fn}"] for s in seeds]
            diffs = [100 * (int(wi.sum()) - int(ai.sum())) / n for ai, wi in zip(a, w)]  # exact ties stay ties
            # b: fooled only by the attack with FN (right under the no-FN attack); c: fooled only without FN
            b = [int((ai & ~wi).sum()) for ai, wi in zip(a, w)]
            c = [int((~ai & wi).sum()) for ai, wi in zip(a, w)]
            total, bs, cs = n * len(seeds), sum(b), sum(c)
            d = (cs - bs) / total
            se = math.sqrt(max(bs + cs - (bs - cs) ** 2 / total, 0.0)) / total
            tests[f"{attack}/{with_fn}-{without}"] = {
                "seeds": paired_t(diffs) | {"per_seed": diffs},
                "images": {"b_fooled_only_with_fn": bs, "c_fooled_only_without_fn": cs, "per_seed_b": b,
                           "per_seed_c": c, "pairs": total,
                           "diff": 100 * d, "ci95": [100 * (d - 1.96 * se), 100 * (d + 1.96 * se)],
                           "p_mcnemar_exact": mcnemar_exact(bs, cs)},
            }
    return {"cells": cells, "tests": tests}


# -- output ----------------------------------------------------------------------------------------------------

LABELS = {"logits": "(a) no FN: CE(Wz+b, y)", "fn": "(b) FN: CE(Wz~, y), Eq. 12",
          "fn_bias": "(c) FN + bias: CE(Wz~+b, y)",
          "fn_rescaled": "(d) FN direction, logits' scale: CE(sg(||z||) Wz~+b, y)"}
SHORT = {"logits": "(a)", "fn": "(b)", "fn_bias": "(c)", "fn_rescaled": "(d)"}
COLORS = {"logits": "tab:blue", "fn": "tab:red", "fn_bias": "tab:orange", "fn_rescaled": "tab:green"}


def _p(p: float | None) -> str:
    if p is None:
        return "–"
    if p == 0:
        return "< 1e-300"  # below the smallest double: scipy's binomial tail underflows
    return f"{p:.1e}" if p < 1e-3 else f"{p:.3f}"


def _eq(p: float | None) -> str:
    """``= 0.012`` or ``< 1e-300``: a p-value after its name."""
    text = _p(p)
    return text if text.startswith("<") else f"= {text}"


def _ci(ci: list[float] | None) -> str:
    return f"[{ci[0]:+.2f}, {ci[1]:+.2f}]" if ci else "–"


def attack_label(attack: str) -> str:
    if attack == "pgd1_step_eps":
        return "PGD-1, step eps (FGSM-like)"
    k = int(attack[3:])
    return "random start only (PGD-0)" if k == 0 else f"PGD-{k}"


def verdict(test: dict) -> str:
    """Plain words for one comparison: which attack is stronger, and how firmly the data say so."""
    seeds, images = test["seeds"], test["images"]
    ci, p_img = seeds["ci95"], images["p_mcnemar_exact"]
    if seeds["mean"] == 0 and images["diff"] == 0:
        return "identical"
    side = "stronger (lower accuracy)" if seeds["mean"] < 0 else "weaker (higher accuracy)"
    if ci is not None and (ci[0] > 0 or ci[1] < 0) and p_img < 0.05:
        return f"the FN attack is {side}; the seed interval excludes 0"
    if p_img < 0.05 and ci is None:
        return f"the FN attack is {side} per image (McNemar); one seed, no interval over seeds"
    if p_img < 0.05:
        return f"the FN attack is {side} per image (McNemar), but the 95 % interval over seeds includes 0"
    return "no difference detected"


def markdown(payload: dict, attacks: list[str]) -> str:
    s, cells, tests = payload["settings"], payload["summary"]["cells"], payload["summary"]["tests"]
    seeds = ", ".join(map(str, s["seeds"]))
    lines = [
        "# Does FN in the attack objective make PGD more efficient? (Table 7, Fashion-MNIST)",
        "",
        "Generated by `benchmarks/study_fn_attack.py`. Standard (clean cross-entropy, no adversarial training, no FN "
        f"inside) small CNN, width {s['width']}, {s['epochs']} epochs on all {s['n_train']} training images, one "
        f"model per seed ({seeds}). Linf PGD, eps = {s['eps']:g}, step eps/4 = {s['eps'] / 4:g} unless stated, one "
        f"uniform random start, the same for every objective; first {s['n']} test images. Accuracy (%) of the model "
        "itself on the adversarial images (lower = stronger attack), mean ± sd over seeds. z: input of the final "
        "linear layer, z~ = z/||z||, sg: stop-gradient. The paper's Table 7 (WRN-34-10, CIFAR-10, eps 8/255, "
        "no FN → FN) is beside for reference; its setting differs (data set, model, eps).",
        "",
        "| Attack | " + " | ".join(LABELS[o] for o in OBJECTIVES) + " | paper: no FN → FN |",
        "| --- | " + " | ".join("---:" for _ in OBJECTIVES) + " | ---: |",
        f"| clean | {pm(cells['clean'])} | " + " | ".join("" for _ in list(OBJECTIVES)[1:]) + " | |",
    ]
    for attack in attacks:
        paper = PAPER.get(attack)
        ref = f"{paper[0]:.2f} → {paper[1]:.2f} ({paper[1] - paper[0]:+.2f})" if paper else ""
        lines.append(f"| {attack_label(attack)} | " + " | ".join(pm(cells[f"{attack}/{o}"]) for o in OBJECTIVES)
                     + f" | {ref} |")
    lines += [
        "",
        "Effect of FN: accuracy with the FN objective minus accuracy with the model's logits, in percentage points "
        "(negative = the FN attack is stronger). Over seeds: mean, 95 % t-interval and paired t-test "
        f"({len(s['seeds']) - 1} dof). Per image, pooled over seeds: b = images fooled only by the FN attack, c = "
        "fooled only by the logits attack, exact McNemar test, and a normal 95 % interval of (c − b)/pairs that "
        "treats every (image, model) pair as independent (it ignores model-to-model variation: trust the seed "
        "interval for that).",
        "",
        "| Attack | FN objective | diff (pp), seeds | 95% CI, seeds | p t-test | b | c | diff (pp), images [95% CI] "
        "| p McNemar | reading |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for attack in attacks:
        if attack == "pgd0":
            continue
        for with_fn, without in COMPARISONS:
            t = tests[f"{attack}/{with_fn}-{without}"]
            sd, im = t["seeds"], t["images"]
            lines.append(
                f"| {attack_label(attack)} | {SHORT[with_fn]} − {SHORT[without]} | {sd['mean']:+.2f} | "
                f"{_ci(sd['ci95'])} | {_p(sd['p'])} | {im['b_fooled_only_with_fn']} | "
                f"{im['c_fooled_only_without_fn']} | {im['diff']:+.2f} {_ci(im['ci95'])} | "
                f"{_p(im['p_mcnemar_exact'])} | {verdict(t)} |")
    diag = payload["diagnostics"]
    lines += [
        "",
        f"Diagnostics at the random start (first {payload['diagnostics_n']} test images, mean over seeds): "
        f"mean ||z|| = {diag['z_norm']:.2f}, mean ||W_l|| = {diag['w_norm']:.2f}; mean top softmax probability of "
        "the objective's logits: " + ", ".join(f"{SHORT[o]} {diag[f'top_prob_{o}']:.3f}" for o in OBJECTIVES)
        + "; images with an all-zero input gradient: "
        + ", ".join(f"{SHORT[o]} {100 * diag[f'zero_grad_{o}']:.2f} %" for o in OBJECTIVES)
        + "; pixels whose gradient sign (the first PGD step's direction) agrees with (a)'s: "
        + ", ".join(f"{SHORT[a]} {100 * diag[f'sign_agree_{a}_vs_{b}']:.1f} %" for a, b in COMPARISONS) + ".",
        "",
    ]
    tr, rt = payload["training"], payload["runtime"]
    lines += [
        "Models: final-epoch training accuracy "
        + ", ".join(f"seed {k} {100 * v['final_epoch']['clean_acc']:.2f} %" for k, v in tr.items())
        + f"; clean test accuracy {pm(cells['clean'])} %.",
        "",
        f"Wall-clock runtime ({payload['device']}, a 2-core machine shared with other jobs): training "
        f"{', '.join(f'{t:.0f}' for t in rt['train_s_first_run'])} s per model, attacks "
        f"{', '.join(f'{t:.0f}' for t in rt['eval_s_first_run'])} s per model "
        f"(all objectives and attacks on {s['n']} images).",
        "",
    ]
    if payload.get("findings"):
        lines += ["## Summary (generated from the numbers)", "", payload["findings"], ""]
    return "\n".join(lines)


def figure(payload: dict, steps: int, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cells, tests, s = payload["summary"]["cells"], payload["summary"]["tests"], payload["settings"]
    ks = np.arange(steps + 1)
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5))
    n_obj = len(OBJECTIVES)
    for j, objective in enumerate(OBJECTIVES):
        off = (j - (n_obj - 1) / 2) * 0.05
        mean = [cells[f"pgd{k}/{objective}"]["mean"] for k in ks]
        sd = [cells[f"pgd{k}/{objective}"]["sd"] or 0 for k in ks]
        left.errorbar(ks + off, mean, yerr=sd, marker="o", ms=4, capsize=3, color=COLORS[objective],
                      label=LABELS[objective])
        fg = cells[f"pgd1_step_eps/{objective}"]
        left.errorbar(1.3 + off, fg["mean"], yerr=fg["sd"] or 0, marker="s", mfc="white", capsize=3,
                      color=COLORS[objective], linestyle="none")
    left.plot([], [], "s", mfc="white", color="grey", label="PGD-1 with step eps (FGSM-like), drawn at x = 1.3")
    left.axhline(cells["clean"]["mean"], color="grey", linestyle=":", label="clean accuracy")
    left.set_xlabel(f"PGD steps (step eps/4 = {s['eps'] / 4:g}; 0 = uniform random start only)")
    left.set_ylabel("test accuracy under attack (%)")
    left.set_title(f"Standard small CNN on Fashion-MNIST, Linf eps = {s['eps']:g}\n"
                   f"mean ± sd over {len(s['seeds'])} seeds, {s['n']} test images", fontsize=10)
    left.set_xticks(ks)
    left.set_ylim(0, 100)
    left.legend(fontsize=7.5, loc="upper right", bbox_to_anchor=(1, 0.895))  # below the clean line
    left.grid(alpha=0.3)
    n_cmp = len(COMPARISONS)
    for j, (with_fn, without) in enumerate(COMPARISONS):
        off = (j - (n_cmp - 1) / 2) * 0.08
        means, lo, hi = [], [], []
        for k in ks[1:]:
            t = tests[f"pgd{k}/{with_fn}-{without}"]["seeds"]
            ci = t["ci95"] or [t["mean"], t["mean"]]
            means.append(t["mean"])
            lo.append(t["mean"] - ci[0])
            hi.append(ci[1] - t["mean"])
        right.errorbar(ks[1:] + off, means, yerr=[lo, hi], marker="o", ms=4, capsize=3, color=COLORS[with_fn],
                       label=f"{SHORT[with_fn]} − {SHORT[without]}")
        t = tests[f"pgd1_step_eps/{with_fn}-{without}"]["seeds"]
        ci = t["ci95"] or [t["mean"], t["mean"]]
        right.errorbar(1.3 + off, t["mean"], yerr=[[t["mean"] - ci[0]], [ci[1] - t["mean"]]], marker="s",
                       mfc="white", capsize=3, color=COLORS[with_fn], linestyle="none")
    for attack, (no_fn, fn) in PAPER.items():
        k = int(attack[3:])
        right.plot(k, fn - no_fn, marker="*", ms=11, color="black", linestyle="none",
                   label="paper, Table 7 (CIFAR-10 WRN, eps 8/255)" if k == 1 else None)
    right.plot([], [], "s", mfc="white", color="grey", label="PGD-1 with step eps, drawn at x = 1.3")
    right.axhline(0, color="black", linewidth=0.8)
    right.set_xlabel("PGD steps (step eps/4)")
    right.set_ylabel("accuracy with FN objective − with logits (pp)")
    right.set_title(f"Effect of FN in the objective, paired per seed: mean, 95 % t-interval ({len(s['seeds']) - 1} "
                    "dof)\nbelow 0 = the FN attack is stronger", fontsize=10)
    right.set_xticks(ks[1:])
    right.legend(fontsize=8)
    right.grid(alpha=0.3)
    fig.text(0.5, 0.01, "z: input of the final linear layer, z~ = z/||z||, sg: stop-gradient (value kept, no "
             "gradient). All objectives start from the same uniform random point; accuracy is the model's own.\n"
             "Paper stars: a different data set, model and eps (reference only).", ha="center", fontsize=8)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    fig.savefig(path, dpi=130)
    plt.close(fig)


def findings(summary: dict, seeds: list[int]) -> str:
    """The answer in words, from the numbers: PGD-1 and PGD-2 (the paper's rows), FN per Eq. 12 and its variants."""
    tests = summary["tests"]
    parts = []
    for attack in ("pgd1", "pgd2"):
        for with_fn, without in COMPARISONS:
            t = tests[f"{attack}/{with_fn}-{without}"]
            sd, im = t["seeds"], t["images"]
            parts.append(f"{attack_label(attack)}, {SHORT[with_fn]} − {SHORT[without]}: {sd['mean']:+.2f} pp "
                         f"(95 % CI over {len(seeds)} seeds {_ci(sd['ci95'])}, t-test p {_eq(sd['p'])}; McNemar "
                         f"p {_eq(im['p_mcnemar_exact'])}) — {verdict(t)}.")
    return "\n".join(f"- {p}" for p in parts)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--width", type=int, default=16, help="small-cnn width (default %(default)s)")
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--n", type=int, default=10000, help="first N test images (default %(default)s)")
    p.add_argument("--eps", type=float, default=dataset_info(DATASET).eps, help="Linf radius (default %(default)s)")
    p.add_argument("--steps", type=int, default=5, help="largest PGD-k (default %(default)s)")
    p.add_argument("--batch-eval", type=int, default=500)
    p.add_argument("--out", default=str(HERE / "results"), help="folder of the .json, .md and .png")
    p.add_argument("--name", default="study_fn_attack", help="file name stem of the outputs")
    p.add_argument("--json", default=None, help="JSON path (default OUT/NAME.json)")
    p.add_argument("--work", default=str(HERE / "results" / "study_fn_attack" / "runs"),
                   help="cache of trained models and per-image results")
    args = p.parse_args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    seeds = [int(s) for s in args.seeds.split(",")]
    Path(args.work).mkdir(parents=True, exist_ok=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    x_np, y_np = load_dataset(DATASET, train=False)
    x, y = torch.as_tensor(x_np[: args.n], dtype=torch.float32), torch.as_tensor(y_np[: args.n]).long()
    results, records = {}, {}
    for seed in seeds:
        model, record = train(seed, args)
        records[seed] = {"train_s": record["train_s"], "final_epoch": record["history"][-1]}
        print(f"[{time.strftime('%H:%M:%S')}] seed {seed}: trained ({record['train_s']} s), "
              f"train acc {record['history'][-1]['clean_acc']}", flush=True)
        results[seed] = evaluate_seed(model, seed, x, y, args)
        print(f"[{time.strftime('%H:%M:%S')}] seed {seed}: attacked ({results[seed]['eval_s']} s)", flush=True)
    attacks = [f"pgd{k}" for k in range(args.steps + 1)] + ["pgd1_step_eps"]
    summary = summarise(results, attacks)
    diagnostics = {key: float(np.mean([results[s]["diagnostics"][key] for s in seeds]))
                   for key in results[seeds[0]]["diagnostics"]}
    train_s = [records[s]["train_s"] for s in seeds]
    eval_s = [results[s]["eval_s"] for s in seeds]
    payload = {
        "study": "Table 7 mechanism (i): FN in the attack objective against a standard model",
        "device": device_name(torch.device("cpu")),
        "settings": {"dataset": DATASET, "model": "small-cnn", "width": args.width, "epochs": args.epochs,
                     "n_train": 60000, "lr": args.lr, "batch_size": args.batch_size, "seeds": seeds, "n": len(x),
                     "eps": args.eps, "eps_step": args.eps / 4, "random_starts": 1, "objectives": OBJECTIVES},
        "paper_table7": {k: {"without_fn": v[0], "with_fn": v[1]} for k, v in PAPER.items()},
        "training": records,
        "summary": summary,
        "findings": findings(summary, seeds),
        "diagnostics": diagnostics,
        "diagnostics_per_seed": {s: results[s]["diagnostics"] for s in seeds},
        "diagnostics_n": results[seeds[0]]["diagnostics_n"],
        "runtime": {"train_s_first_run": train_s, "eval_s_first_run": eval_s,
                    "total_s_first_run": round(sum(train_s) + sum(eval_s), 1)},
    }
    json_path = Path(args.json) if args.json else out / f"{args.name}.json"
    json_path.write_text(json.dumps(payload, indent=2) + "\n")
    shown = [a for a in attacks if a not in ("pgd4",)] if args.steps == 5 else attacks
    text = markdown(payload, shown)
    text = write_markdown(out / f"{args.name}.md", text)
    figure(payload, args.steps, out / f"{args.name}.png")
    print(text)


if __name__ == "__main__":
    main()
