"""The one epoch loop under every art_he trainer.

A trainer subclass says how to craft adversarial inputs (:meth:`ATTrainer.perturb`) and which loss to
minimise (:meth:`ATTrainer.compute_loss`); FreeAT, whose replays interleave both, overrides
:meth:`ATTrainer.train_batch`. Everything else is here: data on the device, bf16 autocast and
channels_last, the model in eval mode while attacking and train mode for the update, any torch LR
scheduler, tqdm progress, per-epoch metrics and validation.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import nullcontext

import numpy as np
import torch
from art.defences.trainer import Trainer
from art.estimators.classification import PyTorchClassifier
from torch import nn
from tqdm.auto import tqdm

from art_he.attacks.train_time import pgd
from art_he.heads import objective_of
from art_he.validation import check_number, check_xy

PRECISIONS = ("auto", "fp32", "bf16")
Batch = tuple[torch.Tensor, torch.Tensor]
EpochCallback = Callable[[dict], None]
PER_BATCH_SCHEDULERS = (torch.optim.lr_scheduler.OneCycleLR, torch.optim.lr_scheduler.CyclicLR)


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes bf16 natively (CUDA with bf16 support; a CPU with AVX512-BF16/AMX)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    return False


def resolve_precision(precision: str, device: torch.device) -> str:
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose from {PRECISIONS}")
    if precision == "auto":
        return "bf16" if native_bf16(device) else "fp32"
    return precision


class ATTrainer(Trainer):
    """Base of the adversarial trainers: ``fit`` on numpy arrays, ``fit_loader`` on a torch ``DataLoader``.

    :param classifier: an ART ``PyTorchClassifier`` (or :class:`~art_he.HEPyTorchClassifier`) with an optimizer.
        With an ordinary last layer the baseline framework is trained; with a ``HypersphereHead`` its HE
        (or m-HE) version.
    :param precision: ``"auto"`` (bf16 autocast where the device has native bf16, else fp32), ``"fp32"``, ``"bf16"``.
    :param channels_last: keep 4-D inputs and the model in channels_last memory format (faster convolutions).
    :param seed: seed of the batch order and of the attacks' random starts.
    :param verbose: show tqdm progress bars.
    """

    #: whether the loop needs an extra no-grad forward for clean accuracy (frameworks that train on
    #: clean inputs too get it from their loss)
    clean_forward: bool = True

    def __init__(
        self,
        classifier: PyTorchClassifier,
        *,
        precision: str = "auto",
        channels_last: bool = True,
        seed: int | None = None,
        verbose: bool = True,
    ) -> None:
        if not isinstance(classifier, PyTorchClassifier):
            raise TypeError(f"classifier must be an ART PyTorchClassifier, got {type(classifier).__name__}")
        if classifier.optimizer is None:
            raise ValueError("the classifier has no optimizer; pass optimizer=... when building it")
        super().__init__(classifier)
        self.model: nn.Module = classifier.model
        self.optimizer: torch.optim.Optimizer = classifier.optimizer
        self.device: torch.device = classifier.device
        self.objective = objective_of(self.model)
        clip = classifier.clip_values
        self.clip = (float(np.min(clip[0])), float(np.max(clip[1]))) if clip is not None else (-math.inf, math.inf)
        self.precision = resolve_precision(precision, self.device)
        self.channels_last = bool(channels_last) and len(classifier.input_shape) == 3
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(int(seed) if seed is not None else int(torch.seed() % 2**63))
        self.verbose = verbose
        self.history: list[dict] = []
        self.callbacks: list[EpochCallback] = []
        self._preprocess = self._make_preprocess(classifier)
        if self.channels_last:
            self.model.to(memory_format=torch.channels_last)

    # -- pieces subclasses use ---------------------------------------------------------------------------------

    def autocast(self):
        """Autocast context for forward passes: bf16 when ``precision`` resolved to ``"bf16"``."""
        if self.precision == "bf16":
            return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)
        return nullcontext()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The model's raw outputs (cosines for HE) on inputs in the classifier's input space."""
        return self.model(self._preprocess(x))

    def attack(self, x: torch.Tensor, target, loss_fn, *, eps, eps_step, max_iter, random_init="uniform"):
        """Linf PGD against :meth:`forward` under this trainer's autocast, clip box and generator."""
        return pgd(
            self.forward, x, target, loss_fn, eps=eps, eps_step=eps_step, max_iter=max_iter,
            random_init=random_init, clip=self.clip, autocast=self.autocast(), generator=self.generator,
        )

    def perturb(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Craft the adversarial batch (model in eval mode, no parameter gradients)."""
        raise NotImplementedError

    def compute_loss(
        self, x: torch.Tensor, x_adv: torch.Tensor, y: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
        """``(loss, clean_outputs or None, adversarial_outputs)`` with the model in train mode."""
        raise NotImplementedError

    def optimizer_step(self, loss: torch.Tensor) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()

    def train_batch(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """One step; returns ``[loss * B, clean correct, adversarial correct, B]`` as a device tensor."""
        self.model.eval()
        x_adv = self.perturb(x, y)
        clean_pred = None
        if self.clean_forward:
            with torch.no_grad(), self.autocast():
                clean_pred = self.forward(x).argmax(1)
        self.model.train()
        with self.autocast():
            loss, out_clean, out_adv = self.compute_loss(x, x_adv, y)
        self.optimizer_step(loss)
        if clean_pred is None:
            clean_pred = out_clean.detach().argmax(1)
        return self._batch_stats(loss, clean_pred, out_adv.detach().argmax(1), y)

    # -- the loop ----------------------------------------------------------------------------------------------

    def fit(
        self,
        x: np.ndarray,
        y: np.ndarray,
        validation_data: tuple[np.ndarray, np.ndarray] | None = None,
        batch_size: int = 128,
        nb_epochs: int = 20,
        scheduler=None,
        **kwargs,
    ) -> list[dict]:
        """Train on numpy arrays (``y`` integer or one-hot); returns the per-epoch metrics."""
        check_number("batch_size", batch_size, low=1, integer=True)
        x_t, y_t = self._as_tensors(x, y)
        n = len(x_t)

        def batches(epoch: int) -> Iterator[Batch]:
            perm = torch.randperm(n, generator=self._epoch_generator(epoch)).to(self.device)
            for start in range(0, n, batch_size):
                idx = perm[start : start + batch_size]
                if len(idx) > 1 or n == 1:
                    yield x_t[idx], y_t[idx]

        return self._fit(batches, n, nb_epochs, validation_data, scheduler, **kwargs)

    def fit_loader(
        self,
        loader: Iterable[Batch],
        nb_epochs: int = 20,
        validation_data: tuple[np.ndarray, np.ndarray] | None = None,
        scheduler=None,
        **kwargs,
    ) -> list[dict]:
        """Train on a torch ``DataLoader`` (or any iterable of ``(x, y)`` tensor batches), e.g. with augmentation."""
        try:
            n = len(loader.dataset)  # type: ignore[attr-defined]
        except (AttributeError, TypeError):
            n = None

        def batches(epoch: int) -> Iterator[Batch]:
            sampler = getattr(loader, "sampler", None)
            if hasattr(sampler, "set_epoch"):
                sampler.set_epoch(epoch)
            for xb, yb in loader:
                yield self._to_device(xb, yb)

        return self._fit(batches, n, nb_epochs, validation_data, scheduler, **kwargs)

    def fit_generator(self, generator, nb_epochs: int = 20, **kwargs) -> list[dict]:
        """Train from an ART ``DataGenerator``; a ``PyTorchDataGenerator`` goes through its ``DataLoader``."""
        loader = getattr(generator, "iterator", None)
        if isinstance(loader, torch.utils.data.DataLoader):
            return self.fit_loader(loader, nb_epochs=nb_epochs, **kwargs)
        steps = max(1, math.ceil(generator.size / generator.batch_size))

        def numpy_batches() -> Iterator[Batch]:
            for _ in range(steps):
                xb, yb = generator.get_batch()
                xb, yb = self._as_tensors(xb, yb)
                yield xb, yb

        return self._fit(lambda epoch: numpy_batches(), generator.size, nb_epochs, kwargs.pop("validation_data", None),
                         kwargs.pop("scheduler", None), **kwargs)

    def _fit(self, batches, n_images, nb_epochs, validation_data, scheduler, scheduler_step: str | None = None):
        check_number("nb_epochs", nb_epochs, low=1, integer=True)
        if validation_data is not None:
            validation_data = self._as_tensors(*validation_data)
        if scheduler_step is None:
            scheduler_step = "batch" if isinstance(scheduler, PER_BATCH_SCHEDULERS) else "epoch"
        if scheduler_step not in ("batch", "epoch"):
            raise ValueError(f"scheduler_step must be 'batch' or 'epoch', got {scheduler_step!r}")
        start = len(self.history)
        for epoch in range(start, start + nb_epochs):
            metrics = self._run_epoch(batches(epoch), epoch, n_images, scheduler if scheduler_step == "batch" else None)
            if scheduler is not None and scheduler_step == "epoch":
                scheduler.step()
            if validation_data is not None:
                metrics.update({f"val_{k}": v for k, v in self.evaluate(*validation_data).items()})
            self.history.append(metrics)
            for callback in self.callbacks:
                callback(metrics)
        self.model.eval()
        return self.history

    def _run_epoch(self, batches: Iterable[Batch], epoch: int, n_images: int | None, batch_scheduler) -> dict:
        totals = torch.zeros(4, dtype=torch.float64, device=self.device)
        bar = tqdm(total=n_images, desc=f"epoch {epoch + 1}", unit="img", disable=not self.verbose, leave=False)
        t0 = time.perf_counter()
        for i, (x, y) in enumerate(batches):
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            totals += self.train_batch(x, y)
            if batch_scheduler is not None:
                batch_scheduler.step()
            bar.update(len(x))
            if i % 10 == 0 and self.verbose:
                bar.set_postfix(self._summary(totals, time.perf_counter() - t0), refresh=False)
        elapsed = time.perf_counter() - t0
        bar.close()
        metrics = {"epoch": epoch + 1, **self._summary(totals, elapsed), "time_s": round(elapsed, 3),
                   "lr": self.optimizer.param_groups[0]["lr"]}
        if self.verbose:
            tqdm.write(" ".join(f"{k}={v}" for k, v in metrics.items()))
        return metrics

    @staticmethod
    def _summary(totals: torch.Tensor, elapsed: float) -> dict:
        loss, clean, adv, n = totals.tolist()
        n = max(n, 1)
        return {"loss": round(loss / n, 4), "clean_acc": round(clean / n, 4), "adv_acc": round(adv / n, 4),
                "images_per_s": round(n / max(elapsed, 1e-9), 1)}

    @staticmethod
    def _batch_stats(loss, clean_pred, adv_pred, y) -> torch.Tensor:
        b = y.shape[0]
        return torch.stack([loss.detach().double() * b, (clean_pred == y).sum().double(),
                            (adv_pred == y).sum().double(), torch.tensor(float(b), dtype=torch.float64,
                                                                          device=y.device)])

    # -- evaluation --------------------------------------------------------------------------------------------

    def validation_attack(self) -> dict:
        """PGD settings for per-epoch validation: the trainer's eps, ``eps/4`` steps, 10 iterations."""
        eps = getattr(self, "eps", 0.0)
        return {"eps": eps, "eps_step": eps / 4, "max_iter": 10}

    @torch.no_grad()
    def _predict(self, x: torch.Tensor) -> torch.Tensor:
        with self.autocast():
            return self.forward(x).argmax(1)

    def evaluate(self, x, y, batch_size: int = 256) -> dict:
        """Clean and PGD-10 accuracy (CE on the attack logits) of the current model, in eval mode."""
        x_t, y_t = (x, y) if isinstance(x, torch.Tensor) and x.device == self.device else self._as_tensors(x, y)
        self.model.eval()
        settings = self.validation_attack()
        clean = adv = 0
        for start in range(0, len(x_t), batch_size):
            xb, yb = x_t[start : start + batch_size], y_t[start : start + batch_size]
            clean += int((self._predict(xb) == yb).sum())
            xa = self.attack(xb, yb, self.objective.attack_loss, **settings)
            adv += int((self._predict(xa) == yb).sum())
        return {"clean_acc": round(clean / len(x_t), 4), "adv_acc": round(adv / len(x_t), 4)}

    # -- helpers -----------------------------------------------------------------------------------------------

    def _epoch_generator(self, epoch: int) -> torch.Generator:
        return torch.Generator().manual_seed(self.base_seed + epoch)

    @property
    def base_seed(self) -> int:
        return self.generator.initial_seed()

    def _as_tensors(self, x, y) -> Batch:
        x, y = check_xy(x, y, self.classifier.input_shape, self.classifier.nb_classes)
        x_t = torch.as_tensor(x, dtype=torch.float32).to(self.device)
        y_t = torch.as_tensor(y).long().to(self.device)
        return x_t, y_t

    def _to_device(self, x: torch.Tensor, y: torch.Tensor) -> Batch:
        if y.dim() == 2:
            y = y.argmax(1)
        return x.to(self.device, dtype=torch.float32, non_blocking=True), y.to(self.device, non_blocking=True).long()

    @staticmethod
    def _make_preprocess(classifier: PyTorchClassifier) -> Callable[[torch.Tensor], torch.Tensor]:
        ops = classifier.preprocessing_operations
        if not ops:
            return lambda x: x
        if not classifier.all_framework_preprocessing:
            raise ValueError("art_he trainers need torch preprocessing (PyTorch preprocessors or mean/std); "
                             f"got {[type(p).__name__ for p in ops]}")
        return lambda x: classifier._apply_preprocessing(x, None, fit=False, no_grad=False)[0]
