"""The comparison with the paper: our numbers beside its numbers, as Markdown and JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from art_he.reproduce.tables import PaperTable

if TYPE_CHECKING:
    from art_he.evaluation.report import Report


def _cell(ours: float | None, paper: float) -> str:
    if ours is None:
        return f"- / {paper:.2f}"
    return f"{ours:.2f} / {paper:.2f} ({ours - paper:+.2f})"


def row_values(table: PaperTable, report: Report, minutes: float | None) -> dict[str, float | None]:
    """Our numbers for the table's columns: accuracies in %, training time in minutes."""
    accuracy = {r.attack: 100 * r.accuracy for r in report.rows}
    return {c: minutes if c == "train_min" else accuracy.get(c) for c in table.columns}


def comparison_text(table: PaperTable, ours: dict[str, dict[str, float | None]], n_eval: int,
                    max_steps: int | None) -> str:
    """The table in Markdown, each cell ``ours / paper (ours - paper)``."""
    cap = f", attack steps capped at {max_steps}" if max_steps else ""
    lines = [f"**Table {table.number}** ({table.caption}): each cell is ours / paper (ours - paper); ours on "
             f"{n_eval:,} test images{cap}", "",
             "| Defense | " + " | ".join(table.headers) + " |", "| --- |" + " ---: |" * len(table.headers)]
    for row in table.rows:
        values = ours[row.recipe]
        cells = [_cell(values.get(c), p) for c, p in zip(table.columns, row.values)]
        lines.append(f"| {row.label} (`{row.recipe}`) | " + " | ".join(cells) + " |")
    if "train_min" in table.columns:
        lines += ["", "Time: the paper's is on its GPUs (NVIDIA P100 / 2080Ti, App. C), ours on this machine."]
    return "\n".join(lines) + "\n"


def training_minutes(run_dir: Path) -> float | None:
    """Wall-clock training time of a run (the sum of its epochs' ``time_s``), in minutes."""
    from art_he.runs import METRICS_FILE

    path = run_dir / METRICS_FILE
    if not path.is_file():
        return None
    lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    seconds: float = sum(m.get("time_s", 0.0) for m in lines)
    return seconds / 60


def write_results(out: Path, table: PaperTable, values: dict[str, dict[str, float | None]], text: str) -> None:
    """``OUT/<table>.md`` (the printed table) and ``OUT/<table>.json`` (ours, paper, difference per cell)."""
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{table.key}.md").write_text(text)
    cells = {row.recipe: {c: _json_cell(values[row.recipe].get(c), p) for c, p in zip(table.columns, row.values)}
             for row in table.rows}
    (out / f"{table.key}.json").write_text(json.dumps({"table": table.number, "rows": cells}, indent=2,
                                                       allow_nan=False) + "\n")


def _json_cell(ours: float | None, paper: float) -> dict[str, float | None]:
    return {"ours": ours, "paper": paper, "diff": None if ours is None else round(ours - paper, 4)}
