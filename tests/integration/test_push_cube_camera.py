"""WAM-Push-Cube-Camera with 4 envs: the camera group is each env's own view; frames in a generated dataset are the
camera's output for the same step, the final frame of an episode (recorded before Isaac Lab's reset) is what the
camera sees of the stored final state; rendering is deterministic for a fixed seed on the CPU."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from wam_isaac.data import DatasetReader, DatasetWriter, iter_episodes
from wam_isaac.labels.labeler import labeler_cfg_for
from wam_isaac.rollout.driver import RolloutDriver
from wam_isaac.rollout.policies import make_policy

pytestmark = pytest.mark.integration

TASK = "WAM-Push-Cube-Camera"
NUM_ENVS = 4
STEPS = 30


def _short_episodes(env_cfg) -> None:
    env_cfg.episode_length_s = 0.4  # 10 control steps: time-outs inside the run, so final frames exist


@pytest.fixture(scope="module")
def run(make_env, tmp_path_factory):
    """A 30-step scripted dataset; the camera's output after every step; then the env itself (kept open)."""
    out = tmp_path_factory.mktemp("camera") / "d"
    with make_env(TASK, num_envs=NUM_ENVS, configure=_short_episodes) as env:
        camera = env.scene["camera"]
        after_step = []
        policy = make_policy("scripted", env, TASK, noise_std=0.1)
        factory = lambda specs: DatasetWriter(out, TASK, "test", specs, episodes_per_shard=3)  # noqa: E731
        driver = RolloutDriver(env, policy, factory, labeler_cfg_for(TASK, horizons=(1,)))
        stats = driver.run(STEPS, on_step=lambda step: after_step.append(camera.data.output["rgb"].torch.clone()))
        yield env, out, stats, torch.stack(after_step).numpy()


def test_frames_are_uint8_views_of_each_env(run):
    env, out, stats, after_step = run
    assert stats.transitions == NUM_ENVS * STEPS
    assert after_step.shape == (STEPS, NUM_ENVS, 64, 64, 3) and after_step.dtype == np.uint8
    first = after_step[0]
    for a in range(NUM_ENVS):  # each env's cube and goal were drawn at random: no two views are alike
        for b in range(a + 1, NUM_ENVS):
            assert np.abs(first[a].astype(int) - first[b]).sum() > 1000
    blue = (first[..., 2] > 150) & (first[..., 0] < 120)  # the cube (0.1, 0.4, 0.9)
    green = (first[..., 1] > 150) & (first[..., 0] < 120) & (first[..., 2] < 120)  # the goal disc
    assert blue.sum(axis=(1, 2)).min() >= 6 and green.sum(axis=(1, 2)).min() >= 2


def test_dataset_frames_equal_the_camera_output_of_the_same_step(run):
    """Step t of an episode holds the frame the camera rendered before action t: the output after env step
    (global) g - 1 for the episode's step at global step g; the first episodes start from env.reset's frame."""
    env, out, _, after_step = run
    checked = 0
    with DatasetReader(out) as reader:
        for episode_id, record in reader.episodes.items():
            frames = reader.rows(episode_id, "obs/camera")
            episode = reader.episode(episode_id)
            end = STEPS if episode.attrs["budget_end"] else None
            # the global step of the episode's first step: episodes of an env are back to back
            first = _first_global_step(reader, episode_id, record.env_id)
            for t in range(1 if first == 0 else 0, len(frames)):
                np.testing.assert_array_equal(frames[t], after_step[first + t - 1, record.env_id])
                checked += 1
            if end is not None:  # a budget-end episode's final frame is the output after the last step
                np.testing.assert_array_equal(episode.final["obs/camera"], after_step[-1, record.env_id])
    assert checked == NUM_ENVS * STEPS - NUM_ENVS


def _first_global_step(reader, episode_id: int, env_id: int) -> int:
    return sum(r.num_samples for i, r in reader.episodes.items() if r.env_id == env_id and i < episode_id)


def test_final_frame_shows_the_final_state_not_the_reset(run):
    """Re-render each timed-out episode's stored final state (arm joints, cube, goal marker) in its env: the camera
    sees the stored final frame again; the next episode's first frame (after the reset) differs from it."""
    env, out, _, _ = run
    camera, robot, cube, marker = (env.scene[name] for name in ("camera", "robot", "cube", "goal_marker"))
    origins = env.scene.env_origins
    episodes = [episode for _, episode in iter_episodes(out) if not episode.attrs["budget_end"]]
    assert len(episodes) >= NUM_ENVS * 2, "every env should time out at least twice in 30 steps"
    for episode in episodes[:NUM_ENVS]:
        ids = torch.tensor([episode.env_id], device=env.device)
        before = camera.data.output["rgb"].torch[episode.env_id].cpu().numpy().astype(int)
        final = {key: torch.as_tensor(value, device=env.device)[None] for key, value in episode.final.items()}
        robot.write_joint_position_to_sim_index(position=final["states/robot/joint_pos"], env_ids=ids)
        for asset, name in ((cube, "cube"), (marker, "goal_marker")):
            pose = final[f"states/{name}/root_pose"].clone()
            pose[:, :3] += origins[ids]
            asset.write_root_pose_to_sim_index(root_pose=pose, env_ids=ids)
        env.sim.forward()
        camera.update(0.0, force_recompute=True)
        rendered = camera.data.output["rgb"].torch[episode.env_id].cpu().numpy()
        stored = episode.final["obs/camera"]
        assert np.abs(rendered.astype(int) - stored).max() <= 1, "the final frame is not the final state's view"
        assert np.abs(rendered - before).sum() > 1000, "the camera did not render the written state"
        assert np.abs(stored.astype(int) - episode.data["obs/camera"][0]).sum() > 1000


def test_rendering_is_deterministic_for_a_fixed_seed(run):
    env = run[0]
    actions = torch.zeros(NUM_ENVS, 3, device=env.device)

    def frames(seed: int) -> np.ndarray:
        obs, _ = env.reset(seed=seed)
        stack = [obs["camera"].clone()]
        for _ in range(3):
            obs, *_ = env.step(actions)
            stack.append(obs["camera"].clone())
        return torch.stack(stack).cpu().numpy()

    first, again, other = frames(11), frames(11), frames(12)
    np.testing.assert_array_equal(first, again)
    assert np.abs(first.astype(int) - other).sum() > 1000  # another seed draws other reset poses
