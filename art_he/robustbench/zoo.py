"""Published checkpoints as ART classifiers: RobustBench's model zoo and the authors' AT_HE releases.

Nothing here downloads: every function reads a file that is already on disk, and reads it with
``torch.load(..., weights_only=True)`` first (a file holding anything but tensors and plain containers is refused,
never unpickled).

:func:`load_robustbench`
    Any RobustBench zoo entry whose checkpoint lies at ``<model_dir>/<dataset>/<threat_model>/<name>.pt``,
    loaded by RobustBench's own ``robustbench.utils.load_model``. A ``BoostingWideResNet`` (``Pang2020Boosting``,
    or any entry registered with that class) becomes our :class:`~art_he.models.wide_resnet.WideResNet` with an HE
    head inside an :class:`~art_he.estimator.HEPyTorchClassifier`, so that art_he's HE attack losses, views and
    evaluation suites apply; any other entry is wrapped as it is in ART's ``PyTorchClassifier`` (cross-entropy).
:func:`load_at_he`
    A checkpoint released with the paper's code (github.com/ShawnXYang/AT_HE, e.g.
    ``model-wideres-pgdHE-wide20.pt``) as an :class:`~art_he.estimator.HEPyTorchClassifier`.
:func:`zoo_classifier_for_eval`
    :func:`load_robustbench` plus a description of the model (dataset, name, ...) for ``art-he eval``.

Usage::

    from art_he.robustbench.zoo import load_at_he, load_robustbench

    clf = load_robustbench("Pang2020Boosting", "models")        # models/cifar10/Linf/Pang2020Boosting.pt
    clf = load_at_he("model-wideres-pgdHE-wide20.pt", scale=10)  # the authors' PGD-AT+HE, trained with s = 10
    logits = clf.predict(x)                                      # x: (N, 3, 32, 32) in [0, 1]; cosines for HE
    module = clf.model                                           # the torch module, in eval mode

The scale ``s`` of an HE head never changes a prediction (the head returns cosines; ``s`` multiplies them only
inside the loss), so it only sets the loss that gradient attacks see; the margin ``m`` only enters training.
"""

from __future__ import annotations

import difflib
import pickle
import re
import zipfile
from collections.abc import Callable
from os import PathLike
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, cast

import torch
from torch import nn

from art_he.defaults import WEIGHT_NORM
from art_he.devices import art_estimator, parse_device
from art_he.errors import MissingFileError, UserError
from art_he.heads import check_weight_norm
from art_he.models.layers import CIFAR10_MEAN, CIFAR10_STD

if TYPE_CHECKING:
    from art.estimators.classification import PyTorchClassifier
    from robustbench.model_zoo.architectures.boosting_wide_resnet import BoostingWideResNet
    from robustbench.model_zoo.enums import BenchmarkDataset, ThreatModel

    from art_he.estimator import HEPyTorchClassifier
    from art_he.heads import HypersphereHead
    from art_he.models.wide_resnet import WideResNet

#: datasets whose RobustBench zoo entries load here: ``name -> (input_shape, nb_classes)``
DATASETS = {"cifar10": ((3, 32, 32), 10), "cifar100": ((3, 32, 32), 100)}
#: the input normalisation the authors' CIFAR-10 WideResNet applies inside ``forward`` (``i_normalize=True``):
#: the CIFAR-10 statistics of our own models
AT_HE_MEAN, AT_HE_STD = CIFAR10_MEAN, CIFAR10_STD
#: what ``torch.load`` raises on a file that is not a (weights-only) PyTorch checkpoint: a problem of the file, which
#: the user can fix; anything else is a bug and keeps its traceback
UNREADABLE = (RuntimeError, pickle.UnpicklingError, EOFError, OSError, ValueError, KeyError)

__all__ = ["AT_HE_MEAN", "AT_HE_STD", "DATASETS", "load_at_he", "load_robustbench", "read_checkpoint",
           "zoo_classifier_for_eval"]


