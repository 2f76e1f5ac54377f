"""The cart-pole: a cart on a 8 m rail (prismatic ``slider_to_cart``) carrying a free pole (revolute
``cart_to_pole``). Proportions of the classic benchmark: 1 kg cart, 0.1 kg pole of 1 m (the pole's center of mass
0.5 m above the hinge)."""

from __future__ import annotations

from pxr import Usd

from . import usd_common as u

RAIL_LENGTH = 8.0
"""Rail length [m]; the cart's travel is limited to +-4 m, tasks terminate earlier (+-3 m)."""
CART_SIZE = (0.3, 0.25, 0.15)
"""Cart extents [m]."""
CART_MASS = 1.0
"""Cart mass [kg]."""
POLE_LENGTH = 1.0
"""Pole length [m]."""
POLE_RADIUS = 0.02
"""Pole radius [m]."""
POLE_MASS = 0.1
"""Pole mass [kg]."""


def build() -> Usd.Stage:
    """Author the cart-pole stage (root prim ``/cartpole``, links ``rail``, ``cart``, ``pole``)."""
    stage, root = u.new_stage("cartpole")
    u.articulation_root(stage.GetPrimAtPath(root))

    rail = u.rigid_body(
        stage, root.AppendChild("rail"), (0.0, 0.0, 0.0), 5.0, u.box_inertia(5.0, (RAIL_LENGTH, 0.04, 0.04))
    )
    u.box(stage, rail.path.AppendChild("visual"), (RAIL_LENGTH, 0.04, 0.04), color=(0.4, 0.4, 0.4), collide=False)
    u.fixed_joint(stage, root.AppendChild("root_joint"), None, rail)

    cart = u.rigid_body(
        stage, root.AppendChild("cart"), (0.0, 0.0, 0.0), CART_MASS, u.box_inertia(CART_MASS, CART_SIZE)
    )
    u.box(stage, cart.path.AppendChild("collision"), CART_SIZE, color=(0.2, 0.4, 0.8))
    u.prismatic_joint(
        stage,
        root.AppendChild("slider_to_cart"),
        rail,
        cart,
        anchor=(0.0, 0.0, 0.0),
        axis="X",
        limit=(-RAIL_LENGTH / 2, RAIL_LENGTH / 2),
        max_force=400.0,
    )

    # the pole's body frame sits at the hinge (the cart's front face); its mass is centered halfway up
    hinge = (0.0, CART_SIZE[1] / 2 + POLE_RADIUS + 0.01, 0.0)
    pole_com = (0.0, 0.0, POLE_LENGTH / 2)
    pole = u.rigid_body(
        stage,
        root.AppendChild("pole"),
        hinge,
        POLE_MASS,
        u.cylinder_inertia(POLE_MASS, POLE_RADIUS, POLE_LENGTH, axis="Z"),
        center_of_mass=pole_com,
    )
    u.capsule(
        stage,
        pole.path.AppendChild("collision"),
        POLE_RADIUS,
        POLE_LENGTH - 2 * POLE_RADIUS,
        axis="Z",
        offset=pole_com,
        color=(0.9, 0.6, 0.1),
    )
    u.revolute_joint(
        stage, root.AppendChild("cart_to_pole"), cart, pole, anchor=hinge, axis="Y", limit_deg=None, max_force=400.0
    )
    return stage
