"""The viewer camera of ``wam play --video`` on tasks without a camera (no simulator): the config edit adds a square
Newton-Warp RGB camera at the task's viewpoint, looking at its look-at point, and leaves the observation groups
alone."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from wam_isaac.envs.viewer_camera import SCENE_NAME, VIEWPOINTS, add_viewer_camera, viewpoint_for


def _forward(quat_xyzw) -> np.ndarray:
    """The camera's +x axis (``world`` convention: forward) in its parent frame."""
    x, y, z, w = quat_xyzw
    return np.array([1 - 2 * (y * y + z * z), 2 * (x * y + z * w), 2 * (x * z - y * w)])


def test_viewer_camera_is_added_at_the_task_viewpoint_and_observations_are_unchanged():
    from isaaclab_newton.renderers import NewtonWarpRendererCfg

    from wam_isaac_tasks.push_cube.push_cube_env_cfg import PushCubeEnvCfg

    env_cfg = PushCubeEnvCfg()
    observations = copy.deepcopy(env_cfg.observations.to_dict())
    assert getattr(env_cfg.scene, SCENE_NAME, None) is None
    viewpoint = viewpoint_for("WAM-Push-Cube", env_cfg)
    assert viewpoint is VIEWPOINTS["WAM-Push-Cube"]
    add_viewer_camera(env_cfg, viewpoint, 96)

    camera = getattr(env_cfg.scene, SCENE_NAME)
    assert (camera.width, camera.height, camera.data_types) == (96, 96, ["rgb"])
    assert isinstance(camera.renderer_cfg, NewtonWarpRendererCfg)
    assert camera.prim_path == "{ENV_REGEX_NS}/ViewerCamera" and camera.offset.convention == "world"
    np.testing.assert_allclose(camera.offset.pos, viewpoint.eye)
    direction = np.subtract(viewpoint.lookat, viewpoint.eye)
    np.testing.assert_allclose(_forward(camera.offset.rot), direction / np.linalg.norm(direction), atol=1e-6)
    assert abs(np.linalg.norm(camera.offset.rot) - 1) < 1e-6
    assert env_cfg.observations.to_dict() == observations  # what the policy observes is unchanged

    with pytest.raises(ValueError, match="already has an entity named 'viewer_camera'"):
        add_viewer_camera(env_cfg, viewpoint, 96)
    # a task without an entry takes its viewer config's eye and look-at point
    env_cfg.viewer.eye, env_cfg.viewer.lookat = (3.0, 1.0, 2.0), (0.0, 0.5, 0.0)
    fallback = viewpoint_for("Some-Other-Task", env_cfg)
    assert (fallback.eye, fallback.lookat, fallback.follow) == ((3.0, 1.0, 2.0), (0.0, 0.5, 0.0), None)
