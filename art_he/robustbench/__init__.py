"""RobustBench interop: our models in RobustBench's own architectures, submissions, benchmark, leaderboards.

* :mod:`~art_he.robustbench.architectures`: the RobustBench architecture with a model's identical forward, and
  state dicts converted both ways.
* :mod:`~art_he.robustbench.benchmark`: ``robustbench.eval.benchmark`` on a run (``art-he eval --suite robustbench``).
* :mod:`~art_he.robustbench.leaderboard`: ranks model cards (ours and RobustBench's ``model_info``) the way
  RobustBench's leaderboard does, as Markdown or HTML (``art-he leaderboard``); it needs no torch.
* :mod:`~art_he.robustbench.export`: a submission RobustBench's ``load_model`` loads (``art-he export``), and
  :func:`register`, which adds an export to RobustBench's zoo in the current process.

Names are imported on first use, so that modules that need no torch (the leaderboard) load fast.
"""

from art_he.lazy import lazy_exports

_MODULES = {"Architecture": "architectures", "architecture_of": "architectures", "to_robustbench": "architectures",
            "to_robustbench_state_dict": "architectures", "benchmark_run": "benchmark", "export_run": "export",
            "register": "export"}
__all__ = sorted(_MODULES)
__getattr__, __dir__ = lazy_exports(__name__, {name: f"art_he.robustbench.{m}" for name, m in _MODULES.items()})
