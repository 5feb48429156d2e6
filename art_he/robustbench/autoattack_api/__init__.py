"""The GitHub AutoAttack API (``fra31/auto-attack``) on top of ``pyautoattack`` from PyPI.

RobustBench imports ``from autoattack import AutoAttack`` and ``from autoattack.state import EvaluationState``
and calls the GitHub signatures; ``pyautoattack`` 0.2 changed them (keyword-only constructor, ``batch_size=``,
a ``(x_adv, y_adv)`` return, logging only through the ``"auto-attack"`` logger). This adapter translates:

* ``AutoAttack(model, norm='Linf', eps=.3, seed=None, verbose=True, attacks_to_run=[], version='standard',
  is_tf_model=False, device='cuda', log_path=None)``
* ``run_standard_evaluation(x, y, bs=250, return_labels=False, state_path=None)`` -> ``x_adv``
  (``(x_adv, y_adv)`` with ``return_labels=True``)
* ``run_standard_evaluation_individual(x, y, bs=250, return_labels=False)`` -> ``{attack: x_adv}``
* ``clean_accuracy(x, y, bs=250)``, ``set_version(version)``, ``get_logits(x)``, ``get_seed()``
* the attributes ``attacks_to_run``, ``apgd``, ``apgd_targeted``, ``fab``, ``square``, ``norm``, ``epsilon``,
  ``seed``, ``verbose``, ``version``, ``device``, ``logger`` (read and written through to pyautoattack).

With ``verbose=True`` AutoAttack's log goes to ``log_path`` (appended) or to stdout, as on GitHub.

art_he does not install it as a top-level ``autoattack`` (that name belongs to fra31's package):
:func:`art_he.robustbench.import_robustbench` puts it in ``sys.modules`` as ``autoattack`` (and its :mod:`.state` as
``autoattack.state``) while robustbench is imported, and only where no other ``autoattack`` can be imported
(:mod:`art_he.robustbench.autoattack_alias`).

Written for pyautoattack 0.2.x: on import, :func:`pyautoattack_problems` checks the signatures it relies on
(see :mod:`art_he.upstream` for what happens on another version).
"""

from __future__ import annotations

import inspect
import logging
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyautoattack
from pyautoattack import AutoAttack as _PyAutoAttack

from art_he.robustbench.autoattack_api import state
from art_he.upstream import binds, guard

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = ["AutoAttack", "state"]
__version__ = pyautoattack.__version__
ADAPTER = "art_he"
_LOGGER = "auto-attack"
_FORWARDED = ("attacks_to_run", "apgd", "apgd_targeted", "fab", "square", "norm", "epsilon", "seed", "verbose",
              "version", "device", "model", "logger")


def _keyword_only(func: Callable[..., Any] | None) -> set[str]:
    if func is None:  # as inspect.signature's TypeError below
        return set()
    try:
        parameters = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):
        return set()
    return {p.name for p in parameters if p.kind is p.KEYWORD_ONLY}


def pyautoattack_problems(cls: type[Any] = _PyAutoAttack) -> list[str]:
    """What of pyautoattack 0.2's ``AutoAttack`` API, as the adapter calls it, ``cls`` lacks."""
    problems = []
    if not {"norm", "eps", "version", "device", "seed", "attacks"} <= _keyword_only(cls.__init__):
        problems.append("AutoAttack(model, *, norm, eps, version, device, seed, attacks)")
    if not {"batch_size", "state_path"} <= _keyword_only(getattr(cls, "run_standard_evaluation", None)):
        problems.append("AutoAttack.run_standard_evaluation(x, y, *, batch_size, state_path)")
    if "batch_size" not in _keyword_only(getattr(cls, "run_standard_evaluation_individual", None)):
        problems.append("AutoAttack.run_standard_evaluation_individual(x, y, *, batch_size)")
    if not binds(getattr(cls, "clean_accuracy", None), None, None, None, bs=1):
        problems.append("AutoAttack.clean_accuracy(x, y, bs)")
    problems += [f"AutoAttack.{name}" for name in ("_set_version", "get_logits", "get_seed")
                 if not callable(getattr(cls, name, None))]
    return problems


