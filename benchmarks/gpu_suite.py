"""art_he on one GPU, in one command and one table (issue 35). Run it first whenever a GPU is lent.

    python benchmarks/gpu_suite.py                # one CUDA GPU; sized to finish within 8 minutes on one H200
    python benchmarks/gpu_suite.py --tiny         # the same code at toy sizes on the CPU, under a minute (tested)
    python benchmarks/gpu_suite.py --update-plan  # also rewrite art_he/throughput.json, the speeds of
                                                  # `art-he reproduce --dry-run`, from this run's training rows

On the lent machine: put the project, ART and pyautoattack on ``PYTHONPATH`` and Fashion-MNIST's four ``.gz`` files
in ``$ART_HE_DATA`` (see ../shared/docs/gpu.md). Writes ``OUT/gpu_suite.json`` (every figure, the GPU's name,
torch's version, the date, errors with their tracebacks) and ``OUT/gpu_suite.md`` (the table), OUT defaulting to
``benchmarks/results``; ``--tiny`` writes ``gpu_suite_tiny.*`` there instead, so that a CPU run never takes the
place of GPU results. A section that fails is reported (one line, and its traceback in the JSON) and the
others still run; the exit status is then 1.

Sections, each a group of rows of the one table:

1. ``train``: PGD-10 training throughput at batch 128 (eps 8/255, step 2/255) on synthetic CIFAR-shaped batches of
   WRN-34-10 and PreAct ResNet-18, and the quickstart's small CNN on 28x28 (PGD-7, eps 0.1): fp32; bf16 +
   channels_last; bf16 + channels_last + the captured step (``capture="cuda-graph"``; ``"fx"`` on the CPU); with
   ``--compile`` also torch.compile. Plain, HE and m-HE heads. images/s, step time, model-FLOPs utilisation
   (``2 K + 3`` forward passes' FLOPs per step, counted by torch, against the bf16 matmul peak measured here),
   peak memory of the trainer (its weights, optimizer, activations and recording). Every trainer of a model
   is timed interleaved with the others (repeats in rotating order); the ``vs plain`` column is the HE/plain or
   m-HE/plain step time ratio of the same path.
2. ``art``: ART's ``AdversarialTrainerMadryPGD`` against ``PGDATTrainer`` on the same PGD-10 epoch of 2,560 images
   (PreAct ResNet-18; fp32 for both, then our defaults), interleaved. (A captured step is recorded once per ``fit``:
   on one short epoch its recording would weigh more than its replays, so section 1 and 3 time it instead.)
3. ``table3``: the Table 3 FastAT+HE row end to end, ``python -m art_he train --recipe table3-fast-he`` on 50,000
   Fashion-MNIST images written as CIFAR-10 files (30 epochs), with the captured step (eagerly if that fails):
   wall time of the command and training time.
4. ``eval``: evaluation throughput of that model (robust on that learnable CIFAR-shaped set): PGD-20 (1,000
   images) and standard AutoAttack (500 images) through ``art_he.evaluation.evaluate``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from _common import device_name, interleaved, median, sync

from art_he import HEPyTorchClassifier
from art_he.data.convert import fashion_as_cifar10
from art_he.models import build_model
from art_he.reproduce.estimate import THROUGHPUT_FILE, model_forward_flops
from art_he.trainers import PGDATTrainer

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
HEADS = ("plain", "he", "mhe")


@dataclass(frozen=True)
class Workload:
    """One model's PGD training step: ``max_iter`` steps of ``eps_step`` in the Linf ball ``eps``."""

    label: str
    model: str
    input_shape: tuple[int, int, int]
    eps: float
    eps_step: float
    max_iter: int
    model_kwargs: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Sizes:
    workloads: tuple[Workload, ...]
    batch: int
    warmup: int  # untimed steps per trainer: more than capture.WARMUP, so that a captured path is replaying
    repeats: int  # interleaved rounds
    steps: int  # steps per trainer per round
    art_images: int
    art_model: str
    art_max_iter: int
    table3_images: tuple[int, int]  # training and test images written as CIFAR-10 files
    table3_flags: tuple[str, ...]  # on top of the recipe
    eval_n: int
    autoattack_n: int
    eval_batch: int
    max_steps: int | None  # cap on the attacks' steps (tiny only)


