"""A viewer camera for videos of tasks without a camera (``wam play --video`` on WAM-Push-Cube, WAM-Cartpole,
WAM-Quadruped-Flat).

:func:`add_viewer_camera` adds a square RGB camera, rendered by Newton's Warp ray tracer (CPU or GPU, no Isaac Sim), to
an env config's scene as ``viewer_camera``; no observation group reads it, so what the policy observes is unchanged.
Newton's tiled camera renders one view per world, so every env gets the camera; :class:`ViewerRecorder` reads env
0's. Sensors update lazily (Isaac Lab's default ``scene.lazy_sensor_update``): the camera renders only on the steps
whose frame is read, none after the video's last frame.

Each task has a viewpoint (:data:`VIEWPOINTS`) that frames its robot: eye and look-at point in the env frame, or,
for a robot that walks away, relative to its root position (the camera follows it; the pose set after a step is
used by the next step's render).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from isaaclab.envs import ManagerBasedEnv

SCENE_NAME = "viewer_camera"
"""Name of the viewer camera in the scene."""


@dataclass(frozen=True)
class Viewpoint:
    """Where the viewer camera stands and looks."""

    eye: tuple[float, float, float]
    """Camera position [m]: in the env frame, or relative to ``follow``'s root position."""
    lookat: tuple[float, float, float]
    """Point the camera looks at [m], in the same frame as ``eye``."""
    follow: str | None = None
    """Scene asset whose root position the camera follows (``eye`` and ``lookat`` relative to it); ``None``: fixed in
    the env frame."""


VIEWPOINTS: dict[str, Viewpoint] = {
    # the arm at the env origin, the table top 0.40 m high from x 0.10 to 0.80 m: seen from its front right
    "WAM-Push-Cube": Viewpoint(eye=(1.05, -0.75, 0.95), lookat=(0.38, 0.0, 0.45)),
    # the cart on its rail 2 m high, the 1 m pole above it: seen from the side, the rail across the frame
    "WAM-Cartpole": Viewpoint(eye=(0.0, -5.0, 2.6), lookat=(0.0, 0.0, 2.3)),
    # the quadruped standing 0.35 m high: followed from its front left, slightly above
    "WAM-Quadruped-Flat": Viewpoint(eye=(1.2, -1.4, 0.7), lookat=(0.0, 0.0, 0.0), follow="robot"),
}
"""Default viewpoint of each task without a camera of its own."""


def viewpoint_for(task: str, env_cfg) -> Viewpoint:
    """The task's entry of :data:`VIEWPOINTS`, else the env config's ``viewer`` eye and look-at point (taken in the
    env frame)."""
    if task in VIEWPOINTS:
        return VIEWPOINTS[task]
    return Viewpoint(eye=tuple(env_cfg.viewer.eye), lookat=tuple(env_cfg.viewer.lookat))


def add_viewer_camera(env_cfg, viewpoint: Viewpoint, resolution: int) -> None:
    """Add ``viewer_camera`` (RGB, ``resolution`` x ``resolution`` px, 24 mm lens on a 20.955 mm aperture: 47 degrees
    across) at ``viewpoint`` to ``env_cfg.scene``; the observation groups are left as they are.

    Raises:
        ValueError: ``resolution`` below 2, or the scene already has an entity named ``viewer_camera``.
    """
    import isaaclab.sim as sim_utils
    from isaaclab.sensors import CameraCfg
    from isaaclab_newton.renderers import NewtonWarpRendererCfg

    if resolution < 2:
        raise ValueError(f"viewer camera resolution must be at least 2 px, got {resolution}")
    if getattr(env_cfg.scene, SCENE_NAME, None) is not None:
        raise ValueError(f"the scene already has an entity named '{SCENE_NAME}'")
    setattr(
        env_cfg.scene,
        SCENE_NAME,
        CameraCfg(
            prim_path="{ENV_REGEX_NS}/ViewerCamera",
            offset=CameraCfg.OffsetCfg(
                pos=viewpoint.eye, rot=look_at_quat(viewpoint.eye, viewpoint.lookat), convention="world"
            ),
            data_types=["rgb"],
            spawn=sim_utils.PinholeCameraCfg(
                focal_length=24.0, focus_distance=1.0, horizontal_aperture=20.955, clipping_range=(0.05, 50.0)
            ),
            width=resolution,
            height=resolution,
            renderer_cfg=NewtonWarpRendererCfg(),
        ),
    )


def look_at_quat(eye, target) -> tuple[float, float, float, float]:
    """Orientation (xyzw) of a camera in Isaac Lab's ``world`` convention (forward +x, up +z) at ``eye`` looking at
    ``target``, without roll."""
    forward = np.asarray(target, dtype=float) - np.asarray(eye, dtype=float)
    psi = np.arctan2(forward[1], forward[0])
    theta = np.arcsin(-forward[2] / np.linalg.norm(forward))
    cz, sz, cy, sy = np.cos(psi / 2), np.sin(psi / 2), np.cos(theta / 2), np.sin(theta / 2)
    return (float(-sz * sy), float(cz * sy), float(sz * cy), float(cz * cy))  # q_z(psi) * q_y(theta)


class ViewerRecorder:
    """Collects env ``env_index``'s viewer-camera frames, uint8 (H, W, 3), one per call (the observation passed is
    ignored) until ``max_frames`` are held; moves a following camera to the followed asset after each frame. Has the
    interface of :class:`~wam_isaac.evaluation.video.CameraRecorder`."""

    def __init__(self, env: ManagerBasedEnv, viewpoint: Viewpoint, env_index: int = 0, max_frames: int = 200):
        self.env, self.viewpoint, self.env_index, self.max_frames = env, viewpoint, env_index, max_frames
        self.frames: list[np.ndarray] = []
        self._follow()

    def __call__(self, obs: dict | None = None) -> None:
        if len(self.frames) >= self.max_frames:
            return  # the camera's data is no longer read: it renders no more
        rgb = self.env.scene[SCENE_NAME].data.output["rgb"]
        # a copy: on the CPU, .cpu().numpy() would alias the renderer's output buffer, overwritten by the next render
        self.frames.append(rgb.torch[self.env_index, ..., :3].cpu().numpy().copy())
        self._follow()

    def _follow(self) -> None:
        if self.viewpoint.follow is None:
            return
        import torch

        root = self.env.scene[self.viewpoint.follow].data.root_pos_w.torch[self.env_index : self.env_index + 1]
        eye = root + torch.tensor(self.viewpoint.eye, device=root.device)
        target = root + torch.tensor(self.viewpoint.lookat, device=root.device)
        ids = torch.tensor([self.env_index], device=root.device)
        self.env.scene[SCENE_NAME].set_world_poses_from_view(eye, target, env_ids=ids)

    def write(self, path, fps: float, scale: int = 1):
        """Write the frames held (see :func:`~wam_isaac.evaluation.video.write_video`)."""
        from ..evaluation.video import write_video

        if not self.frames:
            raise ValueError("no viewer-camera frame was recorded")
        return write_video(np.stack(self.frames), path, fps, scale)
