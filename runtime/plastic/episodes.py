"""The `episodes` value: a seeded, endless stream of episodes of a sequence task, of which the first `n`
are the evaluation set. Cheap to import (pydantic only; numpy when episodes are drawn).

Episode i is a function of (seed, i) alone: `error` and `loss` read episodes 0..n-1, `fit` trains on
episodes n + [step * batch, (step + 1) * batch): fresh ones at every step, as meta-learning needs,
the same ones after a resume, and never the evaluation episodes of the same data.

pattern_completion (Miconi et al. 2018, 2019): `patterns` random binary patterns of `size` bits (+1/-1)
are shown `repeats` times each, in a fresh random order every repeat, each for `show` steps followed
by `gap` steps of zero input; then one of them, chosen at random, is shown for `show` steps with a
share `erase` of its bits zeroed (the probe). The network's output at the probe's last step is read
as one logit per bit; the target is the full pattern. A network can only complete the erased bits by
remembering, within the episode, patterns it has never seen before."""

from __future__ import annotations

from typing import TYPE_CHECKING

from expc.runtime.api import Artifact

if TYPE_CHECKING:
    import numpy as np


class EpisodesData(Artifact):
    """A stream of episodes: the task's settings in JSON (episodes.json holds the same, for people)."""

    tag = "episodes"
    task: str = "pattern_completion"
    settings: dict = {}
    seed: int = 0
    n: int = 1000  # the evaluation set: episodes 0..n-1
    inputs: int = 0
    outputs: int = 0
    steps: int = 0  # time steps per episode
    source: str = ""

    def batch(self, start: int, count: int) -> tuple["np.ndarray", "np.ndarray", "np.ndarray"]:
        """Episodes start..start+count-1: inputs [steps, count, inputs] float32, targets
        [count, outputs] in {0, 1} float32, and the mask [count, outputs] of the bits to complete."""
        import numpy as np

        eps = [pattern_episode(self.settings, self.seed, i) for i in range(start, start + count)]
        x = np.stack([e[0] for e in eps], axis=1)
        return x, np.stack([e[1] for e in eps]), np.stack([e[2] for e in eps])


def episode_rng(seed: int, index: int) -> "np.random.Generator":
    import numpy as np

    return np.random.default_rng([int(seed) % 2**63, int(index), 0x5EED])


def pattern_steps(s: dict) -> int:
    return s["patterns"] * s["repeats"] * (s["show"] + s["gap"]) + s["show"]


def pattern_episode(s: dict, seed: int, index: int):
    """One pattern-completion episode: (inputs [steps, size], target bits [size], erased mask [size])."""
    import numpy as np

    rng = episode_rng(seed, index)
    size, k = s["size"], s["patterns"]
    patterns = rng.choice(np.array([-1.0, 1.0], dtype=np.float32), size=(k, size))
    x = np.zeros((pattern_steps(s), size), dtype=np.float32)
    t = 0
    for _ in range(s["repeats"]):
        for j in rng.permutation(k):
            x[t : t + s["show"]] = patterns[j]
            t += s["show"] + s["gap"]
    target = patterns[int(rng.integers(k))]
    erased = np.zeros(size, dtype=bool)
    erased[rng.choice(size, size=int(round(s["erase"] * size)), replace=False)] = True
    x[t:] = np.where(erased, 0.0, target)
    return x, (target > 0).astype(np.float32), erased
