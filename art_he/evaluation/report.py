"""One evaluation as a table: Markdown on screen, CSV and JSON on disk; paper-style tables across runs.

* :meth:`Report.to_markdown`: accuracy and time per attack, the corruption grid (the paper's Table 11 layout:
  severity x corruption, plus mCA) and the sanity checks.
* :func:`paper_table`: runs as rows, attacks as columns (Tables 2, 8, 10); :func:`corruption_table`: runs as
  rows, mCA and per-corruption accuracy averaged over severities (Table 5).
"""

from __future__ import annotations

import csv
import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from art_he.errors import UserError
from art_he.evaluation.sanity import WARN, Check

CSV_FIELDS = ("attack", "label", "kind", "accuracy", "n", "eps", "time_s", "settings", "details")
SHORT = {"gaussian_noise": "Gauss", "shot_noise": "Shot", "impulse_noise": "Impulse", "defocus_blur": "Defocus",
         "glass_blur": "Glass", "motion_blur": "Motion", "zoom_blur": "Zoom", "snow": "Snow", "frost": "Frost",
         "fog": "Fog", "brightness": "Bright", "contrast": "Contra", "elastic_transform": "Elastic",
         "pixelate": "Pixel", "jpeg_compression": "JPEG"}


def _jsonable(value: object) -> Any:
    """``value`` as JSON values: dict keys as strings, numpy as Python numbers and lists, non-finite floats as null."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


@dataclass
class Row:
    """Accuracy of the model under one attack (or on one corrupted set)."""

    attack: str
    label: str
    kind: str  # clean | white-box | black-box | transfer | autoattack | sweep | corruption | corruption-mean
    accuracy: float
    n: int
    time_s: float
    eps: float = 0.0
    settings: dict[str, Any] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = _jsonable(asdict(self))
        return data


@dataclass
class Report:
    """The rows of one evaluation with its metadata and sanity checks."""

    name: str
    suite: str
    rows: list[Row]
    meta: dict[str, Any] = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)

    # -- lookups -------------------------------------------------------------------------------------------------

    @property
    def clean_accuracy(self) -> float | None:
        return next((r.accuracy for r in self.rows if r.kind == "clean"), None)

    def row(self, attack: str) -> Row:
        for r in self.rows:
            if r.attack == attack:
                return r
        raise KeyError(f"no row {attack!r} in this report; rows: {[r.attack for r in self.rows]}")

    def accuracy(self, attack: str) -> float:
        return self.row(attack).accuracy

    @property
    def warnings(self) -> list[Check]:
        return [c for c in self.checks if c.status == WARN]

    @property
    def mean_corruption_accuracy(self) -> float | None:
        return next((r.accuracy for r in self.rows if r.attack == "mca"), None)

    # -- writers -------------------------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = _jsonable({"name": self.name, "suite": self.suite, **self.meta,
                                          "clean_accuracy": self.clean_accuracy,
                                          "rows": [r.to_dict() for r in self.rows],
                                          "sanity": [c.to_dict() for c in self.checks]})
        return data

    def to_json(self, path: str | os.PathLike[str]) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=2, allow_nan=False) + "\n")
        return path

    def to_csv(self, path: str | os.PathLike[str]) -> Path:
        """One line per row; ``settings`` and ``details`` are JSON strings."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=CSV_FIELDS)
            writer.writeheader()
            for r in self.rows:
                d = r.to_dict()
                d["settings"] = json.dumps(d["settings"], sort_keys=True, allow_nan=False)
                d["details"] = json.dumps({k: v for k, v in d["details"].items() if k != "first_success"},
                                          sort_keys=True, allow_nan=False)
                writer.writerow({k: d[k] for k in CSV_FIELDS})
        return path

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Report:
        rows = [Row(**r) for r in data["rows"]]
        checks = [Check(**c) for c in data.get("sanity", [])]
        meta = {k: v for k, v in data.items() if k not in ("name", "suite", "rows", "sanity", "clean_accuracy")}
        return cls(data["name"], data["suite"], rows, meta, checks)

    @classmethod
    def from_json(cls, path: str | os.PathLike[str]) -> Report:
        return cls.from_dict(json.loads(Path(path).read_text()))

    def to_markdown(self) -> str:
        head = ", ".join(f"{k} {self.meta[k]}" for k in ("dataset", "model", "head", "n", "eps")
                         if self.meta.get(k) is not None)
        lines = [f"### {self.name}: suite `{self.suite}`" + (f" ({head})" if head else ""), ""]
        table = [r for r in self.rows if r.kind not in ("corruption",)]
        lines += ["| Attack | Accuracy (%) | n | eps | Time (s) | Notes |", "| --- | ---: | ---: | ---: | ---: | --- |"]
        for r in table:
            eps = f"{r.eps:.4g}" if r.kind not in ("clean", "corruption-mean") else ""
            lines.append(f"| {r.label} | {100 * r.accuracy:.2f} | {r.n} | {eps} | {r.time_s:.1f} | {_notes(r)} |")
        legend = notes_legend(table)
        if legend:
            lines += ["", legend]
        grid = corruption_grid(self)
        if grid:
            lines += ["", grid]
        lines += ["", "Sanity checks:"]
        marks = {"ok": "ok  ", "warn": "WARN", "skipped": "skip"}
        lines += [f"- [{marks[c.status]}] {c.name}: {c.message}" for c in self.checks]
        return "\n".join(lines) + "\n"


