"""Names and fixed figures of the hand model, in one place (see assets/hand.xml for the kinematics)."""

from pathlib import Path

ASSETS_DIR = Path(__file__).parent / "assets"
HANDS = {"legacy": ASSETS_DIR / "hand.xml", "allegro": ASSETS_DIR / "allegro_hand.xml"}
"""Hand models by name. ``allegro`` follows the Allegro Hand v4's published kinematics; ``legacy`` is the earlier
Allegro-like hand (fingers abduct about the palm normal, a different thumb, no finger-finger collisions) that the
shipped experts and models were trained on, kept until their retrained successors ship."""
DEFAULT_HAND = "legacy"
"""The hand of every environment, expert and model whose configuration or record names none."""
GRASP_DIRS = {"legacy": ASSETS_DIR / "grasps", "allegro": ASSETS_DIR / "grasps_allegro"}
"""Shipped grasp caches by hand name (``<dir>/<wrist>/<object>.npz``)."""
DEFAULT_WRIST = "palm_up"
"""The wrist orientation of shipped experts and models whose names carry none, and of records that predate it."""

FINGERS = ("index", "middle", "ring", "thumb")
JOINT_NAMES = tuple(f"{finger}_{i}" for finger in FINGERS for i in range(4))
ACTUATOR_NAMES = JOINT_NAMES
FINGERTIP_SITES = tuple(f"{finger}_tip" for finger in FINGERS)
FINGERTIP_GEOMS = FINGERTIP_SITES
PALM_BODY = "palm"
OBJECT_BODY = "object"
OBJECT_GEOM = "object"
OBJECT_JOINT = "object"

NUM_JOINTS = len(JOINT_NAMES)
NUM_FINGERTIPS = len(FINGERTIP_SITES)

PALM_HALF_THICKNESS = 0.0204
"""Half thickness of the palm box, metres: the palm surface is the plane z = PALM_HALF_THICKNESS, palm frame."""

GRASP_CENTRE = (0.02, 0.0, 0.055)
"""Nominal centre of the grasp workspace, metres, palm frame (above the palm, between fingers and thumb)."""

OPEN_POSE = (
    0.0, 0.1, 0.1, 0.1,
    0.0, 0.1, 0.1, 0.1,
    0.0, 0.1, 0.1, 0.1,
    0.4, 0.2, 0.1, 0.1,
)  # fmt: skip
"""Joint positions of an open hand, radians, in JOINT_NAMES order."""

GRASP_CLOSING = {
    "legacy": ((-0.25, 0.5, 0.5, 0.3) * 3 + (0.9, 0.0, 0.3, 0.2), (0.25, 1.6, 1.7, 1.6) * 3 + (1.396, 1.1, 1.6, 1.7)),
    "allegro": ((-0.4, 0.5, 0.5, 0.3, -0.25, 0.5, 0.5, 0.3, -0.1, 0.5, 0.5, 0.3, 0.4, 0.4, 0.6, 0.4),
                (0.1, 1.6, 1.7, 1.6, 0.25, 1.6, 1.7, 1.6, 0.4, 1.6, 1.7, 1.6, 1.396, 1.163, 1.644, 1.719)),
}  # fmt: skip
"""Per hand, the (lower, upper) box of finger targets, radians, JOINT_NAMES order, from which grasp generation
draws targets that close the digits over the palm: for the Allegro, index and ring roll toward the middle finger
and the thumb opposes them (its tip within 3 cm of the grasp centre for most draws)."""