# ---- files ---------------------------------------------------------------------------------------------------
def read_checkpoint(path: str | PathLike[str]) -> object:
    """``torch.load(path, map_location="cpu", weights_only=True)`` with one-line :class:`UserError` s naming the
    file: missing (:class:`MissingFileError`), damaged or truncated, not a PyTorch file, or holding Python objects
    a weights-only load refuses. Zip-format files are memory-mapped (cheap to read just to check them)."""
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"{path} does not exist")
    if zipfile.is_zipfile(path):
        try:
            return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except UNREADABLE:  # read again without mmap below, which names the problem
            pass
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except UNREADABLE as error:
        raise UserError(f"{path} cannot be read as a PyTorch checkpoint: {_load_problem(error)}") from None


def _load_problem(error: Exception) -> str:
    """What went wrong in ``torch.load``, in a few words, without torch's advice to load with weights_only=False."""
    text = str(error)
    refused = re.search(r"Unsupported global: GLOBAL ([\w.]+)", text)
    if refused:
        return (f"it holds a {refused[1]} object, which a weights-only load refuses (art_he never unpickles "
                "arbitrary objects; save the state dict alone)")
    if "Weights only load failed" in text or isinstance(error, (KeyError, ValueError)):
        return "not a file written by torch.save (or damaged)"
    if isinstance(error, EOFError):
        return "the file ends early (empty or truncated)"
    if isinstance(error, PermissionError):
        return "permission denied"
    if "central directory" in text or "zip archive" in text or isinstance(error, OSError):
        return "damaged or truncated (torch's zip reader failed)"
    first = text.strip().splitlines()[0] if text.strip() else type(error).__name__
    return first.split(". ")[0][:160]


def _is_state_dict(obj: object) -> bool:
    return isinstance(obj, dict) and bool(obj) and all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items())


def _trades_to_ours(state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], Callable[[str], str]]:
    """``from_trades_state_dict(state)`` and a function giving the file's name of each of our keys."""
    from art_he.robustbench.architectures import from_trades_state_dict, wrn_key

    ours = from_trades_state_dict(state)
    keys = list(state)
    index = from_trades_state_dict({k: torch.tensor(i) for i, k in enumerate(keys)})
    theirs = {k: keys[int(i)] for k, i in index.items()}
    n = len({k.split(".")[2] for k in state if k.startswith("block1.layer.")})
    return ours, lambda key: theirs.get(key) or wrn_key(key, n)


def _load_strict(model: nn.Module, state: dict[str, torch.Tensor], what: str,
                 name: Callable[[str], str] = str) -> None:
    """``model.load_state_dict(state, strict=True)``, with a one-line error naming ``what`` and the first
    missing, unexpected and mis-shaped keys (as ``name`` gives them: the file's names)."""
    own = model.state_dict()
    problems = []
    for label, keys in (("missing", [name(k) for k in own if k not in state]),
                        ("unexpected", [name(k) for k in state if k not in own]),
                        ("wrong shape", [f"{name(k)} {tuple(state[k].shape)} != {tuple(own[k].shape)}"
                                         for k in own if k in state and state[k].shape != own[k].shape])):
        if keys:
            problems.append(f"{label}: {', '.join(keys[:3])}" + (f" (+{len(keys) - 3} more)" if len(keys) > 3 else ""))
    if problems:
        raise UserError(f"{what} does not fit: {'; '.join(problems)}")
    model.load_state_dict(state, strict=True)


# ---- classifiers ---------------------------------------------------------------------------------------------
def _he_classifier(model: nn.Module, dataset: str, device: torch.device) -> HEPyTorchClassifier:
    from art_he.runs import make_classifier

    model.eval()
    classifier: HEPyTorchClassifier = make_classifier(model, dataset, device=device)
    return classifier


