"""AutoAttack (Croce & Hein, 2020) through ``pyautoattack`` on an ART classifier, with its own checks captured.

The ensemble runs on the attack logits (``s * cos`` for HE; argmax and DLR/FAB/Square are unchanged by the scale,
APGD-CE is not). For a hypersphere head, APGD-CE is run once more on the raw cosines against the images that
survived, so the row is the per-sample worst case of both. ``pyautoattack`` reports its checks (randomness,
zero gradients, Square beating the gradient attacks, ...) only through the ``"auto-attack"`` logger: we record
every warning it logs there and its per-attack robust accuracies.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from pyautoattack import AutoAttack

from art_he.errors import UserError
from art_he.evaluation.views import as_torch_module, objective_for

AA_LOGGER = "auto-attack"
STANDARD = ("apgd-ce", "apgd-t", "fab-t", "square")
PARTS = ("apgd-ce", "apgd-dlr", "apgd-t", "fab", "fab-t", "square")
_ACCURACY = re.compile(r"robust accuracy after ([A-Z-]+): ([\d.]+)%")


@dataclass
class AutoAttackResult:
    x_adv: np.ndarray
    correct: np.ndarray
    per_attack: dict[str, float] = field(default_factory=dict)  # cumulative robust accuracy after each attack
    flags: list[str] = field(default_factory=list)  # AutoAttack's own warnings
    broken_by: dict[str, int] = field(default_factory=dict)
    time_s: float = 0.0


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def _configure(aa: AutoAttack, nb_classes: int, custom: bool, n_iter: int | None, n_queries: int | None) -> None:
    """Standard settings for custom runs (pyautoattack's custom defaults have 5 restarts), then smoke-test caps."""
    targets = max(1, min(9, nb_classes - 1))
    aa.apgd_targeted.n_target_classes = targets
    aa.fab.n_target_classes = targets
    if custom:
        aa.apgd.n_restarts = 1
        aa.fab.n_restarts = 1
        aa.apgd_targeted.n_restarts = 1
    if n_iter is not None:
        for attack in (aa.apgd, aa.apgd_targeted, aa.fab):
            attack.n_iter = n_iter
        aa.apgd.n_iter_orig = aa.apgd_targeted.n_iter_orig = n_iter
    if n_queries is not None:
        aa.square.n_queries = n_queries


def _run(module, x, y, *, eps, norm, attacks, seed, device, batch_size, nb_classes, n_iter, n_queries):
    custom = attacks is not None
    aa = AutoAttack(module, norm=norm, eps=eps, version="custom" if custom else "standard", device=device,
                    seed=seed, attacks=list(attacks) if custom else None)
    _configure(aa, nb_classes, custom, n_iter, n_queries)
    x_adv, y_adv = aa.run_standard_evaluation(torch.as_tensor(x), torch.as_tensor(y), batch_size=batch_size)
    return x_adv.cpu().numpy(), y_adv.cpu().numpy()


def run_autoattack(
    classifier,
    x: np.ndarray,
    y: np.ndarray,
    *,
    eps: float,
    attacks: tuple[str, ...] | None = None,
    norm: str = "Linf",
    batch_size: int = 250,
    seed: int = 0,
    raw_apgd: bool | None = None,
    n_iter: int | None = None,
    n_queries: int | None = None,
) -> AutoAttackResult:
    """Run AutoAttack (``attacks=None``: the standard version) on ``classifier``; ``y`` are integer labels.

    ``raw_apgd`` (default: when the model has a hypersphere head) adds APGD-CE on the raw outputs on the
    survivors. ``n_iter``/``n_queries`` cap APGD/FAB iterations and Square queries (smoke tests only).
    """
    if attacks is not None:
        unknown = set(attacks) - set(PARTS)
        if unknown:
            raise UserError(f"unknown AutoAttack parts {sorted(unknown)}; choose from {PARTS}")
    y = np.asarray(y, dtype=np.int64)
    he = objective_for(classifier).hypersphere
    raw_apgd = he if raw_apgd is None else raw_apgd
    device = classifier.device
    kwargs = dict(eps=eps, norm=norm, seed=seed, device=device, batch_size=batch_size,
                  nb_classes=classifier.nb_classes, n_iter=n_iter, n_queries=n_queries)
    logger = logging.getLogger(AA_LOGGER)
    capture, old_level = _Capture(), logger.level
    logger.addHandler(capture)
    logger.setLevel(logging.DEBUG)
    start = time.perf_counter()
    try:
        x_adv, y_adv = _run(as_torch_module(classifier, logits=True), x, y, attacks=attacks, **kwargs)
        broken = {"logits": int((y_adv != y).sum())}
        if raw_apgd and he and (attacks is None or "apgd-ce" in attacks):
            idx = np.flatnonzero(y_adv == y)
            if len(idx):
                xr, yr = _run(as_torch_module(classifier, logits=False), x[idx], y[idx], attacks=("apgd-ce",),
                              **kwargs)
                fooled = yr != y[idx]
                x_adv[idx[fooled]] = xr[fooled]
                broken["raw apgd-ce"] = int(fooled.sum())
    finally:
        logger.removeHandler(capture)
        logger.setLevel(old_level)
    elapsed = time.perf_counter() - start
    correct = classifier.predict(x_adv, batch_size=batch_size).argmax(1) == y
    per_attack: dict[str, float] = {}
    flags: list[str] = []
    for record in capture.records:
        message = record.getMessage()
        if record.levelno >= logging.WARNING:
            if message not in flags:
                flags.append(message)
        match = _ACCURACY.search(message)
        if match and match.group(1).lower() not in per_attack:
            per_attack[match.group(1).lower()] = float(match.group(2)) / 100
    return AutoAttackResult(x_adv.astype(np.float32), correct, per_attack, flags, broken, elapsed)
