"""The Backpropamine environments: gymnasium's own API checker, determinism under a seed, and the task
logic (what a perfect agent earns, what the maze looks like)."""

from __future__ import annotations

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from expc.runtime.plastic.envs import CUE_REWARD_ID, MAZE_ID, CueReward, GridMaze, grid_maze, make


@pytest.mark.parametrize("env", [CueReward(), CueReward(cues=3, cue_size=2, trials=4, steps_per_trial=1),
                                 GridMaze(), GridMaze(size=7, horizon=30, wall_penalty=0.1)])
def test_gymnasium_env_checker_accepts_them(env):
    check_env(env, skip_render_check=True)


def test_registered_with_gymnasium():
    assert make({"id": CUE_REWARD_ID, "kwargs": {"trials": 2}, "horizon": None}).unwrapped.trials == 2
    env = make({"id": MAZE_ID, "kwargs": {"size": 7, "horizon": 10}, "horizon": None})
    assert env.unwrapped.size == 7 and env.observation_space.shape == (16,)


def episode(env, seed: int, policy) -> tuple[list[np.ndarray], list[float]]:
    obs, info = env.reset(seed=seed)
    seen, rewards = [obs], []
    done = False
    while not done:
        obs, r, terminated, truncated, _ = env.step(policy(env, obs))
        seen.append(obs)
        rewards.append(r)
        done = terminated or truncated
    return seen, rewards


def test_same_seed_same_episode_other_seed_other_cues():
    rng = np.random.default_rng(0)
    env = CueReward()

    def random_policy(e, obs):
        return int(rng.integers(2))

    a, _ = episode(env, 3, random_policy)
    b, _ = episode(env, 3, random_policy)
    c, _ = episode(env, 4, random_policy)
    assert np.array_equal(a[0], b[0]) and not np.array_equal(a[0], c[0])


def test_cue_reward_pays_the_trials_to_an_agent_that_knows_the_cue_and_nothing_to_a_constant_one():
    env = CueReward(cues=4, cue_size=8, trials=15, steps_per_trial=3)

    def oracle(e, obs):  # answers at the response step from the (hidden) target: +1 per trial
        trial = e.t // e.steps_per_trial
        return int(e.target in e.pairs[trial])

    obs, rewards = episode(env, 0, oracle)
    assert sum(rewards) == 15 and len(rewards) == 45
    assert [r for r in rewards if r] == [1.0] * 15
    assert all(o[16] == 1.0 for o in obs[2:45:3])  # the reward shows at the step after the response
    assert all(o[17] == 1.0 for o in obs[1:45:3])  # the response flag
    totals = [sum(episode(env, s, lambda e, o: 1)[1]) for s in range(200)]
    assert abs(np.mean(totals)) < 1.5  # the rewarded cue is in half of the pairs


def test_maze_layout_and_rewards():
    lab = grid_maze(9)
    assert lab[0].all() and lab[:, -1].all() and lab[2, 2] and lab[6, 4] and not lab[4, 4] and not lab[3, 3]
    env = GridMaze(size=9, horizon=200)
    obs, info = env.reset(seed=1)
    assert obs[:9].tolist() == lab[3:6, 3:6].reshape(-1).tolist() and obs[9] == 1.0
    # walking into a wall does not move the agent
    env.pos = (1, 1)
    env.step(0)
    assert env.pos == (1, 1)
    # stepping onto the goal pays and teleports
    goal = env.goal
    for action, (dr, dc) in enumerate(GridMaze.MOVES):
        start = (goal[0] - dr, goal[1] - dc)
        if not lab[start]:
            env.pos = start
            _, r, _, _, _ = env.step(action)
            assert r == 10.0 and env.pos != goal and not lab[env.pos]
            break
    _, rewards = episode(GridMaze(size=9, horizon=200), 0, lambda e, o: 3)
    assert len(rewards) == 200
