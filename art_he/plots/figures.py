"""Figures of training runs and evaluation reports (matplotlib, imported on first use).

* :func:`curves_figure`: loss, clean and adversarial accuracy per epoch of runs (``metrics.jsonl``), overlaid;
* :func:`eps_figure`: accuracy against the Linf radius, from the eps-sweep rows of reports;
* :func:`attacks_figure`: accuracy per attack, one bar per report (e.g. PGD-AT against PGD-AT+HE);
* :func:`corruptions_figure`: the corruption x severity grid of a corruptions report (the paper's Table 11), with
  the mean per corruption, per severity and over all (mCA);
* :func:`save`: a figure to ``.png`` or ``.svg``.

Every function returns a :class:`matplotlib.figure.Figure` built without pyplot, so nothing is left open in
pyplot's state and no GUI backend is touched; inputs are report objects or paths to their JSON files, run
directories (or their ``metrics.jsonl``) or lists of metric dicts.
"""

from __future__ import annotations

import json
import math
import os
import textwrap
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias, cast

import numpy as np
import numpy.typing as npt

from art_he.errors import MissingFileError, UserError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from art_he.evaluation.report import Report

SUFFIXES = (".png", ".svg")
MATPLOTLIB_MISSING = "art-he plot needs matplotlib: pip install 'art-he[notebooks]'"
METRICS_FILE = "metrics.jsonl"  # art_he.runs.METRICS_FILE (not imported: that module pulls in torch and ART)
#: kinds of report rows that are attacks (and the clean row) for :func:`attacks_figure`
ATTACK_KINDS = ("clean", "white-box", "black-box", "transfer", "autoattack")

#: one report as the figures take it: a Report, its dict, or the path of its JSON file
ReportInput: TypeAlias = "Report | Mapping[str, Any] | str | os.PathLike[str]"
#: one report or a list (tuple) of them
ReportInputs: TypeAlias = "ReportInput | list[ReportInput] | tuple[ReportInput, ...]"
#: one run as :func:`curves_figure` takes it: a run folder, its ``metrics.jsonl``, or its list of metric dicts
RunInput: TypeAlias = "str | os.PathLike[str] | Sequence[Mapping[str, Any]]"


def require_matplotlib() -> None:
    """:class:`UserError` naming the extra to install when matplotlib cannot be imported."""
    try:
        import matplotlib  # noqa: F401
        import matplotlib.figure  # noqa: F401
    except ImportError:
        raise UserError(MATPLOTLIB_MISSING) from None


def new_figure(**kwargs: Any) -> Figure:
    """A ``matplotlib.figure.Figure`` with constrained layout, not registered with pyplot."""
    require_matplotlib()
    from matplotlib.figure import Figure

    kwargs.setdefault("layout", "constrained")
    return Figure(**kwargs)


def save(fig: Figure, path: str | os.PathLike[str], *, dpi: int = 150) -> Path:
    """Write ``fig`` to ``path`` (``.png`` or ``.svg``, chosen by the suffix); returns the path."""
    require_matplotlib()
    path = Path(path)
    if path.suffix.lower() not in SUFFIXES:
        raise UserError(f"cannot write {path}: the file name must end in .png or .svg")
    if path.is_dir():
        raise UserError(f"cannot write {path}: it is a directory")
    if not path.parent.is_dir():
        raise MissingFileError(f"cannot write {path}: the directory {path.parent} does not exist")
    fig.savefig(path, format=path.suffix.lower()[1:], dpi=dpi)
    return path


# -- inputs ----------------------------------------------------------------------------------------------------


def _labels(labels: Sequence[str] | None, defaults: list[str]) -> list[str]:
    if labels is None:
        return defaults
    labels = list(labels)
    if len(labels) != len(defaults):
        raise UserError(f"{len(labels)} label(s) given for {len(defaults)} input(s); give one label per input")
    return [str(label) for label in labels]


