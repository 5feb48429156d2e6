"""Attack names, their settings, and the suites that group them.

An attack is named the way the paper's tables name it: ``pgd20`` (PGD, 20 steps), ``mim20``, ``cw20`` (PGD on the
C&W margin, as TRADES evaluates C&W-Linf), ``adaptive500`` (PGD on the HE training loss with s and m), ``fgsm``,
``deepfool``, ``cw-art`` (ART's ``CarliniLInfMethod``), ``feature100`` (ART's ``FeatureAdversariesPyTorch``),
``autoattack`` and its parts (``aa-apgd-ce``, ``aa-apgd-t``, ``aa-fab-t``, ``aa-square``, ``fab``), ``zoo``,
``square1000`` (queries), ``spsa80``, ``nes80`` and ``transfer-pgd20``/``transfer-mim20``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from art_he.errors import UserError
from art_he.losses import Objective
from art_he.validation import check_number

#: family -> (kind, default steps or None, label template)
FAMILIES: dict[str, tuple[str, int | None, str]] = {
    "fgsm": ("white-box", 1, "FGSM"),
    "pgd": ("white-box", 20, "PGD-{steps}"),
    "mim": ("white-box", 20, "MIM-{steps}"),
    "cw": ("white-box", 20, "C&W-{steps}"),
    "adaptive": ("white-box", 20, "Adaptive PGD-{steps}"),
    "deepfool": ("white-box", 100, "DeepFool"),
    "cw-art": ("white-box", 10, "C&W-Linf (ART)"),
    "feature": ("white-box", 100, "FeaAtt-{steps}"),
    "autoattack": ("autoattack", 100, "AutoAttack"),
    "zoo": ("black-box", 78, "ZOO"),
    "square": ("black-box", 1000, "Square-{steps}"),
    "spsa": ("black-box", 20, "SPSA-{steps}"),
    "nes": ("black-box", 20, "NES-{steps}"),
    "transfer-pgd": ("transfer", 20, "Transfer PGD-{steps}"),
    "transfer-mim": ("transfer", 20, "Transfer MIM-{steps}"),
}
AA_PARTS = {"autoattack": None, "aa-apgd-ce": ("apgd-ce",), "aa-apgd-t": ("apgd-t",), "aa-fab-t": ("fab-t",),
            "aa-fab": ("fab",), "fab": ("fab",), "aa-square": ("square",)}
AA_LABELS = {"aa-apgd-ce": "APGD-CE", "aa-apgd-t": "APGD-T", "aa-fab-t": "FAB-T", "aa-fab": "FAB", "fab": "FAB",
             "aa-square": "Square (AA)"}
_STEPPED = re.compile(r"^(pgd|mim|cw|adaptive|feature|zoo|square|spsa|nes|transfer-pgd|transfer-mim)(\d+)?$")

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

    ``restarts`` is PGD's ``num_random_init`` (1 = one uniform random start, as PGD is defined; 0 = start at x).
    ``requested_steps`` differs from ``steps`` only when a smoke-test ``max_steps`` cap lowered it.
    """

    name: str
    family: str
    steps: int
    eps: float
    eps_step: float
    restarts: int = 1
    requested_steps: int | None = None
    options: tuple = field(default=())

    @property
    def kind(self) -> str:
        return FAMILIES[self.family][0]

    @property
    def label(self) -> str:
        if self.name in AA_LABELS:
            return AA_LABELS[self.name]
        text = FAMILIES[self.family][2].format(steps=self.steps)
        if self.family == "cw":
            text += " (PGD, margin)"
        if self.requested_steps not in (None, self.steps):
            text += f" [capped from {self.requested_steps}]"
        return text

    def option(self, key: str, default=None):
        return dict(self.options).get(key, default)

    def variants(self, objective: Objective) -> tuple[str, ...]:
        """How the attack sees the model; the table reports the per-sample worst case over these.

        Cross-entropy attacks run on the s-scaled logits (``"ce"``: ``CE(s cos)``) and on the raw cosines
        (``"raw"``: ``CE(cos)``); attacks on the outputs whose result depends on their scale (ART's C&W-Linf and
        ZOO, through the constant c) run on the logits view and on the raw outputs. Margin and sign-based attacks
        (C&W-PGD, DeepFool, Square, SPSA, NES) are scale-invariant and run once. A plain head has one view.
        """
        he = objective.hypersphere
        if self.family in ("fgsm", "pgd", "mim"):
            return ("ce", "raw") if he else ("ce",)
        if self.family == "adaptive":
            return ("adaptive",) if he else ("ce",)
        if self.family == "cw":
            return ("margin",)
        if self.family in ("cw-art", "zoo"):
            return ("logits", "raw") if he else ("raw",)
        if self.family in ("transfer-pgd", "transfer-mim"):
            return ("ce",)
        if self.family == "autoattack":
            return ("logits", "raw") if he and self.name in ("autoattack", "aa-apgd-ce") else ("logits",)
        return ("raw",)

    def settings(self) -> dict:
        out = {"family": self.family, "eps": self.eps, "steps": self.steps}
        if self.family not in ("deepfool", "cw-art", "zoo", "autoattack", "square", "fgsm"):
            out["eps_step"] = self.eps_step
        if self.family in ("pgd", "cw", "adaptive", "transfer-pgd"):
            out["restarts"] = self.restarts
        if self.requested_steps not in (None, self.steps):
            out["requested_steps"] = self.requested_steps
        out.update(dict(self.options))
        return out


