"""Named presets of :class:`~art_he.config.TrainConfig` for the training rows of the paper.

Every value names its source: the paper's section or table, or, where the paper is silent, the authors' README and
code or the public code the paper names (App. C.1: TRADES for PGD-AT/ALP/TRADES, Wong et al.'s fast_adversarial for
FastAT and CIFAR-10 FreeAT, Shafahi et al.'s FreeAT for ImageNet). Where the paper and the authors' README disagree,
the recipe follows the paper and the README's values are a named variant (``table2-alp-he-readme``).
``art-he recipes`` lists them; ``art-he train --recipe
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
AUTHORS_README = "the authors' README (AT_HE/CIFAR-10)"
WONG = "Wong et al.'s fast_adversarial code (App. C.1, footnote 7: the paper's FastAT and CIFAR-10 FreeAT base)"
WONG_FGSM, WONG_FREE = WONG + ", train_fgsm.py", WONG + ", train_free.py"
WONG_CYCLE = ("a CyclicLR from 0 up to the peak at half of the updates, back to 0 at the end; momentum 0.9 -> 0.8 "
              "-> 0.9 (torch's defaults)")

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
#: the authors' weight normalisation, whatever the package's default: what produced the paper's numbers
AUTHORS_WN = {"weight_norm": ("project", "the authors' code: CIFAR-10/models/wideresnet.py and ImageNet/models/"
                                         "resnet.py overwrite fc.weight.data with its row-normalised copy before "
                                         "every forward")}
HE = {"scale": (SCALE, SEC4 + " (s = 15 for each framework)"), "margin": (MARGINS["he"], SEC4 + " (m = 0.2)"),
      **AUTHORS_WN}
MHE = {"scale": (SCALE, "paper App. C.5 (Table 10)"), "margin": (MARGINS["mhe"], "paper App. C.5 (Table 10)"),
       **AUTHORS_WN}
ALP = {"pairing_weight": (0.5, SEC4), "alpha": (0.5, "ALP (Kannan et al.): clean and adversarial CE weighted "
                                                      "equally; the paper is silent"),
       "pairing": ("mse", "the authors' code (MSE between clean and adversarial outputs)")}
#: the authors' README trains ALP+HE with ``--s=20.0 --m=0.3``; the paper gives s = 15, m = 0.2 for every framework
ALP_HE_README = {"scale": (20.0, AUTHORS_README + ": ALP+HE with --s=20.0 (the paper: 15)"),
                 "margin": (0.3, AUTHORS_README + ": ALP+HE with --m=0.3 (the paper: 0.2)"), **AUTHORS_WN}
TRADES = {"beta": (6.0, SEC4 + " (1/lambda = 6)")}
#: Table 3 on CIFAR-10: what Wong et al.'s scripts do by default (the paper gives only the epochs and the times)
WONG_COMMON = {
    "dataset": ("cifar10", "paper Table 3"),
    "model": ("preact-resnet18", WONG + ": PreActResNet18 in both scripts; Table 3's minutes fit it, not WRN-34-10"),
    "eps": (8 / 255, WONG + ": --epsilon 8 (and " + SEC4 + ")"), "schedule": ("cyclic", WONG + ": " + WONG_CYCLE),
    "momentum": (0.9, WONG + ": --momentum 0.9"), "weight_decay": (5e-4, WONG + ": --weight-decay 5e-4"),
    "batch_size": (128, WONG + ": --batch-size 128"),
}
FAST: dict[str, tuple[Any, str]] = {
    **WONG_COMMON,
    "epochs": (30, "paper Table 3 (train_fgsm.py's default is 15)"),
    "eps_step": (10 / 255, WONG_FGSM + ": --alpha 10, 1.25 eps, from a uniform random start (--delta-init random)"),
    "lr": (0.2, WONG_FGSM + ": --lr-max 0.2 (--lr-min 0)"),
    "fgsm_mode": ("train", WONG_FGSM + ": the model stays in train mode while crafting the FGSM step"),
    "early_stop": (False, WONG_FGSM + ": --early-stop is off unless given"),
}
FREE: dict[str, tuple[Any, str]] = {
    **WONG_COMMON,
    "replays": (8, WONG_FREE + ": --minibatch-replays 8"),
    "epochs": (80, WONG_FREE + ": --epochs 10 passes of 8 replays, 'total number of epochs ... this argument * "
                   "number of minibatch replays', so 80 epochs of budget = 10 passes. Table 3's '10' counts "
                   "passes: its 15.8 min for 10 x 8 replays against FastAT's 11.4 min for 30 x 2 fits, 2 passes "
                   "would take about 3 min"),
    "eps_step": (8 / 255, WONG_FREE + ": the perturbation step is epsilon"),
    "lr": (0.04, WONG_FREE + ": --lr-max 0.04 (--lr-min 0)"),
}
IMAGENET_SETUP = "paper Sec. 4, ImageNet setup"
AUTHORS_IMAGENET = "the authors' ImageNet/configs.yml (AT_HE)"
FREE_CODE = ("Shafahi et al.'s FreeAT ImageNet code, kept in the authors' ImageNet/lib/utils.py (App. C.1); the "
             "paper is silent")
IMAGENET = {
    "dataset": ("imagenet", IMAGENET_SETUP), "framework": ("free", IMAGENET_SETUP),
    "replays": (4, IMAGENET_SETUP), "eps": (4 / 255, IMAGENET_SETUP),
    "eps_step": (4 / 255, AUTHORS_IMAGENET + ": fgsm_step 4.0 (/255), the training step; the paper's 1/255 is "
                          "the step of its evaluation PGD (configs.yml: pgd_attack 1/255)"),
    "epochs": (90, IMAGENET_SETUP + " (the epoch budget: ceil(90 / 4) = 23 passes, as the authors' code divides)"),
    "lr": (0.1, IMAGENET_SETUP), "batch_size": (256, IMAGENET_SETUP),
    "momentum": (0.9, AUTHORS_IMAGENET + ": momentum 0.9"),
    "weight_decay": (1e-4, AUTHORS_IMAGENET + ": weight_decay 0.0001"),
    "schedule": ("step", FREE_CODE + ": x0.1 every ceil(30 / m) passes (every 30 epochs of the budget)"),
    "image_size": (224, "paper App. C.2: crop 224 of 256"), "augment": (True, "paper App. C.2"),
}
#: Table 4's networks: (recipe stem, our model name, the paper's label); torchvision builds all four
TABLE4_MODELS = (("resnet50", "resnet50", "ResNet-50"), ("resnet152", "resnet152", "ResNet-152"),
                 ("wrn50-2", "wide_resnet50_2", "WRN-50-2"), ("wrn101-2", "wide_resnet101_2", "WRN-101-2"))
IMAGENET_HE = {"scale": (10.0, IMAGENET_SETUP + " (s = 10)"), "margin": (0.2, IMAGENET_SETUP + " (m = 0.2)"),
               **AUTHORS_WN}


@dataclass(frozen=True)
class Recipe:
    """A named configuration; ``values`` maps each option to ``(value, source)``."""

    name: str
    summary: str
    values: Mapping[str, tuple[Any, str]] = field(default_factory=dict)

    def config(self, **overrides: Any) -> TrainConfig:
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
    for framework, label, parts in (("pgd", "PGD-AT", ()), ("alp", "ALP", (ALP,)), ("trades", "TRADES", (TRADES,))):
        heads: tuple[tuple[str, Mapping[str, tuple[Any, str]], int, str], ...] = (
            ("plain", {}, 2, ""), ("he", HE, 2, "+HE"), ("mhe", MHE, 10, "+m-HE"))
        for head, extra, table, suffix in heads:
            source = f"paper Table {table}"
            recipes.append(_recipe(f"table{table}-{framework}-{head}", f"{label}{suffix}, WRN-34-10, CIFAR-10", CIFAR10,
                                   *parts, extra, framework=(framework, source), head=(head, source)))
    recipes.append(_recipe("table2-alp-he-readme", "ALP+HE as the authors' README trains it (s=20, m=0.3), "
                           "WRN-34-10, CIFAR-10", CIFAR10, ALP, ALP_HE_README, framework=("alp", "paper Table 2"),
                           head=("he", "paper Table 2")))
    for framework, base, label in (("fast", FAST, "FastAT"), ("free", FREE, "FreeAT")):
        length = (f"{base['replays'][0]} replays, {base['epochs'][0] // base['replays'][0]} passes"
                  if "replays" in base else f"{base['epochs'][0]} epochs")
        for head, extra, suffix in (("plain", {}, ""), ("he", HE, "+HE"), ("mhe", MHE, "+m-HE")):
            recipes.append(_recipe(f"table3-{framework}-{head}", f"{label}{suffix}, {length}, PreAct ResNet-18, "
                                   "CIFAR-10", base, extra, framework=(framework, "paper Table 3"),
                                   head=(head, "paper Table 3")))
    for stem, model, label in TABLE4_MODELS:
        for head, extra, suffix in (("plain", {}, ""), ("he", IMAGENET_HE, "+HE (s=10, m=0.2)")):
            recipes.append(_recipe(f"table4-free-{head}" if stem == "resnet50" else f"table4-{stem}-free-{head}",
                                   f"FreeAT{suffix}, 4 replays, {label}, ImageNet", IMAGENET, extra,
                                   model=(model, "paper Table 4"), head=(head, "paper Table 4")))
    recipes.append(_recipe(
        "table6-pgd-he-wrn34-20", "PGD-AT+HE, WRN-34-20, weight decay 5e-4, s=10 (the RobustBench entry)", CIFAR10, HE,
        framework=("pgd", "paper Table 6"), head=("he", "paper Table 6"), model=("wrn-34-20", "paper Table 6"),
        weight_decay=(5e-4, "paper Sec. 4, Benchmark attacks (Table 6)"),
        scale=(10.0, AUTHORS_README + ": PGD-AT+HE with --s=10.0 --m=0.2 --wd 5e-4, the weight decay of Table 6; "
                     "the paper gives no s for it")))
    return {r.name: r for r in recipes}


RECIPES: dict[str, Recipe] = _build()


def get_recipe(name: str) -> Recipe:
    if name not in RECIPES:
        raise UserError(f"unknown recipe {name!r}; `art-he recipes` lists them: {', '.join(RECIPES)}")
    return RECIPES[name]