def read_metrics(run: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The metric lines of a run: ``run`` is a run directory or its ``metrics.jsonl``."""
    path = Path(run)
    if path.is_dir():
        path = path / METRICS_FILE
    if not path.is_file():
        raise MissingFileError(f"{path} does not exist (a run directory holds {METRICS_FILE})")
    if path.suffix != ".jsonl":
        raise UserError(f"{path} is not a run: training curves take run folders (or their {METRICS_FILE}); "
                        "evaluation reports go to `art-he plot eps`, `attacks` or `corruptions`")
    lines: list[dict[str, Any]] = []
    for number, text in enumerate(path.read_text().splitlines(), 1):
        if not text.strip():
            continue
        try:
            line = json.loads(text)
        except json.JSONDecodeError as error:
            raise UserError(f"{path}:{number} is not a JSON line ({error})") from None
        if not isinstance(line, dict):
            raise UserError(f"{path}:{number} is not a JSON object")
        lines.append(line)
    if not lines:
        raise UserError(f"{path} holds no epochs yet")
    return lines


def _run_name(run: str | os.PathLike[str]) -> str:
    path = Path(run)
    return (path.parent if path.name == METRICS_FILE else path).name or str(path)


def load_report(report: ReportInput) -> Report:
    """``report`` as a :class:`~art_he.evaluation.report.Report`: a report, its dict, or the path of its JSON."""
    from art_he.evaluation.report import Report

    if isinstance(report, Report):
        return report
    if isinstance(report, Mapping):
        source, data = "the report dict", dict(report)
    else:
        path = Path(report)
        if not path.is_file():
            raise MissingFileError(f"{path} does not exist (expected an evaluation report written by "
                                   "`art-he eval --json`)")
        try:
            data = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise UserError(f"{path} is not valid JSON ({error})") from None
        source = str(path)
    try:
        return Report.from_dict(data)
    except (KeyError, TypeError, AttributeError) as error:
        raise UserError(f"{source} is not an art-he evaluation report ({type(error).__name__}: {error})") from None


def _reports(reports: ReportInputs) -> list[Report]:
    if not isinstance(reports, (list, tuple)):
        reports = [reports]
    if not reports:
        raise UserError("no report given")
    return [load_report(r) for r in reports]


def shared_eps(reports: Sequence[Report]) -> float | None:
    """The evaluation eps of the reports (``meta["eps"]``) when they all have the same one, else ``None``."""
    values = {r.meta.get("eps") for r in reports}
    value = values.pop() if len(values) == 1 else None
    return float(value) if isinstance(value, (int, float)) and value > 0 else None


def format_eps(eps: float) -> str:
    """``0.1`` as ``0.1``, ``8 / 255`` as ``8/255`` (a multiple of 1/255 that 4 digits do not write exactly)."""
    short = f"{eps:.4g}"
    k = round(eps * 255)
    if abs(float(short) - eps) > 1e-9 and k > 0 and abs(eps * 255 - k) < 1e-6:
        return f"{k}/255"
    return short


def _percent(values: npt.ArrayLike) -> npt.NDArray[np.float64]:
    return 100.0 * np.asarray(values, dtype=float)


def _colors(n: int) -> list[tuple[float, float, float, float]]:
    """Distinct colours: tab10's, then tab20's."""
    from matplotlib import colormaps

    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


def images_note(counts: Iterable[int | None]) -> str:
    """``"200 test images"`` (or ``"50 to 200 test images"`` when the counts differ) for a title; ``""`` without."""
    counts = sorted({int(c) for c in counts if c})
    if not counts:
        return ""
    n = f"{counts[0]:,}" if len(counts) == 1 else f"{counts[0]:,} to {counts[-1]:,}"
    return f"{n} test image{'s' if counts[-1] != 1 else ''}"


def report_images(reports: Sequence[Report]) -> str:
    """:func:`images_note` of the reports' evaluation sizes (``meta["n"]``, else their clean rows' ``n``)."""
    return images_note(r.meta.get("n") or next((row.n for row in r.rows if row.kind == "clean"), None)
                       for r in reports)


def _run_sizes(run: str | os.PathLike[str]) -> str:
    """What a run directory's ``config.json`` says about its images: training subset and validation size."""
    path = Path(run)
    folder = path.parent if path.name == METRICS_FILE else path
    try:
        config = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError):
        return ""
    parts = [f"training on the first {config['subset']:,} images"] if config.get("subset") else []
    if config.get("val_n"):
        parts.append(f"validation on {images_note([config['val_n']])}")
    return ", ".join(parts)


# -- training curves -------------------------------------------------------------------------------------------

CURVE_PANELS = (("loss", "training loss", "loss (training objective)"),
                ("clean_acc", "clean accuracy", "accuracy (%)"),
                ("adv_acc", "adversarial accuracy (PGD)", "accuracy (%)"))


