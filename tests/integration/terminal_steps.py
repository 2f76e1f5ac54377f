"""Helpers of the terminal-step tests (test_terminal_*.py): a rollout whose episodes are captured as the driver
hands them to the writer, a spy that copies the simulator's truth right before every reset inside ``env.step``
(through Isaac Lab's ``_reset_idx``, not through the driver), and the label checks that every task shares: each
recomputes a label family with scipy/torch/closed forms from the stored states and the stored final state s_T,
including the last step of every episode."""

from __future__ import annotations

import contextlib
from collections import defaultdict

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from wam_isaac.data import DatasetWriter, iter_episodes
from wam_isaac.labels.labeler import labeler_cfg_for
from wam_isaac.rollout.driver import RolloutDriver, record_state


class CapturingWriter:
    """A dataset writer that keeps the episodes the driver hands it (and the key specs it was opened with), and
    passes them on to ``inner`` (a real dataset writer) if given."""

    def __init__(self, specs, inner=None):
        self.specs = specs
        self.episodes = []
        self.dropped = 0
        self.inner = inner

    def __enter__(self):
        if self.inner is not None:
            self.inner.__enter__()
        return self

    def __exit__(self, *exc):
        return self.inner.__exit__(*exc) if self.inner is not None else False

    def write_many(self, episodes):
        self.episodes.extend(episodes)
        if self.inner is not None:
            self.inner.write_many(episodes)

    def add_dropped(self, count):
        self.dropped += count
        if self.inner is not None:
            self.inner.add_dropped(count)


class PreResetSpy:
    """Copies, right before Isaac Lab resets envs inside ``env.step``, what the labels of their last step must
    describe: root and joint states, every body's center-of-mass pose and velocity, mass and inertia, link poses,
    applied torques, contact forces, the goal. ``captures[env_id]`` lists one dict per reset of that env."""

    def __init__(self, env, goal_command: str | None = None):
        self.env = env
        self.goal_command = goal_command
        self.captures: dict[int, list[dict]] = defaultdict(list)
        self._in_step = False
        self._reset_idx, self._step = env._reset_idx, env.step
        env._reset_idx, env.step = self._spy_reset, self._spy_step

    def close(self):
        self.env._reset_idx, self.env.step = self._reset_idx, self._step

    def _spy_step(self, action):
        self._in_step = True
        try:
            return self._step(action)
        finally:
            self._in_step = False

    def _spy_reset(self, env_ids):
        if self._in_step:
            env = self.env
            snapshot = {key: value.clone() for key, value in record_state(env).items()}
            for name, asset in {**env.scene.articulations, **env.scene.rigid_objects}.items():
                data = asset.data
                snapshot[f"{name}/body_com_pose_w"] = data.body_com_pose_w.torch.clone()
                snapshot[f"{name}/body_com_vel_w"] = data.body_com_vel_w.torch.clone()
                snapshot[f"{name}/body_mass"] = data.body_mass.torch.clone()
                snapshot[f"{name}/body_inertia"] = data.body_inertia.torch.clone()
                snapshot[f"{name}/body_link_pose_w"] = data.body_link_pose_w.torch.clone()
                if name in env.scene.articulations:
                    snapshot[f"{name}/applied_torque"] = data.applied_torque.torch.clone()
            for name, sensor in env.scene.sensors.items():
                if hasattr(sensor.data, "net_forces_w"):
                    snapshot[f"sensor/{name}"] = sensor.data.net_forces_w.torch.clone()
            if self.goal_command is not None:
                goal = env.command_manager.get_term(self.goal_command).goal_pos_w
                snapshot["goal_w"] = goal.clone()
            snapshot["origin"] = env.scene.env_origins.clone()
            for env_id in env_ids.tolist():
                self.captures[int(env_id)].append({key: value[env_id].numpy() for key, value in snapshot.items()})
        return self._reset_idx(env_ids)


