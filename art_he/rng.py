"""Seeds of side streams (:func:`derived_seed`), and seeding libraries that draw from the global random generators
without leaving the globals changed.

Our own draws (batch order, augmentation, attacks) take explicit generators seeded by :func:`derived_seed`. Some
libraries draw from numpy's and torch's global generators instead: ART's random starts (PGD, Square, ZOO, the
feature attack), pyautoattack (it reseeds torch itself) and imagecorruptions. :func:`global_seed` seeds the globals
for them and puts the previous states back.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch


def derived_seed(seed: int, *keys: int) -> int:
    """The seed of the stream ``keys`` (an epoch's batch order, its augmentation, one rank's evaluation attacks) of
    the run seeded ``seed``: ``SeedSequence([seed, *keys])``'s first 64-bit word mod ``2**63``, so that streams of
    neighbouring seeds or keys are unrelated (``seed + epoch`` would make seed ``s`` epoch ``e + 1`` seed ``s + 1``
    epoch ``e``)."""
    return int(np.random.SeedSequence([seed, *keys]).generate_state(1, np.uint64)[0] % 2**63)


@contextmanager
def global_seed(seed: int) -> Iterator[None]:
    """Inside: numpy's and torch's global generators seeded with ``seed``; after: their previous states.

    CUDA generators are saved, seeded and restored only when CUDA is initialised (seeding them otherwise would
    queue a seed that lands whenever CUDA starts).
    """
    np_state, torch_state = np.random.get_state(), torch.get_rng_state()
    cuda = torch.cuda.is_initialized()  # type: ignore[no-untyped-call]  # torch leaves it unannotated
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
