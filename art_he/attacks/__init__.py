"""Attacks: train-time torch PGD and the Linf projection, and score-based black-box attacks for ART."""

from art_he.attacks.nes import NES
from art_he.attacks.score_based import ScoreBasedAttack
from art_he.attacks.spsa import SPSA
from art_he.attacks.train_time import pgd, project

__all__ = ["NES", "SPSA", "ScoreBasedAttack", "pgd", "project"]
