"""The runner: plan, train, evaluate and compare one table, row by row, skipping what is done."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from art_he.config import TrainConfig
from art_he.errors import UserError
from art_he.reproduce.cache import (
    EVAL_FILE,
    RowState,
    cached_report,
    describe,
    eval_settings,
    row_state,
    weights_digest,
)
from art_he.reproduce.plan import plan_text, row_configs
from art_he.reproduce.report import comparison_text, row_values, training_minutes, write_results
from art_he.reproduce.tables import PaperTable, get_table

if TYPE_CHECKING:
    from art_he.evaluation.report import Report

log = logging.getLogger("art_he.reproduce")


def evaluate_row(table: PaperTable, run_dir: Path, settings: dict[str, Any],
                 test_data: Callable[[], tuple[np.ndarray, np.ndarray]], verbose: bool) -> Report:
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


def train_row(cfg: TrainConfig, run_dir: Path, state: RowState, verbose: bool) -> None:
    """Train a row that is not finished: from scratch, or on from its checkpoint."""
    from art_he import runs

    runs.train_run(cfg, run_dir, resume=state.kind == "resume", overwrite=state.kind == "restart", verbose=verbose)


def reproduce(name: str, overrides: dict[str, Any], out: str | Path = "runs/reproduce", *, n: int | None = None,
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
    log.info("%s", plan_text(table, configs, states, out, overrides, n, max_steps))
    if dry_run:
        return ""
    values: dict[str, dict[str, float | None]] = {}
    n_eval: list[int] = []
    for row, cfg in configs.items():
        run_dir, state = out / row, states[row]
        if state.kind == "trained":
            log.info("== %s: trained, skipped", row)
        else:
            assert cfg.passes is not None  # a resolved config (row_configs)
            log.info("== %s: %s", row, describe(state, cfg.passes))
            train_row(cfg, run_dir, state, verbose)
        log.info("== %s: %s", row, "evaluation cached" if state.evaluated else "evaluating")
        report = evaluate_row(table, run_dir, settings, test, verbose)
        values[row] = row_values(table, report, training_minutes(run_dir))
        n_eval.append(report.rows[0].n)
    text = comparison_text(table, values, min(n_eval), max_steps)
    write_results(out, table, values, text)
    return text


def _test_loader(cfg: TrainConfig, n: int | None) -> Callable[[], tuple[np.ndarray, np.ndarray]]:
    """A function giving the test set (``n`` images of an image folder's), read once, on first use."""
    from art_he.data import load_dataset

    @functools.lru_cache(maxsize=1)
    def load() -> tuple[np.ndarray, np.ndarray]:
        return load_dataset(cfg.dataset, train=False, data_dir=cfg.data_dir, verify=cfg.verify_data,
                            image_size=cfg.image_size, n=n)

    return load
