"""``art-he reproduce table2|table10|table3``: train every row of one of the paper's CIFAR-10 tables from its
recipes, evaluate it and print the table beside the paper's numbers, with the differences.

Each row trains into ``OUT/<recipe>/`` (an ordinary run folder, see :mod:`art_he.runs`) and its evaluation is
cached in ``OUT/<recipe>/eval.json``. A rerun skips finished rows whose configuration matches, resumes an
interrupted row from its ``checkpoint.pt`` and reuses an evaluation made with the same settings of the same
weights. ``table10`` is Table 2's six rows plus the three m-HE rows, evaluated with the same attacks, so that
``table10`` after ``table2`` (same ``--out``) trains and evaluates only the m-HE rows. The paper's numbers are
transcribed once, in :data:`TABLES` (Table 4, ImageNet: its eight rows, four networks, plain and HE).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from art_he.argtypes import positive_int
from art_he.config import FRAMEWORK_OPTIONS, TrainConfig, add_config_arguments, cli_fields, given_options
from art_he.errors import UserError
from art_he.recipes import get_recipe

#: training throughput measured on one GPU (its name, the date and torch's version are in the file): the one source
#: of the GPU-hour estimate; ``python benchmarks/gpu_suite.py --update-plan`` rewrites it from the suite's run
THROUGHPUT_FILE = Path(__file__).with_name("throughput.json")
#: the cost of a forward pass alone, in the estimate's unit (a forward and a backward pass of one image)
FORWARD = 1 / 3
#: pyautoattack's standard version: APGD-T and FAB-T attack up to 9 target classes, 100 iterations each, and
#: Square spends 5,000 queries (a query is a forward pass)
AA_TARGETS, AA_SQUARE_QUERIES = 9, 5000
#: the options that make a row what it is: ``reproduce`` does not take them as flags
ROW_IDENTITY = ("dataset", "framework", "head", "scale", "margin", "weight_norm")
EVAL_FILE = "eval.json"
#: Table 2's attacks in the suite's names (C&W: PGD on the C&W margin, as Zhang et al. evaluate it)
WHITE_BOX = ("pgd20", "pgd500", "mim20", "fgsm", "deepfool", "cw20", "feature100", "fab")
TABLE2_EVAL = "Table 2's caption, following Zhang et al."


@dataclass(frozen=True)
class PaperRow:
    """One line of a paper table: the recipe that trains it, the paper's name for it and its numbers."""

    recipe: str
    label: str
    values: tuple[float, ...]  # in the order of the table's columns


@dataclass(frozen=True)
class PaperTable:
    """A table of the paper: its columns (as our report's keys and as the paper heads them), the attacks and
    settings that evaluate its rows, and its rows with the paper's numbers."""

    key: str
    number: int
    caption: str
    columns: tuple[str, ...]  # report keys: "clean", attack names, "train_min" (training time, minutes)
    headers: tuple[str, ...]  # the paper's column heads
    attacks: tuple[str, ...]  # what every row is evaluated with (besides clean accuracy)
    eps: float
    eps_step: float
    eval_source: str
    rows: tuple[PaperRow, ...]

    @property
    def recipes(self) -> list[str]:
        return [row.recipe for row in self.rows]


def _rows(*rows: tuple) -> tuple[PaperRow, ...]:
    return tuple(PaperRow(recipe, label, tuple(values)) for recipe, label, *values in rows)


