"""WAM-Push-Cube-Camera (its depth variant, WAM-Push-Cube-Camera-Depth: the same task, scene and RGB camera plus a
depth group) with 4 envs: the camera group is each env's own view; frames in a generated dataset are the camera's
output for the same step, the final frame of an episode (recorded before Isaac Lab's reset) is what the camera sees
of the stored final state; rendering is deterministic for a fixed seed on the CPU; the visual DR recorded per episode
(per step and in the episodes' DR record) is what was rendered (table colour, camera pose); depth frames are the
camera's distance to the image plane."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch

from wam_isaac.data import DatasetReader, DatasetWriter, iter_episodes
from wam_isaac.data.shards import read_index
from wam_isaac.labels.labeler import labeler_cfg_for
from wam_isaac.rollout.driver import RolloutDriver
from wam_isaac.rollout.policies import make_policy

pytestmark = pytest.mark.integration

TASK = "WAM-Push-Cube-Camera-Depth"
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
        depth_after_step = []

        def on_step(step: int) -> None:
            after_step.append(camera.data.output["rgb"].torch.clone())
            depth_after_step.append(camera.data.output["distance_to_image_plane"].torch.clone())

        stats = driver.run(STEPS, on_step=on_step)
        env.depth_after_step = torch.stack(depth_after_step).numpy()  # [m], (STEPS, NUM_ENVS, 64, 64, 1)
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
    """Re-render each timed-out episode's stored final state (arm joints, cube, goal marker) with its recorded visual
    DR (colours, light, camera pose) in its env: the camera sees the stored final frame again; the next episode's
    first frame (after the reset) differs from it."""
    env, out, _, _ = run
    camera, robot, cube, marker = (env.scene[name] for name in ("camera", "robot", "cube", "goal_marker"))
    visuals = env.event_manager.get_term_cfg("visual_randomization").func
    origins = env.scene.env_origins
    episodes = [episode for _, episode in iter_episodes(out) if not episode.attrs["budget_end"]]
    assert len(episodes) >= NUM_ENVS * 2, "every env should time out at least twice in 30 steps"
    for episode in episodes[:NUM_ENVS]:
        ids = torch.tensor([episode.env_id], device=env.device)
        before = camera.data.output["rgb"].torch[episode.env_id].cpu().numpy().astype(int)
        final = {key: torch.as_tensor(value, device=env.device)[None] for key, value in episode.final.items()}
        recorded = {key.rsplit("/", 1)[1]: value for key, value in final.items() if "/visual_dr/" in key}
        visuals.set_colors(ids, **{k: v for k, v in recorded.items() if not k.startswith("camera_")})
        camera.set_world_poses(recorded["camera_pos"] + origins[ids], recorded["camera_quat"], ids, convention="world")
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


# the Newton Warp tracer's shading of an upward face: ambient 0.5 * sky (0.4, 0.4, 0.45) plus its one directional
# light along (-1, 1, -1) / sqrt(3), n.l = 1 / sqrt(3); linear in the albedo, sRGB-encoded to uint8
TOP_FACE_SHADING = np.array([0.2, 0.2, 0.225]) + 1 / np.sqrt(3)
FOCAL_PX = 24.0 / 20.955 * 64  # focal length / horizontal aperture * width [px]


def _srgb(linear: np.ndarray) -> np.ndarray:
    linear = np.clip(linear, 0.0, 1.0)
    return 255 * np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * linear ** (1 / 2.4) - 0.055)


def _episode_starts(reader):
    """(episode id, frame at step 0, every obs/visual_dr term at every step, goal marker pose at step 0)."""
    for episode_id in reader.episodes:
        visual = {key.rsplit("/", 1)[1]: reader.rows(episode_id, key) for key in reader.keys if "visual_dr/" in key}
        marker = reader.rows(episode_id, "states/goal_marker/root_pose", 0, 1)[0]
        yield episode_id, reader.rows(episode_id, "obs/camera", 0, 1)[0], visual, marker


def _dr_record(reader, episode_id: int) -> dict[str, np.ndarray]:
    """The episode's DR record (``dr/<name>`` of its shard's episode index), without reading its steps."""
    with h5py.File(reader.dataset_dir / reader.record(episode_id).shard, "r") as file:
        index = read_index(file)
    row = int(np.searchsorted(index["episode_id"], episode_id))
    return {name[3:]: values[row] for name, values in index.items() if name.startswith("dr/")}


def test_visual_dr_is_drawn_per_episode_and_recorded_as_rendered(run):
    """Each episode's recorded table albedo and light (constant within the episode, different between episodes)
    predict its frame's table-top colour within 1.5 levels of 255 (seen: <= 0.9): the recorded values are the applied
    ones. The episode's DR record (``dr/event/visual_randomization/<name>``, beside the physical DR) holds exactly the
    values of its per-step ``obs/visual_dr`` terms."""
    _, out, _, _ = run
    colours = []
    with DatasetReader(out) as reader:
        for episode_id, frame, visual, _ in _episode_starts(reader):
            dr = _dr_record(reader, episode_id)
            recorded = {key.rsplit("/", 1)[1]: value for key, value in dr.items() if key.startswith("event/")}
            assert set(recorded) == set(visual) and "cube/body_mass" in dr
            for name, values in visual.items():
                np.testing.assert_array_equal(values, np.broadcast_to(values[0], values.shape), err_msg=name)
                np.testing.assert_array_equal(recorded[name], values[0], err_msg=name)
            first = {name: values[0].astype(np.float64) for name, values in visual.items()}
            albedo = first["table_color"] * first["light_intensity"] * first["light_color"]
            expected = _srgb(np.clip(albedo, 0, 1) * TOP_FACE_SHADING)
            pixels, counts = np.unique(frame.reshape(-1, 3), axis=0, return_counts=True)
            table_top = pixels[counts.argmax()]  # the flat, evenly lit table top fills most of the frame
            assert counts.max() > 0.4 * 64 * 64
            assert np.abs(table_top - expected).max() <= 1.5, (episode_id, table_top, expected, first)
            colours.append(first["table_color"])
    assert len(colours) >= 3 * NUM_ENVS and np.unique(np.round(colours, 4), axis=0).shape[0] == len(colours)
    env = run[0]  # what the term reports applying is what the visual_dr group observes
    observed = env.observation_manager.compute_group("visual_dr")
    recorded = env.event_manager.get_term_cfg("visual_randomization").func.recorded_params()
    assert set(recorded) == set(observed)
    for name, value in recorded.items():
        torch.testing.assert_close(value, observed[name], rtol=0, atol=0, msg=name)


def _project(point: np.ndarray, camera_pos: np.ndarray, camera_quat: np.ndarray) -> tuple[float, float, float]:
    """Pixel (column, row) and forward distance [m] of an env-frame point seen by a camera in Isaac Lab's ``world``
    convention (forward +x, left +y, up +z; quaternion xyzw) with this task's pinhole intrinsics."""
    x, y, z, w = camera_quat
    rotation = np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )
    forward, left, up = rotation.T @ (point - camera_pos)
    return 32 - FOCAL_PX * left / forward, 32 - FOCAL_PX * up / forward, forward


