"""The figure of :func:`art_he.evaluation.diagnostics.he_diagnostics` results: one or several models'
diagnostics (e.g. PGD-AT against PGD-AT+HE) in a 2x2 grid."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from art_he.errors import UserError
from art_he.evaluation.diagnostics import KEYS
from art_he.plots.figures import _colors, _labels, format_eps, images_note, new_figure, require_matplotlib

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from matplotlib.patches import StepPatch


def _edges(values: np.ndarray, bins: int, log: bool) -> np.ndarray:
    low, high = float(values.min()), float(values.max())
    if log:
        low, high = math.log10(low), math.log10(high)
    if high - low < 1e-9:
        low, high = low - 0.5 * max(abs(low), 1e-3), high + 0.5 * max(abs(high), 1e-3)
    edges = np.linspace(low, high, bins + 1)
    return 10**edges if log else edges


def _spread(arrays: Iterable[np.ndarray]) -> float:
    values = np.concatenate([a for a in arrays if a.size])
    return float(values.max() / values.min()) if values.size and values.min() > 0 else 1.0


def _log_axis(ax: Axes) -> None:
    """A log x axis with plain numbers (0.5, 1, 10) instead of powers of ten."""
    from matplotlib.ticker import FormatStrFormatter, LogLocator, NullFormatter

    ax.set_xscale("log")
    ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(FormatStrFormatter("%g"))
    ax.xaxis.set_minor_formatter(NullFormatter())


def _stairs(ax: Axes, values: np.ndarray, edges: np.ndarray, **kwargs: Any) -> StepPatch:
    counts, _ = np.histogram(values, edges)
    return ax.stairs(counts, edges, **kwargs)


def diagnostics_figure(diagnostics: Mapping[str, np.ndarray] | Iterable[Mapping[str, np.ndarray]],
                       labels: Sequence[str] | None = None, *, bins: int = 30, title: str | None = None) -> Figure:
    """The 2x2 grid of :func:`he_diagnostics` results (one dict, or several overlaid, e.g. plain and HE).

    (a) histograms of ``||z||`` on clean (solid) and adversarial (dashed) inputs (log scale when the values span
    more than 10x); (b) histograms of ``cos(theta_y)``; (c) ``||W_l||`` per class (bars); (d) histograms of the
    per-input ratio of input-gradient norms, adversarial over clean (log scale, a dotted line at 1; non-finite
    ratios left out). Each model has one colour; the legend gives the median ratio.
    """
    require_matplotlib()
    from matplotlib.lines import Line2D

    if isinstance(diagnostics, Mapping):
        diagnostics = [diagnostics]
    diagnostics = list(diagnostics)
    if not diagnostics:
        raise UserError("no diagnostics given")
    for d in diagnostics:
        missing = [k for k in KEYS if k not in d]
        if missing:
            raise UserError(f"not a he_diagnostics result: no {', '.join(missing)}")
    names = _labels(labels, [f"model {i + 1}" for i in range(len(diagnostics))])
    colors = _colors(len(diagnostics))
    fig = new_figure(figsize=(11, 8.2))
    (ax_norm, ax_cos), (ax_w, ax_ratio) = fig.subplots(2, 2)

    # (a) feature norms, (b) cos(theta_y): clean solid, adversarial dashed, the same bins for both of a model
    log_norm = _spread([np.asarray(d[k]) for d in diagnostics for k in ("feature_norm_clean", "feature_norm_adv")]) > 10
    cos_all = np.concatenate([np.asarray(d[k], float) for d in diagnostics for k in ("cos_y_clean", "cos_y_adv")])
    cos_edges = _edges(cos_all, bins, False)
    for d, name, color in zip(diagnostics, names, colors):
        norms = [np.asarray(d["feature_norm_clean"], float), np.asarray(d["feature_norm_adv"], float)]
        edges = _edges(np.concatenate(norms), bins, log_norm)
        for values, style, tag in zip(norms, ("-", "--"), ("clean", "adversarial")):
            _stairs(ax_norm, values, edges, color=color, ls=style, lw=1.6, label=f"{name}, {tag}")
        for key, style, tag in (("cos_y_clean", "-", "clean"), ("cos_y_adv", "--", "adversarial")):
            _stairs(ax_cos, np.asarray(d[key], float), cos_edges, color=color, ls=style, lw=1.6,
                    label=f"{name}, {tag}")
    if log_norm:
        _log_axis(ax_norm)
    ax_norm.set_title("(a) feature norm (input of the final layer)")
    ax_norm.set_xlabel(r"$\|z\|$")
    ax_cos.set_title("(b) cosine to the true class's weight")
    ax_cos.set_xlabel(r"$\cos\theta_y = z^\top W_y \,/\, (\|z\|\,\|W_y\|)$")
    for ax in (ax_norm, ax_cos):
        ax.set_ylabel("number of inputs")

    # (c) weight norms per class
    classes = max(len(d["weight_norm"]) for d in diagnostics)
    n = len(diagnostics)
    for i, (d, name, color) in enumerate(zip(diagnostics, names, colors)):
        w = np.asarray(d["weight_norm"], float)
        if classes <= 20:
            ax_w.bar(np.arange(len(w)) + (i - (n - 1) / 2) * 0.8 / n, w, 0.8 / n, color=color, label=name)
        else:
            ax_w.plot(np.arange(len(w)), w, ".", color=color, label=name)
    if classes <= 20:
        ax_w.set_xticks(range(classes))
    ax_w.set_title("(c) weight norm of each class")
    ax_w.set_xlabel("class $l$")
    ax_w.set_ylabel(r"$\|W_l\|$")
    ax_w.set_axisbelow(True)

    # (d) ratio of input-gradient norms, adversarial over clean
    ratios = [np.asarray(d["grad_ratio"], float) for d in diagnostics]
    ratios = [r[np.isfinite(r) & (r > 0)] for r in ratios]
    dropped = sum(len(d["grad_ratio"]) for d in diagnostics) - sum(len(r) for r in ratios)
    if any(r.size for r in ratios):
        edges = _edges(np.concatenate(ratios), bins, True)
        for r, name, color in zip(ratios, names, colors):
            if r.size:
                _stairs(ax_ratio, r, edges, color=color, lw=1.6, fill=True, alpha=0.25, label="_fill")
                _stairs(ax_ratio, r, edges, color=color, lw=1.6, label=f"{name} (median {np.median(r):.3g})")
        _log_axis(ax_ratio)
        ax_ratio.axvline(1.0, color="0.4", ls=":", lw=1)
        ax_ratio.legend(fontsize=8)
    ax_ratio.set_title("(d) input-gradient norm, adversarial / clean")
    ax_ratio.set_xlabel(r"$\|\nabla_x L(x_\mathrm{adv})\| \,/\, \|\nabla_x L(x)\|$,  $L$: training loss"
                        + (f"  ({dropped} non-finite left out)" if dropped else ""))
    ax_ratio.set_ylabel("number of inputs")
    for ax in (ax_norm, ax_cos, ax_w, ax_ratio):
        ax.grid(alpha=0.3)

    handles = [Line2D([], [], color=c, lw=3, label=nm) for nm, c in zip(names, colors)]
    handles += [Line2D([], [], color="0.3", ls="-", label="clean inputs"),
                Line2D([], [], color="0.3", ls="--", label="adversarial inputs")]
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), frameon=False)
    eps = {float(d["eps"]) for d in diagnostics}
    note = images_note(len(d["feature_norm_clean"]) for d in diagnostics)
    if len(eps) == 1 and not math.isnan(next(iter(eps))):
        note += f"; adversarial: PGD, $\\epsilon$ = {format_eps(next(iter(eps)))}"
    fig.suptitle(title or f"Hypersphere-embedding diagnostics on {note}")
    return fig
