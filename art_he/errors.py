"""The exception types of art_he: :class:`UserError` for mistakes a user can fix, and :class:`Preempted` for a
training run that a signal stopped after writing its checkpoint.

A :class:`UserError` (a bad argument, a missing, damaged or mismatched file, a run folder that would be
overwritten) is printed by ``art-he`` as one line naming what is wrong, with exit code 2. Anything else is a
bug in art_he or a dependency and keeps its traceback. ``UserError`` is a ``ValueError`` so that Python
callers catching ``ValueError`` keep working; :class:`MissingFileError` is also a ``FileNotFoundError``.
"""

from __future__ import annotations


class UserError(ValueError):
    """A mistake the user can fix; the message says what and, where it helps, how."""


class MissingFileError(UserError, FileNotFoundError):
    """A file or folder the user named (or a data set) is not where it should be; the message names the layout."""


class TrainingDiverged(UserError):
    """A non-finite loss or parameter stopped training at the batch where it appeared; nothing non-finite was saved
    (the last checkpoint is left as it was and no model is written)."""


#: exit status of ``art-he train`` and ``art-he reproduce`` stopped by SIGTERM or SIGUSR1 after writing a checkpoint
#: to resume from (``EX_TEMPFAIL`` of sysexits.h: a temporary failure, try again)
PREEMPTED_EXIT = 75


class Preempted(Exception):
    """Training stopped on SIGTERM or SIGUSR1 after the current batch and wrote a checkpoint; ``--resume``
    (``resume=True``) continues from that batch. Not an error: the message says where the checkpoint is."""
