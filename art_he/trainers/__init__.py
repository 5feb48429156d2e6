"""HE-aware adversarial trainers, all ``art.defences.trainer.Trainer`` subclasses over one epoch loop."""

from art_he.trainers.base import ATTrainer
from art_he.trainers.pgd import PGDATTrainer

__all__ = ["ATTrainer", "PGDATTrainer"]
