"""``art-he reproduce``'s arguments and command."""

from __future__ import annotations

import argparse
import logging

from art_he.argtypes import positive_int
from art_he.config import add_config_arguments, given_options
from art_he.reproduce.plan import ROW_IDENTITY
from art_he.reproduce.runner import reproduce
from art_he.reproduce.tables import TABLES

log = logging.getLogger("art_he.reproduce")


def add_reproduce_arguments(parser: argparse.ArgumentParser) -> None:
    """``art-he reproduce``'s options: the table, the run folder, the evaluation's size and the training
    options of ``art-he train`` (but those that define a row) as overrides of every row's recipe."""
    parser.add_argument("table", metavar="TABLE", help=f"{', '.join(TABLES)} (table10: Table 2's rows plus m-HE; "
                                                       "table4: ImageNet, ResNet-50/152 and WRN-50-2/101-2)")
    parser.add_argument("--out", default="runs/reproduce", help="one run folder per row, OUT/<recipe> "
                                                                "(default: runs/reproduce)")
    parser.add_argument("--n", type=positive_int, default=None, help="test images to evaluate (default: all)")
    parser.add_argument("--max-steps", type=positive_int, default=None,
                        help="cap every attack's steps (smoke tests; shown in the table)")
    parser.add_argument("--dry-run", action="store_true", help="print the plan and the GPU-hour estimate only")
    parser.add_argument("--quiet", action="store_true", help="no per-epoch lines or progress bars")
    group = parser.add_argument_group("training options, applied to every row on top of its recipe")
    add_config_arguments(group, exclude=ROW_IDENTITY)  # type: ignore[arg-type]  # config.py says ArgumentParser; a group works


def run_reproduce(args: argparse.Namespace) -> int:
    """``art-he reproduce`` with parsed ``args``."""
    text = reproduce(args.table, given_options(args), args.out, n=args.n, max_steps=args.max_steps,
                     dry_run=args.dry_run, verbose=not args.quiet)
    if text:
        log.info("%s", text.removesuffix("\n"))
    return 0
