"""Figures of runs, evaluation reports and HE diagnostics (:func:`art_he.evaluation.he_diagnostics`), with matplotlib
(``pip install 'art-he[notebooks]'``).

>>> from art_he.plots import attacks_figure, save
>>> save(attacks_figure(["plain.json", "he.json"]), "attacks.png")

The command line is ``art-he plot KIND INPUT... --out FILE.png|svg`` (:mod:`art_he.commands.plot`). Functions are
imported on first use, so that ``import art_he.plots`` loads neither matplotlib nor torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from art_he.lazy import lazy_exports

if TYPE_CHECKING:  # what a type checker sees of the lazy names below
    from art_he.plots.diagnostics import diagnostics_figure  # noqa: F401
    from art_he.plots.figures import (  # noqa: F401
        attacks_figure,
        corruptions_figure,
        curves_figure,
        eps_figure,
        load_report,
        read_metrics,
        save,
    )

#: public name -> module
_LAZY = {
    "curves_figure": "art_he.plots.figures",
    "eps_figure": "art_he.plots.figures",
    "attacks_figure": "art_he.plots.figures",
    "corruptions_figure": "art_he.plots.figures",
    "save": "art_he.plots.figures",
    "read_metrics": "art_he.plots.figures",
    "load_report": "art_he.plots.figures",
    "diagnostics_figure": "art_he.plots.diagnostics",
}

__all__ = sorted(_LAZY)


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
