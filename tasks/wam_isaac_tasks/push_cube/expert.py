"""Scripted expert for WAM-Push-Cube: a pushing controller with closed-form inverse kinematics.

Per env, with ``d`` the unit vector from the cube to its goal (table plane, env frame):

1. **approach**: orbit the cube (at least at the staging radius ``s + 4 cm``, ``s`` = cube half size + tip radius)
   toward the side opposite the goal, then close in on the staging point ``cube - d (s + 4 cm)``;
2. **push**: once the tip is behind the cube and on the cube-goal line, aim :data:`PUSH_LEAD` past the contact point
   ``cube - d s`` along ``d`` (steering as the cube turns).

The tip target stays within :data:`MAX_TIP_STEP` of the tip. Joint targets come from the SCARA's closed-form inverse
kinematics (tool pointing radially outward from the shoulder, elbow on the side of the arm's ready pose), and the
action is the joint offset from the ready pose divided by the env's actuator strength (an expert may read
privileged state: it is a data-generation tool).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from wam_isaac_assets.builders import pusher as geometry

if TYPE_CHECKING:
    from isaaclab.envs import ManagerBasedRLEnv

CONTACT_OFFSET = 0.5 * geometry.CUBE_SIZE + geometry.TIP_RADIUS
"""Tip-center to cube-center distance [m] when the tip touches the middle of a face."""
STAGING_MARGIN = 0.04
"""Extra distance [m] behind the contact point where the approach ends."""
PUSH_LEAD = 0.03
"""How far past the contact point the tip target leads while pushing [m] (the servos lag their targets)."""
ORBIT_STEP = 0.5
"""Largest turn around the cube per control step while approaching [rad]."""
MAX_TIP_STEP = 0.06
"""Largest distance of the tip target from the tip [m]."""
ALIGN_TOLERANCE = 0.012
"""Lateral offset from the cube-goal line [m] within which pushing starts."""


def scara_ik(target_xy: torch.Tensor) -> torch.Tensor:
    """Joint angles (shoulder, elbow, wrist) [rad], shape (num_envs, 3), that put the tip at ``target_xy`` [m]
    (shoulder frame) with the tool pointing radially outward; unreachable targets are clamped to the workspace."""
    l1, l2, tool = geometry.UPPER_ARM_LENGTH, geometry.FOREARM_LENGTH, geometry.TOOL_LENGTH
    yaw = torch.atan2(target_xy[:, 1], target_xy[:, 0])
    reach = torch.linalg.norm(target_xy, dim=-1).clamp(min=tool + abs(l1 - l2) + 0.02, max=tool + l1 + l2 - 1e-3)
    wrist = reach - tool  # the wrist axis lies on the same ray as the tip
    cos_elbow = ((wrist**2 - l1**2 - l2**2) / (2 * l1 * l2)).clamp(-1.0, 1.0)
    elbow = torch.acos(cos_elbow)  # positive: the ready pose's elbow side
    shoulder = yaw - torch.atan2(l2 * torch.sin(elbow), l1 + l2 * torch.cos(elbow))
    wrist_angle = torch.atan2(torch.sin(yaw - shoulder - elbow), torch.cos(yaw - shoulder - elbow))
    return torch.stack([shoulder, elbow, wrist_angle], dim=-1)


class PushCubeExpert:
    """Pushes every env's cube to its goal from the true state of the scene."""

    def __init__(self, env: ManagerBasedRLEnv, action_name: str = "arm", goal_command: str = "goal"):
        self.env = env
        self.robot = env.scene["robot"]
        self.cube = env.scene["cube"]
        self.tip_body = self.robot.find_bodies(["pusher"])[0][0]
        self.arm_joints = self.robot.find_joints(["shoulder", "elbow", "wrist"])[0]
        self.action_term = env.action_manager.get_term(action_name)
        self.goal = env.command_manager.get_term(goal_command)
        self.base_xy = self.robot.data.root_link_pos_w.torch[:, :2] - env.scene.env_origins[:, :2]

    def __call__(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        """Actions (num_envs, 3): joint target offsets from the ready pose, in action units."""
        origins = self.env.scene.env_origins[:, :2]
        tip = self.robot.data.body_link_pos_w.torch[:, self.tip_body, :2] - origins - self.base_xy
        cube = self.cube.data.root_link_pos_w.torch[:, :2] - origins - self.base_xy
        goal = self.goal.goal_pos_w[:, :2] - origins - self.base_xy
        target = self.tip_target(tip, cube, goal)
        joints = scara_ik(target)
        default = self.robot.data.default_joint_pos.torch[:, self.arm_joints]
        strength = getattr(self.action_term, "strength", torch.ones(self.env.num_envs, device=self.env.device))
        return (joints - default) / strength.unsqueeze(-1)

    @staticmethod
    def tip_target(tip: torch.Tensor, cube: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
        """Next tip target [m], shape (num_envs, 2), from the tip, cube and goal positions (same frame)."""
        to_goal = goal - cube
        distance = torch.linalg.norm(to_goal, dim=-1, keepdim=True)
        d = to_goal / distance.clamp(min=1e-6)
        n = torch.stack([-d[:, 1], d[:, 0]], dim=-1)
        rel = tip - cube
        along, lateral = (rel * d).sum(-1), (rel * n).sum(-1)
        staging_radius = CONTACT_OFFSET + STAGING_MARGIN
        behind = (along < -CONTACT_OFFSET + 0.01) & (along > -staging_radius - 0.03)
        pushing = (behind & (lateral.abs() < ALIGN_TOLERANCE)).unsqueeze(-1)
        push_target = cube - d * CONTACT_OFFSET + d * torch.clamp(distance, max=PUSH_LEAD)
        # approach: orbit the cube at the staging radius toward the side opposite the goal, then close in
        tip_angle = torch.atan2(rel[:, 1], rel[:, 0])
        behind_angle = torch.atan2(-d[:, 1], -d[:, 0])
        turn = torch.atan2(torch.sin(behind_angle - tip_angle), torch.cos(behind_angle - tip_angle))
        next_angle = tip_angle + turn.clamp(-ORBIT_STEP, ORBIT_STEP)
        radius = torch.linalg.norm(rel, dim=-1).clamp(min=staging_radius).unsqueeze(-1)
        orbit = cube + radius * torch.stack([torch.cos(next_angle), torch.sin(next_angle)], dim=-1)
        staging = cube - d * staging_radius
        approach = torch.where((turn.abs() < ORBIT_STEP).unsqueeze(-1), staging, orbit)
        desired = torch.where(pushing, push_target, approach)
        step = desired - tip
        length = torch.linalg.norm(step, dim=-1, keepdim=True)
        return tip + step * torch.clamp(MAX_TIP_STEP / length.clamp(min=1e-9), max=1.0)
