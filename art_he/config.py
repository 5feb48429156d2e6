"""The one source of training configuration: :class:`TrainConfig` names every option with its default and help.

``art-he train``'s flags are generated from it (:func:`add_config_arguments`) and their ``choices`` from the
registries (``DATASETS``, ``FRAMEWORKS``, ``MODELS``), so adding an option, a framework, a model or a dataset
is one edit. Options left at ``None`` are filled by :meth:`TrainConfig.resolved` from the one place that owns
them: the dataset (model, eps) or the framework (its keyword defaults, attack step, LR schedule, passes), the
same from Python and from the command line.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from art_he.defaults import HEADS, MARGINS, SCALE, WEIGHT_NORM, WEIGHT_NORMS, head_defaults
from art_he.devices import DEVICE_HELP, parse_device
from art_he.errors import UserError
from art_he.models.factory import ModelNames, model_builder
from art_he.precision import CLI_PRECISIONS, resolve_precision
from art_he.schedules import SCHEDULES
from art_he.validation import check_number

if TYPE_CHECKING:
    from art_he.trainers.base import ATTrainer

#: the values a :class:`TrainConfig` field accepts: a tuple, or a function giving a registry's names
Choices = Callable[[], Iterable[str]] | tuple[str, ...]


def _datasets() -> list[str]:
    from art_he.data import DATASETS

    return sorted(DATASETS)


def _frameworks() -> list[str]:
    from art_he.trainers import FRAMEWORKS

    return list(FRAMEWORKS)


def _captures() -> tuple[str, ...]:
    from art_he.trainers.capture import CAPTURES

    return CAPTURES


def _models() -> ModelNames:
    return ModelNames()


def option(default: Any, help: str, *, choices: Choices | None = None,
           cli: bool = True) -> Any:
    """A :class:`TrainConfig` field with its help text, its choices (a tuple, or a function giving a
    registry's names, called only when the parser is built) and whether ``art-he train`` shows it."""
    meta = {"help": help, "choices": choices, "cli": cli}
    if isinstance(default, (dict, list)):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class TrainConfig:
    """Everything that defines a training run; ``None`` means the dataset's or the framework's default."""

    dataset: str = option("fashion-mnist", "data set", choices=_datasets)
    framework: str = option("pgd", "adversarial training framework", choices=_frameworks)
    head: str = option("plain", "last layer: plain linear, HE or m-HE", choices=HEADS)
    model: str | None = option(None, "architecture (default: the dataset's usual model)", choices=_models)
    width: int | None = option(None, "small-cnn width (channels of the first conv)")
    epochs: int = option(1, "training budget in epochs (FreeAT: ceil(epochs / replays) passes over the data, "
                            "each minibatch replayed m times, as in Shafahi et al. and the authors' code)")
    batch_size: int = option(128, "global batch size (over all DDP processes)")
    lr: float = option(0.05, "initial learning rate (SGD with momentum)")
    momentum: float = option(0.9, "SGD momentum")
    weight_decay: float = option(5e-4, "SGD weight decay")
    schedule: str | None = option(None, "LR schedule (default: the framework's; FastAT: cyclic, Wong et al.'s "
                                        "triangle from 0 to --lr at half of the steps and back to 0; others: "
                                        "multistep, x0.1 at 75%% and 90%% of the passes; step: x0.1 every 30 "
                                        "epochs of the budget)", choices=SCHEDULES)
    warmup: float = option(0.0, "linear LR warm-up over the first N passes, fractions allowed (0.2: a fifth of "
                                "the first pass); lifts HE's slow start, see benchmarks/study_convergence.py")
    seed: int = option(0, "seed of the initialisation, batch order, augmentation and attacks")
    augment: bool | None = option(None, "random crop (pad 4) and horizontal flip on the device (default: on for "
                                        "CIFAR, App. C.2; off for Fashion-MNIST)")
    subset: int | None = option(None, "train on the first N training images")
    val_n: int = option(0, "validate on the first N test images after each epoch")
    scale: float | None = option(None, f"HE scale s (default {SCALE:g})")
    margin: float | None = option(None, f"HE margin m (default {MARGINS['he']:g} for he, {MARGINS['mhe']:g} for mhe)")
    weight_norm: str | None = option(None, f"HE weight normalisation: project (the authors'), differentiable, or "
                                           f"none (default {WEIGHT_NORM})", choices=WEIGHT_NORMS)
    eps: float | None = option(None, "Linf radius (default: the dataset's, 0.1 fashion-mnist, 8/255 cifar10)")
    eps_step: float | None = option(None, "attack step (default: the framework's: eps/4 for PGD-AT, ALP and "
                                          "TRADES, eps for FreeAT, 1.25*eps for FastAT)")
    max_iter: int | None = option(None, "PGD steps of the inner attack (PGD-AT, ALP, TRADES; default 10)")
    num_random_init: int | None = option(None, "random start of the inner attack, 0 or 1 (default 1)")
    alpha: float | None = option(None, "ALP: weight of the clean cross-entropy (default 0.5)")
    pairing_weight: float | None = option(None, "ALP: logit-pairing weight lambda (default 0.5)")
    pairing: str | None = option(None, "ALP: pairing term, the authors' mse (default) or the paper's l2",
                                 choices=("mse", "l2"))
    beta: float | None = option(None, "TRADES: KL weight 1/lambda (default 6)")
    replays: int | None = option(None, "FreeAT: minibatch replays m (default 4)")
    fgsm_mode: str | None = option(None, "FastAT: model mode while crafting the FGSM step (default train, as "
                                         "Wong et al.)", choices=("train", "eval"))
    early_stop: bool | None = option(None, "FastAT: stop and roll back when PGD accuracy on a held-out batch "
                                           "collapses (catastrophic overfitting; default on)")
    precision: str = option("auto", "autocast precision (auto: bf16 where the device has native bf16; resolved "
                                    "to the one used)", choices=CLI_PRECISIONS)
    channels_last: bool = option(True, "keep inputs and model in channels_last")
    compile: bool = option(False, "torch.compile the model")
    capture: str = option("off", "replay the training step (attack and backward) from a capture: cuda-graph (CUDA "
                                 "graphs, no per-kernel launch cost), fx (a traced ATen graph, any device)",
                          choices=_captures)
    device: str | None = option(None, DEVICE_HELP)
    sync_batchnorm: bool = option(False, "SyncBatchNorm under DDP")
    checkpoint_every: float | None = option(None, "also write a mid-epoch checkpoint every N minutes (SIGTERM and "
                                                  "SIGUSR1 always write one before the run stops)")
    data_dir: str | None = option(None, "data root (a folder that must exist); image folders: D/train, D/val")
    verify_data: bool = option(True, "check CIFAR-10's md5 sums; --no-verify-data reads a re-packed or subsampled "
                                     "copy in the same pickle format (read without running code either way)")
    image_size: int | None = option(None, "image-folder data sets: crop size (default 224, resized from 256)")
    workers: int = option(4, "image-folder data sets: DataLoader worker processes")
    model_kwargs: dict[str, Any] = option({}, "extra keyword arguments of the model builder", cli=False)
    recipe: str | None = option(None, "the recipe this configuration came from", cli=False)
    passes: int | None = option(None, "passes over the data, from epochs (resolved, not set)", cli=False)
    nb_classes: int | None = option(None, "classes, from the data set (resolved, not set)", cli=False)

    def framework_class(self) -> type[ATTrainer]:
        from art_he.trainers import FRAMEWORKS

        if self.framework not in FRAMEWORKS:
            raise UserError(f"unknown framework {self.framework!r}; choose from {list(FRAMEWORKS)}")
        return FRAMEWORKS[self.framework]

    def resolved(self) -> TrainConfig:
        """A copy with every default filled in and every value checked (``precision="auto"`` becomes the
        precision the run's device gets)."""
        import torch

        from art_he.data import dataset_info

        info = dataset_info(self.dataset)
        cls = self.framework_class()
        cfg = dataclasses.replace(self, model_kwargs=dict(self.model_kwargs))
        for name in ("head", "schedule", "precision", "capture"):
            choices = _choices(name)
            assert choices is not None  # these four fields have choices
            value = getattr(cfg, name)
            if value is not None and value not in choices:
                raise UserError(f"unknown {name} {value!r}; choose from {list(choices)}")
        parse_device(cfg.device)  # a device that is not there fails here, before any data is read
        cfg.model = cfg.model or info.model
        model_builder(cfg.model)  # a known name (or wrn-<depth>-<widen>)
        cfg.schedule = cfg.schedule or cls.default_schedule
        cfg.eps = info.eps if cfg.eps is None else cfg.eps
        cfg.augment = info.augment if cfg.augment is None else cfg.augment
        defaults = {name: value for name, value in cls.option_defaults().items() if name in cls.options}
        inapplicable = [name for name in framework_options() if getattr(cfg, name) is not None and name not in defaults]
        if inapplicable:
            flags = ", ".join("--" + name.replace("_", "-") for name in inapplicable)
            verb = "does" if len(inapplicable) == 1 else "do"
            raise UserError(f"{flags} {verb} not apply to --framework {cfg.framework}")
        for name in defaults:
            if getattr(cfg, name) is None:
                setattr(cfg, name, defaults[name])
        if cfg.eps_step is None:
            cfg.eps_step = cls.default_eps_step(cfg.eps)
        for name in ("epochs", "batch_size"):
            check_number(name, getattr(cfg, name), low=1, integer=True)
        check_number("lr", cfg.lr, low=0.0, strict=True)
        check_number("warmup", cfg.warmup, low=0.0)
        if cfg.warmup and cfg.schedule == "cyclic":
            raise UserError("--warmup does not apply to the cyclic schedule, which ramps up by itself")
        if cfg.subset is not None:
            check_number("subset", cfg.subset, low=1, integer=True)
        if cfg.head == "plain" and (cfg.scale is not None or cfg.margin is not None or cfg.weight_norm is not None):
            raise UserError("--scale/--margin/--weight-norm need --head he or mhe")
        if cfg.head != "plain":
            paper = {**head_defaults(cfg.head), "weight_norm": WEIGHT_NORM}
            for name, value in paper.items():
                setattr(cfg, name, value if getattr(cfg, name) is None else getattr(cfg, name))
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")  # where train_run trains
        cfg.precision = resolve_precision(cfg.precision, device)
        if cfg.width is not None:
            cfg.model_kwargs["width"] = check_number("width", cfg.width, low=1, integer=True)
        cfg.passes = cls.passes(cfg.epochs, dataclasses.asdict(cfg))
        cfg.nb_classes = info.nb_classes
        if info.folder:
            from art_he.data.folder import folder_classes

            cfg.image_size = check_number("image_size", cfg.image_size or info.input_shape[-1], low=8, integer=True)
            found = len(folder_classes(cfg.data_dir))
            if info.nb_classes and found != info.nb_classes:
                raise UserError(f"{cfg.dataset} has {info.nb_classes} classes but {cfg.data_dir}/train holds {found}")
            cfg.nb_classes = found
        elif cfg.image_size is not None:
            raise UserError("--image-size applies to image-folder data sets (imagefolder, imagenet)")
        return cfg

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> TrainConfig:
        """The configuration a run's ``config.json`` records (its other keys, such as ``head_kwargs``, ignored)."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in record.items() if k in names})

    def trainer_kwargs(self) -> dict[str, Any]:
        """The options the framework's trainer takes (``None`` keeps the trainer's own default)."""
        accepted = self.framework_class().option_defaults()
        values = dataclasses.asdict(self)
        return {k: values[k] for k in accepted if k in values and values[k] is not None}

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True, allow_nan=False)


def framework_options() -> list[str]:
    """The options that belong to a framework's trainer rather than to the run: every registered trainer's
    ``options``, in registration order."""
    from art_he.trainers import FRAMEWORKS

    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    for cls in FRAMEWORKS.values():
        if missing := [name for name in cls.options if name not in fields]:
            raise TypeError(f"{cls.__name__}.options names {missing}, which TrainConfig lacks: add a field for each")
    return list(dict.fromkeys(name for cls in FRAMEWORKS.values() for name in cls.options))


def _choices(name: str) -> Iterable[str] | None:
    choices: Choices | None = next(f for f in dataclasses.fields(TrainConfig) if f.name == name).metadata["choices"]
    return choices() if callable(choices) else choices


def cli_fields() -> list[dataclasses.Field[Any]]:
    return [f for f in dataclasses.fields(TrainConfig) if f.metadata.get("cli", True)]


def add_config_arguments(parser: argparse.ArgumentParser, exclude: Collection[str] = ()) -> None:
    """One flag per :class:`TrainConfig` field shown on the command line (but the fields in ``exclude``). Unset
    flags stay out of the parsed namespace (``argparse.SUPPRESS``), so that they do not override a recipe's
    values."""
    for f in cli_fields():
        if f.name in exclude:
            continue
        meta, default = f.metadata, f.default
        shown = f" (default: {default})" if default is not None and not isinstance(default, bool) else ""
        text = meta["help"] + shown
        if str(f.type).startswith("bool"):  # --name / --no-name
            parser.add_argument("--" + f.name.replace("_", "-"), dest=f.name, action=argparse.BooleanOptionalAction,
                                default=argparse.SUPPRESS, help=text + (f" (default: {default})" if default else ""))
            continue
        kind = _value_type(f)
        choices = meta["choices"]
        parser.add_argument("--" + f.name.replace("_", "-"), dest=f.name, type=kind, default=argparse.SUPPRESS,
                            choices=(choices() if callable(choices) else choices) or None,
                            help=text)


def _value_type(f: dataclasses.Field[Any]) -> type:
    text = str(f.type)
    for name, kind in (("int", int), ("float", float)):
        if text.startswith(name):
            return kind
    return str


def option_flag(name: str, value: Any) -> str:
    """The flags that set option ``name`` to ``value``: ``--name value``, or ``--name`` / ``--no-name``."""
    flag = "--" + name.replace("_", "-")
    if isinstance(value, bool):
        return flag if value else "--no-" + flag[2:]
    return f"{flag} {value}"


def given_options(args: argparse.Namespace) -> dict[str, Any]:
    """The training options given on the command line (unset flags are not in ``args``)."""
    return {f.name: getattr(args, f.name) for f in cli_fields() if hasattr(args, f.name)}


def config_from_arguments(args: argparse.Namespace, base: TrainConfig | None = None) -> TrainConfig:
    """``base`` (default: :class:`TrainConfig`'s defaults) with the flags given on the command line."""
    return dataclasses.replace(base or TrainConfig(), **given_options(args))
