"""The deployed policy: ``policy.onnx`` run by onnxruntime behind observation and action checks (numpy only)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import onnxruntime

from .actions import ActionPipeline
from .config import DeployConfig
from .errors import BadObservation, MetadataError
from .observation import ObservationAssembler
from .schema import POLICY_FILE, load_metadata


class Policy:
    """An exported policy, one robot (batch of one).

    ``step(obs_terms)`` takes the raw observation terms by name (physical units, as the term functions return them
    in simulation), checks them, assembles the network input (clip, scale, history), runs the network (recurrent
    state kept here), and turns the action into joint targets (scale, offset, clamps, rate limit).

    Use :meth:`load`; call :meth:`reset` at the start of every episode.
    """

    def __init__(self, metadata: dict, session: onnxruntime.InferenceSession, config: DeployConfig):
        self.metadata = metadata
        self.config = config
        self.observation = ObservationAssembler(metadata["observation"], config.joint_names)
        self.actions = ActionPipeline(metadata["action"], config)
        recurrent = metadata["policy"].get("recurrent")
        state_inputs = [] if recurrent is None else list(recurrent["state_inputs"])
        state_outputs = [] if recurrent is None else list(recurrent["state_outputs"])
        shape = None if recurrent is None else (recurrent["num_layers"], 1, recurrent["hidden_size"])
        # inputs and outputs live in fixed numpy buffers bound to the session once (no per-step feed dicts)
        self._state_in = [np.zeros(shape, dtype=np.float32) for _ in state_inputs]
        self._state_out = [np.zeros(shape, dtype=np.float32) for _ in state_outputs]
        self._raw = np.zeros((1, self.actions.dim), dtype=np.float32)
        self._session = session
        self._binding = session.io_binding()
        self._binding.bind_cpu_input("obs", self.observation.buffer)
        for name, buffer in zip(state_inputs, self._state_in, strict=True):
            self._binding.bind_cpu_input(name, buffer)
        for name, buffer in zip(["actions", *state_outputs], [self._raw, *self._state_out], strict=True):
            self._binding.bind_output(name, "cpu", 0, np.float32, list(buffer.shape), buffer.ctypes.data)
        self.last_fault: str | None = None
        """Why the last :meth:`step` held the previous targets (``None`` if it acted)."""
        self.fault_count = 0
        """How many steps held the previous targets since loading."""
        self.reset()

    @classmethod
    def load(cls, export_dir: str | Path, config: DeployConfig | None = None) -> Policy:
        """Load an export directory written by ``wam export`` (checksums verified unless configured otherwise)."""
        config = config or DeployConfig()
        if config.on_bad_input not in ("raise", "hold"):
            raise MetadataError(f"DeployConfig.on_bad_input must be 'raise' or 'hold', got {config.on_bad_input!r}")
        metadata = load_metadata(export_dir, config.verify_checksums)
        if metadata.get("policy") is None:
            raise MetadataError(f"{export_dir} holds a world model only (no policy.onnx); load it with SurpriseMonitor")
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = config.num_threads
        options.inter_op_num_threads = 1
        path = Path(export_dir) / metadata["policy"].get("file", POLICY_FILE)
        session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        return cls(metadata, session, config)

    @property
    def joint_names(self) -> list[str]:
        """Joint names of the targets :meth:`step` returns, in that order."""
        return self.actions.joint_names

    @property
    def last_action(self) -> np.ndarray:
        """The last raw action (after ``clip_actions``, before scale and offset), shape (A,): what the env received
        in simulation, and the world model's action input (:class:`~wam_isaac.deploy.SurpriseMonitor`)."""
        return self._last_action.reshape(-1).copy()

    @property
    def term_names(self) -> list[str]:
        """Observation terms :meth:`step` expects, in the exported order."""
        return self.observation.term_names

    def reset(self) -> None:
        """Start an episode: zero recurrent state and last action, empty histories, default targets as safe hold."""
        self.observation.reset()
        for buffer in self._state_in:
            buffer.fill(0.0)
        self._last_action = np.zeros((1, self.actions.dim), dtype=np.float32)
        self._last_targets = self.actions.default_targets.copy()
        self._first = True

    def step(self, obs_terms: Mapping[str, np.ndarray | Mapping[str, float]]) -> np.ndarray:
        """Joint targets for one control step, shape ``(len(joint_names),)`` float64, in :attr:`joint_names` order.

        Args:
            obs_terms: every term of :attr:`term_names`, each a float array of the term's shape (joint-indexed terms
                may be ``{joint_name: value}``, or arrays in ``DeployConfig.joint_names`` order when that is set).

        Raises:
            BadObservation: on bad input or a non-finite network output, when ``on_bad_input="raise"``.
        """
        try:
            self.observation.stage(obs_terms, self._last_action)
        except BadObservation as error:
            return self._fault(error)
        histories = self.observation.assemble()
        self._session.run_with_iobinding(self._binding)
        raw = self._raw
        if not np.isfinite(raw).all():
            return self._fault(BadObservation(f"the network returned non-finite actions {raw.tolist()}"))
        self.observation.commit(histories)
        for state_in, state_out in zip(self._state_in, self._state_out, strict=True):
            np.copyto(state_in, state_out)
        self._last_action = self.actions.clipped(raw)
        targets = self.actions.targets(self._last_action, None if self._first else self._last_targets)
        self._last_targets, self._first = targets, False
        self.last_fault = None
        return targets.copy()

    def _fault(self, error: BadObservation) -> np.ndarray:
        if self.config.on_bad_input == "raise":
            raise error
        self.last_fault = str(error)
        self.fault_count += 1
        return self._last_targets.copy()
