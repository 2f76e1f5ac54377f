"""World Action Models: world models (MLP, GRU, transformer; ensembles), the joint WAM and the cascaded WAM.

- ``schema.py``: what a model reads and predicts, from a dataset's manifest (the task's ``world_model`` and
  ``instruction`` observation groups, actions, auxiliary labels).
- ``normalizer.py``: per-dimension normalizers, stored in the model's state dict.
- ``trunks.py``: the encoders (one interface: ``features, memory = trunk(tokens, memory)``).
- ``world_model.py``: :class:`WorldModel` (``tokens``, ``encode``, ``predict_next``, ``next_state``, ``rollout``)
  and :class:`EnsembleWorldModel`.
- ``wam.py``: :class:`JointWAM`, :class:`CascadedWAM`, :func:`build_model`.
- ``pixel_world_model.py``: :class:`PixelWorldModel`, camera frames -> latent -> WAM trunk -> decoded frames.
- ``pixel_wam.py``: :class:`PixelWAM`, the pixel world model with a state read-out, and the joint (action and value
  heads on the shared latent) and cascaded (planned next frame, then inverse dynamics) pixel WAMs.
- ``pixel_training.py``: training it on a dataset's frames and scoring it on held-out envs (``wam train-pixel``).
"""

from __future__ import annotations

from .config import MODEL_KINDS, ModelCfg, TrunkCfg, model_cfg
from .normalizer import Normalizer, Normalizers
from .schema import SchemaError, WamSchema
from .wam import CascadedWAM, JointWAM, build_model, world_model_of
from .world_model import EnsembleWorldModel, Rollout, StepPrediction, WorldModel, previous_actions

__all__ = [
    "MODEL_KINDS",
    "CascadedWAM",
    "EnsembleWorldModel",
    "JointWAM",
    "ModelCfg",
    "Normalizer",
    "Normalizers",
    "Rollout",
    "SchemaError",
    "StepPrediction",
    "TrunkCfg",
    "WamSchema",
    "WorldModel",
    "build_model",
    "model_cfg",
    "previous_actions",
    "world_model_of",
]
