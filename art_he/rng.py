"""Seeding libraries that draw from the global random generators, without leaving the globals changed.

Our own attacks take explicit generators. Some libraries draw from numpy's and torch's global generators
instead: ART's random starts (PGD, Square, ZOO, the feature attack), pyautoattack (it reseeds torch itself)
and imagecorruptions. :func:`global_seed` seeds the globals for them and puts the previous states back.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch


@contextmanager
def global_seed(seed: int) -> Iterator[None]:
    """Inside: numpy's and torch's global generators seeded with ``seed``; after: their previous states.

    CUDA generators are saved, seeded and restored only when CUDA is initialised (seeding them otherwise would
    queue a seed that lands whenever CUDA starts).
    """
    np_state, torch_state = np.random.get_state(), torch.get_rng_state()
    cuda = torch.cuda.is_initialized()
    cuda_states = torch.cuda.get_rng_state_all() if cuda else None
    np.random.seed(seed % 2**32)
    torch.default_generator.manual_seed(seed)
    if cuda:
        torch.cuda.manual_seed_all(seed)
    try:
        yield
    finally:
        np.random.set_state(np_state)
        torch.set_rng_state(torch_state)
        if cuda_states is not None:
            torch.cuda.set_rng_state_all(cuda_states)
