"""Attack names, their settings, and the suites that group them.

An attack is named the way the paper's tables name it: ``pgd20`` (PGD, 20 steps), ``mim20``, ``cw20`` (PGD on the
C&W margin, as TRADES evaluates C&W-Linf), ``adaptive500`` (PGD on the HE training loss with s and m), ``fgsm``,
``deepfool``, ``cw-art`` (ART's ``CarliniLInfMethod``), ``feature100`` (ART's ``FeatureAdversariesPyTorch``),
``autoattack`` and its parts (``aa-apgd-ce``, ``aa-apgd-t``, ``aa-fab-t``, ``aa-square``, ``fab``), ``zoo``,
``square1000`` (queries), ``spsa80``, ``nes80`` and ``transfer-pgd20``/``transfer-mim20``. Each family is one
entry of :data:`~art_he.evaluation.catalog.CATALOG`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from art_he.errors import UserError
from art_he.evaluation.catalog import AttackFamily, Options, lookup
from art_he.losses import Objective
from art_he.validation import check_number

SUITES: dict[str, tuple[str, ...]] = {
    "quick": ("fgsm", "pgd20", "cw20", "adaptive20"),
    "paper": ("pgd20", "pgd500", "mim20", "fgsm", "deepfool", "cw20", "feature100", "fab", "autoattack",
              "adaptive20", "adaptive500"),
    "blackbox": ("pgd20", "zoo", "square1000", "spsa20", "spsa50", "spsa80", "nes20", "nes50", "nes80"),
    "corruptions": (),
    "transfer": ("pgd20", "mim20", "transfer-pgd20", "transfer-mim20"),
}
#: eps multipliers of the PGD-20 sweep each suite runs (the monotonicity sanity check needs one)
SWEEPS: dict[str, tuple[float, ...]] = {
    "quick": (0.5, 1.0, 2.0),
    "paper": (0.25, 0.5, 1.0, 1.5, 2.0),
    "blackbox": (),
    "corruptions": (),
    "transfer": (),
}


@dataclass(frozen=True)
class AttackSpec:
    """One attack with its settings, as it will reach ART.

    ``attack`` is its :class:`~art_he.evaluation.catalog.AttackFamily`. ``restarts`` is PGD's ``num_random_init``
    (1 = one uniform random start, as PGD is defined; 0 = start at x). ``requested_steps`` differs from ``steps``
    only when a smoke-test ``max_steps`` cap lowered it.
    """

    name: str
    attack: AttackFamily
    steps: int
    eps: float
    eps_step: float
    restarts: int = 1
    requested_steps: int | None = None
    options: Options = field(default=())

    @property
    def family(self) -> str:
        return self.attack.family

    @property
    def kind(self) -> str:
        return self.attack.kind

    @property
    def label(self) -> str:
        text = self.attack.label.format(steps=self.steps)
        if self.requested_steps not in (None, self.steps):
            text += f" [capped from {self.requested_steps}]"
        return text

    def option(self, key: str, default: Any = None) -> Any:
        return dict(self.options).get(key, default)

    def views(self, objective: Objective) -> tuple[str, ...]:
        """How the attack sees the model (its catalog views for the head); the table reports the worst case.

        Cross-entropy attacks run on the s-scaled logits (``"ce"``: ``CE(s cos)``) and on the raw cosines
        (``"raw"``: ``CE(cos)``); attacks on the outputs whose result depends on their scale (ART's C&W-Linf and
        ZOO, through the constant c) run on the logits view and on the raw outputs. Margin and sign-based attacks
        (C&W-PGD, DeepFool, Square, SPSA, NES) are scale-invariant and run once. A plain head has one view.
        """
        return self.attack.views if objective.hypersphere else self.attack.plain_views

    def settings(self) -> dict[str, Any]:
        out: dict[str, Any] = {"family": self.family, "eps": self.eps, "steps": self.steps}
        if self.attack.takes_step:
            out["eps_step"] = self.eps_step
        if self.attack.restarts:
            out["restarts"] = self.restarts
        if self.requested_steps not in (None, self.steps):
            out["requested_steps"] = self.requested_steps
        out.update(dict(self.options))
        return out


def parse_attack(
    name: str,
    *,
    eps: float,
    eps_step: float,
    restarts: int = 1,
    max_steps: int | None = None,
) -> AttackSpec:
    """``parse_attack("pgd20", eps=0.1, eps_step=0.01)`` -> :class:`AttackSpec`; ``ValueError`` for unknown names."""
    if not isinstance(name, str):
        raise TypeError(f"attack names are strings, got {type(name).__name__}")
    key = name.strip().lower()
    attack, requested = lookup(key)
    steps = requested if max_steps is None else min(requested, max_steps)
    return AttackSpec(key, attack, steps, float(eps), float(eps_step if attack.takes_step else eps),
                      restarts if attack.restarts else 0, requested if requested != steps else None,
                      attack.settings_for(requested))


def parse_attacks(names: str | Iterable[str], **kwargs: Any) -> list[AttackSpec]:
    """Parse a comma-separated string or a sequence of names; duplicates are dropped, order kept."""
    if isinstance(names, str):
        names = [part for part in names.split(",") if part.strip()]
    specs: list[AttackSpec] = []
    for name in names:
        spec = parse_attack(name, **kwargs)
        if spec.name not in {s.name for s in specs}:
            specs.append(spec)
    return specs


def check_suite(suite: str) -> str:
    if suite not in SUITES:
        raise UserError(f"unknown suite {suite!r}; choose from {sorted(SUITES)}")
    return suite


def check_eps(eps: float, eps_step: float | None) -> tuple[float, float]:
    check_number("eps", eps, low=0.0, strict=True)
    eps_step = eps / 10 if eps_step is None else eps_step
    check_number("eps_step", eps_step, low=0.0, strict=True)
    return float(eps), float(eps_step)


def scaled(spec: AttackSpec, factor: float) -> AttackSpec:
    """The same attack at ``factor * eps`` with a proportional step (for eps sweeps)."""
    return replace(spec, eps=spec.eps * factor, eps_step=spec.eps_step * factor)
