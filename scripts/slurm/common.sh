# Shared by the SLURM recipes of this folder (sourced, not run).
#
# PRESET: Isaac Sim's PhysX where Isaac Sim is installed, else Newton (MuJoCo-Warp); override with PRESET=...
# DEVICE: cuda (each rank takes cuda:<LOCAL_RANK>); DEVICE=cpu runs the same recipe on CPUs (one rank per core).
# NPROC:  ranks per node (default: the node's GPUs, or 1).
# Everything runs headless: Isaac Lab 3.0 starts no visualizer unless asked (it rejects --headless).

WAM_PYTHON=${WAM_PYTHON:-python}
if [ -z "${PRESET:-}" ]; then
    if "$WAM_PYTHON" -c "import isaacsim" >/dev/null 2>&1; then PRESET=presets=physx; else PRESET=presets=newton_mjwarp; fi
fi
DEVICE=${DEVICE:-cuda}
if [ -z "${NPROC:-}" ]; then
    if [ "$DEVICE" = cpu ]; then NPROC=1; else NPROC=${SLURM_GPUS_ON_NODE:-$(nvidia-smi -L 2>/dev/null | wc -l)}; fi
fi
# torchrun's agent forwards these signals to the ranks (torchrun --signals_to_handle); SIGUSR1 (sbatch --signal) asks
# them to checkpoint and stop, as SIGTERM does
SIGNALS=--signals_to_handle=SIGTERM,SIGINT,SIGHUP,SIGQUIT,SIGUSR1

# run_preemptible CMD...: run CMD in the background; on SIGUSR1/SIGTERM (the scheduler's warning) forward SIGUSR1 to
# it, wait for it to checkpoint and exit, then requeue the job (which resumes from the checkpoint).
run_preemptible() {
    "$@" &
    local pid=$! preempted=0 status=0
    trap 'preempted=1; kill -USR1 "$pid" 2>/dev/null' USR1 TERM
    while true; do
        wait "$pid" && status=0 || status=$?
        kill -0 "$pid" 2>/dev/null || break  # wait returned because a trapped signal arrived: keep waiting
    done
    trap - USR1 TERM
    if [ "$preempted" = 1 ]; then  # the ranks checkpointed and exited 0; torchrun itself reports the signal
        status=0
        if [ -n "${SLURM_JOB_ID:-}" ] && command -v scontrol >/dev/null; then
            echo "[wam] preempted: requeueing job $SLURM_JOB_ID"
            scontrol requeue "$SLURM_JOB_ID"
        fi
    fi
    return "$status"
}
