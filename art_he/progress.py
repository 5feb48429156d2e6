"""Progress bars for long work: tqdm on a terminal or in a notebook; on a pipe or a log file, at most one
redraw a minute, so a log does not fill with carriage-return updates."""

from __future__ import annotations

import sys

from tqdm.auto import tqdm
from tqdm.std import tqdm as plain_tqdm

#: seconds between redraws when the bar does not go to a terminal
LOG_INTERVAL_S = 60.0


def progress(iterable=None, *, enabled: bool = True, **kwargs) -> tqdm:
    """``tqdm(iterable, **kwargs)``, switched off unless ``enabled``, redrawn rarely when not on a terminal."""
    stream = kwargs.get("file") or sys.stderr
    if tqdm is plain_tqdm and not (hasattr(stream, "isatty") and stream.isatty()):
        kwargs.setdefault("mininterval", LOG_INTERVAL_S)
        kwargs.setdefault("maxinterval", LOG_INTERVAL_S)
    return tqdm(iterable, disable=not enabled, **kwargs)


def say(text: str) -> None:
    """Print a line without breaking a bar that is being drawn (``tqdm.write``)."""
    tqdm.write(text)
