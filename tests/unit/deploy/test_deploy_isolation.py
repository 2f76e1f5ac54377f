"""The deploy runtime imports and runs with torch, Isaac Lab, Warp and Newton made unimportable."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
from deploy_synthetic import ReferencePolicy, random_terms

BLOCKED = ("torch", "isaaclab", "isaaclab_rl", "isaaclab_tasks", "isaaclab_newton", "warp", "newton", "tensordict",
           "rsl_rl", "wam_isaac_tasks", "mujoco", "mujoco_warp")  # fmt: skip

SCRIPT = """
import importlib.abc, json, sys
BLOCKED = {blocked!r}

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{{name}} is blocked in this test")
        return None

sys.meta_path.insert(0, Block())
import numpy as np
from wam_isaac.deploy import Policy

policy = Policy.load({directory!r})
terms = json.loads({terms!r})
targets = [policy.step({{k: np.array(v) for k, v in step.items()}}).tolist() for step in terms]
loaded = sorted(name for name in sys.modules if name.split(".")[0] in BLOCKED)
print(json.dumps({{"targets": targets, "loaded": loaded}}))
"""


def test_runtime_runs_without_torch_isaaclab_warp_newton(mlp_export):
    directory, actor = mlp_export
    rng = np.random.default_rng(11)
    steps = [random_terms(rng) for _ in range(4)]
    reference = ReferencePolicy(actor)
    expected = [reference.step(terms) for terms in steps]
    script = SCRIPT.format(
        blocked=BLOCKED,
        directory=str(directory),
        terms=json.dumps([{k: v.tolist() for k, v in terms.items()} for terms in steps]),
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["loaded"] == []
    assert np.abs(np.array(report["targets"]) - np.array(expected)).max() < 1e-5


def test_the_blocker_does_block(tmp_path):
    """The check above would pass vacuously if the finder did not stop an import."""
    script = SCRIPT.split("import numpy as np")[0].format(blocked=BLOCKED) + "import torch\n"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "torch is blocked in this test" in result.stderr
