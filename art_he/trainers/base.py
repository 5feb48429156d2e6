"""The one epoch loop under every art_he trainer.

A trainer subclass says how to craft adversarial inputs (:meth:`ATTrainer.perturb`) and which loss to
minimise (:meth:`ATTrainer.compute_loss`); FreeAT, whose replays interleave both, overrides
:meth:`ATTrainer.train_batch`. Everything else is here: data on the device, bf16/fp16 autocast (with a grad
scaler for fp16), channels_last, ``torch.compile`` and a captured step (:mod:`art_he.trainers.capture`), the
model in eval mode while attacking and train mode for the update, any torch LR scheduler,
DistributedDataParallel when a process group is initialised, tqdm progress, per-epoch metrics, validation and
atomic per-epoch checkpoints with exact resume. With a checkpoint folder, SIGTERM or SIGUSR1 ends training after
the current batch with a mid-epoch checkpoint that resume continues exactly (also every ``checkpoint_every``
minutes); a non-finite loss or parameter stops it at that batch (:mod:`art_he.trainers.watch`).
"""

from __future__ import annotations

import inspect
import logging
import math
import os
import secrets
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Sized
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from art.defences.trainer import Trainer
from art.estimators.classification import PyTorchClassifier
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.optim.lr_scheduler import LRScheduler
from torch.utils.data import DataLoader, DistributedSampler

from art_he.attacks.train_time import LossFn, Model, pgd
from art_he.data.augment import crop_flip, draw_crop_flip
from art_he.defaults import pgd_step
from art_he.errors import Preempted, UserError
from art_he.heads import objective_of
from art_he.precision import DTYPES, resolve_precision
from art_he.progress import progress
from art_he.rng import derived_seed
from art_he.schedules import PER_BATCH
from art_he.trainers import checkpoint as ckpt
from art_he.trainers import distributed
from art_he.trainers.capture import CAPTURES, NOISE_KINDS, CapturedStep, Draw
from art_he.trainers.watch import BatchWatch
from art_he.validation import ArrayLike, check_choice, check_number, check_xy

if TYPE_CHECKING:
    from art.data_generators import DataGenerator

log = logging.getLogger(__name__)
Batch = tuple[torch.Tensor, torch.Tensor]
#: what :meth:`ATTrainer.compute_loss` returns: the loss, the clean outputs (``None``: not computed), the adversarial
LossOutputs = tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]
EpochCallback = Callable[[dict[str, Any]], None]
#: zero padding of the random crop (App. C.2: RandomCrop with 4 padding) and the key of its random stream
CROP_PAD, AUGMENT_KEY = 4, 0xA06
#: the key of the batch order's stream: :meth:`ATTrainer.fit` shuffles epoch ``e`` with ``derived_seed(seed, e, key)``
#: (:func:`~art_he.rng.derived_seed`); a ``DistributedSampler`` the trainer makes gets ``derived_seed(seed, key)``
#: (it adds the epoch itself)
ORDER_KEY = 0x0DE


