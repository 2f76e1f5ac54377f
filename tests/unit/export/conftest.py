"""The export tests reuse the deploy tests' synthetic actors and layouts (``tests/unit/deploy/deploy_synthetic.py``)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "deploy"))
