"""Scripted expert for WAM-Cartpole: an LQR on the cart-pole linearized about the upright pole.

Model (uniform pole of mass ``m`` and length ``2 l`` hinged on a cart of mass ``M``, angle ``theta`` from upright,
positive toward +x), linearized at ``theta = 0``::

    (M + m) x'' + m l theta''        = F
    m l x''     + J theta'' - m g l theta = 0,     J = 4/3 m l^2 (pole inertia about the hinge)

The continuous-time Riccati equation gives ``F = -K s`` with ``s = (x, theta, x', theta')``; the force is mapped to
the task's action (``F = 100 a``) and clipped to [-1, 1]. Nominal masses are used: domain randomization (+-30 %
masses, latency, strength) is what the expert must be robust to.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from wam_isaac_assets.builders import cartpole as geometry

if TYPE_CHECKING:
    from isaaclab.envs import ManagerBasedRLEnv

ACTION_SCALE = 100.0
"""Cart force [N] per unit action (the task's ``JointEffortActionCfg.scale``)."""


def lqr_gain(
    cart_mass: float = geometry.CART_MASS,
    pole_mass: float = geometry.POLE_MASS,
    pole_length: float = geometry.POLE_LENGTH,
    gravity: float = 9.81,
    state_cost: tuple[float, float, float, float] = (1.0, 20.0, 0.5, 1.0),
    force_cost: float = 0.01,
) -> np.ndarray:
    """LQR gain ``K`` [N per unit state], shape (4,), so that ``F = -K (x, theta, x', theta')``."""
    from scipy.linalg import solve_continuous_are

    l = pole_length / 2  # noqa: E741  (the hinge-to-center distance of the equations)
    inertia = 4.0 / 3.0 * pole_mass * l * l
    mass = np.array([[cart_mass + pole_mass, pole_mass * l], [pole_mass * l, inertia]])
    stiffness = np.array([[0.0, 0.0], [0.0, -pole_mass * gravity * l]])
    mass_inv = np.linalg.inv(mass)
    a = np.block([[np.zeros((2, 2)), np.eye(2)], [-mass_inv @ stiffness, np.zeros((2, 2))]])
    b = np.concatenate([np.zeros((2, 1)), mass_inv @ np.array([[1.0], [0.0]])])
    q, r = np.diag(state_cost), np.array([[force_cost]])
    p = solve_continuous_are(a, b, q, r)
    return (np.linalg.solve(r, b.T @ p)).reshape(4)


class CartpoleLQRExpert:
    """Balances the pole from the true joint state of each env."""

    def __init__(self, env: ManagerBasedRLEnv):
        self.env = env
        self.gain = torch.tensor(lqr_gain(), dtype=torch.float32, device=env.device)

    def __call__(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        """Actions (num_envs, 1) in [-1, 1]."""
        data = self.env.scene["robot"].data
        pole = torch.atan2(torch.sin(data.joint_pos.torch[:, 1]), torch.cos(data.joint_pos.torch[:, 1]))
        state = torch.stack(
            [data.joint_pos.torch[:, 0], pole, data.joint_vel.torch[:, 0], data.joint_vel.torch[:, 1]], 1
        )
        force = -(state * self.gain).sum(-1, keepdim=True)
        return (force / ACTION_SCALE).clamp(-1.0, 1.0)
