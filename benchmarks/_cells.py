"""One training cell of the studies of issue 13: PGD-AT on the full Fashion-MNIST training set for one arm and seed,
learning curve and final per-image results, cached so that studies share cells and survive an interruption.

A cell trains the dataset's small CNN with an arm's head (:data:`ARMS`) through the trainer's own ``fit`` (one call
per stretch between two :data:`CHECKPOINTS`, the scheduler shared across the calls, the validation that ``fit``
runs after each call: clean and PGD-10 accuracy on the first ``--val-n`` test images), saves the model as an
``art-he`` run folder, then records per-image correctness, clean and under PGD-20 (CE, step eps/4, one random start)
on the first ``--test-n`` test images. All arms of a seed share the initial body weights and the batch order. The
cache key (:func:`cell_name`) holds every setting. ``--autoattack N`` adds standard AutoAttack on the first N test
images to the finished cells, from their run folders, stage by stage (:func:`autoattack_stage`), cached beside
each cell (``<cell>.aa<N>.json``); a cell whose run folder is gone (only the JSON is committed) is retrained first
and attacked only if it reproduces its cached per-image results exactly (:func:`restore_run`); training is
bit-reproducible on one machine but not across CPUs, so ``--replace-unreproduced`` replaces the cached results with
the retrained model's instead.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import time
from dataclasses import dataclass, field
from functools import cache, partial
from pathlib import Path

import numpy as np
import torch
from _stats import holm, mcnemar_exact, paired_t, pm, sd
from torch import nn

from art_he.config import TrainConfig
from art_he.data import dataset_info, load_dataset
from art_he.defaults import WEIGHT_NORM, WEIGHT_NORMS
from art_he.heads import find_head
from art_he.models import build_model
from art_he.runs import MODEL_FILE, load_run, make_classifier, run_config, save_run
from art_he.schedules import make_scheduler
from art_he.trainers import FRAMEWORKS, PGDATTrainer

HERE = Path(__file__).resolve().parent
DATASET = "fashion-mnist"
CELLS = HERE / "results" / "study_convergence" / "cells"  # study 6 made the first cells; the others reuse them
TRAIN_STEPS = 3  # PGD steps of the training attack of study 6, whose cells the other studies reuse
AA_STAGES = ("apgd-ce", "apgd-t", "fab-t", "square", "raw apgd-ce")  # the last for hypersphere heads only
CHECKPOINTS = (10, 25, 50, 75, 100, 150, 200, 250, 300, 350, 400)


@dataclass(frozen=True)
class Arm:
    """A model to train: the head (``"plain"`` or ``"he"``), options of the HE head, and whether the LR warms up."""

    head: str
    head_kwargs: dict = field(default_factory=dict)
    warmup: bool = False


ARMS = {
    "plain": Arm("plain"),
    "he": Arm("he"),  # s = 15, m = 0.2: the package's defaults
    "plain+warmup": Arm("plain", warmup=True),
    "he+warmup": Arm("he", warmup=True),
    # the ablation (study 4): no angular margin but in full HE; s = 15 where FN removes the feature norm, s = 1 for WN
    # alone, where ||z|| still sets the logits' scale (the authors, too, name s "the s in FN"; s = 15 on top of ||z||
    # diverged within 3 steps: loss 282)
    "fn": Arm("he", {"weight_norm": "none", "margin": 0.0}),
    "wn": Arm("he", {"feature_norm": False, "margin": 0.0, "scale": 1.0}),
    "fn+wn": Arm("he", {"margin": 0.0}),
    # issue 34: the package's HE with the weight normalisation every cell before it used (inside the graph)
    "he-differentiable": Arm("he", {"weight_norm": "differentiable"}),
}


def arm_spec(arm: str) -> Arm:
    """An arm of :data:`ARMS`, or ``he-s<S>-m<M>``: HE with scale S and margin M (study 3's grid)."""
    if arm in ARMS:
        return ARMS[arm]
    match = re.fullmatch(r"he-s([0-9.]+)-m([0-9.]+)", arm)
    if match is None:
        raise SystemExit(f"unknown arm {arm!r}; choose from {list(ARMS)} or he-s<scale>-m<margin>")
    return Arm("he", {"scale": float(match[1]), "margin": float(match[2])})


def he_arm(scale: float, margin: float) -> str:
    """The arm name of HE with ``scale`` and ``margin`` (the named arms where they exist, so that cells are shared)."""
    named = {(15.0, 0.2): "he", (15.0, 0.0): "fn+wn"}
    return named.get((float(scale), float(margin)), f"he-s{scale:g}-m{margin:g}")


def add_cell_arguments(parser: argparse.ArgumentParser) -> None:
    """The options that define a cell (and its cache key), plus where the cells live and how to share the work."""
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--weight-norm", choices=WEIGHT_NORMS, default=WEIGHT_NORM,
                        help="the HE arms' weight normalisation where the arm does not fix it (the cells before issue "
                             "34: differentiable)")
    parser.add_argument("--hidden-norm", action=argparse.BooleanOptionalAction, default=True,
                        help="BatchNorm in the small CNN's hidden layer (the cells before issue 34: --no-hidden-norm)")
    parser.add_argument("--steps", type=int, default=469, help="SGD steps (469: one epoch of 60,000 at batch 128)")
    parser.add_argument("--warmup", type=float, default=0.1, help="warm-up length in epochs of the +warmup arms")
    parser.add_argument("--eps", type=float, default=0.1)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--val-n", type=int, default=1000)
    parser.add_argument("--test-n", type=int, default=10000, help="test images of the final PGD-20 evaluation")
    parser.add_argument("--autoattack", type=int, default=0,
                        help="add standard AutoAttack on the first N test images to each cell (0: none)")
    add_aa_stages_argument(parser)
    parser.add_argument("--replace-unreproduced", action="store_true",
                        help="when a cell retrained for AutoAttack does not reproduce its cached results (another "
                             "CPU sums floats in another order), replace them with the new ones instead of stopping")
    parser.add_argument("--report-only", action="store_true",
                        help="train nothing and run no attack: report the cells and AutoAttack stages there are")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu", help="cpu or cuda (recorded in each cell)")
    parser.add_argument("--work", default=str(CELLS), help="cache of finished cells (JSON and run folder)")