_TABLE2_ROWS = (  # paper Table 2: Clean, PGD-20, PGD-500, MIM-20, FGSM, DeepFool, C&W, FeaAtt., FAB
    ("table2-pgd-plain", "PGD-AT", 86.75, 53.97, 51.63, 55.08, 59.70, 57.26, 84.00, 52.38, 51.23),
    ("table2-pgd-he", "PGD-AT+HE", 86.19, 59.36, 57.59, 60.19, 63.77, 61.56, 84.07, 52.88, 54.45),
    ("table2-alp-plain", "ALP", 87.18, 52.29, 50.13, 53.35, 58.99, 59.40, 84.96, 49.55, 50.54),
    ("table2-alp-he", "ALP+HE", 89.91, 57.69, 51.78, 58.63, 65.08, 65.19, 87.86, 48.64, 51.86),
    ("table2-trades-plain", "TRADES", 84.62, 56.48, 54.84, 57.14, 61.02, 60.70, 81.13, 55.09, 53.58),
    ("table2-trades-he", "TRADES+HE", 84.88, 62.02, 60.75, 62.71, 65.69, 60.48, 81.44, 58.13, 53.50),
)
_TABLE10_ROWS = (  # paper Table 10 (App. C.5): Clean, PGD-20, PGD-500, MIM-20, FGSM, DeepFool, C&W-Linf
    ("table2-pgd-plain", "PGD-AT", 86.75, 53.97, 51.63, 55.08, 59.70, 57.26, 84.00),
    ("table2-pgd-he", "PGD-AT+HE", 86.19, 59.36, 57.59, 60.19, 63.77, 61.56, 84.07),
    ("table10-pgd-mhe", "PGD-AT+m-HE", 86.25, 59.90, 58.46, 60.50, 63.70, 59.47, 83.71),
    ("table2-alp-plain", "ALP", 87.18, 52.29, 50.13, 53.35, 58.99, 59.40, 84.96),
    ("table2-alp-he", "ALP+HE", 89.91, 57.69, 51.78, 58.63, 65.08, 65.19, 87.86),
    ("table10-alp-mhe", "ALP+m-HE", 89.23, 57.09, 53.34, 58.04, 63.81, 60.74, 87.21),
    ("table2-trades-plain", "TRADES", 84.62, 56.48, 54.84, 57.14, 61.02, 60.70, 81.13),
    ("table2-trades-he", "TRADES+HE", 84.88, 62.02, 60.75, 62.71, 65.69, 60.48, 81.44),
    ("table10-trades-mhe", "TRADES+m-HE", 84.30, 61.83, 60.43, 62.67, 65.49, 60.51, 80.53),
)
_TABLE3_ROWS = (  # paper Table 3: Clean, PGD-50, training time (min; the Epo. column is the recipes' epochs)
    ("table3-fast-plain", "FastAT", 83.80, 46.40, 11.38),
    ("table3-fast-he", "FastAT+HE", 82.58, 52.55, 11.48),
    ("table3-fast-mhe", "FastAT+m-HE", 83.14, 53.49, 11.49),
    ("table3-free-plain", "FreeAT", 77.21, 46.14, 15.78),
    ("table3-free-he", "FreeAT+HE", 76.85, 50.98, 15.87),
    ("table3-free-mhe", "FreeAT+m-HE", 77.59, 51.85, 15.91),
)

_TABLE4_ROWS = (  # paper Table 4: Clean, PGD-10, PGD-50
    ("table4-free-plain", "ResNet-50 FreeAT", 60.28, 32.13, 31.39),
    ("table4-free-he", "ResNet-50 FreeAT+HE", 61.83, 40.22, 39.85),
    ("table4-resnet152-free-plain", "ResNet-152 FreeAT", 65.20, 36.97, 35.87),
    ("table4-resnet152-free-he", "ResNet-152 FreeAT+HE", 65.41, 43.24, 42.60),
    ("table4-wrn50-2-free-plain", "WRN-50-2 FreeAT", 64.18, 36.24, 35.38),
    ("table4-wrn50-2-free-he", "WRN-50-2 FreeAT+HE", 65.28, 43.83, 43.47),
    ("table4-wrn101-2-free-plain", "WRN-101-2 FreeAT", 66.15, 39.35, 38.23),
    ("table4-wrn101-2-free-he", "WRN-101-2 FreeAT+HE", 66.37, 45.35, 45.04),
)

#: the paper's tables, transcribed from the paper (Tables 2, 3, 4 and 10); the one copy of its numbers
TABLES: dict[str, PaperTable] = {t.key: t for t in (
    PaperTable("table2", 2, "white-box accuracy (%) on CIFAR-10",
               ("clean", *WHITE_BOX), ("Clean", "PGD-20", "PGD-500", "MIM-20", "FGSM", "DeepFool", "C&W",
                                       "FeaAtt.", "FAB"),
               WHITE_BOX, 0.031, 0.003, TABLE2_EVAL, _rows(*_TABLE2_ROWS)),
    PaperTable("table10", 10, "white-box accuracy (%) on CIFAR-10 with m-HE (App. C.5)",
               ("clean", *WHITE_BOX[:6]), ("Clean", "PGD-20", "PGD-500", "MIM-20", "FGSM", "DeepFool", "C&W-Linf"),
               WHITE_BOX, 0.031, 0.003, TABLE2_EVAL + "; Table 2's attacks, so that the rows are shared",
               _rows(*_TABLE10_ROWS)),
    PaperTable("table3", 3, "FastAT and FreeAT with HE and m-HE on CIFAR-10: accuracy (%) and training time (min)",
               ("clean", "pgd50", "train_min"), ("Clean", "PGD-50", "Time (min)"), ("pgd50",), 8 / 255, 2 / 255,
               "Sec. 4's eps 8/255 and step 2/255 (the paper does not give Table 3's PGD-50 settings)",
               _rows(*_TABLE3_ROWS)),
    PaperTable("table4", 4, "white-box top-1 accuracy (%) on ImageNet",
               ("clean", "pgd10", "pgd50"), ("Clean", "PGD-10", "PGD-50"), ("pgd10", "pgd50"), 4 / 255, 1 / 255,
               "Sec. 4: Shafahi et al.'s settings, eps 4/255 with step 1/255", _rows(*_TABLE4_ROWS)),
)}


