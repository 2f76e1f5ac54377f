"""Joint-WAM PPO on several ranks: what keeps every rank's WamPPO identical (a mixin of
:class:`~wam_isaac.training.wam_ppo.WamPPO`).

rsl-rl's multi-GPU PPO (``OnPolicyRunner`` with ``WORLD_SIZE > 1``: Isaac Lab's ``--distributed``, or ``wam train``
on several ranks) broadcasts rank 0's parameters once, averages the gradients of every step and agrees on the
adaptive learning rate; WamPPO's ``broadcast_parameters`` / ``reduce_parameters`` do that over its unique tensors
(the shared trunk once, the world-model and value heads, an MLP critic, the extra dynamics heads, every normalizer
buffer). Each rank collects its own envs (its own seed) into its own rollout storage and replay, so the rest must
agree wherever a rank's data alone would decide:

- advantages normalized over every rank's rollout (rsl-rl normalizes each rank's own), so that P ranks of N envs take
  the update one process of P x N envs would (equal minibatch shares: the mean of the ranks' minibatch gradients is
  the gradient of their union);
- the world-model steps and imagination run on every rank or on none (a rank without a valid replay window would
  otherwise skip the gradient all-reduces the others wait in);
- a run from scratch fits the WAM's normalizers on every rank's replay (all-reduced moments,
  :mod:`~wam_isaac.distributed.normalizers`): identical on every rank;
- the held-out prediction errors are reduced over the ranks' held-out windows before rank 0 logs them.

In a job of one rank every method here is the plain one (no collective).
"""

from __future__ import annotations

import torch

from .context import DistContext
from .normalizers import fit_recorded, recorded_fits

ERROR_PREFIX = "WorldModel/error@"
"""Held-out figures that are root mean squares over windows (reduced as such)."""
WINDOWS_KEY = "WorldModel/heldout_windows"
"""The held-out figure that counts the windows (summed over the ranks)."""


class RankSync:
    """Cross-rank agreement of WamPPO (see the module docstring); uses PPO's ``is_multi_gpu``, ``gpu_global_rank``,
    ``gpu_world_size`` and ``device`` and WamPPO's ``replay``, ``train_envs``, ``wm`` and ``wam``."""

    @property
    def rank_context(self) -> DistContext:
        """This rank's place in the job (one rank when not multi-GPU)."""
        if not self.is_multi_gpu:
            return DistContext()
        index = torch.device(self.device).index
        return DistContext(rank=self.gpu_global_rank, world_size=self.gpu_world_size, local_rank=index or 0)

    def all_ranks(self, flag: bool) -> bool:
        """Whether ``flag`` holds on every rank (a collective when multi-GPU)."""
        if not self.is_multi_gpu:
            return flag
        return bool(self.rank_context.all_reduce(torch.tensor([float(flag)]), op="min").item())

    def has_windows(self, transitions: int) -> bool:
        """Whether this rank's replay holds a window of ``transitions`` transitions of a training env."""
        return bool((self.replay.valid_starts(transitions) & self.train_envs[None]).any())

    # the update's steps ----------------------------------------------------------------------------------------------
    def compute_returns(self, obs) -> None:
        """PPO's returns; with several ranks, the advantages normalized over every rank's rollout."""
        super().compute_returns(obs)
        if not self.is_multi_gpu or self.normalize_advantage_per_mini_batch:
            return
        storage = self.storage
        advantages = (storage.returns - storage.values).double()
        context = self.rank_context
        # mean, then the unbiased std (torch.std's) around it: two all-reduces, as one process over the union
        first = context.all_reduce(torch.stack([advantages.new_tensor(advantages.numel()), advantages.sum()]).cpu())
        count, mean = first[0], first[1] / first[0]
        squares = context.all_reduce((advantages - mean.to(advantages.device)).square().sum().reshape(1).cpu())
        std = (squares[0] / (count - 1)).sqrt()
        normalized = (advantages - mean.to(advantages.device)) / (std.to(advantages.device) + 1e-8)
        storage.advantages = normalized.to(storage.values.dtype)

    def world_model_steps(self) -> dict[str, float]:
        """The world-model steps, on every rank or (when a rank has no training window yet) on none."""
        if self.is_multi_gpu and not self.all_ranks(self.has_windows(self.window_transitions)):
            return {}
        return super().world_model_steps()

    def imagine(self):
        """Imagination's rollout, on every rank or (when a rank has no history window yet) on none."""
        if self.is_multi_gpu and not self.all_ranks(self.has_windows(self.wm.get("history", 8))):
            return None
        return super().imagine()

    @torch.no_grad()
    def fit_normalizers(self) -> None:
        """Fit the WAM's normalizers on the replay of every rank (each rank's own replay in a job of one)."""
        if not self.is_multi_gpu:
            return super().fit_normalizers()
        with recorded_fits(self.wam) as recorders:
            super().fit_normalizers()
        fit_recorded(recorders, self.rank_context)

    @torch.no_grad()
    def heldout_errors(self) -> dict[str, float]:
        """The held-out prediction errors over every rank's held-out windows (see :func:`reduce_heldout`)."""
        local = super().heldout_errors()
        return reduce_heldout(local, self.rank_context) if self.is_multi_gpu else local


def reduce_heldout(local: dict[str, float], context: DistContext) -> dict[str, float]:
    """Every rank's held-out figures combined, identical on every rank (a collective): the windows summed, each
    ``WorldModel/error@k/<term>`` (an RMS over windows) the RMS over all ranks' windows, any other figure (the
    model / copy-last ratio) the mean of the ranks' figures weighted by their windows. A rank without held-out
    windows (``{}``) contributes nothing; ``{}`` if no rank has any.

    Args:
        local: this rank's figures (``WorldModel/...`` tags, with :data:`WINDOWS_KEY`), or ``{}``.
        context: the job.
    """
    names = sorted(set().union(*context.all_gather_object(sorted(local))) - {WINDOWS_KEY})
    windows = float(local.get(WINDOWS_KEY, 0.0))
    values = [windows]
    for name in names:
        value = float(local.get(name, 0.0))
        values.append(windows * (value * value if name.startswith(ERROR_PREFIX) else value))
    sums = context.all_reduce(torch.tensor(values, dtype=torch.float64))
    total = float(sums[0])
    if total == 0.0:
        return {}
    figures = {WINDOWS_KEY: total}
    for name, weighted in zip(names, sums[1:].tolist(), strict=True):
        mean = weighted / total
        figures[name] = mean**0.5 if name.startswith(ERROR_PREFIX) else mean
    return figures
