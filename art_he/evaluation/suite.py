"""``evaluate``: run a suite of attacks (or corruptions) on one classifier and return a :class:`Report`.

Suites (:data:`~art_he.evaluation.specs.SUITES`): ``quick`` (FGSM, PGD-20, C&W-20, adaptive PGD-20 and a
short eps sweep), ``paper`` (Table 2 plus AutoAttack and the adaptive attacks), ``blackbox`` (Table 8: ZOO,
Square, SPSA and NES at 20/50/80 steps, with PGD-20 as the white-box reference), ``corruptions`` (Tables 5 and
11) and ``transfer`` (App. C.4: PGD-20 and MIM-20 crafted on a substitute). Identical attacks are run once:
on a plain head the adaptive attack is plain PGD, and SPSA/NES at 20, 50 and 80 steps are one run of 80 steps
read at 20 and 50 (an image frozen once adversarial stays adversarial).
"""

from __future__ import annotations

import datetime as _dt
import os
import time
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from art.estimators.classification import PyTorchClassifier

from art_he.errors import UserError
from art_he.evaluation.attacks import Outcome, run_attack
from art_he.evaluation.catalog import Context
from art_he.evaluation.corruptions import evaluate_corruptions
from art_he.evaluation.report import Report, Row
from art_he.evaluation.sanity import run_checks
from art_he.evaluation.specs import (
    SUITES,
    SWEEPS,
    AttackSpec,
    check_eps,
    check_suite,
    parse_attack,
    parse_attacks,
    scaled,
)
from art_he.evaluation.views import objective_for
from art_he.progress import progress
from art_he.validation import check_number, check_xy


def _check_classifier(classifier: object, name: str = "classifier") -> None:
    if not isinstance(classifier, PyTorchClassifier):
        raise TypeError(f"{name} must be an ART PyTorchClassifier (e.g. art_he.HEPyTorchClassifier), "
                        f"got {type(classifier).__name__}")


def _perturbation(x_adv: np.ndarray, x: np.ndarray,
                  clip_values: tuple[npt.ArrayLike, npt.ArrayLike] | None) -> dict[str, float | bool]:
    out: dict[str, float | bool] = {"max_perturbation": float(np.abs(x_adv - x).max()) if len(x) else 0.0}
    if clip_values is not None:
        out["in_box"] = bool(x_adv.min() >= np.min(clip_values[0]) - 1e-6
                             and x_adv.max() <= np.max(clip_values[1]) + 1e-6)
    return out


class _Runner:
    """Runs specs, sharing results between identical attacks."""

    def __init__(self, classifier: PyTorchClassifier, x: np.ndarray, y: np.ndarray, ctx: Context) -> None:
        self.classifier, self.x, self.y, self.ctx = classifier, x, y, ctx
        self.he = objective_for(classifier).hypersphere
        self.cache: dict[tuple[object, ...], tuple[Outcome, str]] = {}

    def key(self, spec: AttackSpec) -> tuple[object, ...]:
        return (spec.attack.runs_as(self.he), spec.steps, round(spec.eps, 12), round(spec.eps_step, 12),
                spec.restarts, spec.views(objective_for(self.classifier)))

    def outcome(self, spec: AttackSpec) -> tuple[Outcome, str | None]:
        key = self.key(spec)
        if key in self.cache:
            outcome, label = self.cache[key]
            return outcome, label
        outcome = run_attack(spec, self.classifier, self.x, self.y, self.ctx)
        self.cache[key] = (outcome, spec.label)
        return outcome, None

    def row(self, spec: AttackSpec, kind: str | None = None, attack: str | None = None,
            label: str | None = None) -> Row:
        outcome, same_as = self.outcome(spec)
        details = {k: v for k, v in outcome.details.items()
                   if k not in ("first_success", "queries_by_step")}
        details.update(_perturbation(outcome.x_adv, self.x, self.classifier.clip_values))
        if spec.attack.projected:
            details["projected"] = True
        if same_as is not None and same_as != (label or spec.label):
            details["same_as"] = same_as
        return Row(attack or spec.name, label or spec.label, kind or spec.kind, float(outcome.correct.mean()),
                   len(self.x), 0.0 if same_as else outcome.time_s, spec.eps, spec.settings(), details)

    def score_rows(self, specs: list[AttackSpec]) -> list[Row]:
        """SPSA/NES specs of one family and eps: one run of the most steps, read at each requested step count."""
        longest = max(specs, key=lambda s: s.steps)
        outcome, _ = self.outcome(longest)
        first = outcome.details["first_success"]
        by_step = outcome.details["queries_by_step"]
        total = max(int(by_step[-1]), 1)
        rows: list[Row] = []
        for spec in specs:
            t = min(spec.steps, len(by_step) - 1)
            correct = (first == -1) | (first > t)
            queries = int(by_step[t])
            details = {"views": outcome.details["views"], "queries": queries,
                       **_perturbation(outcome.x_adv, self.x, self.classifier.clip_values)}
            if spec is not longest:
                details["read_from"] = longest.label
            rows.append(Row(spec.name, spec.label, spec.kind, float(correct.mean()), len(self.x),
                            outcome.time_s * queries / total, spec.eps, spec.settings(), details))
        return rows