CIFAR = dict(input_shape=(3, 32, 32), eps=8 / 255, eps_step=2 / 255)
QUICKSTART = dict(input_shape=(1, 28, 28), eps=0.1, eps_step=0.025)
FULL = Sizes(
    workloads=(Workload("WRN-34-10", "wrn-34-10", max_iter=10, **CIFAR),
               Workload("PreAct ResNet-18", "preact-resnet18", max_iter=10, **CIFAR),
               Workload("small CNN (quickstart)", "small-cnn", max_iter=7, model_kwargs={"width": 16}, **QUICKSTART)),
    batch=128, warmup=4, repeats=5, steps=2, art_images=2560, art_model="preact-resnet18", art_max_iter=10,
    table3_images=(50_000, 10_000), table3_flags=(), eval_n=1000, autoattack_n=500, eval_batch=500, max_steps=None,
)
TINY = Sizes(
    workloads=(Workload("WRN-10-1 (tiny)", "wrn-10-1", max_iter=1, **CIFAR),
               Workload("small CNN (tiny)", "small-cnn", max_iter=1, model_kwargs={"width": 4}, **QUICKSTART)),
    batch=8, warmup=3, repeats=2, steps=1, art_images=32, art_model="wrn-10-1", art_max_iter=1,
    table3_images=(192, 32), table3_flags=("--epochs", "1", "--model", "wrn-10-1", "--batch-size", "64"),
    eval_n=16, autoattack_n=4, eval_batch=16, max_steps=1,
)


@dataclass(frozen=True)
class Path_:
    """One way of running the training step."""

    name: str
    precision: str
    channels_last: bool
    heads: tuple[str, ...] = HEADS
    capture: str = "off"
    compile: bool = False

    @property
    def plan_path(self) -> str:
        return "compile" if self.compile else "eager" if self.capture == "off" else self.capture

    def options(self) -> dict:
        return {"precision": self.precision, "channels_last": self.channels_last, "capture": self.capture,
                "compile": self.compile}


def paths(device: torch.device, with_compile: bool) -> list[Path_]:
    capture = "cuda-graph" if device.type == "cuda" else "fx"
    out = [Path_("fp32", "fp32", False, ("plain",)), Path_("bf16 + channels_last", "bf16", True),
           Path_(f"bf16 + channels_last + {capture}", "bf16", True, capture=capture)]
    if with_compile:
        out.append(Path_("bf16 + channels_last + compile", "bf16", True, ("plain", "he"), compile=True))
    return out


class Suite:
    """Collects the table's rows and the errors of the sections that failed."""

    def __init__(self, device: torch.device, sizes: Sizes, args) -> None:
        self.device, self.sizes, self.args = device, sizes, args
        self.rows: list[dict] = []
        self.errors: list[dict] = []
        self.peak_tflops = measure_peak_tflops(device, tiny=args.tiny)

    def attempt(self, section: str, what: str, fn: Callable[[], object]):
        """``fn()``; a failure is recorded (one line printed, the traceback kept) and ``None`` returned."""
        say(f"[{section}] {what} ...")
        try:
            return fn()
        except Exception as error:  # noqa: BLE001 - a failed section must not cost the others their results
            line = " ".join(f"{type(error).__name__}: {error}".split())[:500]
            self.errors.append({"section": section, "what": what, "error": line, "traceback": traceback.format_exc()})
            say(f"[{section}] {what} FAILED: {line}")
            return None

    def row(self, section: str, model: str, head: str, setting: str, *, images_per_s: float | None = None,
            time_s: float | None = None, mfu: float | None = None, peak_gib: float | None = None, note: str = "",
            **extra) -> dict:
        row = {"section": section, "model": model, "head": head, "setting": setting,
               "images_per_s": _round(images_per_s, 1), "time_s": _round(time_s, 4), "mfu": _round(mfu, 4),
               "peak_gib": _round(peak_gib, 2), "note": note, **extra}
        self.rows.append(row)
        return row