guard("pyautoattack", pyautoattack_problems())


class AutoAttack:
    """GitHub ``autoattack.AutoAttack`` with pyautoattack doing the work (see the module docstring)."""

    def __init__(self, model: nn.Module, norm: str = "Linf", eps: float = 0.3, seed: int | None = None,
                 verbose: bool = True, attacks_to_run: Sequence[str] = (), version: str = "standard",
                 is_tf_model: bool = False, device: str | torch.device = "cuda",
                 log_path: str | os.PathLike[str] | None = None) -> None:
        if is_tf_model:
            raise NotImplementedError("TensorFlow models are not supported by pyautoattack's PyTorch API")
        attacks = list(attacks_to_run) if attacks_to_run else None
        if version in ("standard", "plus", "rand") and attacks:
            raise ValueError("attacks_to_run will be overridden unless you use version='custom'")
        if version == "custom" and not attacks:
            raise ValueError("version='custom' needs attacks_to_run")
        inner = _PyAutoAttack(model, norm=norm, eps=eps, version=version, device=device, seed=seed, attacks=attacks)
        object.__setattr__(self, "_aa", inner)
        object.__setattr__(self, "log_path", log_path)
        object.__setattr__(self, "is_tf_model", False)
        inner.verbose = verbose

    def __getattr__(self, name: str) -> Any:
        return getattr(object.__getattribute__(self, "_aa"), name)

    def __setattr__(self, name: str, value: object) -> None:
        if name in _FORWARDED:
            setattr(self._aa, name, value)
        else:
            object.__setattr__(self, name, value)

    @contextmanager
    def _logging(self) -> Iterator[None]:
        """Send the ``"auto-attack"`` log to ``log_path`` or stdout while running, when verbose."""
        logger = logging.getLogger(_LOGGER)
        if not self._aa.verbose:
            yield
            return
        if self.log_path is not None:
            Path(self.log_path).parent.mkdir(parents=True, exist_ok=True)
            handler: logging.Handler = logging.FileHandler(self.log_path, mode="a")
        else:
            handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("%(message)s"))
        old_level, old_propagate = logger.level, logger.propagate
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
        logger.propagate = False
        try:
            yield
        finally:
            logger.removeHandler(handler)
            handler.close()
            logger.setLevel(old_level)
            logger.propagate = old_propagate

    def get_logits(self, x: torch.Tensor) -> torch.Tensor:
        logits: torch.Tensor = self._aa.get_logits(x)
        return logits

    def get_seed(self) -> int:
        seed: int = self._aa.get_seed()
        return seed

    def run_standard_evaluation(self, x_orig: torch.Tensor, y_orig: torch.Tensor, bs: int = 250,
                                return_labels: bool = False, state_path: str | os.PathLike[str] | None = None,
                                ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        path = Path(state_path) if state_path is not None else None
        with self._logging():
            x_adv, y_adv = self._aa.run_standard_evaluation(x_orig, y_orig, batch_size=bs, state_path=path)
        return (x_adv, y_adv) if return_labels else x_adv

    def run_standard_evaluation_individual(self, x_orig: torch.Tensor, y_orig: torch.Tensor, bs: int = 250,
                                           return_labels: bool = False) -> dict[str, Any]:
        with self._logging():
            adv = self._aa.run_standard_evaluation_individual(x_orig, y_orig, batch_size=bs)
        individual: dict[str, Any] = adv if return_labels else {name: pair[0] for name, pair in adv.items()}
        return individual

    def clean_accuracy(self, x_orig: torch.Tensor, y_orig: torch.Tensor, bs: int = 250) -> float:
        with self._logging():
            accuracy: float = self._aa.clean_accuracy(x_orig, y_orig, bs=bs)
            return accuracy

    def set_version(self, version: str = "standard") -> None:
        self._aa.version = version
        self._aa._set_version(version)
