"""Named presets of :class:`~art_he.config.TrainConfig` for the training rows of the paper.

Every value names its source: the paper's section or table, or, where the paper is silent, the authors' README
or the public code the authors say they build on (App. C.1: TRADES for PGD-AT/ALP/TRADES, Wong et al.'s
fast_adversarial for FastAT, Shafahi et al.'s FreeAT). ``art-he recipes`` lists them; ``art-he train --recipe
NAME [flags]`` trains one, any flag overriding the recipe's value::

    from art_he.recipes import RECIPES
    cfg = RECIPES["table2-trades-he"].config(data_dir="data")
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from art_he.config import TrainConfig
from art_he.defaults import MARGINS, SCALE
from art_he.errors import UserError

SEC4 = "paper Sec. 4, CIFAR-10 setup"
TRADES_CODE = "TRADES code default (App. C.1: the authors' CIFAR-10 code builds on it); the paper is silent"
WONG = "Wong et al.'s fast_adversarial code (App. C.1, the authors' FastAT base)"

#: the CIFAR-10 setting every PGD-AT, ALP and TRADES row shares
CIFAR10: dict[str, tuple[Any, str]] = {
    "dataset": ("cifar10", SEC4),
    "model": ("wrn-34-10", SEC4),
    "epochs": (100, SEC4),
    "lr": (0.1, SEC4),
    "momentum": (0.9, SEC4 + " (momentum SGD; 0.9 in the TRADES code)"),
    "schedule": ("multistep", SEC4 + ": x0.1 at epochs 75 and 90"),
    "batch_size": (128, SEC4),
    "weight_decay": (2e-4, TRADES_CODE + "; Table 6 names 5e-4 as its difference"),
    "eps": (8 / 255, SEC4),
    "eps_step": (2 / 255, SEC4),
    "max_iter": (10, SEC4),
}
HE = {"scale": (SCALE, SEC4), "margin": (MARGINS["he"], SEC4)}
MHE = {"scale": (SCALE, "paper App. C.5 (Table 10)"), "margin": (MARGINS["mhe"], "paper App. C.5 (Table 10)")}
ALP = {"pairing_weight": (0.5, SEC4), "alpha": (0.5, "ALP (Kannan et al.): clean and adversarial CE weighted "
                                                      "equally; the paper is silent"),
       "pairing": ("mse", "the authors' code (MSE between clean and adversarial outputs)")}
ALP_HE = {"scale": (20.0, "the authors' README for ALP+HE (s=20)"),
          "margin": (0.3, "the authors' README for ALP+HE (m=0.3)")}
TRADES = {"beta": (6.0, SEC4 + " (1/lambda = 6)")}
FAST = {
    "dataset": ("cifar10", "paper Table 3"),
    "model": ("preact-resnet18", WONG + "'s architecture; Table 3's 11.4 min for 30 epochs fits it, not WRN-34-10"),
    "epochs": (30, "paper Table 3"), "eps": (8 / 255, SEC4), "eps_step": (10 / 255, WONG + ": 1.25 * eps"),
    "lr": (0.2, WONG + ": cyclic LR peaking at 0.2"), "schedule": ("cyclic", WONG), "momentum": (0.9, WONG),
    "weight_decay": (5e-4, WONG), "batch_size": (128, WONG), "fgsm_mode": ("train", WONG + ": FGSM in train mode"),
}
IMAGENET_SETUP = "paper Sec. 4, ImageNet setup"
FREE_CODE = "Shafahi et al.'s FreeAT ImageNet code (App. C.1, the authors' base); the paper is silent"
IMAGENET = {
    "dataset": ("imagenet", IMAGENET_SETUP), "model": ("resnet50", "paper Table 4"),
    "framework": ("free", IMAGENET_SETUP), "replays": (4, IMAGENET_SETUP), "eps": (4 / 255, IMAGENET_SETUP),
    "eps_step": (1 / 255, IMAGENET_SETUP), "epochs": (90, IMAGENET_SETUP + " (the epoch budget)"),
    "lr": (0.1, IMAGENET_SETUP), "batch_size": (256, IMAGENET_SETUP), "momentum": (0.9, FREE_CODE),
    "weight_decay": (1e-4, FREE_CODE), "schedule": ("multistep", "the paper gives the initial LR only; step decay "
                                                                  "as in " + FREE_CODE),
    "image_size": (224, "paper App. C.2: crop 224 of 256"), "augment": (True, "paper App. C.2"),
}
FREE = {
    "dataset": ("cifar10", "paper Table 3"), "model": ("wrn-34-10", SEC4 + " (the one CIFAR-10 architecture named)"),
    "epochs": (10, "paper Table 3 (the epoch budget: ceil(10 / m) passes)"), "eps": (8 / 255, SEC4),
    "eps_step": (8 / 255, "Shafahi et al.: the FGSM step is eps"),
    "replays": (4, "paper Sec. 4 (m=4 for FreeAT on ImageNet; the paper gives no other m)"),
    "lr": (0.1, SEC4), "momentum": (0.9, SEC4), "schedule": ("multistep", SEC4), "batch_size": (128, SEC4),
    "weight_decay": (2e-4, TRADES_CODE),
}


@dataclass(frozen=True)
class Recipe:
    """A named configuration; ``values`` maps each option to ``(value, source)``."""

    name: str
    summary: str
    values: Mapping[str, tuple[Any, str]] = field(default_factory=dict)

    def config(self, **overrides) -> TrainConfig:
        """The recipe as a :class:`TrainConfig`, with ``overrides`` on top."""
        return TrainConfig(**{**{k: v for k, (v, _) in self.values.items()}, "recipe": self.name, **overrides})

    def sources(self) -> dict[str, str]:
        return {k: source for k, (_, source) in self.values.items()}


def _recipe(name: str, summary: str, *parts: Mapping[str, tuple[Any, str]], **values: tuple[Any, str]) -> Recipe:
    merged: dict[str, tuple[Any, str]] = {}
    for part in (*parts, values):
        merged.update(part)
    return Recipe(name, summary, merged)


def _build() -> dict[str, Recipe]:
    recipes = []
    for framework, label, parts, he, he_note in (("pgd", "PGD-AT", (), HE, ""),
                                                  ("alp", "ALP", (ALP,), ALP_HE, " (s=20, m=0.3)"),
                                                  ("trades", "TRADES", (TRADES,), HE, "")):
        heads = (("plain", {}, 2, ""), ("he", he, 2, "+HE" + he_note), ("mhe", MHE, 10, "+m-HE"))
        for head, extra, table, suffix in heads:
            source = f"paper Table {table}"
            recipes.append(_recipe(f"table{table}-{framework}-{head}", f"{label}{suffix}, WRN-34-10, CIFAR-10", CIFAR10,
                                   *parts, extra, framework=(framework, source), head=(head, source)))
    for framework, base, label in (("fast", FAST, "FastAT"), ("free", FREE, "FreeAT")):
        epochs, model = base["epochs"][0], base["model"][0]
        for head, extra, suffix in (("plain", {}, ""), ("he", HE, "+HE"), ("mhe", MHE, "+m-HE")):
            recipes.append(_recipe(f"table3-{framework}-{head}", f"{label}{suffix}, {epochs} epochs, {model}, "
                                   "CIFAR-10", base, extra, framework=(framework, "paper Table 3"),
                                   head=(head, "paper Table 3")))
    recipes.append(_recipe("table4-free-plain", "FreeAT (m=4), ResNet-50, ImageNet", IMAGENET,
                           head=("plain", "paper Table 4")))
    recipes.append(_recipe("table4-free-he", "FreeAT+HE (s=10, m=0.2), ResNet-50, ImageNet", IMAGENET,
                           head=("he", "paper Table 4"), scale=(10.0, IMAGENET_SETUP),
                           margin=(0.2, IMAGENET_SETUP)))
    recipes.append(_recipe(
        "table6-pgd-he-wrn34-20", "PGD-AT+HE, WRN-34-20, weight decay 5e-4 (the RobustBench entry)", CIFAR10, HE,
        framework=("pgd", "paper Table 6"), head=("he", "paper Table 6"), model=("wrn-34-20", "paper Table 6"),
        weight_decay=(5e-4, "paper Sec. 4, Benchmark attacks (Table 6)")))
    return {r.name: r for r in recipes}


RECIPES: dict[str, Recipe] = _build()


def get_recipe(name: str) -> Recipe:
    if name not in RECIPES:
        raise UserError(f"unknown recipe {name!r}; `art-he recipes` lists them: {', '.join(RECIPES)}")
    return RECIPES[name]