def rollout(env, task: str, policy, steps: int, seed: int = 0, on_step=None, horizons=(1, 3), out=None, counter=None):
    """Run the driver with a :class:`CapturingWriter` (in front of a real :class:`DatasetWriter` into ``out`` if
    given) and a :class:`PreResetSpy`; returns (writer, spy, stats). With a :class:`host_syncs.SyncCounter`, the
    driver's host synchronizations are counted (Isaac Lab's ``env.step``, the policy and ``on_step`` excluded, the
    driver's pre-reset recorder inside ``env.step`` included) and ``writer.per_step`` lists, after each step, the
    count so far and the episodes written so far."""
    writers = []

    def factory(specs):
        inner = DatasetWriter(out, task, "test", specs, episodes_per_shard=7) if out is not None else None
        writers.append(CapturingWriter(specs, inner))
        return writers[-1]

    cfg = labeler_cfg_for(task, horizons=horizons)
    spy = PreResetSpy(env, cfg.goal_command)
    per_step = []
    if counter is not None:
        policy, on_step = _paused(counter, policy), on_step and _paused(counter, on_step)
        env.step = _paused(counter, env.step)
    driver = RolloutDriver(env, policy, factory, cfg, seed=seed)
    if counter is not None:
        record = driver.terminal.record

        def counted_record(env_ids):
            with counter.resumed():
                record(env_ids)

        driver.terminal.record = counted_record
    progress = (lambda done, stats: per_step.append((counter.count, stats.episodes))) if counter else None
    try:
        with counter if counter is not None else contextlib.nullcontext():
            stats = driver.run(steps, on_step=on_step, progress=progress)
    finally:
        spy.close()
    writers[0].per_step = per_step
    return writers[0], spy, stats


def _paused(counter, function):
    def paused(*args):
        with counter.paused():
            return function(*args)

    return paused


def ended_episodes(writer, spy):
    """(episode, truth) of every episode that ended inside ``env.step`` (not at the step budget), the spy's copy of
    the state it ended in."""
    count = defaultdict(int)
    pairs = []
    for episode in writer.episodes:
        if episode.attrs["budget_end"]:
            continue
        pairs.append((episode, spy.captures[episode.env_id][count[episode.env_id]]))
        count[episode.env_id] += 1
    return pairs


def next_states(episode, key: str) -> np.ndarray:
    """The state after each step's action: the stored states shifted by one, the final state last."""
    return np.concatenate([episode.data[key][1:], episode.final[key][None]])


def roots(writer) -> list[str]:
    return writer.specs["labels/delta_1/root_pos_w"].description.split("roots: ")[1].split(", ")


def check_end_kinds(writer, max_length: int) -> None:
    """The episodes include ends by a termination, by the time limit and by the step budget."""
    ends = [episode for episode in writer.episodes if not episode.attrs["budget_end"]]
    terminated = [e for e in ends if e.data["labels/flags/terminated"][-1] == 1]
    timed_out = [e for e in ends if e.data["labels/flags/time_out"][-1] == 1]
    assert terminated and timed_out and len(ends) < len(writer.episodes), (len(terminated), len(timed_out))
    assert all(e.num_samples == max_length for e in timed_out)


def check_final_is_the_state_before_the_reset(writer, spy) -> None:
    """Episode.final is s_T as the simulator held it right before the reset; budget-end episodes also carry one."""
    pairs = ended_episodes(writer, spy)
    assert pairs
    for episode, truth in pairs:
        for key, value in episode.final.items():
            if key.startswith("states/"):
                np.testing.assert_array_equal(value, truth[key], err_msg=key)
    state_keys = {key for key in writer.specs if key.startswith(("states/", "obs/world_model", "obs/instruction"))}
    for episode in writer.episodes:
        assert state_keys <= episode.final.keys()
        for key, value in episode.final.items():
            assert value.shape == writer.specs[key].shape and value.dtype == np.dtype(writer.specs[key].dtype)


def check_deltas(writer, horizons=(1, 3)) -> int:
    """Every delta label of every step, the last included, from the stored states and s_T (scipy)."""
    names = roots(writer)
    robots = [key.split("/")[1] for key in writer.specs if key.startswith("states/") and key.endswith("joint_pos")]
    checked = 0
    for episode in writer.episodes:
        d, length = episode.data, episode.num_samples
        for k in horizons:
            valid = d[f"labels/delta_{k}/valid"].astype(bool)
            np.testing.assert_array_equal(valid, np.arange(length) >= k - 1)
            t = np.arange(k - 1, length)  # steps whose k-step label lies within the episode
            for index, name in enumerate(names):
                pose, vel = d[f"states/{name}/root_pose"], d[f"states/{name}/root_vel"]
                after_pose, after_vel = (
                    next_states(episode, f"states/{name}/root_pose")[t],
                    next_states(episode, f"states/{name}/root_vel")[t],
                )
                before_pose, before_vel = pose[t + 1 - k], vel[t + 1 - k]
                r0, r1 = Rotation.from_quat(before_pose[:, 3:]), Rotation.from_quat(after_pose[:, 3:])
                dp = after_pose[:, :3] - before_pose[:, :3]
                label = lambda key: d[f"labels/delta_{k}/{key}"][t, index]  # noqa: B023, E731
                np.testing.assert_allclose(label("root_pos_w"), dp, atol=2e-5)
                np.testing.assert_allclose(label("root_pos_b"), r0.inv().apply(dp), atol=2e-5)
                np.testing.assert_allclose(label("root_rotvec"), (r0.inv() * r1).as_rotvec(), atol=2e-4)
                lin = r1.inv().apply(after_vel[:, :3]) - r0.inv().apply(before_vel[:, :3])
                ang = r1.inv().apply(after_vel[:, 3:]) - r0.inv().apply(before_vel[:, 3:])
                np.testing.assert_allclose(label("root_lin_vel_b"), lin, atol=2e-4, rtol=1e-4)
                np.testing.assert_allclose(label("root_ang_vel_b"), ang, atol=2e-4, rtol=1e-4)
            for name in robots:
                q, qd = d[f"states/{name}/joint_pos"], d[f"states/{name}/joint_vel"]
                dq = next_states(episode, f"states/{name}/joint_pos")[t] - q[t + 1 - k]
                dq = np.arctan2(np.sin(dq), np.cos(dq))  # steps far below half a turn: the wrap changes nothing else
                np.testing.assert_allclose(d[f"labels/delta_{k}/{name}/joint_pos"][t], dq, atol=2e-5)
                dqd = next_states(episode, f"states/{name}/joint_vel")[t] - qd[t + 1 - k]
                np.testing.assert_allclose(d[f"labels/delta_{k}/{name}/joint_vel"][t], dqd, atol=2e-4, rtol=1e-5)
            checked += t.size
    return checked


