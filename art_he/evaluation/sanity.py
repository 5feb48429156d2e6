"""Sanity checks that every report carries (Carlini et al., 2019, "On evaluating adversarial robustness").

* robust accuracy (and the mean corruption accuracy) is never above clean accuracy;
* accuracy does not increase with eps over the sweep;
* black-box (and transfer) accuracy is not below the strongest white-box accuracy at the same eps (the eps sweep's
  PGD rows included), else the white-box attacks are probably fooled by gradient masking;
* AutoAttack's own flags (randomness, zero gradients, Square stronger than the gradient attacks, ...);
* every adversarial image lies within eps of its original and inside the box.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol

OK, WARN, SKIPPED = "ok", "warn", "skipped"
ADVERSARIAL = ("white-box", "black-box", "transfer", "autoattack", "sweep")
TOL = 1e-6


class CheckedRow(Protocol):
    """What the checks read of a report row (:class:`art_he.evaluation.report.Row`, which imports this module)."""

    attack: str
    label: str
    kind: str
    accuracy: float
    eps: float
    details: dict[str, Any]


@dataclass
class Check:
    name: str
    status: str
    message: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _pct(v: float) -> str:
    return f"{100 * v:.2f}%"


def robust_below_clean(rows: Sequence[CheckedRow], clean: float | None) -> Check:
    """Every attack row, and the mean over corruptions (mCA; one corrupted set alone may be easier than the clean
    one), at most the clean accuracy."""
    name = "robust accuracy <= clean accuracy"
    adversarial = [r for r in rows if r.kind in ADVERSARIAL or r.attack == "mca"]
    if clean is None:
        return Check(name, SKIPPED, "no clean row")
    if not adversarial:
        return Check(name, SKIPPED, "no attack rows")
    above = [r for r in adversarial if r.accuracy > clean + TOL]
    if above:
        listing = ", ".join(f"{r.label} {_pct(r.accuracy)}" for r in above)
        return Check(name, WARN, f"above clean {_pct(clean)}: {listing} (randomised or broken evaluation?)")
    return Check(name, OK, f"all {len(adversarial)} {'attack rows' if len(adversarial) > 1 else adversarial[0].label} "
                           f"<= clean {_pct(clean)}")


def sweep_monotone(rows: Sequence[CheckedRow]) -> Check:
    name = "accuracy non-increasing in eps"
    sweep = sorted((r for r in rows if r.kind == "sweep"), key=lambda r: r.eps)
    if len(sweep) < 2:
        return Check(name, SKIPPED, "no eps sweep in this suite")
    bad = [(a, b) for a, b in zip(sweep, sweep[1:]) if b.accuracy > a.accuracy + TOL]
    if bad:
        listing = "; ".join(f"eps {a.eps:.4g}: {_pct(a.accuracy)} -> eps {b.eps:.4g}: {_pct(b.accuracy)}"
                            for a, b in bad)
        return Check(name, WARN, f"accuracy rises with eps ({listing}): the attack is not converging")
    return Check(name, OK, " >= ".join(f"{_pct(r.accuracy)} @ {r.eps:.4g}" for r in sweep))


def blackbox_not_below_whitebox(rows: Sequence[CheckedRow]) -> Check:
    name = "black-box accuracy >= white-box accuracy"
    black = [r for r in rows if r.kind in ("black-box", "transfer")]
    if not black:
        return Check(name, SKIPPED, "no black-box or transfer rows")
    problems, compared = [], 0
    for r in black:
        white = [w for w in rows if w.kind in ("white-box", "autoattack", "sweep") and abs(w.eps - r.eps) <= TOL]
        if not white:
            continue
        best = min(white, key=lambda w: w.accuracy)
        compared += 1
        if r.accuracy < best.accuracy - TOL:
            problems.append(f"{r.label} {_pct(r.accuracy)} < {best.label} {_pct(best.accuracy)}")
    if not compared:
        return Check(name, SKIPPED, "no white-box row at the same eps to compare with")
    if problems:
        return Check(name, WARN, "possible gradient masking: " + "; ".join(problems))
    return Check(name, OK, f"{compared} black-box rows >= the strongest white-box attack")


def autoattack_flags(rows: Sequence[CheckedRow]) -> Check:
    name = "AutoAttack checks"
    aa = [r for r in rows if r.kind == "autoattack"]
    if not aa:
        return Check(name, SKIPPED, "AutoAttack not run")
    flags = [f"{r.label}: {flag}" for r in aa for flag in r.details.get("autoattack_flags", [])]
    if flags:
        return Check(name, WARN, " | ".join(flags))
    return Check(name, OK, "no flags raised")


def within_threat_model(rows: Sequence[CheckedRow]) -> Check:
    name = "perturbations within eps and the box"
    measured = [r for r in rows if "max_perturbation" in r.details]
    if not measured:
        return Check(name, SKIPPED, "no adversarial images measured")
    bad = [r for r in measured if r.details["max_perturbation"] > r.eps + 1e-5 or not r.details.get("in_box", True)]
    if bad:
        listing = ", ".join(f"{r.label} max |delta| {r.details['max_perturbation']:.5g} (eps {r.eps:.4g}, "
                            f"in box: {r.details.get('in_box')})" for r in bad)
        return Check(name, WARN, listing)
    return Check(name, OK, f"{len(measured)} attacks checked")


def run_checks(rows: Sequence[CheckedRow], clean: float | None) -> list[Check]:
    return [robust_below_clean(rows, clean), sweep_monotone(rows), blackbox_not_below_whitebox(rows),
            autoattack_flags(rows), within_threat_model(rows)]