def curves_figure(runs: RunInput | Sequence[RunInput], labels: Sequence[str] | None = None, *,
                  title: str | None = None) -> Figure:
    """Loss, clean accuracy and adversarial accuracy per epoch of one or several runs, overlaid.

    ``runs``: run directories, ``metrics.jsonl`` paths, or lists of metric dicts (as the trainers' histories and
    ``metrics.jsonl`` lines: ``epoch``, ``loss``, ``clean_acc``, ``adv_acc`` and, with ``--val-n``,
    ``val_clean_acc``/``val_adv_acc``). Training values (measured on the training batches during the epoch, against
    the training attack) are solid lines; validation values (test images after the epoch, PGD-10) are dashed.
    Legend: ``labels``, else the run folder's name (``run 1``, ... for metric lists).
    """
    require_matplotlib()
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator

    if isinstance(runs, (str, os.PathLike)) or (isinstance(runs, list) and runs and isinstance(runs[0], dict)):
        runs = [cast("RunInput", runs)]  # one run: a path or one list of metric dicts
    if not runs:
        raise UserError("no run given")
    histories: list[list[dict[str, Any]]] = []
    names: list[str] = []
    sizes: set[str] = set()
    for i, run in enumerate(cast("Sequence[RunInput]", runs)):  # several runs (or the one, listed above)
        if isinstance(run, (str, os.PathLike)):
            histories.append(read_metrics(run))
            names.append(_run_name(run))
            sizes.add(_run_sizes(run))
        else:
            histories.append([dict(m) for m in run])
            names.append(f"run {i + 1}")
            if not histories[-1]:
                raise UserError(f"run {i + 1} has no metrics")
    names = _labels(labels, names)
    fig = new_figure(figsize=(13, 4.2))
    axes = fig.subplots(1, 3)
    colors = _colors(len(histories))
    any_val = False
    for history, name, color in zip(histories, names, colors):
        epochs = np.array([m.get("epoch", i + 1) for i, m in enumerate(history)], dtype=float)
        for ax, (key, _, _) in zip(axes, CURVE_PANELS):
            scale = 1.0 if key == "loss" else 100.0
            for prefix, style in (("", "-"), ("val_", "--")):
                values = [m.get(prefix + key) for m in history]
                if all(v is None for v in values):
                    continue
                any_val |= bool(prefix)
                y = np.array([np.nan if v is None else scale * v for v in values], dtype=float)
                ax.plot(epochs, y, style, color=color, marker="o", markersize=4,
                        label=name if not prefix else f"{name} (validation)")
    for ax, (key, text, unit) in zip(axes, CURVE_PANELS):
        ax.set_title(text)
        ax.set_xlabel("epoch")
        ax.set_ylabel(unit)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        if key != "loss" and not ax.lines:
            ax.text(0.5, 0.5, f"no {key} in the metrics", ha="center", va="center", transform=ax.transAxes)
    handles = [Line2D([], [], color=c, marker="o", markersize=4, label=n) for n, c in zip(names, colors)]
    if any_val:
        handles += [Line2D([], [], color="0.3", ls="-", label="training batches"),
                    Line2D([], [], color="0.3", ls="--", label="validation (test images)")]
    fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 6), frameon=False)
    note = sizes.pop() if len(sizes) == 1 else ""
    fig.suptitle(title or "Training curves" + (f" ({note})" if note else ""))
    return fig


# -- accuracy against eps --------------------------------------------------------------------------------------


