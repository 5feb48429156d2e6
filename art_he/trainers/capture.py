"""The training step recorded once per batch shape and replayed for every batch (``capture=`` of the trainers).

:meth:`ATTrainer.train_step <art_he.trainers.base.ATTrainer.train_step>` (the attack, the update's forward and
backward, the batch's statistics) reads no tensor value on the host, so one recording of its operations serves
every batch of a shape. Two recorders:

* ``"cuda-graph"``: a ``torch.cuda.CUDAGraph`` over static input buffers. One launch replays the whole step without
  Python and without the per-kernel launch cost that makes small models launch-bound on a GPU. CUDA only.
* ``"fx"``: the step traced into a graph of ATen operations (``make_fx``) and replayed by that graph's code, without
  modules, hooks or autograd. It runs on any device, and it is how the capture is tested on a CPU: tracing
  fails on any host read of a tensor (the ``.item()`` that also breaks a CUDA graph), and a replay runs none of
  the step's Python, as a CUDA graph does not.

What stays outside the recording, so that a captured run is bitwise the eager one:

* the optimizer step, after each replay, on the gradients the replay leaves in ``.grad``: LR schedules and the
  update stay what they are (torch's foreach SGD reads a tensor learning rate on the host);
* the random starts, drawn from the trainer's generators before each replay, in the order and shapes the step
  draws them (recorded at the last warm-up step), into the buffers the recording reads;
* :data:`WARMUP` eager steps per batch shape before the recording: they create what is made on first use (the
  optimizer's momentum buffers, FreeAT-like carried state; on CUDA, cuDNN's choices), which the recording must
  find in place. A batch of another shape (the last one of an epoch) gets its own warm-up and recording.

The HE head (``weight_norm="project"``) decides on the host whether ``W`` changed since its last projection; a
recording would keep the decision taken while it was made (no projection, if an eager forward, e.g. validation,
had just projected). A recorded step therefore starts with ``head.project_()``, which leaves rows already on the
sphere bit for bit (the eager step projects at its first forward: the same values). The eager optimizer step
after each replay bumps the version of ``W``, so the next eager forward projects as it would after an eager step.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import torch
from torch import nn

from art_he.heads import find_head

#: the ``capture`` settings: ``"off"`` (eager), ``"fx"``, ``"cuda-graph"``. Off by default everywhere until the
#: suite (``benchmarks/gpu_suite.py``) has measured it on a GPU; meant to become the CUDA default where it is faster
CAPTURES = ("off", "fx", "cuda-graph")
#: eager steps per batch shape before its recording
WARMUP = 2
#: the random starts a step may draw
NOISE_KINDS = ("uniform", "normal")
#: what a recording is made for: the shapes, dtypes and strides of a batch
_Key = tuple[tuple[int, ...], torch.dtype, tuple[int, ...], tuple[int, ...], torch.dtype]
#: the step as the recordings run it: ``(x, y) -> stats``
_Step = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True, eq=False)
class Draw:
    """One random draw of a step: ``kind`` (``U[0, 1)`` or ``N(0, 1)``) of ``shape`` from ``generator``, of which
    this rank takes rows ``rank::world`` (DDP draws the global batch, so that N processes equal one)."""

    kind: str
    shape: tuple[int, ...]
    dtype: torch.dtype
    device: torch.device
    generator: torch.Generator
    rank: int = 0
    world: int = 1

    def sample(self) -> torch.Tensor:
        fn = torch.rand if self.kind == "uniform" else torch.randn
        noise = fn(self.shape, device=self.device, dtype=self.dtype, generator=self.generator)
        return noise[self.rank :: self.world] if self.world > 1 else noise

    def same(self, other: Draw) -> bool:
        return (self.kind, self.shape, self.dtype, self.device, self.rank, self.world) == (
            other.kind, other.shape, other.dtype, other.device, other.rank, other.world
        ) and self.generator is other.generator


class Stepper(Protocol):
    """What a recording needs of its trainer (an :class:`~art_he.trainers.base.ATTrainer`, which imports this
    module): the model, its device, the step, and the hook through which the step draws its random starts."""

    model: nn.Module
    device: torch.device
    _draw: Callable[[Draw], torch.Tensor]

    def train_step(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor: ...


class CapturedStep:
    """``trainer.train_step(x, y)`` replayed from one recording per batch shape (see the module docstring)."""

    def __init__(self, trainer: Stepper, mode: str) -> None:
        self.trainer, self.mode = trainer, mode
        self.params = list(trainer.model.parameters())
        head = find_head(trainer.model)
        self.head = head if head is not None and head.weight_norm == "project" else None
        self.recordings: dict[_Key, _Recording] = {}
        self.warmups: Counter[_Key] = Counter()
        self.draws: dict[_Key, list[Draw]] = {}
        # torch leaves Stream unannotated
        self.side_stream = (torch.cuda.Stream(trainer.device)  # type: ignore[no-untyped-call]
                            if mode == "cuda-graph" else None)

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        key: _Key = (tuple(x.shape), x.dtype, x.stride(), tuple(y.shape), y.dtype)
        recording = self.recordings.get(key)
        if recording is not None:
            return recording.replay(x, y)
        if self.warmups[key] < WARMUP:
            self.warmups[key] += 1
            self.draws[key] = []
            return self._warmup(x, y, self.draws[key])
        recorder = _CudaGraph if self.mode == "cuda-graph" else _FxGraph
        recording = self.recordings[key] = recorder(self, x, y, self.draws.pop(key))
        return recording.stats_of_first_step

    def _warmup(self, x: torch.Tensor, y: torch.Tensor, draws: list[Draw]) -> torch.Tensor:
        """An eager step that notes its draws (on CUDA on a side stream, as torch's graph capture asks)."""
        def note(draw: Draw) -> torch.Tensor:
            draws.append(draw)
            return draw.sample()

        if self.side_stream is None:
            return self._with_draws(note, self.trainer.train_step, x, y)
        current = torch.cuda.current_stream(self.trainer.device)
        self.side_stream.wait_stream(current)
        with torch.cuda.stream(self.side_stream):
            stats = self._with_draws(note, self.trainer.train_step, x, y)
        current.wait_stream(self.side_stream)
        return stats

    def recorded_step(self, draws: list[Draw], x: torch.Tensor, y: torch.Tensor, *noise: torch.Tensor) -> torch.Tensor:
        """What is recorded: the head's projection, then the step, its draws served from ``noise``."""
        served = iter(zip(draws, noise))

        def serve(draw: Draw) -> torch.Tensor:
            expected, buffer = next(served, (None, None))
            if expected is None or not draw.same(expected):
                raise RuntimeError(f"the step drew {draw} where its warm-up drew {expected}: a captured step must "
                                   "draw the same random tensors every time")
            assert buffer is not None  # served in pairs with expected
            return buffer

        def step(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            if self.head is not None:
                self.head.project_()
            return self.trainer.train_step(x, y)

        return self._with_draws(serve, step, x, y)

    def _with_draws(self, draw: Callable[[Draw], torch.Tensor], step: _Step, x: torch.Tensor,
                    y: torch.Tensor) -> torch.Tensor:
        trainer = self.trainer
        trainer._draw = draw
        try:
            return step(x, y)
        finally:
            trainer._draw = Draw.sample

    def replayed(self, grads: list[torch.Tensor | None]) -> None:
        """After a replay: its gradients in ``.grad``, where the optimizer reads them."""
        for p, g in zip(self.params, grads):
            p.grad = g


class _Recording:
    stats_of_first_step: torch.Tensor

    def replay(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class _CudaGraph(_Recording):
    """The step as a CUDA graph over static buffers (a capture records without running: it is replayed at once)."""

    def __init__(self, owner: CapturedStep, x: torch.Tensor, y: torch.Tensor, draws: list[Draw]) -> None:
        self.owner, self.draws = owner, draws
        self.x, self.y = x.clone(), y.clone()
        self.noise = [d.sample() for d in draws]
        self.device = owner.trainer.device  # captured and replayed with it current (cuda:1 need not be)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.device(self.device), torch.cuda.graph(self.graph):
            self.stats = owner.recorded_step(draws, self.x, self.y, *self.noise)
        self.grads = [p.grad for p in owner.params]
        self.stats_of_first_step = self._replay()

    def replay(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        self.x.copy_(x)
        self.y.copy_(y)
        for buffer, draw in zip(self.noise, self.draws):
            buffer.copy_(draw.sample())
        return self._replay()

    def _replay(self) -> torch.Tensor:
        with torch.cuda.device(self.device):
            self.graph.replay()
        self.owner.replayed(self.grads)
        return self.stats.clone()


class _FxGraph(_Recording):
    """The step as a traced graph of ATen operations (tracing runs the step once, on real tensors)."""

    def __init__(self, owner: CapturedStep, x: torch.Tensor, y: torch.Tensor, draws: list[Draw]) -> None:
        from torch.fx.experimental.proxy_tensor import make_fx

        self.owner, self.draws = owner, draws
        first: list[tuple[torch.Tensor, list[torch.Tensor | None]]] = []

        def step(x: torch.Tensor, y: torch.Tensor,
                 *noise: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor | None]]:
            out = (owner.recorded_step(draws, x, y, *noise), [p.grad for p in owner.params])
            first.append(out)
            return out

        self.graph = make_fx(step)(x, y, *[d.sample() for d in draws])
        self.stats_of_first_step = first[0][0].detach()

    def replay(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        stats: torch.Tensor
        grads: list[torch.Tensor | None]
        with torch.no_grad():
            stats, grads = self.graph(x, y, *[d.sample() for d in self.draws])
        self.owner.replayed(grads)
        return stats
