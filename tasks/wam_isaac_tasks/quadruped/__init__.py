"""WAM-Quadruped-Flat task registration."""

import gymnasium as gym

from . import agents

WAM_CFG = f"{agents.__name__}.rsl_rl_wam_cfg"
"""Module of the joint-WAM PPO agent configurations."""

gym.register(
    id="WAM-Quadruped-Flat",
    entry_point="isaaclab.envs:ManagerBasedRLEnv",
    disable_env_checker=True,
    kwargs={
        "env_cfg_entry_point": f"{__name__}.quadruped_env_cfg:QuadrupedFlatEnvCfg",
        "rsl_rl_cfg_entry_point": f"{agents.__name__}.rsl_rl_ppo_cfg:QuadrupedFlatPPORunnerCfg",
        "rsl_rl_wam_cfg_entry_point": f"{WAM_CFG}:QuadrupedFlatWamPPORunnerCfg",
        "rsl_rl_wam_imagination_cfg_entry_point": f"{WAM_CFG}:QuadrupedFlatWamImaginationPPORunnerCfg",
        "skrl_cfg_entry_point": f"{agents.__name__}:skrl_ppo_cfg.yaml",
        "default_agent": "rsl_rl",
    },
)