def _to_cpu(obj: object) -> object:
    """``obj`` with every tensor moved to the CPU (dicts, lists and tuples followed)."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_cpu(v) for v in obj)
    return obj


class ATTrainer(Trainer):  # type: ignore[misc]  # ART ships no type information
    """Base of the adversarial trainers: ``fit`` on numpy arrays, ``fit_loader`` on a torch ``DataLoader``.

    :param classifier: an ART ``PyTorchClassifier`` (or :class:`~art_he.HEPyTorchClassifier`) with an optimizer.
        With an ordinary last layer the baseline framework is trained; with a ``HypersphereHead`` its HE
        (or m-HE) version.
    :param precision: ``"auto"`` (bf16 autocast where the device has native bf16, else fp32), ``"fp32"``,
        ``"bf16"``, or ``"fp16"`` (autocast + ``GradScaler``, for GPUs without bf16).
    :param channels_last: keep 4-D inputs and the model in channels_last memory format (faster convolutions).
    :param compile: ``torch.compile`` the model (``True``: inductor; a string names another backend).
    :param capture: ``"off"``, or record :meth:`train_step` once per batch shape and replay it: ``"cuda-graph"``
        (CUDA graphs) or ``"fx"`` (a traced ATen graph, any device); bitwise the eager step
        (:mod:`art_he.trainers.capture`). Not with ``compile``, fp16, DDP or FreeAT.
    :param sync_batchnorm: under DDP, convert BatchNorm layers to ``SyncBatchNorm`` (CUDA only).
    :param seed: seed of the batch order and of the attacks' random starts (rank 0's seed is used on all ranks).
    :param augment: in :meth:`fit`, random crop (zero padding 4) and horizontal flip of every batch on the device
        (App. C.2), drawn per epoch from the seed, so that resume and DDP stay exact. Give :meth:`fit_loader` a
        ``DataLoader`` whose dataset applies its own transforms instead.
    :param verbose: show tqdm progress bars and log one line of metrics per epoch (``logging``, logger
        ``art_he.trainers.base``, level INFO; :func:`art_he.logs.show_logs` prints them); rank 0 only. ``False``:
        silent.
    :param checkpoint_every: with a ``checkpoint_dir``, also write a mid-epoch checkpoint every this many minutes.

    Under ``torch.distributed`` (initialise the process group, e.g. with
    :func:`~art_he.trainers.distributed.init_distributed`, *before* building the classifier and the trainer)
    the update forward runs through ``DistributedDataParallel`` while the attacks use the raw module, every
    rank trains on its shard of each global batch, metrics are summed over ranks, and only rank 0 shows
    progress and writes checkpoints.
    """

    #: ``--framework`` name, paper label, and the :class:`~art_he.config.TrainConfig` options it takes (see
    #: :func:`~art_he.trainers.register_framework`)
    name: str = ""
    label: str = ""
    options: tuple[str, ...] = ()
    #: whether the loop needs an extra no-grad forward for clean accuracy (frameworks that train on
    #: clean inputs too get it from their loss)
    clean_forward: bool = True
    #: whether the training attack runs with the model in train mode (BatchNorm on batch statistics)
    attack_train_mode: bool = False
    #: the LR schedule ``art-he train`` uses for this framework unless told otherwise (see ``art_he.config``)
    default_schedule: str = "multistep"
    #: whether :meth:`train_batch` is :meth:`train_step` and the optimizer step, so that ``capture`` applies
    capturable: bool = True

    def __init__(
        self,
        classifier: PyTorchClassifier,
        *,
        precision: str = "auto",
        channels_last: bool = True,
        compile: bool | str = False,
        capture: str = "off",
        sync_batchnorm: bool = False,
        seed: int | None = None,
        augment: bool = False,
        verbose: bool = True,
        checkpoint_every: float | None = None,
    ) -> None:
        if not isinstance(classifier, PyTorchClassifier):
            raise TypeError(f"classifier must be an ART PyTorchClassifier, got {type(classifier).__name__}")
        if classifier.optimizer is None:
            raise UserError("the classifier has no optimizer; pass optimizer=... when building it")
        if not isinstance(compile, (bool, str)):
            raise TypeError(f"compile must be a bool or a torch.compile backend name, got {type(compile).__name__}")
        check_choice("capture", capture, CAPTURES)
        if seed is not None:
            check_number("seed", seed, low=0, integer=True)
        if checkpoint_every is not None:
            check_number("checkpoint_every", checkpoint_every, low=0.0, strict=True)
        super().__init__(classifier)
        self.model: nn.Module = classifier.model
        self.optimizer: torch.optim.Optimizer = classifier.optimizer
        self.device: torch.device = classifier.device
        #: inputs are cast to the model's floating dtype (float32 usually; float64 for exactness checks)
        self.dtype = next((p.dtype for p in self.model.parameters() if p.is_floating_point()), torch.float32)
        self.dist = distributed.context(self.device)
        self.objective = objective_of(self.model)
        clip = classifier.clip_values
        self.clip = (float(np.min(clip[0])), float(np.max(clip[1]))) if clip is not None else (-math.inf, math.inf)
        self.precision = resolve_precision(precision, self.device)
        self.scaler = torch.amp.GradScaler(self.device.type) if self.precision == "fp16" else None
        self.capture = capture
        self._check_capture(bool(compile))
        #: how :meth:`start_noise` draws (a captured step serves its draws from the buffers its recording reads)
        self._draw: Callable[[Draw], torch.Tensor] = Draw.sample
        self._captured: CapturedStep | None = None
        self.channels_last = bool(channels_last) and len(classifier.input_shape) == 3
        self.seed = distributed.broadcast_int(int(seed) if seed is not None else secrets.randbits(62), self.dist)
        #: the training attacks' random starts; identical on all ranks, see :meth:`attack`
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(self.seed)
        self.verbose = verbose
        self.augment = bool(augment)
        self.checkpoint_every = checkpoint_every
        #: a DataLoader's own generator (its shuffling), whose state a mid-epoch checkpoint keeps
        self._data_generator: torch.Generator | None = None
        self.history: list[dict[str, Any]] = []
        self.callbacks: list[EpochCallback] = []
        #: set (e.g. by FastAT's overfitting guard) to end training after the current batch
        self.stop_training = False
        self._preprocess = self._make_preprocess(classifier)
        if self.channels_last:
            self.model.to(memory_format=torch.channels_last)
        #: the model as the attacks and as the update call it (compiled; the update's through DDP when distributed)
        self._attack_module: Model = self.model
        self._train_module: Model = self.model
        if self.dist.active:
            self._setup_ddp(sync_batchnorm)
        if compile:
            backend = "inductor" if compile is True else compile
            self._attack_module = torch.compile(self.model, backend=backend)
            self._train_module = (torch.compile(self._train_module, backend=backend) if self.dist.active
                                  else self._attack_module)

    def _check_capture(self, compiled: bool) -> None:
        if self.capture == "off":
            return
        conflict = ("compile" if compiled else "fp16 (its grad scaler reads the gradients on the host)"
                    if self.scaler is not None else "DDP" if self.dist.active else None)
        if conflict is None and not self.capturable:
            conflict = type(self).__name__ + " (its optimizer steps lie inside the step)"
        if conflict is not None:
            raise UserError(f"capture={self.capture!r} does not go with {conflict}; use capture='off'")
        if self.capture == "cuda-graph" and self.device.type != "cuda":
            raise UserError(f"capture='cuda-graph' needs a CUDA device, the classifier is on {self.device}; use "
                            "capture='fx' or 'off'")

    def _setup_ddp(self, sync_batchnorm: bool) -> None:
        if self.device.type == "cuda" and self.device.index != torch.cuda.current_device():
            raise UserError(f"the classifier is on {self.device} but this rank's GPU is cuda:"
                             f"{torch.cuda.current_device()}; build the classifier after init_distributed()")
        if sync_batchnorm:
            if self.device.type != "cuda":
                raise UserError("sync_batchnorm=True needs CUDA: torch's SyncBatchNorm has no CPU implementation")
            # torch leaves convert_sync_batchnorm unannotated
            converted = nn.SyncBatchNorm.convert_sync_batchnorm(self.model)  # type: ignore[no-untyped-call]
            if converted is not self.model:
                raise UserError("sync_batchnorm cannot convert a model that is itself a BatchNorm layer")
        self._train_module = DistributedDataParallel(
            self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None
        )

    # -- pieces subclasses use ---------------------------------------------------------------------------------

    def autocast(self) -> torch.autocast | nullcontext[None]:
        """Autocast context for forward passes: bf16 or fp16 when ``precision`` asks for it."""
        if self.precision in DTYPES:
            dtype = DTYPES[self.precision]
            # a CUDA graph must not keep autocast's cached casts of the weights (torch's CUDA graph notes)
            return torch.autocast(device_type=self.device.type, dtype=dtype, cache_enabled=self.capture != "cuda-graph")
        return nullcontext()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The model's raw outputs (cosines for HE) on inputs in the classifier's input space (attacks, eval)."""
        return self._attack_module(self._preprocess(x))

    def train_forward(self, x: torch.Tensor) -> torch.Tensor:
        """:meth:`forward` for the parameter update: through DistributedDataParallel when distributed."""
        return self._train_module(self._preprocess(x))

    def attack(self, x: torch.Tensor, target: torch.Tensor, loss_fn: LossFn, *, eps: float, eps_step: float,
               max_iter: int, random_init: str | None = "uniform",
               generator: torch.Generator | None = None) -> torch.Tensor:
        """Linf PGD against :meth:`forward` under this trainer's autocast and clip box.

        The random start comes from ``generator`` (default: the training generator), see :meth:`start_noise`.
        """
        return pgd(
            self.forward, x, target, loss_fn, eps=eps, eps_step=eps_step, max_iter=max_iter,
            random_init=random_init, clip=self.clip, autocast=self.autocast(),
            noise=self.start_noise(x, random_init, generator),
        )

    def start_noise(self, x: torch.Tensor, kind: str | None,
                    generator: torch.Generator | None = None) -> torch.Tensor | None:
        """The raw draw of a random start shaped like ``x`` (``kind``: ``"uniform"``, ``"normal"``; else ``None``)
        from ``generator`` (default: the training generator). Under DDP the training start is this rank's share
        (rows ``rank::world_size``, the way batches are sharded) of a draw for the whole global batch, so that N
        processes attack with exactly the noise one process would use."""
        if kind not in NOISE_KINDS:
            return None  # no start, or an unknown one that pgd names
        rank, world = (self.dist.rank, self.dist.world_size) if generator is None else (0, 1)
        return self._draw(Draw(kind, (len(x) * world, *x.shape[1:]), x.dtype, x.device,
                               self.generator if generator is None else generator, rank, world))

    def perturb(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Craft the adversarial batch (model in eval mode, no parameter gradients)."""
        raise NotImplementedError

    def compute_loss(self, x: torch.Tensor, x_adv: torch.Tensor, y: torch.Tensor) -> LossOutputs:
        """``(loss, clean_outputs or None, adversarial_outputs)`` with the model in train mode."""
        raise NotImplementedError

    def backward(self, loss: torch.Tensor) -> None:
        """``loss.backward()`` after clearing the gradients (scaled by the grad scaler under fp16)."""
        self.optimizer.zero_grad(set_to_none=True)
        # torch leaves Tensor.backward unannotated
        (self.scaler.scale(loss) if self.scaler is not None else loss).backward()  # type: ignore[no-untyped-call]

    def step(self) -> None:
        """The optimizer step (through the grad scaler under fp16)."""
        if self.scaler is None:
            self.optimizer.step()
        else:
            self.scaler.step(self.optimizer)
            self.scaler.update()

    def train_batch(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """One step: :meth:`train_step` (eager, or replayed from its capture), then the optimizer step; returns
        ``[loss * B, clean correct, adversarial correct, B]`` as a device tensor."""
        stats = self._captured(x, y) if self._captured is not None else self.train_step(x, y)
        self.step()
        return stats

    def train_step(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The step up to the optimizer: the attack, the update's forward and backward (the gradients in ``.grad``)
        and the batch's statistics. It reads no tensor on the host, so that it can be captured."""
        self.model.train(self.attack_train_mode)
        x_adv = self.perturb(x, y)
        clean_pred = None
        if self.clean_forward:
            self.model.eval()
            with torch.no_grad(), self.autocast():
                clean_pred = self.forward(x).argmax(1)
        self.model.train()
        with self.autocast():
            loss, out_clean, out_adv = self.compute_loss(x, x_adv, y)
        self.backward(loss)
        if clean_pred is None:
            assert out_clean is not None  # a framework without the clean forward returns its clean outputs
            clean_pred = out_clean.detach().argmax(1)
        return self._batch_stats(loss, clean_pred, out_adv.detach().argmax(1), y)

    # -- defaults ----------------------------------------------------------------------------------------------

    @classmethod
    def option_defaults(cls) -> dict[str, object]:
        """Every keyword option ``cls(classifier, ...)`` takes, with its default, following ``**kwargs`` up the
        class hierarchy: the one place a framework's defaults live."""
        options: dict[str, object] = {}
        for klass in cls.__mro__:
            if "__init__" not in vars(klass):
                continue
            params = inspect.signature(vars(klass)["__init__"]).parameters.values()
            for p in params:
                if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name not in ("self", "classifier"):
                    options.setdefault(p.name, p.default)
            if not any(p.kind is p.VAR_KEYWORD for p in params):
                break
        return options

    def set_radius(self, eps: float, eps_step: float | None) -> None:
        """``self.eps`` (>= 0) and ``self.eps_step`` (>= 0; ``None``: :meth:`default_eps_step` of ``eps``)."""
        self.eps = float(check_number("eps", eps, low=0.0))
        self.eps_step = self.default_eps_step(self.eps) if eps_step is None else float(
            check_number("eps_step", eps_step, low=0.0))

    @classmethod
    def default_eps_step(cls, eps: float) -> float:
        """The attack step used when ``eps_step`` is not given: :func:`~art_he.defaults.pgd_step`, ``eps / 4``."""
        return pgd_step(eps)

    @classmethod
    def passes(cls, epochs: int, options: dict[str, Any]) -> int:
        """Passes over the data that make an ``epochs`` budget (FreeAT divides it by its replays)."""
        return epochs

    @classmethod
    def passes_per_image(cls, options: dict[str, Any]) -> float:
        """Forward+backward passes per image in one pass over the data: the attack's ``max_iter`` steps (one
        without it) and the update's one."""
        return float((options.get("max_iter") or 1) + 1)

    # -- hooks -------------------------------------------------------------------------------------------------

    def default_scheduler(self, nb_epochs: int, steps_per_epoch: int | None) -> LRScheduler | None:
        """The LR scheduler used when ``fit`` gets none (``None``: constant LR)."""
        return None

    def on_epoch_end(self, metrics: dict[str, Any]) -> None:
        """Called on every rank after each epoch (and validation), before the checkpoint; may edit ``metrics``."""

    def extra_state(self) -> dict[str, Any]:
        """Framework state, the same on every rank, that a checkpoint must carry (tensors and plain types)."""
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`extra_state`."""

    def rank_state(self) -> dict[str, Any]:
        """Framework state that differs between ranks (e.g. FreeAT's perturbation); saved for every rank."""
        return {}

    def load_rank_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`rank_state`."""

    # -- the loop ----------------------------------------------------------------------------------------------

    def fit(
        self,
        x: ArrayLike,
        y: ArrayLike,
        validation_data: tuple[ArrayLike, ArrayLike] | None = None,
        batch_size: int = 128,
        nb_epochs: int = 20,
        scheduler: LRScheduler | None = None,
        *,
        scheduler_step: str | None = None,
        checkpoint_dir: str | os.PathLike[str] | None = None,
        resume: bool = False,
        **kwargs: Any,
    ) -> list[dict[str, Any]]:
        """Train on numpy arrays (``y`` integer or one-hot); returns the per-epoch metrics.

        ``batch_size`` is the global batch: under DDP rank ``r`` trains on rows ``r::world_size`` of the same
        shuffled batch (the layout of ``DistributedSampler``). ``checkpoint_dir``: write ``checkpoint.pt`` there
        after every epoch; ``resume=True`` continues from it, and ``nb_epochs`` is then the total number of
        epochs of the run.
        """
        self._reject(kwargs)
        check_number("batch_size", batch_size, low=1, integer=True)
        x_t, y_t = self._as_tensors(x, y)
        n = len(x_t)
        spans = self._global_batches(n, batch_size)
        world, rank = self.dist.world_size, self.dist.rank

        def batches(epoch: int) -> Iterator[Batch]:
            perm = torch.randperm(n, generator=self._epoch_generator(epoch)).to(self.device)
            draws = torch.Generator().manual_seed(derived_seed(self.seed, epoch, AUGMENT_KEY))
            for start, size in spans:
                idx = perm[start + rank : start + size : world]
                xb = x_t[idx]
                if self.augment:  # drawn for the global batch, sharded like the rows: N ranks == 1 process
                    dy, dx, flip = draw_crop_flip(size, CROP_PAD, draws)
                    xb = crop_flip(xb, dy[rank::world], dx[rank::world], flip[rank::world], CROP_PAD)
                yield xb, y_t[idx]

        return self._fit(
            batches, n_images=sum(size // world for _, size in spans), steps_per_epoch=len(spans),
            nb_epochs=nb_epochs, validation_data=validation_data, scheduler=scheduler, scheduler_step=scheduler_step,
            checkpoint_dir=checkpoint_dir, resume=resume,
        )

    def fit_loader(
        self,
        loader: Iterable[Batch],
        nb_epochs: int = 20,
        validation_data: tuple[ArrayLike, ArrayLike] | None = None,
        scheduler: LRScheduler | None = None,
        *,
        batch_size: int | None = None,
        scheduler_step: str | None = None,
        checkpoint_dir: str | os.PathLike[str] | None = None,
        resume: bool = False,
        **kwargs: Any,
    ) -> list[dict[str, Any]]:
        """Train on a torch ``DataLoader`` (or any iterable of ``(x, y)`` tensor batches), e.g. with augmentation.

        Under DDP a ``DataLoader`` is re-made with a ``DistributedSampler`` (its ``batch_size`` is the global
        batch) and ``set_epoch`` is called every epoch. ``batch_size``, if given, must equal the loader's.
        Checkpoints and resume as in :meth:`fit`.
        """
        self._reject(kwargs)
        self._check_no_augment()
        n: int | None
        steps: int | None
        if isinstance(loader, DataLoader):
            if batch_size is not None and loader.batch_size != batch_size:
                raise UserError(f"batch_size={batch_size} but the DataLoader's batch_size is {loader.batch_size}")
            sharded = distributed.shard_loader(loader, self.dist, self.seed)
            own_sampler = sharded is not loader
            loader = sharded
            self._data_generator = loader.generator
            n, steps = len(loader.sampler), len(loader)  # type: ignore[arg-type]  # torch types Sampler unsized
        else:
            own_sampler = False
            if self.dist.active:
                raise UserError("under DDP fit_loader needs a torch DataLoader (it is sharded by rank)")
            n = len(loader.dataset) if hasattr(loader, "dataset") else None
            steps = len(loader) if isinstance(loader, Sized) else None

        def batches(epoch: int) -> Iterator[Batch]:
            sampler: object = getattr(loader, "sampler", None)
            if own_sampler:  # the run's order seed (a resumed run's); DistributedSampler adds the epoch to it
                assert isinstance(sampler, DistributedSampler)  # the one shard_loader made
                sampler.seed = derived_seed(self.seed, ORDER_KEY)
            if hasattr(sampler, "set_epoch"):
                sampler.set_epoch(epoch)
            for xb, yb in loader:
                yield self._to_device(xb, yb)

        return self._fit(
            batches, n_images=n, steps_per_epoch=steps, nb_epochs=nb_epochs, validation_data=validation_data,
            scheduler=scheduler, scheduler_step=scheduler_step, checkpoint_dir=checkpoint_dir, resume=resume,
        )

    def fit_generator(self, generator: DataGenerator, nb_epochs: int = 20, **kwargs: Any) -> list[dict[str, Any]]:
        """Train from an ART ``DataGenerator``; a ``PyTorchDataGenerator`` goes through its ``DataLoader``."""
        self._check_no_augment()
        loader = getattr(generator, "iterator", None)
        if isinstance(loader, DataLoader):
            return self.fit_loader(loader, nb_epochs=nb_epochs, **kwargs)
        if self.dist.active:
            raise UserError("under DDP use fit (numpy) or fit_loader (DataLoader); other generators are not sharded")
        steps = max(1, math.ceil(generator.size / generator.batch_size))

        def numpy_batches() -> Iterator[Batch]:
            for _ in range(steps):
                xb, yb = generator.get_batch()
                yield self._as_tensors(xb, yb)

        validation_data = kwargs.pop("validation_data", None)
        scheduler = kwargs.pop("scheduler", None)
        options = {k: kwargs.pop(k) for k in ("scheduler_step", "checkpoint_dir", "resume") if k in kwargs}
        self._reject(kwargs)
        return self._fit(lambda epoch: numpy_batches(), n_images=generator.size, steps_per_epoch=steps,
                         nb_epochs=nb_epochs, validation_data=validation_data, scheduler=scheduler, **options)

    def _fit(self, batches: Callable[[int], Iterable[Batch]], *, n_images: int | None, steps_per_epoch: int | None,
             nb_epochs: int, validation_data: tuple[ArrayLike, ArrayLike] | None = None,
             scheduler: LRScheduler | None = None, scheduler_step: str | None = None,
             checkpoint_dir: str | os.PathLike[str] | None = None, resume: bool = False) -> list[dict[str, Any]]:
        check_number("nb_epochs", nb_epochs, low=1, integer=True)
        if resume and checkpoint_dir is None:
            raise UserError("resume=True needs checkpoint_dir")
        validation = self._as_tensors(*validation_data) if validation_data is not None else None
        if scheduler is None:
            scheduler = self.default_scheduler(nb_epochs, steps_per_epoch)
        if scheduler_step is None:
            scheduler_step = "batch" if isinstance(scheduler, PER_BATCH) else "epoch"
        if scheduler_step not in ("batch", "epoch"):
            raise UserError(f"scheduler_step must be 'batch' or 'epoch', got {scheduler_step!r}")
        path = ckpt.checkpoint_path(checkpoint_dir) if checkpoint_dir is not None else None
        start, end = len(self.history), len(self.history) + nb_epochs
        position = None
        if resume:
            assert path is not None  # checked above: resume needs checkpoint_dir
            state = ckpt.load_checkpoint(path, map_location=self.device)
            if state is None:
                warnings.warn(f"resume=True but {path} does not exist; training from scratch", stacklevel=3)
            else:
                position = self.load_state_dict(state, scheduler)
                start, end = state["epoch"], nb_epochs
        every = self.checkpoint_every * 60 if self.checkpoint_every and path is not None else None
        watch = BatchWatch(self.model, self.dist, self.device, checkpoint_every_s=every,
                           kept=f"; {path} keeps the last finite state saved" if path is not None else "")
        if path is not None:
            watch.catch_signals()
        self._captured = CapturedStep(self, self.capture) if self.capture != "off" else None
        try:
            for epoch in range(start, end):
                if self.stop_training:
                    break
                metrics = self._run_epoch(batches(epoch), epoch, n_images,
                                          scheduler if scheduler_step == "batch" else None, watch=watch,
                                          scheduler=scheduler, path=path, position=position)
                position = None
                if scheduler is not None and scheduler_step == "epoch":
                    self._step_scheduler(scheduler)
                if validation is not None:
                    metrics.update({f"val_{k}": v for k, v in self.evaluate(*validation).items()})
                self.on_epoch_end(metrics)
                if self.verbose and self.dist.is_main:  # one line per epoch, validation included
                    log.info(" ".join(f"{k}={v}" for k, v in metrics.items()))
                self.history.append(metrics)
                if path is not None:
                    self.save_checkpoint(path, scheduler)
                    watch.saved()
                for callback in self.callbacks:
                    callback(metrics)
                if watch.stop and epoch + 1 < end and not self.stop_training:  # the signal came at the epoch end
                    raise Preempted(f"stopped by {watch.signal_name()} after epoch {epoch + 1}: {path} holds the "
                                    "run; continue it with --resume")
        except RuntimeError as error:  # e.g. a collective inside DDP's forward/backward: another rank is gone
            comm = not isinstance(error, distributed.DistributedError) and distributed.is_comm_error(error)
            if self.dist.active and comm:
                raise distributed.failure(self.dist, "training", error) from error
            raise
        finally:
            watch.release_signals()
            self._data_generator = None
            self._captured = None
        self.model.eval()
        return self.history

    def _run_epoch(self, batches: Iterable[Batch], epoch: int, n_images: int | None,
                   batch_scheduler: LRScheduler | None, *, watch: BatchWatch, scheduler: LRScheduler | None = None,
                   path: Path | None = None, position: dict[str, Any] | None = None) -> dict[str, Any]:
        """One epoch; ``position`` (from a mid-epoch checkpoint) skips the batches trained before it was written."""
        totals = torch.zeros(4, dtype=torch.float64, device=self.device)
        show = self.verbose and self.dist.is_main
        epoch_rng, done, elapsed, seen = self._data_rng_state(), 0, 0.0, 0
        batches = iter(batches)
        if position is not None:
            epoch_rng, done, elapsed = position["epoch_rng"], position["batch"], position["elapsed"]
            totals += position["totals"].to(self.device)
            seen = self._skip_batches(batches, done, epoch_rng)
        bar = progress(total=n_images, initial=seen, desc=f"epoch {epoch + 1}", unit="img", enabled=show,
                       leave=False)
        t0 = time.perf_counter() - elapsed
        lr = self.optimizer.param_groups[0]["lr"]
        for i, (x, y) in enumerate(batches, start=done):
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            lr = self.optimizer.param_groups[0]["lr"]  # the LR of this update (a per-batch scheduler moves it on)
            stats = self.train_batch(x, y)
            totals += stats
            if batch_scheduler is not None:
                self._step_scheduler(batch_scheduler)
            bar.update(len(x))
            if show and i % 10 == 0:
                bar.set_postfix(self._summary(totals, time.perf_counter() - t0), refresh=False)
            watch.push(epoch, i, stats[0])
            if watch.stop or watch.due:
                watch.flush()  # this batch's flags too: nothing non-finite is ever saved
                if path is not None:
                    self.save_checkpoint(path, scheduler, position={
                        "batch": i + 1, "totals": totals, "elapsed": time.perf_counter() - t0, "epoch_rng": epoch_rng})
                    watch.saved()
                if watch.stop:
                    bar.close()
                    raise Preempted(f"stopped by {watch.signal_name()} after batch {i + 1} of epoch {epoch + 1}: "
                                    f"{path} holds the run up to that batch; continue it with --resume")
            if self.stop_training:
                break
        watch.flush()
        elapsed = time.perf_counter() - t0
        bar.close()
        distributed.all_reduce_sum(totals, self.dist)
        return {"epoch": epoch + 1, **self._summary(totals, elapsed), "time_s": round(elapsed, 3),
                "lr": float(f"{lr:.6g}")}  # the last update's: a finished cycle's next value can be < 0

    def _step_scheduler(self, scheduler: LRScheduler) -> None:
        """``scheduler.step()``. Under fp16 the grad scaler skips ``optimizer.step()`` while it lowers its scale
        after an overflow (typically the first batches), and torch then warns that the scheduler stepped
        first; the schedule is still the intended one, so that warning alone is silenced."""
        if self.scaler is None:
            scheduler.step()
            return
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r"Detected call of `lr_scheduler\.step\(\)` before")
            scheduler.step()

    def _data_rng_state(self) -> dict[str, Any]:
        """The RNG states that decide an epoch's batches: the global ones (a DataLoader's shuffling and workers'
        seeds) and a DataLoader's own generator."""
        generator = self._data_generator
        return {"global": ckpt.rng_state(), "loader": generator.get_state() if generator is not None else None}

    def _skip_batches(self, batches: Iterator[Batch], n: int, epoch_rng: dict[str, Any]) -> int:
        """Draw the first ``n`` batches of an epoch again, from the RNG states it started with, so that the next
        ones are the batches (order, augmentation) the stopped run would have trained on; returns their images.
        The training RNGs are then put back to the checkpoint's (DataLoader workers' own transforms are drawn
        afresh unless the loader was created for this epoch)."""
        now = ckpt.rng_state(self.generator)
        ckpt.set_rng_state(epoch_rng["global"])
        if epoch_rng["loader"] is not None and self._data_generator is not None:
            self._data_generator.set_state(epoch_rng["loader"])
        seen = sum(len(next(batches)[1]) for _ in range(n))
        ckpt.set_rng_state(now, self.generator)
        return seen

    @staticmethod
    def _summary(totals: torch.Tensor, elapsed: float) -> dict[str, float]:
        loss, clean, adv, n = totals.tolist()
        n = max(n, 1)
        return {"loss": round(loss / n, 4), "clean_acc": round(clean / n, 4), "adv_acc": round(adv / n, 4),
                "images_per_s": round(n / max(elapsed, 1e-9), 1)}

    @staticmethod
    def _batch_stats(loss: torch.Tensor, clean_pred: torch.Tensor, adv_pred: torch.Tensor,
                     y: torch.Tensor) -> torch.Tensor:
        b = y.shape[0]
        return torch.stack([loss.detach().double() * b, (clean_pred == y).sum().double(),
                            (adv_pred == y).sum().double(), y.new_full((), b, dtype=torch.float64)])

    # -- checkpoints -------------------------------------------------------------------------------------------

    def state_dict(self, scheduler: LRScheduler | None = None,
                   position: dict[str, Any] | None = None) -> dict[str, Any]:
        """Everything exact resume needs (collective under DDP: the RNG states of all ranks are gathered);
        ``position``: where in the current epoch a mid-epoch checkpoint is taken (``batch``, this rank's ``totals``,
        ``elapsed`` seconds, the ``epoch_rng`` states)."""
        return {
            "format": ckpt.FORMAT,
            "framework": type(self).__name__,
            "epoch": len(self.history),
            "batch": position["batch"] if position is not None else 0,
            "history": [dict(m) for m in self.history],
            "world_size": self.dist.world_size,
            "seed": self.seed,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": scheduler.state_dict() if scheduler is not None else None,
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "ranks": distributed.all_gather_objects(
                {"rng": ckpt.rng_state(self.generator), "state": _to_cpu(self.rank_state()),
                 "position": _to_cpu(position), "data_generator": self._data_rng_state()["loader"]}, self.dist),
            "trainer": self.extra_state(),
            "stop_training": self.stop_training,
        }

    def load_state_dict(self, state: dict[str, Any], scheduler: LRScheduler | None = None) -> dict[str, Any] | None:
        """Restore :meth:`state_dict` (on every rank); returns this rank's position in a stopped epoch, if any."""
        if state["framework"] != type(self).__name__:
            raise UserError(f"the checkpoint was written by {state['framework']}, not {type(self).__name__}")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if scheduler is not None:
            if state["scheduler"] is None:
                raise UserError("the checkpoint has no scheduler state but a scheduler was given")
            scheduler.load_state_dict(state["scheduler"])
        if self.scaler is not None and state["scaler"] is not None:
            self.scaler.load_state_dict(state["scaler"])
        ranks = state["ranks"]
        mine: dict[str, Any] = ranks[self.dist.rank] if len(ranks) == self.dist.world_size else ranks[0]
        if len(ranks) != self.dist.world_size:
            warnings.warn(f"the checkpoint comes from {len(ranks)} processes, this run has {self.dist.world_size}: "
                          "every rank takes rank 0's RNG and per-rank states", stacklevel=3)
        ckpt.set_rng_state(mine["rng"], self.generator)
        self.seed = int(state["seed"])
        self.history = [dict(m) for m in state["history"]]
        self.load_extra_state(state["trainer"])
        self.load_rank_state(mine["state"])
        self.stop_training = bool(state["stop_training"])
        if self._data_generator is not None and mine.get("data_generator") is not None:
            self._data_generator.set_state(mine["data_generator"])
        return mine.get("position")

    def save_checkpoint(self, path: str | os.PathLike[str], scheduler: LRScheduler | None = None,
                        position: dict[str, Any] | None = None) -> None:
        """Write :meth:`state_dict` to ``path`` atomically (rank 0; every rank must call it under DDP, and every
        rank raises the one-line error of a failed write)."""
        state = self.state_dict(scheduler, position)
        distributed.on_main(self.dist, lambda: ckpt.save_checkpoint(path, state))

    # -- evaluation --------------------------------------------------------------------------------------------

    def validation_attack(self) -> dict[str, Any]:
        """PGD settings for per-epoch validation: the trainer's eps, :func:`~art_he.defaults.pgd_step` steps, 10
        iterations."""
        eps = getattr(self, "eps", 0.0)
        return {"eps": eps, "eps_step": pgd_step(eps), "max_iter": 10}

    @torch.no_grad()
    def _predict(self, x: torch.Tensor) -> torch.Tensor:
        with self.autocast():
            return self.forward(x).argmax(1)

    def eval_generator(self, key: int = 0) -> torch.Generator:
        """A generator for evaluation attacks (seeded by seed, epoch, rank and ``key``), so that validation
        never draws from the training stream: a run gives the same weights with or without it."""
        generator = torch.Generator(device=self.device)
        return generator.manual_seed(derived_seed(self.seed, len(self.history), self.dist.rank, key))

    def _correct_batches(self, x_t: torch.Tensor, y_t: torch.Tensor, batch_size: int, generator: torch.Generator | None,
                         attack: dict[str, Any]) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Per batch, whether each image is classified correctly, clean and under PGD (``attack`` settings)."""
        generator = generator if generator is not None else self.eval_generator()
        self.model.eval()
        for start in range(0, len(x_t), batch_size):
            xb, yb = x_t[start : start + batch_size], y_t[start : start + batch_size]
            xa = self.attack(xb, yb, self.objective.attack_loss, generator=generator, **attack)
            yield self._predict(xb) == yb, self._predict(xa) == yb

    def correct(self, x: ArrayLike, y: ArrayLike, batch_size: int = 256, *, generator: torch.Generator | None = None,
                **attack: Any) -> tuple[np.ndarray, np.ndarray]:
        """Per-image correctness ``(clean, adversarial)`` as boolean arrays in the order of ``x``: the model in eval
        mode, under this trainer's PGD on the attack loss (``attack``: ``eps``, ``eps_step``, ``max_iter``), in
        batches of ``batch_size`` drawing random starts from ``generator`` (default :meth:`eval_generator`)."""
        x_t, y_t = self._eval_tensors(x, y)
        batches = list(self._correct_batches(x_t, y_t, batch_size, generator, attack))
        if not batches:
            return np.zeros(0, bool), np.zeros(0, bool)
        clean, adv = (torch.cat(parts).cpu().numpy() for parts in zip(*batches))
        return clean, adv

    def correct_counts(self, x_t: torch.Tensor, y_t: torch.Tensor, batch_size: int = 256, *,
                       generator: torch.Generator | None = None, **attack: Any) -> torch.Tensor:
        """``[clean correct, adversarial correct, n]`` of the model in eval mode under PGD (``attack`` settings),
        summed over ranks."""
        counts = torch.zeros(3, dtype=torch.float64, device=self.device)
        for clean, adv in self._correct_batches(x_t, y_t, batch_size, generator, attack):
            counts += torch.stack([clean.sum(), adv.sum(), clean.new_full((), len(clean), dtype=torch.long)]).double()
        return distributed.all_reduce_sum(counts, self.dist)

    def evaluate(self, x: ArrayLike, y: ArrayLike, batch_size: int = 256) -> dict[str, float]:
        """Clean and PGD-10 accuracy (CE on the attack logits) of the current model, in eval mode.

        Under DDP every rank must call it: each evaluates its ``rank::world_size`` share and the counts are summed.
        """
        x_t, y_t = self._eval_tensors(x, y)
        if self.dist.active:
            x_t, y_t = x_t[self.dist.rank :: self.dist.world_size], y_t[self.dist.rank :: self.dist.world_size]
        clean, adv, n = self.correct_counts(x_t, y_t, batch_size, **self.validation_attack()).tolist()
        return {"clean_acc": round(clean / max(n, 1), 4), "adv_acc": round(adv / max(n, 1), 4)}

    # -- helpers -----------------------------------------------------------------------------------------------

    def _global_batches(self, n: int, batch_size: int) -> list[tuple[int, int]]:
        """``(start, size)`` of each global batch in the shuffled order; sizes are multiples of the world size
        (the remainder of the last batch is dropped), and a last batch of one sample per rank is skipped."""
        world = self.dist.world_size
        if batch_size % world:
            raise UserError(f"batch_size {batch_size} is the global batch and must be divisible by the number "
                             f"of processes ({world})")
        if n < world:
            raise UserError(f"{n} training samples cannot be shared by {world} processes")
        spans: list[tuple[int, int]] = []
        for start in range(0, n, batch_size):
            size = min(batch_size, n - start) // world * world
            if size // world >= 2 or (start == 0 and size):
                spans.append((start, size))
        return spans

    def _check_no_augment(self) -> None:
        if self.augment:
            raise UserError("augment=True applies to fit(); give fit_loader/fit_generator data whose loader applies "
                            "the transforms (e.g. torchvision's RandomCrop and RandomHorizontalFlip)")

    @staticmethod
    def _reject(kwargs: dict[str, Any]) -> None:
        if kwargs:
            raise TypeError(f"unexpected keyword arguments: {sorted(kwargs)}")

    def _epoch_generator(self, epoch: int) -> torch.Generator:
        """The generator of epoch ``epoch``'s batch order."""
        return torch.Generator().manual_seed(derived_seed(self.seed, epoch, ORDER_KEY))

    def _eval_tensors(self, x: ArrayLike, y: ArrayLike) -> Batch:
        """``x, y`` on the device: images already there unchecked (labels moved, one-hot ones to indices), anything
        else checked and converted."""
        if isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor) and x.device == self.device:
            return self._to_device(x, y)
        return self._as_tensors(x, y)

    def _as_tensors(self, x: ArrayLike, y: ArrayLike) -> Batch:
        x_checked, y_checked = check_xy(x, y, self.classifier.input_shape, self.classifier.nb_classes)
        x_t = torch.as_tensor(x_checked, dtype=self.dtype).to(self.device)
        y_t = torch.as_tensor(y_checked).long().to(self.device)
        return x_t, y_t

    def _to_device(self, x: torch.Tensor, y: torch.Tensor) -> Batch:
        if y.dim() == 2:
            y = y.argmax(1)
        return x.to(self.device, dtype=self.dtype, non_blocking=True), y.to(self.device, non_blocking=True).long()

    @staticmethod
    def _make_preprocess(classifier: PyTorchClassifier) -> Callable[[torch.Tensor], torch.Tensor]:
        ops = [op for op in classifier.preprocessing_operations if not _is_identity(op)]
        if not ops:
            return lambda x: x
        if not classifier.all_framework_preprocessing:
            raise UserError("art_he trainers need torch preprocessing (PyTorch preprocessors or mean/std); "
                             f"got {[type(p).__name__ for p in ops]}")
        return lambda x: classifier._apply_preprocessing(x, None, fit=False, no_grad=False)[0]


def _is_identity(op: object) -> bool:
    """ART adds ``StandardisationMeanStd(0, 1)`` by default; skipping it saves an op per forward pass."""
    mean, std = getattr(op, "mean", None), getattr(op, "std", None)
    return mean is not None and std is not None and bool(np.all(np.asarray(mean) == 0) and np.all(np.asarray(std) == 1))