def study_parser(doc: str, name: str) -> argparse.ArgumentParser:
    """A study's command line: the cells' options, ``--out`` and ``--name`` (the report's folder and file stem)."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    add_cell_arguments(parser)
    parser.add_argument("--out", default=str(HERE / "results"))
    parser.add_argument("--name", default=name)
    return parser


def settings_of(args, **extra) -> dict:
    """What a study's report records of its command line (not where files go), plus ``extra``."""
    skip = ("out", "work", "threads", "report_only", "aa_stages")
    return {**{k: v for k, v in vars(args).items() if k not in skip}, **extra}


def model_text(settings: dict) -> str:
    """The cells' network and HE weight normalisation, as a report's header names them (reports of before issue 34
    recorded neither: they used the small CNN without hidden BatchNorm and WN inside the graph)."""
    hidden = settings.get("hidden_norm", False)
    wn = settings.get("weight_norm", "differentiable")
    era = "" if hidden else " (the model of the studies before issue 34)"
    return (f"{settings['model']} {'with' if hidden else 'without'} BatchNorm in its hidden layer{era}, HE weight "
            f"normalisation {wn}")


def weight_norm_of(arm: str, args) -> str | None:
    """The arm's weight normalisation: its own, or ``--weight-norm`` (``None`` for a plain head)."""
    spec = arm_spec(arm)
    return None if spec.head == "plain" else spec.head_kwargs.get("weight_norm", args.weight_norm)


def cell_name(arm: str, seed: int, train_steps: int, framework: str, args) -> str:
    """The cache key of a cell (PGD-AT cells carry no framework suffix, CPU cells no device suffix: the float sums of
    another device differ, so its cells are kept apart). The cells from before issue 34 (no hidden BatchNorm, WN
    inside the graph) carry no suffix for either; newer ones ``-hn`` and ``-wn<mode>`` where they differ."""
    wn = weight_norm_of(arm, args)
    legacy_wn = arm_spec(arm).head_kwargs.get("weight_norm", "differentiable")
    return (f"{arm}-s{seed}-n{args.steps}-w{args.warmup:g}-k{train_steps}-lr{args.lr:g}-v{args.val_n}"
            f"-t{args.test_n}" + ("" if framework == "pgd" else f"-{framework}")
            + ("" if args.device == "cpu" else f"-{args.device.split(':')[0]}")
            + ("-hn" if args.hidden_norm else "") + ("" if wn in (None, legacy_wn) else f"-wn{wn}"))


