"""Visual domain randomization of WAM-Push-Cube-Camera, drawn per episode (at reset) and observed per step.

What Newton's Warp ray tracer can change at run time, per env:

- **colours**: the tracer reads each shape's colour from ``model.shape_color`` (sRGB in [0, 1], one row per shape of
  every env) at every render, so writing an env's rows recolours that env only: the table and the cube get a colour
  drawn per episode (linear RGB, like a USD ``diffuse_color``);
- **light**: its lights (one default directional light; no intensity or colour field) are shared by all envs, so a
  per-env light direction cannot be drawn. Its shading is linear in the albedo (``albedo * (ambient(n) + n.l)``, no
  specular), so a light of intensity ``k`` and colour ``c`` renders exactly like the albedos of every shape of the env
  scaled by ``k c``: that is how the light's intensity and colour are drawn per env (albedos clipped at 1; the
  background, which no light shades, keeps its colour);
- **camera pose**: each env's camera can be moved (``Camera.set_world_poses_from_view``): the eye and the point it
  looks at are jittered per episode.

Not randomized: light direction and shadows (shared by all envs in this renderer), textures (the tracer has texture
sampling but Isaac Lab's texture randomization needs Kit), the arm's and the goal's colours (the light scales them).

The applied values are kept by the event term and read by the observation terms of the ``visual_dr`` group, so a
dataset records them at every step of the episode (``obs/visual_dr/<term>``, constant within an episode).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch

from isaaclab.managers import EventTermCfg, ManagerTermBase, SceneEntityCfg

if TYPE_CHECKING:
    from isaaclab.envs import ManagerBasedEnv

RECOLOURED = ("robot", "table", "cube", "goal_marker")
"""Scene entities whose shape colours the light scales (every visible shape of an env)."""

EVENT_NAME = "visual_randomization"
"""Name of the event term in the task's event config (the observation terms look it up by this name)."""

VISUAL_PARAMS = ("table_color", "cube_color", "light_intensity", "light_color")
"""The colour parameters the term draws (beside the camera pose)."""

RGBRange = tuple[tuple[float, float, float], tuple[float, float, float]]
"""Per-channel (low, high) of a uniform draw of a linear RGB colour."""


