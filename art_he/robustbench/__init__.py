"""RobustBench interop: our models in RobustBench's own architectures, submissions, leaderboards.

:mod:`~art_he.robustbench.architectures` maps a model to the RobustBench architecture with the identical forward
and converts state dicts both ways.
"""

from art_he.robustbench.architectures import Architecture, architecture_of, to_robustbench, to_robustbench_state_dict

__all__ = ["Architecture", "architecture_of", "to_robustbench", "to_robustbench_state_dict"]
