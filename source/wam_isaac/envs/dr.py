"""Read back, per env, the physical parameters domain randomization gave it.

Rather than recording what each event sampled, the values are read from the simulator itself (masses, joint
gains and friction, shape friction) and from the action pipeline (latency, strength): what is read is what the
physics uses, whichever event (or override) set it. Event terms that randomize what the simulator cannot be asked for
(e.g. the camera task's visual DR: colours, light) report what they applied through a ``recorded_params()`` method.
Datasets record these per episode.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from isaaclab.assets import BaseArticulation

from .actions import ActuationRandomizedAction
from .observations import newton_shape_friction

if TYPE_CHECKING:
    from isaaclab.envs import ManagerBasedEnv


def read_dr_params(env: ManagerBasedEnv) -> dict[str, torch.Tensor]:
    """The randomizable physical parameters of every env, keyed ``<asset>/<parameter>`` or
    ``action/<term>/<parameter>``; each tensor's first dimension is ``num_envs``.

    - ``<asset>/body_mass`` [kg], shape (num_envs, num_bodies), for rigid objects and articulations;
    - ``<asset>/joint_stiffness`` [N m/rad | N/m], ``<asset>/joint_damping`` [N m s/rad | N s/m],
      ``<asset>/joint_friction`` [1], shape (num_envs, num_joints), for articulations;
    - ``<asset>/shape_friction`` [1], shape (num_envs, num_shapes), on the Newton backend (whose per-shape
      friction coefficient ``mu`` is what its material randomization writes);
    - ``action/<term>/latency`` [control steps] and ``action/<term>/strength`` [1], shape (num_envs,), for each
      :class:`~wam_isaac.envs.actions.ActuationRandomizedAction` term;
    - ``event/<term>/<key>``, shape (num_envs, ...), for each active reset event term whose function (a class term)
      has a ``recorded_params()`` method: what it returned (e.g. the visual DR's ``table_color``, ``camera_pos``).
    """
    params: dict[str, torch.Tensor] = {}
    for name, asset in {**env.scene.articulations, **env.scene.rigid_objects}.items():
        data = asset.data
        params[f"{name}/body_mass"] = data.body_mass.torch.clone()
        if isinstance(asset, BaseArticulation):
            params[f"{name}/joint_stiffness"] = data.joint_stiffness.torch.clone()
            params[f"{name}/joint_damping"] = data.joint_damping.torch.clone()
            params[f"{name}/joint_friction"] = data.joint_friction_coeff.torch.clone()
        friction = newton_shape_friction(env, asset)
        if friction is not None:
            params[f"{name}/shape_friction"] = friction.clone()
    for term_name in env.action_manager.active_terms:
        term = env.action_manager.get_term(term_name)
        if isinstance(term, ActuationRandomizedAction):
            params[f"action/{term_name}/latency"] = term.latency.clone()
            params[f"action/{term_name}/strength"] = term.strength.clone()
    for term_name in env.event_manager.active_terms.get("reset", []):
        recorded = getattr(env.event_manager.get_term_cfg(term_name).func, "recorded_params", None)
        if recorded is not None:
            params.update({f"event/{term_name}/{key}": value.clone() for key, value in recorded().items()})
    return params
