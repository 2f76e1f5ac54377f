"""The export refuses a run whose trained env config differs from the env it rebuilds on the fields the metadata
describes (observations, actions, events, decimation, physics step), naming the first differing field."""

from __future__ import annotations

import pytest
import yaml

from isaaclab.utils import configclass
from isaaclab.utils.dict import class_to_dict

from wam_isaac.export import ExportError
from wam_isaac.export.exporter import check_trained_config
from wam_isaac.export.run_dir import load_params_yaml


@configclass
class TermCfg:
    scale: float | None = None
    clip: tuple[float, float] | None = (-1.0, 1.0)


@configclass
class PolicyCfg:
    joint_pos: TermCfg = TermCfg()


@configclass
class ObservationsCfg:
    policy: PolicyCfg = PolicyCfg()


@configclass
class SimCfg:
    dt: float = 0.005
    device: str = "cpu"


@configclass
class EnvCfg:
    decimation: int = 4
    sim: SimCfg = SimCfg()
    observations: ObservationsCfg = ObservationsCfg()
    seed: int = 0


def dumped(cfg) -> dict:
    """What ``params/env.yaml`` holds, read back as the exporter reads it."""
    return load_params_yaml(yaml.dump(class_to_dict(cfg), default_flow_style=False, sort_keys=False))


def test_same_config_passes_and_unchecked_fields_may_differ():
    trained = EnvCfg()
    trained.seed, trained.sim.device = 42, "cuda:0"
    check_trained_config(EnvCfg(), dumped(trained))


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (lambda cfg: setattr(cfg.observations.policy.joint_pos, "scale", 2.0), "observations.policy.joint_pos.scale"),
        (lambda cfg: setattr(cfg.observations.policy.joint_pos, "clip", (-5.0, 5.0)), "joint_pos.clip"),
        (lambda cfg: setattr(cfg, "decimation", 2), "env.decimation"),
        (lambda cfg: setattr(cfg.sim, "dt", 0.01), "env.sim.dt"),
    ],
)
def test_an_override_of_a_described_field_is_refused_by_name(edit, field):
    trained = EnvCfg()
    edit(trained)
    with pytest.raises(ExportError, match=field.replace(".", r"\.")) as error:
        check_trained_config(EnvCfg(), dumped(trained))
    assert "\n" not in str(error.value)