def _head_kwargs(scale: float | None, margin: float | None) -> dict[str, Any]:
    """The head's keyword arguments for :func:`~art_he.models.build_model` (the ones given)."""
    return {k: v for k, v in (("scale", scale), ("margin", margin)) if v is not None}


# ---- the authors' checkpoints --------------------------------------------------------------------------------
def load_at_he(path: str | PathLike[str], *, scale: float | None = None, margin: float | None = None,
               device: str | torch.device | None = None, weight_norm: str = WEIGHT_NORM) -> HEPyTorchClassifier:
    """An :class:`~art_he.estimator.HEPyTorchClassifier` for a checkpoint of the paper's own code (ShawnXYang/AT_HE).

    Accepted files: the released ``{'state_dict': {...}, 'test_acc': ..., 'test_robust_acc': ...}`` with keys
    prefixed ``module.`` (saved from ``nn.DataParallel``), or a bare state dict with or without the prefix (what
    their ``train_adv_cifar10.py`` writes every epoch). The keys are TRADES' WideResNet's (``block1..3.layer.i``,
    ``sub_block1`` built but unused, ``bn1``, ``fc``); depth and width are read from the tensors.

    What their ``CIFAR-10/models/wideresnet.py`` computes (read from the repository): ``forward`` normalises the
    input itself, ``(x - mu) / std`` with ``mu = (0.4914, 0.4822, 0.4465)`` and ``std = (0.2471, 0.2435, 0.2616)``
    (:data:`AT_HE_MEAN`/:data:`AT_HE_STD`; tensors made inside ``forward``, not buffers, so not in the file), then
    conv1, block1..3, ``relu(bn1)``, ``avg_pool2d(8)``; with ``use_FNandWN`` (the HE models) it L2-normalises the
    features and overwrites ``fc.weight`` with its row-normalised copy and applies ``fc`` without bias: the raw
    cosines, no scale; the scale and margin enter only their losses. That is our WideResNet with CIFAR-10
    normalisation and an HE head, which this builds. A file with ``fc.bias`` is one of their baselines trained
    without FN/WN (``--loss pgd``/``trades``/``alp``) and gets a plain head instead (``scale``/``margin`` refused).

    ``scale`` (default :data:`art_he.defaults.SCALE`, 15) and ``margin`` (0.2) set only the loss art_he's attacks
    and training see, never a prediction; so does ``weight_norm`` (``"project"``, their method, or
    ``"differentiable"``: the same forward, another optimiser for further training; ``"none"`` is refused, it would
    compute another function). The released PGD-AT+HE models were trained with ``s = 10, m = 0.2``
    (their README); pass ``scale=10`` to attack them with their own training loss. ``device``: any
    :func:`~art_he.devices.parse_device` string (``None``: the default device). A missing, damaged or
    non-WideResNet file is a one-line :class:`~art_he.errors.UserError` naming it.
    """
    from art_he.models import build_model
    from art_he.robustbench.architectures import wrn_shape_of_state

    place = parse_device(device)
    path = Path(path)
    checkpoint = read_checkpoint(path)
    state = checkpoint.get("state_dict", checkpoint) if isinstance(checkpoint, dict) else checkpoint
    if not _is_state_dict(state):
        raise UserError(f"{path} is not an AT_HE checkpoint: expected a state dict of tensors or "
                        "{'state_dict': ..., 'test_acc': ..., 'test_robust_acc': ...}")
    tensors = cast("dict[str, torch.Tensor]", state)  # checked by _is_state_dict
    state = {k.removeprefix("module."): v for k, v in tensors.items()}
    try:
        depth, widen, classes = wrn_shape_of_state(state)
    except UserError as error:
        raise UserError(f"{path}: {error}") from None
    if classes != 10:
        raise UserError(f"{path} has {classes} classes; AT_HE's WideResNet is a CIFAR-10 model (10 classes)")
    hypersphere = "fc.bias" not in state
    if not hypersphere and (scale is not None or margin is not None):
        raise UserError(f"{path} has fc.bias: a model trained without HE (no FN/WN), so scale/margin do not apply")
    if check_weight_norm(weight_norm) == "none":
        raise UserError("weight_norm='none' would not compute the authors' model, whose forward normalises fc.weight; "
                        "use 'project' (theirs) or 'differentiable'")
    head_kwargs: dict[str, Any] = {**_head_kwargs(scale, margin), "weight_norm": weight_norm} if hypersphere else {}
    model = build_model(f"wrn-{depth}-{widen}", num_classes=10, mean=AT_HE_MEAN, std=AT_HE_STD,
                        head="he" if hypersphere else "plain", **head_kwargs)
    ours, name = _trades_to_ours(state)
    for key, value in model.state_dict().items():  # not in their files: the normalisation (fixed in their forward)
        if key not in ours and (key.startswith("normalize.") or key.endswith("num_batches_tracked")):
            ours[key] = value
    _load_strict(model, ours, f"{path} (read as a WideResNet-{depth}-{widen})", name)
    return _he_classifier(model, "cifar10", place)


