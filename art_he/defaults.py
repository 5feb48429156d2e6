"""The heads and the paper's HE hyper-parameters, in one place (no torch, so ``art-he --help`` can read them).

* scale ``s = 15`` for HE and m-HE (Sec. 4; App. C.5)
* margin ``m = 0.2`` for HE (Sec. 4) and ``m = 0.1`` for m-HE (App. C.5, Table 10)
* PGD step ``eps / 4`` (:func:`pgd_step`)
* weight normalisation: ``"project"``, the authors' (their ``forward`` overwrites ``fc.weight.data`` with its
  row-normalised copy); ``"differentiable"`` normalises inside the graph, ``"none"`` is the ablation
"""

from __future__ import annotations

VARIANTS = ("he", "mhe")
HEADS = ("plain", *VARIANTS)
SCALE = 15.0
MARGINS = {"he": 0.2, "mhe": 0.1}
WEIGHT_NORMS = ("project", "differentiable", "none")
WEIGHT_NORM = "project"


def head_defaults(variant: str) -> dict[str, float]:
    """``{"scale": s, "margin": m}``, the paper's values for ``variant`` (``"he"`` or ``"mhe"``)."""
    return {"scale": SCALE, "margin": MARGINS[variant]}


def pgd_step(eps: float) -> float:
    """``eps / 4``: the PGD step of training (2/255 at 8/255 on CIFAR-10, Sec. 4; 1/255 at 4/255 on ImageNet), of
    per-epoch validation, FastAT's overfitting guard and the HE diagnostics."""
    return eps / 4