def sweep_points(report: Report, include_clean: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """``(eps, accuracy)`` of a report's sweep rows, sorted by eps (with the clean accuracy at eps 0)."""
    rows = sorted((r for r in report.rows if r.kind == "sweep"), key=lambda r: r.eps)
    if not rows:
        raise UserError(f"report {report.name!r} has no eps-sweep rows (kind 'sweep'); evaluate with "
                        "`art-he eval --suite quick` or `--suite paper`")
    eps = [r.eps for r in rows]
    acc = [r.accuracy for r in rows]
    clean = report.clean_accuracy
    if include_clean and clean is not None and eps[0] > 0:
        eps, acc = [0.0, *eps], [clean, *acc]
    return np.asarray(eps, dtype=float), np.asarray(acc, dtype=float)


def eps_figure(reports: ReportInputs, labels: Sequence[str] | None = None, *, include_clean: bool = True,
               title: str | None = None) -> Figure:
    """Accuracy (%) against the Linf radius eps, one line per report, from its ``sweep`` rows.

    ``include_clean``: start each line at eps 0 with the report's clean accuracy. eps is in the units of the
    inputs (images in [0, 1]); a dotted vertical line marks the reports' evaluation eps when they share one.
    """
    loaded = _reports(reports)
    names = _labels(labels, [r.name for r in loaded])
    fig = new_figure(figsize=(6.4, 4.4))
    ax = fig.subplots()
    for report, name, color in zip(loaded, names, _colors(len(loaded))):
        eps, acc = sweep_points(report, include_clean)
        ax.plot(eps, 100 * acc, "-o", color=color, label=name)
    value = shared_eps(loaded)
    if value is not None:
        ax.axvline(value, color="0.5", ls=":", lw=1, label=f"evaluation $\\epsilon$ = {format_eps(value)}", zorder=0)
    attack = next((r.label.split(" @ ")[0] for r in loaded[0].rows if r.kind == "sweep"), "PGD")
    ax.set_xlabel(r"$\epsilon$ ($\ell_\infty$ radius; image values in [0, 1])")
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 100)
    ax.set_xlim(left=0)
    ax.grid(alpha=0.3)
    ax.legend(loc="best")
    ax.set_title(title or f"Accuracy against $\\epsilon$ ({attack}, {report_images(loaded)})")
    return fig


# -- accuracy per attack ---------------------------------------------------------------------------------------


def attack_columns(reports: Sequence[Report], attacks: Sequence[str] | None = None) -> tuple[list[str], list[str]]:
    """``(attack keys, labels)``: ``attacks`` or the reports' clean and attack rows in order (no sweeps, no
    corruptions)."""
    if attacks is None:
        attacks = list(dict.fromkeys(r.attack for rep in reports for r in rep.rows if r.kind in ATTACK_KINDS))
        if not any(r.kind in ATTACK_KINDS[1:] for rep in reports for r in rep.rows):  # a clean row alone
            raise UserError("the reports have no attack rows; evaluate with an attack suite "
                            "(`art-he eval --suite quick`, not `--suite corruptions`)")
    labels: dict[str, str] = {}
    for rep in reports:
        for r in rep.rows:
            labels.setdefault(r.attack, r.label)
    missing = [a for a in attacks if a not in labels]
    if missing:
        raise UserError(f"no report has the attack(s) {', '.join(missing)}; known: {', '.join(labels)}")
    return list(attacks), [labels[a] for a in attacks]


def attacks_figure(reports: ReportInputs, labels: Sequence[str] | None = None, *,
                   attacks: Sequence[str] | None = None, title: str | None = None) -> Figure:
    """Accuracy (%) per attack as grouped bars: attacks on x, one bar per report, values written on the bars.

    ``attacks``: attack keys (e.g. ``["clean", "pgd20", "cw20"]``; default: every clean and attack row of the
    reports, sweeps and corruptions left out). A report without an attack gets no bar there.
    """
    loaded = _reports(reports)
    names = _labels(labels, [r.name for r in loaded])
    keys, texts = attack_columns(loaded, attacks)
    n = len(loaded)
    width = 0.8 / n
    fig = new_figure(figsize=(min(16.0, max(6.0, 1.6 + len(keys) * (0.45 + 0.35 * n))), 4.6))
    ax = fig.subplots()
    x = np.arange(len(keys))
    for i, (report, name, color) in enumerate(zip(loaded, names, _colors(n))):
        acc = {r.attack: r.accuracy for r in report.rows}
        present = [j for j, k in enumerate(keys) if k in acc]
        heights = _percent([acc[keys[j]] for j in present])
        bars = ax.bar(x[present] + (i - (n - 1) / 2) * width, heights, width, color=color, label=name)
        ax.bar_label(bars, fmt="%.1f", fontsize=7 if n > 2 else 8, padding=1)
    ax.set_xticks(x, [textwrap.fill(t, 12) for t in texts])
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 105)
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    fig.legend(loc="outside lower center", ncols=min(n, 6), frameon=False)  # not beside a long title
    eps = shared_eps(loaded)
    note = ", ".join(p for p in (f"$\\epsilon$ = {format_eps(eps)}" if eps is not None else "",
                                 report_images(loaded)) if p)
    ax.set_title(title or f"Accuracy per attack ({note})")
    return fig


# -- corruptions -----------------------------------------------------------------------------------------------


