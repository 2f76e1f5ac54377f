#!/usr/bin/env bash
# Sim-to-real round trip on WAM-Push-Cube (issue 13): export a trained policy (wam export: parity of onnxruntime vs
# torch, surprise-monitor calibration), then wam transfer-eval under (a) training DR, (b) wider DR, (c) observation
# delay + noise, (d) solver substeps, and once more under the training DR with a 100x cube (the monitor should fire).
#
# usage: scripts/roundtrip_push_cube.sh NAME CHECKPOINT [WORLD_MODEL]
#   NAME         label of the artifacts: runs/h13/export_NAME/, runs/h13/transfer_NAME{,_heavy100}.{json,log}
#   CHECKPOINT   rsl-rl run checkpoint (plain PPO or joint-WAM PPO), e.g. logs/rsl_rl/wam_push_cube/<run>/model_112.pt,
#                or a wam train-model / wam dagger joint or cascaded WAM checkpoint (<run>/checkpoints/last.pt)
#   WORLD_MODEL  optional wam train-model checkpoint exported beside a plain PPO policy (a joint-WAM PPO run's
#                checkpoint and a joint WAM bring their own world model)
# environment: OUT_ROOT (default runs/h13), NUM_ENVS (32), EPISODES (128: 4 per env), HEAVY_EPISODES (64), SEED (0);
#   the README's figures use these defaults
#
# Each step's figures are printed by wam itself and kept in the .log/.json files; the export replaces an existing
# export of the same NAME (--overwrite: the old one stays if the new one fails validation).
set -euo pipefail

if [[ $# -lt 2 || $# -gt 3 ]]; then
    echo "usage: $0 NAME CHECKPOINT [WORLD_MODEL]" >&2
    exit 2
fi
name=$1
checkpoint=$2
world_model=${3:-}
if [[ ! -f $checkpoint ]]; then
    echo "$0: CHECKPOINT $checkpoint does not exist; expected an rsl-rl model_<i>.pt or a wam train-model last.pt" >&2
    exit 2
fi
if [[ -n $world_model && ! -f $world_model ]]; then
    echo "$0: WORLD_MODEL $world_model does not exist; expected a wam train-model checkpoint" >&2
    exit 2
fi

cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
out_root=${OUT_ROOT:-runs/h13}
num_envs=${NUM_ENVS:-32}
episodes=${EPISODES:-128}
heavy_episodes=${HEAVY_EPISODES:-64}
seed=${SEED:-0}
wam=.venv/bin/wam
export_dir=$out_root/export_$name
heavy='env.events.cube_mass.params.mass_distribution_params=[100.0,100.0]'
mkdir -p "$out_root"

extra=()
[[ -n $world_model ]] && extra=(--world-model "$world_model")
echo "== export $checkpoint -> $export_dir"
{ time $wam export --checkpoint "$checkpoint" "${extra[@]}" --out "$export_dir" --overwrite; } \
    2>&1 | tee "$out_root/export_$name.log" | grep -E '^\[wam\]|^real|^user|rror'

echo "== transfer-eval (a)-(d): $num_envs envs, $episodes episodes per condition"
{ time $wam transfer-eval --exported "$export_dir" --task WAM-Push-Cube --num_envs "$num_envs" \
    --episodes "$episodes" --seed "$seed" --json "$out_root/transfer_$name.json"; } \
    2>&1 | tee "$out_root/transfer_$name.log" \
    | grep -E '^\[wam\]|^condition|^training|^wider|^obs_|^solver|^real|^user|rror'

echo "== transfer-eval training DR, cube x100: $heavy_episodes episodes"
{ time $wam transfer-eval --exported "$export_dir" --task WAM-Push-Cube --num_envs "$num_envs" \
    --episodes "$heavy_episodes" --seed "$seed" --conditions training \
    --json "$out_root/transfer_${name}_heavy100.json" "$heavy"; } \
    2>&1 | tee "$out_root/transfer_${name}_heavy100.log" | grep -E '^\[wam\]|^condition|^training|^real|^user|rror'
