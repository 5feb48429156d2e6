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
Progress goes to the ``art_he.reproduce`` logger. The package exports its entry points; the rest is imported from
the room that owns it.
"""

from art_he.reproduce.cli import add_reproduce_arguments, run_reproduce
from art_he.reproduce.estimate import estimate_hours
from art_he.reproduce.plan import plan_text, row_configs
from art_he.reproduce.runner import reproduce
from art_he.reproduce.tables import TABLES, PaperRow, PaperTable, get_table

__all__ = [
    "TABLES", "PaperRow", "PaperTable", "add_reproduce_arguments", "estimate_hours", "get_table", "plan_text",
    "reproduce", "row_configs", "run_reproduce",
]