def evaluate(
    classifier: PyTorchClassifier,
    x: np.ndarray,
    y: np.ndarray,
    *,
    suite: str = "quick",
    attacks: str | Sequence[str] | None = None,
    n: int | None = None,
    eps: float | None = None,
    eps_step: float | None = None,
    restarts: int = 1,
    batch_size: int = 128,
    seed: int = 0,
    substitute: PyTorchClassifier | None = None,
    dataset: str | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    corruptions: str | Iterable[str] | None = None,
    severities: str | Iterable[int | str] | None = None,
    sweep: Iterable[float] | None = None,
    max_steps: int | None = None,
    name: str | None = None,
    meta: dict[str, Any] | None = None,
    verbose: bool = False,
) -> Report:
    """Evaluate ``classifier`` on the first ``n`` of ``(x, y)`` with a suite; returns a :class:`Report`.

    :param attacks: attack names (list or comma-separated) replacing the suite's list (see ``specs``).
    :param eps: Linf radius (required except for ``suite="corruptions"``); ``eps_step`` defaults to ``eps / 10``.
    :param restarts: random starts of the PGD-type attacks (``num_random_init``).
    :param substitute: the substitute classifier of the transfer attacks.
    :param dataset: ``"cifar10"``, ``"cifar100"``, ``"imagenet"`` read the benchmark corruption sets from
        ``data_dir``; any other name corrupts ``x`` locally.
    :param sweep: eps multipliers of the PGD-20 sweep (default: the suite's, none when ``attacks`` replaces the
        suite's list; ``()`` for none).
    :param max_steps: cap on every attack's iterations/queries, for smoke tests (labels and settings show it).
    """
    suite = check_suite(suite)
    x, y = _checked_inputs(classifier, x, y, n, batch_size, seed, restarts, max_steps)
    info = _info(classifier, len(x), dataset, seed, batch_size, meta)
    start = time.perf_counter()
    clean = float((classifier.predict(x, batch_size=batch_size).argmax(1) == y).mean())
    rows = [Row("clean", "Clean", "clean", clean, len(x), time.perf_counter() - start)]

    if suite == "corruptions":
        if attacks:
            raise UserError("the corruptions suite takes --corruptions, not --attacks")
        rows += evaluate_corruptions(classifier, dataset=dataset or "local", x=x, y=y, n=len(x), data_dir=data_dir,
                                     corruptions=corruptions, severities=severities, batch_size=batch_size, seed=seed)
        return Report(name or "model", suite, rows, info, run_checks(rows, clean))

    if eps is None:
        raise UserError(f"suite {suite!r} needs eps (the Linf radius)")
    eps, eps_step = check_eps(eps, eps_step)
    info.update({"eps": eps, "eps_step": eps_step, "restarts": restarts})
    kwargs: dict[str, Any] = {"eps": eps, "eps_step": eps_step, "restarts": restarts, "max_steps": max_steps}
    specs = parse_attacks(SUITES[suite] if attacks is None else attacks, **kwargs)
    _check_specs(specs, classifier, substitute)
    # ART's own per-batch bars stay off: they would nest inside the suite's bar
    ctx = Context(batch_size=batch_size, seed=seed, verbose=False, substitute=substitute, max_steps=max_steps)
    runner = _Runner(classifier, x, y, ctx)
    rows += _attack_rows(runner, specs, verbose)
    multipliers = (SWEEPS[suite] if attacks is None else ()) if sweep is None else tuple(sweep)
    if multipliers:
        rows += _sweep_rows(runner, parse_attack("pgd20", **kwargs), multipliers)
    return Report(name or "model", suite, rows, info, run_checks(rows, clean))


