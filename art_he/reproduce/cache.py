"""A row's folder: what state it is in (new, stopped, trained) and its cached evaluation ``eval.json``."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from art_he.config import TrainConfig
from art_he.errors import UserError
from art_he.reproduce.tables import PaperTable

if TYPE_CHECKING:
    from art_he.evaluation.report import Report

EVAL_FILE = "eval.json"


@dataclass(frozen=True)
class RowState:
    """What a row's folder holds: ``new``, ``restart`` (stopped in its first epoch), ``resume`` (a checkpoint
    after ``epochs_done`` passes) or ``trained``; ``evaluated`` when its ``eval.json`` matches the settings."""

    kind: str
    epochs_done: int = 0
    evaluated: bool = False


def row_state(run_dir: Path, cfg: TrainConfig, settings: dict[str, Any] | None = None) -> RowState:
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
        assert cfg.passes is not None  # a resolved config (TrainConfig.resolved)
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


def eval_settings(table: PaperTable, n: int | None, max_steps: int | None) -> dict[str, Any]:
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


def cached_report(run_dir: Path, settings: dict[str, Any]) -> Report | None:
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
