"""DEAP draws from Python's global `random` module; `drawing_from(rng)` seeds that module from a
caller's own generator for the duration and restores it after, so a genome operation or a strategy
step stays a function of its seed. The lock keeps two threads (ctx.map workers) from interleaving
their draws."""

from __future__ import annotations

import random
import threading
from contextlib import contextmanager

_GLOBAL_RANDOM = threading.Lock()


@contextmanager
def drawing_from(rng: random.Random):
    """Run DEAP (which calls the global `random`) on numbers drawn from `rng`."""
    with _GLOBAL_RANDOM:
        state = random.getstate()
        random.seed(rng.getrandbits(64))
        try:
            yield
        finally:
            random.setstate(state)
