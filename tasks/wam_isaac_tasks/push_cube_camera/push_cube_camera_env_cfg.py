"""WAM-Push-Cube-Camera: WAM-Push-Cube seen by one fixed RGB camera per env (Newton's Warp ray tracer on any device).

The physics, actions, rewards, terminations and domain randomization are WAM-Push-Cube's (this module imports its
config and adds to it); the scene gains a tiled camera above the table and a green disc on the goal (the goal is a
command, invisible otherwise), and the observations gain a ``camera`` group: the raw RGB frame, uint8, shape
(num_envs, height, width, 3). Policies keep acting on the ``policy`` group; the frame is what datasets store and what
pixel world models predict.

Visual domain randomization (:mod:`.visual_dr`) draws the table and cube colours, the light's intensity and colour
and a camera pose jitter per episode; the ``visual_dr`` group observes what was drawn (stored per step by
``wam generate``). ``env.events.visual_randomization=null`` turns it off. :class:`PushCubeCameraDepthEnvCfg`
(``WAM-Push-Cube-Camera-Depth``) adds a ``depth`` group: the distance to the image plane in millimetres.
"""

from __future__ import annotations

import math

import isaaclab.sim as sim_utils
from isaaclab.assets import RigidObjectCfg
from isaaclab.envs import mdp
from isaaclab.managers import EventTermCfg as EventTerm
from isaaclab.managers import ObservationGroupCfg as ObsGroup
from isaaclab.managers import ObservationTermCfg as ObsTerm
from isaaclab.managers import SceneEntityCfg
from isaaclab.sensors import CameraCfg
from isaaclab.utils import configclass
from isaaclab_newton.renderers import NewtonWarpRendererCfg

from wam_isaac.envs.observations import TermByTermGroupCfg
from wam_isaac_assets.builders import pusher as geometry

from ..push_cube.push_cube_env_cfg import CommandsCfg, EventCfg, ObservationsCfg, PushCubeEnvCfg, PushCubeSceneCfg
from . import visual_dr
from .depth import depth_mm
from .goal_marker import MARKER_THICKNESS, GoalWithMarkerCommandCfg

IMAGE_SIZE = 64
"""Width and height of the camera image [px]."""

CAMERA_POS = (0.42, -0.55, 1.05)
"""Camera position in the env frame [m]: in front of the table's right side, 0.65 m above its top."""

CAMERA_TARGET = (0.42, 0.0, geometry.TABLE_TOP_Z)
"""Point the camera looks at [m, env frame]: the middle of the pushing area (cube start x 0.35-0.40 m, goals
x 0.46-0.56 m, y within +-0.15 m)."""


def look_at_quat(eye: tuple[float, float, float], target: tuple[float, float, float]) -> tuple[float, ...]:
    """Orientation (xyzw) of a camera in Isaac Lab's ``world`` convention (forward +x, up +z) at ``eye`` looking at
    ``target``, without roll: a yaw ``psi`` about z, then a pitch ``theta`` about the new y (down is positive)."""
    forward = [t - e for t, e in zip(target, eye, strict=True)]
    norm = math.sqrt(sum(v * v for v in forward))
    psi, theta = math.atan2(forward[1], forward[0]), math.asin(-forward[2] / norm)
    cz, sz, cy, sy = math.cos(psi / 2), math.sin(psi / 2), math.cos(theta / 2), math.sin(theta / 2)
    return (-sz * sy, cz * sy, sz * cy, cz * cy)  # q_z(psi) * q_y(theta)


@configclass
class PushCubeCameraSceneCfg(PushCubeSceneCfg):
    """The Push-Cube scene, a goal marker and a fixed RGB camera per env."""

    goal_marker: RigidObjectCfg = RigidObjectCfg(
        prim_path="{ENV_REGEX_NS}/GoalMarker",
        spawn=sim_utils.CylinderCfg(
            radius=0.02,
            height=MARKER_THICKNESS,
            rigid_props=sim_utils.UsdPhysicsRigidBodyCfg(kinematic_enabled=True),
            mass_props=sim_utils.MassCfg(mass=0.01),
            collision_props=sim_utils.UsdPhysicsCollisionCfg(collision_enabled=False),
            visual_material=sim_utils.PreviewSurfaceCfg(diffuse_color=(0.1, 0.8, 0.2)),
        ),
        init_state=RigidObjectCfg.InitialStateCfg(pos=(0.5, 0.0, geometry.TABLE_TOP_Z + 0.5 * MARKER_THICKNESS)),
    )
    """A green disc (2 cm radius: the success distance) moved onto the goal at every reset; no collision shape."""

    camera: CameraCfg = CameraCfg(
        prim_path="{ENV_REGEX_NS}/Camera",
        offset=CameraCfg.OffsetCfg(pos=CAMERA_POS, rot=look_at_quat(CAMERA_POS, CAMERA_TARGET), convention="world"),
        data_types=["rgb"],
        spawn=sim_utils.PinholeCameraCfg(
            focal_length=24.0, focus_distance=1.0, horizontal_aperture=20.955, clipping_range=(0.05, 5.0)
        ),
        width=IMAGE_SIZE,
        height=IMAGE_SIZE,
        renderer_cfg=NewtonWarpRendererCfg(),
    )
    """RGB camera fixed in the env frame, rendered by Newton's Warp ray tracer (CPU or GPU, no Isaac Sim)."""


