"""Run an :class:`~art_he.evaluation.specs.AttackSpec` on a classifier as a per-sample worst case over its views.

Every attack is an ART ``EvasionAttack`` built by its :mod:`~art_he.evaluation.catalog` entry (or
``art_he.attacks.SPSA``/``NES``, or AutoAttack through ``pyautoattack``). :func:`run_attack` attacks the images
the model classifies correctly (as AutoAttack does; a misclassified image keeps its clean version), runs the
spec's first view on them and each further view only on the images still classified correctly, so the result is
the per-sample worst case over the views at the cost of the survivors. Minimum-norm attacks without an eps
(DeepFool, ART's C&W-Linf, ZOO) are projected onto the eps-ball afterwards: an image counts as broken only if the
projected image is misclassified.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from art.attacks.attack import EvasionAttack
from art.estimators.classification import PyTorchClassifier

from art_he.errors import UserError
from art_he.evaluation.auto_attack import run_autoattack
from art_he.evaluation.catalog import Context
from art_he.evaluation.specs import AttackSpec
from art_he.evaluation.views import FeatureTap, feature_classifier, objective_for, project_linf, view
from art_he.rng import global_seed


@dataclass
class Outcome:
    x_adv: np.ndarray
    correct: np.ndarray
    time_s: float
    details: dict[str, Any] = field(default_factory=dict)


def one_hot(y: np.ndarray, nb_classes: int) -> np.ndarray:
    out = np.zeros((len(y), nb_classes), dtype=np.float32)
    out[np.arange(len(y)), y] = 1.0
    return out


def guide_images(x: np.ndarray, y: np.ndarray, seed: int) -> np.ndarray:
    """For each image, a random image of another class (the feature attack's guide)."""
    rng = np.random.default_rng(seed)
    guides = np.empty_like(x)
    for i, label in enumerate(y):
        others = np.flatnonzero(y != label)
        if not len(others):
            raise UserError("the feature attack needs images of at least two classes")
        guides[i] = x[rng.choice(others)]
    return guides


def build_attack(spec: AttackSpec, estimator: PyTorchClassifier, ctx: Context) -> EvasionAttack:
    """The ART attack object for ``spec`` on ``estimator`` (settings exactly as in the spec)."""
    if spec.attack.build is None:
        raise ValueError(f"{spec.name} is run by pyautoattack, not built as an ART attack")
    return spec.attack.build(spec, estimator, ctx)


class ScoreLog:
    """What the score-based attacks report over the views of ``n`` images and ``steps`` steps: per image the step
    of its first success (-1: none), and the queries spent, in all and per step."""

    def __init__(self, n: int, steps: int) -> None:
        self.first_success = np.full(n, -1, dtype=np.int64)
        self.queries = 0
        self.queries_by_step = np.zeros(steps + 1, dtype=np.int64)

    def record(self, idx: npt.NDArray[np.intp], attack: Any) -> None:
        """Add one view's run of ``attack`` on the images ``idx``."""
        self.first_success[idx] = attack.first_success_
        self.queries += int(attack.nb_queries_)
        self.queries_by_step += attack.queries_by_step_


def _generate(spec: AttackSpec, classifier: PyTorchClassifier, view_name: str, x: np.ndarray, y: np.ndarray,
              ctx: Context, guides: np.ndarray | None) -> tuple[np.ndarray, EvasionAttack]:
    """Adversarial images for one view, held to eps and the box, and the attack that made them (``guides``: the
    guided attacks' target images)."""
    family = spec.attack
    if family.guided:
        with FeatureTap(classifier.model) as tap:
            attack = build_attack(spec, feature_classifier(classifier, tap), ctx)
            guided: np.ndarray = attack.generate(x, guides)
            return guided, attack
    attack = build_attack(spec, view(ctx.substitute if family.transfer else classifier, view_name), ctx)
    x_adv: np.ndarray = attack.generate(x, one_hot(y, classifier.nb_classes))
    if family.projected:
        x_adv = project_linf(x_adv, x, spec.eps, classifier.clip_values)
    return x_adv, attack


def _autoattack(spec: AttackSpec, classifier: PyTorchClassifier, x: np.ndarray, y: np.ndarray,
                ctx: Context) -> Outcome:
    capped = ctx.max_steps
    result = run_autoattack(classifier, x, y, eps=spec.eps, attacks=spec.option("attacks"),
                            batch_size=ctx.batch_size, seed=ctx.seed, n_iter=capped,
                            n_queries=None if capped is None else capped * 10)
    details = {"broken_by": result.broken_by, "autoattack_flags": result.flags, "per_attack": result.per_attack}
    return Outcome(result.x_adv, result.correct, result.time_s, details)


def run_attack(spec: AttackSpec, classifier: PyTorchClassifier, x: np.ndarray, y: np.ndarray, ctx: Context) -> Outcome:
    """Attack ``(x, y)`` (integer labels) with every view of ``spec``; per-sample worst case.

    ART's random starts (and pyautoattack) draw from the global generators: they are seeded with ``ctx.seed``
    for the run and restored afterwards.
    """
    with global_seed(ctx.seed):
        if spec.attack.autoattack:
            return _autoattack(spec, classifier, x, y, ctx)
        return _worst_case(spec, classifier, x, y, ctx)


def _worst_case(spec: AttackSpec, classifier: PyTorchClassifier, x: np.ndarray, y: np.ndarray, ctx: Context) -> Outcome:
    """The first view on the correctly classified images, each further view on the survivors."""
    family = spec.attack
    if family.transfer and ctx.substitute is None:
        raise ValueError(f"{spec.name} needs a substitute classifier (evaluate checks it before attacking)")
    views = spec.views(objective_for(classifier))
    log = ScoreLog(len(y), spec.steps)
    guides = guide_images(x, y, ctx.seed) if family.guided else None
    x_adv = x.copy()
    start = time.perf_counter()
    correct = classifier.predict(x, batch_size=ctx.batch_size).argmax(1) == y
    clean_correct = correct.copy()
    broken_by: dict[str, int] = {}
    for i, view_name in enumerate(views):
        idx = np.flatnonzero(correct)
        if not len(idx):
            break
        xa, attack = _generate(spec, classifier, view_name, x[idx], y[idx], ctx,
                               None if guides is None else guides[idx])
        if family.score_based:
            log.record(idx, attack)
        pred = classifier.predict(xa, batch_size=ctx.batch_size).argmax(1)
        fooled = pred != y[idx]
        if i == 0:
            x_adv[idx] = xa
        else:
            x_adv[idx[fooled]] = xa[fooled]
        correct[idx[fooled]] = False
        broken_by[view_name] = int(fooled.sum())
    # the row is the accuracy on the final images, predicted once more (a randomised model shows up here)
    correct = classifier.predict(x_adv, batch_size=ctx.batch_size).argmax(1) == y
    details: dict[str, Any] = {"views": list(views), "broken_by": broken_by}
    if family.score_based:
        log.first_success[~clean_correct] = 0  # misclassified from the start
        details["first_success"] = log.first_success
        details["queries"] = log.queries
        details["queries_by_step"] = log.queries_by_step
    return Outcome(x_adv, correct, time.perf_counter() - start, details)
