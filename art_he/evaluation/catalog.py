"""The attack catalog: every attack family defined once, with its name, label, settings, views and ART builder.

Adding an attack is one :class:`AttackFamily` entry in :data:`CATALOG` (plus its test); parsing
(:mod:`~art_he.evaluation.specs`), running (:mod:`~art_he.evaluation.attacks`) and the suite
(:mod:`~art_he.evaluation.suite`) read everything they need from the entry.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from art.attacks.attack import EvasionAttack
from art.attacks.evasion import (
    BasicIterativeMethod,
    CarliniLInfMethod,
    DeepFool,
    FastGradientMethod,
    FeatureAdversariesPyTorch,
    MomentumIterativeMethod,
    ProjectedGradientDescent,
    SquareAttack,
    ZooAttack,
)
from art.estimators.classification import PyTorchClassifier

from art_he.attacks import NES, SPSA, ScoreBasedAttack
from art_he.errors import UserError

DEEPFOOL_OVERSHOOT = 0.02  # Moosavi-Dezfooli et al.'s overshoot (ART's ``epsilon``)
PROBE_MEMORY = 2**28  # bytes of probe images an SPSA/NES batch may hold
SCORE_SAMPLES = 128  # SPSA/NES directions per step (nb_samples)
ZOO_PARALLEL = 128  # ZOO coordinates per iteration
#: an attack's fixed settings, ``(key, value)`` pairs of mixed types (ints, floats, strings, AutoAttack's parts)
Options = tuple[tuple[str, Any], ...]



class Spec(Protocol):
    """What a builder reads of an attack's settings (an :class:`~art_he.evaluation.specs.AttackSpec`, read-only)."""

    @property
    def name(self) -> str: ...
    @property
    def steps(self) -> int: ...
    @property
    def eps(self) -> float: ...
    @property
    def eps_step(self) -> float: ...
    @property
    def restarts(self) -> int: ...
    def option(self, key: str, default: Any = None) -> Any: ...


@dataclass
class Context:
    """What attacks need besides the spec: batch size, seed, progress bars, a substitute, smoke-test caps."""

    batch_size: int = 128
    seed: int = 0
    verbose: bool = False
    substitute: object | None = None
    max_steps: int | None = None


Builder = Callable[[Spec, PyTorchClassifier, Context], EvasionAttack]
CE_RAW, CE, RAW = ("ce", "raw"), ("ce",), ("raw",)


@dataclass(frozen=True)
class AttackFamily:
    """One attack family: everything parsing, building, running and reporting need to know about it.

    ``views``/``plain_views`` are the classifier views (:func:`~art_he.evaluation.views.view`) the attack runs on
    for a hypersphere / a plain head; the row is the per-sample worst case over them.
    """

    name: str  # catalog key and name stem: "pgd" (pgd20), "deepfool"
    kind: str  # row kind: "white-box", "black-box", "transfer", "autoattack"
    label: str  # label template; ``{steps}`` is the step count
    steps: int  # default steps (iterations, queries)
    build: Builder | None  # (spec, estimator, ctx) -> ART attack; None: AutoAttack (pyautoattack)
    views: tuple[str, ...] = RAW
    plain_views: tuple[str, ...] = RAW
    stepped: bool = True  # the name may carry a step count: pgd20 (pgd alone: the default)
    takes_step: bool = True  # uses eps_step (otherwise the spec records eps)
    restarts: bool = False  # takes PGD's random starts (num_random_init)
    options: Options | Callable[[int], Options] = ()  # fixed settings, or a function of the requested steps
    projected: bool = False  # minimum-norm attack: its result is projected onto the eps-ball
    score_based: bool = False  # SPSA/NES: rows at fewer steps are read from one run of the most steps
    guided: bool = False  # crafted on the penultimate features towards a guide image of another class
    plain_alias: str | None = None  # on a plain head this attack is the named one (run once)
    family: str = ""  # family in the settings (AutoAttack's parts: "autoattack"); "" means the name

    def __post_init__(self) -> None:
        if not self.family:
            object.__setattr__(self, "family", self.name)

    @property
    def transfer(self) -> bool:
        """Crafted on the substitute classifier, evaluated on the target."""
        return self.kind == "transfer"

    @property
    def autoattack(self) -> bool:
        """Run by pyautoattack rather than built as an ART attack."""
        return self.build is None

    def settings_for(self, steps: int) -> Options:
        return self.options(steps) if callable(self.options) else self.options

    def runs_as(self, hypersphere: bool) -> str:
        """The catalog name of the computation this attack performs on a head (adaptive on a plain head: pgd)."""
        return self.plain_alias if self.plain_alias and not hypersphere else self.name

    def hint(self) -> str:
        """How the name is written: ``pgdN`` (steps in the label), ``zoo[N]`` (steps optional), ``fgsm``."""
        if not self.stepped:
            return self.name
        return f"{self.name}N" if "{steps}" in self.label else f"{self.name}[N]"