# -- section 1: training throughput, HE against plain ------------------------------------------------------------


def make_trainer(workload: Workload, head: str, device: torch.device, max_iter: int | None = None,
                 **options) -> PGDATTrainer:
    torch.manual_seed(0)
    model = build_model(workload.model, in_channels=workload.input_shape[0], head=head, **workload.model_kwargs)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    classifier = HEPyTorchClassifier(model, None, workload.input_shape, 10, optimizer, clip_values=(0.0, 1.0),
                                     device=device)
    return PGDATTrainer(classifier, eps=workload.eps, eps_step=workload.eps_step,
                        max_iter=workload.max_iter if max_iter is None else max_iter, seed=0, verbose=False,
                        **options)


def train_section(suite: Suite, workload: Workload) -> None:
    device, sizes = suite.device, suite.sizes
    gen = torch.Generator(device=device).manual_seed(0)
    x = torch.rand((sizes.batch, *workload.input_shape), generator=gen, device=device)
    y = torch.randint(0, 10, (sizes.batch,), generator=gen, device=device)
    flops_per_step = (2 * workload.max_iter + 3) * sizes.batch * model_forward_flops(
        workload.model, workload.input_shape, **workload.model_kwargs)
    trainers: dict[tuple[str, str], tuple[Path_, PGDATTrainer, torch.Tensor, float | None]] = {}
    for path in paths(device, suite.args.compile):
        for head in path.heads:
            def build(path=path, head=head):
                before = memory_allocated(device)
                trainer = make_trainer(workload, head, device, **path.options())
                xb = x.contiguous(memory_format=torch.channels_last) if trainer.channels_last else x
                for _ in range(sizes.warmup):
                    trainer.train_batch(xb, y)
                sync(device)
                peak = None
                if device.type == "cuda":
                    peak = (torch.cuda.max_memory_allocated(device) - before) / 2**30
                    torch.cuda.reset_peak_memory_stats(device)
                return path, trainer, xb, peak

            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            built = suite.attempt("train", f"{workload.label} {head} {path.name}: build and warm up", build)
            if built is not None:
                trainers[path.name, head] = built

    def steps(trainer: PGDATTrainer, xb: torch.Tensor) -> Callable[[], None]:
        return lambda: [trainer.train_batch(xb, y) for _ in range(sizes.steps)]

    times = suite.attempt("train", f"{workload.label}: {len(trainers)} trainers interleaved", lambda: interleaved(
        {key: steps(t, xb) for key, (_, t, xb, _) in trainers.items()}, sizes.repeats, device))
    if times is None:
        return
    step_s = {key: median(v) / sizes.steps for key, v in times.items()}
    for (name, head), (path, trainer, xb, peak) in trainers.items():
        seconds = step_s[name, head]
        plain = step_s.get((name, "plain"))
        ratio = f"{head}/plain {seconds / plain:.3f}" if plain and head != "plain" else ""
        finite = bool(torch.isfinite(trainer.train_batch(xb, y)[0]).item())
        suite.row("train", workload.label, head, name, images_per_s=sizes.batch / seconds, time_s=seconds,
                  mfu=flops_per_step / seconds / (suite.peak_tflops * 1e12), peak_gib=peak,
                  note=ratio if finite else "loss not finite", model_name=workload.model,
                  input_shape=list(workload.input_shape), max_iter=workload.max_iter, path=path.plan_path,
                  precision=path.precision, channels_last=path.channels_last,
                  vs_plain=round(seconds / plain, 4) if plain and head != "plain" else None,
                  step_times_s=[round(t / sizes.steps, 5) for t in times[name, head]])
    trainers.clear()
    if device.type == "cuda":
        torch.cuda.empty_cache()


# -- section 2: ART's trainer against ours -----------------------------------------------------------------------