def body_energy(truth, assets, gravity=9.81) -> tuple[float, float]:
    """Kinetic and potential energy [J] of every body of ``assets`` in a spy snapshot (float64 torch)."""
    kinetic = potential = 0.0
    for name in assets:
        pose = torch.as_tensor(truth[f"{name}/body_com_pose_w"], dtype=torch.float64)
        vel = torch.as_tensor(truth[f"{name}/body_com_vel_w"], dtype=torch.float64)
        mass = torch.as_tensor(truth[f"{name}/body_mass"], dtype=torch.float64)
        inertia = torch.as_tensor(truth[f"{name}/body_inertia"], dtype=torch.float64).view(-1, 3, 3)
        rotation = torch.as_tensor(Rotation.from_quat(pose[:, 3:].numpy()).as_matrix())
        w_body = torch.einsum("bji,bj->bi", rotation, vel[:, 3:])
        kinetic += float((0.5 * mass * (vel[:, :3] ** 2).sum(-1)).sum())
        kinetic += float((0.5 * torch.einsum("bi,bij,bj->b", w_body, inertia, w_body)).sum())
        potential += float((mass * gravity * pose[:, 2]).sum())
    return kinetic, potential


def check_last_step_energy(writer, spy, env) -> int:
    """energy/* of the last step: the energy of the bodies in s_T (torch), its change from the step before, and
    the actuators' work from the torque applied in the last step and the stored joint velocities."""
    assets = roots(writer)
    robots = list(env.scene.articulations)
    pairs = ended_episodes(writer, spy)
    for episode, truth in pairs:
        d = episode.data
        kinetic, potential = body_energy(truth, assets)
        np.testing.assert_allclose(d["labels/energy/kinetic"][-1], kinetic, rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(d["labels/energy/potential"][-1], potential, rtol=1e-5, atol=1e-4)
        np.testing.assert_allclose(d["labels/energy/total"][-1], kinetic + potential, rtol=1e-5, atol=2e-4)
        if episode.num_samples > 1:
            change = kinetic + potential - float(d["labels/energy/total"][-2])
            np.testing.assert_allclose(d["labels/energy/delta"][-1], change, rtol=1e-4, atol=5e-4)
            work = 0.0
            for name in robots:
                qd_before, qd_after = d[f"states/{name}/joint_vel"][-1], episode.final[f"states/{name}/joint_vel"]
                torque = truth[f"{name}/applied_torque"].astype(np.float64)
                work += float((torque * 0.5 * (qd_before + qd_after)).sum() * env.step_dt)
            np.testing.assert_allclose(d["labels/energy/actuator_work"][-1], work, rtol=1e-4, atol=1e-5)
    return len(pairs)


def check_last_step_contacts(writer, spy, threshold: float) -> int:
    """contact/<sensor>/{force, flag} of the last step: the norm of the sensed net forces before the reset."""
    keys = [key for key in writer.specs if key.startswith("labels/contact/") and key.endswith("/force")]
    assert keys
    pairs = ended_episodes(writer, spy)
    for episode, truth in pairs:
        for key in keys:
            sensor = key.split("/")[2]
            force = np.linalg.norm(truth[f"sensor/{sensor}"].astype(np.float64), axis=-1).reshape(-1)
            np.testing.assert_allclose(episode.data[key][-1], force, rtol=1e-5, atol=1e-4)
            flag = episode.data[key.replace("/force", "/flag")][-1]
            np.testing.assert_array_equal(flag, (episode.data[key][-1] > threshold).astype(np.float32))
    return len(pairs)


def check_flags(writer, max_length: int) -> None:
    """flags/* and dones are 0 before the last step; at the last step of an episode ended inside ``env.step`` the
    time-out flag is set iff the episode lasted the time limit, and some flag is set; success matches the
    episode's."""
    for episode in writer.episodes:
        d = episode.data
        for key in ("labels/flags/terminated", "labels/flags/time_out", "dones"):
            assert not d[key][:-1].any(), key
        if "labels/flags/success" in d:
            assert not d["labels/flags/success"][:-1].any()
            assert bool(d["labels/flags/success"][-1]) == episode.success
        if episode.attrs["budget_end"]:
            assert not d["labels/flags/terminated"][-1] and not d["labels/flags/time_out"][-1]
            continue
        assert d["dones"][-1]
        assert bool(d["labels/flags/time_out"][-1]) == (episode.num_samples == max_length)


@contextlib.contextmanager
def shorter_episodes(env, seconds: float):
    """The env's episodes limited to ``seconds`` [s] (read by ``max_episode_length`` at every step)."""
    before = env.cfg.episode_length_s
    env.cfg.episode_length_s = seconds
    try:
        yield int(env.max_episode_length)
    finally:
        env.cfg.episode_length_s = before


def check_dataset_holds_what_was_written(out, writer) -> None:
    """The dataset's reader returns every episode handed to the writer, its final state included, unchanged."""
    read = [episode for _, episode in iter_episodes(out)]
    assert len(read) == len(writer.episodes)
    written = sorted(writer.episodes, key=lambda e: (e.env_id, e.attrs["episode_index"]))
    for a, b in zip(written, sorted(read, key=lambda e: (e.env_id, e.attrs["episode_index"])), strict=True):
        assert a.data.keys() == b.data.keys() and a.final.keys() == b.final.keys() and a.final
        for key in a.data:
            np.testing.assert_array_equal(a.data[key], b.data[key], err_msg=key)
        for key in a.final:
            np.testing.assert_array_equal(a.final[key], b.final[key], err_msg=f"final {key}")
        assert (a.env_id, a.seed, a.success) == (b.env_id, b.seed, b.success)


def check_last_step_penetration(writer, spy, env, task: str) -> tuple[int, int]:
    """penetration/<asset> of the last step: the depth of each collision shape's lowest point below the plane, from
    the link poses before the reset and the shapes' geometry (scipy, closed forms per primitive). Returns the
    episodes checked and the shapes found below the plane."""
    from newton import GeoType

    from wam_isaac.labels.labeler import Labeler

    cfg = labeler_cfg_for(task)
    shapes = Labeler(env, cfg)._shapes  # geometry read from the Newton model: body, type, local pose, scale
    assert shapes and {f"labels/penetration/{name}" for name in shapes} <= writer.specs.keys()
    pairs = ended_episodes(writer, spy)
    below = 0
    for episode, truth in pairs:
        plane = truth["origin"][2] + cfg.plane_height
        for name, table in shapes.items():
            links = truth[f"{name}/body_link_pose_w"].astype(np.float64)[table["body"].numpy()]
            local = table["local"].numpy().astype(np.float64)
            r_link = Rotation.from_quat(links[:, 3:])
            rotation = r_link * Rotation.from_quat(local[:, 3:])
            center = links[:, :3] + r_link.apply(local[:, :3])
            axes = rotation.as_matrix()  # columns: the shape's x, y, z axes in the world
            scale = table["scale"].numpy().astype(np.float64)
            lowest = np.full(len(center), np.inf)
            for i, kind in enumerate(table["type"].tolist()):
                z = np.abs(axes[i, 2])  # |z component| of each local axis
                if kind == GeoType.SPHERE:
                    lowest[i] = center[i, 2] - scale[i, 0]
                elif kind == GeoType.BOX:
                    lowest[i] = center[i, 2] - z @ scale[i]
                elif kind == GeoType.CAPSULE:
                    lowest[i] = center[i, 2] - z[2] * scale[i, 1] - scale[i, 0]
                elif kind == GeoType.CYLINDER:
                    lowest[i] = center[i, 2] - z[2] * scale[i, 1] - np.sqrt(max(1 - z[2] ** 2, 0.0)) * scale[i, 0]
                elif kind == GeoType.ELLIPSOID:
                    lowest[i] = center[i, 2] - np.linalg.norm(axes[i, 2] * scale[i])
            depth = np.maximum(plane - lowest, 0.0)
            np.testing.assert_allclose(episode.data[f"labels/penetration/{name}"][-1], depth, atol=2e-5)
            below += int((depth > 1e-5).sum())
    return len(pairs), below
