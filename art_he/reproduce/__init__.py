"""``art-he reproduce table2|table10|table3|table4``: train every row of one of the paper's tables from its
recipes, evaluate it and print the table beside the paper's numbers, with the differences.

Each row trains into ``OUT/<recipe>/`` (an ordinary run folder, see :mod:`art_he.runs`) and its evaluation is
cached in ``OUT/<recipe>/eval.json``. A rerun skips finished rows whose configuration matches, resumes an
interrupted row from its ``checkpoint.pt`` and reuses an evaluation made with the same settings of the same
weights. ``table10`` is Table 2's six rows plus the three m-HE rows, evaluated with the same attacks, so that
``table10`` after ``table2`` (same ``--out``) trains and evaluates only the m-HE rows.

Its rooms: :mod:`~art_he.reproduce.tables` (the paper's numbers), :mod:`~art_he.reproduce.plan` and
:mod:`~art_he.reproduce.estimate` (what is left and its GPU-hours), :mod:`~art_he.reproduce.cache` (a row's folder)
and :mod:`~art_he.reproduce.runner`, :mod:`~art_he.reproduce.report` (the comparison), :mod:`~art_he.reproduce.cli`.
Progress goes to the ``art_he.reproduce`` logger.
"""

from art_he.reproduce.cache import (
    EVAL_FILE,
    RowState,
    cached_report,
    describe,
    eval_settings,
    row_state,
    weights_digest,
)
from art_he.reproduce.cli import add_reproduce_arguments, run_reproduce
from art_he.reproduce.estimate import (
    AA_SQUARE_QUERIES,
    AA_TARGETS,
    FORWARD,
    THROUGHPUT_FILE,
    Speed,
    attack_passes,
    dataset_sizes,
    estimate_hours,
    eval_passes_per_image,
    forward_flops,
    images_per_second,
    measured_throughput,
    model_forward_flops,
    train_passes_per_image,
    training_speed,
)
from art_he.reproduce.plan import ROW_IDENTITY, plan_text, row_configs
from art_he.reproduce.report import comparison_text, row_values, training_minutes, write_results
from art_he.reproduce.runner import evaluate_row, reproduce, train_row
from art_he.reproduce.tables import TABLE2_EVAL, TABLES, WHITE_BOX, PaperRow, PaperTable, get_table

__all__ = [
    "AA_SQUARE_QUERIES", "AA_TARGETS", "EVAL_FILE", "FORWARD", "ROW_IDENTITY", "TABLE2_EVAL", "TABLES",
    "THROUGHPUT_FILE", "WHITE_BOX", "PaperRow", "PaperTable", "RowState", "Speed", "add_reproduce_arguments",
    "attack_passes", "cached_report", "comparison_text", "dataset_sizes", "describe", "estimate_hours",
    "eval_passes_per_image", "eval_settings", "evaluate_row", "forward_flops", "get_table", "images_per_second",
    "measured_throughput", "model_forward_flops", "plan_text", "reproduce", "row_configs", "row_state", "row_values",
    "run_reproduce", "train_passes_per_image", "train_row", "training_minutes", "training_speed", "weights_digest",
    "write_results",
]
