"""Evaluation of trained WAMs on three dimensions (``wam eval``).

- ``fidelity.py``: errors of autoregressive rollouts per horizon and state term in physical units (rotations split
  into yaw and tilt) beside copy-last and constant velocity, and a normalized figure (ensembles: mean trajectory and
  mean member spread);
- ``spec.py``: :class:`PhysicsSpec`, a task's declarative physical-commonsense checks (registered through the gym
  kwarg ``wam_physics_spec_entry_point``);
- ``physics.py``: penetration, energy-from-nowhere, gravity and contact checks on predicted and true trajectories;
- ``closed_loop.py``: the action head in control of the real simulator (success, return, smoothness, limits);
- ``report.py``: ``eval.json`` (atomic) and the summary table; ``plots.py``: the PNG plots;
- ``visual_fidelity.py``: PSNR and SSIM of predicted camera frames per horizon beside copy-last (torchmetrics);
- ``visual_strip.py``: a PNG of true / predicted / copy-last frames per horizon;
- ``visual_eval.py``: ``wam eval`` on a pixel WAM (frames per horizon, the autoencoder's ceiling, physics checks of
  the state read-out, closed loop); ``visual_regions.py``: a pixel model's error split into arm / cube / static
  pixels beside copy-last, and oracles (``python -m``);
- ``video.py``: MP4 / GIF writing (``write_video``, ``write_side_by_side`` of true and predicted frames) and the
  camera recorder of ``wam play --video``.
"""

from __future__ import annotations
