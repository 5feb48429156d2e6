"""Multi-process training with ``torch.distributed``, as launched by ``torchrun``.

``init_distributed`` reads torchrun's ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``, binds the process to its
GPU, and joins the process group (NCCL on CUDA, gloo on CPU) with a timeout: a rank that dies or stalls makes
every other rank raise :class:`DistributedError` within ``timeout_s`` instead of hanging. The trainers detect
an initialised group themselves (:func:`context`) and then wrap the model in ``DistributedDataParallel``,
shard the data by rank and reduce their metrics.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, DistributedSampler, RandomSampler

from art_he.devices import parse_device
from art_he.errors import UserError

T = TypeVar("T")
#: seconds a collective (or the rendezvous) may wait for a missing rank; ``$ART_HE_DIST_TIMEOUT`` overrides
DEFAULT_TIMEOUT_S = 300.0


class DistributedError(RuntimeError):
    """A collective operation failed or timed out: another rank died, stalled or was killed."""


@dataclass(frozen=True)
class DistContext:
    """Where this process sits: ``rank`` of ``world_size`` processes, ``local_rank`` on its node."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that logs and writes files."""
        return self.rank == 0

    @property
    def active(self) -> bool:
        """Whether more than one process trains together."""
        return self.world_size > 1


def timeout_seconds(timeout_s: float | None = None) -> float:
    value = timeout_s if timeout_s is not None else float(os.environ.get("ART_HE_DIST_TIMEOUT", DEFAULT_TIMEOUT_S))
    if not value > 0:
        raise UserError(f"the distributed timeout must be > 0 seconds, got {value}")
    return value


def init_distributed(device: str | torch.device = "auto", timeout_s: float | None = None) -> DistContext:
    """Join torchrun's process group (``WORLD_SIZE > 1``) or return the single-process context.

    ``device``: ``"auto"`` (the default device), ``"cuda"`` or ``"cpu"`` (:func:`~art_he.devices.parse_device`).
    On CUDA each process is bound to ``cuda:LOCAL_RANK`` (call this before building the model and classifier)
    and the backend is NCCL; on CPU it is gloo. ``timeout_s`` (default ``$ART_HE_DIST_TIMEOUT`` or 300 s) bounds
    every collective.
    """
    dev = parse_device(device)
    if dist.is_available() and dist.is_initialized():
        return context(dev)
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistContext(device=dev)
    missing = [k for k in ("RANK", "MASTER_ADDR", "MASTER_PORT") if k not in os.environ]
    if missing:
        raise UserError(f"WORLD_SIZE={world_size} but {missing} are not set; launch with torchrun")
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", rank))
    timeout = timedelta(seconds=timeout_seconds(timeout_s))
    if dev.type == "cuda":
        if local_rank >= torch.cuda.device_count():
            raise UserError(f"LOCAL_RANK={local_rank} but only {torch.cuda.device_count()} CUDA devices are visible")
        dev = torch.device("cuda", local_rank)
        torch.cuda.set_device(dev)
        # a failed or stalled collective aborts the communicator instead of blocking forever
        os.environ.setdefault("TORCH_NCCL_ASYNC_ERROR_HANDLING", "1")
        dist.init_process_group("nccl", timeout=timeout, device_id=dev)
    else:
        dist.init_process_group("gloo", timeout=timeout)
    return DistContext(rank, world_size, local_rank, dev)


def context(device: str | torch.device = "cpu") -> DistContext:
    """The context of an initialised process group, or the single-process one."""
    dev = parse_device(device)
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return DistContext(device=dev)
    rank = dist.get_rank()
    return DistContext(rank, dist.get_world_size(), int(os.environ.get("LOCAL_RANK", rank)), dev)


def cleanup() -> None:
    """Leave the process group after a barrier (no-op when none is initialised).

    The barrier makes every rank finish its last collective before any rank tears its connections down. On gloo
    it is ``monitored_barrier``, not ``barrier``: gloo's ``barrier`` is queued on its worker threads and keeps the
    collective still in flight alive, so that the worker thread may drop the last reference to that collective's
    Python tensors after this function has returned; at interpreter exit it then needs the GIL, cannot get it, and
    aborts the process ("terminate called without an active exception", SIGABRT, after all the work is done;
    pytorch/pytorch#179291 describes it). ``monitored_barrier`` runs on the calling thread with a tensor of its
    own. Measured with 2 gloo processes on 2 cores (an all_gather, then this): 5 of 60 runs aborted with
    ``barrier``, 5 of 20 with no barrier, 0 of 80 with ``monitored_barrier``.
    """
    if dist.is_available() and dist.is_initialized():
        try:
            if dist.get_world_size() > 1:
                if dist.get_backend() == "gloo":
                    dist.monitored_barrier(wait_all_ranks=True)
                else:
                    dist.barrier()
        finally:
            dist.destroy_process_group()


