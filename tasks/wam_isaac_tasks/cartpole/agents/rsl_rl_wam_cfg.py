"""Joint-WAM PPO for WAM-Cartpole: the plain PPO recipe (``rsl_rl_ppo_cfg``) on a joint WAM's shared trunk, with
world-model steps on the rollouts (``rsl_rl_wam_cfg_entry_point``), and the same with imagination
(``rsl_rl_wam_imagination_cfg_entry_point``)."""

from __future__ import annotations

from isaaclab.utils import configclass

from wam_isaac.training.wam_ppo_cfg import ImaginationCfg, WamModelCfg, wam_actor_cfg, wam_algorithm_cfg

from .rsl_rl_ppo_cfg import CartpolePPORunnerCfg

PPO = CartpolePPORunnerCfg().algorithm
"""The baseline's PPO settings, shared."""


@configclass
class CartpoleWamPPORunnerCfg(CartpolePPORunnerCfg):
    """A GRU joint WAM (64 wide) from scratch; world-model windows of 8 + 8 steps."""

    experiment_name = "wam_cartpole_joint_wam"
    obs_groups = {"actor": ["world_model", "previous_action"], "critic": ["critic"]}
    actor = wam_actor_cfg()
    algorithm = wam_algorithm_cfg(PPO, wam_model=WamModelCfg(hidden=64, head_hidden=64), replay_capacity=160)


@configclass
class CartpoleWamImaginationPPORunnerCfg(CartpoleWamPPORunnerCfg):
    """:class:`CartpoleWamPPORunnerCfg` with imagined rollouts joining the PPO batch."""

    experiment_name = "wam_cartpole_joint_wam_imagination"
    algorithm = wam_algorithm_cfg(
        PPO,
        wam_model=WamModelCfg(hidden=64, head_hidden=64),
        replay_capacity=160,
        imagination=ImaginationCfg(enabled=True),
    )
