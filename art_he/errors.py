"""The one exception type for mistakes a user can fix.

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
