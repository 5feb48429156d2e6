"""``autoattack.state`` of the GitHub API: pyautoattack's ``EvaluationState`` (same class and JSON format)."""

from pyautoattack.state import EvaluationState

__all__ = ["EvaluationState"]
