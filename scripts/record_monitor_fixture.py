"""Record the surprise monitor's test fixture: WAM-Push-Cube rollouts under a PPO policy with heavier cubes, and an
exported world model's one-step predictions on them.

The env runs ``nominal + per_factor * len(factors)`` envs: envs ``[0, nominal)`` keep the training randomization
(cube mass x U(0.5, 2)), then ``per_factor`` envs per factor with the cube mass exactly ``factor`` x its default (the
rest of the training randomization unchanged). The rollout is recorded as the world model sees it
(:func:`wam_isaac.export.monitor_calibration.record_world`, the window history and state schema of ``--world_model``),
the exported ``world_model.onnx`` of ``--exported`` predicts every step from its full window (the monitor's
prediction, GRU memory zero at the window's first step), and the npz at ``--out`` keeps the envs whose factor is in
``--keep`` (1 for the nominal envs), in env order:

- ``delta`` (T, N, D) float32: the measured change of the state term ``--term`` over each step (next state minus the
  window's last state; the next episode's first state where ``dones``), D the term's delta size;
- ``mean``, ``std`` (T, N, D) float32: the world model's predicted change (``delta_mean``, ``delta_std``) of that term;
- ``dones`` (T, N) bool: the episode ended at the step;
- ``factor`` (N,) float64: the env's cube-mass factor (1: training randomization).

The committed ``tests/unit/deploy/data/push_cube_heavy_joint_pos.npz`` (300 steps, 32 envs: 16 nominal, 8 at 10x,
8 at 100x) was recorded with a plain PPO policy (rsl-rl run ``logs/rsl_rl/wam_push_cube/2026-12-01_08-44-38``,
iteration 100) and a GRU world model (``wam train-model`` kind ``gru``, history 8, forecast 16, 1 layer of 128,
8 epochs on 25600 WAM-Push-Cube transitions from ``wam generate`` under the training randomization; its
``GRU_RUN/config.yaml`` holds every setting), exported with ``wam export`` of that policy and world model into
``EXPORT`` (metadata ``world_model.source``: kind ``gru``, epoch 8)::

    OMP_NUM_THREADS=1 .venv/bin/python scripts/record_monitor_fixture.py \\
        --checkpoint logs/rsl_rl/wam_push_cube/2026-12-01_08-44-38/model_100.pt \\
        --world_model GRU_RUN/checkpoints/last.pt --exported EXPORT \\
        --steps 300 --seed 0 --nominal 16 --per_factor 8 --factors 2,4,10,30,100 --keep 1,10,100 \\
        --out tests/unit/deploy/data/push_cube_heavy_joint_pos.npz
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

CHUNK = 8192
"""Windows per onnxruntime call."""


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", required=True, help="rsl-rl policy checkpoint model_<it>.pt in its run dir")
    parser.add_argument("--world_model", required=True, help="`wam train-model` checkpoint (window schema, history)")
    parser.add_argument("--exported", required=True, help="`wam export` dir holding that world model's ONNX")
    parser.add_argument("--out", required=True, help="npz to write")
    parser.add_argument("--steps", type=int, default=300, help="control steps recorded")
    parser.add_argument("--seed", type=int, default=0, help="env seed")
    parser.add_argument("--nominal", type=int, default=16, help="envs with the training cube-mass randomization")
    parser.add_argument("--per_factor", type=int, default=8, help="envs per cube-mass factor")
    parser.add_argument("--factors", default="2,4,10,30,100", help="cube-mass factors, comma separated")
    parser.add_argument("--keep", default="1,10,100", help="factors whose envs are written (1: nominal envs)")
    parser.add_argument("--term", default="joint_pos", help="state term written")
    parser.add_argument("--device", default="cpu", help="simulation device")
    return parser.parse_args(argv)


def floats(text: str, name: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise SystemExit(f"error: --{name} {text!r} is not a comma-separated list of numbers") from None
    if any(v <= 0 for v in values):
        raise SystemExit(f"error: --{name} {text!r} holds a factor <= 0; factors must be positive")
    return values


def record(args: argparse.Namespace, factors: list[float]):
    """The recording and each env's cube-mass factor (N,)."""
    import torch
    from tensordict import TensorDict

    from wam_isaac.export.exporter import load_policy, task_env
    from wam_isaac.export.monitor_calibration import record_world
    from wam_isaac.export.run_dir import read_run
    from wam_isaac.export.wam_checkpoint import read_wam_checkpoint

    run = read_run(args.checkpoint)
    wam = read_wam_checkpoint(args.world_model)
    n = args.nominal + args.per_factor * len(factors)
    with task_env(run.task, run.agent_entry_point, args.device, n, args.seed) as (env, agent_cfg):
        term = env.event_manager.get_term_cfg("cube_mass")
        factor = np.ones(n)
        for i, f in enumerate(factors):
            ids = torch.arange(args.nominal + i * args.per_factor, args.nominal + (i + 1) * args.per_factor)
            term.func(env, ids.to(env.device), **{**term.params, "mass_distribution_params": (f, f)})
            factor[ids.numpy()] = f
        mass = env.scene["cube"].data.body_mass.torch[:, 0].cpu().numpy()
        print("cube masses [kg]", np.round(mass, 3).tolist(), flush=True)
        _, actor, agent_cfg = load_policy(env, run, agent_cfg)
        clip = agent_cfg.clip_actions

        def behaviour(obs, window):
            with torch.inference_mode():
                actions = actor(TensorDict(dict(obs), batch_size=[env.num_envs]))
            return actions if clip is None else actions.clamp(-clip, clip)

        actor.reset()
        recording = record_world(
            env, wam.schema, wam.history, behaviour, args.steps, seed=args.seed, on_done=actor.reset
        )
    return recording, factor


