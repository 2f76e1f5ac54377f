"""What ``wam export`` reads before starting a simulator: the checkpoint and the rsl-rl run directory around it.

A run directory written by ``wam train`` / ``isaaclab train`` holds ``run.json`` (library, task, agent entry point),
``params/env.yaml`` and ``params/agent.yaml`` (the resolved configs trained with) beside ``model_<i>.pt``.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

from .errors import ExportError

POLICY_KEY = "actor_state_dict"
"""Where an rsl-rl (>= 4) PPO checkpoint keeps the policy's weights."""


@dataclass
class RunInfo:
    """An rsl-rl checkpoint of one of this project's tasks, and its run directory."""

    checkpoint: Path
    run_dir: Path
    task: str
    agent_entry_point: str
    iteration: int | None
    env_yaml: dict
    """``params/env.yaml``: the env config as trained (after Hydra overrides)."""
    agent_yaml: dict
    """``params/agent.yaml``: the agent config as trained."""
    state: dict
    """The checkpoint's contents (tensors on the CPU)."""


def read_run(checkpoint: str | Path) -> RunInfo:
    """Load and check a checkpoint and its run directory.

    Raises:
        ExportError: the file is missing or not a torch checkpoint, holds no policy, or does not sit in an rsl-rl run
            directory of a WAM task.
    """
    import torch

    from wam_isaac_tasks import TASK_PREFIX

    path = Path(checkpoint)
    if not path.is_file():
        raise ExportError(f"checkpoint '{path}' does not exist; expected an rsl-rl run's model_<i>.pt")
    if not zipfile.is_zipfile(path):  # torch.save writes a zip archive
        raise ExportError(f"'{path}' is not a torch checkpoint (not a zip archive); expected an rsl-rl model_<i>.pt")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for an archive it cannot read
        raise ExportError(
            f"'{path}' is not a readable torch checkpoint ({type(error).__name__}); expected an rsl-rl model_<i>.pt"
        ) from None
    if not isinstance(state, dict) or POLICY_KEY not in state:
        keys = sorted(state)[:6] if isinstance(state, dict) else type(state).__name__
        raise ExportError(
            f"checkpoint '{path}' holds no policy (no '{POLICY_KEY}'; found {keys}); "
            "expected an rsl-rl PPO checkpoint model_<i>.pt written by wam train"
        )
    run_dir = path.parent
    manifest_path, params = run_dir / "run.json", run_dir / "params"
    if not manifest_path.is_file() or not (params / "agent.yaml").is_file() or not (params / "env.yaml").is_file():
        raise ExportError(
            f"'{path}' is not in an rsl-rl run directory (run.json and params/{{env,agent}}.yaml beside it); "
            "export a checkpoint from logs/rsl_rl/<experiment>/<run>/"
        )
    manifest = json.loads(manifest_path.read_text())
    task = manifest.get("task")
    if manifest.get("library") != "rsl_rl" or not isinstance(task, str) or not task.startswith(TASK_PREFIX):
        raise ExportError(
            f"'{path}' was trained on {task!r} with {manifest.get('library')!r}; wam export takes rsl-rl runs of "
            f"{TASK_PREFIX}* tasks"
        )
    agent = (manifest.get("metadata") or {}).get("agent") or "rsl_rl_cfg_entry_point"
    return RunInfo(
        checkpoint=path.resolve(),
        run_dir=run_dir.resolve(),
        task=task,
        agent_entry_point=agent,
        iteration=state.get("iter"),
        env_yaml=load_params_yaml((params / "env.yaml").read_text()),
        agent_yaml=load_params_yaml((params / "agent.yaml").read_text()),
        state=state,
    )


def load_params_yaml(text: str) -> dict:
    """Parse a YAML dump of Isaac Lab's ``dump_yaml`` safely: its ``python/...`` tags (tuples, slices) become plain
    lists (and a slice ``[start, stop, step]``); nothing is constructed or executed."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    def python_tag(loader, suffix, node):
        if isinstance(node, yaml.SequenceNode):
            return loader.construct_sequence(node, deep=True)
        if isinstance(node, yaml.MappingNode):
            return loader.construct_mapping(node, deep=True)
        return loader.construct_scalar(node)

    Loader.add_multi_constructor("tag:yaml.org,2002:python/", python_tag)
    return yaml.load(text, Loader=Loader)