def build(arm: str, seed: int, args) -> nn.Module:
    """The dataset's model with the arm's head; the body's initial weights depend on the seed only."""
    info = dataset_info(DATASET)
    spec = arm_spec(arm)
    head_kwargs = dict(spec.head_kwargs)
    if spec.head != "plain":
        head_kwargs["weight_norm"] = weight_norm_of(arm, args)
    torch.manual_seed(seed)
    return build_model(info.model, in_channels=1, mean=info.mean, std=info.std, head=spec.head,
                       hidden_norm=args.hidden_norm, **head_kwargs)


def head_weight(model: nn.Module) -> torch.Tensor:
    head = find_head(model)
    return (head if head is not None else model.linear).weight


def norms(model: nn.Module) -> dict:
    """Frobenius norms of the head's weight and of the last hidden layer (the ``nn.Linear`` that feeds the head)."""
    hidden = [m for m in model.features if isinstance(m, nn.Linear)][-1]
    return {"head_norm": float(head_weight(model).detach().norm()), "hidden_norm": float(hidden.weight.detach().norm())}


def load_data(args) -> dict:
    x, y = load_dataset(DATASET, train=True)
    xt, yt = load_dataset(DATASET, train=False)
    return {"x": x, "y": y, "xv": xt[: args.val_n], "yv": yt[: args.val_n], "xt": xt[: args.test_n],
            "yt": yt[: args.test_n]}


