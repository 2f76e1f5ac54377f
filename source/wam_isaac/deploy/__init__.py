"""Deploy runtime for exported policies: numpy and onnxruntime only (no torch, Isaac Lab, Warp or Newton).

.. code-block:: python

    from wam_isaac.deploy import DeployConfig, Policy

    policy = Policy.load("exported/", DeployConfig(on_bad_input="hold", joint_names=robot_joint_names))
    policy.reset()
    targets = policy.step({"joint_pos": q - q_default, "joint_vel": dq})  # in policy.joint_names order

    monitor = SurpriseMonitor.load("exported/")  # exports with a world model
    monitor.reset()
    surprise = monitor.step(state_terms, policy.last_action, instruction_terms)  # surprise.alarm: (1,) bool
"""

from .config import DeployConfig
from .errors import BadObservation, MetadataError
from .policy import Policy
from .schema import METADATA_FILE, METADATA_PROPS_KEY, POLICY_FILE, SCHEMA, SCHEMA_VERSION, load_metadata
from .surprise import Surprise, SurpriseMonitor

__all__ = [
    "BadObservation",
    "DeployConfig",
    "METADATA_FILE",
    "METADATA_PROPS_KEY",
    "MetadataError",
    "POLICY_FILE",
    "Policy",
    "SCHEMA",
    "SCHEMA_VERSION",
    "load_metadata",
    "Surprise",
    "SurpriseMonitor",
]
