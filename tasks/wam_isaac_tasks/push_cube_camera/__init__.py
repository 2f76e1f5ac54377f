"""WAM-Push-Cube-Camera task registration: WAM-Push-Cube's agents, expert, labels and physics checks."""

import gymnasium as gym

from ..push_cube import WAM_CFG, agents

PUSH_CUBE = "wam_isaac_tasks.push_cube"
"""The package whose agents, expert, labels and physics spec the camera task reuses."""

gym.register(
    id="WAM-Push-Cube-Camera",
    entry_point="isaaclab.envs:ManagerBasedRLEnv",
    disable_env_checker=True,
    kwargs={
        "env_cfg_entry_point": f"{__name__}.push_cube_camera_env_cfg:PushCubeCameraEnvCfg",
        "rsl_rl_cfg_entry_point": f"{agents.__name__}.rsl_rl_ppo_cfg:PushCubePPORunnerCfg",
        "rsl_rl_wam_cfg_entry_point": f"{WAM_CFG}:PushCubeWamPPORunnerCfg",
        "rsl_rl_wam_imagination_cfg_entry_point": f"{WAM_CFG}:PushCubeWamImaginationPPORunnerCfg",
        "skrl_cfg_entry_point": f"{agents.__name__}:skrl_ppo_cfg.yaml",
        "default_agent": "rsl_rl",
        "wam_expert_entry_point": f"{PUSH_CUBE}.expert:PushCubeExpert",
        "wam_labels_cfg_entry_point": f"{PUSH_CUBE}.labels:PUSH_CUBE_LABELS",
        "wam_physics_spec_entry_point": f"{PUSH_CUBE}.physics_spec:PUSH_CUBE_PHYSICS",
    },
)

gym.register(
    id="WAM-Push-Cube-Camera-Depth",
    entry_point="isaaclab.envs:ManagerBasedRLEnv",
    disable_env_checker=True,
    kwargs={
        **gym.spec("WAM-Push-Cube-Camera").kwargs,
        "env_cfg_entry_point": f"{__name__}.push_cube_camera_env_cfg:PushCubeCameraDepthEnvCfg",
    },
)