def art_section(suite: Suite) -> None:
    from art.defences.trainer import AdversarialTrainerMadryPGD
    from art.estimators.classification import PyTorchClassifier

    from art_he.devices import art_estimator

    device, sizes = suite.device, suite.sizes
    workload = Workload(sizes.art_model, sizes.art_model, max_iter=sizes.art_max_iter, **CIFAR)
    rng = np.random.default_rng(0)
    x = rng.random((sizes.art_images, 3, 32, 32), dtype=np.float32)
    y = rng.integers(0, 10, sizes.art_images)
    torch.manual_seed(0)
    base = build_model(workload.model, in_channels=3)
    art_model = build_model(workload.model, in_channels=3)
    art_model.load_state_dict(base.state_dict())
    art_classifier = art_estimator(PyTorchClassifier, art_model, torch.nn.CrossEntropyLoss(), (3, 32, 32), 10,
                                   optimizer=torch.optim.SGD(art_model.parameters(), lr=0.01, momentum=0.9,
                                                             weight_decay=5e-4),
                                   clip_values=(0.0, 1.0), device=device)
    art = AdversarialTrainerMadryPGD(art_classifier, nb_epochs=1, batch_size=sizes.batch, eps=workload.eps,
                                     eps_step=workload.eps_step, max_iter=workload.max_iter, num_random_init=1)
    ours = {"PGDATTrainer fp32": dict(precision="fp32", channels_last=False), "PGDATTrainer defaults": {}}
    trainers = {name: make_trainer(workload, "plain", device, **options) for name, options in ours.items()}
    for trainer in trainers.values():
        trainer.model.load_state_dict(base.state_dict())

    def epoch(trainer, n=None):
        return lambda: trainer.fit(x[:n], y[:n], batch_size=sizes.batch, nb_epochs=1)

    def art_epoch(n=None):
        return lambda: art.fit(x[:n], y[:n])

    warm = 2 * sizes.batch
    interleaved({"ART": art_epoch(warm), **{k: epoch(t, warm) for k, t in trainers.items()}}, 1, device)
    times = interleaved({"ART": art_epoch(), **{k: epoch(t) for k, t in trainers.items()}}, 2, device)
    art_s = median(times["ART"])
    suite.row("art", workload.label, "plain", "ART AdversarialTrainerMadryPGD (fp32)",
              images_per_s=sizes.art_images / art_s, time_s=art_s,
              note=f"one PGD-{workload.max_iter} epoch of {sizes.art_images:,} images")
    for name, trainer in trainers.items():
        seconds = median(times[name])
        suite.row("art", workload.label, "plain", f"{name} ({trainer.precision})",
                  images_per_s=sizes.art_images / seconds, time_s=seconds, note=f"ART / ours {art_s / seconds:.2f}x")


# -- sections 3 and 4: the Table 3 row end to end, and evaluation on its model ---------------------------------------


def table3_run(suite: Suite, data: Path, run: Path, capture: str) -> Path:
    """``python -m art_he train --recipe table3-fast-he`` on ``data``; one row (wall and training time)."""
    sizes, device = suite.sizes, suite.device
    cmd = [sys.executable, "-m", "art_he", "train", "--recipe", "table3-fast-he", "--data-dir", str(data),
           "--no-verify-data", "--out", str(run), "--device", str(device), "--capture", capture, "--overwrite",
           "--quiet", *sizes.table3_flags]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise RuntimeError(f"exit {done.returncode}: {last}")
    epochs = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
    train_s = sum(m["time_s"] for m in epochs)
    images = sizes.table3_images[0] * len(epochs)
    last = epochs[-1]
    suite.row("table3", "PreAct ResNet-18" if not sizes.table3_flags else "table3 (tiny)", "he",
              f"art-he train --recipe table3-fast-he --capture {capture}", images_per_s=images / train_s,
              time_s=wall, note=f"{len(epochs)} epochs of {sizes.table3_images[0]:,} images: wall {wall:.0f} s "
                                f"(training {train_s:.0f} s); last epoch clean {last['clean_acc']:.3f}, FGSM "
                                f"{last['adv_acc']:.3f}; paper 11.5 min", training_s=train_s, wall_s=wall,
              command=" ".join(cmd[1:]))
    return run