def get_table(name: str) -> PaperTable:
    """The table named ``name`` (``table2``, ``table10``, ``table3``, ``table4``); :class:`UserError` otherwise."""
    if name not in TABLES:
        raise UserError(f"unknown table {name!r}; choose from {', '.join(TABLES)}")
    return TABLES[name]


# -- configurations -------------------------------------------------------------------------------------------


def row_configs(table: PaperTable, overrides: dict) -> dict[str, TrainConfig]:
    """Each row's recipe with ``overrides`` on top, resolved. A framework option (``--max-iter``, ``--replays``
    ...) applies to the rows whose framework takes it; one that applies to no row is a :class:`UserError`."""
    allowed = {f.name for f in cli_fields()} - set(ROW_IDENTITY)
    unknown = sorted(set(overrides) - allowed)
    if unknown:
        raise UserError(f"reproduce does not override {', '.join(unknown)}: they define the table's rows")
    configs, used = {}, set()
    for name in table.recipes:
        cfg = get_recipe(name).config()
        takes = cfg.framework_class().option_defaults()
        applied = {k: v for k, v in overrides.items() if k not in FRAMEWORK_OPTIONS or k in takes}
        used |= set(applied)
        configs[name] = dataclasses.replace(cfg, **applied).resolved()
    unused = sorted(set(overrides) - used)
    if unused:
        flags = ", ".join("--" + k.replace("_", "-") for k in unused)
        frameworks = sorted({c.framework for c in configs.values()})
        raise UserError(f"{flags} applies to none of {table.key}'s frameworks ({', '.join(frameworks)})")
    return configs


# -- state of a row on disk -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RowState:
    """What a row's folder holds: ``new``, ``restart`` (stopped in its first epoch), ``resume`` (a checkpoint
    after ``epochs_done`` passes) or ``trained``; ``evaluated`` when its ``eval.json`` matches the settings."""

    kind: str
    epochs_done: int = 0
    evaluated: bool = False


def row_state(run_dir: Path, cfg: TrainConfig, settings: dict | None = None) -> RowState:
    """The state of ``run_dir`` for ``cfg``; :class:`UserError` if it holds a run of another configuration.

    ``settings`` (from :func:`eval_settings`, without the weights' hash) decide ``evaluated``."""
    from art_he.runs import CONFIG_FILE, MODEL_FILE, RUN_FILES, config_differences, read_config, run_config
    from art_he.trainers import checkpoint as ckpt

    if not any((run_dir / name).exists() for name in RUN_FILES):
        return RowState("new")
    if not (run_dir / CONFIG_FILE).is_file():
        raise UserError(f"{run_dir} holds run files but no {CONFIG_FILE}; move it away or give another --out")
    saved = read_config(run_dir)
    differ = config_differences(saved, run_config(cfg))
    if differ:
        pairs = ", ".join(f"{k} {saved[k]!r} (wanted {getattr(cfg, k)!r})" for k in differ)
        raise UserError(f"{run_dir} holds a run of another configuration: {pairs}; give another --out or move the "
                        "folder away")
    if (run_dir / MODEL_FILE).is_file():
        evaluated = settings is not None and cached_report(run_dir, settings) is not None
        return RowState("trained", cfg.passes, evaluated)
    state = ckpt.load_checkpoint(ckpt.checkpoint_path(run_dir), mmap=True)
    if state is None:
        return RowState("restart")
    return RowState("resume", int(state["epoch"]))


def describe(state: RowState, passes: int) -> str:
    if state.kind == "trained":
        return "trained, evaluated" if state.evaluated else "trained"
    if state.kind == "resume":
        return f"resume at pass {state.epochs_done}/{passes}"
    return {"new": "new", "restart": "restart (stopped in pass 1)"}[state.kind]


# -- the GPU-hour estimate ------------------------------------------------------------------------------------