def test_recorded_camera_pose_is_the_rendered_one(run):
    """The goal disc's stored centre, projected with each episode's recorded (jittered) camera pose, lands on the
    green disc in the frame (< 0.8 px on average) closer than with the nominal pose; the recorded poses stay within
    the jitter (2 cm per axis of the eye)."""
    _, out, _, _ = run
    from wam_isaac_tasks.push_cube_camera.push_cube_camera_env_cfg import CAMERA_POS, CAMERA_TARGET, look_at_quat

    nominal = np.array(CAMERA_POS), np.array(look_at_quat(CAMERA_POS, CAMERA_TARGET))
    recorded_error, nominal_error = [], []
    with DatasetReader(out) as reader:
        for _, frame, visual, marker in _episode_starts(reader):
            pose = visual["camera_pos"][0].astype(np.float64), visual["camera_quat"][0].astype(np.float64)
            assert np.abs(pose[0] - nominal[0]).max() <= 0.02 + 1e-5
            f = frame.astype(int)
            rows, cols = np.nonzero((f[..., 1] > f[..., 0] + 60) & (f[..., 1] > f[..., 2] + 60))
            if len(rows) < 2:  # the arm hides the disc
                continue
            centre = np.array([cols.mean() + 0.5, rows.mean() + 0.5])  # pixel centres
            for (position, quat), errors in ((pose, recorded_error), (nominal, nominal_error)):
                column, row, _ = _project(marker[:3].astype(np.float64), position, quat)
                errors.append(np.hypot(column - centre[0], row - centre[1]))
    assert len(recorded_error) >= 2 * NUM_ENVS
    assert np.mean(recorded_error) < 0.8 and np.mean(recorded_error) < 0.5 * np.mean(nominal_error), (
        np.mean(recorded_error),
        np.mean(nominal_error),
    )


