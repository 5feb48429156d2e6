"""HE-aware adversarial trainers, all ``art.defences.trainer.Trainer`` subclasses over one epoch loop.

Each trains the baseline framework on a model with an ordinary last layer and its HE / m-HE version on a
model with a :class:`~art_he.heads.HypersphereHead`. ``FRAMEWORKS`` maps the CLI's ``--framework`` names to them.
"""

from art_he.trainers.alp import ALPTrainer
from art_he.trainers.base import ATTrainer
from art_he.trainers.distributed import DistContext, DistributedError, cleanup, init_distributed
from art_he.trainers.fast import FastATTrainer
from art_he.trainers.free import FreeATTrainer
from art_he.trainers.pgd import PGDATTrainer
from art_he.trainers.trades import TRADESTrainer

FRAMEWORKS: dict[str, type[ATTrainer]] = {
    "pgd": PGDATTrainer,
    "alp": ALPTrainer,
    "trades": TRADESTrainer,
    "free": FreeATTrainer,
    "fast": FastATTrainer,
}

__all__ = ["ALPTrainer", "ATTrainer", "DistContext", "DistributedError", "FRAMEWORKS", "FastATTrainer",
           "FreeATTrainer", "PGDATTrainer", "TRADESTrainer", "cleanup", "init_distributed"]