@functools.cache
def measured_throughput() -> dict:
    """:data:`THROUGHPUT_FILE`: ``gpu``, ``date``, ``torch``, ``source`` and ``rows`` of training images/s per
    model, framework, head, precision and path (``eager``, ``compile``, ``cuda-graph``)."""
    return json.loads(THROUGHPUT_FILE.read_text())


@functools.cache
def _forward_flops(model: str, model_kwargs: str, nb_classes: int, size: int, channels: int = 3) -> float:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from art_he.models import build_model

    with torch.device("meta"):  # shapes only: nothing is allocated or computed
        # a plain head: the HE head's FLOPs are the same linear layer's
        net = build_model(model, num_classes=nb_classes, in_channels=channels, **json.loads(model_kwargs)).eval()
        with FlopCounterMode(display=False) as counter:
            net(torch.zeros(1, channels, size, size))
    return float(counter.get_total_flops())


def model_forward_flops(model: str, input_shape: tuple[int, int, int] = (3, 32, 32), nb_classes: int = 10,
                        **model_kwargs) -> float:
    """FLOPs of one forward pass of ``model`` on one image of ``input_shape`` (square), counted by torch on the meta
    device (the GPU suite's model-FLOPs utilisation uses it too)."""
    kwargs = json.dumps(model_kwargs, sort_keys=True, allow_nan=False)
    return _forward_flops(model, kwargs, nb_classes, input_shape[-1], input_shape[0])


def forward_flops(cfg: TrainConfig) -> float:
    """FLOPs of one forward pass of ``cfg``'s model on one image of its data set (an image folder's: its size)."""
    from art_he.runs import data_shape

    return model_forward_flops(cfg.model, data_shape(dataclasses.asdict(cfg))[0], cfg.nb_classes or 10,
                               **cfg.model_kwargs)


def passes_per_image(framework: str, max_iter: int | None = None, replays: int | None = None) -> float:
    """Forward+backward passes per image in one pass over the data: the attack's steps plus the update's (K+1 for
    PGD-AT, K+2 for ALP and TRADES, 2 for FastAT, m for FreeAT)."""
    steps = {"pgd": (max_iter or 0) + 1, "alp": (max_iter or 0) + 2, "trades": (max_iter or 0) + 2, "fast": 2,
             "free": replays or 1}
    return float(steps[framework])


def train_passes_per_image(cfg: TrainConfig) -> float:
    return passes_per_image(cfg.framework, cfg.max_iter, cfg.replays)


@dataclass(frozen=True)
class Speed:
    """Forward+backward passes of one image per second on the measured GPU, and where the figure comes from."""

    passes_per_s: float
    measured: bool
    source: str


def _row_label(row: dict) -> str:
    steps = f"-{row['max_iter']}" if row.get("max_iter") else ""
    return f"{row['model']} {row['framework'].upper()}{steps} {row['head']}"


def training_speed(cfg: TrainConfig) -> Speed:
    """The speed of ``cfg`` as ``art-he train`` runs it by default (bf16 + channels_last, eager), from
    :data:`THROUGHPUT_FILE`: measured when a row has its model, image size, framework, steps and head; else the
    same model's row converted by passes per image (another framework) or taken with another head; else the
    largest measured model's (compute-bound) row scaled by forward FLOPs."""
    from art_he.runs import data_shape

    rows = [r for r in measured_throughput()["rows"]
            if r["path"] == "eager" and r["precision"] == "bf16" and r["channels_last"]]
    shape = list(data_shape(dataclasses.asdict(cfg))[0])
    same = [r for r in rows if r["model"] == cfg.model and r["input_shape"] == shape]

    def rate(row: dict) -> float:
        return row["images_per_s"] * passes_per_image(row["framework"], row.get("max_iter"), row.get("replays"))

    if same:
        def distance(row: dict) -> tuple[bool, bool, bool]:
            other_work = (row["framework"], row.get("max_iter"), row.get("replays")) != (
                cfg.framework, cfg.max_iter if cfg.framework in ("pgd", "alp", "trades") else None,
                cfg.replays if cfg.framework == "free" else None)
            return other_work, row["head"] != cfg.head, row["head"] != "plain"

        row = min(same, key=distance)
        other_work, other_head, _ = distance(row)
        if not (other_work or other_head):
            return Speed(rate(row), True, _row_label(row))
        how = "by passes per image" if other_work else f"with the {row['head']} head"
        return Speed(rate(row), False, f"from {_row_label(row)} {how}")
    flops = [model_forward_flops(r["model"], tuple(r["input_shape"])) for r in rows]
    best = max(range(len(rows)), key=lambda i: (flops[i], rows[i]["head"] == cfg.head))
    row, own = rows[best], model_forward_flops(cfg.model, tuple(shape), cfg.nb_classes or 10, **cfg.model_kwargs)
    return Speed(rate(row) * flops[best] / own, False,
                 f"from {_row_label(row)} by forward FLOPs ({flops[best] / 1e9:.3g} -> {own / 1e9:.3g} GFLOP)")


