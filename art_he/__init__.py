"""art_he: hypersphere embedding (Pang et al., NeurIPS 2020) for the Adversarial Robustness Toolbox."""

from __future__ import annotations

from typing import TYPE_CHECKING

from art_he.lazy import lazy_exports

if TYPE_CHECKING:  # what a type checker sees of the lazy names below
    from art_he.errors import UserError  # noqa: F401
    from art_he.estimator import HEAttackLoss, HEPyTorchClassifier  # noqa: F401
    from art_he.heads import HypersphereHead, find_head, to_hypersphere  # noqa: F401
    from art_he.runs import load_run  # noqa: F401

__version__ = "0.1.0"

#: public name -> module; imported on first use, so that ``import art_he`` (and ``art-he --help``) stays light
_LAZY = {
    "HEAttackLoss": "art_he.estimator",
    "HEPyTorchClassifier": "art_he.estimator",
    "HypersphereHead": "art_he.heads",
    "find_head": "art_he.heads",
    "to_hypersphere": "art_he.heads",
    "load_run": "art_he.runs",
    "UserError": "art_he.errors",
}

__all__ = sorted([*_LAZY, "__version__"])


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
