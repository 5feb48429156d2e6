"""RobustBench interop: our models in RobustBench's own architectures, submissions, leaderboards.

:mod:`~art_he.robustbench.architectures` maps a model to the RobustBench architecture with the identical forward
and converts state dicts both ways.
:mod:`~art_he.robustbench.leaderboard` ranks model cards (ours and RobustBench's ``model_info``) the way
RobustBench's leaderboard does and renders the table as Markdown or HTML (``art-he leaderboard``); it does not
import torch, and neither does importing this package: the names below are loaded on first use.
"""

from __future__ import annotations

import importlib

#: public name -> module; imported on first use, so that ``art_he.robustbench.leaderboard`` stays free of torch
_LAZY = {
    "Architecture": "art_he.robustbench.architectures",
    "architecture_of": "art_he.robustbench.architectures",
    "to_robustbench": "art_he.robustbench.architectures",
    "to_robustbench_state_dict": "art_he.robustbench.architectures",
}

__all__ = ["Architecture", "architecture_of", "to_robustbench", "to_robustbench_state_dict"]


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    if name in ("architectures", "leaderboard"):
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*__all__, "architectures", "leaderboard"])
