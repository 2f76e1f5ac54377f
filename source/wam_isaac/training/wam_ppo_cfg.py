"""Typed configuration of :class:`~wam_isaac.training.wam_ppo.WamPPO`, the joint-WAM PPO algorithm of rsl-rl.

An Isaac Lab agent config selects it with ``algorithm = WamPpoAlgorithmCfg(...)``; Isaac Lab turns the runner config
into a dict (``to_dict``), rsl-rl resolves ``class_name`` and hands every other field to
:meth:`WamPPO.construct_algorithm <wam_isaac.training.wam_ppo.WamPPO.construct_algorithm>`, so the fields below
are overridable from the command line like any other (``agent.algorithm.world_model_weight=0.5``,
``agent.algorithm.pretrained_checkpoint=<path>``, ``agent.algorithm.world_model.steps=8``).
"""

from __future__ import annotations

import dataclasses

from isaaclab.utils import configclass

from isaaclab_rl.rsl_rl import RslRlMLPModelCfg, RslRlPpoAlgorithmCfg

from .imagination import ImaginationCfg

WAM_PPO_CLASS = "wam_isaac.training.wam_ppo:WamPPO"
"""The ``class_name`` rsl-rl resolves to :class:`~wam_isaac.training.wam_ppo.WamPPO`."""


@configclass
class WamModelCfg:
    """The joint WAM built when no pretrained checkpoint is given (a checkpoint brings its own architecture)."""

    trunk: str = "gru"
    """Shared trunk: ``gru`` (recurrent: rsl-rl's recurrent PPO path, hidden state carried over the episode) or
    ``mlp`` (one step). ``transformer`` trunks do not fit rsl-rl's hidden-state storage and are refused."""
    hidden: int = 128
    """Width of the trunk and of the features the heads read."""
    layers: int = 2
    """GRU: one input layer then ``layers - 1`` GRU layers; MLP: hidden layers."""
    head_hidden: int = 128
    """Width of the dynamics, action and value heads' hidden layers."""
    rotation: str = "rotvec"
    """Quaternion handling of the state (see :class:`~wam_isaac.models.config.ModelCfg`)."""
    delta_scale: str = "term"
    """Scale of the normalized state changes (see :class:`~wam_isaac.models.config.ModelCfg`)."""


@configclass
class WorldModelStepsCfg:
    """The world-model gradient steps every ``update()`` takes after PPO's epochs."""

    steps: int = 4
    """Gradient steps per update (each on a fresh minibatch of replay windows)."""
    batch_size: int = 64
    """Windows per world-model step."""
    history: int = 8
    """H: true steps of each window the trunk conditions on [steps]."""
    forecast: int = 8
    """F: autoregressive forecast steps of each window [steps]; a window spans H + F states."""
    reward_weight: float = 0.1
    """Weight of the reward head's loss (targets: the env's raw rewards, not PPO's time-out-bootstrapped ones)."""
    termination_weight: float = 0.1
    """Weight of the termination head's loss (targets: ``dones & ~time_outs``)."""
    heldout_env_fraction: float = 0.125
    """Fraction of the envs (the last ones) whose transitions are never trained on by the world model: the
    ``WorldModel/...`` prediction errors are measured on them."""
    eval_horizon: int = 8
    """Horizon [steps] of the logged held-out prediction error ``WorldModel/error@<k>/<term>``."""
    eval_windows: int = 128
    """Held-out windows (the most recent ones) the prediction error is measured on."""


@configclass
class WamPpoAlgorithmCfg(RslRlPpoAlgorithmCfg):
    """rsl-rl PPO on a joint WAM's shared trunk, plus world-model steps on the fresh rollouts and a replay buffer."""

    class_name: str = WAM_PPO_CLASS
    """rsl-rl resolves this to :class:`~wam_isaac.training.wam_ppo.WamPPO`."""
    world_model_weight: float = 1.0
    """Weight of the world-model loss in the world-model steps, which share the PPO optimizer (and its Adam
    statistics) on the trunk; 0 turns the world-model steps off (PPO on the WAM's trunk alone)."""
    pretrained_checkpoint: str | None = None
    """A ``wam train-model --model joint`` checkpoint to fine-tune (trunk, heads and normalizers); ``None`` trains a
    joint WAM from scratch (normalizers fitted on the first rollout, then fixed)."""
    fine_tune_learning_rate: float | None = 1.0e-4
    """With ``pretrained_checkpoint``: the learning rate from the end of the critic warm-up on, and the ceiling of
    PPO's adaptive schedule (which still lowers it when the KL exceeds twice ``desired_kl``); the warm-up trains the
    critic at ``learning_rate``. ``None``: ``learning_rate`` and rsl-rl's ceiling 1e-2 throughout. Measured on a
    behaviour-cloned Push-Cube WAM (GRU 128): one Adam step at 1e-3 moves its policy by a KL of 0.2 (20x
    ``desired_kl``), after which the schedule saws between 1e-5 and 3e-4; a whole update at 1e-4 moves it by
    0.015."""
    anchor_kl_weight: float = 0.0
    """Weight of the anchor to the initial policy (the pretrained one in a fine-tune): ``anchor_kl_weight`` x
    KL(pi_initial || pi) (summed over action dimensions, averaged over each minibatch's observations) joins PPO's
    loss after the critic warm-up; the initial policy is a frozen copy of the actor taken at construction (not in the
    optimizer, saved in checkpoints). 0: no anchor (PPO's update unchanged)."""
    anchor_decay_iterations: int = 0
    """Updates over which the anchor's weight falls linearly from ``anchor_kl_weight`` to 0, counted from the end of
    the critic warm-up; 0 keeps it constant."""
    shared_critic: bool = True
    """Value from the WAM's value head on the shared trunk (True) or from rsl-rl's MLP on the ``critic`` group."""
    critic_warmup_iterations: int = 0
    """Iterations during which the actor (action head and trunk) is frozen and only the critic learns, so that PPO
    does not wreck a behaviour-cloned policy with an untrained value function."""
    replay_capacity: int = 240
    """Transitions per env the world-model replay keeps [steps] (ten rollouts of 24 steps)."""
    wam_model: WamModelCfg = WamModelCfg()
    """The joint WAM of a run from scratch."""
    world_model: WorldModelStepsCfg = WorldModelStepsCfg()
    """The world-model steps."""
    imagination: ImaginationCfg = ImaginationCfg()
    """Imagined rollouts joining the PPO batch (off by default; needs the shared critic: imagined transitions have
    no ``critic`` group)."""


def wam_algorithm_cfg(ppo: RslRlPpoAlgorithmCfg, **fields) -> WamPpoAlgorithmCfg:
    """A :class:`WamPpoAlgorithmCfg` with the PPO settings of ``ppo`` (a task's plain PPO recipe) and WamPPO's
    ``fields``: the joint WAM trains with the same PPO hyperparameters as the baseline it is compared with."""
    base = {f.name: getattr(ppo, f.name) for f in dataclasses.fields(ppo) if f.name != "class_name"}
    return WamPpoAlgorithmCfg(**{**base, **fields})


def wam_actor_cfg() -> RslRlMLPModelCfg:
    """The ``actor`` entry of a joint-WAM runner config: a record only (``class_name`` names the adapter); WamPPO
    builds the actor from the joint WAM itself (its trunk, action head and their widths)."""
    return RslRlMLPModelCfg(class_name="wam_isaac.models.rl_adapters:WamActor", hidden_dims=[], activation="elu")


WAM_ACTOR_GROUPS = ["world_model", "instruction", "previous_action"]
"""The observation groups a joint WAM's actor reads (tasks without an instruction drop that group)."""
