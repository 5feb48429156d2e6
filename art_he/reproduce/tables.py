"""The paper's tables, transcribed once: their columns, the attacks that evaluate their rows, and the paper's
numbers (Tables 2, 3, 4 and 10)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from art_he.errors import UserError

#: Table 2's attacks in the suite's names (C&W: PGD on the C&W margin, as Zhang et al. evaluate it)
WHITE_BOX = ("pgd20", "pgd500", "mim20", "fgsm", "deepfool", "cw20", "feature100", "fab")
TABLE2_EVAL = "Table 2's caption, following Zhang et al."


@dataclass(frozen=True)
class PaperRow:
    """One line of a paper table: the recipe that trains it, the paper's name for it and its numbers."""

    recipe: str
    label: str
    values: tuple[float, ...]  # in the order of the table's columns


@dataclass(frozen=True)
class PaperTable:
    """A table of the paper: its columns (as our report's keys and as the paper heads them), the attacks and
    settings that evaluate its rows, and its rows with the paper's numbers."""

    key: str
    number: int
    caption: str
    columns: tuple[str, ...]  # report keys: "clean", attack names, "train_min" (training time, minutes)
    headers: tuple[str, ...]  # the paper's column heads
    attacks: tuple[str, ...]  # what every row is evaluated with (besides clean accuracy)
    eps: float
    eps_step: float
    eval_source: str
    rows: tuple[PaperRow, ...]

    @property
    def recipes(self) -> list[str]:
        return [row.recipe for row in self.rows]


def _rows(*rows: tuple[Any, ...]) -> tuple[PaperRow, ...]:
    """``(recipe, label, *values)`` tuples as rows."""
    return tuple(PaperRow(recipe, label, tuple(values)) for recipe, label, *values in rows)


_TABLE2_ROWS = (  # paper Table 2: Clean, PGD-20, PGD-500, MIM-20, FGSM, DeepFool, C&W, FeaAtt., FAB
    ("table2-pgd-plain", "PGD-AT", 86.75, 53.97, 51.63, 55.08, 59.70, 57.26, 84.00, 52.38, 51.23),
    ("table2-pgd-he", "PGD-AT+HE", 86.19, 59.36, 57.59, 60.19, 63.77, 61.56, 84.07, 52.88, 54.45),
    ("table2-alp-plain", "ALP", 87.18, 52.29, 50.13, 53.35, 58.99, 59.40, 84.96, 49.55, 50.54),
    ("table2-alp-he", "ALP+HE", 89.91, 57.69, 51.78, 58.63, 65.08, 65.19, 87.86, 48.64, 51.86),
    ("table2-trades-plain", "TRADES", 84.62, 56.48, 54.84, 57.14, 61.02, 60.70, 81.13, 55.09, 53.58),
    ("table2-trades-he", "TRADES+HE", 84.88, 62.02, 60.75, 62.71, 65.69, 60.48, 81.44, 58.13, 53.50),
)
_TABLE10_ROWS = (  # paper Table 10 (App. C.5): Clean, PGD-20, PGD-500, MIM-20, FGSM, DeepFool, C&W-Linf
    ("table2-pgd-plain", "PGD-AT", 86.75, 53.97, 51.63, 55.08, 59.70, 57.26, 84.00),
    ("table2-pgd-he", "PGD-AT+HE", 86.19, 59.36, 57.59, 60.19, 63.77, 61.56, 84.07),
    ("table10-pgd-mhe", "PGD-AT+m-HE", 86.25, 59.90, 58.46, 60.50, 63.70, 59.47, 83.71),
    ("table2-alp-plain", "ALP", 87.18, 52.29, 50.13, 53.35, 58.99, 59.40, 84.96),
    ("table2-alp-he", "ALP+HE", 89.91, 57.69, 51.78, 58.63, 65.08, 65.19, 87.86),
    ("table10-alp-mhe", "ALP+m-HE", 89.23, 57.09, 53.34, 58.04, 63.81, 60.74, 87.21),
    ("table2-trades-plain", "TRADES", 84.62, 56.48, 54.84, 57.14, 61.02, 60.70, 81.13),
    ("table2-trades-he", "TRADES+HE", 84.88, 62.02, 60.75, 62.71, 65.69, 60.48, 81.44),
    ("table10-trades-mhe", "TRADES+m-HE", 84.30, 61.83, 60.43, 62.67, 65.49, 60.51, 80.53),
)
_TABLE3_ROWS = (  # paper Table 3: Clean, PGD-50, training time (min; the Epo. column is the recipes' epochs)
    ("table3-fast-plain", "FastAT", 83.80, 46.40, 11.38),
    ("table3-fast-he", "FastAT+HE", 82.58, 52.55, 11.48),
    ("table3-fast-mhe", "FastAT+m-HE", 83.14, 53.49, 11.49),
    ("table3-free-plain", "FreeAT", 77.21, 46.14, 15.78),
    ("table3-free-he", "FreeAT+HE", 76.85, 50.98, 15.87),
    ("table3-free-mhe", "FreeAT+m-HE", 77.59, 51.85, 15.91),
)