# ---- RobustBench's model zoo -------------------------------------------------------------------------------
def _robustbench() -> ModuleType:
    from art_he.robustbench.imports import import_robustbench

    try:
        return import_robustbench()
    except ModuleNotFoundError as error:
        raise UserError(f"loading RobustBench models needs robustbench ({error}); "
                        "install it with: pip install 'art-he[robustbench]'") from None


def _zoo_entry(name: str, dataset: str, threat_model: str) -> tuple[dict[str, Any], BenchmarkDataset, ThreatModel]:
    """``(entry, BenchmarkDataset, ThreatModel)`` of zoo model ``name``, with one-line errors and hints."""
    _robustbench()
    from robustbench.model_zoo import model_dicts
    from robustbench.model_zoo.enums import BenchmarkDataset, ThreatModel

    if dataset not in DATASETS:
        other = " (ImageNet models take 224x224 inputs; not supported here)" if dataset == "imagenet" else ""
        raise UserError(f"unsupported dataset {dataset!r} for RobustBench models; choose from {sorted(DATASETS)}"
                        + other)
    try:
        # RobustBench keeps 3D-corruption models under "corruptions"
        tm = ThreatModel(ThreatModel(threat_model).value.replace("_3d", ""))
    except ValueError:
        raise UserError(f"unknown threat model {threat_model!r}; choose from "
                        f"{[t.value for t in ThreatModel]}") from None
    ds = BenchmarkDataset(dataset)
    models = model_dicts.get(ds, {}).get(tm, {})
    if name not in models:
        hints = difflib.get_close_matches(name, list(models), n=3, cutoff=0.6)
        elsewhere = [f"{d.value}/{t.value}" for d, by_tm in model_dicts.items() for t, m in by_tm.items()
                     if name in m]
        hint = (f"; it is listed under {', '.join(elsewhere)} (pass dataset=/threat_model=)" if elsewhere
                else f"; did you mean {', '.join(hints)}?" if hints
                else "; robustbench.utils.list_available_models() lists the names")
        raise UserError(f"unknown RobustBench model {name!r} for {ds.value}/{tm.value}{hint}")
    return models[name], ds, tm


def _checkpoint_paths(name: str, model_dir: str | PathLike[str], ds: BenchmarkDataset, tm: ThreatModel,
                      entry: dict[str, Any]) -> list[Path]:
    """The files RobustBench's ``load_model`` reads for ``entry`` (an ensemble has one per member)."""
    folder = Path(model_dir) / ds.value / tm.value
    ids = entry.get("gdrive_id")
    if ids is None:
        raise UserError(f"RobustBench model {name!r} has no checkpoint of its own in the zoo (gdrive_id None); "
                        "it is not supported here")
    if isinstance(ids, list):
        return [folder / f"{name}.pt_m{i}.pt" for i in range(len(ids))]
    return [folder / f"{name}.pt"]


