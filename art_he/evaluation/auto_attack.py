"""AutoAttack (Croce & Hein, 2020) through ``pyautoattack`` on an ART classifier, with its own checks captured.

The ensemble runs on the attack logits (``s * cos`` for HE; argmax and DLR/FAB/Square are unchanged by the scale,
APGD-CE is not). For a hypersphere head, APGD-CE is run once more on the raw cosines against the images that
survived, so the row is the per-sample worst case of both.

pyautoattack keeps its per-attack robust accuracies in a local of ``run_standard_evaluation`` (only logged), so we
run its cascade one attack at a time on one ``AutoAttack`` object: each attack gets the images the earlier ones
left correctly classified, exactly as in one run (every attack reseeds itself), and the robust accuracy after each
is read off the returned predictions. Its checks (randomness, zero gradients, Square beating the gradient
attacks, ...) are warnings on the ``"auto-attack"`` logger: we record those, at whatever level the user has set
for that logger (no level is changed).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import torch
from pyautoattack import AutoAttack, checks
from torch import nn

from art_he.errors import UserError
from art_he.evaluation.views import as_torch_module, objective_for
from art_he.rng import global_seed

if TYPE_CHECKING:
    from art.estimators.classification import PyTorchClassifier

AA_LOGGER = "auto-attack"
STANDARD = ("apgd-ce", "apgd-t", "fab-t", "square")
PARTS = ("apgd-ce", "apgd-dlr", "apgd-t", "fab", "fab-t", "square")


@dataclass
class AutoAttackResult:
    x_adv: np.ndarray
    correct: np.ndarray
    per_attack: dict[str, float] = field(default_factory=dict)  # cumulative robust accuracy after each attack
    flags: list[str] = field(default_factory=list)  # AutoAttack's own warnings
    broken_by: dict[str, int] = field(default_factory=dict)
    time_s: float = 0.0


class _Capture(logging.Handler):
    """Collects the distinct warning messages logged while it is attached."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message not in self.messages:
            self.messages.append(message)


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


def _run(module: nn.Module, x: np.ndarray, y: npt.NDArray[np.int64], *, eps: float, norm: str,
         attacks: Sequence[str] | None, seed: int, device: torch.device, batch_size: int, nb_classes: int,
         n_iter: int | None, n_queries: int | None) -> tuple[np.ndarray, npt.NDArray[np.bool_], dict[str, float]]:
    """pyautoattack's cascade, one attack at a time; returns the images and the robust accuracy after each attack."""
    custom = attacks is not None
    aa = AutoAttack(module, norm=norm, eps=eps, version="custom" if custom else "standard", device=device,
                    seed=seed, attacks=list(attacks) if attacks is not None else None)
    _configure(aa, nb_classes, custom, n_iter, n_queries)
    x_adv, robust = x.copy(), np.ones(len(x), dtype=bool)
    per_attack: dict[str, float] = {}
    for part in list(aa.attacks_to_run):
        idx = np.flatnonzero(robust)
        if not len(idx):
            break  # as pyautoattack: no robust images left, the remaining attacks are skipped
        aa.attacks_to_run = [part]
        xa, ya = aa.run_standard_evaluation(torch.as_tensor(x[idx]), torch.as_tensor(y[idx]), batch_size=batch_size)
        broken = ya.cpu().numpy() != y[idx]
        x_adv[idx[broken]] = xa.cpu().numpy()[broken]
        robust[idx[broken]] = False
        per_attack[part] = float(robust.mean())
    return x_adv, robust, per_attack


def run_autoattack(
    classifier: PyTorchClassifier,
    x: np.ndarray,
    y: np.ndarray,
    *,
    eps: float,
    attacks: tuple[str, ...] | None = None,
    norm: str = "Linf",
    batch_size: int = 250,
    seed: int = 0,
    raw_apgd: bool | None = None,
    logits: bool = True,
    n_iter: int | None = None,
    n_queries: int | None = None,
) -> AutoAttackResult:
    """Run AutoAttack (``attacks=None``: the standard version) on ``classifier``; ``y`` are integer labels.

    ``raw_apgd`` (default: when the model has a hypersphere head) adds APGD-CE on the raw outputs on the
    survivors. ``logits=False`` runs the attacks on the raw outputs instead (no extra pass): with
    ``attacks=("apgd-ce",)`` on the survivors of the standard attacks, that extra pass alone, so that a long run
    can go part by part. ``n_iter``/``n_queries`` cap APGD/FAB iterations and Square queries (smoke tests only).
    """
    if attacks is not None:
        unknown = set(attacks) - set(PARTS)
        if unknown:
            raise UserError(f"unknown AutoAttack parts {sorted(unknown)}; choose from {PARTS}")
    y = np.asarray(y, dtype=np.int64)
    he = objective_for(classifier).hypersphere
    raw_apgd = he if raw_apgd is None else raw_apgd
    device = classifier.device
    kwargs: dict[str, Any] = dict(eps=eps, norm=norm, seed=seed, device=device, batch_size=batch_size,
                                  nb_classes=classifier.nb_classes, n_iter=n_iter, n_queries=n_queries)
    logger = logging.getLogger(AA_LOGGER)
    capture = _Capture()
    logger.addHandler(capture)
    start = time.perf_counter()
    with global_seed(seed):  # pyautoattack reseeds torch's global generator: restored afterwards
        try:
            module = as_torch_module(classifier, logits=logits)
            x_adv, robust, per_attack = _run(module, x, y, attacks=attacks, **kwargs)
            clean_correct = classifier.predict(x, batch_size=batch_size).argmax(1) == y
            checks.check_square_sr({"clean": float(clean_correct.mean()), **per_attack}, logger=logger)
            # images the attack broke, as the other rows count them: correct before, wrong after
            broken = {"logits" if logits else "raw": int((clean_correct & ~robust).sum())}
            if raw_apgd and he and logits and (attacks is None or "apgd-ce" in attacks):
                idx = np.flatnonzero(robust)
                if len(idx):
                    raw = as_torch_module(classifier, logits=False)
                    xr, still, _ = _run(raw, x[idx], y[idx], attacks=("apgd-ce",), **kwargs)
                    x_adv[idx[~still]] = xr[~still]
                    broken["raw apgd-ce"] = int((~still).sum())
            elapsed = time.perf_counter() - start
            correct = classifier.predict(x_adv, batch_size=batch_size).argmax(1) == y
        finally:
            logger.removeHandler(capture)
    return AutoAttackResult(x_adv.astype(np.float32), correct, per_attack, capture.messages, broken, elapsed)
