"""Gymnasium environments for POET and the one function that builds any of them from a JSON config.

- `BipedalWalkerPOET` ("expc/BipedalWalkerPOET-v0"): gymnasium's BipedalWalker with the terrain
  generator of the POET paper (Wang et al. 2019): ground roughness scales the random walk of the
  grass height; pit gaps are drawn from an interval (1 + U(lo, hi) terrain steps, fractional widths
  allowed); stump heights from an interval (width 1 step, not floating, as in the published runs).
  An obstacle kind is present only when its interval is set, as in the published code.
- `PointReach` ("expc/PointReach-v0"): a tiny pure-Python task for fast tests: push a point mass on
  a line to `target` against a constant `wind`.

`make_env(config)` builds `gymnasium.make(id, max_episode_steps=horizon, **ctor_kwargs)`; keyword
arguments that the environment's constructor does not take but that name an existing attribute of the
unwrapped environment (e.g. Pendulum's `max_torque`) are set as attributes after construction.
"""

from __future__ import annotations

import inspect
import math

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.envs.box2d import bipedal_walker as bw

from expc.runtime.poet.spec import BIPEDAL_ID, POINT_ID


class BipedalWalkerPOET(bw.BipedalWalker):
    """BipedalWalker over POET's parameterized terrain (roughness, pit gaps, stumps)."""

    def __init__(
        self,
        render_mode: str | None = None,
        roughness: float = 0.0,
        pit_gap: list[float] | None = None,
        stump_height: list[float] | None = None,
        stump_width: tuple[int, int] = (1, 2),
        stump_float: tuple[int, int] = (0, 1),
    ):
        self.roughness = float(roughness)
        self.pit_gap = None if not pit_gap else [float(x) for x in pit_gap]
        self.stump_height = None if not stump_height else [float(x) for x in stump_height]
        self.stump_width = tuple(stump_width)
        self.stump_float = tuple(stump_float)
        super().__init__(render_mode=render_mode, hardcore=False)
        self.hardcore = self.pit_gap is not None or self.stump_height is not None

    def _generate_terrain(self, hardcore):
        grass, n_states = 0, 1
        stump = pit = -1
        if self.stump_height is not None:
            stump, n_states = n_states, n_states + 1
        if self.pit_gap is not None:
            pit, n_states = n_states, n_states + 1
        step, height = bw.TERRAIN_STEP, bw.TERRAIN_HEIGHT
        rnd = self.np_random
        state, velocity, y = grass, 0.0, height
        counter, oneshot = bw.TERRAIN_STARTPAD, False
        original_y, pit_diff = y, 0.0
        self.terrain, self.terrain_x, self.terrain_y = [], [], []

        def block(poly):
            self.fd_polygon.shape.vertices = poly
            t = self.world.CreateStaticBody(fixtures=self.fd_polygon)
            t.color1, t.color2 = (255, 255, 255), (153, 153, 153)
            self.terrain.append(t)

        for i in range(bw.TERRAIN_LENGTH):
            x = i * step
            self.terrain_x.append(x)
            if state == grass and not oneshot:
                velocity = 0.8 * velocity + 0.01 * np.sign(height - y)
                if i > bw.TERRAIN_STARTPAD:
                    velocity += rnd.uniform(-1, 1) / bw.SCALE
                y += self.roughness * velocity
            elif state == pit and oneshot:
                gap = 1.0 + rnd.uniform(*self.pit_gap)
                counter = math.ceil(gap)
                pit_diff = counter - gap
                poly = [(x, y), (x + step, y), (x + step, y - 4 * step), (x, y - 4 * step)]
                block(poly)
                block([(p[0] + step * gap, p[1]) for p in poly])
                counter += 2
                original_y = y
            elif state == pit and not oneshot:
                y = original_y
                if counter > 1:
                    y -= 4 * step
                if counter == 1:
                    self.terrain_x[-1] -= pit_diff * step
                    pit_diff = 0.0
            elif state == stump and oneshot:
                width = int(rnd.integers(*self.stump_width))
                h = rnd.uniform(*self.stump_height)
                lift = int(rnd.integers(*self.stump_float))
                counter = width
                base = y + lift * step
                block([(x, base), (x + width * step, base), (x + width * step, base + h * step), (x, base + h * step)])
            oneshot = False
            self.terrain_y.append(y)
            counter -= 1
            if counter == 0:
                counter = int(rnd.integers(bw.TERRAIN_GRASS // 2, bw.TERRAIN_GRASS))
                if state == grass and hardcore:
                    state = int(rnd.integers(1, n_states))
                else:
                    state = grass
                oneshot = True

        self.terrain_poly = []
        for i in range(bw.TERRAIN_LENGTH - 1):
            poly = [(self.terrain_x[i], self.terrain_y[i]), (self.terrain_x[i + 1], self.terrain_y[i + 1])]
            self.fd_edge.shape.vertices = poly
            t = self.world.CreateStaticBody(fixtures=self.fd_edge)
            color = (76, 255 if i % 2 == 0 else 204, 76)
            t.color1 = t.color2 = color
            self.terrain.append(t)
            poly += [(poly[1][0], 0), (poly[0][0], 0)]
            self.terrain_poly.append((poly, (102, 153, 76)))
        self.terrain.reverse()


class PointReach(gym.Env):
    """Push a point mass on a line to `target` against a constant `wind`; reward -|x - target| per step.

    Pure Python arithmetic: an episode of 30 steps takes about a millisecond."""

    metadata = {"render_modes": []}

    def __init__(self, target: float = 1.0, wind: float = 0.0, render_mode: str | None = None):
        self.target = float(target)
        self.wind = float(wind)
        self.observation_space = spaces.Box(-np.inf, np.inf, shape=(2,), dtype=np.float64)
        self.action_space = spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float64)
        self.x = self.v = 0.0

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.x = float(self.np_random.uniform(-0.1, 0.1))
        self.v = 0.0
        return np.array([self.x - self.target, self.v]), {}

    def step(self, action):
        a = min(max(float(action[0]), -1.0), 1.0)
        self.v = 0.8 * self.v + 0.2 * (a + self.wind)
        self.x += 0.2 * self.v
        reward = -abs(self.x - self.target)
        return np.array([self.x - self.target, self.v]), reward, False, False, {}


def register_envs() -> None:
    if BIPEDAL_ID not in gym.registry:
        gym.register(id=BIPEDAL_ID, entry_point=f"{__name__}:BipedalWalkerPOET", max_episode_steps=2000)
    if POINT_ID not in gym.registry:
        gym.register(id=POINT_ID, entry_point=f"{__name__}:PointReach", max_episode_steps=30)


class EnvConfigError(ValueError):
    pass


def _constructor_params(env_id: str) -> tuple[set[str], bool]:
    spec = gym.spec(env_id)
    creator = spec.entry_point
    if isinstance(creator, str):
        creator = gym.envs.registration.load_env_creator(creator)
    sig = inspect.signature(creator)
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in sig.parameters.values())
    return set(sig.parameters) - {"self"}, takes_any


def make_env(config: dict) -> gym.Env:
    """Build the environment of a JSON config {"id", "kwargs", "horizon"}."""
    register_envs()
    env_id, kwargs, horizon = config["id"], dict(config.get("kwargs") or {}), config.get("horizon")
    try:
        names, takes_any = _constructor_params(env_id)
    except gym.error.Error as e:
        raise EnvConfigError(f"unknown gymnasium environment {env_id!r}: {e}") from None
    ctor = {k: v for k, v in kwargs.items() if takes_any or k in names}
    attrs = {k: v for k, v in kwargs.items() if k not in ctor}
    extra = {} if horizon is None else {"max_episode_steps": int(horizon)}
    try:
        env = gym.make(env_id, disable_env_checker=True, **extra, **ctor)
    except TypeError as e:
        raise EnvConfigError(f"{env_id}: {e}") from None
    base = env.unwrapped
    for k, v in attrs.items():
        if not hasattr(base, k):
            env.close()
            raise EnvConfigError(
                f"{env_id} takes no argument {k!r} and has no attribute of that name "
                f"(constructor arguments: {', '.join(sorted(names)) or 'none'})"
            )
        setattr(base, k, v)
    return env
