"""Progress bars for long work: tqdm on a terminal or in a notebook; on a pipe or a log file, at most one
redraw a minute, so a log does not fill with carriage-return updates."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any

from tqdm.auto import tqdm

#: seconds between redraws when the bar does not go to a terminal
LOG_INTERVAL_S = 60.0


def progress(iterable: Iterable[Any] | None = None, *, enabled: bool = True, **kwargs: Any) -> tqdm:
    """``tqdm(iterable, **kwargs)``, switched off unless ``enabled``, redrawn rarely when not on a terminal."""
    stream = kwargs.get("file") or sys.stderr
    if not in_notebook() and not (hasattr(stream, "isatty") and stream.isatty()):
        kwargs.setdefault("mininterval", LOG_INTERVAL_S)
        kwargs.setdefault("maxinterval", LOG_INTERVAL_S)
    return tqdm(iterable, disable=not enabled, **kwargs)


def in_notebook() -> bool:
    """Whether ``tqdm.auto`` chose the notebook widget (outside a notebook it is a text bar, ``tqdm_asyncio``)."""
    return any(klass.__module__ == "tqdm.notebook" for klass in tqdm.__mro__)