def _fgsm(spec: Spec, estimator: PyTorchClassifier, ctx: Context) -> FastGradientMethod:
    return FastGradientMethod(estimator, norm=np.inf, eps=spec.eps, eps_step=spec.eps, num_random_init=0,
                              batch_size=ctx.batch_size)


def _pgd(spec: Spec, estimator: PyTorchClassifier, ctx: Context) -> ProjectedGradientDescent:
    return ProjectedGradientDescent(estimator, norm=np.inf, eps=spec.eps, eps_step=spec.eps_step,
                                    max_iter=spec.steps, num_random_init=spec.restarts, batch_size=ctx.batch_size,
                                    verbose=ctx.verbose)


def _bim(spec: Spec, estimator: PyTorchClassifier, ctx: Context) -> BasicIterativeMethod:
    return BasicIterativeMethod(estimator, eps=spec.eps, eps_step=spec.eps_step, max_iter=spec.steps,
                                batch_size=ctx.batch_size, verbose=ctx.verbose)


def _mim(spec: Spec, estimator: PyTorchClassifier, ctx: Context) -> MomentumIterativeMethod:
    return MomentumIterativeMethod(estimator, norm=np.inf, eps=spec.eps, eps_step=spec.eps_step, decay=1.0,
                                   max_iter=spec.steps, batch_size=ctx.batch_size, verbose=ctx.verbose)


def _deepfool(spec: Spec, estimator: PyTorchClassifier, ctx: Context) -> DeepFool:
    return DeepFool(estimator, max_iter=spec.steps, epsilon=DEEPFOOL_OVERSHOOT, nb_grads=min(10, estimator.nb_classes),
                    batch_size=ctx.batch_size, verbose=ctx.verbose)


def _cw_art(spec: Spec, estimator: PyTorchClassifier, ctx: Context) -> CarliniLInfMethod:
    return CarliniLInfMethod(estimator, confidence=0.0, learning_rate=0.01, max_iter=spec.steps,
                             batch_size=ctx.batch_size, verbose=ctx.verbose)


def _feature(spec: Spec, estimator: PyTorchClassifier, ctx: Context) -> FeatureAdversariesPyTorch:
    return FeatureAdversariesPyTorch(estimator, delta=spec.eps, layer="features", max_iter=spec.steps,
                                     step_size=spec.eps_step, random_start=True, batch_size=ctx.batch_size,
                                     verbose=ctx.verbose)


