"""The GPU-hour estimate: training and evaluation passes per image, and the throughput measured on one GPU."""

from __future__ import annotations

import dataclasses
import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from art_he.config import TrainConfig
from art_he.errors import UserError
from art_he.reproduce.cache import RowState
from art_he.reproduce.tables import PaperTable

if TYPE_CHECKING:
    from art_he.evaluation.specs import AttackSpec

#: training throughput measured on one GPU (its name, the date and torch's version are in the file): the one source
#: of the GPU-hour estimate; ``python benchmarks/gpu_suite.py --update-plan`` rewrites it from the suite's run
THROUGHPUT_FILE = Path(__file__).parent.parent / "throughput.json"
#: the cost of a forward pass alone, in the estimate's unit (a forward and a backward pass of one image)
FORWARD = 1 / 3
#: pyautoattack's standard version: APGD-T and FAB-T attack up to 9 target classes, 100 iterations each, and
#: Square spends 5,000 queries (a query is a forward pass)
AA_TARGETS, AA_SQUARE_QUERIES = 9, 5000


@functools.cache
def measured_throughput() -> dict[str, Any]:
    """:data:`THROUGHPUT_FILE`: ``gpu``, ``date``, ``torch``, ``source`` and ``rows`` of training images/s per
    model, framework, head, precision and path (``eager``, ``compile``, ``cuda-graph``)."""
    data: dict[str, Any] = json.loads(THROUGHPUT_FILE.read_text())
    return data


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


def model_forward_flops(model: str, input_shape: tuple[int, ...] = (3, 32, 32), nb_classes: int = 10,
                        **model_kwargs: Any) -> float:
    """FLOPs of one forward pass of ``model`` on one image of ``input_shape`` (square), counted by torch on the meta
    device (the GPU suite's model-FLOPs utilisation uses it too)."""
    kwargs = json.dumps(model_kwargs, sort_keys=True, allow_nan=False)
    return _forward_flops(model, kwargs, nb_classes, input_shape[-1], input_shape[0])


def forward_flops(cfg: TrainConfig) -> float:
    """FLOPs of one forward pass of ``cfg``'s model on one image of its data set (an image folder's: its size)."""
    from art_he.runs import data_shape

    assert cfg.model is not None  # a resolved config (TrainConfig.resolved)
    return model_forward_flops(cfg.model, data_shape(dataclasses.asdict(cfg))[0], cfg.nb_classes or 10,
                               **cfg.model_kwargs)


def train_passes_per_image(cfg: TrainConfig) -> float:
    """Forward+backward passes per training image in one pass over the data, as ``cfg``'s trainer counts them."""
    passes: float = cfg.framework_class().passes_per_image(dataclasses.asdict(cfg))
    return passes


@dataclass(frozen=True)
class Speed:
    """Forward+backward passes of one image per second on the measured GPU, and where the figure comes from."""

    passes_per_s: float
    measured: bool
    source: str


def _row_label(row: dict[str, Any]) -> str:
    steps = f"-{row['max_iter']}" if row.get("max_iter") else ""
    return f"{row['model']} {row['framework'].upper()}{steps} {row['head']}"


def training_speed(cfg: TrainConfig) -> Speed:
    """The speed of ``cfg`` as ``art-he train`` runs it by default (bf16 + channels_last, eager), from
    :data:`THROUGHPUT_FILE`: measured when a row has its model, image size, framework, steps and head; else the
    same model's row converted by passes per image (another framework) or taken with another head; else the
    largest measured model's (compute-bound) row scaled by forward FLOPs."""
    from art_he.runs import data_shape
    from art_he.trainers import FRAMEWORKS

    rows = [r for r in measured_throughput()["rows"]
            if r["path"] == "eager" and r["precision"] == "bf16" and r["channels_last"]]
    shape = list(data_shape(dataclasses.asdict(cfg))[0])
    same = [r for r in rows if r["model"] == cfg.model and r["input_shape"] == shape]

    def rate(row: dict[str, Any]) -> float:
        passes_per_s: float = row["images_per_s"] * FRAMEWORKS[row["framework"]].passes_per_image(row)
        return passes_per_s

    if same:
        takes = cfg.framework_class().options
        work = (cfg.framework, *(getattr(cfg, k) if k in takes else None for k in ("max_iter", "replays")))

        def distance(row: dict[str, Any]) -> tuple[bool, bool, bool]:
            other_work = (row["framework"], row.get("max_iter"), row.get("replays")) != work
            return other_work, row["head"] != cfg.head, row["head"] != "plain"

        row = min(same, key=distance)
        other_work, other_head, _ = distance(row)
        if not (other_work or other_head):
            return Speed(rate(row), True, _row_label(row))
        how = "by passes per image" if other_work else f"with the {row['head']} head"
        return Speed(rate(row), False, f"from {_row_label(row)} {how}")
    flops = [model_forward_flops(r["model"], tuple(r["input_shape"])) for r in rows]
    best = max(range(len(rows)), key=lambda i: (flops[i], rows[i]["head"] == cfg.head))
    assert cfg.model is not None  # a resolved config (TrainConfig.resolved)
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


def attack_passes(spec: AttackSpec, nb_classes: int, hypersphere: bool, max_steps: int | None = None) -> float:
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
        views_run = len(spec.views(Objective(hypersphere=hypersphere)))
        zoo_queries: float = spec.option("max_queries") * FORWARD * views_run
        return zoo_queries
    if spec.attack.score_based:
        probes: float = steps * 2 * spec.option("nb_samples") * FORWARD
        return probes
    views = len(spec.views(Objective(hypersphere=hypersphere)))
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
    if state.kind == "trained":
        passes_left = 0
    else:
        assert cfg.passes is not None  # a resolved config (TrainConfig.resolved)
        passes_left = cfg.passes - state.epochs_done
    train = images * passes_left * train_passes_per_image(cfg) / rate
    tests = min(n or test_images, test_images)
    evaluate = 0.0 if state.evaluated else tests * eval_passes_per_image(table, cfg, max_steps) / rate
    return train, evaluate
