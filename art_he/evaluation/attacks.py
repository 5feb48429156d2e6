"""Build ART attacks from :class:`~art_he.evaluation.specs.AttackSpec` and run them as a per-sample worst case.

Every attack is an ART ``EvasionAttack`` (or ``art_he.attacks.SPSA``/``NES``, or AutoAttack through
``pyautoattack``). :func:`run_attack` attacks the images the model classifies correctly (as AutoAttack does;
a misclassified image keeps its clean version), runs the spec's first view on them and each further view only
on the images still classified correctly, so the result is the per-sample worst case over the views at the
cost of the survivors. Minimum-norm attacks without an eps (DeepFool, ART's C&W-Linf, ZOO) are projected onto the
eps-ball afterwards: an image counts as broken only if the projected image is misclassified.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
from art.attacks.evasion import (
    CarliniLInfMethod,
    DeepFool,
    FastGradientMethod,
    FeatureAdversariesPyTorch,
    MomentumIterativeMethod,
    ProjectedGradientDescent,
    SquareAttack,
    ZooAttack,
)

from art_he.attacks import NES, SPSA
from art_he.errors import UserError
from art_he.evaluation.auto_attack import run_autoattack
from art_he.evaluation.specs import AttackSpec
from art_he.evaluation.views import FeatureTap, feature_classifier, objective_for, project_linf, view

DEEPFOOL_OVERSHOOT = 0.02  # Moosavi-Dezfooli et al.'s overshoot (ART's ``epsilon``)
PROBE_MEMORY = 2**28  # bytes of probe images an SPSA/NES batch may hold


@dataclass
class Context:
    """What attacks need besides the spec: batch size, seed, progress bars, a substitute, smoke-test caps."""

    batch_size: int = 128
    seed: int = 0
    verbose: bool = False
    substitute: object | None = None
    max_steps: int | None = None


@dataclass
class Outcome:
    x_adv: np.ndarray
    correct: np.ndarray
    time_s: float
    details: dict = field(default_factory=dict)


def one_hot(y: np.ndarray, nb_classes: int) -> np.ndarray:
    out = np.zeros((len(y), nb_classes), dtype=np.float32)
    out[np.arange(len(y)), y] = 1.0
    return out


def seed_everything(seed: int) -> None:
    """ART's random starts draw from numpy's and torch's global generators."""
    import torch

    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


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