@configclass
class CameraCommandsCfg(CommandsCfg):
    """Push-Cube's goal, drawn by the marker."""

    goal = GoalWithMarkerCommandCfg(object_name="cube", x_range=(0.46, 0.56), y_range=(-0.15, 0.15))


@configclass
class CameraObservationsCfg(ObservationsCfg):
    """Push-Cube's groups plus the camera frame."""

    @configclass
    class CameraCfg(ObsGroup):
        """The camera's RGB frame as rendered: uint8 [0, 255], shape (height, width, 3), no noise."""

        rgb = ObsTerm(
            func=mdp.image_rgb, params={"sensor_cfg": SceneEntityCfg("camera"), "data_type": "rgb", "normalize": False}
        )
        """RGB frame, uint8, (height, width, 3)."""

        def __post_init__(self):
            self.enable_corruption = False
            self.concatenate_terms = True

    camera: CameraCfg = CameraCfg()

    @configclass
    class VisualDrCfg(TermByTermGroupCfg):
        """The episode's visual DR parameters, constant within an episode (term by term: ``obs/visual_dr/<term>``)."""

        table_color = ObsTerm(func=visual_dr.visual_param, params={"name": "table_color"})
        """Table albedo, linear RGB, (3,)."""
        cube_color = ObsTerm(func=visual_dr.visual_param, params={"name": "cube_color"})
        """Cube albedo, linear RGB, (3,)."""
        light_intensity = ObsTerm(func=visual_dr.visual_param, params={"name": "light_intensity"})
        """Light intensity [1] (1 as authored), (1,)."""
        light_color = ObsTerm(func=visual_dr.visual_param, params={"name": "light_color"})
        """Light colour, a linear RGB gain (1, 1, 1 as authored), (3,)."""
        camera_pos = ObsTerm(func=visual_dr.camera_pos)
        """Camera position in the env frame [m], (3,)."""
        camera_quat = ObsTerm(func=visual_dr.camera_quat)
        """Camera orientation, xyzw, ``world`` convention (forward +x, up +z), (4,)."""

    visual_dr: VisualDrCfg = VisualDrCfg()


@configclass
class CameraEventCfg(EventCfg):
    """Push-Cube's physical DR plus visual DR, drawn at every reset."""

    visual_randomization = EventTerm(
        func=visual_dr.randomize_visuals,
        mode="reset",
        params={
            "table_color": ((0.25, 0.15, 0.08), (0.65, 0.45, 0.35)),
            "cube_color": ((0.03, 0.2, 0.6), (0.2, 0.5, 1.0)),
            "light_intensity": (0.7, 1.3),
            "light_color": ((0.85, 0.85, 0.85), (1.15, 1.15, 1.15)),
            "camera_eye_jitter": 0.02,
            "camera_target_jitter": 0.02,
            "camera_target": CAMERA_TARGET,
        },
    )
    """Table albedo U((0.25, 0.15, 0.08), (0.65, 0.45, 0.35)) (authored (0.45, 0.3, 0.2)), cube albedo
    U((0.03, 0.2, 0.6), (0.2, 0.5, 1.0)) (authored (0.1, 0.4, 0.9)), both linear RGB; light intensity U(0.7, 1.3)
    times a colour U(0.85, 1.15) per channel; camera eye and look-at point each moved by U(-2, 2) cm per axis."""


@configclass
class PushCubeCameraEnvCfg(PushCubeEnvCfg):
    """WAM-Push-Cube with a 64x64 RGB camera and visual DR (see the module docstring)."""

    scene: PushCubeCameraSceneCfg = PushCubeCameraSceneCfg(num_envs=64, env_spacing=2.0, clone_in_fabric=True)
    observations: CameraObservationsCfg = CameraObservationsCfg()
    commands: CameraCommandsCfg = CameraCommandsCfg()
    events: CameraEventCfg = CameraEventCfg()


@configclass
class DepthObservationsCfg(CameraObservationsCfg):
    """The camera task's groups plus the depth frame."""

    @configclass
    class DepthCfg(ObsGroup):
        """Distance to the image plane, int16 millimetres, shape (height, width, 1); 0 where a ray hits nothing."""

        depth = ObsTerm(func=depth_mm, params={"sensor_cfg": SceneEntityCfg("camera")})
        """Depth [mm], int16, (height, width, 1)."""

        def __post_init__(self):
            self.enable_corruption = False
            self.concatenate_terms = True

    depth: DepthCfg = DepthCfg()


@configclass
class PushCubeCameraDepthEnvCfg(PushCubeCameraEnvCfg):
    """WAM-Push-Cube-Camera with a depth frame beside the RGB frame (the same rays: one render gives both)."""

    observations: DepthObservationsCfg = DepthObservationsCfg()

    def __post_init__(self):
        super().__post_init__()
        self.scene.camera.data_types = ["rgb", "distance_to_image_plane"]