def _is_boosting(model: nn.Module) -> bool:
    """A ``BoostingWideResNet`` (or a subclass that keeps its forward): TRADES WRN + FN/WN head, mu/sigma."""
    from robustbench.model_zoo.architectures.boosting_wide_resnet import BoostingWideResNet

    return isinstance(model, BoostingWideResNet) and type(model).forward is BoostingWideResNet.forward


def _from_boosting(rb_model: BoostingWideResNet, *, scale: float | None, margin: float | None,
                   what: str) -> WideResNet:
    """Our WideResNet with an HE head and ``rb_model``'s weights and mu/sigma; checked to agree with it."""
    from art_he.models import build_model
    from art_he.robustbench.architectures import wrn_shape_of_state

    state = {k: v.detach().cpu() for k, v in rb_model.state_dict().items()}
    depth, widen, classes = wrn_shape_of_state(state)
    model = cast("WideResNet", build_model(  # a wrn-<depth>-<widen> name builds a WideResNet
        f"wrn-{depth}-{widen}", num_classes=classes, head="he", mean=rb_model.mu.flatten().tolist(),
        std=rb_model.sigma.flatten().tolist(), **_head_kwargs(scale, margin)))
    ours, name = _trades_to_ours(state)
    _load_strict(model, ours, what, name)
    model.eval()
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected, got = rb_model(x), model(x)
    if expected.shape != got.shape or not torch.allclose(expected, got, atol=1e-4, rtol=1e-4):
        raise UserError(f"{what}: our WideResNet-{depth}-{widen} with an HE head does not compute what RobustBench's "
                        f"{type(rb_model).__name__} computes; has RobustBench's architecture changed?")
    return model


def _load_zoo(name: str, model_dir: str | PathLike[str], dataset: str, threat_model: str,
              device: str | torch.device | None, scale: float | None,
              margin: float | None) -> tuple[PyTorchClassifier, dict[str, Any]]:
    """``(classifier, meta)``; see :func:`load_robustbench`."""
    place = parse_device(device)  # before anything is read: a device that is not there fails first
    rb = _robustbench()
    entry, ds, tm = _zoo_entry(name, dataset, threat_model)
    import timm

    if timm.is_model(f"{name.lower().replace('-', '_')}_{ds.value}_{tm.value.lower()}"):
        raise UserError(f"RobustBench serves {name!r} through timm from the Hugging Face Hub, not from a file under "
                        f"{model_dir}; such models are not supported here")
    paths = _checkpoint_paths(name, model_dir, ds, tm, entry)
    for path in paths:
        if not path.is_file():
            raise MissingFileError(f"RobustBench model {name!r}: {path} does not exist (art_he never downloads; "
                                   f"put the checkpoint there, e.g. from RobustBench's model zoo)")
        read_checkpoint(path)  # weights only: refuses pickled objects before RobustBench's torch.load sees them
    what = str(paths[0]) if len(paths) == 1 else f"{paths[0]} ..."
    try:
        rb_model = rb.utils.load_model(name, model_dir=str(model_dir), dataset=ds.value, threat_model=threat_model)
    except RuntimeError as error:  # load_state_dict (strict) names missing/unexpected keys over several lines
        detail = " ".join(str(error).split())
        raise UserError(f"{what} does not fit RobustBench's {name!r} architecture: {detail[:300]}") from None
    rb_model.eval()
    input_shape, nb_classes = DATASETS[ds.value]
    meta: dict[str, Any] = {"name": name, "dataset": ds.value, "threat_model": tm.value, "source": "robustbench",
            "checkpoint": what, "architecture": type(rb_model).__name__}
    if _is_boosting(rb_model):
        model = _from_boosting(rb_model, scale=scale, margin=margin, what=what)
        head = cast("HypersphereHead", model.fc)  # nn.Module types its children as Tensor | Module
        classes = head.num_classes
        if classes != nb_classes:
            raise UserError(f"{what} has {classes} classes, {ds.value} has {nb_classes}")
        from art_he.robustbench.architectures import wrn_shape

        depth, widen = wrn_shape(model)
        meta.update(model=f"wrn-{depth}-{widen}", head="he", head_kwargs=head.head_kwargs())
        return _he_classifier(model, ds.value, place), meta
    if scale is not None or margin is not None:
        raise UserError(f"scale/margin apply to hypersphere (BoostingWideResNet) models; {name!r} is a "
                        f"{type(rb_model).__name__}")
    from art.estimators.classification import PyTorchClassifier

    meta.update(model=type(rb_model).__name__, head="plain")
    classifier = art_estimator(PyTorchClassifier, rb_model, nn.CrossEntropyLoss(), input_shape, nb_classes,
                               clip_values=(0.0, 1.0), device=place)
    rb_model.eval()
    return classifier, meta