def corruption_grid(report: Report) -> tuple[np.ndarray, list[str], list[int]]:
    """``(accuracy (severities x corruptions) with NaN for missing cells, corruptions, severities)``."""
    cells = [r for r in report.rows if r.kind == "corruption"]
    if not cells:
        raise UserError(f"report {report.name!r} has no corruption rows; evaluate with "
                        "`art-he eval --suite corruptions`")
    names = list(dict.fromkeys(r.details["corruption"] for r in cells))
    severities = sorted({int(r.details["severity"]) for r in cells})
    grid = np.full((len(severities), len(names)), np.nan)
    for r in cells:
        grid[severities.index(int(r.details["severity"])), names.index(r.details["corruption"])] = r.accuracy
    return grid, names, severities


def _nanmean(a: np.ndarray, axis: int | None = None) -> npt.NDArray[np.floating[Any]] | np.floating[Any]:
    """``np.nanmean`` without its warning for all-NaN slices (they stay NaN: empty cells)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mean: npt.NDArray[np.floating[Any]] | np.floating[Any] = np.nanmean(a, axis=axis)
        return mean


def corruption_table_array(report: Report) -> tuple[np.ndarray, list[str], list[str]]:
    """The grid in % with the means: rows severities then ``mean``, columns corruptions then ``mean``; the
    bottom-right cell is the mean over all cells (mCA). Returns ``(array, row labels, column labels)``."""
    from art_he.evaluation.report import SHORT

    grid, names, severities = corruption_grid(report)
    table = np.full((grid.shape[0] + 1, grid.shape[1] + 1), np.nan)
    table[:-1, :-1] = grid
    table[-1, :-1] = _nanmean(grid, axis=0)
    table[:-1, -1] = _nanmean(grid, axis=1)
    table[-1, -1] = _nanmean(grid)
    return 100 * table, [*map(str, severities), "mean"], [*(SHORT.get(c, c) for c in names), "mean"]


def corruptions_figure(reports: ReportInputs, labels: Sequence[str] | None = None, *, title: str | None = None,
                       cmap: str = "viridis") -> Figure:
    """Heatmap of accuracy (%) per corruption (columns) and severity (rows), one panel per report.

    The last row is the mean over severities, the last column the mean over corruptions, the corner the mCA
    (mean over all cells); every cell is annotated. The colour scale is 0-100 % in every panel.
    """
    require_matplotlib()
    from matplotlib import colormaps

    loaded = _reports(reports)
    names = _labels(labels, [r.name for r in loaded])
    tables = [corruption_table_array(r) for r in loaded]
    width = max(t[0].shape[1] for t in tables)
    height = sum(t[0].shape[0] for t in tables)
    fig = new_figure(figsize=(max(6.0, 1.6 + 0.78 * width), 1.3 + 0.42 * height + 0.55 * len(tables)))
    axes = np.atleast_1d(fig.subplots(len(tables), 1, squeeze=False)[:, 0])
    colormap = colormaps[cmap].with_extremes(bad="0.85")
    image = None
    for ax, (table, rows, cols), name, report in zip(axes, tables, names, loaded):
        image = ax.imshow(np.ma.masked_invalid(table), cmap=colormap, vmin=0, vmax=100, aspect="auto")
        for (i, j), value in np.ndenumerate(table):
            if math.isnan(value):
                continue
            r, g, b, _ = colormap(value / 100)
            dark = 0.299 * r + 0.587 * g + 0.114 * b < 0.55
            ax.text(j, i, f"{value:.1f}", ha="center", va="center", fontsize=8,
                    color="white" if dark else "black", fontweight="bold" if i == len(rows) - 1 or
                    j == len(cols) - 1 else "normal")
        ax.set_xticks(range(len(cols)), cols, rotation=30, ha="right", rotation_mode="anchor")
        ax.set_yticks(range(len(rows)), rows)
        ax.axhline(len(rows) - 1.5, color="white", lw=2)
        ax.axvline(len(cols) - 1.5, color="white", lw=2)
        ax.tick_params(length=0)
        ax.set_ylabel("severity")
        mca = report.mean_corruption_accuracy
        mca = 100 * mca if mca is not None else table[-1, -1]
        ax.set_title(f"{name}: mCA {mca:.2f}%", loc="left")
    assert image is not None  # _reports gives at least one report
    fig.colorbar(image, ax=list(axes), label="accuracy (%)", shrink=0.9)
    fig.suptitle(title or f"Accuracy under common corruptions ({report_images(loaded)})")
    return fig
