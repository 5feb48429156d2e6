"""HE-aware adversarial trainers, all ``art.defences.trainer.Trainer`` subclasses over one epoch loop.

Each trains the baseline framework on a model with an ordinary last layer and its HE / m-HE version on a
model with a :class:`~art_he.heads.HypersphereHead`. ``FRAMEWORKS`` maps the CLI's ``--framework`` names to them;
:func:`register_framework` adds one (see docs/extending.md).
"""

from art_he.trainers.alp import ALPTrainer
from art_he.trainers.base import ATTrainer
from art_he.trainers.distributed import DistContext, DistributedError, cleanup, init_distributed
from art_he.trainers.fast import FastATTrainer
from art_he.trainers.free import FreeATTrainer
from art_he.trainers.pgd import PGDATTrainer
from art_he.trainers.trades import TRADESTrainer

FRAMEWORKS: dict[str, type[ATTrainer]] = {}


def register_framework(cls: type[ATTrainer]) -> type[ATTrainer]:
    """Make ``cls`` the framework ``cls.name`` of ``art-he train``, ``recipes`` and ``reproduce``; returns ``cls``
    (a class decorator). Its ``options`` must be keywords its constructor takes."""
    if not (isinstance(cls, type) and issubclass(cls, ATTrainer)) or not cls.name:
        raise TypeError(f"a framework is an ATTrainer subclass with a name, got {cls!r}")
    if FRAMEWORKS.get(cls.name, cls) is not cls:
        raise ValueError(f"framework {cls.name!r} is registered already ({FRAMEWORKS[cls.name].__name__})")
    unknown = sorted(set(cls.options) - set(cls.option_defaults()))
    if unknown:
        raise TypeError(f"{cls.__name__}.options names {unknown}, which its constructor does not take")
    FRAMEWORKS[cls.name] = cls
    return cls


for _framework in (PGDATTrainer, ALPTrainer, TRADESTrainer, FreeATTrainer, FastATTrainer):
    register_framework(_framework)

__all__ = ["ALPTrainer", "ATTrainer", "DistContext", "DistributedError", "FRAMEWORKS", "FastATTrainer",
           "FreeATTrainer", "PGDATTrainer", "TRADESTrainer", "cleanup", "init_distributed", "register_framework"]