def build_attack(spec: AttackSpec, estimator, ctx: Context):
    """The ART attack object for ``spec`` on ``estimator`` (settings exactly as in the spec)."""
    bs, verbose, family = ctx.batch_size, ctx.verbose, spec.family
    if family == "fgsm":
        return FastGradientMethod(estimator, norm=np.inf, eps=spec.eps, eps_step=spec.eps, num_random_init=0,
                                  batch_size=bs)
    if family in ("pgd", "cw", "adaptive", "transfer-pgd"):
        return ProjectedGradientDescent(estimator, norm=np.inf, eps=spec.eps, eps_step=spec.eps_step,
                                        max_iter=spec.steps, num_random_init=spec.restarts, batch_size=bs,
                                        verbose=verbose)
    if family in ("mim", "transfer-mim"):
        return MomentumIterativeMethod(estimator, norm=np.inf, eps=spec.eps, eps_step=spec.eps_step, decay=1.0,
                                       max_iter=spec.steps, batch_size=bs, verbose=verbose)
    if family == "deepfool":
        return DeepFool(estimator, max_iter=spec.steps, epsilon=DEEPFOOL_OVERSHOOT,
                        nb_grads=min(10, estimator.nb_classes), batch_size=bs, verbose=verbose)
    if family == "cw-art":
        return CarliniLInfMethod(estimator, confidence=0.0, learning_rate=0.01, max_iter=spec.steps,
                                 batch_size=bs, verbose=verbose)
    if family == "feature":
        return FeatureAdversariesPyTorch(estimator, delta=spec.eps, layer="features", max_iter=spec.steps,
                                         step_size=spec.eps_step, random_start=True, batch_size=bs, verbose=verbose)
    if family == "zoo":
        return ZooAttack(estimator, confidence=0.0, learning_rate=0.01, max_iter=spec.steps, binary_search_steps=1,
                         initial_const=spec.option("initial_const", 1.0), abort_early=True, use_resize=False,
                         use_importance=False, nb_parallel=spec.option("nb_parallel"), batch_size=1,
                         variable_h=spec.option("variable_h"), verbose=verbose)
    if family == "square":
        return SquareAttack(estimator, norm=np.inf, eps=spec.eps, max_iter=spec.steps, p_init=0.8, nb_restarts=1,
                            batch_size=bs, verbose=verbose)
    if family in ("spsa", "nes"):
        q = spec.option("nb_samples")
        per_image = 2 * q * int(np.prod(estimator.input_shape)) * 4
        images = max(1, min(bs, PROBE_MEMORY // per_image))
        cls = SPSA if family == "spsa" else NES
        return cls(estimator, eps=spec.eps, eps_step=spec.eps_step, max_iter=spec.steps, nb_samples=q,
                   sigma=spec.option("sigma"), batch_size=images, seed=ctx.seed, verbose=verbose)
    raise UserError(f"no ART attack for family {family!r}")


def _generate(spec: AttackSpec, classifier, variant: str, x: np.ndarray, y: np.ndarray, ctx: Context, extra: dict):
    """Adversarial images for one view, held to eps and the box."""
    if spec.family == "feature":
        with FeatureTap(classifier.model) as tap:
            attack = build_attack(spec, feature_classifier(classifier, tap), ctx)
            return attack.generate(x, extra["guides"])
    if spec.family in ("transfer-pgd", "transfer-mim"):
        estimator = view(ctx.substitute, variant)
    else:
        estimator = view(classifier, variant)
    attack = build_attack(spec, estimator, ctx)
    x_adv = attack.generate(x, one_hot(y, classifier.nb_classes))
    if spec.family in ("spsa", "nes"):
        extra.setdefault("first_success", np.full(len(extra["all_y"]), -1))[extra["idx"]] = attack.first_success_
        extra["queries"] = extra.get("queries", 0) + attack.nb_queries_
        extra["queries_by_step"] = extra.get("queries_by_step", 0) + attack.queries_by_step_
    if spec.family in ("deepfool", "cw-art", "zoo"):
        x_adv = project_linf(x_adv, x, spec.eps, classifier.clip_values)
    return x_adv


def run_attack(spec: AttackSpec, classifier, x: np.ndarray, y: np.ndarray, ctx: Context) -> Outcome:
    """Attack ``(x, y)`` (integer labels) with every view of ``spec``; per-sample worst case."""
    seed_everything(ctx.seed)
    if spec.family == "autoattack":
        capped = ctx.max_steps
        result = run_autoattack(classifier, x, y, eps=spec.eps, attacks=spec.option("attacks"),
                                batch_size=ctx.batch_size, seed=ctx.seed, n_iter=capped,
                                n_queries=None if capped is None else capped * 10)
        details = {"broken_by": result.broken_by, "autoattack_flags": result.flags,
                   "per_attack": result.per_attack}
        return Outcome(result.x_adv, result.correct, result.time_s, details)
    if spec.family in ("transfer-pgd", "transfer-mim") and ctx.substitute is None:
        raise UserError(f"{spec.name} needs a substitute classifier")
    variants = spec.variants(objective_for(classifier))
    extra: dict = {"all_y": y}
    if spec.family == "feature":
        extra["guides_all"] = guide_images(x, y, ctx.seed)
    x_adv = x.copy()
    start = time.perf_counter()
    correct = classifier.predict(x, batch_size=ctx.batch_size).argmax(1) == y
    clean_correct = correct.copy()
    broken_by: dict[str, int] = {}
    for i, variant in enumerate(variants):
        idx = np.flatnonzero(correct)
        if not len(idx):
            break
        extra["idx"] = idx
        if spec.family == "feature":
            extra["guides"] = extra["guides_all"][idx]
        xa = _generate(spec, classifier, variant, x[idx], y[idx], ctx, extra)
        pred = classifier.predict(xa, batch_size=ctx.batch_size).argmax(1)
        fooled = pred != y[idx]
        if i == 0:
            x_adv[idx] = xa
        else:
            x_adv[idx[fooled]] = xa[fooled]
        correct[idx[fooled]] = False
        broken_by[variant] = int(fooled.sum())
    # the row is the accuracy on the final images, predicted once more (a randomised model shows up here)
    correct = classifier.predict(x_adv, batch_size=ctx.batch_size).argmax(1) == y
    details: dict = {"views": list(variants), "broken_by": broken_by}
    if spec.family in ("spsa", "nes"):
        first = extra.get("first_success", np.full(len(y), -1))
        first[~clean_correct] = 0  # misclassified from the start
        details["first_success"] = first
        details["queries"] = int(extra.get("queries", 0))
        details["queries_by_step"] = extra.get("queries_by_step", np.zeros(spec.steps + 1, dtype=np.int64))
    return Outcome(x_adv, correct, time.perf_counter() - start, details)
