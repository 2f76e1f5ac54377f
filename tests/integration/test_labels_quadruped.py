"""Contact and penetration labels on a real quadruped (its own module: Isaac Lab holds one simulation per process,
so it must not overlap the cart-pole fixture of test_labels.py)."""

from __future__ import annotations

import pytest
import torch

from wam_isaac.labels.labeler import Labeler, LabelerCfg

pytestmark = pytest.mark.integration


def test_standing_quadruped_contacts_carry_its_weight_without_penetrating(make_env):
    """Four feet in contact, their normal forces summing to m g, and no collision shape sunk into the ground."""
    with make_env("WAM-Quadruped-Flat", num_envs=2) as env:
        env.reset()
        labeler = Labeler(env, LabelerCfg(horizons=(1,), contact_threshold=1.0))
        labeler.reset()
        robot, sensor = env.scene["robot"], env.scene["contact_forces"]
        feet = [i for i, name in enumerate(sensor.sensor_names) if name.endswith("_foot")]
        robot.write_root_pose_to_sim_index(
            root_pose=torch.tensor([[0.0, 0.0, 0.37, 0.0, 0.0, 0.0, 1.0]]).repeat(2, 1)
            + torch.cat([env.scene.env_origins, torch.zeros(2, 4)], -1)
        )
        robot.write_root_velocity_to_sim_index(root_velocity=torch.zeros(2, 6))
        robot.write_joint_position_to_sim_index(position=robot.data.default_joint_pos.torch.clone())
        robot.write_joint_velocity_to_sim_index(velocity=torch.zeros(2, robot.num_joints))
        env.action_manager.get_term("joint_pos").latency[:] = 0
        for _ in range(40):
            env.step(torch.zeros(2, 12))
            labels = labeler.compute()
        assert len(feet) == 4
        described = labeler.descriptions()
        assert described.keys() == labels.keys()
        # the manifest's description lists the sensed bodies in the order of the label's last axis
        assert described["contact/contact_forces/force"].split("bodies: ")[1].split(", ") == list(sensor.sensor_names)
        assert described["penetration/robot"].count("_foot") == 4
        assert (labels["contact/contact_forces/flag"][:, feet] == 1).all()
        weight = robot.data.body_mass.torch.sum(-1) * 9.81
        torch.testing.assert_close(labels["contact/contact_forces/force"][:, feet].sum(-1), weight, rtol=0.1, atol=0)
        assert labels["penetration/robot"].max() < 5e-3, "a resting robot sinks at most a few mm into the ground"
