"""The mechanisms of Sec. 3 of the paper measured on a model: feature norms, angles, weight norms, input gradients.

:func:`he_diagnostics` computes, for clean inputs ``x`` and adversarial ones (given, or crafted with the project's
PGD, :func:`art_he.attacks.pgd`, on the model's margin-free attack loss as in training):

* ``feature_norm_clean`` / ``feature_norm_adv``: ``||z||`` of the features ``z`` entering the final layer (the
  :class:`~art_he.heads.HypersphereHead` or the last ``nn.Linear``, read by a forward hook on that layer);
* ``cos_y_clean`` / ``cos_y_adv``: ``cos(theta_y) = z . W_y / (||z|| ||W_y||)``, the cosine to the true class's
  weight, computed the same way for a plain head (bias left out) and an HE head (where it is the head's output at
  ``y``), so both are comparable;
* ``weight_norm``: ``||W_l||`` of each class ``l`` (L,);
* ``grad_norm_clean`` / ``grad_norm_adv``: the L2 norm of the input gradient of the model's training objective
  (:func:`art_he.heads.objective_of`: CE on the logits for a plain head, ``CE_m`` with scale and margin for HE)
  per input, and ``grad_ratio = grad_norm_adv / grad_norm_clean`` (the paper's Fig. 3; ``inf`` where the clean
  gradient underflows to 0);
* ``correct_clean`` / ``correct_adv`` (bool), ``y``, and ``eps`` (0-d; NaN when ``x_adv`` was given).

:func:`diagnostics_figure` draws one or several models' diagnostics (e.g. PGD-AT against PGD-AT+HE) in a 2x2 grid.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from art_he.defaults import pgd_step
from art_he.errors import UserError
from art_he.plots.figures import _colors, _labels, format_eps, images_note, new_figure, require_matplotlib
from art_he.validation import check_number

KEYS = ("feature_norm_clean", "feature_norm_adv", "cos_y_clean", "cos_y_adv", "weight_norm", "grad_norm_clean",
        "grad_norm_adv", "grad_ratio", "correct_clean", "correct_adv", "y", "eps")


def _module(model):
    from torch import nn

    if isinstance(model, nn.Module):
        return model
    inner = getattr(model, "model", None)  # an ART classifier
    if isinstance(inner, nn.Module):
        return inner
    raise UserError(f"he_diagnostics needs a torch.nn.Module or an ART PyTorch classifier, got {type(model).__name__}")


def he_diagnostics(model, x, y, x_adv=None, *, eps: float | None = None, eps_step: float | None = None,
                   steps: int = 10, batch_size: int = 256, seed: int = 0) -> dict[str, np.ndarray]:
    """The HE diagnostics of ``model`` on ``(x, y)`` (see the module docstring for the keys).

    ``x``: images (N, C, H, W) in [0, 1] (numpy or torch), ``y``: class indices (N,). ``x_adv``: adversarial
    versions of ``x``; without it, Linf PGD with ``eps`` (required then), ``eps_step`` (default ``eps / 4``, the
    training attack's), ``steps`` iterations and a uniform random start seeded by ``seed``. ``model``: a
    ``torch.nn.Module`` (or an ART classifier, whose ``.model`` is used) returning logits or HE cosines; it is
    evaluated in eval mode and left in the mode it was in.
    """
    import torch

    from art_he.attacks import pgd
    from art_he.evaluation.views import penultimate_layer
    from art_he.heads import normalize_rows, objective_of

    module = _module(model)
    layer = penultimate_layer(module)
    objective = objective_of(module)
    try:
        param = next(module.parameters())
        device = param.device
    except StopIteration:
        device = torch.device("cpu")
    x_t = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x).float()
    y_t = torch.as_tensor(np.asarray(y) if not isinstance(y, torch.Tensor) else y).long().reshape(-1)
    if len(x_t) != len(y_t) or len(x_t) == 0:
        raise UserError(f"he_diagnostics needs as many labels as images (at least one), got {len(x_t)} images and "
                        f"{len(y_t)} labels")
    if x_adv is not None:
        xa_t = torch.as_tensor(np.asarray(x_adv) if not isinstance(x_adv, torch.Tensor) else x_adv).float()
        if xa_t.shape != x_t.shape:
            raise UserError(f"x_adv has shape {tuple(xa_t.shape)}, x has {tuple(x_t.shape)}")
    elif eps is None:
        raise UserError("he_diagnostics needs x_adv or eps (the Linf radius of the PGD that crafts them)")
    else:
        check_number("eps", eps, low=0.0, strict=True)
    check_number("steps", steps, low=1, integer=True)

    captured: list = []
    handle = layer.register_forward_hook(lambda _m, args, _out: captured.append(args[0].detach()))
    was_training = module.training
    module.eval()
    generator = torch.Generator(device=device).manual_seed(seed)
    weight = layer.weight.detach().float()

    def features(xb):
        captured.clear()
        with torch.no_grad():
            out = module(xb)
        return captured[-1].float(), out

    def grad_norms(xb, yb):
        xb = xb.detach().requires_grad_(True)
        loss = objective.train_loss(module(xb), yb, reduction="sum")  # per-sample gradients: the rows are independent
        (grad,) = torch.autograd.grad(loss, xb)
        return grad.flatten(1).norm(dim=1)

    parts: dict[str, list] = {f"{key}_{tag}": [] for key in ("feature_norm", "cos_y", "correct", "grad_norm")
                              for tag in ("clean", "adv")}
    try:
        for start in range(0, len(x_t), batch_size):
            xb = x_t[start : start + batch_size].to(device)
            yb = y_t[start : start + batch_size].to(device)
            if x_adv is None:
                xab = pgd(module, xb, yb, objective.attack_loss, eps=float(eps),
                          eps_step=float(eps_step if eps_step is not None else pgd_step(eps)), max_iter=steps,
                          generator=generator)
            else:
                xab = xa_t[start : start + batch_size].to(device)
            for tag, inputs in (("clean", xb), ("adv", xab)):
                z, out = features(inputs)
                cos = (normalize_rows(z) * normalize_rows(weight)[yb]).sum(dim=1)
                parts[f"feature_norm_{tag}"].append(z.norm(dim=1))
                parts[f"cos_y_{tag}"].append(cos)
                parts[f"correct_{tag}"].append(out.argmax(dim=1) == yb)
                parts[f"grad_norm_{tag}"].append(grad_norms(inputs, yb))
    finally:
        handle.remove()
        module.train(was_training)
    result = {k: torch.cat(v).cpu().numpy() for k, v in parts.items()}
    with np.errstate(divide="ignore", invalid="ignore"):
        result["grad_ratio"] = result["grad_norm_adv"].astype(np.float64) / result["grad_norm_clean"]
    result["weight_norm"] = weight.norm(dim=1).cpu().numpy()
    result["y"] = y_t.numpy()
    result["eps"] = np.array(float(eps) if x_adv is None else np.nan)
    return {k: result[k] for k in KEYS}


# -- figure ----------------------------------------------------------------------------------------------------


def _edges(values: np.ndarray, bins: int, log: bool) -> np.ndarray:
    low, high = float(values.min()), float(values.max())
    if log:
        low, high = math.log10(low), math.log10(high)
    if high - low < 1e-9:
        low, high = low - 0.5 * max(abs(low), 1e-3), high + 0.5 * max(abs(high), 1e-3)
    edges = np.linspace(low, high, bins + 1)
    return 10**edges if log else edges


def _spread(arrays) -> float:
    values = np.concatenate([a for a in arrays if a.size])
    return float(values.max() / values.min()) if values.size and values.min() > 0 else 1.0


def _log_axis(ax) -> None:
    """A log x axis with plain numbers (0.5, 1, 10) instead of powers of ten."""
    from matplotlib.ticker import FormatStrFormatter, LogLocator, NullFormatter

    ax.set_xscale("log")
    ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(FormatStrFormatter("%g"))
    ax.xaxis.set_minor_formatter(NullFormatter())


def _stairs(ax, values: np.ndarray, edges: np.ndarray, **kwargs):
    counts, _ = np.histogram(values, edges)
    return ax.stairs(counts, edges, **kwargs)


def diagnostics_figure(diagnostics, labels: Sequence[str] | None = None, *, bins: int = 30,
                       title: str | None = None):
    """The 2x2 grid of :func:`he_diagnostics` results (one dict, or several overlaid, e.g. plain and HE).

    (a) histograms of ``||z||`` on clean (solid) and adversarial (dashed) inputs (log scale when the values span
    more than 10x); (b) histograms of ``cos(theta_y)``; (c) ``||W_l||`` per class (bars); (d) histograms of the
    per-input ratio of input-gradient norms, adversarial over clean (log scale, a dotted line at 1; non-finite
    ratios left out). Each model has one colour; the legend gives the median ratio.
    """
    require_matplotlib()
    from matplotlib.lines import Line2D

    if isinstance(diagnostics, Mapping):
        diagnostics = [diagnostics]
    diagnostics = list(diagnostics)
    if not diagnostics:
        raise UserError("no diagnostics given")
    for d in diagnostics:
        missing = [k for k in KEYS if k not in d]
        if missing:
            raise UserError(f"not a he_diagnostics result: no {', '.join(missing)}")
    names = _labels(labels, [f"model {i + 1}" for i in range(len(diagnostics))])
    colors = _colors(len(diagnostics))
    fig = new_figure(figsize=(11, 8.2))
    (ax_norm, ax_cos), (ax_w, ax_ratio) = fig.subplots(2, 2)

    # (a) feature norms, (b) cos(theta_y): clean solid, adversarial dashed, the same bins for both of a model
    log_norm = _spread([np.asarray(d[k]) for d in diagnostics for k in ("feature_norm_clean", "feature_norm_adv")]) > 10
    cos_all = np.concatenate([np.asarray(d[k], float) for d in diagnostics for k in ("cos_y_clean", "cos_y_adv")])
    cos_edges = _edges(cos_all, bins, False)
    for d, name, color in zip(diagnostics, names, colors):
        norms = [np.asarray(d["feature_norm_clean"], float), np.asarray(d["feature_norm_adv"], float)]
        edges = _edges(np.concatenate(norms), bins, log_norm)
        for values, style, tag in zip(norms, ("-", "--"), ("clean", "adversarial")):
            _stairs(ax_norm, values, edges, color=color, ls=style, lw=1.6, label=f"{name}, {tag}")
        for key, style, tag in (("cos_y_clean", "-", "clean"), ("cos_y_adv", "--", "adversarial")):
            _stairs(ax_cos, np.asarray(d[key], float), cos_edges, color=color, ls=style, lw=1.6,
                    label=f"{name}, {tag}")
    if log_norm:
        _log_axis(ax_norm)
    ax_norm.set_title("(a) feature norm (input of the final layer)")
    ax_norm.set_xlabel(r"$\|z\|$")
    ax_cos.set_title("(b) cosine to the true class's weight")
    ax_cos.set_xlabel(r"$\cos\theta_y = z^\top W_y \,/\, (\|z\|\,\|W_y\|)$")
    for ax in (ax_norm, ax_cos):
        ax.set_ylabel("number of inputs")

    # (c) weight norms per class
    classes = max(len(d["weight_norm"]) for d in diagnostics)
    n = len(diagnostics)
    for i, (d, name, color) in enumerate(zip(diagnostics, names, colors)):
        w = np.asarray(d["weight_norm"], float)
        if classes <= 20:
            ax_w.bar(np.arange(len(w)) + (i - (n - 1) / 2) * 0.8 / n, w, 0.8 / n, color=color, label=name)
        else:
            ax_w.plot(np.arange(len(w)), w, ".", color=color, label=name)
    if classes <= 20:
        ax_w.set_xticks(range(classes))
    ax_w.set_title("(c) weight norm of each class")
    ax_w.set_xlabel("class $l$")
    ax_w.set_ylabel(r"$\|W_l\|$")
    ax_w.set_axisbelow(True)

    # (d) ratio of input-gradient norms, adversarial over clean
    ratios = [np.asarray(d["grad_ratio"], float) for d in diagnostics]
    ratios = [r[np.isfinite(r) & (r > 0)] for r in ratios]
    dropped = sum(len(d["grad_ratio"]) for d in diagnostics) - sum(len(r) for r in ratios)
    if any(r.size for r in ratios):
        edges = _edges(np.concatenate(ratios), bins, True)
        for r, name, color in zip(ratios, names, colors):
            if r.size:
                _stairs(ax_ratio, r, edges, color=color, lw=1.6, fill=True, alpha=0.25, label="_fill")
                _stairs(ax_ratio, r, edges, color=color, lw=1.6, label=f"{name} (median {np.median(r):.3g})")
        _log_axis(ax_ratio)
        ax_ratio.axvline(1.0, color="0.4", ls=":", lw=1)
        ax_ratio.legend(fontsize=8)
    ax_ratio.set_title("(d) input-gradient norm, adversarial / clean")
    ax_ratio.set_xlabel(r"$\|\nabla_x L(x_\mathrm{adv})\| \,/\, \|\nabla_x L(x)\|$,  $L$: training loss"
                        + (f"  ({dropped} non-finite left out)" if dropped else ""))
    ax_ratio.set_ylabel("number of inputs")
    for ax in (ax_norm, ax_cos, ax_w, ax_ratio):
        ax.grid(alpha=0.3)

    handles = [Line2D([], [], color=c, lw=3, label=nm) for nm, c in zip(names, colors)]
    handles += [Line2D([], [], color="0.3", ls="-", label="clean inputs"),
                Line2D([], [], color="0.3", ls="--", label="adversarial inputs")]
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), frameon=False)
    eps = {float(d["eps"]) for d in diagnostics}
    note = images_note(len(d["feature_norm_clean"]) for d in diagnostics)
    if len(eps) == 1 and not math.isnan(next(iter(eps))):
        note += f"; adversarial: PGD, $\\epsilon$ = {format_eps(next(iter(eps)))}"
    fig.suptitle(title or f"Hypersphere-embedding diagnostics on {note}")
    return fig