def train_cell(arm: str, seed: int, train_steps: int, framework: str, data: dict, args, run_dir: Path) -> dict:
    """Train one arm for one seed by ``framework`` (``"pgd"``: PGD-AT, ``"trades"``, ``"alp"``: their defaults)
    with PGD-``train_steps`` in training, an evaluation after every checkpoint step;
    save the model as a run folder in ``run_dir``; return the curve and the final model's per-image results."""
    spec = arm_spec(arm)
    x, y, xv, yv = data["x"], data["y"], data["xv"], data["yv"]
    model = build(arm, seed, args)
    classifier = make_classifier(model, DATASET, lr=args.lr, device=args.device)
    trainer = FRAMEWORKS[framework](classifier, eps=args.eps, max_iter=train_steps, precision="fp32", seed=seed,
                                    verbose=False)
    steps_per_epoch = -(-len(x) // args.batch_size)
    warmup_steps = int(np.ceil(args.warmup * steps_per_epoch)) if spec.warmup else 0
    scheduler = make_scheduler("constant", classifier.optimizer, 1, steps_per_epoch, warmup_steps=warmup_steps)
    order = np.random.default_rng(seed).permutation(len(x))  # one pass, the same batches for every arm
    points = [s for s in CHECKPOINTS if s < args.steps] + [args.steps]
    curve = [{"step": 0, **trainer.evaluate(xv, yv), **norms(model), "lr": 0.0}]
    start, done = time.perf_counter(), 0
    for step in points:
        idx = order[done * args.batch_size : step * args.batch_size]
        history = trainer.fit(x[idx], y[idx], validation_data=(xv, yv), batch_size=args.batch_size, nb_epochs=1,
                              scheduler=scheduler)
        m = history[-1]
        curve.append({"step": step, "clean_acc": m["val_clean_acc"], "adv_acc": m["val_adv_acc"], **norms(model),
                      "train_loss": m["loss"], "lr": m["lr"]})
        done = step
    train_s = time.perf_counter() - start
    cfg = TrainConfig(dataset=DATASET, framework=framework, head=spec.head, scale=spec.head_kwargs.get("scale"),
                      margin=spec.head_kwargs.get("margin"), weight_norm=weight_norm_of(arm, args),
                      model_kwargs={"hidden_norm": args.hidden_norm},
                      epochs=1, lr=args.lr, schedule="constant", warmup=args.warmup if spec.warmup else 0.0,
                      seed=seed, eps=args.eps, max_iter=train_steps, batch_size=args.batch_size,
                      precision="fp32").resolved()
    save_run(run_dir, model, {**run_config(cfg), "steps": args.steps})  # art-he eval reads it (study 5)
    final = final_eval(trainer, data, args)
    return {"arm": arm, "seed": seed, "framework": framework, "device": args.device, "train_steps": train_steps,
            "warmup_steps": warmup_steps, "curve": curve, "train_s": round(train_s, 1),
            "model_digest": file_digest(run_dir / MODEL_FILE), **final}


def file_digest(path: Path) -> str:
    """SHA-256 (first 16 hex digits) of a file: the cell's JSON names its weights, which git does not keep."""
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def final_eval(trainer: PGDATTrainer, data: dict, args) -> dict:
    """Per-image correctness, clean and under PGD-20 (the trainer's attack, CE, step eps/4, one random start), on
    the first ``--test-n`` test images."""
    generator = torch.Generator(device=trainer.device).manual_seed(10_000)
    clean, pgd20 = trainer.correct(data["xt"], data["yt"], 500, generator=generator, eps=args.eps,
                                   eps_step=args.eps / 4, max_iter=20)
    return {"correct": {"clean": clean.tolist(), "pgd20": pgd20.tolist()}}


def autoattack_stage(run: Path, stage: str, done: dict, n: int, eps: float, device: str) -> list[bool] | None:
    """One stage of standard AutoAttack at ``eps`` on the first ``n`` test images, on the model of the run folder
    ``run``: the attack ``stage`` on the images that survived the stages in ``done`` (``{stage: per-image
    robust}``), as ``art_he.evaluation.run_autoattack`` runs them one after another (the same settings and seeds,
    and for HE APGD-CE on the raw cosines last), so that the stages together give its result exactly and a CPU run
    can stop between them. Per-image robustness after the stage; ``None`` where it does not apply (the raw pass of
    a model without a hypersphere head)."""
    from art_he.evaluation import run_autoattack
    from art_he.evaluation.views import objective_for

    _, classifier, _ = load_run(run, device=device)
    raw = stage.startswith("raw ")
    if raw and not objective_for(classifier).hypersphere:
        return None
    x, y = load_dataset(DATASET, train=False)
    earlier = [done[p] for p in AA_STAGES[: AA_STAGES.index(stage)] if done[p] is not None]
    robust = np.asarray(earlier[-1] if earlier else np.ones(n), bool)
    idx = np.flatnonzero(robust)
    if len(idx):
        result = run_autoattack(classifier, x[:n][idx], y[:n][idx], eps=eps, seed=0, raw_apgd=False,
                                attacks=(stage.removeprefix("raw "),), logits=not raw)
        robust[idx] = np.asarray(result.correct, bool)
    return robust.tolist()


def add_aa_stages_argument(parser: argparse.ArgumentParser) -> None:
    """``--aa-stages``: the AutoAttack stages a run may do (parsed by :func:`aa_stages`)."""
    parser.add_argument("--aa-stages", default=",".join(AA_STAGES),
                        help="the AutoAttack stages to run now (each runs once the earlier ones are done)")


def aa_stages(text: str) -> list[str]:
    """The stages named in ``--aa-stages`` (comma-separated), checked against :data:`AA_STAGES`."""
    stages = text.split(",")
    if unknown := set(stages) - set(AA_STAGES):
        raise SystemExit(f"unknown AutoAttack stages {sorted(unknown)}; choose from {', '.join(AA_STAGES)}")
    return stages


def aa_path(cell: Path, n: int, eps_tag: str = "") -> Path:
    """Where the AutoAttack stages on the first ``n`` test images of the cell whose JSON is ``cell`` are cached:
    ``<cell>.aa<n>.json`` at the training eps, ``<cell>.aa<n><eps_tag>.json`` at another eps (study 5)."""
    return cell.with_suffix(f".aa{n}{eps_tag}.json")


def autoattack_cells(paths: list[Path], n: int, eps: float, device: str, stages=AA_STAGES, eps_tag: str = "") -> None:
    """Run the missing AutoAttack ``stages`` at ``eps`` of the cells at ``paths`` (stage by stage over all cells, so
    that the gradient attacks are done everywhere first), each recorded in :func:`aa_path` under a lock."""
    for stage in (s for s in AA_STAGES if s in stages):
        for path in paths:
            cached = aa_path(path, n, eps_tag)
            lock = cached.with_suffix(".lock")
            if not claim(lock):
                continue
            try:
                aa = json.loads(cached.read_text()) if cached.is_file() else {"n": n, "eps": eps, "robust": {},
                                                                              "time_s": {}}
                if stage in aa["robust"] or not all(p in aa["robust"] for p in AA_STAGES[: AA_STAGES.index(stage)]):
                    continue  # done, or an earlier stage is not (its worker was stopped): a later run does it
                print(f"AutoAttack {stage} at eps {eps:g} on {n} images: {path.stem}", flush=True)
                start = time.perf_counter()
                aa["robust"][stage] = autoattack_stage(path.with_suffix(""), stage, aa["robust"], n, eps, device)
                aa["time_s"][stage] = round(time.perf_counter() - start, 1)
                cached.write_text(json.dumps(aa))
                robust = aa["robust"][stage]
                print(f"  {'n/a' if robust is None else f'robust {np.mean(robust):.3f}'} in {aa['time_s'][stage]} s",
                      flush=True)
            finally:
                lock.unlink(missing_ok=True)


def autoattack_results(aa: dict) -> dict:
    """Per-image correctness under the finished stages: ``apgd`` (APGD-CE then APGD-T on the logits) and, once all
    stages are done, ``autoattack``."""
    robust = aa["robust"]
    out = {"apgd": robust["apgd-t"]} if "apgd-t" in robust else {}
    if all(stage in robust for stage in AA_STAGES):
        out["autoattack"] = next(robust[s] for s in reversed(AA_STAGES) if robust[s] is not None)
    return out


def claim(lock: Path) -> bool:
    """Take ``lock`` for this process (a file holding its pid), unless a live process holds it: workers started side
    by side on the same machine share the missing cells without doing one twice, and a lock left by a killed worker
    is taken over."""
    try:
        fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        try:
            os.kill(int(lock.read_text() or 0), 0)
            return False
        except (ProcessLookupError, ValueError):
            lock.unlink(missing_ok=True)
            return claim(lock)
    with os.fdopen(fd, "w") as f:
        f.write(str(os.getpid()))
    return True


def run_cells(wanted: list[tuple], args) -> dict[tuple, dict] | None:
    """Train the missing cells ``(arm, seed, train_steps[, framework])`` (framework default ``"pgd"``) that no other
    worker holds and, with ``--autoattack N``, add AutoAttack to those that lack it; then return all of them keyed
    as given (AutoAttack merged into ``correct`` where it is there), or ``None`` (after saying which are missing)
    while some cells are not trained yet. Start one worker per core."""
    torch.set_num_threads(args.threads)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    full = {c: (*c, "pgd")[:4] for c in wanted}
    path = {c: work / f"{cell_name(*full[c], args)}.json" for c in wanted}
    data = cache(partial(load_data, args))  # loaded once, and only by a worker that trains a cell
    for cell in wanted:
        if not path[cell].is_file() and not args.report_only:
            _once(path[cell], f"training {' '.join(map(str, full[cell]))}",
                  lambda c=cell: train_cell(*full[c], data(), args, path[c].with_suffix("")))
    if args.autoattack and not args.report_only:
        for cell in wanted:
            if path[cell].is_file():
                restore_run(path[cell], full[cell], data, args)
        autoattack_cells([path[c] for c in wanted if (path[c].with_suffix("") / MODEL_FILE).is_file()],
                         args.autoattack, args.eps, args.device, stages=aa_stages(args.aa_stages))
    missing = [" ".join(map(str, full[c])) for c in wanted if not path[c].is_file()]
    if missing:
        print(f"not all cells are there yet (missing: {', '.join(missing)}); no report written")
        return None
    cells = {c: json.loads(path[c].read_text()) for c in wanted}
    for c, cell in cells.items():
        cached = aa_path(path[c], args.autoattack)
        if args.autoattack and cached.is_file():
            aa = autoattack_results(json.loads(cached.read_text()))
            if aa:
                cell["correct"].update(aa, pgd20_aa=cell["correct"]["pgd20"][: args.autoattack])
    return cells


def restore_run(path: Path, cell: tuple, data, args) -> None:
    """Retrain the cell cached at ``path`` if its run folder is gone (the JSON is committed, the folder with its weights
    is not), unless another worker holds its lock, and keep the model only if it reproduces the cached per-image
    results exactly (clean and PGD-20 on every test image) and, where the JSON names it, the weights' digest, so that
    AutoAttack attacks the model the JSON describes; with
    ``--replace-unreproduced`` the new results replace the cached ones instead (and any AutoAttack cached for them
    is dropped). ``data`` loads the training data."""
    run, lock = path.with_suffix(""), path.with_suffix(".lock")
    if (run / MODEL_FILE).is_file() or not claim(lock):
        return
    try:
        print(f"retraining {' '.join(map(str, cell))}: its run folder is gone", flush=True)
        start = time.perf_counter()
        fresh = train_cell(*cell, data(), args, run)
        record = json.loads(path.read_text())
        cached = record["correct"]
        if fresh["correct"] == cached and record.get("model_digest", fresh["model_digest"]) == fresh["model_digest"]:
            print(f"  reproduced exactly in {time.perf_counter() - start:.0f} s", flush=True)
            return
        if not args.replace_unreproduced:
            shutil.rmtree(run)
            raise SystemExit(f"{run.name}: the retrained model does not reproduce the cached per-image results; "
                             f"delete {path.name} to train the cell afresh, or pass --replace-unreproduced")
        change = ", ".join(f"{k} {np.mean(cached[k]):.4f} -> {np.mean(v):.4f}" for k, v in fresh["correct"].items())
        print(f"  not reproduced ({change}); cached results replaced", flush=True)
        fresh["provenance"] = provenance(cached, REPLACED_REASON, time.strftime("%Y-%m-%d"))
        path.write_text(json.dumps(fresh))
        for stale in path.parent.glob(f"{path.stem}.aa*.json"):
            stale.unlink()
    finally:
        lock.unlink(missing_ok=True)


REPLACED_REASON = ("retrained for AutoAttack: its run folder was gone, and the retrained model did not reproduce the "
                   "cached per-image results (another CPU sums floats in another order); --replace-unreproduced")


def digest(correct: dict) -> str:
    """SHA-256 (first 16 hex digits) of a cell's per-image results, as canonical JSON."""
    return hashlib.sha256(json.dumps(correct, sort_keys=True).encode()).hexdigest()[:16]


def provenance(original: dict, reason: str, date: str) -> dict:
    """What a replaced cell records of the results it replaced: their digest, why, and when."""
    return {"original_digest": digest(original), "reason": reason, "date": date}


def replaced_cells(cells: dict) -> list[str]:
    """The cells (``arm/seed``, with the framework where not PGD-AT) whose results replaced the originals."""
    return sorted(f"{c.get('framework', 'pgd')}/{c['arm']}/s{c['seed']}".removeprefix("pgd/")
                  for c in cells.values() if "provenance" in c)


def _once(path: Path, what: str, make) -> None:
    """Write ``make()`` as JSON to ``path`` unless it is there or another worker holds ``path``'s lock."""
    lock = path.with_suffix(".lock")
    if path.is_file() or not claim(lock):
        return
    try:
        if path.is_file():  # finished by another worker between the check and the claim
            return
        print(what, flush=True)
        start = time.perf_counter()
        path.write_text(json.dumps(make()))
        print(f"  done in {time.perf_counter() - start:.0f} s", flush=True)
    finally:
        lock.unlink(missing_ok=True)


# -- summaries ------------------------------------------------------------------------------------------------

ATTACK_LABELS = {"clean": "clean", "pgd20": "PGD-20", "pgd20_aa": "PGD-20 (AA images)", "apgd": "APGD-CE+T",
                 "autoattack": "AutoAttack"}


def summarise(cells: dict[tuple[str, int], dict], seeds: list[int], arms, comparisons) -> dict:
    """Per arm and checkpoint the curves' mean and sd over seeds; per comparison ``(a, b)`` and checkpoint the paired
    t-test of ``a - b`` over seeds; at the end per arm and attack the accuracy per seed, and per comparison the
    paired t-test over seeds and McNemar's exact test over the images pooled across seeds. ``cells`` are keyed
    ``(arm, seed)``."""
    steps = [p["step"] for p in cells[(arms[0], seeds[0])]["curve"]]
    replaced = replaced_cells({k: cells[k] for k in cells if k[0] in arms and k[1] in seeds})
    curves: dict = {}
    for arm in arms:
        curves[arm] = {}
        for key in ("clean_acc", "adv_acc", "head_norm", "hidden_norm"):
            table = np.array([[p[key] for p in cells[(arm, s)]["curve"]] for s in seeds], dtype=float)
            scale = 100.0 if key.endswith("acc") else 1.0
            curves[arm][key] = {"mean": (scale * table.mean(0)).tolist(),
                                "sd": (scale * table.std(0, ddof=1)).tolist() if len(seeds) > 1 else None}
    step_tests = {}
    for a, b in comparisons:
        for key in ("clean_acc", "adv_acc"):
            diffs = np.array([[100 * (pa[key] - pb[key]) for pa, pb in
                               zip(cells[(a, s)]["curve"], cells[(b, s)]["curve"])] for s in seeds])
            step_tests[f"{a}-{b}/{key}"] = [paired_t(diffs[:, i].tolist()) for i in range(len(steps))]
    final, final_tests = {}, {}
    attacks = [k for k in ATTACK_LABELS if any(k in c["correct"] for c in cells.values())]
    for arm in arms:
        final[arm] = {}
        for attack in (a for a in attacks if all(a in cells[(arm, s)]["correct"] for s in seeds)):
            acc = [100 * float(np.mean(cells[(arm, s)]["correct"][attack])) for s in seeds]
            final[arm][attack] = {"per_seed": acc, "mean": float(np.mean(acc)), "sd": sd(acc)}
    for a, b in comparisons:
        for attack in (k for k in attacks if k in final[a] and k in final[b]):
            diffs = [final[a][attack]["per_seed"][i] - final[b][attack]["per_seed"][i] for i in range(len(seeds))]
            ca = np.concatenate([np.asarray(cells[(a, s)]["correct"][attack], bool) for s in seeds])
            cb = np.concatenate([np.asarray(cells[(b, s)]["correct"][attack], bool) for s in seeds])
            p = mcnemar_exact(int((ca & ~cb).sum()), int((~ca & cb).sum()))
            final_tests[f"{a}-{b}/{attack}"] = {"seeds": paired_t(diffs), "mcnemar_p": p}
    return {"steps": steps, "curves": curves, "step_tests": step_tests, "final": final, "final_tests": final_tests,
            "attacks": attacks, "replaced": replaced}


def diff_text(test: dict) -> str:
    """``+d [lo, hi], p = ...`` of a paired t-test (just ``+d`` without an interval)."""
    ci = test["ci95"]
    text = f"{test['mean']:+.2f}"
    if ci is not None:
        text += f" [{ci[0]:+.2f}, {ci[1]:+.2f}], p = {test['p']:.2g}"
    return text


def plot_curves(ax, summary: dict, arms, key: str, colors: dict, dashed=()) -> None:
    """One line per arm of the learning curve ``key`` (mean over seeds, with a ± sd band); ``dashed`` arms dashed."""
    steps = np.array(summary["steps"], dtype=float)
    for arm in arms:
        c = summary["curves"][arm][key]
        mean = np.array(c["mean"])
        ax.plot(steps, mean, marker="o", ms=3, color=colors[arm], label=arm, ls="--" if arm in dashed else "-")
        if c["sd"]:
            sdv = np.array(c["sd"])
            ax.fill_between(steps, mean - sdv, mean + sdv, color=colors[arm], alpha=0.15, lw=0)
    ax.set_xlabel("SGD steps (batch 128)")
    ax.grid(alpha=0.3)


def final_table(summary: dict, arms, comparisons, n_autoattack: int = 0) -> list[str]:
    """Markdown lines: accuracy per arm and attack (mean ± sd), then each comparison's paired difference (– where
    an arm lacks an attack)."""
    attacks, final, tests = summary["attacks"], summary["final"], summary["final_tests"]
    lines = [""]
    if {"apgd", "autoattack"} & set(attacks):
        lines += [f"APGD-CE+T (AutoAttack's APGD-CE, then APGD-T on the survivors), AutoAttack (all of it) and "
                  f"PGD-20 (AA images): the first {n_autoattack:,} test images; – where not run yet.", ""]
    lines += ["| arm | " + " | ".join(ATTACK_LABELS[a] for a in attacks) + " |",
              "| --- | " + " | ".join("---:" for _ in attacks) + " |"]
    for arm in arms:
        lines.append(f"| {arm} | " + " | ".join(pm(final[arm][a]) if a in final[arm] else "–" for a in attacks) + " |")
    lines += ["", "| difference | " + " | ".join(ATTACK_LABELS[a] for a in attacks) + " |",
              "| --- | " + " | ".join("---:" for _ in attacks) + " |"]
    for a, b in comparisons:
        cells = [tests.get(f"{a}-{b}/{k}") for k in attacks]
        lines.append(f"| {a} − {b} | " + " | ".join(
            f"{diff_text(t['seeds'])}; McNemar p = {t['mcnemar_p']:.2g}" if t else "–" for t in cells) + " |")
    replaced = summary.get("replaced", [])
    lines += ["", f"Replaced cells: {len(replaced)} of the cells above were retrained for AutoAttack and their results "
                  "replaced (the `provenance` field of each cell's JSON gives the original results' digest, the reason "
                  "and the date)" + (f": {', '.join(replaced)}." if replaced else ".")]
    return lines


def multiple_comparisons(summary: dict, family: list[tuple[str, str, str]], name: str) -> list[str]:
    """Markdown lines: per metric the p-values (paired t over seeds) of a family of comparisons ``(row label, a, b)``
    picked from a grid, raw and Holm-adjusted within the family, and the comparisons whose adjusted p is < 0.05."""
    attacks = [a for a in ("clean", "pgd20", "apgd") if a in summary["attacks"]]
    tests = {k: [summary["final_tests"].get(f"{a}-{b}/{k}") for _, a, b in family] for k in attacks}
    raw = {k: [t["seeds"]["p"] if t else None for t in tests[k]] for k in attacks}
    adjusted = {k: holm(raw[k]) for k in attacks}
    lines = ["", f"Multiple comparisons, {name}: the {len(family)} comparisons form one family per metric; p is the "
                 "paired t-test over seeds, Holm its Holm-Bonferroni adjustment.", "",
             "| comparison | " + " | ".join(f"{ATTACK_LABELS[k]} p | {ATTACK_LABELS[k]} p (Holm)" for k in attacks)
             + " |", "| --- | " + " | ".join("---: | ---:" for _ in attacks) + " |"]
    for i, (row, _, _) in enumerate(family):
        cells = [f"{raw[k][i]:.2g} | {adjusted[k][i]:.2g}" if raw[k][i] is not None else "– | –" for k in attacks]
        lines.append(f"| {row} | " + " | ".join(cells) + " |")
    for k in attacks:
        kept = [f"{row} {tests[k][i]['seeds']['mean']:+.2f}" for i, (row, _, _) in enumerate(family)
                if adjusted[k][i] is not None and adjusted[k][i] < 0.05]
        verb = "survive" if len(kept) > 1 else "survives"
        lines.append(f"\n{ATTACK_LABELS[k]}: {', '.join(kept) if kept else 'no comparison'} {verb} the correction.")
    return lines


def run_study(args, study: str, arms, comparisons, markdown, figure) -> None:
    """A study of PGD-AT cells at :data:`TRAIN_STEPS`: train or read ``arms`` for ``--seeds``, then publish the report
    (``markdown`` and ``figure`` of the payload) once all cells are there."""
    from _common import device_name, publish

    seeds = [int(s) for s in args.seeds.split(",")]
    found = run_cells([(arm, s, TRAIN_STEPS) for s in seeds for arm in arms], args)
    if found is None:
        return
    cells = {(arm, s): cell for (arm, s, _), cell in found.items()}
    payload = {
        "study": study,
        "device": device_name(torch.device(args.device)),
        "settings": settings_of(args, seeds=seeds, train_steps=TRAIN_STEPS, model="small-cnn"),
        "summary": summarise(cells, seeds, arms, comparisons),
        "runtime": {f"{arm}/s{s}": cells[(arm, s)]["train_s"] for arm in arms for s in seeds},
    }
    publish(Path(args.out), args.name, payload, markdown, figure)


def main() -> None:
    """``python _cells.py --arms fn,wn --ks 1,3``: train cells ahead of the studies that report them."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    add_cell_arguments(parser)
    parser.add_argument("--arms", required=True, help=f"comma-separated: {', '.join(ARMS)} or he-s<S>-m<M>")
    parser.add_argument("--ks", default="3", help="PGD steps of the training attack, comma-separated")
    parser.add_argument("--framework", default="pgd", choices=("pgd", "alp", "trades"))
    args = parser.parse_args()
    arms = args.arms.split(",")
    for arm in arms:
        arm_spec(arm)
    seeds = [int(s) for s in args.seeds.split(",")]
    run_cells([(arm, s, int(k), args.framework) for k in args.ks.split(",") for s in seeds for arm in arms], args)


if __name__ == "__main__":
    main()