def failure(ctx: DistContext, what: str, error: BaseException) -> DistributedError:
    return DistributedError(
        f"rank {ctx.rank} of {ctx.world_size}: {what} failed; another process probably died, stalled or was "
        f"killed (timeout {timeout_seconds():.0f} s, set ART_HE_DIST_TIMEOUT to change it): {error}"
    )


_COMM_MARKERS = ("gloo", "nccl", "connection", "timed out", "timeout", "peer", "socket", "broken pipe")


def is_comm_error(error: BaseException) -> bool:
    """Whether ``error`` comes from a collective (a peer died, stalled, or the network failed)."""
    if isinstance(error, dist.DistError):
        return True
    return isinstance(error, RuntimeError) and any(m in str(error).lower() for m in _COMM_MARKERS)


def all_reduce_sum(tensor: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """Sum ``tensor`` over all ranks (in place; returned). Identity in a single process."""
    if ctx.active:
        try:
            dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        except (RuntimeError, dist.DistError) as error:
            raise failure(ctx, "all_reduce", error) from error
    return tensor


def all_gather_objects(obj: T, ctx: DistContext) -> list[T]:
    """``[obj of rank 0, obj of rank 1, ...]`` (picklable objects); ``[obj]`` in a single process."""
    if not ctx.active:
        return [obj]
    out: list[Any] = [None] * ctx.world_size  # filled by all_gather_object
    try:
        dist.all_gather_object(out, obj)
    except (RuntimeError, dist.DistError) as error:
        raise failure(ctx, "all_gather", error) from error
    return out


def on_main(ctx: DistContext, action: Callable[[], T]) -> T | None:
    """``action()`` on rank 0 only (writing a file); a :class:`~art_he.errors.UserError` it raises (a full disk, a
    folder in use) is raised on every rank, so that no rank waits for rank 0 in the next collective. Returns
    rank 0's result there, ``None`` elsewhere."""
    result, error = None, None
    if ctx.is_main:
        try:
            result = action()
        except UserError as caught:
            error = caught
    message = all_gather_objects(None if error is None else str(error), ctx)[0]
    if error is not None:
        raise error
    if message is not None:
        raise UserError(message)
    return result


def broadcast_int(value: int, ctx: DistContext) -> int:
    """Rank 0's ``value`` on every rank (e.g. a random seed)."""
    if not ctx.active:
        return value
    return int(all_gather_objects(int(value), ctx)[0])


def shard_loader(loader: DataLoader[T], ctx: DistContext, seed: int) -> DataLoader[T]:
    """A copy of ``loader`` that reads this rank's shard through a ``DistributedSampler``.

    ``loader.batch_size`` is the global batch; each rank gets ``batch_size // world_size``. A ``RandomSampler``
    becomes a shuffling sampler seeded with ``seed`` (``set_epoch`` is called by the trainer every epoch).
    """
    if not ctx.active or isinstance(loader.sampler, DistributedSampler):
        return loader
    if loader.batch_size is None:
        raise UserError("a DataLoader with a custom batch_sampler cannot be sharded; pass a DistributedSampler")
    if loader.batch_size % ctx.world_size:
        raise UserError(f"batch_size {loader.batch_size} (global) must be divisible by the world size "
                         f"{ctx.world_size}")
    sampler: DistributedSampler[int] = DistributedSampler(
        loader.dataset, num_replicas=ctx.world_size, rank=ctx.rank, shuffle=isinstance(loader.sampler, RandomSampler),
        seed=seed, drop_last=loader.drop_last)
    return DataLoader(
        loader.dataset, batch_size=loader.batch_size // ctx.world_size, sampler=sampler,
        num_workers=loader.num_workers, collate_fn=loader.collate_fn, pin_memory=loader.pin_memory,
        drop_last=loader.drop_last, worker_init_fn=loader.worker_init_fn,
        persistent_workers=loader.persistent_workers if loader.num_workers > 0 else False,
    )
