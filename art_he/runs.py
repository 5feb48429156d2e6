"""Training runs on disk: ``DIR/model.safetensors``, ``DIR/config.json``, ``DIR/metrics.jsonl``.

:func:`train_run` trains one configuration (what ``art-he train`` does); :func:`load_run` gives the trained
model back with its ART classifier.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save
from torch import nn

from art_he.atomic import write_atomic
from art_he.config import TrainConfig
from art_he.data import dataset_info, load_dataset
from art_he.devices import parse_device
from art_he.errors import MissingFileError, UserError
from art_he.estimator import HEPyTorchClassifier
from art_he.heads import LEGACY_WEIGHT_NORM, find_head
from art_he.models import build_model, small_cnn
from art_he.runlock import RunLock
from art_he.schedules import STEP_EPOCHS, make_scheduler
from art_he.trainers import checkpoint as ckpt

if TYPE_CHECKING:
    from art_he.trainers.distributed import DistContext

log = logging.getLogger(__name__)
MODEL_FILE, CONFIG_FILE, METRICS_FILE = "model.safetensors", "config.json", "metrics.jsonl"


def data_shape(config: dict[str, Any]) -> tuple[tuple[int, int, int], int]:
    """``(input_shape, nb_classes)`` of a run: the dataset's, with an image folder's size and classes."""
    info = dataset_info(config["dataset"])
    size = config.get("image_size")
    shape = (info.input_shape[0], size, size) if size else info.input_shape
    return shape, config.get("nb_classes") or info.nb_classes


def make_classifier(
    model: nn.Module,
    dataset: str,
    *,
    lr: float = 0.05,
    momentum: float = 0.9,
    weight_decay: float = 5e-4,
    attack_loss: str = "ce",
    device: str | torch.device | None = None,
    config: dict[str, Any] | None = None,
) -> HEPyTorchClassifier:
    """An :class:`HEPyTorchClassifier` for ``model`` on ``dataset`` (inputs in [0, 1]) with an SGD optimizer, on
    ``device`` (:func:`~art_he.devices.parse_device`; ``config``: a run's configuration, for image folders' sizes
    and classes)."""
    input_shape, nb_classes = data_shape({"dataset": dataset, **(config or {})})
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
    return HEPyTorchClassifier(model, None, input_shape, nb_classes, optimizer, attack_loss=attack_loss,
                               clip_values=(0.0, 1.0), device=device)


def build_run_model(cfg: TrainConfig) -> nn.Module:
    """The model of a resolved configuration (architecture, head and its scale/margin, model keywords)."""
    assert cfg.model is not None and cfg.nb_classes is not None  # a resolved config (TrainConfig.resolved)
    info = dataset_info(cfg.dataset)
    head_kwargs = {k: getattr(cfg, k) for k in ("scale", "margin", "weight_norm") if getattr(cfg, k) is not None}
    return build_model(
        cfg.model, num_classes=cfg.nb_classes, in_channels=info.input_shape[0], mean=info.mean, std=info.std,
        head=cfg.head, **cfg.model_kwargs, **head_kwargs,
    )


def state_dict_for_saving(model: nn.Module) -> dict[str, torch.Tensor]:
    module = getattr(model, "module", model)
    return {k: v.detach().contiguous().cpu() for k, v in module.state_dict().items()}


def write_config(out_dir: str | os.PathLike[str], model: nn.Module, config: dict[str, Any]) -> Path:
    """Write ``config.json`` (the run's configuration plus the head's settings) into ``out_dir``."""
    head = find_head(model)
    config = {**config, "head_kwargs": head.head_kwargs() if head is not None else {}}
    path = Path(out_dir) / CONFIG_FILE
    _write_atomic(path, (json.dumps(config, indent=2, sort_keys=True, allow_nan=False) + "\n").encode())
    return path


def save_run(out_dir: str | os.PathLike[str], model: nn.Module, config: dict[str, Any]) -> Path:
    """Write ``model.safetensors`` and ``config.json`` into ``out_dir``; return the folder."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    # safetensors' save_file creates the file with mode 0600; bytes written from Python get the umask's mode
    _write_atomic(out / MODEL_FILE, save(state_dict_for_saving(model)))
    write_config(out, model, config)
    return out


def _write_atomic(path: Path, data: bytes) -> None:
    write_atomic(path, lambda f: f.write(data))