def images_per_second(cfg: TrainConfig) -> float:
    """Training images per second of ``cfg`` on the measured GPU (:func:`training_speed`)."""
    return training_speed(cfg).passes_per_s / train_passes_per_image(cfg)


def dataset_sizes(cfg: TrainConfig) -> tuple[int, int]:
    """``(training, test)`` images of ``cfg``'s data set (ImageNet: 1,281,167 and the 50,000 validation images)."""
    from art_he.data import dataset_info

    sizes = dataset_info(cfg.dataset).sizes
    if sizes is None:
        raise UserError(f"the GPU-hour plan needs the size of {cfg.dataset}, which is that of its folder")
    return sizes


def attack_passes(spec, nb_classes: int, hypersphere: bool, max_steps: int | None = None) -> float:
    """Forward+backward passes per test image of one attack at its full budget, on every view it runs on (an upper
    bound: early stops, and images an earlier attack of AutoAttack's cascade broke, are not subtracted).

    Gradient attacks: steps x restarts x views. DeepFool: a gradient per class (up to 10) per step. FAB: a
    gradient per class per step (untargeted), FAB-T and APGD-T: their steps per target class (up to 9). Square,
    ZOO, SPSA and NES: a forward pass per query. AutoAttack: APGD-CE + APGD-T + FAB-T + Square (its standard
    version), plus APGD-CE on the raw cosines for a hypersphere head.
    """
    from art_he.evaluation.auto_attack import STANDARD
    from art_he.losses import Objective

    steps, name = spec.steps, spec.attack.name
    targets = max(1, min(AA_TARGETS, nb_classes - 1))
    if spec.attack.autoattack:
        queries = AA_SQUARE_QUERIES if max_steps is None else min(AA_SQUARE_QUERIES, 10 * max_steps)
        cost = {"apgd-ce": steps, "apgd-dlr": steps, "apgd-t": targets * steps, "fab": nb_classes * steps,
                "fab-t": targets * steps, "square": queries * FORWARD}
        parts = spec.option("attacks") or STANDARD
        raw = hypersphere and "apgd-ce" in parts and len(spec.attack.views) > 1
        return sum(cost[part] for part in parts) + (steps if raw else 0)
    if name == "deepfool":
        return steps * min(10, nb_classes)
    if name == "square":
        return steps * FORWARD
    if name == "zoo":
        return spec.option("max_queries") * FORWARD * len(spec.variants(Objective(hypersphere=hypersphere)))
    if spec.attack.score_based:
        return steps * 2 * spec.option("nb_samples") * FORWARD
    views = len(spec.variants(Objective(hypersphere=hypersphere)))
    return steps * max(spec.restarts, 1) * views


def eval_passes_per_image(table: PaperTable, cfg: TrainConfig, max_steps: int | None) -> float:
    """Forward+backward passes per test image of the table's attacks (:func:`attack_passes`) and the clean pass."""
    from art_he.evaluation.specs import parse_attacks

    specs = parse_attacks(table.attacks, eps=table.eps, eps_step=table.eps_step, max_steps=max_steps)
    return FORWARD + sum(attack_passes(s, cfg.nb_classes or 10, cfg.head != "plain", max_steps) for s in specs)


def estimate_hours(table: PaperTable, cfg: TrainConfig, state: RowState, n: int | None,
                   max_steps: int | None) -> tuple[float, float]:
    """``(training, evaluation)`` GPU-hours left for one row on the GPU of :data:`THROUGHPUT_FILE`."""
    rate = training_speed(cfg).passes_per_s * 3600
    train_images, test_images = dataset_sizes(cfg)
    images = min(cfg.subset or train_images, train_images)
    passes_left = 0 if state.kind == "trained" else cfg.passes - state.epochs_done
    train = images * passes_left * train_passes_per_image(cfg) / rate
    tests = min(n or test_images, test_images)
    evaluate = 0.0 if state.evaluated else tests * eval_passes_per_image(table, cfg, max_steps) / rate
    return train, evaluate


# -- evaluation and its cache ---------------------------------------------------------------------------------


