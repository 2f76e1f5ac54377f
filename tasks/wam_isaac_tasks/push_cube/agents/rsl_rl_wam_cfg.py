"""Joint-WAM PPO for WAM-Push-Cube: the plain PPO recipe (``rsl_rl_ppo_cfg``) on a joint WAM's shared trunk, with
world-model steps on the rollouts (``rsl_rl_wam_cfg_entry_point``; fine-tune a ``wam train-model --model joint``
checkpoint with ``agent.algorithm.pretrained_checkpoint=<path>``), and the same with imagination
(``rsl_rl_wam_imagination_cfg_entry_point``)."""

from __future__ import annotations

from isaaclab.utils import configclass

from wam_isaac.training.wam_ppo_cfg import ImaginationCfg, wam_actor_cfg, wam_algorithm_cfg

from .rsl_rl_ppo_cfg import PushCubePPORunnerCfg

PPO = PushCubePPORunnerCfg().algorithm
"""The baseline's PPO settings, shared."""
WARMUP = 5
"""Critic warm-up iterations: a behaviour-cloned policy waits for a value function before PPO moves it."""


@configclass
class PushCubeWamPPORunnerCfg(PushCubePPORunnerCfg):
    """A GRU joint WAM (from scratch: 128 wide); world-model windows of 8 + 8 steps over the last 10 rollouts."""

    experiment_name = "wam_push_cube_joint_wam"
    obs_groups = {"actor": ["world_model", "instruction", "previous_action"], "critic": ["critic"]}
    actor = wam_actor_cfg()
    algorithm = wam_algorithm_cfg(PPO, critic_warmup_iterations=WARMUP)


@configclass
class PushCubeWamImaginationPPORunnerCfg(PushCubeWamPPORunnerCfg):
    """:class:`PushCubeWamPPORunnerCfg` with imagined rollouts joining the PPO batch."""

    experiment_name = "wam_push_cube_joint_wam_imagination"
    algorithm = wam_algorithm_cfg(PPO, critic_warmup_iterations=WARMUP, imagination=ImaginationCfg(enabled=True))