def read_config(run_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """``config.json`` of a run; :class:`UserError` naming the file when it is missing, not JSON or incomplete."""
    path = Path(run_dir) / CONFIG_FILE
    try:
        config = json.loads(path.read_text())
    except FileNotFoundError:
        raise MissingFileError(f"{path} does not exist") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise UserError(f"{path} is not valid JSON ({error}); the run's configuration is damaged") from None
    missing = [k for k in ("dataset", "model", "head") if not isinstance(config, dict) or k not in config]
    if missing:
        raise UserError(f"{path} is not an art-he run configuration (no {', '.join(missing)})")
    return cast("dict[str, Any]", config)  # a dict: checked above


def load_run(run_dir: str | os.PathLike[str], device: str | torch.device | None = None,
             attack_loss: str = "ce") -> tuple[nn.Module, HEPyTorchClassifier, dict[str, Any]]:
    """``(model, classifier, config)`` of a finished run on ``device`` (:func:`~art_he.devices.parse_device`); the
    weights load through safetensors (no pickle)."""
    device = parse_device(device)  # before the weights are read: a device that is not there fails first
    run = Path(run_dir)
    if not (run / CONFIG_FILE).is_file() or not (run / MODEL_FILE).is_file():
        raise MissingFileError(f"{run} is not an art-he run directory (needs {CONFIG_FILE} and {MODEL_FILE})")
    config = read_config(run)
    info = dataset_info(config["dataset"])
    weights = run / MODEL_FILE
    try:
        state = load_file(str(weights))
    except (SafetensorError, OSError) as error:
        raise UserError(f"{weights} is damaged or not a safetensors file ({error})") from None
    head_kwargs = dict(config.get("head_kwargs", {}))
    head_kwargs.pop("variant", None)
    if isinstance(head_kwargs.get("weight_norm"), bool):  # a run written before weight_norm took a mode name
        head_kwargs["weight_norm"] = LEGACY_WEIGHT_NORM[head_kwargs["weight_norm"]]
    model_kwargs = dict(config.get("model_kwargs", {}))
    if config["model"] == "small-cnn" and "hidden_norm" not in model_kwargs:  # a run from before hidden_norm
        model_kwargs.update(small_cnn.legacy_kwargs(state))
    model = build_model(
        config["model"], num_classes=data_shape(config)[1], in_channels=info.input_shape[0], mean=info.mean,
        std=info.std, head=config["head"], **model_kwargs, **head_kwargs,
    )
    try:
        model.load_state_dict(state)
    except RuntimeError as error:  # load_state_dict's report of missing, unexpected or mis-shaped tensors
        detail = " ".join(str(error).split())
        raise UserError(f"{weights} does not hold the model {run / CONFIG_FILE} describes: {detail[:300]}") from None
    model.eval()
    classifier = make_classifier(model, config["dataset"], attack_loss=attack_loss, device=device, config=config)
    return classifier.model, classifier, config


def _subset(x: np.ndarray, y: np.ndarray, n: int | None) -> tuple[np.ndarray, np.ndarray]:
    return (x, y) if n is None else (x[:n], y[:n])


#: what a run folder holds; a folder with any of them is not written over without ``overwrite``
RUN_FILES = (MODEL_FILE, CONFIG_FILE, METRICS_FILE, ckpt.CHECKPOINT_FILE)
#: options a resumed run may change: they change how fast it trains, not what (``epochs`` is not one of them:
#: the LR schedule's milestones and cycle are fixed by it)
RESUMABLE = frozenset({"val_n", "precision", "channels_last", "compile", "capture", "sync_batchnorm", "data_dir",
                       "verify_data", "workers", "checkpoint_every", "device"})


def run_config(cfg: TrainConfig) -> dict[str, Any]:
    """What ``config.json`` records of a resolved configuration (all but ``data_dir``, a local path)."""
    return {k: v for k, v in dataclasses.asdict(cfg).items() if k != "data_dir"}


def config_differences(saved: dict[str, Any], config: dict[str, Any]) -> list[str]:
    """The keys, other than :data:`RESUMABLE` ones, whose values differ between a run's ``config.json`` and
    ``config`` (keys only one of them has are not compared)."""
    config = json.loads(json.dumps(config, allow_nan=False))  # tuples as lists, as config.json holds them
    # records from before the head's settings were resolved hold None there; the head's own values are in head_kwargs
    head = saved.get("head_kwargs", {})
    saved = {**saved, **{k: head.get(k) for k in ("scale", "margin", "weight_norm") if k in saved and saved[k] is None}}
    return sorted(k for k in config if k not in RESUMABLE and k in saved and saved[k] != config[k])


def prepare_run_dir(out_dir: str | os.PathLike[str], config: dict[str, Any], *, resume: bool,
                    overwrite: bool) -> dict[str, Any] | None:
    """Check ``out_dir`` before training into it; returns the checkpoint (memory-mapped) when resuming.

    A folder holding a run (any of :data:`RUN_FILES`) is refused unless ``resume`` (continue from its
    checkpoint, with the same configuration but for :data:`RESUMABLE` options) or ``overwrite`` (its run
    files are deleted; other files stay).
    """
    out = Path(out_dir)
    if resume and overwrite:
        raise UserError("--resume continues a run and --overwrite replaces it: give one of them")
    if out.exists() and not out.is_dir():
        raise UserError(f"{out} is a file, not a run folder")
    present = [name for name in RUN_FILES if (out / name).exists()]
    runs = sorted(p.name for p in out.iterdir() if (p / CONFIG_FILE).is_file()) if out.is_dir() else []
    if runs and not resume:
        raise UserError(f"{out} holds runs in its folders ({', '.join(runs[:3])}{', ...' if len(runs) > 3 else ''}); "
                        f"give a folder of its own, such as {out / 'NAME'}")
    if overwrite:
        for name in present:
            (out / name).unlink()
        return None
    if not resume:
        if present:
            raise UserError(f"{out} already holds a run ({', '.join(present)}); pass --resume to continue it or "
                            "--overwrite to replace it")
        return None
    state = ckpt.load_checkpoint(ckpt.checkpoint_path(out), mmap=True)
    if state is None:
        raise UserError(f"{out} has no {ckpt.CHECKPOINT_FILE} to resume from; train without --resume, into a new "
                        "folder or with --overwrite")
    saved = read_config(out)
    differ = config_differences(saved, config)
    if differ:
        pairs = ", ".join(f"{k} {saved[k]!r} -> {config[k]!r}" for k in differ)
        raise UserError(f"cannot resume {out}: its configuration differs in {pairs}; resume with the run's "
                        "settings or train into a new folder")
    return state


def train_run(cfg: TrainConfig, out_dir: str | os.PathLike[str] | None = None, *, resume: bool = False,
              overwrite: bool = False, verbose: bool = True) -> tuple[HEPyTorchClassifier, list[dict[str, Any]]]:
    """Train ``cfg`` and, if ``out_dir`` is given, write the run there; returns ``(classifier, history)``.

    ``out_dir`` must not hold a run already unless ``resume`` or ``overwrite`` (see :func:`prepare_run_dir`), and
    no other run may be writing to it (:mod:`art_he.runlock`: rank 0 holds the folder's lock until the end).
    ``verbose``: progress bars and log lines (:mod:`art_he.logs`); ``False``: silent.
    """
    from art_he.trainers import distributed  # distributed

    cfg = cfg.resolved()
    config = run_config(cfg)
    owns_group = not (torch.distributed.is_available() and torch.distributed.is_initialized())  # distributed
    ctx = distributed.init_distributed(cfg.device or "auto")  # distributed: torchrun's WORLD_SIZE > 1 (first)
    lock = RunLock(out_dir) if out_dir is not None else None
    try:
        if lock is not None:  # distributed: rank 0 locks, checks (and clears) the folder; its refusal ends every rank
            distributed.on_main(ctx, lambda: _claim_run_dir(lock, cfg, config, resume, overwrite, verbose))
        classifier, history = _train(cfg, config, ctx, out_dir, resume, verbose)
    finally:
        if lock is not None:
            lock.release()
    if owns_group and ctx.active:  # distributed
        distributed.cleanup()
    return classifier, history


def _claim_run_dir(lock: RunLock, cfg: TrainConfig, config: dict[str, Any], resume: bool, overwrite: bool,
                   verbose: bool) -> None:
    """Lock the run folder and prepare it (:func:`prepare_run_dir`)."""
    lock.acquire()
    state = prepare_run_dir(lock.folder, config, resume=resume, overwrite=overwrite)
    if state is not None:
        done = state["history"]
        # metrics.jsonl is rewritten from the checkpoint: a run stopped between the two writes loses no line
        _write_atomic(lock.folder / METRICS_FILE, "".join(_metrics_line(cfg, m) for m in done).encode())
        if verbose:
            inside = f", after batch {state['batch']} of epoch {len(done) + 1}" if state.get("batch") else ""
            log.info("resuming from epoch %d of %d%s", len(done), cfg.passes, inside)


def _train(cfg: TrainConfig, config: dict[str, Any], ctx: DistContext, out_dir: str | os.PathLike[str] | None,
           resume: bool, verbose: bool) -> tuple[HEPyTorchClassifier, list[dict[str, Any]]]:
    """The training of :func:`train_run`, once the folder is claimed; writes the model (rank 0)."""
    from art_he.trainers import distributed  # distributed

    assert cfg.schedule is not None and cfg.passes is not None and cfg.augment is not None  # a resolved config
    torch.manual_seed(cfg.seed)
    folder = dataset_info(cfg.dataset).folder
    if folder:  # a DataLoader with workers (sharded per rank by the trainer), the transforms inside it
        from art_he.data.folder import folder_dataset, folder_loader

        assert cfg.image_size is not None  # a resolved config (TrainConfig.resolved)
        train_set = folder_dataset(cfg.data_dir, True, cfg.image_size, cfg.augment)
        loader = folder_loader(train_set, cfg.batch_size, cfg.workers, cfg.seed, cfg.subset)
        steps = len(loader)
    else:
        x, y = _subset(*load_dataset(cfg.dataset, train=True, data_dir=cfg.data_dir, verify=cfg.verify_data),
                       cfg.subset)
        steps = -(-len(x) // cfg.batch_size)
    validation = None
    if cfg.val_n:
        validation = _subset(*load_dataset(cfg.dataset, train=False, data_dir=cfg.data_dir, image_size=cfg.image_size,
                                           n=cfg.val_n, verify=cfg.verify_data), cfg.val_n)
    model = build_run_model(cfg)
    classifier = make_classifier(model, cfg.dataset, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay,
                                 device=ctx.device, config=config)
    options = {**cfg.trainer_kwargs(), "verbose": verbose, "augment": cfg.augment and not folder}
    trainer = cfg.framework_class()(classifier, **options)
    scheduler = make_scheduler(cfg.schedule, classifier.optimizer, cfg.passes, steps,
                               warmup_steps=math.ceil(cfg.warmup * steps),
                               step_every=cfg.framework_class().passes(STEP_EPOCHS, dataclasses.asdict(cfg)))
    if out_dir is not None:  # before training, so that an interrupted run can be resumed and checked
        distributed.on_main(ctx, lambda: write_config(out_dir, model, config))  # distributed: only rank 0 writes
    if out_dir is not None and ctx.is_main:
        metrics_path = Path(out_dir) / METRICS_FILE

        def write_metrics(metrics: dict[str, Any]) -> None:
            with metrics_path.open("a") as f:
                f.write(_metrics_line(cfg, metrics))

        trainer.callbacks.append(write_metrics)
    fit_kwargs: dict[str, Any] = {}
    if out_dir is not None:
        fit_kwargs = {"checkpoint_dir": out_dir, "resume": resume}
    if folder:
        history = trainer.fit_loader(loader, nb_epochs=cfg.passes, validation_data=validation, scheduler=scheduler,
                                     **fit_kwargs)
    else:
        history = trainer.fit(x, y, validation_data=validation, batch_size=cfg.batch_size, nb_epochs=cfg.passes,
                              scheduler=scheduler, **fit_kwargs)
    if out_dir is not None:  # never reached after a divergence: no model from non-finite weights
        distributed.on_main(ctx, lambda: save_run(out_dir, model, config))
    return classifier, history


def _metrics_line(cfg: TrainConfig, metrics: dict[str, Any]) -> str:
    return json.dumps({"framework": cfg.framework, "head": cfg.head, **metrics}, allow_nan=False) + "\n"


def is_main_process() -> bool:
    """Rank 0 of a torchrun launch (read from the environment: the process group does not exist yet)."""
    return int(os.environ.get("RANK", "0")) == 0