def test_depth_frames_are_the_distance_to_the_image_plane(run):
    """``obs/depth`` (int16 mm) at step t equals the camera's distance to the image plane rendered before action t,
    rounded to mm; at the goal disc's centre it is the disc's forward distance from the recorded camera pose (the
    disc's top is 1 mm above its centre)."""
    env, out, _, _ = run
    checked = 0
    with DatasetReader(out) as reader:
        assert reader.manifest["keys"]["obs/depth"]["dtype"] == "int16"
        for episode_id, record in reader.episodes.items():
            depth = reader.rows(episode_id, "obs/depth")
            first = _first_global_step(reader, episode_id, record.env_id)
            for t in range(1 if first == 0 else 0, len(depth)):
                expected = np.round(env.depth_after_step[first + t - 1, record.env_id] * 1000.0)
                np.testing.assert_array_equal(depth[t], expected.astype(np.int16))
                checked += 1
        assert checked == NUM_ENVS * STEPS - NUM_ENVS
        distances = []
        for episode_id, frame, visual, marker in _episode_starts(reader):
            pose = visual["camera_pos"][0].astype(np.float64), visual["camera_quat"][0].astype(np.float64)
            column, row, forward = _project(marker[:3].astype(np.float64), *pose)
            pixel = frame[int(row), int(column)].astype(int)
            if not (pixel[1] > pixel[0] + 60 and pixel[1] > pixel[2] + 60):  # the arm hides the disc
                continue
            depth_mm = reader.rows(episode_id, "obs/depth", 0, 1)[0, int(row), int(column), 0]
            distances.append(depth_mm - 1000.0 * forward)
    assert len(distances) >= 2 * NUM_ENVS
    # the pixel's ray hits the disc top a little off its centre: on the tilted view the depth varies ~ 6 mm per px
    assert np.abs(distances).max() < 8.0, distances


def test_pixel_closed_loop_acts_on_the_last_frames_and_refills_them_at_resets(run, monkeypatch):
    """``wam eval``'s pixel closed loop (FrameWindows + FramePolicy in run_closed_loop): at every step the model
    sees each env's last HISTORY camera frames (a new episode's window: copies of its first frame), the instruction
    and the previous actions, and the env receives exactly the actions it returned. The expected windows are built
    here from the camera observations the env returned, independently of FrameWindows."""
    from wam_isaac.evaluation.closed_loop import run_closed_loop
    from wam_isaac.evaluation.visual_eval import FramePolicy, FrameWindows
    from wam_isaac.models import WamSchema

    env = run[0]
    history = 3
    obs = env.observation_manager.compute()
    schema = WamSchema(
        state_keys={f"obs/world_model/{k}": [int(v.shape[-1])] for k, v in obs["world_model"].items()},
        instruction_keys={"obs/instruction/goal": [2]},
        action_shape=[env.action_manager.total_action_dim],
    )
    returned = []  # the camera group after reset, then after every step (post-reset frames where an env is done)
    dones, sent = [], []
    env_reset, env_step = env.reset, env.step

    def reset(*args, **kwargs):
        out = env_reset(*args, **kwargs)
        returned.append(out[0]["camera"].clone())
        return out

    def step(actions):
        sent.append(actions.clone())
        out = env_step(actions)
        returned.append(out[0]["camera"].clone())
        dones.append((out[2] | out[3]).clone())
        return out

    monkeypatch.setattr(env, "reset", reset)
    monkeypatch.setattr(env, "step", step)

    class Spy:
        """A pixel WAM's ``act``: records its inputs, returns actions that differ per env and step."""

        instruction_dim = 2

        def __init__(self):
            self.seen = []

        def act(self, frames, command, prev_actions):
            self.seen.append((frames.clone(), command.clone(), prev_actions.clone()))
            k = len(self.seen)
            n, a = frames.shape[0], schema.action_shape[0]
            grid = torch.arange(n * a, dtype=torch.float32).reshape(n, a)
            return torch.sin(0.37 * k + 0.11 * grid) * 0.8

    windows = FrameWindows(env, history, "camera")
    spy = Spy()
    stats = run_closed_loop(windows, FramePolicy(spy, windows), schema, history, episodes=2 * NUM_ENVS, seed=5)

    assert len(stats.success) == 2 * NUM_ENVS and stats.steps == len(spy.seen) == len(sent) == 20
    assert [bool(d.all()) for d in dones] == ([False] * 9 + [True]) * 2  # 10-step episodes, all envs together
    assert returned[0].dtype == torch.uint8 and returned[0].shape == (NUM_ENVS, 64, 64, 3)
    expected = returned[0][:, None].repeat(1, history, 1, 1, 1)
    previous = torch.zeros(NUM_ENVS, schema.action_shape[0])
    for t, (frames, command, prev_actions) in enumerate(spy.seen):
        assert torch.equal(frames, expected), f"step {t}"
        assert command.shape == (NUM_ENVS, history, 2)
        torch.testing.assert_close(prev_actions[:, -1], previous)
        grid = torch.arange(sent[t].numel(), dtype=torch.float32).reshape(sent[t].shape)
        assert torch.equal(sent[t], torch.sin(0.37 * (t + 1) + 0.11 * grid) * 0.8)  # the env got the model's actions
        new = returned[t + 1]
        expected = torch.cat((expected[:, 1:], new[:, None]), dim=1)
        expected[dones[t]] = new[dones[t], None].repeat(1, history, 1, 1, 1)
        previous = torch.where(dones[t][:, None], torch.zeros_like(sent[t]), sent[t])
    # a window that slid holds frames of different steps: the check above is not vacuous
    assert not torch.equal(spy.seen[5][0][:, 0], spy.seen[5][0][:, -1])