def srgb_to_linear(value: torch.Tensor) -> torch.Tensor:
    """sRGB in [0, 1] to linear RGB (the IEC 61966-2-1 curve, as Newton's tracer decodes ``shape_color``)."""
    return torch.where(value <= 0.04045, value / 12.92, ((value + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(value: torch.Tensor) -> torch.Tensor:
    """Linear RGB to sRGB, both in [0, 1] (inputs clipped to [0, 1])."""
    value = value.clamp(0.0, 1.0)
    return torch.where(value <= 0.0031308, value * 12.92, 1.055 * value ** (1.0 / 2.4) - 0.055)


def _uniform(low: Sequence[float], high: Sequence[float], count: int, device) -> torch.Tensor:
    low_t = torch.tensor(low, dtype=torch.float32, device=device)
    high_t = torch.tensor(high, dtype=torch.float32, device=device)
    return low_t + (high_t - low_t) * torch.rand(count, len(low), device=device)


def _shape_colors(env: ManagerBasedEnv, name: str) -> torch.Tensor:
    """Zero-copy view of the sRGB colour of each shape of scene entity ``name``, shape (num_envs, num_shapes, 3)."""
    import warp as wp

    manager = env.sim.physics_manager
    if not hasattr(manager, "get_model"):
        raise NotImplementedError(f"visual randomization writes Newton's shape colours; the physics is {manager}")
    view = env.scene[name]._root_view
    return wp.to_torch(view.get_attribute("shape_color", manager.get_model())[:, 0])


class randomize_visuals(ManagerTermBase):
    """Per-episode table and cube colours, light intensity and colour, and camera pose jitter (see the module
    docstring); keeps what it applied as (num_envs, ...) tensors: :attr:`table_color`, :attr:`cube_color` (linear
    RGB), :attr:`light_intensity` (num_envs, 1), :attr:`light_color` (linear RGB gain)."""

    def __init__(self, cfg: EventTermCfg, env: ManagerBasedEnv):
        super().__init__(cfg, env)
        self._colors = {name: _shape_colors(env, name) for name in RECOLOURED}
        self._albedo = {name: srgb_to_linear(colors.clone()) for name, colors in self._colors.items()}
        """Authored linear albedo of every shape, (num_envs, num_shapes, 3)."""
        n, device = env.num_envs, env.device
        self.table_color = self._albedo["table"][:, 0].clone()
        self.cube_color = self._albedo["cube"][:, 0].clone()
        self.light_intensity = torch.ones(n, 1, device=device)
        self.light_color = torch.ones(n, 3, device=device)
        camera = env.scene[cfg.params.get("camera_cfg", SceneEntityCfg("camera")).name]
        self._eye = camera.cfg.offset.pos
        self._target = cfg.params["camera_target"]

    def __call__(
        self,
        env: ManagerBasedEnv,
        env_ids: torch.Tensor | slice | None,
        table_color: RGBRange,
        cube_color: RGBRange,
        light_intensity: tuple[float, float],
        light_color: RGBRange,
        camera_eye_jitter: float,
        camera_target_jitter: float,
        camera_target: tuple[float, float, float],
        camera_cfg: SceneEntityCfg = SceneEntityCfg("camera"),
    ) -> None:
        ids = torch.arange(env.num_envs, device=env.device)
        ids = ids if env_ids is None else ids[env_ids]
        n = len(ids)
        self.set_colors(
            ids,
            table_color=_uniform(*table_color, n, env.device),
            cube_color=_uniform(*cube_color, n, env.device),
            light_intensity=_uniform((light_intensity[0],), (light_intensity[1],), n, env.device),
            light_color=_uniform(*light_color, n, env.device),
        )
        self._jitter_camera(env, ids, camera_cfg, camera_eye_jitter, camera_target_jitter)

    def set_colors(
        self,
        env_ids: torch.Tensor,
        table_color: torch.Tensor,
        cube_color: torch.Tensor,
        light_intensity: torch.Tensor,
        light_color: torch.Tensor,
    ) -> None:
        """Give envs ``env_ids`` these visual parameters (each (len(env_ids), ...) as in :func:`visual_param`), e.g.
        the ones a dataset recorded, to render an episode again as it was seen."""
        n = len(env_ids)
        self.table_color[env_ids] = table_color
        self.cube_color[env_ids] = cube_color
        self.light_intensity[env_ids] = light_intensity
        self.light_color[env_ids] = light_color
        albedo = {**self._albedo, "table": self.table_color[:, None], "cube": self.cube_color[:, None]}
        gain = (self.light_intensity * self.light_color)[env_ids, None]  # (n, 1, 3)
        for name, colors in self._colors.items():
            colors[env_ids] = linear_to_srgb(albedo[name][env_ids].expand(n, colors.shape[1], 3) * gain)

    def recorded_params(self) -> dict[str, torch.Tensor]:
        """What this term applied to every env, each (num_envs, ...): the four colour parameters and the camera pose
        (``camera_pos`` [m, env frame], ``camera_quat`` xyzw, ``world`` convention), as a DR reader would record
        them per episode."""
        params = {name: getattr(self, name).clone() for name in VISUAL_PARAMS}
        return {**params, "camera_pos": camera_pos(self._env), "camera_quat": camera_quat(self._env)}

    def _jitter_camera(self, env: ManagerBasedEnv, ids: torch.Tensor, camera_cfg, eye_jitter: float, target_jitter):
        """Move the cameras of ``ids`` to eye + U(-eye_jitter, eye_jitter)^3 [m], looking at the target +
        U(-target_jitter, target_jitter)^3 [m] (env frame)."""
        n, device = len(ids), env.device
        origins = env.scene.env_origins[ids]
        eyes = origins + torch.tensor(self._eye, device=device) + eye_jitter * (2 * torch.rand(n, 3, device=device) - 1)
        targets = torch.tensor(self._target, device=device) + target_jitter * (2 * torch.rand(n, 3, device=device) - 1)
        env.scene[camera_cfg.name].set_world_poses_from_view(eyes, origins + targets, env_ids=ids)


def _term(env: ManagerBasedEnv) -> randomize_visuals | None:
    if EVENT_NAME not in env.event_manager.active_terms.get("reset", []):
        return None
    return env.event_manager.get_term_cfg(EVENT_NAME).func


def visual_param(env: ManagerBasedEnv, name: str) -> torch.Tensor:
    """The episode's value of visual parameter ``name`` of every env (``table_color``, ``cube_color``: linear RGB,
    (num_envs, 3); ``light_intensity`` [1], (num_envs, 1); ``light_color``: linear RGB gain, (num_envs, 3)); the
    authored values (intensity and light colour 1) when the task has no visual randomization."""
    term = _term(env)
    if term is not None:
        return getattr(term, name).clone()
    if name in ("table_color", "cube_color"):
        return srgb_to_linear(_shape_colors(env, name.removesuffix("_color"))[:, 0].clone())
    return torch.ones(env.num_envs, 1 if name == "light_intensity" else 3, device=env.device)


def camera_pos(env: ManagerBasedEnv, sensor_cfg: SceneEntityCfg = SceneEntityCfg("camera")) -> torch.Tensor:
    """Camera position in the env frame [m], shape (num_envs, 3), as the sensor holds it."""
    return env.scene[sensor_cfg.name].data.pos_w.torch - env.scene.env_origins


def camera_quat(env: ManagerBasedEnv, sensor_cfg: SceneEntityCfg = SceneEntityCfg("camera")) -> torch.Tensor:
    """Camera orientation, xyzw, Isaac Lab's ``world`` convention (forward +x, up +z), shape (num_envs, 4)."""
    return env.scene[sensor_cfg.name].data.quat_w_world.torch.clone()