def predict(exported: Path, recording) -> tuple[dict, np.ndarray, np.ndarray]:
    """The world-model block of ``exported`` and its ``delta_mean``, ``delta_std`` (T, N, D) on ``recording``."""
    from wam_isaac.export.validate import session

    block = json.loads((exported / "metadata.json").read_text())["world_model"]
    graph = session(exported / block["file"])
    names = [i["name"] for i in block["inputs"]]
    outputs = [o["name"] for o in block["outputs"]]
    feed = recording.flat_inputs(names)
    total = len(feed["action"])
    parts = {"delta_mean": [], "delta_std": []}
    for start in range(0, total, CHUNK):
        chunk = {k: v[start : start + CHUNK] for k, v in feed.items()}
        if "memory_in" in names:
            rec = block["recurrent"]
            memory = (rec["num_layers"], len(chunk["action"]), rec["hidden_size"])
            chunk["memory_in"] = np.zeros(memory, np.float32)
        named = dict(zip(outputs, graph.run(None, {k: chunk[k] for k in names}), strict=True))
        for k in parts:
            parts[k].append(named[k])
    steps, envs = recording.dones.shape
    mean, std = (np.concatenate(parts[k]).reshape(steps, envs, -1) for k in ("delta_mean", "delta_std"))
    return block, mean, std


def main(argv: list[str] | None = None) -> None:
    from wam_isaac.deploy.rotations import state_difference

    args = parse(argv)
    factors, keep = floats(args.factors, "factors"), floats(args.keep, "keep")
    exported, out = Path(args.exported), Path(args.out)
    if not (exported / "metadata.json").is_file():
        raise SystemExit(f"error: --exported {exported} holds no metadata.json; give a `wam export` output dir")
    block = json.loads((exported / "metadata.json").read_text()).get("world_model")
    if not block:
        raise SystemExit(f"error: --exported {exported} holds no world model (metadata world_model is null)")
    terms = {t["name"]: t for t in block["state"]["terms"]}
    if args.term not in terms:
        raise SystemExit(f"error: --term {args.term!r} is not a world-model state term; one of {sorted(terms)}")
    if missing := sorted(set(keep) - {1.0, *factors}):
        raise SystemExit(f"error: --keep {missing} not among the factors {[1.0, *factors]}")
    if min(args.steps, args.nominal, args.per_factor) < 1:
        raise SystemExit("error: --steps, --nominal and --per_factor must be at least 1")
    if not out.parent.is_dir():
        raise SystemExit(f"error: --out {out}: directory {out.parent} does not exist")

    recording, factor = record(args, factors)
    _, mean, std = predict(exported, recording)
    term = terms[args.term]
    delta = state_difference(recording.states[:, :, -1], recording.next_states, [term])
    a, b = term["delta_slice"]
    envs = np.flatnonzero(np.isin(factor, keep))
    arrays = {
        "delta": delta[:, envs].astype(np.float32),
        "mean": mean[:, envs, a:b],
        "std": std[:, envs, a:b],
        "dones": recording.dones[:, envs],
        "factor": factor[envs],
    }
    tmp = out.with_name(out.name + ".tmp.npz")
    np.savez_compressed(tmp, **arrays)
    tmp.replace(out)
    print(f"wrote {out}: " + ", ".join(f"{k} {v.shape} {v.dtype}" for k, v in arrays.items()), flush=True)


if __name__ == "__main__":
    try:
        main()
    except SystemExit as exc:
        if isinstance(exc.code, str):
            print(exc.code, file=sys.stderr)
            sys.exit(2)
        raise
