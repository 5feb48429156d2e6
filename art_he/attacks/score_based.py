"""Score-based Linf attacks with a finite-difference gradient estimate (the base of SPSA and NES).

Appendix B.2 of the paper (Eq. 18, 23): with the C&W margin ``J(x, y) = Z(x)_y - max_{i != y} Z(x)_i``,

    g = 1/q * sum_i (J(x + sigma u_i, y) - J(x - sigma u_i, y)) / (2 sigma) * u_i
    x <- clip_{x0, eps}(x - eps_step * sign(g))

``u_i`` are Rademacher (SPSA) or Gaussian (NES) directions. Only the iterate is clipped to the box, not the
probes ``x +- sigma u_i``: clipped probes make the difference one-sided on saturated pixels (0 or 1), which
halves the estimate there; the model is queried up to ``sigma`` outside the box instead. Each step costs ``2 q``
queries per image plus one query that checks whether the image is already adversarial; adversarial images are
frozen (no more queries).
The attack only reads the classifier's scores. With a ``PyTorchClassifier`` whose preprocessing is in torch the
queries stay on the classifier's device, in batches of ``query_batch_size``; otherwise they go through
``predict``.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from art.attacks.attack import EvasionAttack
from art.estimators.classification import PyTorchClassifier
from art.estimators.classification.classifier import ClassifierMixin
from art.estimators.estimator import BaseEstimator

from art_he.attacks.train_time import project
from art_he.errors import UserError
from art_he.losses import margin_score
from art_he.progress import progress
from art_he.validation import check_number


class ScoreBasedAttack(EvasionAttack):  # type: ignore[misc]  # ART ships no type information
    """Linf sign-gradient attack on an estimated gradient of the margin ``J``; subclasses pick the directions.

    :param estimator: an ART classifier (only its scores are used).
    :param eps: Linf radius; the result stays within ``eps`` of ``x`` and inside ``clip_values``.
    :param eps_step: step size of the sign update.
    :param max_iter: number of update steps.
    :param nb_samples: ``q``, the number of random directions per step (``2 q`` queries).
    :param sigma: finite-difference radius.
    :param targeted: minimise ``max_{i != t} Z_i - Z_t`` towards the target labels ``y`` instead.
    :param batch_size: images attacked together.
    :param query_batch_size: queries per forward pass.
    :param early_stop: freeze images once adversarial (saves queries; the paper's accuracy is unchanged).
    :param seed: seed of the random directions.
    :param verbose: show a tqdm progress bar.

    After ``generate``: ``nb_queries_`` (total queries), ``first_success_`` (per image, the number of steps
    after which it was first adversarial: 0 if it already was, -1 if never) and ``queries_by_step_`` (queries
    spent to reach step t and check it), so that one run of ``max_iter`` steps gives the
    accuracy and the query count after any smaller number of steps.
    """

    attack_params = EvasionAttack.attack_params + [
        "eps", "eps_step", "max_iter", "nb_samples", "sigma", "targeted", "batch_size", "query_batch_size",
        "early_stop", "seed", "verbose",
    ]
    _estimator_requirements = (BaseEstimator, ClassifierMixin)

    def __init__(
        self,
        estimator: ClassifierMixin,
        eps: float = 0.3,
        eps_step: float = 0.01,
        max_iter: int = 20,
        nb_samples: int = 128,
        sigma: float = 1e-3,
        targeted: bool = False,
        batch_size: int = 32,
        query_batch_size: int = 4096,
        early_stop: bool = True,
        seed: int | None = None,
        verbose: bool = False,
    ) -> None:
        super().__init__(estimator=estimator)
        self.eps = eps
        self.eps_step = eps_step
        self.max_iter = max_iter
        self.nb_samples = nb_samples
        self.sigma = sigma
        self._targeted = targeted
        self.batch_size = batch_size
        self.query_batch_size = query_batch_size
        self.early_stop = early_stop
        self.seed = seed
        self.verbose = verbose
        self._check_params()
        self.nb_queries_ = 0
        self.first_success_: np.ndarray | None = None
        self.queries_by_step_: np.ndarray | None = None

    # -- checks --------------------------------------------------------------------------------------------------

    def _check_params(self) -> None:
        check_number("eps", self.eps, low=0.0)
        check_number("eps_step", self.eps_step, low=0.0, strict=True)
        check_number("max_iter", self.max_iter, low=0, integer=True)
        check_number("nb_samples", self.nb_samples, low=1, integer=True)
        check_number("sigma", self.sigma, low=0.0, strict=True)
        check_number("batch_size", self.batch_size, low=1, integer=True)
        check_number("query_batch_size", self.query_batch_size, low=1, integer=True)
        if not isinstance(self.targeted, bool):
            raise TypeError(f"targeted must be a bool, got {type(self.targeted).__name__}")
        if self.seed is not None:
            check_number("seed", self.seed, low=0, integer=True)

    # -- the model as a black box --------------------------------------------------------------------------------

    def _torch_path(self) -> bool:
        est = self.estimator
        return isinstance(est, PyTorchClassifier) and (
            not est.preprocessing_operations or est.all_framework_preprocessing
        )

    def _device(self) -> torch.device:
        return self.estimator.device if self._torch_path() else torch.device("cpu")

    @torch.no_grad()
    def _scores(self, x: torch.Tensor) -> torch.Tensor:
        """Classifier scores for a batch of queries (counted)."""
        self.nb_queries_ += len(x)
        outs = []
        for start in range(0, len(x), self.query_batch_size):
            chunk = x[start : start + self.query_batch_size]
            if self._torch_path():
                est = self.estimator
                est.model.eval()
                xp, _ = est._apply_preprocessing(chunk, y=None, fit=False)
                outs.append(est._model(xp)[-1].float())
            else:
                scores = self.estimator.predict(chunk.cpu().numpy(), batch_size=self.query_batch_size)
                outs.append(torch.as_tensor(scores, dtype=torch.float32, device=x.device))
        return torch.cat(outs)

    def _objective(self, scores: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """``J`` to minimise: ``Z_y - max_{i != y} Z_i`` (targeted: ``max_{i != t} Z_i - Z_t``); < 0 means success."""
        margin = margin_score(scores, y)  # max_{i != y} Z_i - Z_y
        return margin if self.targeted else -margin

    def directions(self, shape: tuple[int, ...], generator: torch.Generator, device: torch.device) -> torch.Tensor:
        """``q`` random directions per image: Rademacher +-1 (SPSA), drawn as the signs of Gaussians (faster)."""
        z = torch.randn(shape, generator=generator, device=device)
        return torch.where(z >= 0, 1.0, -1.0)

    # -- the attack ----------------------------------------------------------------------------------------------

    def estimate_gradient(self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Eq. 23: antithetic (central) finite differences of ``J`` along ``q`` directions per image.

        The probes are not clipped to the box, so the difference stays central on saturated pixels.
        """
        b, q = x.shape[0], self.nb_samples
        u = self.directions((b, q, *x.shape[1:]), generator, x.device)
        probes = torch.cat([(x[:, None] + self.sigma * u), (x[:, None] - self.sigma * u)], dim=1)
        probes = probes.reshape(b * 2 * q, *x.shape[1:])
        j = self._objective(self._scores(probes), y.repeat_interleave(2 * q)).reshape(b, 2, q)
        coeff = (j[:, 0] - j[:, 1]) / (2 * self.sigma)  # (b, q)
        return torch.einsum("bq,bq...->b...", coeff, u) / q

    def generate(self, x: np.ndarray, y: np.ndarray | None = None, **kwargs: object) -> np.ndarray:
        """Adversarial examples for ``x``; ``y`` are true labels (default: predictions) or, if targeted, targets."""
        if self.targeted and y is None:
            raise UserError("a targeted attack needs target labels y")
        if x.ndim < 2 or tuple(x.shape[1:]) != tuple(self.estimator.input_shape):
            raise UserError(f"x must have shape (N, {self.estimator.input_shape}), got {x.shape}")
        clip = self.estimator.clip_values
        box = (float(np.min(clip[0])), float(np.max(clip[1]))) if clip is not None else (-math.inf, math.inf)
        if y is None:
            y_idx = np.argmax(self.estimator.predict(x, batch_size=self.batch_size), axis=1)
        else:
            y_idx = np.argmax(y, axis=1) if y.ndim == 2 else np.asarray(y)
        y_idx = y_idx.astype(np.int64)
        if len(y_idx) != len(x):
            raise UserError(f"x and y differ in length: {len(x)} != {len(y_idx)}")
        device = self._device()
        generator = torch.Generator(device=device)
        if self.seed is None:
            generator.seed()  # a non-deterministic seed for this generator only
        else:
            generator.manual_seed(int(self.seed))
        self.nb_queries_ = 0
        trace = np.zeros(self.max_iter + 1, dtype=np.int64)  # queries spent in each step
        x_adv = np.array(x, dtype=np.float32, copy=True)
        first = np.full(len(x), -1, dtype=np.int64)
        bar = progress(total=len(x), desc=type(self).__name__, unit="img", enabled=self.verbose)
        for start in range(0, len(x), self.batch_size):
            sl = slice(start, start + self.batch_size)
            x0 = torch.as_tensor(x_adv[sl], device=device)
            yb = torch.as_tensor(y_idx[sl], device=device)
            adv, first[sl] = self._attack_batch(x0, yb, generator, box, trace)
            x_adv[sl] = adv.cpu().numpy()
            bar.update(len(x0))
        bar.close()
        self.first_success_ = first
        self.queries_by_step_ = np.cumsum(trace)
        return x_adv

    def _attack_batch(self, x0: torch.Tensor, y: torch.Tensor, generator: torch.Generator,
                      box: tuple[float, float], trace: np.ndarray) -> tuple[torch.Tensor, np.ndarray]:
        """Sign steps on one batch, the iterate clipped to the eps-ball and ``box``; adds each step's queries to
        ``trace``; returns the images and the step of first success per image."""
        low, high = box
        x = x0.clone()
        first = torch.full((len(x),), -1, dtype=torch.long, device=x.device)
        active = torch.ones(len(x), dtype=torch.bool, device=x.device)
        for step in range(self.max_iter + 1):
            queries_before = self.nb_queries_
            idx = active.nonzero().squeeze(1)
            done = self._objective(self._scores(x[idx]), y[idx]) < 0
            new = idx[done & (first[idx] < 0)]
            first[new] = step
            if self.early_stop:
                active[idx[done]] = False
            trace[step] += self.nb_queries_ - queries_before
            if step == self.max_iter or not bool(active.any()):
                break
            queries_before = self.nb_queries_
            idx = active.nonzero().squeeze(1)
            grad = self.estimate_gradient(x[idx], y[idx], generator)
            moved = x[idx] - self.eps_step * grad.sign()
            x[idx] = project(moved, x0[idx], self.eps, (low, high))
            trace[step + 1] += self.nb_queries_ - queries_before
        return x, first.cpu().numpy()
