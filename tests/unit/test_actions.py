"""ActuationRandomizedAction: per-env latency and strength, on a recording stand-in for the wrapped term."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from isaaclab.managers import ActionTerm, ActionTermCfg
from isaaclab.utils import configclass

from wam_isaac.envs.actions import ActuationRandomizedAction, ActuationRandomizedActionCfg


class RecordingAction(ActionTerm):
    """Records every action it is given."""

    def __init__(self, cfg, env):
        super().__init__(cfg, env)
        self.received: list[torch.Tensor] = []
        self.resets = 0

    @property
    def action_dim(self) -> int:
        return 2

    @property
    def raw_actions(self):
        return self.received[-1]

    @property
    def processed_actions(self):
        return self.received[-1]

    def process_actions(self, actions):
        self.received.append(actions.clone())

    def apply_actions(self):
        pass

    def reset(self, env_ids=None):
        self.resets += 1


@configclass
class RecordingActionCfg(ActionTermCfg):
    class_type: type = RecordingAction
    asset_name: str = "robot"


def make_term(num_envs: int, latency=(0, 0), strength=(1.0, 1.0)) -> ActuationRandomizedAction:
    env = SimpleNamespace(num_envs=num_envs, device="cpu", scene={"robot": object()})
    cfg = ActuationRandomizedActionCfg(term=RecordingActionCfg(), latency_steps=latency, strength_scale=strength)
    return ActuationRandomizedAction(cfg, env)


def test_each_env_receives_its_action_delayed_by_its_latency():
    torch.manual_seed(0)
    term = make_term(4, latency=(0, 3))
    term.latency[:] = torch.tensor([0, 1, 2, 3])
    sent = [torch.full((4, 2), float(step + 1)) for step in range(6)]
    for actions in sent:
        term.process_actions(actions)
    received = torch.stack([a[:, 0] for a in term.term.received])  # (steps, envs)
    for env, lag in enumerate([0, 1, 2, 3]):
        # zeros until `lag` steps have passed, then the action sent `lag` steps earlier
        expected = [0.0] * lag + [float(step + 1) for step in range(6 - lag)]
        assert received[:, env].tolist() == expected, f"env {env} with latency {lag}"


def test_reset_clears_history_and_resamples_within_range():
    torch.manual_seed(0)
    term = make_term(64, latency=(1, 2), strength=(0.5, 1.5))
    assert set(term.latency.tolist()) == {1, 2}
    assert term.strength.min() >= 0.5 and term.strength.max() <= 1.5
    assert term.strength.std() > 0.1, "strength must differ between envs"
    term.process_actions(torch.ones(64, 2))
    term.process_actions(torch.ones(64, 2))
    term.reset(torch.tensor([0]))
    term.latency[0] = 1
    term.process_actions(torch.full((64, 2), 7.0))
    # env 0 was reset: nothing sent since the reset has arrived yet, so it gets zeros, not the pre-reset ones
    assert term.term.received[-1][0].tolist() == [0.0, 0.0]
    # env 1 was not reset: with latency 1 or 2 it gets one of the two earlier all-ones actions, scaled by its strength
    assert term.term.received[-1][1].tolist() == pytest.approx([term.strength[1].item()] * 2)


def test_strength_scales_the_raw_action():
    torch.manual_seed(0)
    term = make_term(3, strength=(0.5, 2.0))
    term.process_actions(torch.ones(3, 2))
    assert torch.allclose(term.term.received[-1], term.strength.unsqueeze(-1).expand(3, 2))
    assert torch.equal(term.raw_actions, torch.ones(3, 2))


@pytest.mark.parametrize("latency, strength", [((2, 1), (1.0, 1.0)), ((-1, 0), (1.0, 1.0)), ((0, 0), (0.0, 1.0))])
def test_invalid_ranges_are_rejected(latency, strength):
    with pytest.raises(ValueError):
        make_term(2, latency=latency, strength=strength)
