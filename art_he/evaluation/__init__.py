"""Evaluation of (HE) models: ART attacks, SPSA/NES, AutoAttack, corruptions, transfer; paper-style tables.

>>> from art_he.evaluation import evaluate
>>> report = evaluate(classifier, x_test, y_test, suite="quick", n=500, eps=0.1)
>>> print(report.to_markdown()); report.to_json("eval.json"); report.to_csv("eval.csv")

``art-he eval DIR --suite quick|paper|blackbox|corruptions|transfer`` is the same from the command line
(:mod:`art_he.commands.eval`).
"""

from art_he.evaluation.attacks import build_attack, run_attack
from art_he.evaluation.auto_attack import AutoAttackResult, run_autoattack
from art_he.evaluation.catalog import CATALOG, AttackFamily, Context, known_attacks, register_attack
from art_he.evaluation.corruptions import (
    CORRUPTIONS,
    SEVERITIES,
    corrupt_images,
    evaluate_corruptions,
    load_corrupted,
    read_corrupted_set,
    write_corrupted_set,
)
from art_he.evaluation.diagnostics import he_diagnostics
from art_he.evaluation.report import Report, Row, corruption_table, paper_table
from art_he.evaluation.sanity import Check, run_checks
from art_he.evaluation.specs import SUITES, SWEEPS, AttackSpec, parse_attack, parse_attacks
from art_he.evaluation.suite import evaluate
from art_he.evaluation.views import ClassifierModule, FeatureTap, as_torch_module, logits_view, project_linf, view

__all__ = [
    "CATALOG", "CORRUPTIONS", "SEVERITIES", "SUITES", "SWEEPS", "AttackFamily", "AttackSpec", "AutoAttackResult",
    "Check", "ClassifierModule", "Context", "FeatureTap", "Report", "Row", "as_torch_module", "build_attack",
    "corrupt_images", "corruption_table", "evaluate", "evaluate_corruptions", "he_diagnostics", "known_attacks",
    "load_corrupted", "logits_view", "paper_table", "parse_attack", "parse_attacks", "project_linf",
    "read_corrupted_set", "register_attack", "run_attack", "run_autoattack", "run_checks", "view",
    "write_corrupted_set",
]
