"""WAM-Cartpole task registration."""

import gymnasium as gym

from . import agents

WAM_CFG = f"{agents.__name__}.rsl_rl_wam_cfg"
"""Module of the joint-WAM PPO agent configurations."""

gym.register(
    id="WAM-Cartpole",
    entry_point="isaaclab.envs:ManagerBasedRLEnv",
    disable_env_checker=True,
    kwargs={
        "env_cfg_entry_point": f"{__name__}.cartpole_env_cfg:CartpoleEnvCfg",
        "rsl_rl_cfg_entry_point": f"{agents.__name__}.rsl_rl_ppo_cfg:CartpolePPORunnerCfg",
        "rsl_rl_wam_cfg_entry_point": f"{WAM_CFG}:CartpoleWamPPORunnerCfg",
        "rsl_rl_wam_imagination_cfg_entry_point": f"{WAM_CFG}:CartpoleWamImaginationPPORunnerCfg",
        "skrl_cfg_entry_point": f"{agents.__name__}:skrl_ppo_cfg.yaml",
        "default_agent": "rsl_rl",
        "wam_expert_entry_point": f"{__name__}.expert:CartpoleLQRExpert",
    },
)
