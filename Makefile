# Set-up is part of every target: on a fresh machine `make train` or `make test` creates the venv (Python 3.12,
# Isaac Lab 3.0 with its CUDA-enabled torch: about 8 GB, a few minutes) and installs this project, then runs.

VENV     ?= .venv
PYTHON   ?= $(shell pyenv which python 2>/dev/null || command -v python3.12)
TASK     ?= WAM-Push-Cube
NUM_ENVS ?= 512
ITERS    ?= 100
STAMP    := $(VENV)/.installed

.PHONY: setup train test unit bench assets lint

setup: $(STAMP)

$(STAMP): pyproject.toml
	@test -n "$(PYTHON)" || { echo "error: Python 3.12 not found; install it (pyenv install 3.12) or set PYTHON=..."; exit 1; }
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 12), sys.version' \
		|| { echo "error: $(PYTHON) is not Python 3.12 (Isaac Lab 3.0 needs 3.12); set PYTHON=/path/to/python3.12"; exit 1; }
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --upgrade pip
	$(VENV)/bin/python -m pip install -e ".[dev]"
	touch $(STAMP)

# The main job. On WAM-Push-Cube (the default) the WAM pipeline at a CPU budget: generate -> pretrain the joint WAM ->
# joint-WAM PPO fine-tune -> evaluate, a progress line per stage, artifacts under runs/pipeline/<task> (PIPELINE_ARGS
# adds flags, e.g. --max_iterations 50). On any other TASK plain rsl-rl PPO (NUM_ENVS, ITERS); PIPELINE=1 runs the
# pipeline there too, PIPELINE=0 plain PPO on Push-Cube. One torch thread per stage unless OMP_NUM_THREADS is set: with
# two, the fine-tune's CPU time was 720 s instead of 271 s on these 2 cores.
PIPELINE ?= $(if $(filter WAM-Push-Cube,$(TASK)),1,0)
PIPELINE_ARGS ?=
train: $(STAMP)
ifeq ($(PIPELINE),1)
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1} $(VENV)/bin/wam pipeline --task $(TASK) $(PIPELINE_ARGS)
else
	$(VENV)/bin/wam train --task $(TASK) --num_envs $(NUM_ENVS) --max_iterations $(ITERS)
endif

# Unit tests (no simulator, seconds) and integration tests (real Isaac Lab envs on the CPU, a few envs), on
# TEST_WORKERS pytest-xdist processes, a test file per process at a time (its module-scoped env is started once).
# Each process runs one torch thread (OMP_NUM_THREADS=1 in CI) and Warp's CPU kernels on one thread, so 2 workers
# keep 2 cores busy; each holds its own Isaac Lab env and torch, so mind the memory before raising it.
TEST_WORKERS ?= 2
test: $(STAMP)
	$(VENV)/bin/python -m pytest tests -q -n $(TEST_WORKERS) --dist loadfile

unit: $(STAMP)
	$(VENV)/bin/python -m pytest tests/unit -q

bench: $(STAMP)
	$(VENV)/bin/wam bench

assets: $(STAMP)
	$(VENV)/bin/python -m wam_isaac_assets

lint: $(STAMP)
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .
