"""RobustBench and AutoAttack interop, the one integration package: nothing of the HE core imports it, and only the
commands and functions that need RobustBench (``art-he eval --suite robustbench`` / ``--robustbench``,
``art-he export``, ``art-he leaderboard``) import it, when they run.

* :mod:`~art_he.robustbench.imports`: :func:`import_robustbench`, ``import robustbench`` where it does not import
  by itself (no ``autoattack``, no ``pkg_resources``); the stand-ins it needs are in ``sys.modules`` only during
  that import (:mod:`~art_he.robustbench.autoattack_alias`, the adapter :mod:`~art_he.robustbench.autoattack_api`).
* :mod:`~art_he.robustbench.loaders`: :func:`fixed_loaders`, RobustBench's CIFAR loader tables fixed inside a
  ``with`` block only, and :func:`load_clean_cifar`.
* :mod:`~art_he.robustbench.zoo`: RobustBench zoo entries and the authors' AT_HE checkpoints as ART classifiers.
* :mod:`~art_he.robustbench.architectures`: the RobustBench architecture with a model's identical forward, and
  state dicts converted both ways.
* :mod:`~art_he.robustbench.benchmark`: ``robustbench.eval.benchmark`` on a run (``art-he eval --suite robustbench``).
* :mod:`~art_he.robustbench.leaderboard`: ranks model cards (ours and RobustBench's ``model_info``) the way
  RobustBench's leaderboard does, as Markdown or HTML (``art-he leaderboard``); it needs no torch.
* :mod:`~art_he.robustbench.export`: a submission RobustBench's ``load_model`` loads (``art-he export``), and
  :func:`register` / :func:`registered`, which add an export to RobustBench's zoo (for the process / a block).

Every fix to another library is written for one upstream version and guarded (:mod:`art_he.upstream`). Names are
imported on first use, so that modules that need no torch (the leaderboard) load fast.
"""

from typing import TYPE_CHECKING

from art_he.lazy import lazy_exports

if TYPE_CHECKING:  # what a type checker sees of the lazy names below
    from art_he.robustbench.architectures import (  # noqa: F401
        Architecture,
        architecture_of,
        to_robustbench,
        to_robustbench_state_dict,
    )
    from art_he.robustbench.benchmark import benchmark_run  # noqa: F401
    from art_he.robustbench.export import export_run, register, registered  # noqa: F401
    from art_he.robustbench.imports import import_robustbench  # noqa: F401
    from art_he.robustbench.loaders import fixed_loaders, load_clean_cifar  # noqa: F401
    from art_he.robustbench.zoo import load_at_he, load_robustbench, zoo_classifier_for_eval  # noqa: F401

_MODULES = {"Architecture": "architectures", "architecture_of": "architectures", "to_robustbench": "architectures",
            "to_robustbench_state_dict": "architectures", "benchmark_run": "benchmark", "export_run": "export",
            "register": "export", "registered": "export", "import_robustbench": "imports",
            "fixed_loaders": "loaders", "load_clean_cifar": "loaders", "load_at_he": "zoo",
            "load_robustbench": "zoo", "zoo_classifier_for_eval": "zoo"}
__all__ = sorted(_MODULES)
__getattr__, __dir__ = lazy_exports(__name__, {name: f"art_he.robustbench.{m}" for name, m in _MODULES.items()})