def known_attacks() -> str:
    return ("fgsm, pgdN, mimN, cwN, adaptiveN, deepfool, cw-art, featureN, autoattack, "
            + ", ".join(k for k in AA_PARTS if k != "autoattack")
            + ", zoo[N], squareN, spsaN, nesN, transfer-pgdN, transfer-mimN")


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
    options: tuple = ()
    if key in ("fgsm", "deepfool", "cw-art"):
        family, steps = key, FAMILIES[key][1]
    elif key in AA_PARTS:
        family, steps = "autoattack", FAMILIES["autoattack"][1]
        options = (("attacks", AA_PARTS[key]),) if AA_PARTS[key] else (("version", "standard"),)
    else:
        match = _STEPPED.match(key)
        if not match:
            raise UserError(f"unknown attack {name!r}; known: {known_attacks()}")
        family = match.group(1)
        steps = int(match.group(2)) if match.group(2) else FAMILIES[family][1]
        if steps < 1:
            raise UserError(f"attack {name!r} needs at least one step")
    if family == "fgsm":
        eps_step = eps
    if family == "spsa" or family == "nes":
        options = (("nb_samples", 128), ("sigma", 1e-3))
    if family == "zoo":
        options = (("nb_parallel", 128), ("variable_h", 1e-4), ("max_queries", 2 * 128 * steps))
    requested = steps
    if max_steps is not None and family != "fgsm":
        steps = min(steps, max_steps)
    restarts_used = restarts if family in ("pgd", "cw", "adaptive", "transfer-pgd") else 0
    return AttackSpec(key, family, steps, float(eps), float(eps_step), restarts_used,
                      requested if requested != steps else None, options)


def parse_attacks(names, **kwargs) -> list[AttackSpec]:
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


def check_eps(eps, eps_step) -> tuple[float, float]:
    check_number("eps", eps, low=0.0, strict=True)
    eps_step = eps / 10 if eps_step is None else eps_step
    check_number("eps_step", eps_step, low=0.0, strict=True)
    return float(eps), float(eps_step)


def scaled(spec: AttackSpec, factor: float) -> AttackSpec:
    """The same attack at ``factor * eps`` with a proportional step (for eps sweeps)."""
    return replace(spec, eps=spec.eps * factor, eps_step=spec.eps_step * factor)