def eval_settings(table: PaperTable, n: int | None, max_steps: int | None) -> dict:
    """What an evaluation depends on besides the weights (the cache key of ``eval.json``)."""
    return {"attacks": list(table.attacks), "n": n, "eps": table.eps, "eps_step": table.eps_step,
            "max_steps": max_steps, "restarts": 1, "seed": 0}


def weights_digest(run_dir: Path) -> str:
    from art_he.runs import MODEL_FILE

    digest = hashlib.sha256()
    with open(run_dir / MODEL_FILE, "rb") as f:
        for block in iter(lambda: f.read(1 << 24), b""):
            digest.update(block)
    return digest.hexdigest()


def cached_report(run_dir: Path, settings: dict):
    """The row's ``eval.json`` if it was made with ``settings`` of the present weights, else ``None``."""
    from art_he.evaluation import Report

    path = run_dir / EVAL_FILE
    if not path.is_file():
        return None
    try:
        report = Report.from_json(path)
    except (ValueError, KeyError, TypeError):  # damaged or foreign: evaluated again and replaced
        return None
    wanted = {**settings, "weights_sha256": weights_digest(run_dir)}
    return report if report.meta.get("reproduce") == json.loads(json.dumps(wanted, allow_nan=False)) else None


def evaluate_row(table: PaperTable, run_dir: Path, settings: dict, test_data, verbose: bool):
    """The row's report: from ``eval.json`` when its settings match, else evaluated and written there."""
    from art_he.evaluation import evaluate
    from art_he.runs import load_run

    report = cached_report(run_dir, settings)
    if report is not None:
        return report
    _, classifier, config = load_run(run_dir)
    x, y = test_data()
    report = evaluate(classifier, x, y, suite="paper", attacks=list(table.attacks), n=settings["n"],
                      eps=table.eps, eps_step=table.eps_step, max_steps=settings["max_steps"], sweep=(),
                      seed=settings["seed"], restarts=settings["restarts"], dataset="cifar10", name=run_dir.name,
                      verbose=verbose, meta={"run": str(run_dir), "model": config.get("model"),
                                             "framework": config.get("framework"),
                                             "reproduce": {**settings, "weights_sha256": weights_digest(run_dir)}})
    report.to_json(run_dir / EVAL_FILE)
    return report


def training_minutes(run_dir: Path) -> float | None:
    """Wall-clock training time of a run (the sum of its epochs' ``time_s``), in minutes."""
    from art_he.runs import METRICS_FILE

    path = run_dir / METRICS_FILE
    if not path.is_file():
        return None
    lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return sum(m.get("time_s", 0.0) for m in lines) / 60


# -- text -----------------------------------------------------------------------------------------------------