def zoo_iterations(max_queries: int, nb_parallel: int) -> int:
    """ZOO iterations within ``max_queries`` queries per image: ``(max_queries - 2) // (2 P + 1)``.

    ART's ``ZooAttack`` (one binary-search step, no resizing) queries ``2 P`` probes and the new iterate per
    iteration, and predicts the clean and the adversarial image once more at the end (its success log).
    """
    return max(0, (max_queries - 2) // (2 * nb_parallel + 1))


def _zoo(spec: Spec, estimator: PyTorchClassifier, ctx: Context) -> ZooAttack:
    """ZOO within the spec's query budget: ART takes no budget, so it is passed as the number of iterations."""
    iterations = min(spec.steps, zoo_iterations(spec.option("max_queries"), spec.option("nb_parallel")))
    if iterations < 1:
        raise UserError(f"{spec.name}: {spec.option('max_queries')} queries per image do not cover one ZOO "
                        f"iteration ({2 * spec.option('nb_parallel') + 3}); ask for more steps")
    return ZooAttack(estimator, confidence=0.0, learning_rate=0.01, max_iter=iterations, binary_search_steps=1,
                     initial_const=spec.option("initial_const", 1.0), abort_early=True, use_resize=False,
                     use_importance=False, nb_parallel=spec.option("nb_parallel"), batch_size=1,
                     variable_h=spec.option("variable_h"), verbose=ctx.verbose)


def _square(spec: Spec, estimator: PyTorchClassifier, ctx: Context) -> SquareAttack:
    return SquareAttack(estimator, norm=np.inf, eps=spec.eps, max_iter=spec.steps, p_init=0.8, nb_restarts=1,
                        batch_size=ctx.batch_size, verbose=ctx.verbose)


def _score_based(cls: type[ScoreBasedAttack], spec: Spec, estimator: PyTorchClassifier,
                 ctx: Context) -> ScoreBasedAttack:
    """SPSA/NES with as many images per batch as :data:`PROBE_MEMORY` of float32 probes allows."""
    q = spec.option("nb_samples")
    per_image = 2 * q * int(np.prod(estimator.input_shape)) * 4
    images = max(1, min(ctx.batch_size, PROBE_MEMORY // per_image))
    return cls(estimator, eps=spec.eps, eps_step=spec.eps_step, max_iter=spec.steps, nb_samples=q,
               sigma=spec.option("sigma"), batch_size=images, seed=ctx.seed, verbose=ctx.verbose)


def _spsa(spec: Spec, estimator: PyTorchClassifier, ctx: Context) -> ScoreBasedAttack:
    return _score_based(SPSA, spec, estimator, ctx)


def _nes(spec: Spec, estimator: PyTorchClassifier, ctx: Context) -> ScoreBasedAttack:
    return _score_based(NES, spec, estimator, ctx)


def _zoo_options(steps: int) -> Options:
    """``zooN``: a budget of ``2 P N`` queries per image (N rounds of P coordinates, two probes each)."""
    return (("nb_parallel", ZOO_PARALLEL), ("variable_h", 1e-4), ("max_queries", 2 * ZOO_PARALLEL * steps))


def _autoattack(name: str, label: str, parts: tuple[str, ...] | None,
                views: tuple[str, ...] = ("logits",)) -> AttackFamily:
    """An AutoAttack entry: the standard ensemble (``parts=None``) or some of its attacks."""
    options: Options = (("attacks", parts),) if parts else (("version", "standard"),)
    return AttackFamily(name, "autoattack", label, 100, None, views=views, plain_views=("logits",), stepped=False,
                        takes_step=False, options=options, family="autoattack")


_SCORE_OPTIONS: Options = (("nb_samples", SCORE_SAMPLES), ("sigma", 1e-3))

#: every attack, in the order ``known_attacks()`` lists them
CATALOG: dict[str, AttackFamily] = {f.name: f for f in (
    AttackFamily("fgsm", "white-box", "FGSM", 1, _fgsm, CE_RAW, CE, stepped=False, takes_step=False),
    AttackFamily("pgd", "white-box", "PGD-{steps}", 20, _pgd, CE_RAW, CE, restarts=True),
    AttackFamily("mim", "white-box", "MIM-{steps}", 20, _mim, CE_RAW, CE),
    AttackFamily("bim", "white-box", "BIM-{steps}", 20, _bim, CE_RAW, CE),
    AttackFamily("cw", "white-box", "C&W-{steps} (PGD, margin)", 20, _pgd, ("margin",), ("margin",), restarts=True),
    AttackFamily("adaptive", "white-box", "Adaptive PGD-{steps}", 20, _pgd, ("adaptive",), CE, restarts=True,
                 plain_alias="pgd"),
    AttackFamily("deepfool", "white-box", "DeepFool", 100, _deepfool, stepped=False, takes_step=False,
                 projected=True),
    AttackFamily("cw-art", "white-box", "C&W-Linf (ART)", 10, _cw_art, ("logits", "raw"), stepped=False,
                 takes_step=False, projected=True),
    AttackFamily("feature", "white-box", "FeaAtt-{steps}", 100, _feature, guided=True),
    _autoattack("autoattack", "AutoAttack", None, ("logits", "raw")),
    _autoattack("aa-apgd-ce", "APGD-CE", ("apgd-ce",), ("logits", "raw")),
    _autoattack("aa-apgd-t", "APGD-T", ("apgd-t",)),
    _autoattack("aa-fab-t", "FAB-T", ("fab-t",)),
    _autoattack("aa-fab", "FAB", ("fab",)),
    _autoattack("fab", "FAB", ("fab",)),
    _autoattack("aa-square", "Square (AA)", ("square",)),
    AttackFamily("zoo", "black-box", "ZOO", 78, _zoo, ("logits", "raw"), takes_step=False, options=_zoo_options,
                 projected=True),
    AttackFamily("square", "black-box", "Square-{steps}", 1000, _square, takes_step=False),
    AttackFamily("spsa", "black-box", "SPSA-{steps}", 20, _spsa, score_based=True, options=_SCORE_OPTIONS),
    AttackFamily("nes", "black-box", "NES-{steps}", 20, _nes, score_based=True, options=_SCORE_OPTIONS),
    AttackFamily("transfer-pgd", "transfer", "Transfer PGD-{steps}", 20, _pgd, CE, CE, restarts=True),
    AttackFamily("transfer-mim", "transfer", "Transfer MIM-{steps}", 20, _mim, CE, CE),
)}

_NAME = re.compile(r"(.+?)(\d+)?")


def known_attacks() -> str:
    return ", ".join(f.hint() for f in CATALOG.values())


def lookup(name: str) -> tuple[AttackFamily, int]:
    """``"pgd20"`` -> (the PGD entry, 20); a stepped name without a count gets the default steps."""
    match = _NAME.fullmatch(name)
    family = CATALOG.get(match.group(1)) if match else None
    if match is None or family is None or (match.group(2) and not family.stepped):
        raise UserError(f"unknown attack {name!r}; known: {known_attacks()}")
    steps = int(match.group(2)) if match.group(2) else family.steps
    if steps < 1:
        raise UserError(f"attack {name!r} needs at least one step")
    return family, steps


def register_attack(family: AttackFamily) -> AttackFamily:
    """Add ``family`` to :data:`CATALOG`: ``evaluate(attacks=...)`` and ``art-he eval --attacks`` then take its name
    (see docs/extending.md). Returns it."""
    match = _NAME.fullmatch(family.name)
    if match is None:
        raise ValueError("attack names are not empty")
    if match.group(1) != family.name:
        raise ValueError(f"attack name {family.name!r} ends in digits, which name the steps")
    if CATALOG.get(family.name, family) is not family:
        raise ValueError(f"attack {family.name!r} is in the catalog already")
    CATALOG[family.name] = family
    return family
