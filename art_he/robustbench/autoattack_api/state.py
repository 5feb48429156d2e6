"""``autoattack.state`` of the GitHub API: pyautoattack's ``EvaluationState`` (same class and JSON format).

Registered as ``autoattack.state`` together with the adapter (see :mod:`art_he.robustbench.autoattack_api`)."""

from pyautoattack.state import EvaluationState

__all__ = ["EvaluationState"]