def plan_text(table: PaperTable, configs: dict[str, TrainConfig], states: dict[str, RowState], out: Path,
              overrides: dict, n: int | None, max_steps: int | None) -> str:
    """What will be done: rows, epochs, model, data, evaluation, and the GPU-hours on the measured GPU, each row's
    speed marked measured or extrapolated."""
    from art_he.evaluation.specs import parse_attacks

    first = next(iter(configs.values()))
    train_images, test_images = dataset_sizes(first)
    given = " ".join(_flag(k, v) for k, v in sorted(overrides.items())) or "none (the recipes)"
    images = (f"first {min(first.subset, train_images):,}" if first.subset and first.subset < train_images
              else f"all {train_images:,}")
    tests = f"the first {min(n, test_images):,}" if n and n < test_images else f"all {test_images:,}"
    cap = f", attack steps capped at {max_steps}" if max_steps else ""
    gpu = measured_throughput()
    lines = [
        f"art-he reproduce {table.key}: paper Table {table.number} ({table.caption}), {len(configs)} rows into "
        f"{out}/<row>/",
        f"  data: {first.dataset} from {first.data_dir or '$ART_HE_DATA or the cache'}, {images} training images; "
        f"evaluation on {tests} test images: clean, {', '.join(table.attacks)} at eps {table.eps:.4g}, step "
        f"{table.eps_step:.4g} ({table.eval_source}){cap}",
        f"  overrides: {given}",
        "",
        f"  {'row':<28} {'framework':<9} {'head':<5} {'model':<16} {'epochs':>6} {'passes':>6}  {'state':<26} "
        f"{'images/s':>9}  {'GPU-h train + eval':>18}",
    ]
    total_train = total_eval = full = 0.0
    speeds: dict[str, Speed] = {}
    for name, cfg in configs.items():
        train, evaluate = estimate_hours(table, cfg, states[name], n, max_steps)
        total_train, total_eval = total_train + train, total_eval + evaluate
        full += sum(estimate_hours(table, cfg, RowState("new"), n, max_steps))
        speeds[name] = training_speed(cfg)
        mark = "m" if speeds[name].measured else "x"
        lines.append(f"  {name:<28} {cfg.framework:<9} {cfg.head:<5} {cfg.model:<16} {cfg.epochs:>6} {cfg.passes:>6}"
                     f"  {describe(states[name], cfg.passes):<26} {images_per_second(cfg):>8,.0f}{mark}"
                     f"  {train:>8.2f} + {evaluate:<7.2f}")
    sources = [f"{name} {speed.source}" for name, speed in speeds.items() if not speed.measured]
    measured = sorted({speed.source for speed in speeds.values() if speed.measured})
    costs = ", ".join(f"{s.name} {attack_passes(s, first.nb_classes or 10, first.head != 'plain', max_steps):,.0f}"
                      for s in parse_attacks(table.attacks, eps=table.eps, eps_step=table.eps_step,
                                             max_steps=max_steps))
    lines += [
        "",
        f"GPU-hours: {total_train + total_eval:.2f} left (training {total_train:.2f}, evaluation {total_eval:.2f}) of "
        f"{full:.2f} for the whole table, on one {gpu['gpu']} at the training throughput measured there on "
        f"{gpu['date']} (torch {gpu['torch']}; bf16 + channels_last, batch {gpu['batch']}; {THROUGHPUT_FILE.name}).",
        "  images/s: m = measured, x = extrapolated. " + ("Measured: " + ", ".join(measured) + ". " if measured
                                                         else "No row of this table was measured. ")
        + ("Extrapolated: " + "; ".join(sources) + "." if sources else ""),
        "  Training counts K+1 forward+backward passes per image for PGD-AT, K+2 for ALP and TRADES, 2 for FastAT "
        "and m per pass for FreeAT. Evaluation per test image, upper bounds in forward+backward passes (a forward "
        f"pass or query counts {FORWARD:.2g}): {costs} (the first row's head; FAB and APGD-T per target class, "
        "Square per query).",
    ]
    return "\n".join(lines) + "\n"


def _flag(name: str, value) -> str:
    flag = "--" + name.replace("_", "-")
    if isinstance(value, bool):
        return flag if value else "--no-" + flag[2:]
    return f"{flag} {value}"


def _cell(ours: float | None, paper: float) -> str:
    if ours is None:
        return f"- / {paper:.2f}"
    return f"{ours:.2f} / {paper:.2f} ({ours - paper:+.2f})"


def row_values(table: PaperTable, report, minutes: float | None) -> dict[str, float | None]:
    """Our numbers for the table's columns: accuracies in %, training time in minutes."""
    accuracy = {r.attack: 100 * r.accuracy for r in report.rows}
    return {c: minutes if c == "train_min" else accuracy.get(c) for c in table.columns}


def comparison_text(table: PaperTable, ours: dict[str, dict[str, float | None]], n_eval: int,
                    max_steps: int | None) -> str:
    """The table in Markdown, each cell ``ours / paper (ours - paper)``."""
    cap = f", attack steps capped at {max_steps}" if max_steps else ""
    lines = [f"**Table {table.number}** ({table.caption}): each cell is ours / paper (ours - paper); ours on "
             f"{n_eval:,} test images{cap}", "",
             "| Defense | " + " | ".join(table.headers) + " |", "| --- |" + " ---: |" * len(table.headers)]
    for row in table.rows:
        values = ours[row.recipe]
        cells = [_cell(values.get(c), p) for c, p in zip(table.columns, row.values)]
        lines.append(f"| {row.label} (`{row.recipe}`) | " + " | ".join(cells) + " |")
    if "train_min" in table.columns:
        lines += ["", "Time: the paper's is on its GPUs (NVIDIA P100 / 2080Ti, App. C), ours on this machine."]
    return "\n".join(lines) + "\n"


# -- the command ----------------------------------------------------------------------------------------------


def train_row(cfg: TrainConfig, run_dir: Path, state: RowState, verbose: bool) -> None:
    """Train a row that is not finished: from scratch, or on from its checkpoint."""
    from art_he import runs

    runs.train_run(cfg, run_dir, resume=state.kind == "resume", overwrite=state.kind == "restart", verbose=verbose)