def eval_section(suite: Suite, run: Path, data: Path) -> None:
    from art_he.data import load_dataset
    from art_he.evaluation import evaluate
    from art_he.runs import load_run

    sizes = suite.sizes
    _, classifier, config = load_run(run, device=suite.device)
    x, y = load_dataset("cifar10", train=False, data_dir=data, verify=False)
    for attack, n in (("pgd20", sizes.eval_n), ("autoattack", sizes.autoattack_n)):
        def measure(attack=attack, n=n):
            start = time.perf_counter()
            report = evaluate(classifier, x, y, attacks=attack, n=n, eps=8 / 255, eps_step=2 / 255, sweep=(),
                              batch_size=sizes.eval_batch, max_steps=sizes.max_steps, dataset="cifar10")
            seconds = time.perf_counter() - start
            suite.row("eval", config["model"], config["head"], f"evaluate(attacks={attack!r}, n={n})",
                      images_per_s=n / seconds, time_s=seconds,
                      note=f"clean {report.accuracy('clean'):.3f}, {attack} {report.accuracy(attack):.3f}")

        suite.attempt("eval", f"{attack} on {n} images", measure)


# -- measurement helpers ---------------------------------------------------------------------------------------------


def measure_peak_tflops(device: torch.device, tiny: bool) -> float:
    """Dense bf16 matmul TFLOP/s measured here (the denominator of the model-FLOPs utilisation)."""
    n = 8192 if device.type == "cuda" else (256 if tiny else 2048)
    a = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    b = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    sync(device)
    reps = 20 if device.type == "cuda" else 3
    start = time.perf_counter()
    for _ in range(reps):
        a @ b
    sync(device)
    return 2 * n**3 * reps / (time.perf_counter() - start) / 1e12


def memory_allocated(device: torch.device) -> int:
    return torch.cuda.memory_allocated(device) if device.type == "cuda" else 0


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _round(value, digits):
    return None if value is None else round(float(value), digits)


# -- results ---------------------------------------------------------------------------------------------------------


def markdown(payload: dict) -> str:
    meta = payload["meta"]
    lines = [f"# GPU suite: {meta['device_name']}", "",
             f"{meta['date']}, torch {meta['torch']} (CUDA {meta['cuda']}), {meta['mode']} sizes, "
             f"{meta['wall_s']:.0f} s in all; bf16 matmul peak measured here {meta['peak_tflops']:.1f} TFLOP/s "
             f"(the MFU denominator); load average {', '.join(f'{v:.2f}' for v in meta['loadavg'])}.", "",
             "| section | model | head | setting | images/s | time (s) | MFU | peak GiB | note |",
             "| --- | --- | --- | --- | ---: | ---: | ---: | ---: | --- |"]

    def cell(value, fmt):
        return "" if value is None else format(value, fmt)

    for r in payload["rows"]:
        lines.append(f"| {r['section']} | {r['model']} | {r['head']} | {r['setting']} | "
                     f"{cell(r['images_per_s'], ',.1f')} | {cell(r['time_s'], '.4g')} | "
                     f"{cell(None if r['mfu'] is None else 100 * r['mfu'], '.1f')}{'' if r['mfu'] is None else ' %'} "
                     f"| {cell(r['peak_gib'], '.2f')} | {r['note']} |")
    if payload["errors"]:
        lines += ["", "Failed (tracebacks in the JSON):", ""]
        lines += [f"- [{e['section']}] {e['what']}: {e['error']}" for e in payload["errors"]]
    return "\n".join(lines) + "\n"


