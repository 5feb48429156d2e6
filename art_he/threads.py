"""CPU threads of the ``art-he`` commands: how many, and how idle OpenMP threads wait.

Torch's CPU kernels run on OpenMP threads that, by default, spin while they wait for each other. When another
process holds one of the cores, a spinning thread waits for one that is not scheduled, and a 2-thread run
becomes several times slower than a 1-thread run (``benchmarks/threads.py`` measures it). ``art-he`` therefore
asks OpenMP to wait passively (``OMP_WAIT_POLICY=PASSIVE``, unless the variable is set) and runs one thread per
core this process may use: its CPU affinity, capped by a cgroup CPU quota (containers, batch schedulers).
``$OMP_NUM_THREADS`` and ``--threads`` override the count.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

WAIT_POLICY = "OMP_WAIT_POLICY"
CGROUP = Path("/sys/fs/cgroup")


def cgroup_cpu_limit(root: str | os.PathLike[str] = CGROUP) -> int | None:
    """Whole CPUs allowed by a cgroup quota (v2 ``cpu.max``, v1 ``cpu.cfs_quota_us``), rounded up; ``None``
    without a quota."""
    root = Path(root)
    try:
        if (root / "cpu.max").is_file():
            quota, period = (root / "cpu.max").read_text().split()[:2]
        else:
            quota = (root / "cpu" / "cpu.cfs_quota_us").read_text().strip()
            period = (root / "cpu" / "cpu.cfs_period_us").read_text().strip()
    except (OSError, ValueError):
        return None
    if quota in ("max", "-1") or int(period) <= 0:
        return None
    return max(1, math.ceil(int(quota) / int(period)))


def usable_cores() -> int:
    """CPUs this process may run on: its affinity mask, capped by the cgroup quota."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    limit = cgroup_cpu_limit()
    return min(cores, limit) if limit else cores


def prefer_passive_wait() -> None:
    """``OMP_WAIT_POLICY=PASSIVE`` unless it is set. OpenMP reads it once, when torch is first imported."""
    os.environ.setdefault(WAIT_POLICY, "PASSIVE")


def set_threads(threads: int | None = None) -> int:
    """Torch's intra-op threads: ``threads``, else ``$OMP_NUM_THREADS`` where it is set (torch read it already),
    else :func:`usable_cores`. Returns the number in use."""
    import torch

    if threads is not None or not os.environ.get("OMP_NUM_THREADS"):
        torch.set_num_threads(threads or usable_cores())
    return torch.get_num_threads()