def _notes(r: Row) -> str:
    notes = []
    broken = r.details.get("broken_by")
    if broken and len(broken) > 1:
        notes.append("worst case of " + ", ".join(f"{k} (+{v})" for k, v in broken.items()))
    if "queries" in r.details:
        notes.append(f"{r.details['queries']} queries")
    if r.details.get("projected"):
        notes.append("projected to eps")
    if r.details.get("same_as"):
        notes.append(f"same attack as {r.details['same_as']}")
    if r.details.get("autoattack_flags"):
        notes.append(f"{len(r.details['autoattack_flags'])} AutoAttack flag(s)")
    if "requested_steps" in r.settings:
        notes.append("smoke-test cap")
    return "; ".join(notes)


#: what the attack views named in "worst case of ..." are (art_he.estimator.HEAttackLoss, evaluation.views)
VIEW_NAMES = {"ce": "cross-entropy on s*cos (plain head: on the logits)", "raw": "cross-entropy on the raw cosines",
              "logits": "the outputs s*cos", "adaptive": "the HE training loss with s and m",
              "margin": "the C&W margin", "raw apgd-ce": "APGD-CE on the raw cosines"}


def notes_legend(rows: list[Row]) -> str:
    """A line under the table saying what the notes of ``rows`` mean (``""`` when none needs it)."""
    views = list(dict.fromkeys(v for r in rows if len(r.details.get("broken_by") or {}) > 1
                               for v in r.details["broken_by"]))
    if not views:
        return ""
    named = "; ".join(f"{v}: {VIEW_NAMES.get(v, v)}" for v in views)
    return ("Notes: \"worst case of A (+k), B (+j)\": the attack ran on view A, then on view B for the images A left "
            "correct; an image counts as broken when any view broke it, +k are those view A broke. "
            f"Views: {named}.")


def corruption_grid(report: Report) -> str:
    """Table 11 layout: one line per severity, one column per corruption, then the mean over severities."""
    cells = [r for r in report.rows if r.kind == "corruption"]
    if not cells:
        return ""
    names = list(dict.fromkeys(r.details["corruption"] for r in cells))
    severities = sorted({r.details["severity"] for r in cells})
    acc = {(r.details["corruption"], r.details["severity"]): r.accuracy for r in cells}
    lines = ["| S | " + " | ".join(SHORT.get(c, c) for c in names) + " |",
             "| --- |" + " ---: |" * len(names)]
    for s in severities:
        lines.append(f"| {s} | " + " | ".join(_cell(acc.get((c, s))) for c in names) + " |")
    means = [np.mean([acc[(c, s)] for s in severities if (c, s) in acc]) for c in names]
    lines.append("| mean | " + " | ".join(_cell(m) for m in means) + " |")
    mca = report.mean_corruption_accuracy
    if mca is not None:
        lines.append(f"\nmCA (mean over corruptions and severities): {100 * mca:.2f}%")
    return "\n".join(lines)


def _cell(v: float | np.floating[Any] | None) -> str:
    return "" if v is None else f"{100 * v:.2f}"


def paper_table(reports: list[Report], columns: list[str] | None = None, title: str | None = None) -> str:
    """Runs as rows, attacks as columns (accuracy in %), the layout of the paper's Tables 2, 8 and 10.

    ``columns`` are attack keys (default: the union of the reports' rows, clean first, sweeps and corruption
    cells left out).
    """
    if not reports:
        raise UserError("paper_table needs at least one report")
    if columns is None:
        columns = list(dict.fromkeys(r.attack for rep in reports for r in rep.rows
                                     if r.kind not in ("sweep", "corruption")))
    labels: dict[str, str] = {}
    for rep in reports:
        for r in rep.rows:
            labels.setdefault(r.attack, r.label)
    lines = [f"**{title}**", ""] if title else []
    lines += ["| Defense | " + " | ".join(labels.get(c, c) for c in columns) + " |",
              "| --- |" + " ---: |" * len(columns)]
    views: dict[str, None] = {}
    for rep in reports:
        rows = {r.attack: r for r in rep.rows}
        cells = []
        for c in columns:
            row = rows.get(c)
            broken_by = (row.details.get("broken_by") or {}) if row is not None else {}
            several = len(broken_by) > 1
            views.update(dict.fromkeys(broken_by if several else ()))
            cells.append(_cell(None if row is None else row.accuracy) + (f" †{len(broken_by)}" if several else ""))
        lines.append(f"| {rep.name} | " + " | ".join(cells) + " |")
    if views:  # an HE head is attacked on several views, a plain one on one: the row itself says which cell is which
        lines += ["", "†k: the worst case of k attack views (an image counts as broken when any view broke it; "
                  "a plain head has one view, so its cell is one attack): "
                  + "; ".join(f"{v}: {VIEW_NAMES.get(v, v)}" for v in views) + "."]
    return "\n".join(lines) + "\n"


def corruption_table(reports: list[Report]) -> str:
    """Table 5 layout: mCA and the accuracy per corruption averaged over severities, one run per line."""
    # the corruption-mean rows: one per corruption (details name it) and the mCA row (it names none)
    means = [{r.details["corruption"]: r.accuracy for r in rep.rows
              if r.kind == "corruption-mean" and "corruption" in r.details} for rep in reports]
    names = list(dict.fromkeys(c for m in means for c in m))
    lines = ["| Defense | mCA | " + " | ".join(SHORT.get(c, c) for c in names) + " |",
             "| --- | ---: |" + " ---: |" * len(names)]
    for rep, m in zip(reports, means):
        lines.append(f"| {rep.name} | {_cell(rep.mean_corruption_accuracy)} | "
                     + " | ".join(_cell(m.get(c)) for c in names) + " |")
    return "\n".join(lines) + "\n"
