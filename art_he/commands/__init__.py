"""The ``art-he eval`` and ``art-he plot`` commands (:mod:`art_he.cli` dispatches to them): argument parsing and
dispatch over the library, the one place besides ``art_he.cli`` where the RobustBench integration
(:mod:`art_he.robustbench`) is imported, when a command asks for it."""
