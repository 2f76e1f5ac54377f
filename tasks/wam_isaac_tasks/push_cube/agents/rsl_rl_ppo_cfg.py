"""rsl-rl PPO for WAM-Push-Cube (asymmetric actor-critic: the critic sees the randomized parameters)."""

from __future__ import annotations

from isaaclab.utils import configclass

from isaaclab_rl.rsl_rl import RslRlMLPModelCfg, RslRlOnPolicyRunnerCfg, RslRlPpoAlgorithmCfg

from wam_isaac.envs.physics import default_device


@configclass
class PushCubePPORunnerCfg(RslRlOnPolicyRunnerCfg):
    """PPO sized for a CPU: 512 envs x 24 steps per iteration, small MLPs."""

    num_steps_per_env = 24
    max_iterations = 300
    save_interval = 50
    experiment_name = "wam_push_cube"
    device = default_device()
    obs_groups = {"actor": ["policy"], "critic": ["critic"]}
    actor = RslRlMLPModelCfg(
        hidden_dims=[128, 128],
        activation="elu",
        obs_normalization=True,
        distribution_cfg=RslRlMLPModelCfg.GaussianDistributionCfg(init_std=0.5),
    )
    critic = RslRlMLPModelCfg(hidden_dims=[128, 128], activation="elu", obs_normalization=True)
    algorithm = RslRlPpoAlgorithmCfg(
        value_loss_coef=1.0,
        use_clipped_value_loss=True,
        clip_param=0.2,
        entropy_coef=0.005,
        num_learning_epochs=5,
        num_mini_batches=4,
        learning_rate=1.0e-3,
        schedule="adaptive",
        gamma=0.98,
        lam=0.95,
        desired_kl=0.01,
        max_grad_norm=1.0,
    )
