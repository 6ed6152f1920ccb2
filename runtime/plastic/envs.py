"""The Backpropamine environments (Miconi et al. 2019), registered with gymnasium by expc:

- `CueReward` ("expc/CueReward-v0"), section 4.1: at the start of an episode `cues` random binary
  cues (+1/-1, `cue_size` bits) are drawn and one of them is secretly rewarded. Each trial shows two
  different cues side by side (step 0), asks for a response (step 1: respond 1 if the rewarded cue
  is in the pair, else 0; +1 when right, -1 when wrong), then shows the reward (step 2, and any
  further steps of the trial are blank). The agent can only do better than chance by learning,
  within the episode, which cue pays.
- `GridMaze` ("expc/GridMaze-v0"), section 4.2: a size x size grid with walls on the border and a
  pillar at every (even, even) cell except the centre. The agent starts at the centre and sees the
  3 x 3 cells around it; stepping onto the episode's (unseen) reward cell pays `reward` and teleports
  the agent to a random free cell. Finding the cell again fast needs a memory of where it was.

Both observations end with what a recurrent agent needs to learn from its own experience: the last
reward and a one-hot of the last action (and a bias input and the time in the episode for the maze,
as in the published code)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium import spaces

CUE_REWARD_ID = "expc/CueReward-v0"
MAZE_ID = "expc/GridMaze-v0"


class CueReward(gym.Env):
    metadata = {"render_modes": []}

    def __init__(self, cues: int = 4, cue_size: int = 8, trials: int = 15, steps_per_trial: int = 3):
        if cues < 2 or 2**cue_size < cues:
            raise ValueError(f"need 2 <= cues <= 2**cue_size, got cues = {cues}, cue_size = {cue_size}")
        self.n_cues, self.cue_size, self.trials, self.steps_per_trial = cues, cue_size, trials, steps_per_trial
        self.response_phase = min(1, steps_per_trial - 1)
        # [cue a, cue b, last reward, response step?, last action one-hot]
        self.observation_space = spaces.Box(-1.0, 1.0, shape=(2 * cue_size + 4,), dtype=np.float32)
        self.action_space = spaces.Discrete(2)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        rng = self.np_random
        codes = rng.choice(2**self.cue_size, size=self.n_cues, replace=False)  # distinct cues
        bits = (codes[:, None] >> np.arange(self.cue_size)) & 1
        self.cues = (2.0 * bits - 1.0).astype(np.float32)
        self.target = int(rng.integers(self.n_cues))
        self.pairs = [rng.choice(self.n_cues, size=2, replace=False) for _ in range(self.trials)]
        self.t, self.last_reward, self.last_action = 0, 0.0, -1
        return self._obs(), {"target": self.target}

    def _obs(self) -> np.ndarray:
        obs = np.zeros(self.observation_space.shape, dtype=np.float32)
        trial, phase = divmod(self.t, self.steps_per_trial)
        if phase == 0 and trial < self.trials:
            a, b = self.pairs[trial]
            obs[: self.cue_size], obs[self.cue_size : 2 * self.cue_size] = self.cues[a], self.cues[b]
        n = 2 * self.cue_size
        obs[n] = self.last_reward
        obs[n + 1] = float(phase == self.response_phase)
        if self.last_action >= 0:
            obs[n + 2 + self.last_action] = 1.0
        return obs

    def step(self, action):
        action = int(action)
        trial, phase = divmod(self.t, self.steps_per_trial)
        reward = 0.0
        if phase == self.response_phase:
            right = int(self.target in self.pairs[trial])
            reward = 1.0 if action == right else -1.0
        self.t += 1
        self.last_reward, self.last_action = reward, action
        done = self.t >= self.trials * self.steps_per_trial
        return self._obs(), reward, done, False, {}


def grid_maze(size: int) -> np.ndarray:
    """1 for walls: the border and the (even, even) pillars, the centre left free (as published)."""
    lab = np.ones((size, size), dtype=np.int8)
    lab[1:-1, 1:-1] = 0
    lab[2:-1:2, 2:-1:2] = 1
    lab[size // 2, size // 2] = 0
    return lab


class GridMaze(gym.Env):
    metadata = {"render_modes": []}
    MOVES = ((-1, 0), (1, 0), (0, -1), (0, 1))  # up, down, left, right

    def __init__(self, size: int = 9, horizon: int = 200, reward: float = 10.0, wall_penalty: float = 0.0):
        if size < 5:
            raise ValueError(f"the maze needs size >= 5, got {size}")
        self.size, self.horizon, self.reward, self.wall_penalty = size, horizon, float(reward), float(wall_penalty)
        self.lab = grid_maze(size)
        self.free = [tuple(c) for c in np.argwhere(self.lab == 0)]
        self.centre = (size // 2, size // 2)
        # [3 x 3 view, bias, time in the episode, last reward, last action one-hot]
        high = max(1.0, self.reward, self.wall_penalty)
        self.observation_space = spaces.Box(-high, high, shape=(9 + 3 + 4,), dtype=np.float32)
        self.action_space = spaces.Discrete(4)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        choices = [c for c in self.free if c != self.centre]
        self.goal = choices[int(self.np_random.integers(len(choices)))]
        self.pos, self.t, self.last_reward, self.last_action = self.centre, 0, 0.0, -1
        return self._obs(), {"goal": self.goal}

    def _obs(self) -> np.ndarray:
        obs = np.zeros(self.observation_space.shape, dtype=np.float32)
        r, c = self.pos
        obs[:9] = self.lab[r - 1 : r + 2, c - 1 : c + 2].reshape(-1)
        obs[9], obs[10], obs[11] = 1.0, self.t / self.horizon, self.last_reward
        if self.last_action >= 0:
            obs[12 + self.last_action] = 1.0
        return obs

    def step(self, action):
        action = int(action)
        dr, dc = self.MOVES[action]
        r, c = self.pos[0] + dr, self.pos[1] + dc
        reward = 0.0
        if self.lab[r, c]:
            reward -= self.wall_penalty
        else:
            self.pos = (r, c)
        if self.pos == self.goal:
            reward += self.reward
            elsewhere = [f for f in self.free if f != self.goal]
            self.pos = elsewhere[int(self.np_random.integers(len(elsewhere)))]
        self.t += 1
        self.last_reward, self.last_action = reward, action
        return self._obs(), reward, False, self.t >= self.horizon, {}


def register_envs() -> None:
    if CUE_REWARD_ID not in gym.registry:
        gym.register(id=CUE_REWARD_ID, entry_point=f"{__name__}:CueReward")
    if MAZE_ID not in gym.registry:
        gym.register(id=MAZE_ID, entry_point=f"{__name__}:GridMaze")


def make(config: dict) -> gym.Env:
    """The environment of an env value's JSON config {"id", "kwargs", "horizon"} (EnvTemplate.config)."""
    register_envs()
    extra = {} if config.get("horizon") is None else {"max_episode_steps": int(config["horizon"])}
    return gym.make(config["id"], disable_env_checker=True, **extra, **dict(config.get("kwargs") or {}))
