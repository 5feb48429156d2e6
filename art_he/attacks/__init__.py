"""Attacks: train-time torch attacks, and score-based black-box attacks for ART."""

from art_he.attacks.train_time import fgsm_rs, pgd, project

__all__ = ["fgsm_rs", "pgd", "project"]