def reproduce(name: str, overrides: dict, out: str | Path = "runs/reproduce", *, n: int | None = None,
              max_steps: int | None = None, dry_run: bool = False, verbose: bool = True) -> str:
    """Plan, train, evaluate and compare one table; returns the comparison (the plan for ``dry_run``)."""
    from art_he.data import dataset_info
    from art_he.data.folder import split_dir
    from art_he.validation import check_data_dir, check_number

    table = get_table(name)
    for label, value in (("n", n), ("max_steps", max_steps)):
        if value is not None:
            check_number(label, value, low=1, integer=True)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file, not a folder")
    check_data_dir(overrides.get("data_dir"))
    configs = row_configs(table, overrides)  # image folders: their classes are read and checked here
    settings = eval_settings(table, n, max_steps)
    states = {row: row_state(out / row, cfg, settings) for row, cfg in configs.items()}
    first = next(iter(configs.values()))
    test = _test_loader(first, n)
    if dataset_info(first.dataset).folder:
        split_dir(first.data_dir, train=False)  # train/ was read for the classes
    elif not dry_run:
        test()  # the data are there (or downloaded) and readable before the plan and the first row
    print(plan_text(table, configs, states, out, overrides, n, max_steps), flush=True)
    if dry_run:
        return ""
    values, n_eval = {}, []
    for row, cfg in configs.items():
        run_dir, state = out / row, states[row]
        if state.kind == "trained":
            print(f"== {row}: trained, skipped", flush=True)
        else:
            print(f"== {row}: {describe(state, cfg.passes)}", flush=True)
            train_row(cfg, run_dir, state, verbose)
        print(f"== {row}: {'evaluation cached' if state.evaluated else 'evaluating'}", flush=True)
        report = evaluate_row(table, run_dir, settings, test, verbose)
        values[row] = row_values(table, report, training_minutes(run_dir))
        n_eval.append(report.rows[0].n)
    text = comparison_text(table, values, min(n_eval), max_steps)
    _write_results(out, table, values, text)
    return text


def _test_loader(cfg: TrainConfig, n: int | None):
    """A function giving the test set (``n`` images of an image folder's), read once, on first use."""
    from art_he.data import load_dataset

    @functools.lru_cache(maxsize=1)
    def load():
        return load_dataset(cfg.dataset, train=False, data_dir=cfg.data_dir, verify=cfg.verify_data,
                            image_size=cfg.image_size, n=n)

    return load


def _write_results(out: Path, table: PaperTable, values: dict, text: str) -> None:
    """``OUT/<table>.md`` (the printed table) and ``OUT/<table>.json`` (ours, paper, difference per cell)."""
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{table.key}.md").write_text(text)
    cells = {row.recipe: {c: _json_cell(values[row.recipe].get(c), p) for c, p in zip(table.columns, row.values)}
             for row in table.rows}
    (out / f"{table.key}.json").write_text(json.dumps({"table": table.number, "rows": cells}, indent=2,
                                                       allow_nan=False) + "\n")


def _json_cell(ours: float | None, paper: float) -> dict:
    return {"ours": ours, "paper": paper, "diff": None if ours is None else round(ours - paper, 4)}


# -- command line ---------------------------------------------------------------------------------------------


def add_reproduce_arguments(parser: argparse.ArgumentParser) -> None:
    """``art-he reproduce``'s options: the table, the run folder, the evaluation's size and the training
    options of ``art-he train`` (but those that define a row) as overrides of every row's recipe."""
    parser.add_argument("table", metavar="TABLE", help=f"{', '.join(TABLES)} (table10: Table 2's rows plus m-HE; "
                                                       "table4: ImageNet, ResNet-50/152 and WRN-50-2/101-2)")
    parser.add_argument("--out", default="runs/reproduce", help="one run folder per row, OUT/<recipe> "
                                                                "(default: runs/reproduce)")
    parser.add_argument("--n", type=positive_int, default=None, help="test images to evaluate (default: all)")
    parser.add_argument("--max-steps", type=positive_int, default=None,
                        help="cap every attack's steps (smoke tests; shown in the table)")
    parser.add_argument("--dry-run", action="store_true", help="print the plan and the GPU-hour estimate only")
    parser.add_argument("--quiet", action="store_true", help="no per-epoch lines or progress bars")
    group = parser.add_argument_group("training options, applied to every row on top of its recipe")
    add_config_arguments(group, exclude=ROW_IDENTITY)


def run_reproduce(args: argparse.Namespace) -> int:
    """``art-he reproduce`` with parsed ``args``."""
    text = reproduce(args.table, given_options(args), args.out, n=args.n, max_steps=args.max_steps,
                     dry_run=args.dry_run, verbose=not args.quiet)
    if text:
        print(text, end="")
    return 0