def _checked_inputs(classifier: PyTorchClassifier, x: np.ndarray, y: np.ndarray, n: int | None, batch_size: int,
                    seed: int, restarts: int,
                    max_steps: int | None) -> tuple[np.ndarray, np.ndarray]:
    """The first ``n`` of ``x`` (float32) and ``y`` (int64 labels), once the classifier and the numbers are checked."""
    _check_classifier(classifier)
    x_checked, y_checked = check_xy(x, y, classifier.input_shape, classifier.nb_classes)
    x = np.asarray(x_checked, dtype=np.float32)
    y = np.asarray(y_checked).astype(np.int64)
    if n is not None:
        check_number("n", n, low=1, integer=True)
        x, y = x[:n], y[:n]
    check_number("batch_size", batch_size, low=1, integer=True)
    check_number("seed", seed, low=0, integer=True)
    check_number("restarts", restarts, low=0, integer=True)
    if max_steps is not None:
        check_number("max_steps", max_steps, low=1, integer=True)
    return x, y


def _info(classifier: PyTorchClassifier, n: int, dataset: str | None, seed: int, batch_size: int,
          meta: dict[str, Any] | None) -> dict[str, Any]:
    """The report's ``meta``: the data, the head and ``meta``."""
    obj = objective_for(classifier)
    return {"dataset": dataset, "n": n, "seed": seed, "batch_size": batch_size,
            "head": ("mhe" if obj.variant == "mhe" else "he") if obj.hypersphere else "plain",
            "scale": obj.scale, "margin": obj.margin, "created": _dt.datetime.now().isoformat(timespec="seconds"),
            **(meta or {})}


def _check_specs(specs: list[AttackSpec], classifier: PyTorchClassifier, substitute: PyTorchClassifier | None) -> None:
    """At least one attack, and a substitute of the classifier's inputs and classes for transfer attacks."""
    if not specs:
        raise UserError("no attacks to run")
    if any(s.attack.transfer for s in specs):
        if substitute is None:
            raise UserError("transfer attacks need a substitute classifier (--substitute DIR)")
        _check_classifier(substitute, "substitute")
        if tuple(substitute.input_shape) != tuple(classifier.input_shape) or \
                substitute.nb_classes != classifier.nb_classes:
            raise UserError("the substitute must take the same inputs and classes as the target")


def _attack_rows(runner: _Runner, specs: list[AttackSpec], verbose: bool) -> list[Row]:
    """One row per spec, in order; SPSA/NES specs of one family and eps are read from one run (at the first)."""
    groups: dict[tuple[str, float, float], list[AttackSpec]] = {}
    for spec in specs:
        if spec.attack.score_based:
            groups.setdefault((spec.attack.name, spec.eps, spec.eps_step), []).append(spec)
    rows: list[Row] = []
    done: set[tuple[str, float, float]] = set()
    bar = progress(specs, desc="attacks", enabled=verbose)
    for spec in bar:
        bar.set_postfix_str(spec.label)
        if spec.attack.score_based:
            group = (spec.attack.name, spec.eps, spec.eps_step)
            if group not in done:
                rows += runner.score_rows(groups[group])
                done.add(group)
            continue
        rows.append(runner.row(spec))
    return rows


def _sweep_rows(runner: _Runner, base: AttackSpec, multipliers: Iterable[float]) -> list[Row]:
    """``base`` (PGD-20) at each multiple of its eps, smallest first."""
    rows: list[Row] = []
    for m in sorted(float(check_number("sweep multiplier", v, low=0.0, strict=True)) for v in multipliers):
        spec = scaled(base, m)
        rows.append(runner.row(spec, kind="sweep", attack=f"pgd20@{m:g}eps",
                               label=f"{base.label} @ eps {spec.eps:.4g}"))
    return rows