def plan_table(payload: dict) -> dict:
    """``art_he/throughput.json`` (the speeds of ``art-he reproduce --dry-run``) from a suite's training rows."""
    meta = payload["meta"]
    rows = [{"model": r["model_name"], "input_shape": r["input_shape"], "framework": "pgd", "max_iter": r["max_iter"],
             "head": r["head"], "precision": r["precision"], "channels_last": r["channels_last"], "path": r["path"],
             "images_per_s": r["images_per_s"]}
            for r in payload["rows"] if r["section"] == "train" and r["images_per_s"]]
    return {"gpu": meta["device_name"], "date": meta["date"][:10], "torch": meta["torch"],
            "source": "benchmarks/gpu_suite.py: PGDATTrainer.train_batch on synthetic batches, median of interleaved "
                      "repeats", "batch": meta["sizes"]["batch"], "rows": rows}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tiny", action="store_true", help="toy sizes on the CPU (under a minute; what the test runs)")
    p.add_argument("--device", default=None, help="default: cuda, or cpu with --tiny")
    p.add_argument("--out", default=str(RESULTS), help="folder of gpu_suite.json and .md (default benchmarks/results)")
    p.add_argument("--work", default=None, help="folder for the data and the Table 3 run (default: a temporary one)")
    p.add_argument("--compile", action="store_true", help="also time torch.compile in section 1 (minutes more)")
    p.add_argument("--skip", default="", help="comma-separated sections to leave out: train, art, table3, eval")
    p.add_argument("--update-plan", action="store_true", help="rewrite art_he/throughput.json from the train rows")
    p.add_argument("--plan-file", default=str(THROUGHPUT_FILE), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    from art_he.devices import parse_device

    device = parse_device(args.device or ("cpu" if args.tiny else "cuda"))
    if args.update_plan and (args.tiny or device.type != "cuda"):
        p.error("--update-plan takes GPU measurements only (not --tiny, not the CPU)")
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    sizes = TINY if args.tiny else FULL
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    start = time.perf_counter()
    suite = Suite(device, sizes, args)
    if "train" not in skip:
        for workload in sizes.workloads:
            train_section(suite, workload)
    if "art" not in skip:
        suite.attempt("art", "ART AdversarialTrainerMadryPGD against PGDATTrainer", lambda: art_section(suite))
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.work or tmp)
        if not {"table3", "eval"} <= skip:
            data = suite.attempt("table3", "Fashion-MNIST written as CIFAR-10 files", lambda: fashion_as_cifar10(
                work / "fashion-cifar10", n_train=sizes.table3_images[0], n_test=sizes.table3_images[1])[0].parent)
            run = None
            if data is not None and "table3" not in skip:
                capture = "cuda-graph" if device.type == "cuda" else "fx"
                run = suite.attempt("table3", f"art-he train --recipe table3-fast-he --capture {capture}",
                                    lambda: table3_run(suite, data, work / "table3-fast-he", capture))
                if run is None:
                    run = suite.attempt("table3", "art-he train --recipe table3-fast-he (eager)",
                                        lambda: table3_run(suite, data, work / "table3-fast-he", "off"))
            if run is not None and "eval" not in skip:
                suite.attempt("eval", "load the Table 3 model", lambda: eval_section(suite, run, data))
    payload = {
        "meta": {"device": str(device), "device_name": device_name(device), "torch": torch.__version__,
                 "cuda": torch.version.cuda, "date": datetime.datetime.now(datetime.timezone.utc).isoformat(
                     timespec="seconds"), "mode": "tiny" if args.tiny else "full", "host": platform.node(),
                 "cpus": os.cpu_count(), "loadavg": list(os.getloadavg()), "peak_tflops": round(suite.peak_tflops, 2),
                 "wall_s": round(time.perf_counter() - start, 1), "sizes": asdict(sizes), "skipped": sorted(skip),
                 "compile": args.compile},
        "rows": suite.rows, "errors": suite.errors,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = "gpu_suite_tiny" if args.tiny else "gpu_suite"
    (out / f"{stem}.json").write_text(json.dumps(payload, indent=1, allow_nan=False) + "\n")
    text = markdown(payload)
    (out / f"{stem}.md").write_text(text)
    if args.update_plan:
        Path(args.plan_file).write_text(json.dumps(plan_table(payload), indent=1, allow_nan=False) + "\n")
    print(text)
    return 1 if suite.errors else 0


if __name__ == "__main__":
    sys.exit(main())