_TABLE4_ROWS = (  # paper Table 4: Clean, PGD-10, PGD-50
    ("table4-free-plain", "ResNet-50 FreeAT", 60.28, 32.13, 31.39),
    ("table4-free-he", "ResNet-50 FreeAT+HE", 61.83, 40.22, 39.85),
    ("table4-resnet152-free-plain", "ResNet-152 FreeAT", 65.20, 36.97, 35.87),
    ("table4-resnet152-free-he", "ResNet-152 FreeAT+HE", 65.41, 43.24, 42.60),
    ("table4-wrn50-2-free-plain", "WRN-50-2 FreeAT", 64.18, 36.24, 35.38),
    ("table4-wrn50-2-free-he", "WRN-50-2 FreeAT+HE", 65.28, 43.83, 43.47),
    ("table4-wrn101-2-free-plain", "WRN-101-2 FreeAT", 66.15, 39.35, 38.23),
    ("table4-wrn101-2-free-he", "WRN-101-2 FreeAT+HE", 66.37, 45.35, 45.04),
)

#: the paper's tables, transcribed from the paper (Tables 2, 3, 4 and 10); the one copy of its numbers
TABLES: dict[str, PaperTable] = {t.key: t for t in (
    PaperTable("table2", 2, "white-box accuracy (%) on CIFAR-10",
               ("clean", *WHITE_BOX), ("Clean", "PGD-20", "PGD-500", "MIM-20", "FGSM", "DeepFool", "C&W",
                                       "FeaAtt.", "FAB"),
               WHITE_BOX, 0.031, 0.003, TABLE2_EVAL, _rows(*_TABLE2_ROWS)),
    PaperTable("table10", 10, "white-box accuracy (%) on CIFAR-10 with m-HE (App. C.5)",
               ("clean", *WHITE_BOX[:6]), ("Clean", "PGD-20", "PGD-500", "MIM-20", "FGSM", "DeepFool", "C&W-Linf"),
               WHITE_BOX, 0.031, 0.003, TABLE2_EVAL + "; Table 2's attacks, so that the rows are shared",
               _rows(*_TABLE10_ROWS)),
    PaperTable("table3", 3, "FastAT and FreeAT with HE and m-HE on CIFAR-10: accuracy (%) and training time (min)",
               ("clean", "pgd50", "train_min"), ("Clean", "PGD-50", "Time (min)"), ("pgd50",), 8 / 255, 2 / 255,
               "Sec. 4's eps 8/255 and step 2/255 (the paper does not give Table 3's PGD-50 settings)",
               _rows(*_TABLE3_ROWS)),
    PaperTable("table4", 4, "white-box top-1 accuracy (%) on ImageNet",
               ("clean", "pgd10", "pgd50"), ("Clean", "PGD-10", "PGD-50"), ("pgd10", "pgd50"), 4 / 255, 1 / 255,
               "Sec. 4: Shafahi et al.'s settings, eps 4/255 with step 1/255", _rows(*_TABLE4_ROWS)),
)}


def get_table(name: str) -> PaperTable:
    """The table named ``name`` (``table2``, ``table10``, ``table3``, ``table4``); :class:`UserError` otherwise."""
    if name not in TABLES:
        raise UserError(f"unknown table {name!r}; choose from {', '.join(TABLES)}")
    return TABLES[name]
