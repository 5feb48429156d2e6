"""The plan of ``art-he reproduce``: each row's configuration and what is left to do, with its GPU-hours."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from art_he.config import TrainConfig, cli_fields, framework_options, option_flag
from art_he.errors import UserError
from art_he.recipes import get_recipe
from art_he.reproduce.cache import RowState, describe
from art_he.reproduce.estimate import (
    FORWARD,
    THROUGHPUT_FILE,
    Speed,
    attack_passes,
    dataset_sizes,
    estimate_hours,
    images_per_second,
    measured_throughput,
    train_passes_per_image,
    training_speed,
)
from art_he.reproduce.tables import PaperTable

#: the options that make a row what it is: ``reproduce`` does not take them as flags
ROW_IDENTITY = ("dataset", "framework", "head", "scale", "margin", "weight_norm")


def row_configs(table: PaperTable, overrides: dict[str, Any]) -> dict[str, TrainConfig]:
    """Each row's recipe with ``overrides`` on top, resolved. A framework option (``--max-iter``, ``--replays``
    ...) applies to the rows whose framework takes it; one that applies to no row is a :class:`UserError`."""
    allowed = {f.name for f in cli_fields()} - set(ROW_IDENTITY)
    unknown = sorted(set(overrides) - allowed)
    if unknown:
        raise UserError(f"reproduce does not override {', '.join(unknown)}: they define the table's rows")
    configs: dict[str, TrainConfig] = {}
    used: set[str] = set()
    for name in table.recipes:
        cfg = get_recipe(name).config()
        takes = cfg.framework_class().options
        applied = {k: v for k, v in overrides.items() if k not in framework_options() or k in takes}
        used |= set(applied)
        configs[name] = dataclasses.replace(cfg, **applied).resolved()
    unused = sorted(set(overrides) - used)
    if unused:
        flags = ", ".join("--" + k.replace("_", "-") for k in unused)
        frameworks = sorted({c.framework for c in configs.values()})
        raise UserError(f"{flags} applies to none of {table.key}'s frameworks ({', '.join(frameworks)})")
    return configs


def plan_text(table: PaperTable, configs: dict[str, TrainConfig], states: dict[str, RowState], out: Path,
              overrides: dict[str, Any], n: int | None, max_steps: int | None) -> str:
    """What will be done: rows, epochs, model, data, evaluation, and the GPU-hours on the measured GPU, each row's
    speed marked measured or extrapolated."""
    from art_he.evaluation.specs import parse_attacks

    first = next(iter(configs.values()))
    train_images, test_images = dataset_sizes(first)
    given = " ".join(option_flag(k, v) for k, v in sorted(overrides.items())) or "none (the recipes)"
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
        assert cfg.passes is not None  # a resolved config (row_configs)
        lines.append(f"  {name:<28} {cfg.framework:<9} {cfg.head:<5} {cfg.model:<16} {cfg.epochs:>6} {cfg.passes:>6}"
                     f"  {describe(states[name], cfg.passes):<26} {images_per_second(cfg):>8,.0f}{mark}"
                     f"  {train:>8.2f} + {evaluate:<7.2f}")
    sources = [f"{name} {speed.source}" for name, speed in speeds.items() if not speed.measured]
    measured = sorted({speed.source for speed in speeds.values() if speed.measured})
    costs = ", ".join(f"{s.name} {attack_passes(s, first.nb_classes or 10, first.head != 'plain', max_steps):,.0f}"
                      for s in parse_attacks(table.attacks, eps=table.eps, eps_step=table.eps_step,
                                             max_steps=max_steps))
    training = ", ".join(dict.fromkeys(f"{c.framework_class().label or c.framework} {train_passes_per_image(c):g}"
                                       for c in configs.values()))
    lines += [
        "",
        f"GPU-hours: {total_train + total_eval:.2f} left (training {total_train:.2f}, evaluation {total_eval:.2f}) of "
        f"{full:.2f} for the whole table, on one {gpu['gpu']} at the training throughput measured there on "
        f"{gpu['date']} (torch {gpu['torch']}; bf16 + channels_last, batch {gpu['batch']}; {THROUGHPUT_FILE.name}).",
        "  images/s: m = measured, x = extrapolated. " + ("Measured: " + ", ".join(measured) + ". " if measured
                                                         else "No row of this table was measured. ")
        + ("Extrapolated: " + "; ".join(sources) + "." if sources else ""),
        f"  Training counts forward+backward passes per image and pass over the data: {training}. Evaluation per "
        "test image, upper bounds in forward+backward passes (a forward pass or query counts "
        f"{FORWARD:.2g}): {costs} (the first row's head; FAB and APGD-T per target class, Square per query).",
    ]
    return "\n".join(lines) + "\n"
