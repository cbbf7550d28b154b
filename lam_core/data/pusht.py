"""Push-T episodes as clips with real actions (docs/DESIGN.md#action-worlds: the external benchmark
for the controller and planning).

gym-pusht (``gym_pusht/PushT-v0``, pixels 96×96) is an optional dependency, imported only when a
clip is recorded. The action is the agent's target position in ``Box(0, 512, (2,))``; clips store it
normalised to [-1, 1] (``a / 256 - 1``). As in the action worlds (App. A), each real frame is
repeated ``tubelet`` times so that one action maps to one model step.
"""

from __future__ import annotations

import functools

import numpy as np

from lam_core.clip import Clip
from lam_core.video import resize_center_crop

__all__ = ["PUSHT_FPS", "denormalize_action", "normalize_action", "record_pusht_clip"]

PUSHT_FPS = 10.0  # the environment's control rate
_HIGH = 512.0


def normalize_action(action: np.ndarray) -> np.ndarray:
    """Push-T target positions in [0, 512] to [-1, 1]."""
    return (np.asarray(action, np.float32) / (_HIGH / 2) - 1).astype(np.float32)


def denormalize_action(action: np.ndarray) -> np.ndarray:
    """Inverse of :func:`normalize_action`: [-1, 1] to target positions in [0, 512]."""
    return ((np.clip(np.asarray(action, np.float32), -1, 1) + 1) * (_HIGH / 2)).astype(np.float32)


@functools.cache
def _env():
    """One headless Push-T environment per process (creating it costs more than an episode)."""
    try:
        import gym_pusht  # noqa: F401  (registers gym_pusht/PushT-v0)
        import gymnasium
    except ImportError as e:
        raise ImportError(
            f"Push-T needs the optional package gym-pusht: pip install gym-pusht "
            f"(or pip install 'lam-studio[pusht]'); import failed: {e}"
        ) from e
    return gymnasium.make("gym_pusht/PushT-v0", obs_type="pixels", render_mode="rgb_array")


def record_pusht_clip(seed: int, num_steps: int = 8, tubelet: int = 2,
                      size: int | None = 64) -> Clip:
    """Record a Push-T episode driven by a random smooth policy.

    The agent's target drifts with momentum and, in half of the episodes, is pulled towards the
    block, so that the block gets pushed.

    Args:
        seed: environment reset seed and policy seed.
        num_steps: real frames K (one environment step between two of them).
        tubelet: frames per model step; each real frame is repeated this many times.
        size: output side (96×96 frames resized with antialiasing), or ``None`` to keep 96.

    Returns:
        A clip of ``K * tubelet`` frames, ``actions (K - 1, 2)`` in [-1, 1] and ``meta`` with
        ``agent_pos (K, 2)``, ``block_pose (K, 3)``, ``goal_pose (3,)`` and ``raw_actions``.

    Raises:
        ImportError: gym-pusht is not installed.
    """
    env = _env()
    rng = np.random.default_rng([seed, 3])
    obs, info = env.reset(seed=int(seed))
    frames, agent, block = [obs], [info["pos_agent"]], [info["block_pose"]]
    target = np.asarray(info["pos_agent"], np.float64)
    velocity = rng.normal(0, 20, 2)
    pull = 0.15 if rng.random() < 0.5 else 0.0
    raw = []
    for _ in range(num_steps - 1):
        velocity = 0.8 * velocity + rng.normal(0, 12, 2)
        velocity += pull * (np.asarray(info["block_pose"][:2]) - target)
        target = np.clip(target + velocity, 0, _HIGH)
        raw.append(target.astype(np.float32))
        obs, _, _, _, info = env.step(raw[-1])
        frames.append(obs)
        agent.append(info["pos_agent"])
        block.append(info["block_pose"])
    frames = np.stack(frames).astype(np.uint8)
    if size is not None and size != frames.shape[1]:
        frames = resize_center_crop(frames, size)
    raw = np.stack(raw) if raw else np.zeros((0, 2), np.float32)
    meta = {"world": "pusht", "seed": int(seed), "tubelet": tubelet,
            "agent_pos": np.asarray(agent, np.float32), "block_pose": np.asarray(block, np.float32),
            "goal_pose": np.asarray(info["goal_pose"], np.float32), "raw_actions": raw}
    return Clip(frames=np.repeat(frames, tubelet, axis=0), fps=PUSHT_FPS * tubelet,
                actions=normalize_action(raw), meta=meta)
