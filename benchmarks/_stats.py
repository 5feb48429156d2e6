"""Statistics shared by the studies: paired t-tests over seeds and McNemar's exact test over images."""

from __future__ import annotations

import math

import numpy as np


def t_quantile_975(dof: int) -> float:
    from scipy import stats

    return float(stats.t.ppf(0.975, dof))


def paired_t(diffs: list[float]) -> dict:
    from scipy import stats

    d = np.asarray(diffs, dtype=float)
    n = len(d)
    mean = float(d.mean())
    if n < 2:
        return {"mean": mean, "sd": None, "ci95": None, "p": None, "dof": n - 1}
    sd = float(d.std(ddof=1))
    half = t_quantile_975(n - 1) * sd / math.sqrt(n)
    p = float(stats.ttest_1samp(d, 0.0).pvalue) if sd > 0 else (1.0 if mean == 0 else 0.0)
    return {"mean": mean, "sd": sd, "ci95": [mean - half, mean + half], "p": p, "dof": n - 1}


def holm(pvalues: list[float | None]) -> list[float | None]:
    """Holm-Bonferroni adjusted p-values of one family, in the given order (``None`` stays ``None``): the ``i``-th
    smallest of ``k`` p-values times ``k - i``, made monotone, capped at 1."""
    present = sorted((p, i) for i, p in enumerate(pvalues) if p is not None)
    adjusted: list[float | None] = [None] * len(pvalues)
    running = 0.0
    for rank, (p, i) in enumerate(present):
        running = max(running, min(1.0, (len(present) - rank) * p))
        adjusted[i] = running
    return adjusted


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value: binomial test of ``min(b, c)`` out of ``b + c`` discordant pairs at 1/2."""
    from scipy import stats

    return 1.0 if b + c == 0 else float(stats.binomtest(min(b, c), b + c, 0.5).pvalue)


def sd(values: list[float]) -> float | None:
    return float(np.std(values, ddof=1)) if len(values) > 1 else None


def pm(cell: dict) -> str:
    """``mean ± sd`` of a summary cell (just the mean when there is no sd)."""
    return f"{cell['mean']:.2f} ± {cell['sd']:.2f}" if cell.get("sd") is not None else f"{cell['mean']:.2f}"
