"""art_he's log: library code logs to ``logging.getLogger("art_he")`` (or a child, ``"art_he.runs"``) and never
prints; ``verbose=False`` logs nothing. Who wants the lines installs a handler: ``art-he`` does (:func:`show_logs`),
a script may call it too or use ``logging`` as it likes.
"""

from __future__ import annotations

import logging
import sys

from tqdm.auto import tqdm

LOGGER = "art_he"


class BarSafeHandler(logging.Handler):
    """Each record's message as one line on standard output, through ``tqdm.write``: a progress bar being drawn is
    redrawn below the line instead of being broken by it."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            tqdm.write(self.format(record), file=sys.stdout)  # sys.stdout now, not at import (captured output)
        except Exception:  # logging's rule: a failing handler reports and carries on
            self.handleError(record)


def show_logs(level: int = logging.INFO) -> logging.Handler:
    """Show art_he's records at ``level`` and above as plain lines (:class:`BarSafeHandler`), once however often it
    is called; returns the handler."""
    logger = logging.getLogger(LOGGER)
    logger.setLevel(level)
    handler = next((h for h in logger.handlers if isinstance(h, BarSafeHandler)), None)
    if handler is None:
        handler = BarSafeHandler()
        logger.addHandler(handler)
    return handler
