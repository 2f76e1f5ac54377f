"""WAM-Push-Cube task registration."""

import gymnasium as gym

from . import agents

WAM_CFG = f"{agents.__name__}.rsl_rl_wam_cfg"
"""Module of the joint-WAM PPO agent configurations."""

gym.register(
    id="WAM-Push-Cube",
    entry_point="isaaclab.envs:ManagerBasedRLEnv",
    disable_env_checker=True,
    kwargs={
        "env_cfg_entry_point": f"{__name__}.push_cube_env_cfg:PushCubeEnvCfg",
        "rsl_rl_cfg_entry_point": f"{agents.__name__}.rsl_rl_ppo_cfg:PushCubePPORunnerCfg",
        "rsl_rl_wam_cfg_entry_point": f"{WAM_CFG}:PushCubeWamPPORunnerCfg",
        "rsl_rl_wam_imagination_cfg_entry_point": f"{WAM_CFG}:PushCubeWamImaginationPPORunnerCfg",
        "skrl_cfg_entry_point": f"{agents.__name__}:skrl_ppo_cfg.yaml",
        "default_agent": "rsl_rl",
        "wam_expert_entry_point": f"{__name__}.expert:PushCubeExpert",
        "wam_labels_cfg_entry_point": f"{__name__}.labels:PUSH_CUBE_LABELS",
        "wam_physics_spec_entry_point": f"{__name__}.physics_spec:PUSH_CUBE_PHYSICS",
    },
)