def load_robustbench(name: str, model_dir: str | PathLike[str], *, dataset: str = "cifar10",
                     threat_model: str = "Linf", device: str | torch.device | None = None, scale: float | None = None,
                     margin: float | None = None) -> PyTorchClassifier:
    """An ART classifier for RobustBench zoo model ``name`` from ``<model_dir>/<dataset>/<threat_model>/<name>.pt``.

    The file must be there already: a missing one is a one-line :class:`~art_he.errors.MissingFileError` naming
    the path (RobustBench's ``load_model`` would download it; this never calls it then). An unknown name is a
    one-line error with close matches. The file is checked with a weights-only ``torch.load``, then loaded by
    RobustBench's own ``robustbench.utils.load_model`` (its architecture, key clean-up and strict loading).

    * A ``BoostingWideResNet`` (``Pang2020Boosting``, the paper's WRN-34-20, or any entry registered with that
      class) is converted into our :class:`~art_he.models.wide_resnet.WideResNet` with an HE head (depth and width
      from the tensors, its ``mu``/``sigma`` as input normalisation, loaded strictly, checked to give
      RobustBench's outputs) and returned as an :class:`~art_he.estimator.HEPyTorchClassifier`: art_he's HE attack
      losses, classifier views and evaluation suites apply. ``scale`` (default :data:`art_he.defaults.SCALE`) and
      ``margin`` set only the loss attacks see; predictions (the cosines) do not depend on them.
    * Any other entry: ART's ``PyTorchClassifier`` around RobustBench's module, cross-entropy loss, inputs
      (3, 32, 32) in [0, 1], 10 or 100 classes, no optimizer (``scale``/``margin`` refused).

    ``dataset``: ``"cifar10"`` or ``"cifar100"`` (ImageNet is not supported); ``threat_model``: ``"Linf"``,
    ``"L2"``, ``"corruptions"``. ``device``: any :func:`~art_he.devices.parse_device` string. The torch
    module, in eval mode, is ``classifier.model``.
    """
    return _load_zoo(name, model_dir, dataset, threat_model, device, scale, margin)[0]


def zoo_classifier_for_eval(name: str, model_dir: str | PathLike[str], device: str | torch.device | None = None, *,
                            dataset: str = "cifar10", threat_model: str = "Linf", scale: float | None = None,
                            margin: float | None = None) -> tuple[PyTorchClassifier, dict[str, Any]]:
    """``(classifier, meta)`` for ``art-he eval --robustbench NAME --model-dir D``: :func:`load_robustbench`'s
    classifier, and ``meta`` with ``name``, ``dataset``, ``threat_model``, ``source`` ("robustbench"),
    ``checkpoint``, ``architecture`` (RobustBench's class), ``model`` (ours, e.g. ``wrn-34-20``, or the class) and
    ``head`` ("he" with ``head_kwargs``, or "plain")."""
    return _load_zoo(name, model_dir, dataset, threat_model, device, scale, margin)
